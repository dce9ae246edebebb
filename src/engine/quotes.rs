//! Draft orders and quotes: staff build a cart for a customer, price it
//! with the engine, and send it as a quote with an expiry and a payment
//! link token; the customer pays it through the normal checkout. See
//! [`Quote`](crate::cart::Quote) for the rules.

use chrono::{DateTime, Utc};

use crate::actor::{AccessToken, Actor};
use crate::cart::{Cart, MAX_QUOTE_NOTE_LEN, QuoteStatus};
use crate::engine::{Engine, gave_up, pause_before_retry};
use crate::error::{Error, Result};
use crate::id::{CartId, ChannelId, CustomerId};
use crate::money::Currency;
use crate::pricing::PricedCart;
use crate::validate::optional_text;

/// A draft order to start.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewDraftOrder {
    /// Its currency.
    pub currency: Currency,
    /// The customer it is for (`None`: a guest, reached by the payment link).
    pub customer: Option<CustomerId>,
    /// The sales channel it is sold in, if any.
    pub channel: Option<ChannelId>,
    /// A note for the customer, at most [`MAX_QUOTE_NOTE_LEN`] characters.
    pub note: String,
}

impl NewDraftOrder {
    /// A draft order in `currency` for a guest, in no channel.
    pub fn new(currency: Currency) -> Self {
        Self {
            currency,
            customer: None,
            channel: None,
            note: String::new(),
        }
    }
}

crate::domain::setters!(NewDraftOrder {} into {
    customer: Option<CustomerId>,
    channel: Option<ChannelId>,
    note: String,
});

/// A quote as sent: the cart, its prices, and the payment link token (given
/// once; the engine keeps only its hash).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SentQuote {
    /// The cart.
    pub cart: Cart,
    /// Its prices, as sent.
    pub priced: PricedCart,
    /// The payment link token: the customer pays as
    /// [`Actor::GuestWithToken`] with it (a customer's quote can also be
    /// paid by that customer logged in).
    pub token: AccessToken,
}

/// A quote as its customer sees it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct QuoteView {
    /// The cart.
    pub cart: Cart,
    /// Its prices now.
    pub priced: PricedCart,
    /// Where it is.
    pub status: QuoteStatus,
}

impl Engine {
    /// Starts a draft order (staff and the system): a cart only staff see
    /// and change, with the usual cart calls — lines at catalog prices or
    /// [custom prices](crate::cart::CustomPrice) with their reasons, codes,
    /// addresses, a shipping method.
    ///
    /// # Errors
    /// [`Error::Forbidden`]; [`Error::NotFound`] for an unknown customer or
    /// channel; [`Error::Invalid`] or [`Error::LimitExceeded`] for the note;
    /// [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all)]
    pub async fn create_draft_order(&self, actor: &Actor, draft: NewDraftOrder) -> Result<Cart> {
        actor.require(crate::actor::Permission::Orders)?;
        let note = optional_text("quote note", &draft.note, MAX_QUOTE_NOTE_LEN)?;
        if let Some(customer) = draft.customer {
            self.inner.store.customer(customer).await?;
        }
        let now = self.now();
        let mut cart = Cart::new(draft.currency, draft.customer, now);
        if let Some(channel) = draft.channel {
            let ch = self.inner.store.channel(channel).await?;
            if !ch.active || !ch.currencies.contains(&draft.currency) {
                return Err(Error::invalid(
                    "sales channel",
                    format!("{} does not sell in {}", ch.name, draft.currency),
                ));
            }
            cart = cart.in_channel(ch.id);
        }
        cart.make_draft(actor, note, now);
        self.inner.store.insert_cart(cart.clone()).await?;
        Ok(cart)
    }

    /// Sends a draft order as a quote (staff and the system): prices it,
    /// fixes that total and `expires_at`, and returns the payment link
    /// token. From then on nobody changes the cart; the customer (or
    /// whoever holds the token) pays it through the normal checkout before
    /// it expires, at that total.
    ///
    /// # Errors
    /// [`Error::Forbidden`]; [`Error::Invalid`] for an expiry not in the
    /// future or a cart that is not a draft order; [`Error::EmptyCart`];
    /// [`Error::IllegalTransition`] for a quote already sent; pricing's
    /// errors; [`Error::NotFound`]; [`Error::Storage`].
    #[tracing::instrument(skip_all, fields(cart_id = %cart_id))]
    pub async fn send_quote(
        &self,
        actor: &Actor,
        cart_id: CartId,
        expires_at: DateTime<Utc>,
    ) -> Result<SentQuote> {
        actor.require(crate::actor::Permission::Orders)?;
        let token = AccessToken::random();
        for attempt in 0..self.inner.config.max_retries {
            pause_before_retry(attempt).await;
            let (mut cart, priced) = self
                .cart_and_price(actor, cart_id, |c| {
                    c.ensure_active()?;
                    if c.lines().is_empty() {
                        return Err(Error::EmptyCart);
                    }
                    Ok(())
                })
                .await?;
            let priced = priced.cart;
            let now = self.now();
            cart.send_quote(priced.total, &token, expires_at, now)?;
            // Saved only if the cart is still the one priced.
            match self.inner.store.save_carts(vec![cart], now).await {
                Err(Error::Conflict(_)) => continue,
                Ok(mut saved) => {
                    let cart = saved.pop().ok_or(Error::Conflict("cart"))?;
                    return Ok(SentQuote {
                        cart,
                        priced,
                        token,
                    });
                }
                Err(e) => return Err(e),
            }
        }
        Err(gave_up("cart"))
    }

    /// Takes a sent quote back to a draft (staff and the system): its link
    /// stops working and staff may change it again.
    ///
    /// # Errors
    /// [`Error::Forbidden`]; [`Error::Invalid`] for a cart that is not a
    /// draft order; [`Error::CartNotActive`] once it was paid;
    /// [`Error::NotFound`]; [`Error::Storage`].
    #[tracing::instrument(skip_all, fields(cart_id = %cart_id))]
    pub async fn withdraw_quote(&self, actor: &Actor, cart_id: CartId) -> Result<Cart> {
        actor.require(crate::actor::Permission::Orders)?;
        for attempt in 0..self.inner.config.max_retries {
            pause_before_retry(attempt).await;
            let mut cart = self.cart(actor, cart_id).await?;
            cart.withdraw_quote()?;
            match self.inner.store.save_carts(vec![cart], self.now()).await {
                Err(Error::Conflict(_)) => continue,
                Ok(mut saved) => return saved.pop().ok_or(Error::Conflict("cart")),
                Err(e) => return Err(e),
            }
        }
        Err(gave_up("cart"))
    }

    /// A quote as `actor` may see it: staff always; once sent, its
    /// customer and whoever holds its payment link token
    /// ([`Actor::GuestWithToken`]).
    ///
    /// # Errors
    /// [`Error::Forbidden`] for anyone else (a draft, a wrong token);
    /// [`Error::Invalid`] for a cart that is not a quote; pricing's errors;
    /// [`Error::NotFound`]; [`Error::Storage`].
    #[tracing::instrument(skip_all, fields(cart_id = %cart_id))]
    pub async fn quote(&self, actor: &Actor, cart_id: CartId) -> Result<QuoteView> {
        let (cart, priced) = self.cart_and_price(actor, cart_id, |_| Ok(())).await?;
        let status = cart
            .quote_status(self.now())
            .ok_or_else(|| Error::invalid("quote", "this cart is not a draft order"))?;
        Ok(QuoteView {
            cart,
            priced: priced.cart,
            status,
        })
    }
}
