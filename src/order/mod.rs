//! Orders: the frozen result of a checkout.
//!
//! An order keeps the prices, adjustments, tax, shipping and totals exactly as
//! they were priced at checkout ([`PricedCart`]), with the addresses and the
//! customer. Nothing recomputes them later.
//!
//! After placement an order moves through its [`OrderStatus`] and its
//! payment's [`PaymentStatus`](crate::payment::PaymentStatus); every change is
//! a pure method here that also appends a [`HistoryEntry`] (when, who, what),
//! and the store saves the result with a version check in one atomic command
//! ([`OrderStore::save_order`](crate::store::OrderStore::save_order)).
//!
//! Architecture invariant: plain data and pure transitions; nothing here
//! talks to a store or a provider.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::actor::Actor;
use crate::customer::{Address, Email};
use crate::error::{Error, Result};
use crate::id::{CartId, CustomerId, IdempotencyKey, OrderId, ReservationId};
use crate::money::Money;
use crate::payment::Payment;
use crate::pricing::PricedCart;
use crate::validate::optional_text;

/// Longest cancellation reason or history note, in characters.
pub const MAX_NOTE_LEN: usize = 2_000;

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OrderStatus {
    /// Placed and paid for (authorized or captured); not yet handled.
    Placed,
    /// Being handled: payment collected or goods on their way.
    Processing,
    /// Everything done.
    Completed,
    /// Called off before anything shipped; payment voided or refunded.
    Cancelled,
}

impl OrderStatus {
    /// Whether the state machine allows `self → to`.
    pub fn can_become(self, to: OrderStatus) -> bool {
        use OrderStatus::*;
        matches!(
            (self, to),
            (Placed, Processing | Completed | Cancelled) | (Processing, Completed | Cancelled)
        )
    }

    /// `self → to`, or [`Error::IllegalTransition`].
    pub fn transition(self, to: OrderStatus) -> Result<OrderStatus> {
        if self.can_become(to) {
            Ok(to)
        } else {
            Err(Error::IllegalTransition {
                entity: "order",
                from: format!("{self:?}"),
                to: format!("{to:?}"),
            })
        }
    }
}

/// What happened to an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
#[non_exhaustive]
pub enum OrderChangeKind {
    /// The order was placed.
    Placed {
        /// Its total.
        total: Money,
    },
    /// Payment was collected.
    PaymentCaptured {
        /// How much.
        amount: Money,
    },
    /// Collected payment was returned.
    PaymentRefunded {
        /// How much.
        amount: Money,
    },
    /// The payment hold was released.
    PaymentVoided,
    /// The order moved to another status.
    StatusChanged {
        /// From.
        from: OrderStatus,
        /// To.
        to: OrderStatus,
    },
}

/// One line of an order's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// When.
    pub at: DateTime<Utc>,
    /// Who.
    pub actor: Actor,
    /// What.
    pub change: OrderChangeKind,
    /// Why, in words (may be empty).
    pub cause: String,
}

/// A placed order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub(crate) id: OrderId,
    pub(crate) checkout_key: IdempotencyKey,
    pub(crate) cart_id: CartId,
    pub(crate) customer_id: Option<CustomerId>,
    pub(crate) email: Option<Email>,
    pub(crate) pricing: PricedCart,
    pub(crate) shipping_address: Option<Address>,
    pub(crate) billing_address: Option<Address>,
    pub(crate) payment: Payment,
    pub(crate) reservation_id: ReservationId,
    pub(crate) status: OrderStatus,
    pub(crate) placed_at: DateTime<Utc>,
    pub(crate) history: Vec<HistoryEntry>,
    pub(crate) version: u64,
}

impl Order {
    /// Its id.
    pub fn id(&self) -> OrderId {
        self.id
    }
    /// The idempotency key of the checkout that placed it.
    pub fn checkout_key(&self) -> &IdempotencyKey {
        &self.checkout_key
    }
    /// The cart it came from.
    pub fn cart_id(&self) -> CartId {
        self.cart_id
    }
    /// The customer, if it was not a guest checkout.
    pub fn customer_id(&self) -> Option<CustomerId> {
        self.customer_id
    }
    /// The contact email.
    pub fn email(&self) -> Option<&Email> {
        self.email.as_ref()
    }
    /// The frozen pricing: lines, adjustments, tax, shipping and totals.
    pub fn pricing(&self) -> &PricedCart {
        &self.pricing
    }
    /// The grand total charged.
    pub fn total(&self) -> Money {
        self.pricing.total
    }
    /// Where it ships.
    pub fn shipping_address(&self) -> Option<&Address> {
        self.shipping_address.as_ref()
    }
    /// Where it is billed.
    pub fn billing_address(&self) -> Option<&Address> {
        self.billing_address.as_ref()
    }
    /// The payment.
    pub fn payment(&self) -> &Payment {
        &self.payment
    }
    /// The stock reservation allocated to it.
    pub fn reservation_id(&self) -> ReservationId {
        self.reservation_id
    }
    /// Where it is in its life.
    pub fn status(&self) -> OrderStatus {
        self.status
    }
    /// When it was placed.
    pub fn placed_at(&self) -> DateTime<Utc> {
        self.placed_at
    }
    /// Everything that happened to it, oldest first.
    pub fn history(&self) -> &[HistoryEntry] {
        &self.history
    }
    /// Bumped by the store on every save; used to detect concurrent changes.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// For storage adapters: records a successful save.
    pub fn saved(&mut self) -> Result<()> {
        self.version = self
            .version
            .checked_add(1)
            .ok_or(Error::Overflow("order version"))?;
        Ok(())
    }

    fn record(&mut self, at: DateTime<Utc>, actor: &Actor, change: OrderChangeKind, cause: &str) {
        self.history.push(HistoryEntry {
            at,
            actor: actor.clone(),
            change,
            cause: cause.to_owned(),
        });
    }

    fn move_to(
        &mut self,
        to: OrderStatus,
        at: DateTime<Utc>,
        actor: &Actor,
        cause: &str,
    ) -> Result<()> {
        let from = self.status;
        self.status = from.transition(to)?;
        self.record(
            at,
            actor,
            OrderChangeKind::StatusChanged { from, to },
            cause,
        );
        Ok(())
    }

    fn ensure_open(&self) -> Result<()> {
        match self.status {
            OrderStatus::Placed | OrderStatus::Processing => Ok(()),
            other => Err(Error::IllegalTransition {
                entity: "order",
                from: format!("{other:?}"),
                to: "a further change".into(),
            }),
        }
    }

    pub(crate) fn record_placed(&mut self, at: DateTime<Utc>, actor: &Actor) {
        let total = self.total();
        self.record(at, actor, OrderChangeKind::Placed { total }, "");
    }

    /// Records a capture made at the provider under `key`.
    pub(crate) fn capture(
        &mut self,
        key: &str,
        amount: Money,
        at: DateTime<Utc>,
        actor: &Actor,
    ) -> Result<()> {
        self.ensure_open()?;
        self.payment.record_capture(key, amount)?;
        self.record(at, actor, OrderChangeKind::PaymentCaptured { amount }, "");
        if self.status == OrderStatus::Placed {
            self.move_to(OrderStatus::Processing, at, actor, "payment captured")?;
        }
        Ok(())
    }

    /// Cancels the order, recording the refund or void made at the provider.
    pub(crate) fn cancel(
        &mut self,
        reason: &str,
        refund: Option<(&str, Money)>,
        void_key: Option<&str>,
        at: DateTime<Utc>,
        actor: &Actor,
    ) -> Result<()> {
        let reason = optional_text("cancellation reason", reason, MAX_NOTE_LEN)?;
        self.ensure_open()?;
        if let Some((key, amount)) = refund {
            self.payment.record_refund(key, amount)?;
            self.record(
                at,
                actor,
                OrderChangeKind::PaymentRefunded { amount },
                &reason,
            );
        }
        if let Some(key) = void_key {
            self.payment.record_void(key)?;
            self.record(at, actor, OrderChangeKind::PaymentVoided, &reason);
        }
        self.move_to(OrderStatus::Cancelled, at, actor, &reason)
    }
}

/// A change to an order and what must happen with it, saved atomically by
/// [`OrderStore::save_order`](crate::store::OrderStore::save_order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderChange {
    /// The order as it should be; its version must still be the stored one.
    pub order: Order,
    /// Give back the order's stock reservation and its usage claims.
    pub release_reservation: bool,
    /// Events to record with the change.
    pub events: Vec<crate::store::EventKind>,
}
