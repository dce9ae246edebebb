//! Draft orders and quotes: a cart staff build for a customer (custom
//! prices with their reasons, any promotion codes), then send as a quote
//! with an expiry and a payment link token. The customer pays it through
//! the normal checkout, with payment sessions and 3-D Secure as any cart.
//!
//! A quote holds its prices, not stock: stock is reserved when it is paid,
//! as for any checkout (a quote for goods that sold out meanwhile cannot be
//! paid). While it is a draft only staff see and change it; once sent
//! nobody changes it (staff withdraw it to edit it again), and it is paid
//! only before it expires and only at the total it was sent with.
//!
//! Does not know: prices or payments: the engine prices the cart and
//! checks the total at checkout.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Cart, CartStatus};
use crate::actor::{AccessToken, Actor};
use crate::error::{Error, Result};
use crate::money::Money;

/// Longest quote note, in characters.
pub const MAX_QUOTE_NOTE_LEN: usize = 2_000;

/// Where a quote is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum QuoteStatus {
    /// Staff are building it; the customer does not see it.
    Draft,
    /// Sent: the customer may pay it until it expires.
    Sent,
    /// Sent, and its time ran out: it can no longer be paid.
    Expired,
    /// Paid: its cart became an order.
    Accepted,
}

/// The quote terms on a cart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Quote {
    /// Who made it.
    pub created_by: Actor,
    /// When.
    pub created_at: DateTime<Utc>,
    /// A note for the customer (may be empty).
    pub note: String,
    /// When it was sent (`None` while a draft).
    pub sent_at: Option<DateTime<Utc>>,
    /// Until when it may be paid (set when sent).
    pub expires_at: Option<DateTime<Utc>>,
    /// The total it was sent with: the total it is paid at.
    pub total: Option<Money>,
    /// SHA-256 of the payment link token, hex (set when sent).
    #[serde(default)]
    pub token_hash: Option<String>,
}

impl Cart {
    /// The quote terms, for a draft order or quote.
    pub fn quote(&self) -> Option<&Quote> {
        self.quote.as_ref()
    }

    /// Where its quote is at `now` (`None` for an ordinary cart).
    pub fn quote_status(&self, now: DateTime<Utc>) -> Option<QuoteStatus> {
        let q = self.quote.as_ref()?;
        Some(match (self.status, q.sent_at, q.expires_at) {
            (CartStatus::Completed { .. }, _, _) => QuoteStatus::Accepted,
            (_, None, _) => QuoteStatus::Draft,
            (_, Some(_), Some(until)) if now > until => QuoteStatus::Expired,
            _ => QuoteStatus::Sent,
        })
    }

    /// Makes the cart a draft order.
    pub(crate) fn make_draft(&mut self, actor: &Actor, note: String, now: DateTime<Utc>) {
        self.quote = Some(Quote {
            created_by: actor.clone(),
            created_at: now,
            note,
            sent_at: None,
            expires_at: None,
            total: None,
            token_hash: None,
        });
    }

    /// Sends the draft: it may be paid by `token`'s holder (or its
    /// customer) at `total` until `expires_at`.
    pub(crate) fn send_quote(
        &mut self,
        total: Money,
        token: &AccessToken,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.ensure_active()?;
        if expires_at <= now {
            return Err(Error::invalid(
                "quote expiry",
                format!("{expires_at} is not in the future"),
            ));
        }
        let q = self.quote_mut()?;
        if q.sent_at.is_some() {
            return Err(Error::IllegalTransition {
                entity: "quote",
                from: "Sent".into(),
                to: "Sent".into(),
            });
        }
        q.sent_at = Some(now);
        q.expires_at = Some(expires_at);
        q.total = Some(total);
        q.token_hash = Some(token.hash());
        Ok(())
    }

    /// Takes a sent quote back to a draft (its link stops working).
    pub(crate) fn withdraw_quote(&mut self) -> Result<()> {
        self.ensure_active()?;
        let q = self.quote_mut()?;
        q.sent_at = None;
        q.expires_at = None;
        q.total = None;
        q.token_hash = None;
        Ok(())
    }

    fn quote_mut(&mut self) -> Result<&mut Quote> {
        self.quote
            .as_mut()
            .ok_or_else(|| Error::invalid("quote", "this cart is not a draft order"))
    }

    /// Whether `actor` may see and pay this quote: staff always; once sent,
    /// its customer and the holder of its payment link token.
    pub(crate) fn quote_allows(&self, actor: &Actor) -> bool {
        let Some(q) = &self.quote else {
            return true;
        };
        if actor.allows(crate::actor::Permission::Orders) {
            return true;
        }
        if q.sent_at.is_none() {
            return false;
        }
        match actor {
            Actor::Customer(me) => self.customer_id == Some(*me),
            Actor::GuestWithToken(token) => q
                .token_hash
                .as_deref()
                .is_some_and(|h| token.matches_hash(h)),
            _ => false,
        }
    }

    /// Refuses any change to a sent quote (staff withdraw it first).
    ///
    /// # Errors
    /// [`Error::IllegalTransition`] for a sent quote.
    pub fn ensure_editable(&self) -> Result<()> {
        match &self.quote {
            Some(q) if q.sent_at.is_some() => Err(Error::IllegalTransition {
                entity: "quote",
                from: "Sent".into(),
                to: "a change (withdraw it first)".into(),
            }),
            _ => Ok(()),
        }
    }

    /// Checks a quote may be paid at `now` at `total` (nothing for an
    /// ordinary cart): a draft only by staff, a sent one before it
    /// expires and at the total it was sent with.
    ///
    /// # Errors
    /// [`Error::IllegalTransition`] for an expired quote or a draft paid by
    /// anyone but staff; [`Error::PriceChanged`] when it prices differently
    /// from the total sent.
    pub fn check_quote_payable(
        &self,
        actor: &Actor,
        total: Money,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let Some(q) = &self.quote else {
            return Ok(());
        };
        match self.quote_status(now) {
            Some(QuoteStatus::Draft) if actor.allows(crate::actor::Permission::Orders) => Ok(()),
            Some(QuoteStatus::Sent) => match q.total {
                Some(sent) if sent == total => Ok(()),
                Some(sent) => Err(Error::PriceChanged {
                    expected: sent,
                    actual: total,
                }),
                None => Ok(()),
            },
            other => Err(Error::IllegalTransition {
                entity: "quote",
                from: format!("{other:?}"),
                to: "paid".into(),
            }),
        }
    }
}
