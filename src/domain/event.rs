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
    /// Unique (a UUID v7, so ids sort by time); consumers use it to drop
    /// duplicates.
    pub id: EventId,
    /// Unique and increasing within one atomic command. Delivery follows
    /// commit order, which across concurrent commands may differ from
    /// sequence order.
    pub sequence: u64,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// What happened.
    pub kind: EventKind,
    /// The aggregate it is about ([`EventKind::aggregate`]): `order:<id>`,
    /// `customer:<id>`, `variant:<id>`, … — the key consumers keep order
    /// by.
    #[serde(default)]
    pub aggregate: String,
    /// Its place among the aggregate's events: 1, 2, 3, … with no gap,
    /// assigned by the store in the command that records it.
    #[serde(default)]
    pub version: u64,
}

/// The JSON-schema version of every event's payload (`data` in the
/// CloudEvents envelope, and the `.v1` of each type name): additions keep
/// it, a change that would make a payload read differently bumps it.
pub const EVENT_PAYLOAD_VERSION: u32 = 1;

/// The CloudEvents `source` of the engine's events unless the shop names
/// its own.
pub const DEFAULT_EVENT_SOURCE: &str = "cartwright";

impl Event {
    /// The event as a CloudEvents 1.0 JSON object (structured mode):
    /// `specversion`, `id`, `source`, `type` ([`EventKind::type_name`]),
    /// `subject` (the aggregate), `time`, `datacontenttype`, `data` (the
    /// payload, as [`EventKind`] serializes), and the extension attributes
    /// `aggregate`, `aggregateversion` and `sequence` — and `channel`, the
    /// sales channel, for an event that names one ([`EventKind::channel`]).
    ///
    /// ```
    /// use cartwright::event::{Event, EventKind, DEFAULT_EVENT_SOURCE};
    /// use cartwright::id::{EventId, OrderId};
    /// let event = Event::new(
    ///     EventId::new(),
    ///     1,
    ///     chrono::Utc::now(),
    ///     EventKind::OrderCancelled { order_id: OrderId::new() },
    ///     1,
    /// );
    /// let ce = event.cloud_event(DEFAULT_EVENT_SOURCE);
    /// assert_eq!(ce["specversion"], "1.0");
    /// assert_eq!(ce["type"], "cartwright.order.cancelled.v1");
    /// assert_eq!(ce["aggregateversion"], 1);
    /// ```
    pub fn cloud_event(&self, source: &str) -> serde_json::Value {
        let mut envelope = serde_json::json!({
            "specversion": "1.0",
            "id": self.id.to_string(),
            "source": source,
            "type": self.kind.type_name(),
            "subject": self.aggregate,
            "time": self.occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "datacontenttype": "application/json",
            "data": &self.kind,
            "aggregate": self.aggregate,
            "aggregateversion": self.version,
            "sequence": self.sequence,
        });
        if let (Some(channel), Some(map)) = (self.kind.channel(), envelope.as_object_mut()) {
            map.insert("channel".into(), channel.to_string().into());
        }
        envelope
    }

    /// An event whose aggregate the caller derived already (from `kind`,
    /// as [`EventKind::aggregate`] does).
    pub(crate) fn with_aggregate(
        id: EventId,
        sequence: u64,
        occurred_at: DateTime<Utc>,
        kind: EventKind,
        aggregate: String,
        version: u64,
    ) -> Self {
        Self {
            id,
            sequence,
            occurred_at,
            aggregate,
            kind,
            version,
        }
    }

    /// An event as a store reads it back: its aggregate derives from
    /// `kind`, `version` is its place among the aggregate's events.
    pub fn new(
        id: EventId,
        sequence: u64,
        occurred_at: DateTime<Utc>,
        kind: EventKind,
        version: u64,
    ) -> Self {
        let aggregate = kind.aggregate();
        Self::with_aggregate(id, sequence, occurred_at, kind, aggregate, version)
    }
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", tag = "type")]
#[non_exhaustive]
pub enum EventKind {
    /// An order was placed.
    OrderPlaced {
        /// The order.
        order_id: OrderId,
        /// Its total.
        total: Money,
        /// The sales channel it was sold in, if any (also the envelope's
        /// `channel` attribute).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel_id: Option<crate::id::ChannelId>,
    },
    /// The provider holds an amount for an order, to be captured later
    /// (recorded with its [`EventKind::OrderPlaced`] under manual capture;
    /// with immediate capture, [`EventKind::PaymentCaptured`] follows the
    /// placing instead).
    PaymentAuthorized {
        /// The order.
        order_id: OrderId,
        /// Amount authorized.
        amount: Money,
    },
    /// The provider reported an order's payment failed (a capture refused,
    /// a charge reversed).
    PaymentFailed {
        /// The order.
        order_id: OrderId,
        /// The provider's reason, at most 200 characters.
        reason: String,
    },
    /// A checkout's payment waits for the customer (3-D Secure, a
    /// redirect): its cart's checkout goes on once the provider answers.
    PaymentActionRequired {
        /// The cart being checked out.
        cart_id: crate::id::CartId,
        /// Amount to be paid through the provider.
        amount: Money,
    },
    /// A gift card's or store credit's balance changed: issued, spent,
    /// given back or refunded to.
    BalanceChanged {
        /// The card (or store credit).
        card_id: crate::id::GiftCardId,
        /// Gift card or store credit.
        balance_kind: crate::giftcard::BalanceKind,
        /// Why.
        entry: crate::giftcard::EntryKind,
        /// Signed: a credit positive, a redemption negative.
        amount: Money,
        /// The balance after it.
        balance: Money,
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
    /// After-sale work on an order moved on: a return request was made,
    /// approved, rejected, received, refunded or called off.
    AfterSale {
        /// The order.
        order_id: OrderId,
        /// What happened.
        change: AfterSaleChange,
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

impl EventKind {
    /// The sales channel the event happened in, where it names one (an
    /// order placed in a channel; a channel changed).
    pub fn channel(&self) -> Option<crate::id::ChannelId> {
        match self {
            Self::OrderPlaced { channel_id, .. } => *channel_id,
            Self::CatalogChanged {
                change: CatalogChange::ChannelChanged { channel_id },
            } => Some(*channel_id),
            _ => None,
        }
    }

    /// A [`BalanceChanged`](Self::BalanceChanged) event for each of
    /// `card`'s ledger entries from the `from`-th on (0 for a new card),
    /// each with the balance after it — what a store records with the
    /// change.
    ///
    /// # Errors
    /// [`Error::Overflow`](crate::Error::Overflow) for a ledger whose
    /// running balance overflows (stored data a posted card never has).
    pub fn balance_changes(
        card: &crate::giftcard::GiftCard,
        from: usize,
    ) -> crate::error::Result<Vec<Self>> {
        let mut balance = Money::zero(card.currency());
        let mut events = Vec::new();
        for (i, entry) in card.entries().iter().enumerate() {
            balance = balance.checked_add(entry.amount)?;
            if i >= from {
                events.push(Self::BalanceChanged {
                    card_id: card.id(),
                    balance_kind: card.kind(),
                    entry: entry.kind,
                    amount: entry.amount,
                    balance,
                });
            }
        }
        Ok(events)
    }

    /// Every type name [`type_name`](Self::type_name) gives, as webhook
    /// subscriptions may name them.
    pub const TYPE_NAMES: &'static [&'static str] = &[
        "cartwright.order.placed.v1",
        "cartwright.order.payment_authorized.v1",
        "cartwright.order.payment_failed.v1",
        "cartwright.cart.payment_action_required.v1",
        "cartwright.gift_card.balance_changed.v1",
        "cartwright.order.payment_captured.v1",
        "cartwright.order.payment_refunded.v1",
        "cartwright.order.payment_voided.v1",
        "cartwright.order.shipped.v1",
        "cartwright.order.shipment_delivered.v1",
        "cartwright.order.items_returned.v1",
        "cartwright.order.after_sale.v1",
        "cartwright.order.cancelled.v1",
        "cartwright.customer.changed.v1",
        "cartwright.catalog.changed.v1",
        "cartwright.promotion.changed.v1",
        "cartwright.stock.changed.v1",
        "cartwright.stock.low.v1",
        "cartwright.stock.replenished.v1",
        "cartwright.admin.change.v1",
    ];

    /// The CloudEvents type of this event, `cartwright.<aggregate
    /// type>.<what happened>.v<payload version>`:
    ///
    /// | kind | type |
    /// |---|---|
    /// | `OrderPlaced` | `cartwright.order.placed.v1` |
    /// | `PaymentAuthorized` | `cartwright.order.payment_authorized.v1` |
    /// | `PaymentFailed` | `cartwright.order.payment_failed.v1` |
    /// | `PaymentActionRequired` | `cartwright.cart.payment_action_required.v1` |
    /// | `BalanceChanged` | `cartwright.gift_card.balance_changed.v1` |
    /// | `PaymentCaptured` | `cartwright.order.payment_captured.v1` |
    /// | `PaymentRefunded` | `cartwright.order.payment_refunded.v1` |
    /// | `PaymentVoided` | `cartwright.order.payment_voided.v1` |
    /// | `OrderShipped` | `cartwright.order.shipped.v1` |
    /// | `ShipmentDelivered` | `cartwright.order.shipment_delivered.v1` |
    /// | `ItemsReturned` | `cartwright.order.items_returned.v1` |
    /// | `AfterSale` | `cartwright.order.after_sale.v1` |
    /// | `OrderCancelled` | `cartwright.order.cancelled.v1` |
    /// | `CustomerChanged` | `cartwright.customer.changed.v1` |
    /// | `CatalogChanged` | `cartwright.catalog.changed.v1` |
    /// | `PromotionChanged` | `cartwright.promotion.changed.v1` |
    /// | `StockChanged` | `cartwright.stock.changed.v1` |
    /// | `LowStock` | `cartwright.stock.low.v1` |
    /// | `StockReplenished` | `cartwright.stock.replenished.v1` |
    /// | `AdminChange` | `cartwright.admin.change.v1` |
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::OrderPlaced { .. } => "cartwright.order.placed.v1",
            Self::PaymentAuthorized { .. } => "cartwright.order.payment_authorized.v1",
            Self::PaymentFailed { .. } => "cartwright.order.payment_failed.v1",
            Self::PaymentActionRequired { .. } => "cartwright.cart.payment_action_required.v1",
            Self::BalanceChanged { .. } => "cartwright.gift_card.balance_changed.v1",
            Self::PaymentCaptured { .. } => "cartwright.order.payment_captured.v1",
            Self::PaymentRefunded { .. } => "cartwright.order.payment_refunded.v1",
            Self::PaymentVoided { .. } => "cartwright.order.payment_voided.v1",
            Self::OrderShipped { .. } => "cartwright.order.shipped.v1",
            Self::ShipmentDelivered { .. } => "cartwright.order.shipment_delivered.v1",
            Self::ItemsReturned { .. } => "cartwright.order.items_returned.v1",
            Self::AfterSale { .. } => "cartwright.order.after_sale.v1",
            Self::OrderCancelled { .. } => "cartwright.order.cancelled.v1",
            Self::CustomerChanged { .. } => "cartwright.customer.changed.v1",
            Self::CatalogChanged { .. } => "cartwright.catalog.changed.v1",
            Self::PromotionChanged { .. } => "cartwright.promotion.changed.v1",
            Self::StockChanged { .. } => "cartwright.stock.changed.v1",
            Self::LowStock { .. } => "cartwright.stock.low.v1",
            Self::StockReplenished { .. } => "cartwright.stock.replenished.v1",
            Self::AdminChange { .. } => "cartwright.admin.change.v1",
        }
    }

    /// The aggregate this event is about — `order:<id>`, `customer:<id>`,
    /// `product:<id>`, `category:<id>`, `collection:<id>`, `channel:<id>`,
    /// `promotion:<id>`, `price_list:<id>`, `variant:<id>` (stock),
    /// `cart:<id>` (a checkout's waiting payment), `gift_card:<id>` (gift
    /// cards and store credit), or `shop` for the admin audit trail. Events of one aggregate are
    /// numbered 1, 2, 3, … ([`Event::version`]) and delivered in that order.
    /// The PostgreSQL store derives the same key in SQL
    /// (`cw_event_aggregate`, migration 0019); a test holds the two equal
    /// for every kind.
    pub fn aggregate(&self) -> String {
        match self {
            Self::OrderPlaced { order_id, .. }
            | Self::PaymentAuthorized { order_id, .. }
            | Self::PaymentFailed { order_id, .. }
            | Self::PaymentCaptured { order_id, .. }
            | Self::PaymentRefunded { order_id, .. }
            | Self::PaymentVoided { order_id }
            | Self::OrderShipped { order_id, .. }
            | Self::ShipmentDelivered { order_id, .. }
            | Self::ItemsReturned { order_id, .. }
            | Self::AfterSale { order_id, .. }
            | Self::OrderCancelled { order_id } => format!("order:{order_id}"),
            Self::CustomerChanged { customer_id, .. } => format!("customer:{customer_id}"),
            Self::PaymentActionRequired { cart_id, .. } => format!("cart:{cart_id}"),
            Self::BalanceChanged { card_id, .. } => format!("gift_card:{card_id}"),
            Self::CatalogChanged { change } => match change {
                CatalogChange::ProductCreated { product_id }
                | CatalogChange::ProductUpdated { product_id }
                | CatalogChange::ProductStatusChanged { product_id, .. }
                | CatalogChange::ProductDeleted { product_id } => format!("product:{product_id}"),
                CatalogChange::CategoryChanged { category_id }
                | CatalogChange::CategoryDeleted { category_id } => {
                    format!("category:{category_id}")
                }
                CatalogChange::CollectionChanged { collection_id }
                | CatalogChange::CollectionDeleted { collection_id } => {
                    format!("collection:{collection_id}")
                }
                CatalogChange::ChannelChanged { channel_id } => format!("channel:{channel_id}"),
            },
            Self::PromotionChanged { change } => match change {
                PromotionChange::Saved { promotion_id, .. }
                | PromotionChange::CouponsCreated { promotion_id, .. } => {
                    format!("promotion:{promotion_id}")
                }
                PromotionChange::PriceListSaved { price_list_id } => {
                    format!("price_list:{price_list_id}")
                }
            },
            Self::StockChanged { variant_id, .. }
            | Self::LowStock { variant_id, .. }
            | Self::StockReplenished { variant_id, .. } => format!("variant:{variant_id}"),
            Self::AdminChange { .. } => "shop".to_owned(),
        }
    }
}

/// The version of the event payloads' JSON Schema ([`event_json_schema`]);
/// it moves with the `.vN` of the type names.
pub const EVENT_JSON_VERSION: u32 = 1;

/// The JSON Schema (2020-12) of an event's payload — the `data` of its
/// CloudEvents envelope, a [`EventKind`] tagged by `type` — published as
/// `schemas/events.v1.schema.json` (a test holds the two equal).
pub fn event_json_schema() -> serde_json::Value {
    let mut schema = schemars::schema_for!(EventKind);
    schema.insert(
        "$id".into(),
        format!("urn:cartwright:event:v{EVENT_JSON_VERSION}").into(),
    );
    schema.into()
}

/// One event of every kind (and of every catalog and promotion change), for
/// tests of a store or a sink of one's own (feature `test-util`). A kind
/// added to [`EventKind`] does not compile until it is listed here.
#[cfg(any(test, feature = "test-util"))]
pub fn every_kind() -> Vec<EventKind> {
    use crate::id::{
        CategoryId, ChannelId, CollectionId, CustomerId, LocationId, PriceListId, ProductId,
        PromotionId, ShipmentId, VariantId,
    };
    let usd = |minor| Money::from_minor(minor, crate::money::Currency::USD);
    let order_id = OrderId::new();
    let kinds = vec![
        EventKind::OrderPlaced {
            order_id,
            total: usd(1650),
            channel_id: Some(ChannelId::new()),
        },
        EventKind::PaymentAuthorized {
            order_id,
            amount: usd(1650),
        },
        EventKind::PaymentFailed {
            order_id,
            reason: "card reported stolen".into(),
        },
        EventKind::PaymentActionRequired {
            cart_id: crate::id::CartId::new(),
            amount: usd(1650),
        },
        EventKind::BalanceChanged {
            card_id: crate::id::GiftCardId::new(),
            balance_kind: crate::giftcard::BalanceKind::StoreCredit,
            entry: crate::giftcard::EntryKind::Redeem,
            amount: usd(-500),
            balance: usd(1000),
        },
        EventKind::PaymentCaptured {
            order_id,
            amount: usd(1650),
        },
        EventKind::PaymentRefunded {
            order_id,
            amount: usd(500),
        },
        EventKind::PaymentVoided { order_id },
        EventKind::OrderShipped {
            order_id,
            shipment_id: ShipmentId::new(),
        },
        EventKind::ShipmentDelivered {
            order_id,
            shipment_id: ShipmentId::new(),
        },
        EventKind::ItemsReturned {
            order_id,
            refund: usd(500),
        },
        EventKind::AfterSale {
            order_id,
            change: AfterSaleChange::ReturnRequest {
                return_case_id: crate::id::ReturnCaseId::new(),
                state: crate::domain::after_sale::ReturnCaseState::Requested,
            },
        },
        EventKind::AfterSale {
            order_id,
            change: AfterSaleChange::LinesCancelled {
                cancellation_id: crate::id::LineCancellationId::new(),
                amount: usd(500),
            },
        },
        EventKind::AfterSale {
            order_id,
            change: AfterSaleChange::Exchanged {
                exchange_id: crate::id::ExchangeId::new(),
            },
        },
        EventKind::AfterSale {
            order_id,
            change: AfterSaleChange::OrderEdited {
                edit_id: crate::id::OrderEditId::new(),
                difference: usd(-500),
            },
        },
        EventKind::AfterSale {
            order_id,
            change: AfterSaleChange::LabelPurchased {
                shipment_id: crate::id::ShipmentId::new(),
                tracking_number: "1Z999".into(),
            },
        },
        EventKind::AfterSale {
            order_id,
            change: AfterSaleChange::ShipmentTracked {
                shipment_id: crate::id::ShipmentId::new(),
                status: "in_transit".into(),
            },
        },
        EventKind::AfterSale {
            order_id,
            change: AfterSaleChange::ExchangeCanceled {
                exchange_id: crate::id::ExchangeId::new(),
            },
        },
        EventKind::AfterSale {
            order_id,
            change: AfterSaleChange::ChargePaid {
                charge_id: crate::id::ChargeId::new(),
                amount: usd(500),
            },
        },
        EventKind::AfterSale {
            order_id,
            change: AfterSaleChange::Claimed {
                claim_id: crate::id::ClaimId::new(),
                resolution: crate::domain::after_sale::ClaimResolution::Replace,
            },
        },
        EventKind::OrderCancelled { order_id },
        EventKind::CustomerChanged {
            customer_id: CustomerId::new(),
            change: CustomerChange::Registered,
        },
        EventKind::StockChanged {
            variant_id: VariantId::new(),
            location_id: LocationId::new(),
            on_hand: 3,
        },
        EventKind::LowStock {
            variant_id: VariantId::new(),
            available: 1,
            threshold: 2,
        },
        EventKind::StockReplenished {
            variant_id: VariantId::new(),
            available: 5,
            threshold: 2,
        },
        EventKind::AdminChange {
            actor: crate::actor::Actor::System,
            action: "set_stock".into(),
            subject: "a variant".into(),
        },
    ];
    let product_id = ProductId::new();
    let catalog = [
        CatalogChange::ProductCreated { product_id },
        CatalogChange::ProductUpdated { product_id },
        CatalogChange::ProductStatusChanged {
            product_id,
            status: crate::catalog::Status::Active,
        },
        CatalogChange::ProductDeleted { product_id },
        CatalogChange::CategoryChanged {
            category_id: CategoryId::new(),
        },
        CatalogChange::CategoryDeleted {
            category_id: CategoryId::new(),
        },
        CatalogChange::CollectionChanged {
            collection_id: CollectionId::new(),
        },
        CatalogChange::CollectionDeleted {
            collection_id: CollectionId::new(),
        },
        CatalogChange::ChannelChanged {
            channel_id: ChannelId::new(),
        },
    ];
    let promotion_id = PromotionId::new();
    let promotions = [
        PromotionChange::Saved {
            promotion_id,
            enabled: true,
        },
        PromotionChange::CouponsCreated {
            promotion_id,
            count: 3,
        },
        PromotionChange::PriceListSaved {
            price_list_id: PriceListId::new(),
        },
    ];
    let mut all = kinds;
    all.extend(
        catalog
            .into_iter()
            .map(|change| EventKind::CatalogChanged { change }),
    );
    all.extend(
        promotions
            .into_iter()
            .map(|change| EventKind::PromotionChanged { change }),
    );
    // Every kind is here: a new one breaks this match until it is listed.
    for kind in &all {
        match kind {
            EventKind::OrderPlaced { .. }
            | EventKind::PaymentAuthorized { .. }
            | EventKind::PaymentFailed { .. }
            | EventKind::PaymentActionRequired { .. }
            | EventKind::BalanceChanged { .. }
            | EventKind::PaymentCaptured { .. }
            | EventKind::PaymentRefunded { .. }
            | EventKind::PaymentVoided { .. }
            | EventKind::OrderShipped { .. }
            | EventKind::ShipmentDelivered { .. }
            | EventKind::ItemsReturned { .. }
            | EventKind::AfterSale { .. }
            | EventKind::OrderCancelled { .. }
            | EventKind::CustomerChanged { .. }
            | EventKind::CatalogChanged { .. }
            | EventKind::PromotionChanged { .. }
            | EventKind::StockChanged { .. }
            | EventKind::LowStock { .. }
            | EventKind::StockReplenished { .. }
            | EventKind::AdminChange { .. } => {}
        }
    }
    all
}

/// What happened to a customer's account ([`EventKind::CustomerChanged`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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

/// What after-sale work moved on ([`EventKind::AfterSale`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", tag = "kind")]
#[non_exhaustive]
pub enum AfterSaleChange {
    /// A return request moved to `state`.
    ReturnRequest {
        /// The request.
        return_case_id: crate::id::ReturnCaseId,
        /// Where it is now.
        state: crate::domain::after_sale::ReturnCaseState,
    },
    /// Units were exchanged: new units added (and charged for when they
    /// cost more), the old ones expected back.
    Exchanged {
        /// The exchange.
        exchange_id: crate::id::ExchangeId,
    },
    /// An order was edited: units added or removed, its address moved.
    OrderEdited {
        /// The edit.
        edit_id: crate::id::OrderEditId,
        /// What the added units cost less what the removed ones had paid.
        difference: Money,
    },
    /// A shipping label was bought for a shipment.
    LabelPurchased {
        /// The shipment.
        shipment_id: crate::id::ShipmentId,
        /// The carrier's tracking number.
        tracking_number: String,
    },
    /// A carrier reported on a shipment's parcel (in transit, held up;
    /// a delivery is [`EventKind::ShipmentDelivered`]).
    ShipmentTracked {
        /// The shipment.
        shipment_id: crate::id::ShipmentId,
        /// `in_transit`, `delivered` or `exception`.
        status: String,
    },
    /// An exchange was called off before its new units shipped.
    ExchangeCanceled {
        /// The exchange.
        exchange_id: crate::id::ExchangeId,
    },
    /// An amount owed on top of the checkout's was paid.
    ChargePaid {
        /// The charge.
        charge_id: crate::id::ChargeId,
        /// How much.
        amount: Money,
    },
    /// A claim was made: damaged, missing or wrong units refunded or
    /// replaced without a return.
    Claimed {
        /// The claim.
        claim_id: crate::id::ClaimId,
        /// How it is settled.
        resolution: crate::domain::after_sale::ClaimResolution,
    },
    /// Units of some lines were called off before they shipped (their
    /// refund, if any, went through; their stock is back on sale).
    LinesCancelled {
        /// The cancellation.
        cancellation_id: crate::id::LineCancellationId,
        /// What they were charged (released from the hold or refunded).
        amount: Money,
    },
}

/// What changed in the catalog ([`EventKind::CatalogChanged`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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
