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
    /// The catalog changed (recorded with the [`EventKind::AdminChange`]
    /// of the change that made it).
    CatalogChanged {
        /// What changed.
        change: CatalogChange,
    },
    /// A promotion, its coupons or a price list changed.
    PromotionChanged {
        /// What changed.
        change: PromotionChange,
    },
    /// Staff set or adjusted the units on hand at a location.
    StockChanged {
        /// The variant.
        variant_id: crate::id::VariantId,
        /// The location.
        location_id: crate::id::LocationId,
        /// Units on hand there now.
        on_hand: i64,
    },
    /// A variant's available units (on hand and not reserved, everywhere)
    /// fell below its low-stock threshold. Sent once per crossing.
    LowStock {
        /// The variant.
        variant_id: crate::id::VariantId,
        /// Units available when it was noticed.
        available: i64,
        /// The variant's threshold.
        threshold: u32,
    },
    /// A variant that was low on stock is back at or above its threshold.
    StockReplenished {
        /// The variant.
        variant_id: crate::id::VariantId,
        /// Units available when it was noticed.
        available: i64,
        /// The variant's threshold.
        threshold: u32,
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

/// What changed in the catalog ([`EventKind::CatalogChanged`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
#[non_exhaustive]
pub enum CatalogChange {
    /// A product was created.
    ProductCreated {
        /// The product.
        product_id: crate::id::ProductId,
    },
    /// A product was updated (its variants, prices, texts).
    ProductUpdated {
        /// The product.
        product_id: crate::id::ProductId,
    },
    /// A product's status changed (published, archived).
    ProductStatusChanged {
        /// The product.
        product_id: crate::id::ProductId,
        /// Its new status.
        status: crate::catalog::Status,
    },
    /// A product was deleted.
    ProductDeleted {
        /// The product.
        product_id: crate::id::ProductId,
    },
    /// A category was created, renamed or moved.
    CategoryChanged {
        /// The category.
        category_id: crate::id::CategoryId,
    },
    /// A category was deleted.
    CategoryDeleted {
        /// The category.
        category_id: crate::id::CategoryId,
    },
    /// A collection was created or renamed.
    CollectionChanged {
        /// The collection.
        collection_id: crate::id::CollectionId,
    },
    /// A collection was deleted.
    CollectionDeleted {
        /// The collection.
        collection_id: crate::id::CollectionId,
    },
    /// A sales channel was created or changed.
    ChannelChanged {
        /// The channel.
        channel_id: crate::id::ChannelId,
    },
}

/// What changed in promotions ([`EventKind::PromotionChanged`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
#[non_exhaustive]
pub enum PromotionChange {
    /// A promotion was created or changed (switched on or off among others).
    Saved {
        /// The promotion.
        promotion_id: crate::id::PromotionId,
        /// Whether it is on.
        enabled: bool,
    },
    /// Coupon codes were added to a promotion.
    CouponsCreated {
        /// The promotion.
        promotion_id: crate::id::PromotionId,
        /// How many.
        count: u64,
    },
    /// A price list was created or changed.
    PriceListSaved {
        /// The price list.
        price_list_id: crate::id::PriceListId,
    },
}
