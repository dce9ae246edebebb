//! The in-memory store: the default, with nothing to set up.
//!
//! All state sits behind one mutex, and every command checks everything it
//! needs before it changes anything, so each command is atomic and a failed
//! command leaves the state exactly as it was. The lock is never held across
//! an `.await`.
//!
//! Does not know: pricing, payments or the engine: it keeps state and makes
//! each store command atomic under one lock.

use parking_lot::{Mutex, MutexGuard};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::cart::{Cart, CartStatus};
use crate::catalog::{CatalogEntry, Category, Collection, Product, Sku};
use crate::channel::{ChannelId, SalesChannel};
use crate::customer::{AccountChange, AccountToken, Customer, CustomerGroup, Email, TokenHolder};
use crate::error::{Error, Result};
use crate::giftcard::{GiftCard, GiftCardId, LedgerEntry, NewEntry};
use crate::id::{
    CartId, CategoryId, CollectionId, CustomerGroupId, CustomerId, EventId, IdempotencyKey,
    LocationId, OrderId, PriceListId, ProductId, PromotionId, ReservationId, VariantId,
};
use crate::inventory::{
    Location, MAX_ON_HAND, Reservation, ReservationState, StockLevel, StockRequest, StockSummary,
    UsageClaim, apply_claim, merge_claims, merge_requests,
};
use crate::money::Currency;
use crate::order::{Order, OrderChange, OrderQuery};
use crate::pricing::{Coupon, PriceList, Promotion};
use crate::store::{
    AwaitingPayment, BeginCheckout, CartStore, CatalogStore, ChannelStore, CheckoutClaim,
    CheckoutEnd, CheckoutRecord, CheckoutState, CheckoutStore, CustomerStore, DeliveryOutcome,
    Event, EventKind, EventStore, FailedDelivery, GiftCardStore, InboxClaim, InventoryStore, Lease,
    OrderStore, PricingInputs, PromotionStore, check_consumer, check_limit,
};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
struct Level {
    on_hand: i64,
    reserved: i64,
}

/// An event in a consumer's inbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
enum Inbox {
    Claimed(DateTime<Utc>),
    /// Handled; the time its claim ran to (pruned by it).
    Handled(DateTime<Utc>),
}

/// How far one sink got with one aggregate's events.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
struct Stream {
    delivered: u64,
    lease: Option<(Uuid, DateTime<Utc>)>,
    next_at: DateTime<Utc>,
    attempts: u32,
    /// The version parked, if any.
    parked: Option<u64>,
    last_error: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct State {
    /// Shared, so a checkout's read copies what it needs after the lock.
    products: BTreeMap<ProductId, Arc<Product>>,
    skus: HashMap<Sku, VariantId>,
    /// Each variant's product, and its place among the product's variants.
    variants: HashMap<VariantId, (ProductId, usize)>,
    categories: BTreeMap<CategoryId, Category>,
    collections: BTreeMap<CollectionId, Collection>,
    customers: HashMap<CustomerId, Customer>,
    emails: HashMap<Email, CustomerId>,
    groups: BTreeMap<CustomerGroupId, CustomerGroup>,
    carts: HashMap<CartId, Cart>,
    locations: Vec<Location>,
    stock: HashMap<(VariantId, LocationId), Level>,
    reservations: HashMap<ReservationId, Reservation>,
    pending: BTreeSet<(DateTime<Utc>, ReservationId)>,
    checkouts: HashMap<IdempotencyKey, CheckoutRecord>,
    orders: BTreeMap<OrderId, Order>,
    customer_orders: HashMap<CustomerId, BTreeSet<OrderId>>,
    events: Vec<Event>,
    /// Per consumer: how many events it has acknowledged.
    cursors: HashMap<String, usize>,
    /// Usage counters: how much each has held or used.
    usage: HashMap<String, u64>,
    /// Payment provider reference → order.
    payment_refs: HashMap<String, OrderId>,
    /// A waiting payment's provider reference → its checkout (kept after
    /// the payment settles, until a later session of the checkout replaces it).
    session_refs: HashMap<String, IdempotencyKey>,
    /// Sales channels.
    channels: BTreeMap<ChannelId, SalesChannel>,
    /// Variants marked low on stock.
    low_stock: BTreeSet<VariantId>,
    /// Gift cards and store credit, and code hash → card.
    gift_cards: BTreeMap<GiftCardId, GiftCard>,
    gift_codes: HashMap<String, GiftCardId>,
    /// A checkout → its latest waiting payment's reference.
    checkout_refs: HashMap<IdempotencyKey, String>,
    promotions: BTreeMap<PromotionId, Promotion>,
    price_lists: BTreeMap<PriceListId, PriceList>,
    coupons: HashMap<String, Coupon>,
    pricing_version: u64,
    /// Each aggregate's last event version.
    aggregate_versions: foldhash::HashMap<String, u64>,
    /// The relay's progress per sink and aggregate.
    streams: BTreeMap<(String, String), Stream>,
    /// Consumers' inboxes: what each handled, or holds.
    inbox: BTreeMap<(String, EventId), Option<Inbox>>,
    /// The last event's sequence number.
    last_sequence: u64,
    /// Each relay sink's first sequence: the events before it are not its.
    floors: BTreeMap<String, u64>,
    /// Webhook subscriptions.
    webhooks: BTreeMap<crate::webhook::WebhookId, crate::webhook::WebhookSubscription>,
    /// Account tokens, one per account (or decoy id) and purpose.
    account_tokens: HashMap<(CustomerId, crate::customer::TokenPurpose), AccountToken>,
    /// Agent checkout sessions.
    agent_sessions: BTreeMap<crate::agent::AgentSessionId, crate::agent::AgentSession>,
    /// The session over each agent cart.
    agent_carts: HashMap<CartId, crate::agent::AgentSessionId>,
    /// Agentic request keys by scope and key.
    agent_requests: BTreeMap<(String, String), agents::AgentRequest>,
    /// Staff accounts.
    staff: BTreeMap<crate::id::StaffId, crate::staff::StaffMember>,
    /// Staff roles by name.
    roles: BTreeMap<String, crate::staff::Role>,
    /// Staff sessions by token hash.
    staff_sessions: BTreeMap<String, crate::staff::StaffSession>,
}

/// A consistent copy of a [`MemoryStore`]'s whole state, comparable with
/// `==`: take one before an operation and one after to prove the operation
/// changed nothing (feature `test-util`).
#[cfg(any(test, feature = "test-util"))]
#[derive(Debug, Clone, PartialEq)]
pub struct MemorySnapshot(State);

#[cfg(any(test, feature = "test-util"))]
impl MemorySnapshot {
    /// Every map and list of the store as JSON (an object keyed by field
    /// name; maps as lists of `[key, value]` pairs), with nothing hidden —
    /// where `Debug` shows only a customer's number of addresses, this has
    /// the addresses — to search for data that must be gone (an erasure
    /// test). The state is taken apart field by field with no `..`, so a
    /// map added to the store does not compile until it is listed here.
    ///
    /// # Errors
    /// [`Error::Storage`] if a value cannot be written as JSON.
    pub fn to_json(&self) -> Result<serde_json::Value> {
        fn pairs<'a, K: serde::Serialize + 'a, V: serde::Serialize + 'a>(
            map: impl IntoIterator<Item = (&'a K, &'a V)>,
        ) -> Vec<(&'a K, &'a V)> {
            map.into_iter().collect()
        }
        let State {
            products,
            skus,
            variants,
            categories,
            collections,
            customers,
            emails,
            groups,
            carts,
            locations,
            stock,
            reservations,
            pending,
            checkouts,
            orders,
            customer_orders,
            events,
            cursors,
            usage,
            payment_refs,
            session_refs,
            channels,
            low_stock,
            gift_cards,
            gift_codes,
            checkout_refs,
            promotions,
            price_lists,
            coupons,
            pricing_version,
            aggregate_versions,
            streams,
            inbox,
            account_tokens,
            floors,
            webhooks,
            last_sequence,
            agent_sessions,
            agent_carts,
            agent_requests,
            staff,
            roles,
            staff_sessions,
        } = &self.0;
        let products: Vec<(&ProductId, &Product)> =
            products.iter().map(|(k, v)| (k, v.as_ref())).collect();
        let stock: Vec<(String, &Level)> = stock
            .iter()
            .map(|((v, l), level)| (format!("{v}/{l}"), level))
            .collect();
        let fields = [
            ("products", serde_json::to_value(&products)),
            ("skus", serde_json::to_value(pairs(skus))),
            ("variants", serde_json::to_value(pairs(variants))),
            ("categories", serde_json::to_value(pairs(categories))),
            ("collections", serde_json::to_value(pairs(collections))),
            ("customers", serde_json::to_value(pairs(customers))),
            ("emails", serde_json::to_value(pairs(emails))),
            ("groups", serde_json::to_value(pairs(groups))),
            ("carts", serde_json::to_value(pairs(carts))),
            ("locations", serde_json::to_value(locations)),
            ("stock", serde_json::to_value(&stock)),
            ("reservations", serde_json::to_value(pairs(reservations))),
            ("pending", serde_json::to_value(pending)),
            ("checkouts", serde_json::to_value(pairs(checkouts))),
            ("orders", serde_json::to_value(pairs(orders))),
            (
                "customer_orders",
                serde_json::to_value(pairs(customer_orders)),
            ),
            ("events", serde_json::to_value(events)),
            ("cursors", serde_json::to_value(pairs(cursors))),
            ("usage", serde_json::to_value(pairs(usage))),
            ("payment_refs", serde_json::to_value(pairs(payment_refs))),
            ("session_refs", serde_json::to_value(pairs(session_refs))),
            ("channels", serde_json::to_value(pairs(channels))),
            ("low_stock", serde_json::to_value(low_stock)),
            ("gift_cards", serde_json::to_value(pairs(gift_cards))),
            ("gift_codes", serde_json::to_value(pairs(gift_codes))),
            ("checkout_refs", serde_json::to_value(pairs(checkout_refs))),
            ("promotions", serde_json::to_value(pairs(promotions))),
            ("price_lists", serde_json::to_value(pairs(price_lists))),
            ("coupons", serde_json::to_value(pairs(coupons))),
            ("pricing_version", serde_json::to_value(pricing_version)),
            (
                "account_tokens",
                serde_json::to_value(pairs(account_tokens)),
            ),
            (
                "aggregate_versions",
                serde_json::to_value(pairs(aggregate_versions)),
            ),
            ("streams", serde_json::to_value(pairs(streams))),
            ("inbox", serde_json::to_value(pairs(inbox))),
            ("floors", serde_json::to_value(pairs(floors))),
            ("last_sequence", serde_json::to_value(last_sequence)),
            ("webhooks", serde_json::to_value(pairs(webhooks))),
            (
                "agent_sessions",
                serde_json::to_value(pairs(agent_sessions)),
            ),
            ("agent_carts", serde_json::to_value(pairs(agent_carts))),
            (
                "agent_requests",
                serde_json::to_value(pairs(agent_requests)),
            ),
            ("staff", serde_json::to_value(pairs(staff))),
            ("roles", serde_json::to_value(pairs(roles))),
            (
                "staff_sessions",
                serde_json::to_value(pairs(staff_sessions)),
            ),
        ];
        let mut value = serde_json::Map::new();
        for (name, field) in fields {
            let field = field.map_err(|e| Error::Storage {
                message: format!("the memory store's {name} cannot be written as JSON: {e}"),
                source: None,
            })?;
            value.insert(name.to_owned(), field);
        }
        Ok(serde_json::Value::Object(value))
    }
}

/// The in-memory store. Cheap to create; share it as `Arc<MemoryStore>`.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of the whole state, to compare before and after an operation
    /// in tests (feature `test-util`).
    #[cfg(any(test, feature = "test-util"))]
    pub fn snapshot(&self) -> MemorySnapshot {
        MemorySnapshot(self.lock().clone())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Commands validate before they mutate and never panic while holding
        // the lock. parking_lot's lock spins briefly before it sleeps, which
        // suits a lock held for microseconds by many tasks.
        self.state.lock()
    }
}

/// See [`State::entry_source`].
struct EntrySource {
    variant: VariantId,
    index: usize,
    product: Arc<Product>,
    categories: BTreeSet<CategoryId>,
}

impl EntrySource {
    fn build(self) -> Option<CatalogEntry> {
        let variant = self
            .product
            .variants()
            .get(self.index)
            .filter(|v| v.id() == self.variant)?;
        Some(CatalogEntry::of_variant(
            &self.product,
            variant,
            self.categories,
        ))
    }
}

/// Builds the entries from their sources (after the lock is released).
fn build_entries(sources: Vec<EntrySource>) -> HashMap<VariantId, CatalogEntry> {
    sources
        .into_iter()
        .filter_map(|s| {
            let id = s.variant;
            s.build().map(|e| (id, e))
        })
        .collect()
}

impl State {
    /// Claims a key never seen as attempt 1, holding `reservation`.
    fn claim_new(&mut self, b: BeginCheckout, reservation: Option<ReservationId>) -> Lease {
        let token = Uuid::new_v4();
        let lease = Lease {
            key: b.key.clone(),
            token,
            attempt: 1,
        };
        self.checkouts.insert(
            b.key.clone(),
            CheckoutRecord {
                key: b.key,
                cart_id: b.cart_id,
                payment_token: b.payment_token,
                attempt: 1,
                state: CheckoutState::InProgress,
                reservation_id: reservation,
                lease_token: token,
                lease_until: b.lease_until,
                created_at: b.now,
                awaiting: None,
            },
        );
        lease
    }

    /// Forgets a checkout's waiting payment (settled one way or the other);
    /// its reference still finds the checkout.
    fn clear_awaiting(&mut self, key: &IdempotencyKey) {
        if let Some(rec) = self.checkouts.get_mut(key) {
            rec.awaiting = None;
        }
    }

    fn check_product_refs(&self, product: &Product, replacing: Option<ProductId>) -> Result<()> {
        for c in product.categories() {
            if !self.categories.contains_key(c) {
                return Err(Error::not_found("category", c));
            }
        }
        for c in product.collections() {
            if !self.collections.contains_key(c) {
                return Err(Error::not_found("collection", c));
            }
        }
        for v in product.variants() {
            if let Some((owner, _)) = self.skus.get(v.sku()).and_then(|id| self.variants.get(id))
                && Some(*owner) != replacing
            {
                return Err(Error::AlreadyExists {
                    what: "sku",
                    value: v.sku().to_string(),
                });
            }
            if let Some((owner, _)) = self.variants.get(&v.id())
                && Some(*owner) != replacing
            {
                return Err(Error::AlreadyExists {
                    what: "variant id",
                    value: v.id().to_string(),
                });
            }
        }
        Ok(())
    }

    /// Whether `product` may be inserted.
    fn check_insert(&self, product: &Product) -> Result<()> {
        if self.products.contains_key(&product.id()) {
            return Err(Error::AlreadyExists {
                what: "product",
                value: product.id().to_string(),
            });
        }
        self.check_product_refs(product, None)
    }

    /// Whether `product` may replace the stored one: that one and the
    /// variants it loses.
    fn check_update(&self, product: &Product) -> Result<(Arc<Product>, BTreeSet<VariantId>)> {
        let old = self
            .products
            .get(&product.id())
            .cloned()
            .ok_or_else(|| Error::not_found("product", product.id()))?;
        self.check_product_refs(product, Some(product.id()))?;
        // A variant that was reserved or ordered is archived, never removed.
        let kept: BTreeSet<VariantId> = product.variants().iter().map(|v| v.id()).collect();
        let removed: BTreeSet<VariantId> = old
            .variants()
            .iter()
            .map(|v| v.id())
            .filter(|v| !kept.contains(v))
            .collect();
        if let Some(v) = removed
            .iter()
            .find(|v| self.variants_used(&BTreeSet::from([**v])))
        {
            return Err(Error::invalid(
                "product variants",
                format!("variant {v} was reserved or ordered: archive it instead"),
            ));
        }
        Ok((old, removed))
    }

    /// Replaces a product [`State::check_update`] allowed.
    fn apply_update(&mut self, product: Product, old: &Product, removed: &BTreeSet<VariantId>) {
        self.stock.retain(|(v, _), _| !removed.contains(v));
        self.unindex_product(old);
        self.index_product(&product);
        self.products.insert(product.id(), Arc::new(product));
    }

    fn index_product(&mut self, product: &Product) {
        for (i, v) in product.variants().iter().enumerate() {
            self.skus.insert(v.sku().clone(), v.id());
            self.variants.insert(v.id(), (product.id(), i));
        }
    }

    fn unindex_product(&mut self, product: &Product) {
        for v in product.variants() {
            self.skus.remove(v.sku());
            self.variants.remove(&v.id());
        }
    }

    /// Whether any of `variants` was ever reserved or ordered.
    fn variants_used(&self, variants: &BTreeSet<VariantId>) -> bool {
        self.reservations
            .values()
            .any(|r| r.lines.iter().any(|l| variants.contains(&l.variant_id)))
            || self.orders.values().any(|o| {
                o.pricing()
                    .lines
                    .iter()
                    .any(|l| variants.contains(&l.variant_id))
            })
    }

    fn category_ancestry(&self, start: &BTreeSet<CategoryId>) -> BTreeSet<CategoryId> {
        let mut out = BTreeSet::new();
        for id in start {
            let mut cursor = Some(*id);
            // The tree is acyclic by construction (a parent must exist first),
            // and the bound guards against bad data all the same.
            for _ in 0..=self.categories.len() {
                let Some(c) = cursor else { break };
                if !out.insert(c) {
                    break;
                }
                cursor = self.categories.get(&c).and_then(Category::parent);
            }
        }
        out
    }

    fn entry(&self, variant: VariantId) -> Option<CatalogEntry> {
        self.entry_source(variant)?.build()
    }

    /// What a variant's catalog entry is built from, taken under the lock;
    /// the entry itself (copies of the variant and the product's sets) is
    /// built after it, so readers hold the lock for less time.
    fn entry_source(&self, variant: VariantId) -> Option<EntrySource> {
        let (id, index) = self.variants.get(&variant)?;
        let product = self.products.get(id)?;
        Some(EntrySource {
            variant,
            index: *index,
            categories: self.category_ancestry(product.categories()),
            product: Arc::clone(product),
        })
    }

    fn levels(&self, variant: VariantId) -> Vec<StockLevel> {
        self.locations
            .iter()
            .filter_map(|loc| {
                self.stock.get(&(variant, loc.id())).map(|l| StockLevel {
                    variant_id: variant,
                    location_id: loc.id(),
                    on_hand: l.on_hand,
                    reserved: l.reserved,
                })
            })
            .collect()
    }

    fn release_expired(&mut self, now: DateTime<Utc>) -> u64 {
        let expired: Vec<(DateTime<Utc>, ReservationId)> = self
            .pending
            .iter()
            .take_while(|(at, _)| *at <= now)
            .copied()
            .collect();
        for (_, id) in &expired {
            self.release_reservation(*id);
        }
        expired.len() as u64
    }

    /// Releases a pending or allocated reservation; a no-op for others.
    fn release_reservation(&mut self, id: ReservationId) {
        let Some(r) = self.reservations.get_mut(&id) else {
            return;
        };
        match r.state {
            ReservationState::Pending { expires_at } => {
                self.pending.remove(&(expires_at, id));
            }
            ReservationState::Allocated { .. } => {}
            ReservationState::Committed | ReservationState::Released => return,
        }
        r.state = ReservationState::Released;
        for line in &r.lines {
            if let Some(level) = self.stock.get_mut(&(line.variant_id, line.location_id)) {
                level.reserved -= i64::from(line.quantity);
            }
        }
        for claim in &r.claims {
            if let Some(used) = self.usage.get_mut(&claim.counter) {
                *used = used.saturating_sub(claim.amount);
            }
        }
    }

    /// Undoes [`State::release_reservation`] for a reservation as it was before.
    fn restore_reservation(&mut self, old: Reservation) {
        let live = match old.state {
            ReservationState::Pending { expires_at } => {
                self.pending.insert((expires_at, old.id));
                true
            }
            ReservationState::Allocated { .. } => true,
            ReservationState::Committed | ReservationState::Released => false,
        };
        if live {
            for claim in &old.claims {
                *self.usage.entry(claim.counter.clone()).or_default() += claim.amount;
            }
            for line in &old.lines {
                self.stock
                    .entry((line.variant_id, line.location_id))
                    .or_default()
                    .reserved += i64::from(line.quantity);
            }
        }
        self.reservations.insert(old.id, old);
    }

    /// Plans every request against current stock, all or nothing, then applies.
    fn reserve(
        &mut self,
        requests: &[StockRequest],
        claims: &[UsageClaim],
        checkout_key: Option<IdempotencyKey>,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Reservation> {
        if expires_at <= now {
            return Err(Error::invalid("expires_at", "must be in the future"));
        }
        let merged = merge_requests(requests)?;
        // A channel's requests are held only at the channel's locations
        // (one reservation is for one channel).
        let allowed = match merged.iter().find_map(|r| r.channel) {
            Some(c) => self
                .channels
                .get(&c)
                .ok_or_else(|| Error::not_found("sales channel", c))?
                .locations
                .as_ref(),
            None => None,
        };
        let usable = |l: LocationId| {
            allowed.is_none_or(|a| a.contains(&l)) && self.locations.iter().any(|x| x.id() == l)
        };
        let fallback = self.locations.iter().map(Location::id).find(|l| usable(*l));
        let levels: HashMap<VariantId, Vec<StockLevel>> = merged
            .iter()
            .map(|r| {
                let levels = crate::inventory::levels_within(&self.levels(r.variant_id), allowed);
                (r.variant_id, levels)
            })
            .collect();
        let lines = crate::inventory::plan_requests(&merged, &levels, fallback, usable)?;
        // Work out every new level before touching any.
        let mut updated: HashMap<(VariantId, LocationId), i64> = HashMap::new();
        for line in &lines {
            let key = (line.variant_id, line.location_id);
            let current = match updated.get(&key) {
                Some(v) => *v,
                None => self.stock.get(&key).map_or(0, |l| l.reserved),
            };
            let next = current
                .checked_add(i64::from(line.quantity))
                .ok_or_else(|| Error::Overflow("reserved stock"))?;
            updated.insert(key, next);
        }
        let claims = merge_claims(claims)?;
        let mut usage = Vec::with_capacity(claims.len());
        for claim in &claims {
            let used = self.usage.get(&claim.counter).copied().unwrap_or(0);
            usage.push((claim.counter.clone(), apply_claim(claim, used)?));
        }
        for (key, reserved) in updated {
            self.stock.entry(key).or_default().reserved = reserved;
        }
        self.usage.extend(usage);
        let reservation = Reservation {
            id: ReservationId::new(),
            checkout_key,
            lines,
            claims,
            state: ReservationState::Pending { expires_at },
            created_at: now,
        };
        self.pending.insert((expires_at, reservation.id));
        self.reservations
            .insert(reservation.id, reservation.clone());
        Ok(reservation)
    }

    fn leased(&self, lease: &Lease) -> Result<&CheckoutRecord> {
        match self.checkouts.get(&lease.key) {
            Some(r) if r.lease_token == lease.token && r.state == CheckoutState::InProgress => {
                Ok(r)
            }
            _ => Err(Error::LeaseLost),
        }
    }

    fn push_event(&mut self, kind: EventKind, now: DateTime<Utc>) {
        // Never reused, though events before it were pruned.
        self.last_sequence = self.last_sequence.saturating_add(1);
        let sequence = self.last_sequence;
        // The aggregate's key is made once, and copied only for its first
        // event.
        let aggregate = kind.aggregate();
        let version = match self.aggregate_versions.get_mut(&aggregate) {
            Some(counter) => {
                *counter = counter.saturating_add(1);
                *counter
            }
            None => {
                self.aggregate_versions.insert(aggregate.clone(), 1);
                1
            }
        };
        self.events.push(Event::with_aggregate(
            EventId::new(),
            sequence,
            now,
            kind,
            aggregate,
            version,
        ));
    }
}

mod agents;
mod carts;
mod catalog;
mod channels;
mod checkout;
mod customers;
mod events;
mod giftcards;
mod inventory;
mod orders;
mod promotions;
mod staff;
mod webhooks;
