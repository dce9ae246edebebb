//! The engine's cart use cases: creating, reading and changing carts
//! (lines, addresses, shipping, codes), merging a guest's cart, pricing.

use super::*;

impl Engine {
    /// Creates an empty cart owned by `actor` (a customer) or by nobody (a guest).
    ///
    /// # Errors
    /// [`Error::Forbidden`] for the provider; [`Error::Storage`] when the store
    /// fails.
    #[tracing::instrument(skip_all)]
    pub async fn create_cart(&self, actor: &Actor, currency: Currency) -> Result<Cart> {
        if matches!(actor, Actor::Provider(_)) {
            return Err(Error::Forbidden);
        }
        let owner = match actor {
            Actor::Customer(id) => Some(*id),
            _ => None,
        };
        let cart = Cart::new(currency, owner, self.now());
        self.inner.store.insert_cart(cart.clone()).await?;
        Ok(cart)
    }

    /// One cart, if `actor` may see it.
    ///
    /// # Errors
    /// [`Error::Forbidden`] when `actor` may not use the cart;
    /// [`Error::NotFound`] for an unknown cart or line; [`Error::CartNotActive`]
    /// once it is checked out; [`Error::Invalid`] or [`Error::LimitExceeded`] for
    /// bad input, naming it; [`Error::Conflict`] when concurrent changes keep
    /// winning; [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all, fields(cart_id = %id))]
    pub async fn cart(&self, actor: &Actor, id: CartId) -> Result<Cart> {
        let cart = self.inner.store.cart(id).await?;
        cart.check_access(actor)?;
        Ok(cart)
    }

    /// Loads, changes and saves a cart, retrying when a concurrent change won.
    pub(crate) async fn modify_cart(
        &self,
        actor: &Actor,
        id: CartId,
        f: impl Fn(&mut Cart) -> Result<()>,
    ) -> Result<Cart> {
        self.modify_cart_keyed(actor, id, None, f).await
    }

    /// As [`Engine::modify_cart`]; with a request key, an edit already
    /// applied under it returns the cart unchanged, and the key is saved with
    /// the edit in the same versioned write.
    pub(crate) async fn modify_cart_keyed(
        &self,
        actor: &Actor,
        id: CartId,
        key: Option<&str>,
        f: impl Fn(&mut Cart) -> Result<()>,
    ) -> Result<Cart> {
        for attempt in 0..self.inner.config.max_retries {
            pause_before_retry(attempt).await;
            let mut cart = self.cart(actor, id).await?;
            if let Some(key) = key {
                if cart.applied(key) {
                    return Ok(cart);
                }
                cart.remember(key);
            }
            // A sent quote changes only by being withdrawn.
            cart.ensure_editable()?;
            f(&mut cart)?;
            match self.inner.store.save_carts(vec![cart], self.now()).await {
                Err(Error::Conflict(_)) => continue,
                Ok(mut saved) => return saved.pop().ok_or_else(|| Error::Conflict("cart")),
                Err(e) => return Err(e),
            }
        }
        Err(gave_up("cart"))
    }

    /// Adds units of a variant. The variant must be for sale and have a price
    /// in the cart's currency; the price itself is never taken from the caller.
    ///
    /// Adding is not safe to repeat blindly (a retry after a lost answer
    /// adds the units twice): a client that retries uses
    /// [`Engine::add_item_once`]. Every other cart command sets a value
    /// (quantity, address, method, email, a code: entering it twice keeps
    /// one) and is safe to repeat as it is.
    ///
    /// # Errors
    /// [`Error::Forbidden`], [`Error::NotFound`], [`Error::NotPurchasable`],
    /// [`Error::NoPrice`], [`Error::CartNotActive`], [`Error::Invalid`] or
    /// [`Error::LimitExceeded`] for the quantity or the number of lines.
    #[tracing::instrument(skip_all, fields(cart_id = %cart, variant_id = %variant))]
    pub async fn add_item(
        &self,
        actor: &Actor,
        cart: CartId,
        variant: VariantId,
        quantity: u32,
    ) -> Result<Cart> {
        self.add_item_keyed(actor, cart, variant, quantity, None, BTreeMap::new())
            .await
    }

    /// [`Engine::add_item`] with line metadata: a line of the same variant
    /// and the same metadata grows, otherwise a new line is added (an
    /// engraved mug beside a plain one). The metadata is kept on the priced
    /// line and the order; it never changes a price. See
    /// [`LineItem::metadata`](crate::cart::LineItem::metadata) for its limits.
    ///
    /// # Errors
    /// As [`Engine::add_item`]; [`Error::Invalid`] or
    /// [`Error::LimitExceeded`] for metadata beyond its limits, naming it.
    #[tracing::instrument(skip_all, fields(cart_id = %cart, variant_id = %variant))]
    pub async fn add_item_with(
        &self,
        actor: &Actor,
        cart: CartId,
        variant: VariantId,
        quantity: u32,
        metadata: BTreeMap<String, String>,
    ) -> Result<Cart> {
        self.add_item_keyed(actor, cart, variant, quantity, None, metadata)
            .await
    }

    /// [`Engine::add_item`] under a request key: the same key adds once,
    /// however often it is retried (the cart remembers its last
    /// [`MAX_REMEMBERED_REQUESTS`](crate::cart::MAX_REMEMBERED_REQUESTS)
    /// keys, saved with the edit).
    ///
    /// # Errors
    /// As [`Engine::add_item`].
    #[tracing::instrument(skip_all, fields(cart_id = %cart, variant_id = %variant))]
    pub async fn add_item_once(
        &self,
        actor: &Actor,
        cart: CartId,
        variant: VariantId,
        quantity: u32,
        key: &IdempotencyKey,
    ) -> Result<Cart> {
        let key = format!("add_item:{key}");
        self.add_item_keyed(actor, cart, variant, quantity, Some(&key), BTreeMap::new())
            .await
    }

    pub(crate) async fn add_item_keyed(
        &self,
        actor: &Actor,
        cart: CartId,
        variant: VariantId,
        quantity: u32,
        key: Option<&str>,
        metadata: BTreeMap<String, String>,
    ) -> Result<Cart> {
        let current = self.cart(actor, cart).await?;
        let entry = self.addable(&current, variant).await?;
        if entry.variant.price(current.currency()).is_none() {
            return Err(Error::NoPrice {
                variant_id: variant,
                currency: current.currency(),
            });
        }
        self.modify_cart_keyed(actor, cart, key, |c| {
            c.add_line_with(variant, quantity, metadata.clone())
                .map(|_| ())
        })
        .await
    }

    /// The catalog entry of `variant` if it may be added to `cart`: it
    /// exists, is for sale, and the cart's sales channel sells its product.
    /// Every command that adds a line to a cart asks here, so no path can
    /// put another channel's product in a cart.
    pub(crate) async fn addable(&self, cart: &Cart, variant: VariantId) -> Result<CatalogEntry> {
        let mut entries = self.inner.store.entries(&[variant]).await?;
        let entry = entries
            .remove(&variant)
            .ok_or_else(|| Error::not_found("variant", variant))?;
        entry.purchasable()?;
        if let Some(channel) = self.cart_channel(cart).await? {
            channel.ensure_sells(entry.variant.product_id())?;
        }
        Ok(entry)
    }

    /// Adds a line at a price the embedding program sets (a quote, a
    /// configured product; see [`CustomPrice`](crate::cart::CustomPrice)):
    /// marked as custom with its reason, never merged with another line,
    /// and left alone by promotions unless the price allows them. Only
    /// staff or the system may set a price: a price never comes from a
    /// customer's request. The variant must exist and be for sale; it needs
    /// no catalog price in the cart's currency.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::NotFound`] for an unknown cart or variant;
    /// [`Error::NotPurchasable`]; [`Error::NotInChannel`] for a product
    /// the cart's sales channel does not sell; [`Error::CartNotActive`];
    /// [`Error::CurrencyMismatch`] for a price in another currency;
    /// [`Error::Invalid`] or [`Error::LimitExceeded`] for bad input, naming
    /// it; [`Error::Conflict`] when concurrent changes keep winning;
    /// [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all, fields(cart_id = %cart, variant_id = %variant))]
    pub async fn add_custom_line(
        &self,
        actor: &Actor,
        cart: CartId,
        variant: VariantId,
        quantity: u32,
        price: crate::cart::CustomPrice,
    ) -> Result<Cart> {
        actor.require(crate::actor::Permission::Orders)?;
        let current = self.cart(actor, cart).await?;
        self.addable(&current, variant).await?;
        let updated = self
            .modify_cart(actor, cart, |c| {
                c.add_custom_line(variant, quantity, price.clone())
                    .map(|_| ())
            })
            .await?;
        self.audit(actor, "add_custom_line", format!("{cart}"))
            .await;
        Ok(updated)
    }

    /// Sets a line's quantity.
    ///
    /// # Errors
    /// [`Error::Forbidden`] when `actor` may not use the cart;
    /// [`Error::NotFound`] for an unknown cart or line; [`Error::CartNotActive`]
    /// once it is checked out; [`Error::Invalid`] or [`Error::LimitExceeded`] for
    /// bad input, naming it; [`Error::Conflict`] when concurrent changes keep
    /// winning; [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all, fields(cart_id = %cart))]
    pub async fn set_quantity(
        &self,
        actor: &Actor,
        cart: CartId,
        line: LineId,
        quantity: u32,
    ) -> Result<Cart> {
        self.modify_cart(actor, cart, |c| c.set_quantity(line, quantity))
            .await
    }

    /// Removes a line.
    ///
    /// # Errors
    /// [`Error::Forbidden`] when `actor` may not use the cart;
    /// [`Error::NotFound`] for an unknown cart or line; [`Error::CartNotActive`]
    /// once it is checked out; [`Error::Invalid`] or [`Error::LimitExceeded`] for
    /// bad input, naming it; [`Error::Conflict`] when concurrent changes keep
    /// winning; [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all, fields(cart_id = %cart))]
    pub async fn remove_line(&self, actor: &Actor, cart: CartId, line: LineId) -> Result<Cart> {
        self.modify_cart(actor, cart, |c| c.remove_line(line)).await
    }

    /// Sets the contact email.
    ///
    /// # Errors
    /// [`Error::Forbidden`] when `actor` may not use the cart;
    /// [`Error::NotFound`] for an unknown cart or line; [`Error::CartNotActive`]
    /// once it is checked out; [`Error::Invalid`] or [`Error::LimitExceeded`] for
    /// bad input, naming it; [`Error::Conflict`] when concurrent changes keep
    /// winning; [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all, fields(cart_id = %cart))]
    pub async fn set_email(&self, actor: &Actor, cart: CartId, email: &str) -> Result<Cart> {
        let email = Email::new(email)?;
        self.modify_cart(actor, cart, |c| c.set_email(email.clone()))
            .await
    }

    /// Sets the shipping address.
    ///
    /// # Errors
    /// [`Error::Forbidden`] when `actor` may not use the cart;
    /// [`Error::NotFound`] for an unknown cart or line; [`Error::CartNotActive`]
    /// once it is checked out; [`Error::Invalid`] or [`Error::LimitExceeded`] for
    /// bad input, naming it; [`Error::Conflict`] when concurrent changes keep
    /// winning; [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all, fields(cart_id = %cart))]
    pub async fn set_shipping_address(
        &self,
        actor: &Actor,
        cart: CartId,
        address: NewAddress,
    ) -> Result<Cart> {
        let address = Address::new(address)?;
        self.modify_cart(actor, cart, |c| c.set_shipping_address(address.clone()))
            .await
    }

    /// Sets the billing address.
    ///
    /// # Errors
    /// [`Error::Forbidden`] when `actor` may not use the cart;
    /// [`Error::NotFound`] for an unknown cart or line; [`Error::CartNotActive`]
    /// once it is checked out; [`Error::Invalid`] or [`Error::LimitExceeded`] for
    /// bad input, naming it; [`Error::Conflict`] when concurrent changes keep
    /// winning; [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all, fields(cart_id = %cart))]
    pub async fn set_billing_address(
        &self,
        actor: &Actor,
        cart: CartId,
        address: NewAddress,
    ) -> Result<Cart> {
        let address = Address::new(address)?;
        self.modify_cart(actor, cart, |c| c.set_billing_address(address.clone()))
            .await
    }

    /// Chooses a shipping method by code.
    ///
    /// # Errors
    /// [`Error::Forbidden`] when `actor` may not use the cart;
    /// [`Error::NotFound`] for an unknown cart or line; [`Error::CartNotActive`]
    /// once it is checked out; [`Error::Invalid`] or [`Error::LimitExceeded`] for
    /// bad input, naming it; [`Error::Conflict`] when concurrent changes keep
    /// winning; [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all, fields(cart_id = %cart))]
    pub async fn set_shipping_method(
        &self,
        actor: &Actor,
        cart: CartId,
        code: &str,
    ) -> Result<Cart> {
        self.modify_cart(actor, cart, |c| c.set_shipping_method(code))
            .await
    }

    /// Ships some of the cart's lines apart, as the group `name`, by
    /// `method` (see [`Cart::set_shipping_group`]): each group is priced as
    /// a shipment of its own and may be the target of shipping promotions.
    ///
    /// # Errors
    /// [`Error::Forbidden`] when `actor` may not use the cart;
    /// [`Error::NotFound`] for an unknown cart or line; [`Error::CartNotActive`]
    /// once it is checked out; [`Error::Invalid`] or [`Error::LimitExceeded`] for
    /// bad input, naming it; [`Error::Conflict`] when concurrent changes keep
    /// winning; [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all, fields(cart_id = %cart))]
    pub async fn set_shipping_group(
        &self,
        actor: &Actor,
        cart: CartId,
        name: &str,
        lines: &[LineId],
        method: Option<&str>,
    ) -> Result<Cart> {
        self.modify_cart(actor, cart, |c| c.set_shipping_group(name, lines, method))
            .await
    }

    /// Removes a shipping group: its lines ship with the cart's own method.
    ///
    /// # Errors
    /// [`Error::Forbidden`] when `actor` may not use the cart;
    /// [`Error::NotFound`] for an unknown cart or group; [`Error::CartNotActive`]
    /// once it is checked out; [`Error::Conflict`] when concurrent changes keep
    /// winning; [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all, fields(cart_id = %cart))]
    pub async fn remove_shipping_group(
        &self,
        actor: &Actor,
        cart: CartId,
        name: &str,
    ) -> Result<Cart> {
        self.modify_cart(actor, cart, |c| c.remove_shipping_group(name))
            .await
    }

    /// Enters a coupon code.
    ///
    /// # Errors
    /// [`Error::Forbidden`] when `actor` may not use the cart;
    /// [`Error::NotFound`] for an unknown cart or line; [`Error::CartNotActive`]
    /// once it is checked out; [`Error::Invalid`] or [`Error::LimitExceeded`] for
    /// bad input, naming it; [`Error::Conflict`] when concurrent changes keep
    /// winning; [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all, fields(cart_id = %cart))]
    pub async fn add_coupon_code(&self, actor: &Actor, cart: CartId, code: &str) -> Result<Cart> {
        let policy = self.inner.promotion_settings.codes;
        self.modify_cart(actor, cart, |c| c.add_coupon_code_with(code, &policy))
            .await
    }

    /// Removes a coupon code.
    ///
    /// # Errors
    /// [`Error::Forbidden`] when `actor` may not use the cart;
    /// [`Error::NotFound`] for an unknown cart or line; [`Error::CartNotActive`]
    /// once it is checked out; [`Error::Invalid`] or [`Error::LimitExceeded`] for
    /// bad input, naming it; [`Error::Conflict`] when concurrent changes keep
    /// winning; [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all, fields(cart_id = %cart))]
    pub async fn remove_coupon_code(
        &self,
        actor: &Actor,
        cart: CartId,
        code: &str,
    ) -> Result<Cart> {
        let policy = self.inner.promotion_settings.codes;
        self.modify_cart(actor, cart, |c| c.remove_coupon_code_with(code, &policy))
            .await
    }

    /// At login: moves a guest cart into the customer's active cart in the
    /// same currency, or gives the guest cart to the customer if they have
    /// none. Both carts change in one atomic save.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless a customer is acting; [`Error::Forbidden`]
    /// when `actor` may not use the cart; [`Error::NotFound`] for an unknown cart
    /// or line; [`Error::CartNotActive`] once it is checked out;
    /// [`Error::Invalid`] or [`Error::LimitExceeded`] for bad input, naming it;
    /// [`Error::Conflict`] when concurrent changes keep winning;
    /// [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all, fields(cart_id = %guest_cart))]
    pub async fn merge_guest_cart(&self, actor: &Actor, guest_cart: CartId) -> Result<Cart> {
        let Actor::Customer(customer) = actor else {
            return Err(Error::Forbidden);
        };
        let (customer, actor) = (*customer, actor.clone());
        for attempt in 0..self.inner.config.max_retries {
            pause_before_retry(attempt).await;
            let mut guest = self.cart(&Actor::Guest, guest_cart).await?;
            let result = match self
                .inner
                .store
                .active_cart_for(customer, guest.currency())
                .await?
            {
                // Carts of two channels are never merged: the guest's
                // becomes the customer's as it is.
                // A quote is never merged into: it changes only as staff say.
                Some(mut mine)
                    if mine.id() != guest.id()
                        && mine.channel_id() == guest.channel_id()
                        && mine.quote().is_none() =>
                {
                    mine.check_access(&actor)?;
                    mine.merge_from(&mut guest)?;
                    self.inner
                        .store
                        .save_carts(vec![mine, guest], self.now())
                        .await
                }
                _ => {
                    guest.assign_to(customer)?;
                    self.inner.store.save_carts(vec![guest], self.now()).await
                }
            };
            match result {
                Err(Error::Conflict(_)) => continue,
                Ok(mut saved) => {
                    return saved
                        .drain(..)
                        .next()
                        .ok_or_else(|| Error::Conflict("cart"));
                }
                Err(e) => return Err(e),
            }
        }
        Err(gave_up("cart"))
    }

    /// Prices a cart as it stands.
    ///
    /// # Errors
    /// [`Error::Forbidden`] when `actor` may not use the cart;
    /// [`Error::NotFound`] for an unknown cart or line; [`Error::CartNotActive`]
    /// once it is checked out; [`Error::Invalid`] or [`Error::LimitExceeded`] for
    /// bad input, naming it; [`Error::Conflict`] when concurrent changes keep
    /// winning; [`Error::Storage`] when the store fails. Pricing errors:
    /// [`Error::ShippingUnavailable`] for a method that does not serve the cart,
    /// [`Error::Overflow`] for amounts beyond range.
    #[tracing::instrument(skip_all, fields(cart_id = %cart))]
    pub async fn price_cart(&self, actor: &Actor, cart: CartId) -> Result<PricedCart> {
        let cart = self.cart(actor, cart).await?;
        self.price(&cart).await
    }

    pub(crate) async fn price(&self, cart: &Cart) -> Result<PricedCart> {
        Ok(self.price_with_catalog(cart).await?.cart)
    }

    /// Prices a cart with only some automatic promotions: none (codes
    /// only) or a listed set ([`AutomaticPromotions`](crate::pricing::AutomaticPromotions));
    /// for "what would this cart cost with only these offers". Checkout
    /// always prices with every automatic promotion. Access as
    /// [`Engine::price_cart`].
    ///
    /// # Errors
    /// As [`Engine::price_cart`]; [`Error::Invalid`] for a list of more than
    /// [`MAX_VALUES`](crate::pricing::MAX_VALUES) promotions.
    #[tracing::instrument(skip_all)]
    pub async fn price_cart_with(
        &self,
        actor: &Actor,
        cart: CartId,
        automatic: &crate::pricing::AutomaticPromotions,
    ) -> Result<PricedCart> {
        if let crate::pricing::AutomaticPromotions::Only { ids } = automatic
            && ids.len() > crate::pricing::MAX_VALUES
        {
            return Err(Error::invalid(
                "automatic promotions",
                format!(
                    "{} listed, at most {}",
                    ids.len(),
                    crate::pricing::MAX_VALUES
                ),
            ));
        }
        let cart = self.cart(actor, cart).await?;
        Ok(self.price_with_catalog_as(&cart, automatic).await?.cart)
    }

    /// Which promotions the cart qualifies for — window, currency, limits
    /// (with today's usage) and conditions — and, for each that does not,
    /// why; whether or not stacking would then let it apply. The answer
    /// lists no amounts. Access as [`Engine::price_cart`].
    ///
    /// # Errors
    /// As [`Engine::price_cart`].
    #[tracing::instrument(skip_all)]
    pub async fn eligible_promotions(
        &self,
        actor: &Actor,
        cart: CartId,
    ) -> Result<Vec<crate::pricing::Eligibility>> {
        let priced = self.price_cart(actor, cart).await?;
        Ok(crate::pricing::Eligibility::of(&priced))
    }
}
