//! Orders: the frozen result of a checkout.
//!
//! An order keeps the prices, adjustments, tax, shipping and totals exactly as
//! they were priced at checkout ([`PricedCart`]), with the addresses and the
//! customer. Nothing recomputes them later.
//!
//! Architecture invariant: plain data; the store changes an order only
//! through its atomic commands.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::customer::{Address, Email};
use crate::id::{CartId, CustomerId, IdempotencyKey, OrderId, ReservationId};
use crate::money::Money;
use crate::payment::Payment;
use crate::pricing::PricedCart;

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OrderStatus {
    /// Placed and paid for (authorized or captured); not yet handled.
    Placed,
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
}
