//! The engine's promotion, coupon and price-list use cases, and how it
//! gathers a [`PricingContext`](crate::pricing::PricingContext).
//!
//! Promotions and price lists are compiled into a [`PromotionSet`] and a
//! [`PriceBook`] once and cached; the cache is keyed by the store's pricing
//! version, so an engine sees a change made through another engine on the
//! same database at its next pricing.
//!
//! Does not know: pricing arithmetic (that is `pricing`) or SQL (the store).

use std::collections::HashMap;
use std::sync::Arc;

use crate::actor::Actor;
use crate::cart::Cart;
use crate::catalog::CatalogEntry;
use crate::customer::Email;
use crate::engine::{Engine, gave_up};
use crate::error::{Error, Result};
use crate::id::{PromotionId, VariantId};
use crate::pricing::{
    self, AutomaticPromotions, Coupon, CustomerFacts, MAX_USAGE_PASSES, PriceBook, PriceList,
    PricedCart, PricingContext, Promotion, PromotionSet, generate_codes,
};

/// A priced cart with what it was priced from, for checkout.
pub(crate) struct Priced {
    /// The result.
    pub(crate) cart: PricedCart,
    /// The catalog entries, gifts included.
    pub(crate) catalog: HashMap<VariantId, CatalogEntry>,
    /// The buyer's email: the cart's, else the signed-in customer's.
    pub(crate) email: Option<Email>,
    /// The cart's sales channel, if it is in one.
    pub(crate) channel: Option<crate::channel::SalesChannel>,
    /// The tax request priced with (a tax service's), if any.
    pub(crate) tax_request: Option<crate::tax::TaxQuoteRequest>,
    /// Where each stock-tracked unit ships from, with a fulfilment router.
    pub(crate) fulfilment: Option<crate::inventory::FulfilmentPlan>,
}

/// Most routings of one cart's pricing: its lines, then with the gifts
/// pricing added (gifts do not depend on where units ship from, so the
/// second settles it; a third covers a router that changes its mind).
const MAX_ROUTINGS: u32 = 3;

/// A compiled snapshot of the promotions and price lists.
#[derive(Debug)]
pub(crate) struct PricingRules {
    version: u64,
    promotions: PromotionSet,
    price_book: PriceBook,
}

impl Engine {
    // ----- promotions, coupons, price lists -----------------------------

    /// Saves a new promotion (or replaces one with the same id) after
    /// checking it, including any custom rule it names against this
    /// engine's registered rules.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::Invalid`] or [`Error::LimitExceeded`] for a promotion that does
    /// not validate; [`Error::NotFound`] for a custom rule this engine has not
    /// registered; [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all)]
    pub async fn save_promotion(&self, actor: &Actor, promotion: Promotion) -> Result<Promotion> {
        actor.require(crate::actor::Permission::Promotions)?;
        // Every check compiling runs: a promotion this engine could not
        // evaluate (an unregistered rule) is refused here.
        PromotionSet::check_one(&promotion, &self.inner.rules)?;
        self.inner.store.save_promotion(promotion.clone()).await?;
        self.audit_promotion(
            actor,
            "save_promotion",
            promotion.id,
            crate::event::PromotionChange::Saved {
                promotion_id: promotion.id,
                enabled: promotion.enabled,
            },
        )
        .await;
        Ok(promotion)
    }

    /// One promotion.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::NotFound`]; [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all)]
    pub async fn promotion(&self, actor: &Actor, id: PromotionId) -> Result<Promotion> {
        actor.require(crate::actor::Permission::Promotions)?;
        self.inner.store.promotion(id).await
    }

    /// Every promotion, by id.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all)]
    pub async fn promotions(&self, actor: &Actor) -> Result<Vec<Promotion>> {
        actor.require(crate::actor::Permission::Promotions)?;
        self.inner.store.promotions().await
    }

    /// Every price list, by id.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all)]
    pub async fn price_lists(&self, actor: &Actor) -> Result<Vec<PriceList>> {
        actor.require(crate::actor::Permission::Promotions)?;
        self.inner.store.price_lists().await
    }

    /// Switches a promotion on or off.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::NotFound`]; [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all)]
    pub async fn set_promotion_enabled(
        &self,
        actor: &Actor,
        id: PromotionId,
        enabled: bool,
    ) -> Result<Promotion> {
        actor.require(crate::actor::Permission::Promotions)?;
        let mut p = self.inner.store.promotion(id).await?;
        p.enabled = enabled;
        self.save_promotion(actor, p).await
    }

    /// Adds a coupon code to a coded promotion; `max_uses` of `Some(1)`
    /// makes it single use.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::Invalid`] for a malformed code or an automatic promotion;
    /// [`Error::AlreadyExists`] for a code in use (naming it);
    /// [`Error::NotFound`] for an unknown promotion; [`Error::Storage`] when the
    /// store fails.
    #[tracing::instrument(skip_all)]
    pub async fn create_coupon(
        &self,
        actor: &Actor,
        promotion: PromotionId,
        code: &str,
        max_uses: Option<u64>,
    ) -> Result<Coupon> {
        actor.require(crate::actor::Permission::Promotions)?;
        let p = self.inner.store.promotion(promotion).await?;
        if !p.coded {
            return Err(Error::invalid(
                "coupon",
                "the promotion is automatic, not coded",
            ));
        }
        let coupon = Coupon::new_with(
            code,
            promotion,
            max_uses,
            &self.inner.promotion_settings.codes,
        )?;
        self.inner
            .store
            .insert_coupons(std::slice::from_ref(&coupon))
            .await?;
        self.audit_promotion(
            actor,
            "create_coupon",
            format!("{promotion}"),
            crate::event::PromotionChange::CouponsCreated {
                promotion_id: promotion,
                count: 1,
            },
        )
        .await;
        Ok(coupon)
    }

    /// Adds one coupon code that unlocks several coded promotions at once
    /// ("WELCOME": 10 % off and free shipping); see
    /// [`Coupon::for_promotions`]. Each promotion is then considered with
    /// the code, applied or rejected for its own reason; the code's
    /// `max_uses` counts orders.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::Invalid`] for a malformed code, no promotion, one named
    /// twice, or an automatic one; [`Error::LimitExceeded`] past
    /// [`MAX_PROMOTIONS_PER_CODE`](crate::pricing::MAX_PROMOTIONS_PER_CODE);
    /// [`Error::AlreadyExists`] for a code in use; [`Error::NotFound`] for an
    /// unknown promotion; [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all)]
    pub async fn create_coupon_for(
        &self,
        actor: &Actor,
        promotions: &[PromotionId],
        code: &str,
        max_uses: Option<u64>,
    ) -> Result<Coupon> {
        actor.require(crate::actor::Permission::Promotions)?;
        let coupon = Coupon::for_promotions(
            code,
            promotions,
            max_uses,
            &self.inner.promotion_settings.codes,
        )?;
        for id in coupon.promotions() {
            if !self.inner.store.promotion(id).await?.coded {
                return Err(Error::invalid(
                    "coupon",
                    format!("promotion {id} is automatic, not coded"),
                ));
            }
        }
        self.inner
            .store
            .insert_coupons(std::slice::from_ref(&coupon))
            .await?;
        let ids: Vec<String> = coupon.promotions().map(|p| p.to_string()).collect();
        self.audit(actor, "create_coupon", ids.join(",")).await;
        Ok(coupon)
    }

    /// Generates `count` unique, unguessable codes for a coded promotion and
    /// stores them, all or none (see [`generate_codes`]). A collision with an
    /// existing code (about 2⁻⁸⁰ per pair) is retried with fresh codes.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::Invalid`] or [`Error::LimitExceeded`] for the prefix or count, or
    /// an automatic promotion; [`Error::NotFound`] for an unknown promotion;
    /// [`Error::Conflict`] if fresh codes kept colliding; [`Error::Storage`] when
    /// the store fails.
    #[tracing::instrument(skip_all)]
    pub async fn generate_coupons(
        &self,
        actor: &Actor,
        promotion: PromotionId,
        prefix: &str,
        count: usize,
        max_uses: Option<u64>,
    ) -> Result<Vec<Coupon>> {
        actor.require(crate::actor::Permission::Promotions)?;
        let p = self.inner.store.promotion(promotion).await?;
        if !p.coded {
            return Err(Error::invalid(
                "coupon",
                "the promotion is automatic, not coded",
            ));
        }
        for _ in 0..3 {
            let coupons = generate_codes(prefix, count)?
                .into_iter()
                .map(|code| Coupon::new(&code, promotion, max_uses))
                .collect::<Result<Vec<_>>>()?;
            match self.inner.store.insert_coupons(&coupons).await {
                Ok(()) => {
                    self.audit_promotion(
                        actor,
                        "generate_coupons",
                        format!("{promotion}: {}", coupons.len()),
                        crate::event::PromotionChange::CouponsCreated {
                            promotion_id: promotion,
                            count: coupons.len() as u64,
                        },
                    )
                    .await;
                    return Ok(coupons);
                }
                Err(Error::AlreadyExists { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(gave_up("coupon codes"))
    }

    /// Saves a price list (new, or replacing one with the same id).
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::Invalid`] or [`Error::LimitExceeded`] for a list that does not
    /// validate; [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all)]
    pub async fn save_price_list(&self, actor: &Actor, list: PriceList) -> Result<PriceList> {
        actor.require(crate::actor::Permission::Promotions)?;
        list.validate()?;
        self.inner.store.save_price_list(list.clone()).await?;
        self.audit_promotion(
            actor,
            "save_price_list",
            list.id,
            crate::event::PromotionChange::PriceListSaved {
                price_list_id: list.id,
            },
        )
        .await;
        Ok(list)
    }

    /// The compiled promotions and price lists for the store's pricing
    /// `version` (read by the caller): from the cache, or recompiled when
    /// the cache holds another version.
    async fn pricing_rules_at(&self, version: u64) -> Result<Arc<PricingRules>> {
        if let Some(cached) = self.cached_rules()?
            && cached.version == version
        {
            return Ok(cached);
        }
        let promotions = self.inner.store.promotions().await?;
        let lists = self.inner.store.price_lists().await?;
        // Data read after the version can only be newer; the next pricing
        // then sees a higher version and compiles again.
        let rules = Arc::new(PricingRules {
            version,
            promotions: PromotionSet::new(
                promotions,
                self.inner.rules.clone(),
                self.inner.promotion_settings,
            )?,
            price_book: PriceBook::new(lists)?,
        });
        for (id, name, reason) in rules.promotions.unusable() {
            tracing::warn!(promotion_id = %id, %name, %reason, "promotion left out of pricing");
        }
        *self.inner.pricing_cache.lock() = Some(Arc::clone(&rules));
        Ok(rules)
    }

    fn cached_rules(&self) -> Result<Option<Arc<PricingRules>>> {
        Ok(self.inner.pricing_cache.lock().clone())
    }

    /// Prices a cart and hands back what it was priced from (the catalog
    /// entries, gifts included, and the buyer's email), so callers need not
    /// fetch them again.
    ///
    /// One store call reads the entries, the coupons and the pricing
    /// version; promotions are recompiled only when the version moved.
    /// Limited promotions are first priced as if available; if the claims
    /// of the result exceed what is left of a counter, pricing runs again
    /// knowing the usage (at most [`MAX_USAGE_PASSES`] times), so a used-up
    /// promotion is reported as such rather than failing the checkout.
    pub(crate) async fn price_with_catalog(&self, cart: &Cart) -> Result<Priced> {
        self.price_with_catalog_as(cart, &AutomaticPromotions::All)
            .await
    }

    /// As [`Self::price_with_catalog`], with only the automatic promotions
    /// `automatic` allows.
    pub(crate) async fn price_with_catalog_as(
        &self,
        cart: &Cart,
        automatic: &AutomaticPromotions,
    ) -> Result<Priced> {
        let ids = self.pricing_ids(cart)?;
        let inputs = self
            .inner
            .store
            .pricing_inputs(&ids, cart.coupon_codes())
            .await?;
        Box::pin(self.price_with_inputs(cart, &ids, inputs, automatic)).await
    }

    /// Loads a cart for `actor`, checks it with `check` and prices it,
    /// reading the cart and its pricing inputs in one store call
    /// ([`PromotionStore::cart_for_pricing`](crate::store::PromotionStore::cart_for_pricing)).
    pub(crate) async fn cart_and_price(
        &self,
        actor: &Actor,
        id: crate::id::CartId,
        check: impl Fn(&Cart) -> Result<()>,
    ) -> Result<(Cart, Priced)> {
        let gifts = match self.cached_rules()? {
            Some(cached) => cached.promotions.gift_variants().to_vec(),
            None => Vec::new(),
        };
        let (cart, inputs) = self.inner.store.cart_for_pricing(id, &gifts).await?;
        cart.check_access(actor)?;
        check(&cart)?;
        let ids = self.pricing_ids(&cart)?;
        let priced =
            Box::pin(self.price_with_inputs(&cart, &ids, inputs, &AutomaticPromotions::All))
                .await?;
        Ok((cart, priced))
    }

    /// The variants pricing `cart` needs: its lines' and the cached
    /// promotions' gifts, sorted.
    fn pricing_ids(&self, cart: &Cart) -> Result<Vec<VariantId>> {
        let mut ids: Vec<VariantId> = cart.lines().iter().map(|l| l.variant_id).collect();
        if let Some(cached) = self.cached_rules()? {
            ids.extend_from_slice(cached.promotions.gift_variants());
        }
        ids.sort_unstable();
        ids.dedup();
        Ok(ids)
    }

    /// Prices `cart` with the inputs read for the variants `ids`.
    ///
    /// With a fulfilment router, the cart's units are routed first; when
    /// pricing adds units (a promotion's gifts) they are routed again and
    /// the cart priced again, at most [`MAX_ROUTINGS`] times in all.
    async fn price_with_inputs(
        &self,
        cart: &Cart,
        ids: &[VariantId],
        inputs: crate::store::PricingInputs,
        automatic: &AutomaticPromotions,
    ) -> Result<Priced> {
        let store = &self.inner.store;
        let rules = self.pricing_rules_at(inputs.version).await?;
        let mut catalog = inputs.entries;
        let coupons = inputs.coupons;
        // A recompiled set may name gifts not fetched above.
        let missing: Vec<VariantId> = rules
            .promotions
            .gift_variants()
            .iter()
            .filter(|v| !ids.contains(v))
            .copied()
            .collect();
        if !missing.is_empty() {
            catalog.extend(store.entries(&missing).await?);
        }
        // In a sales channel, every line must be one of its products.
        let channel = match cart.channel_id() {
            Some(id) => Some(store.channel(id).await?),
            None => None,
        };
        if let Some(channel) = &channel {
            for line in cart.lines() {
                if let Some(entry) = catalog.get(&line.variant_id) {
                    channel.ensure_sells(entry.variant.product_id())?;
                }
            }
        }
        let mut email = cart.email().cloned();
        let mut tax_customer = crate::tax::TaxCustomer::default();
        let mut customer = match cart.customer_id() {
            Some(id) => {
                let c = store.customer(id).await?;
                tax_customer = crate::tax::TaxCustomer::of(&c);
                // Limits count a signed-in buyer by the account's email,
                // whatever email the cart carries.
                let facts = CustomerFacts {
                    id: Some(id),
                    email: Some(c.email().as_str().to_owned()),
                    groups: c.groups().clone(),
                    orders_placed: c.orders_placed(),
                };
                email.get_or_insert_with(|| c.email().clone());
                facts
            }
            None => CustomerFacts {
                email: email.as_ref().map(|e| e.as_str().to_owned()),
                ..CustomerFacts::default()
            },
        };
        // "Order number" conditions count earlier orders by the account
        // *and* by email: a guest (or a customer checking out as a guest)
        // with the same email is not new each time. Asked only when a
        // promotion needs it.
        if rules.promotions.counts_orders() {
            // The account's email for a signed-in buyer, else the cart's.
            let by = match &customer.email {
                Some(e) => crate::customer::Email::new(e).ok(),
                None => None,
            };
            let n = store.orders_placed_by(customer.id, by.as_ref()).await?;
            customer.orders_placed = u32::try_from(n)
                .unwrap_or(u32::MAX)
                .max(customer.orders_placed);
        }
        let mut usage: HashMap<String, u64> = HashMap::new();
        let mut passes = 0;
        let now = self.now();
        // Routed before pricing, so each origin is priced as its parcel;
        // routed again when pricing added units (gifts).
        let destination = cart.shipping_address();
        let mut routed = crate::engine::routing::tracked_units(
            cart.lines().iter().map(|l| (l.variant_id, l.quantity)),
            &catalog,
        );
        let mut plan = Box::pin(self.route_units(&routed, channel.as_ref(), destination)).await?;
        let mut routings = 1;
        loop {
            // Tax sees the origin when every routed unit leaves one place.
            let ship_from = match plan.as_ref().map(|p| p.origins.as_slice()) {
                Some([only]) => only.address().or(self.inner.ship_from.as_ref()),
                _ => self.inner.ship_from.as_ref(),
            };
            let price = |tax: &dyn crate::tax::TaxCalculator,
                         rates: &dyn crate::shipping::ShippingRates| {
                let mut ctx = PricingContext::new(&catalog, rates, tax, now);
                ctx.promotions = &rules.promotions;
                ctx.price_book = &rules.price_book;
                ctx.customer = &customer;
                ctx.coupons = &coupons;
                ctx.usage = &usage;
                ctx.automatic = automatic;
                ctx.channel = channel.as_ref();
                ctx.tax_customer = Some(&tax_customer);
                ctx.ship_from = ship_from;
                ctx.fulfilment = plan.as_ref();
                let started = std::time::Instant::now();
                let priced = pricing::price(cart, &ctx);
                crate::telemetry::pricing(started.elapsed());
                priced
            };
            let (mut priced, services) = self.with_services(price).await?;
            priced.tax_fallback = services.tax_fallback;
            priced.shipping_fallback = services.shipping_fallback;
            if self.inner.router.is_some() && routings < MAX_ROUTINGS {
                let units = crate::engine::routing::tracked_units(
                    priced.lines.iter().map(|l| (l.variant_id, l.quantity)),
                    &catalog,
                );
                if !crate::engine::routing::same_units(&routed, &units) {
                    routed = units;
                    plan =
                        Box::pin(self.route_units(&routed, channel.as_ref(), destination)).await?;
                    routings += 1;
                    continue;
                }
            }
            passes += 1;
            let mut exceeded = false;
            for claim in &priced.usage_claims {
                if !usage.contains_key(&claim.counter) {
                    let used = store.usage(&claim.counter).await?;
                    usage.insert(claim.counter.clone(), used);
                }
                let used = usage.get(&claim.counter).copied().unwrap_or(0);
                // Over the limit: price again knowing the usage (a used-up
                // promotion is then rejected, a budget caps its discount).
                if used.saturating_add(claim.amount) > claim.limit {
                    exceeded = true;
                }
            }
            if !exceeded || passes >= MAX_USAGE_PASSES {
                return Ok(Priced {
                    cart: priced,
                    catalog,
                    email,
                    channel,
                    tax_request: services.tax_request,
                    fulfilment: plan,
                });
            }
        }
    }
}
