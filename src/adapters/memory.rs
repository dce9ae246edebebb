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
    self, Location, MAX_ON_HAND, Reservation, ReservationLine, ReservationState, StockLevel,
    StockRequest, StockSummary, UsageClaim, apply_claim, merge_claims, merge_requests,
    plan_reservation,
};
use crate::money::Currency;
use crate::order::{Order, OrderChange, OrderQuery};
use crate::pricing::{Coupon, PriceList, Promotion};
use crate::store::{
    AwaitingPayment, BeginCheckout, CartStore, CatalogStore, ChannelStore, CheckoutClaim,
    CheckoutEnd, CheckoutRecord, CheckoutState, CheckoutStore, CustomerStore, Event, EventKind,
    EventStore, GiftCardStore, InventoryStore, Lease, OrderStore, PricingInputs, PromotionStore,
    check_consumer, check_limit,
};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
struct Level {
    on_hand: i64,
    reserved: i64,
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
    /// Account tokens, one per account (or decoy id) and purpose.
    account_tokens: HashMap<(CustomerId, crate::customer::TokenPurpose), AccountToken>,
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
            account_tokens,
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
        let mut lines: Vec<ReservationLine> = Vec::new();
        for r in &merged {
            // A channel's request is held only at the channel's locations.
            let allowed = match r.channel {
                Some(c) => self
                    .channels
                    .get(&c)
                    .ok_or_else(|| Error::not_found("sales channel", c))?
                    .locations
                    .as_ref(),
                None => None,
            };
            let fallback = self
                .locations
                .iter()
                .map(Location::id)
                .find(|l| allowed.is_none_or(|a| a.contains(l)));
            let levels = crate::inventory::levels_within(&self.levels(r.variant_id), allowed);
            lines.extend(plan_reservation(r, &levels, fallback)?);
        }
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
        let sequence = self.events.len() as u64 + 1;
        self.events.push(Event {
            id: EventId::new(),
            sequence,
            occurred_at: now,
            kind,
        });
    }
}

#[async_trait]
impl CatalogStore for MemoryStore {
    async fn insert_product(&self, product: Product) -> Result<()> {
        let mut s = self.lock();
        if s.products.contains_key(&product.id()) {
            return Err(Error::AlreadyExists {
                what: "product",
                value: product.id().to_string(),
            });
        }
        s.check_product_refs(&product, None)?;
        s.index_product(&product);
        s.products.insert(product.id(), Arc::new(product));
        Ok(())
    }

    async fn update_product(&self, product: Product) -> Result<()> {
        let mut s = self.lock();
        let old = s
            .products
            .get(&product.id())
            .cloned()
            .ok_or_else(|| Error::not_found("product", product.id()))?;
        s.check_product_refs(&product, Some(product.id()))?;
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
            .find(|v| s.variants_used(&BTreeSet::from([**v])))
        {
            return Err(Error::invalid(
                "product variants",
                format!("variant {v} was reserved or ordered: archive it instead"),
            ));
        }
        s.stock.retain(|(v, _), _| !removed.contains(v));
        s.unindex_product(&old);
        s.index_product(&product);
        s.products.insert(product.id(), Arc::new(product));
        Ok(())
    }

    async fn product(&self, id: ProductId) -> Result<Product> {
        self.lock()
            .products
            .get(&id)
            .map(|p| Product::clone(p))
            .ok_or_else(|| Error::not_found("product", id))
    }

    async fn products(&self, after: Option<ProductId>, limit: usize) -> Result<Vec<Product>> {
        let limit = check_limit(limit)?;
        let s = self.lock();
        let iter: Box<dyn Iterator<Item = &Product>> = match after {
            Some(a) => Box::new(
                s.products
                    .range((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded))
                    .map(|(_, p)| &**p),
            ),
            None => Box::new(s.products.values().map(|p| &**p)),
        };
        Ok(iter.take(limit).cloned().collect())
    }

    async fn entry_by_sku(&self, sku: &Sku) -> Result<CatalogEntry> {
        let s = self.lock();
        s.skus
            .get(sku)
            .and_then(|v| s.entry(*v))
            .ok_or_else(|| Error::not_found("sku", sku))
    }

    async fn entries(&self, ids: &[VariantId]) -> Result<HashMap<VariantId, CatalogEntry>> {
        let sources = {
            let s = self.lock();
            ids.iter().filter_map(|id| s.entry_source(*id)).collect()
        };
        Ok(build_entries(sources))
    }

    async fn insert_category(&self, category: Category) -> Result<()> {
        let mut s = self.lock();
        if let Some(parent) = category.parent()
            && !s.categories.contains_key(&parent)
        {
            return Err(Error::not_found("category", parent));
        }
        if s.categories.contains_key(&category.id()) {
            return Err(Error::AlreadyExists {
                what: "category",
                value: category.id().to_string(),
            });
        }
        s.categories.insert(category.id(), category);
        Ok(())
    }

    async fn categories(&self) -> Result<Vec<Category>> {
        Ok(self.lock().categories.values().cloned().collect())
    }

    async fn insert_collection(&self, collection: Collection) -> Result<()> {
        let mut s = self.lock();
        if s.collections.contains_key(&collection.id()) {
            return Err(Error::AlreadyExists {
                what: "collection",
                value: collection.id().to_string(),
            });
        }
        s.collections.insert(collection.id(), collection);
        Ok(())
    }

    async fn collections(&self) -> Result<Vec<Collection>> {
        Ok(self.lock().collections.values().cloned().collect())
    }

    async fn update_category(&self, category: Category) -> Result<()> {
        let mut s = self.lock();
        if !s.categories.contains_key(&category.id()) {
            return Err(Error::not_found("category", category.id()));
        }
        if let Some(parent) = category.parent() {
            if !s.categories.contains_key(&parent) {
                return Err(Error::not_found("category", parent));
            }
            // The parent's ancestry must not pass through the category.
            if s.category_ancestry(&BTreeSet::from([parent]))
                .contains(&category.id())
            {
                return Err(Error::invalid(
                    "category parent",
                    format!("{parent} is {} or under it", category.id()),
                ));
            }
        }
        s.categories.insert(category.id(), category);
        Ok(())
    }

    async fn delete_category(&self, id: CategoryId) -> Result<()> {
        let mut s = self.lock();
        if !s.categories.contains_key(&id) {
            return Err(Error::not_found("category", id));
        }
        let children = s
            .categories
            .values()
            .filter(|c| c.parent() == Some(id))
            .count();
        let products = s
            .products
            .values()
            .filter(|p| p.categories().contains(&id))
            .count();
        if children > 0 || products > 0 {
            return Err(Error::invalid(
                "category",
                format!("{id} has {children} subcategories and {products} products"),
            ));
        }
        s.categories.remove(&id);
        Ok(())
    }

    async fn update_collection(&self, collection: Collection) -> Result<()> {
        let mut s = self.lock();
        if !s.collections.contains_key(&collection.id()) {
            return Err(Error::not_found("collection", collection.id()));
        }
        s.collections.insert(collection.id(), collection);
        Ok(())
    }

    async fn delete_collection(&self, id: CollectionId) -> Result<()> {
        let mut s = self.lock();
        if !s.collections.contains_key(&id) {
            return Err(Error::not_found("collection", id));
        }
        let products = s
            .products
            .values()
            .filter(|p| p.collections().contains(&id))
            .count();
        if products > 0 {
            return Err(Error::invalid(
                "collection",
                format!("{id} has {products} products"),
            ));
        }
        s.collections.remove(&id);
        Ok(())
    }

    async fn find_products(&self, query: &crate::catalog::ProductQuery) -> Result<Vec<Product>> {
        let s = self.lock();
        let mut found: Vec<&Product> = s
            .products
            .values()
            .map(|p| &**p)
            .filter(|p| query.matches(p, &s.category_ancestry(p.categories())))
            .collect();
        match query.sort {
            crate::catalog::ProductSort::Title => {
                found.sort_unstable_by(|a, b| (a.title(), a.id()).cmp(&(b.title(), b.id())));
            }
            _ => found.sort_unstable_by_key(|p| std::cmp::Reverse(p.id())),
        }
        Ok(found.into_iter().take(query.limit).cloned().collect())
    }

    async fn delete_product(&self, id: ProductId) -> Result<()> {
        let mut s = self.lock();
        let product = s
            .products
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::not_found("product", id))?;
        let variants: BTreeSet<VariantId> = product.variants().iter().map(|v| v.id()).collect();
        if s.variants_used(&variants) {
            return Err(Error::invalid(
                "product",
                format!("{id} was reserved or ordered: archive it instead"),
            ));
        }
        s.unindex_product(&product);
        s.stock.retain(|(v, _), _| !variants.contains(v));
        s.products.remove(&id);
        Ok(())
    }
}

#[async_trait]
impl CustomerStore for MemoryStore {
    async fn insert_customer(&self, customer: Customer) -> Result<()> {
        let mut s = self.lock();
        if s.emails.contains_key(customer.email()) {
            return Err(Error::AlreadyExists {
                what: "email",
                value: customer.email().to_string(),
            });
        }
        if s.customers.contains_key(&customer.id()) {
            return Err(Error::AlreadyExists {
                what: "customer",
                value: customer.id().to_string(),
            });
        }
        s.emails.insert(customer.email().clone(), customer.id());
        s.customers.insert(customer.id(), customer);
        Ok(())
    }

    async fn save_customer(&self, mut customer: Customer) -> Result<Customer> {
        let mut s = self.lock();
        let stored = s
            .customers
            .get(&customer.id())
            .ok_or_else(|| Error::not_found("customer", customer.id()))?;
        if stored.version() != customer.version() {
            return Err(Error::Conflict("customer"));
        }
        let old_email = stored.email().clone();
        if old_email != *customer.email() {
            // A new email must be free; the index follows it.
            if s.emails.contains_key(customer.email()) {
                return Err(Error::AlreadyExists {
                    what: "email",
                    value: customer.email().to_string(),
                });
            }
            s.emails.remove(&old_email);
            s.emails.insert(customer.email().clone(), customer.id());
        }
        customer.saved()?;
        s.customers.insert(customer.id(), customer.clone());
        Ok(customer)
    }

    async fn issue_account_token(
        &self,
        holder: TokenHolder<'_>,
        token: AccountToken,
        _now: DateTime<Utc>,
    ) -> Result<Option<CustomerId>> {
        let mut s = self.lock();
        let (found, decoy) = match holder {
            TokenHolder::Email { email, decoy } => (
                s.emails
                    .get(email)
                    .and_then(|id| s.customers.get(id))
                    .filter(|c| c.kind() == crate::customer::CustomerKind::Registered),
                decoy,
            ),
            TokenHolder::Customer(id) => (
                Some(
                    s.customers
                        .get(&id)
                        .ok_or_else(|| Error::not_found("customer", id))?,
                ),
                id,
            ),
        };
        // The same work whether an account has the email or not: a mark
        // computed, a token stored.
        let id = found.map(Customer::id);
        let phc = found
            .and_then(Customer::password_hash)
            .map_or(crate::customer::DECOY_PHC, |h| h.as_phc());
        let mark = Some(crate::customer::token_digest(phc));
        let purpose = token.purpose();
        s.account_tokens
            .insert((id.unwrap_or(decoy), purpose), token.issued_under(mark));
        Ok(id)
    }

    async fn use_account_token(
        &self,
        customer: CustomerId,
        presented: &str,
        change: &AccountChange,
        now: DateTime<Utc>,
    ) -> Result<Customer> {
        let mut s = self.lock();
        let slot = (customer, change.purpose());
        let (Some(stored), Some(token)) = (s.customers.get(&customer), s.account_tokens.get(&slot))
        else {
            return Err(Error::InvalidToken);
        };
        let mut token = token.clone();
        match token.check(stored, presented, now) {
            crate::customer::TokenCheck::Accepted => {}
            crate::customer::TokenCheck::Wrong => {
                s.account_tokens.insert(slot, token);
                return Err(Error::InvalidToken);
            }
            _ => return Err(Error::InvalidToken),
        }
        let mut next = stored.clone();
        change.apply(&mut next, &token)?;
        let old_email = stored.email().clone();
        if old_email != *next.email() && s.emails.contains_key(next.email()) {
            return Err(Error::AlreadyExists {
                what: "email",
                value: next.email().to_string(),
            });
        }
        next.saved()?;
        s.emails.remove(&old_email);
        s.emails.insert(next.email().clone(), customer);
        s.customers.insert(customer, next.clone());
        s.account_tokens.remove(&slot);
        Ok(next)
    }

    async fn prune_account_tokens(&self, now: DateTime<Utc>) -> Result<u64> {
        let mut s = self.lock();
        let before = s.account_tokens.len();
        s.account_tokens.retain(|_, t| t.expires_at() > now);
        Ok((before - s.account_tokens.len()) as u64)
    }

    async fn customer(&self, id: CustomerId) -> Result<Customer> {
        self.lock()
            .customers
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::not_found("customer", id))
    }

    async fn customer_by_email(&self, email: &Email) -> Result<Option<Customer>> {
        let s = self.lock();
        Ok(s.emails
            .get(email)
            .and_then(|id| s.customers.get(id))
            .cloned())
    }

    async fn insert_group(&self, group: CustomerGroup) -> Result<()> {
        let mut s = self.lock();
        if s.groups
            .values()
            .any(|g| g.name().eq_ignore_ascii_case(group.name()))
        {
            return Err(Error::AlreadyExists {
                what: "customer group",
                value: group.name().to_owned(),
            });
        }
        s.groups.insert(group.id(), group);
        Ok(())
    }

    async fn groups(&self) -> Result<Vec<CustomerGroup>> {
        Ok(self.lock().groups.values().cloned().collect())
    }

    async fn find_customers(
        &self,
        query: &crate::customer::CustomerQuery,
    ) -> Result<Vec<Customer>> {
        let s = self.lock();
        let mut found: Vec<&Customer> = s.customers.values().filter(|c| query.matches(c)).collect();
        found.sort_unstable_by_key(|c| c.id());
        Ok(found.into_iter().take(query.limit).cloned().collect())
    }

    async fn erase_customer(
        &self,
        id: CustomerId,
        now: DateTime<Utc>,
    ) -> Result<crate::store::Erasure> {
        let mut s = self.lock();
        let mut customer = s
            .customers
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::not_found("customer", id))?;
        if customer.erased() {
            return Ok(crate::store::Erasure {
                customer,
                carts: 0,
                orders: 0,
            });
        }
        let old = customer.email().clone();
        let erased = crate::customer::erased_email(id);
        // Work on copies; nothing is written until every step succeeded.
        customer.erase();
        customer.saved()?;
        let mut carts = Vec::new();
        for cart in s.carts.values() {
            if cart.customer_id() == Some(id) || cart.email() == Some(&old) {
                let mut c = cart.clone();
                c.erase_personal_data();
                c.saved(now)?;
                carts.push(c);
            }
        }
        let mut orders = Vec::new();
        for order in s.orders.values() {
            if order.customer_id() == Some(id) || order.email() == Some(&old) {
                let mut o = order.clone();
                o.erase_personal_data(&erased);
                o.saved()?;
                orders.push(o);
            }
        }
        // Tokens (an email change's carries the new address).
        s.account_tokens.retain(|(holder, _), _| *holder != id);
        // A payment still waiting keeps the order it will place.
        for record in s.checkouts.values_mut() {
            if let Some(awaiting) = record.awaiting.as_deref_mut()
                && awaiting.concerns(id, &old)
            {
                awaiting.erase_personal_data(&erased);
            }
        }
        let (cart_count, order_count) = (carts.len() as u64, orders.len() as u64);
        for c in carts {
            s.carts.insert(c.id(), c);
        }
        for o in orders {
            s.orders.insert(o.id(), o);
        }
        s.emails.remove(&old);
        s.emails.insert(erased, id);
        s.customers.insert(id, customer.clone());
        Ok(crate::store::Erasure {
            customer,
            carts: cart_count,
            orders: order_count,
        })
    }
}

#[async_trait]
impl CartStore for MemoryStore {
    async fn insert_cart(&self, cart: Cart) -> Result<()> {
        let mut s = self.lock();
        if s.carts.contains_key(&cart.id()) {
            return Err(Error::AlreadyExists {
                what: "cart",
                value: cart.id().to_string(),
            });
        }
        if let Some(c) = cart.customer_id()
            && !s.customers.contains_key(&c)
        {
            return Err(Error::UnknownCustomer(c));
        }
        s.carts.insert(cart.id(), cart);
        Ok(())
    }

    async fn cart(&self, id: CartId) -> Result<Cart> {
        self.lock()
            .carts
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::not_found("cart", id))
    }

    async fn save_carts(&self, carts: Vec<Cart>, now: DateTime<Utc>) -> Result<Vec<Cart>> {
        let mut s = self.lock();
        let mut saved = Vec::with_capacity(carts.len());
        for mut cart in carts {
            let stored = s
                .carts
                .get(&cart.id())
                .ok_or_else(|| Error::not_found("cart", cart.id()))?;
            if stored.version() != cart.version() {
                return Err(Error::Conflict("cart"));
            }
            if stored.status() != CartStatus::Active {
                return Err(Error::CartNotActive { cart_id: cart.id() });
            }
            if let Some(c) = cart.customer_id()
                && !s.customers.contains_key(&c)
            {
                return Err(Error::UnknownCustomer(c));
            }
            cart.saved(now)?;
            saved.push(cart);
        }
        for cart in &saved {
            s.carts.insert(cart.id(), cart.clone());
        }
        Ok(saved)
    }

    async fn active_cart_for(
        &self,
        customer: CustomerId,
        currency: Currency,
    ) -> Result<Option<Cart>> {
        let s = self.lock();
        Ok(s.carts
            .values()
            .filter(|c| {
                c.customer_id() == Some(customer)
                    && c.currency() == currency
                    && c.status() == CartStatus::Active
            })
            .max_by_key(|c| (c.updated_at(), c.id()))
            .cloned())
    }
}

#[async_trait]
impl InventoryStore for MemoryStore {
    async fn insert_location(&self, location: Location) -> Result<()> {
        let mut s = self.lock();
        if s.locations.iter().any(|l| l.id() == location.id()) {
            return Err(Error::AlreadyExists {
                what: "location",
                value: location.id().to_string(),
            });
        }
        s.locations.push(location);
        s.locations.sort_by_key(|l| (l.priority(), l.id()));
        Ok(())
    }

    async fn locations(&self) -> Result<Vec<Location>> {
        Ok(self.lock().locations.clone())
    }

    async fn set_stock(
        &self,
        variant: VariantId,
        location: LocationId,
        on_hand: i64,
    ) -> Result<StockLevel> {
        let on_hand = inventory::check_on_hand(on_hand)?;
        let mut s = self.lock();
        if !s.variants.contains_key(&variant) {
            return Err(Error::not_found("variant", variant));
        }
        if !s.locations.iter().any(|l| l.id() == location) {
            return Err(Error::not_found("location", location));
        }
        let level = s.stock.entry((variant, location)).or_default();
        level.on_hand = on_hand;
        Ok(StockLevel {
            variant_id: variant,
            location_id: location,
            on_hand,
            reserved: level.reserved,
        })
    }

    async fn adjust_stock(
        &self,
        variant: VariantId,
        location: LocationId,
        delta: i64,
    ) -> Result<StockLevel> {
        let mut s = self.lock();
        if !s.variants.contains_key(&variant) {
            return Err(Error::not_found("variant", variant));
        }
        if !s.locations.iter().any(|l| l.id() == location) {
            return Err(Error::not_found("location", location));
        }
        let current = s
            .stock
            .get(&(variant, location))
            .copied()
            .unwrap_or_default();
        let on_hand = inventory::check_on_hand(
            current
                .on_hand
                .checked_add(delta)
                .ok_or_else(|| Error::Overflow("stock"))?,
        )?;
        let level = s.stock.entry((variant, location)).or_default();
        level.on_hand = on_hand;
        Ok(StockLevel {
            variant_id: variant,
            location_id: location,
            on_hand,
            reserved: level.reserved,
        })
    }

    async fn stock(&self, variant: VariantId) -> Result<StockSummary> {
        let s = self.lock();
        if !s.variants.contains_key(&variant) {
            return Err(Error::not_found("variant", variant));
        }
        let levels = s.levels(variant);
        Ok(StockSummary::new(variant, levels))
    }

    async fn reserve(
        &self,
        requests: &[StockRequest],
        claims: &[UsageClaim],
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Reservation> {
        let mut s = self.lock();
        s.release_expired(now);
        s.reserve(requests, claims, None, expires_at, now)
    }

    async fn usage(&self, counter: &str) -> Result<u64> {
        Ok(self.lock().usage.get(counter).copied().unwrap_or(0))
    }

    async fn release(&self, id: ReservationId, _now: DateTime<Utc>) -> Result<Reservation> {
        let mut s = self.lock();
        if !s.reservations.contains_key(&id) {
            return Err(Error::not_found("reservation", id));
        }
        s.release_reservation(id);
        s.reservations
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::not_found("reservation", id))
    }

    async fn commit(&self, id: ReservationId, now: DateTime<Utc>) -> Result<Reservation> {
        let mut s = self.lock();
        s.release_expired(now);
        let r = s
            .reservations
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::not_found("reservation", id))?;
        match r.state {
            ReservationState::Pending { expires_at } => {
                s.pending.remove(&(expires_at, id));
            }
            ReservationState::Allocated { .. } => {}
            ReservationState::Released => return Err(Error::ReservationExpired),
            ReservationState::Committed => return Ok(r),
        }
        for line in &r.lines {
            if let Some(level) = s.stock.get_mut(&(line.variant_id, line.location_id)) {
                level.reserved -= i64::from(line.quantity);
                level.on_hand -= i64::from(line.quantity);
            }
        }
        let stored = s
            .reservations
            .get_mut(&id)
            .ok_or_else(|| Error::not_found("reservation", id))?;
        stored.state = ReservationState::Committed;
        Ok(stored.clone())
    }

    async fn reservation(&self, id: ReservationId) -> Result<Reservation> {
        self.lock()
            .reservations
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::not_found("reservation", id))
    }

    async fn release_expired(&self, now: DateTime<Utc>) -> Result<u64> {
        Ok(self.lock().release_expired(now))
    }

    async fn flag_low_stock(
        &self,
        variant: VariantId,
        low: bool,
        event: EventKind,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut s = self.lock();
        let changed = if low {
            s.low_stock.insert(variant)
        } else {
            s.low_stock.remove(&variant)
        };
        if changed {
            s.push_event(event, now);
        }
        Ok(changed)
    }
}

#[async_trait]
impl CheckoutStore for MemoryStore {
    async fn begin_checkout(&self, b: BeginCheckout) -> Result<CheckoutClaim> {
        let mut s = self.lock();
        let Some(record) = s.checkouts.get_mut(&b.key) else {
            return Ok(CheckoutClaim::Claimed(s.claim_new(b, None)));
        };
        if record.cart_id != b.cart_id || record.payment_token != b.payment_token {
            return Err(Error::IdempotencyConflict(b.key.to_string()));
        }
        match &record.state {
            CheckoutState::Completed { order_id } => Ok(CheckoutClaim::Completed(*order_id)),
            CheckoutState::Failed { failure } => Ok(CheckoutClaim::Failed(failure.clone())),
            CheckoutState::InProgress => Ok(CheckoutClaim::InProgress {
                lease_until: record.lease_until,
            }),
            CheckoutState::AwaitingPayment => match &record.awaiting {
                Some(a) => Ok(CheckoutClaim::AwaitingPayment(Box::new(a.session.clone()))),
                None => Err(Error::CorruptData {
                    entity: "checkout",
                    reason: "waiting without its payment".into(),
                }),
            },
            CheckoutState::Retryable => {
                let attempt = record
                    .attempt
                    .checked_add(1)
                    .ok_or_else(|| Error::Overflow("checkout attempts"))?;
                let token = Uuid::new_v4();
                record.attempt = attempt;
                record.state = CheckoutState::InProgress;
                record.lease_token = token;
                record.lease_until = b.lease_until;
                Ok(CheckoutClaim::Claimed(Lease {
                    key: b.key,
                    token,
                    attempt,
                }))
            }
        }
    }

    async fn begin_and_reserve(
        &self,
        b: BeginCheckout,
        requests: &[StockRequest],
        claims: &[UsageClaim],
        expires_at: DateTime<Utc>,
    ) -> Result<Option<(Lease, Reservation)>> {
        let mut s = self.lock();
        if s.checkouts.contains_key(&b.key) {
            return Ok(None);
        }
        s.release_expired(b.now);
        // All or nothing: a reservation that cannot be made changed nothing.
        let reservation = match s.reserve(requests, claims, Some(b.key.clone()), expires_at, b.now)
        {
            Ok(r) => r,
            Err(Error::OutOfStock { .. } | Error::UsageLimitReached { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let lease = s.claim_new(b, Some(reservation.id));
        Ok(Some((lease, reservation)))
    }

    async fn reserve_for_checkout(
        &self,
        lease: &Lease,
        requests: &[StockRequest],
        claims: &[UsageClaim],
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Reservation> {
        let mut s = self.lock();
        let previous = s.leased(lease)?.reservation_id;
        s.release_expired(now);
        let undo = previous.and_then(|id| s.reservations.get(&id).cloned());
        if let Some(prev) = previous {
            s.release_reservation(prev);
        }
        match s.reserve(requests, claims, Some(lease.key.clone()), expires_at, now) {
            Ok(reservation) => {
                if let Some(record) = s.checkouts.get_mut(&lease.key) {
                    record.reservation_id = Some(reservation.id);
                }
                Ok(reservation)
            }
            Err(e) => {
                // Put the earlier hold back exactly as it was.
                if let Some(old) = undo {
                    s.restore_reservation(old);
                }
                Err(e)
            }
        }
    }

    async fn place_order(&self, lease: &Lease, order: Order, now: DateTime<Utc>) -> Result<Order> {
        // The stored copy is made before the lock, which is held for the
        // checks and the writes only.
        let stored = order.clone();
        let mut s = self.lock();
        let record = s.leased(lease)?.clone();
        s.release_expired(now);
        let reservation_id = record
            .reservation_id
            .ok_or_else(|| Error::ReservationExpired)?;
        if order.reservation_id != reservation_id {
            return Err(Error::invalid(
                "order",
                "does not carry the checkout's reservation",
            ));
        }
        match s.reservations.get(&reservation_id) {
            Some(r) if r.is_live(now) => {}
            _ => return Err(Error::ReservationExpired),
        }
        let cart = s
            .carts
            .get(&order.cart_id)
            .ok_or_else(|| Error::not_found("cart", order.cart_id))?;
        cart.ensure_active()?;
        if cart.version() != order.pricing.cart_version {
            return Err(Error::Conflict("cart"));
        }
        if s.orders.contains_key(&order.id) {
            return Err(Error::AlreadyExists {
                what: "order",
                value: order.id.to_string(),
            });
        }
        let mut cart = cart.clone();
        cart.complete(order.id);
        cart.saved(now)?;
        let mut customer = match order.customer_id {
            Some(id) => Some(
                s.customers
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| Error::UnknownCustomer(id))?,
            ),
            None => None,
        };
        if let Some(c) = customer.as_mut() {
            c.count_order();
            c.saved()?;
        }
        // Every check passed: apply.
        if let Some(r) = s.reservations.get_mut(&reservation_id)
            && let ReservationState::Pending { expires_at } = r.state
        {
            s.pending.remove(&(expires_at, reservation_id));
        }
        if let Some(r) = s.reservations.get_mut(&reservation_id) {
            r.state = ReservationState::Allocated { order_id: order.id };
        }
        s.carts.insert(cart.id(), cart);
        if let Some(c) = customer {
            s.customer_orders
                .entry(c.id())
                .or_default()
                .insert(order.id);
            s.customers.insert(c.id(), c);
        }
        s.clear_awaiting(&lease.key);
        if let Some(rec) = s.checkouts.get_mut(&lease.key) {
            rec.state = CheckoutState::Completed { order_id: order.id };
        }
        s.push_event(
            EventKind::OrderPlaced {
                order_id: order.id,
                total: order.total(),
            },
            now,
        );
        if !order.payment.reference.is_empty() {
            s.payment_refs
                .insert(order.payment.reference.clone(), order.id);
        }
        s.orders.insert(order.id, stored);
        Ok(order)
    }

    async fn end_checkout(
        &self,
        lease: &Lease,
        end: CheckoutEnd,
        _now: DateTime<Utc>,
    ) -> Result<()> {
        let mut s = self.lock();
        let record = s.leased(lease)?;
        let reservation = record.reservation_id;
        if matches!(end, CheckoutEnd::Untouched) && reservation.is_none() && record.attempt == 1 {
            s.checkouts.remove(&lease.key);
            return Ok(());
        }
        if let Some(r) = reservation {
            s.release_reservation(r);
        }
        s.clear_awaiting(&lease.key);
        if let Some(rec) = s.checkouts.get_mut(&lease.key) {
            rec.reservation_id = None;
            rec.state = match end {
                CheckoutEnd::Failed(failure) => CheckoutState::Failed { failure },
                CheckoutEnd::Retryable => CheckoutState::Retryable,
                CheckoutEnd::Untouched => {
                    if reservation.is_none() {
                        // This attempt's provider key was never used.
                        rec.attempt = rec.attempt.saturating_sub(1).max(1);
                    }
                    CheckoutState::Retryable
                }
            };
        }
        Ok(())
    }

    async fn checkout(&self, key: &IdempotencyKey) -> Result<Option<CheckoutRecord>> {
        Ok(self.lock().checkouts.get(key).cloned())
    }

    async fn prune_checkouts(&self, before: DateTime<Utc>) -> Result<u64> {
        let mut s = self.lock();
        let was = s.checkouts.len();
        s.checkouts.retain(|_, r| {
            r.created_at >= before
                || matches!(
                    r.state,
                    CheckoutState::InProgress | CheckoutState::AwaitingPayment
                )
        });
        let State {
            checkouts,
            session_refs,
            checkout_refs,
            ..
        } = &mut *s;
        session_refs.retain(|_, key| checkouts.contains_key(key));
        checkout_refs.retain(|key, _| checkouts.contains_key(key));
        Ok((was - s.checkouts.len()) as u64)
    }

    async fn stale_checkouts(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<CheckoutRecord>> {
        let limit = check_limit(limit)?;
        let s = self.lock();
        let mut stale: Vec<CheckoutRecord> = s
            .checkouts
            .values()
            .filter(|r| {
                matches!(
                    r.state,
                    CheckoutState::InProgress | CheckoutState::AwaitingPayment
                ) && r.lease_until <= now
            })
            .cloned()
            .collect();
        stale.sort_by_key(|r| (r.lease_until, r.key.clone()));
        stale.truncate(limit);
        Ok(stale)
    }

    async fn claim_stale(
        &self,
        key: &IdempotencyKey,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<Lease>> {
        let mut s = self.lock();
        let Some(r) = s.checkouts.get_mut(key) else {
            return Ok(None);
        };
        let open = matches!(
            r.state,
            CheckoutState::InProgress | CheckoutState::AwaitingPayment
        );
        if !open || r.lease_until > now {
            return Ok(None);
        }
        r.state = CheckoutState::InProgress;
        r.lease_token = Uuid::new_v4();
        r.lease_until = lease_until;
        Ok(Some(Lease {
            key: key.clone(),
            token: r.lease_token,
            attempt: r.attempt,
        }))
    }

    async fn fence_checkout(&self, lease: &Lease, lease_until: DateTime<Utc>) -> Result<()> {
        let mut s = self.lock();
        s.leased(lease)?;
        if let Some(record) = s.checkouts.get_mut(&lease.key) {
            record.awaiting = None;
            record.lease_until = lease_until;
        }
        Ok(())
    }

    async fn await_payment(
        &self,
        lease: &Lease,
        awaiting: &AwaitingPayment,
        until: DateTime<Utc>,
        hold_until: DateTime<Utc>,
    ) -> Result<()> {
        let mut s = self.lock();
        let record = s.leased(lease)?;
        let reservation = record.reservation_id.ok_or(Error::ReservationExpired)?;
        let expires_at = match s.reservations.get(&reservation).map(|r| &r.state) {
            Some(ReservationState::Pending { expires_at }) => *expires_at,
            _ => return Err(Error::ReservationExpired),
        };
        if let Some(taken) = s.session_refs.get(&awaiting.session.reference)
            && *taken != lease.key
        {
            return Err(Error::AlreadyExists {
                what: "payment session",
                value: awaiting.session.reference.clone(),
            });
        }
        // Keep the stock until the session can be settled.
        let keep = expires_at.max(hold_until);
        s.pending.remove(&(expires_at, reservation));
        s.pending.insert((keep, reservation));
        if let Some(r) = s.reservations.get_mut(&reservation) {
            r.state = ReservationState::Pending { expires_at: keep };
        }
        let reference = awaiting.session.reference.clone();
        if let Some(old) = s.checkout_refs.insert(lease.key.clone(), reference.clone())
            && old != reference
        {
            s.session_refs.remove(&old);
        }
        s.session_refs.insert(reference, lease.key.clone());
        if let Some(rec) = s.checkouts.get_mut(&lease.key) {
            rec.state = CheckoutState::AwaitingPayment;
            rec.lease_until = until;
            rec.awaiting = Some(Box::new(awaiting.clone()));
        }
        Ok(())
    }

    async fn claim_awaiting(
        &self,
        key: &IdempotencyKey,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<(Lease, AwaitingPayment)>> {
        let mut s = self.lock();
        let Some(r) = s.checkouts.get_mut(key) else {
            return Ok(None);
        };
        if r.state != CheckoutState::AwaitingPayment {
            return Ok(None);
        }
        let Some(awaiting) = r.awaiting.as_deref().cloned() else {
            return Ok(None);
        };
        r.state = CheckoutState::InProgress;
        r.lease_token = Uuid::new_v4();
        r.lease_until = lease_until;
        Ok(Some((
            Lease {
                key: key.clone(),
                token: r.lease_token,
                attempt: r.attempt,
            },
            awaiting,
        )))
    }

    async fn checkout_by_payment_reference(
        &self,
        reference: &str,
    ) -> Result<Option<CheckoutRecord>> {
        let s = self.lock();
        Ok(s.session_refs
            .get(reference)
            .and_then(|key| s.checkouts.get(key))
            .cloned())
    }
}

#[async_trait]
impl OrderStore for MemoryStore {
    /// Scans every order (the memory store keeps no index by email).
    async fn orders_placed_by(
        &self,
        customer: Option<CustomerId>,
        email: Option<&Email>,
    ) -> Result<u64> {
        if customer.is_none() && email.is_none() {
            return Ok(0);
        }
        let s = self.lock();
        let n = s
            .orders
            .values()
            .filter(|o| o.placed_by(customer, email))
            .count();
        Ok(u64::try_from(n).unwrap_or(u64::MAX))
    }

    async fn order(&self, id: OrderId) -> Result<Order> {
        self.lock()
            .orders
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::not_found("order", id))
    }

    async fn order_by_payment_reference(&self, reference: &str) -> Result<Option<Order>> {
        if reference.is_empty() {
            return Ok(None);
        }
        let s = self.lock();
        Ok(s.payment_refs
            .get(reference)
            .and_then(|id| s.orders.get(id))
            .cloned())
    }

    async fn find_orders(&self, query: &OrderQuery) -> Result<Vec<Order>> {
        let limit = check_limit(query.limit)?;
        let s = self.lock();
        let candidates: Box<dyn Iterator<Item = &Order>> = match query.customer {
            Some(c) => Box::new(
                s.customer_orders
                    .get(&c)
                    .into_iter()
                    .flat_map(|ids| ids.iter().rev())
                    .filter_map(|id| s.orders.get(id)),
            ),
            None => Box::new(s.orders.values().rev()),
        };
        Ok(candidates
            .filter(|o| query.matches(o))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn save_order(&self, change: OrderChange, now: DateTime<Utc>) -> Result<Order> {
        let mut s = self.lock();
        let id = change.order.id;
        let stored = s
            .orders
            .get(&id)
            .ok_or_else(|| Error::not_found("order", id))?;
        if stored.version != change.order.version {
            return Err(Error::Conflict("order"));
        }
        let mut order = change.order;
        order.saved()?;
        // Work out every stock and reservation change before making any.
        let mut held = match s.reservations.get(&order.reservation_id) {
            Some(r) => r.clone(),
            None => return Err(Error::not_found("reservation", order.reservation_id)),
        };
        let mut levels: HashMap<(VariantId, LocationId), Level> = HashMap::new();
        for line in &change.ship {
            if !matches!(held.state, ReservationState::Allocated { .. }) {
                return Err(Error::invalid(
                    "shipment",
                    "the order's stock is no longer held",
                ));
            }
            let q = line.quantity;
            let from = held
                .lines
                .iter_mut()
                .find(|l| {
                    l.variant_id == line.variant_id
                        && l.location_id == line.location_id
                        && l.quantity >= q
                })
                .ok_or_else(|| {
                    Error::invalid("shipment", "ships units the order does not hold there")
                })?;
            from.quantity -= q;
            let key = (line.variant_id, line.location_id);
            let level = match levels.get(&key) {
                Some(l) => *l,
                None => s
                    .stock
                    .get(&key)
                    .copied()
                    .ok_or_else(|| Error::not_found("stock level", line.variant_id))?,
            };
            levels.insert(
                key,
                Level {
                    on_hand: level.on_hand - i64::from(q),
                    reserved: level.reserved - i64::from(q),
                },
            );
        }
        held.lines.retain(|l| l.quantity > 0);
        if !change.ship.is_empty() && held.lines.is_empty() {
            held.state = ReservationState::Committed;
        }
        for line in &change.restock {
            let key = (line.variant_id, line.location_id);
            let level = match levels.get(&key) {
                Some(l) => *l,
                None => s
                    .stock
                    .get(&key)
                    .copied()
                    .ok_or_else(|| Error::not_found("stock level", line.variant_id))?,
            };
            let on_hand = level
                .on_hand
                .checked_add(i64::from(line.quantity))
                .filter(|v| *v <= MAX_ON_HAND)
                .ok_or_else(|| Error::Overflow("stock on hand"))?;
            levels.insert(key, Level { on_hand, ..level });
        }
        s.stock.extend(levels);
        s.reservations.insert(held.id, held);
        if change.release_reservation {
            s.release_reservation(order.reservation_id);
        }
        for kind in change.events {
            s.push_event(kind, now);
        }
        s.orders.insert(id, order.clone());
        Ok(order)
    }
}

#[async_trait]
impl EventStore for MemoryStore {
    async fn pending_events(&self, consumer: &str, limit: usize) -> Result<Vec<Event>> {
        let consumer = check_consumer(consumer)?;
        let limit = check_limit(limit)?;
        let s = self.lock();
        let start = s.cursors.get(consumer).copied().unwrap_or(0);
        Ok(s.events.iter().skip(start).take(limit).cloned().collect())
    }

    async fn ack_events(&self, consumer: &str, through: EventId) -> Result<()> {
        let consumer = check_consumer(consumer)?;
        let mut s = self.lock();
        let position = s
            .events
            .iter()
            .position(|e| e.id == through)
            .ok_or_else(|| Error::not_found("event", through))?;
        let cursor = s.cursors.entry(consumer.to_owned()).or_default();
        *cursor = (*cursor).max(position + 1);
        Ok(())
    }

    async fn record_events(&self, events: Vec<EventKind>, now: DateTime<Utc>) -> Result<()> {
        let mut s = self.lock();
        for kind in events {
            s.push_event(kind, now);
        }
        Ok(())
    }

    async fn prune_events(&self, before: DateTime<Utc>) -> Result<u64> {
        let mut s = self.lock();
        let Some(delivered) = s.cursors.values().copied().min() else {
            return Ok(0);
        };
        // Cursors are positions: only a prefix can go.
        let gone = s
            .events
            .iter()
            .take(delivered)
            .take_while(|e| e.occurred_at < before)
            .count();
        s.events.drain(..gone);
        for cursor in s.cursors.values_mut() {
            *cursor -= gone;
        }
        Ok(gone as u64)
    }
}

#[async_trait]
impl PromotionStore for MemoryStore {
    async fn save_promotion(&self, promotion: Promotion) -> Result<()> {
        let mut s = self.lock();
        s.promotions.insert(promotion.id, promotion);
        s.pricing_version += 1;
        Ok(())
    }

    async fn promotion(&self, id: PromotionId) -> Result<Promotion> {
        self.lock()
            .promotions
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::not_found("promotion", id))
    }

    async fn promotions(&self) -> Result<Vec<Promotion>> {
        Ok(self.lock().promotions.values().cloned().collect())
    }

    async fn save_price_list(&self, list: PriceList) -> Result<()> {
        let mut s = self.lock();
        s.price_lists.insert(list.id, list);
        s.pricing_version += 1;
        Ok(())
    }

    async fn price_lists(&self) -> Result<Vec<PriceList>> {
        Ok(self.lock().price_lists.values().cloned().collect())
    }

    async fn insert_coupons(&self, coupons: &[Coupon]) -> Result<()> {
        let mut s = self.lock();
        let mut fresh = HashSet::with_capacity(coupons.len());
        for c in coupons {
            c.validate()?;
            if let Some(id) = c.promotions().find(|id| !s.promotions.contains_key(id)) {
                return Err(Error::not_found("promotion", id));
            }
            if s.coupons.contains_key(&c.code) || !fresh.insert(c.code.as_str()) {
                return Err(Error::AlreadyExists {
                    what: "coupon code",
                    value: c.code.clone(),
                });
            }
        }
        for c in coupons {
            s.coupons.insert(c.code.clone(), c.clone());
        }
        Ok(())
    }

    async fn pricing_inputs(
        &self,
        variants: &[VariantId],
        codes: &[String],
    ) -> Result<PricingInputs> {
        let s = self.lock();
        let sources = variants
            .iter()
            .filter_map(|id| s.entry_source(*id))
            .collect();
        let coupons = codes
            .iter()
            .filter_map(|c| s.coupons.get(c).cloned())
            .collect();
        let version = s.pricing_version;
        drop(s);
        Ok(PricingInputs {
            entries: build_entries(sources),
            coupons,
            version,
        })
    }

    async fn cart_for_pricing(
        &self,
        cart_id: CartId,
        extra: &[VariantId],
    ) -> Result<(Cart, PricingInputs)> {
        // One lock: the cart and what pricing it reads are one consistent view.
        let s = self.lock();
        let cart = s
            .carts
            .get(&cart_id)
            .cloned()
            .ok_or_else(|| Error::not_found("cart", cart_id))?;
        let sources = cart
            .lines()
            .iter()
            .map(|l| l.variant_id)
            .chain(extra.iter().copied())
            .filter_map(|id| s.entry_source(id))
            .collect();
        let coupons = cart
            .coupon_codes()
            .iter()
            .filter_map(|c| s.coupons.get(c).cloned())
            .collect();
        let version = s.pricing_version;
        drop(s);
        Ok((
            cart,
            PricingInputs {
                entries: build_entries(sources),
                coupons,
                version,
            },
        ))
    }
}

#[async_trait]
impl GiftCardStore for MemoryStore {
    async fn insert_gift_card(&self, card: GiftCard) -> Result<()> {
        let mut s = self.lock();
        let taken = s.gift_cards.contains_key(&card.id())
            || card
                .code_hash()
                .is_some_and(|h| s.gift_codes.contains_key(h));
        if taken {
            return Err(Error::AlreadyExists {
                what: "gift card",
                value: card.id().to_string(),
            });
        }
        if let Some(hash) = card.code_hash() {
            s.gift_codes.insert(hash.to_owned(), card.id());
        }
        s.gift_cards.insert(card.id(), card);
        Ok(())
    }

    async fn gift_card(&self, id: GiftCardId) -> Result<GiftCard> {
        self.lock()
            .gift_cards
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::not_found("gift card", id))
    }

    async fn gift_card_by_code(&self, code_hash: &str) -> Result<Option<GiftCard>> {
        let s = self.lock();
        Ok(s.gift_codes
            .get(code_hash)
            .and_then(|id| s.gift_cards.get(id))
            .cloned())
    }

    async fn gift_cards_of(&self, customer: CustomerId) -> Result<Vec<GiftCard>> {
        let s = self.lock();
        let mut cards: Vec<GiftCard> = s
            .gift_cards
            .values()
            .filter(|c| c.customer_id() == Some(customer))
            .take(crate::store::MAX_PAGE_SIZE)
            .cloned()
            .collect();
        cards.sort_by_key(|c| (c.created_at(), c.id()));
        Ok(cards)
    }

    async fn post_gift_card_entry(
        &self,
        id: GiftCardId,
        entry: NewEntry,
        now: DateTime<Utc>,
    ) -> Result<GiftCard> {
        let mut s = self.lock();
        let card = s
            .gift_cards
            .get_mut(&id)
            .ok_or_else(|| Error::not_found("gift card", id))?;
        // Posted on a copy, so a refusal changes nothing.
        let mut next = card.clone();
        next.post(entry, now)?;
        *card = next.clone();
        Ok(next)
    }

    async fn gift_card_entries_for(
        &self,
        reference: &str,
    ) -> Result<Vec<(GiftCardId, LedgerEntry)>> {
        let s = self.lock();
        Ok(s.gift_cards
            .values()
            .flat_map(|c| {
                c.entries()
                    .iter()
                    .filter(|e| e.reference == reference)
                    .map(|e| (c.id(), e.clone()))
            })
            .collect())
    }
}

#[async_trait]
impl ChannelStore for MemoryStore {
    async fn save_channel(&self, channel: SalesChannel) -> Result<SalesChannel> {
        channel.validate()?;
        let mut s = self.lock();
        let taken = s
            .channels
            .values()
            .any(|c| c.id != channel.id && c.name.trim().eq_ignore_ascii_case(channel.name.trim()));
        if taken {
            return Err(Error::AlreadyExists {
                what: "sales channel",
                value: channel.name.clone(),
            });
        }
        match s.channels.get(&channel.id) {
            Some(stored) if stored.version != channel.version => {
                return Err(Error::Conflict("sales channel"));
            }
            None if channel.version != 0 => {
                return Err(Error::not_found("sales channel", channel.id));
            }
            _ => {}
        }
        let mut saved = channel;
        saved.version += 1;
        s.channels.insert(saved.id, saved.clone());
        Ok(saved)
    }

    async fn channel(&self, id: ChannelId) -> Result<SalesChannel> {
        self.lock()
            .channels
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::not_found("sales channel", id))
    }

    async fn channels(&self) -> Result<Vec<SalesChannel>> {
        let mut all: Vec<SalesChannel> = self
            .lock()
            .channels
            .values()
            .take(crate::store::MAX_PAGE_SIZE)
            .cloned()
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(all)
    }
}
