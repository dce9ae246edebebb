//! Events: what happened, recorded in the same atomic command as the change
//! that made it happen (a transactional outbox), and delivered to consumers
//! by the store's relay ([`EventStore`](crate::store::EventStore)).
//!
//! Architecture invariant: plain data; the domain produces events, the store
//! records and relays them, nothing here knows either.
//!
//! Does not know: how events are stored or delivered (the store's outbox and
//! the engine's relay do that).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::id::{EventId, OrderId};
use crate::money::Money;

/// Something that happened, recorded in the same atomic command as the change
/// (a transactional outbox).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Event {
    /// Unique; consumers use it to drop duplicates.
    pub id: EventId,
    /// Unique and increasing within one atomic command. Delivery follows
    /// commit order, which across concurrent commands may differ from
    /// sequence order.
    pub sequence: u64,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// What happened.
    pub kind: EventKind,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
#[non_exhaustive]
pub enum EventKind {
    /// An order was placed.
    OrderPlaced {
        /// The order.
        order_id: OrderId,
        /// Its total.
        total: Money,
    },
    /// Payment for an order was captured.
    PaymentCaptured {
        /// The order.
        order_id: OrderId,
        /// Amount captured.
        amount: Money,
    },
    /// Captured payment was returned.
    PaymentRefunded {
        /// The order.
        order_id: OrderId,
        /// Amount refunded.
        amount: Money,
    },
    /// An order's payment hold was released.
    PaymentVoided {
        /// The order.
        order_id: OrderId,
    },
    /// Units of an order shipped.
    OrderShipped {
        /// The order.
        order_id: OrderId,
        /// The shipment.
        shipment_id: crate::id::ShipmentId,
    },
    /// A shipment arrived.
    ShipmentDelivered {
        /// The order.
        order_id: OrderId,
        /// The shipment.
        shipment_id: crate::id::ShipmentId,
    },
    /// Units of an order came back.
    ItemsReturned {
        /// The order.
        order_id: OrderId,
        /// Refunded for them.
        refund: Money,
    },
    /// An order was cancelled.
    OrderCancelled {
        /// The order.
        order_id: OrderId,
    },
    /// Something happened to a customer's account. Carries no personal
    /// data: a consumer that mails the customer ("your password was
    /// changed") reads the account by id.
    CustomerChanged {
        /// The customer.
        customer_id: crate::id::CustomerId,
        /// What happened.
        change: CustomerChange,
    },
    /// A member of staff (or the system) changed the shop: catalog, stock,
    /// locations, promotions, coupons, price lists, groups. Order changes
    /// are recorded in the order's own history instead.
    AdminChange {
        /// Who.
        actor: crate::actor::Actor,
        /// What was done (`set_stock`, `save_promotion`, ...).
        action: String,
        /// What it was done to (ids, and the new value where short).
        subject: String,
    },
}

/// What happened to a customer's account ([`EventKind::CustomerChanged`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CustomerChange {
    /// An account was opened (or a guest's record became one).
    Registered,
    /// The password was changed with the current one.
    PasswordChanged,
    /// The password was reset with a token.
    PasswordReset,
    /// The email was verified with a token.
    EmailVerified,
    /// A new email was confirmed and replaced the old one.
    EmailChanged,
    /// The name or phone changed.
    ProfileUpdated,
    /// The customer was erased on request.
    Erased,
}
