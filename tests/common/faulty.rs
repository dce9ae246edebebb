//! A store wrapper that fails chosen commands on demand, before or after they
//! take effect, to test every step boundary of the sagas.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use cartwright::Result;
use cartwright::cart::Cart;
use cartwright::catalog::{CatalogEntry, Category, Collection, Product, Sku};
use cartwright::customer::{Customer, CustomerGroup, Email};
use cartwright::id::*;
use cartwright::inventory::{
    Location, Reservation, StockLevel, StockRequest, StockSummary, UsageClaim,
};
use cartwright::money::Currency;
use cartwright::order::{Order, OrderChange, OrderQuery};
use cartwright::pricing::{Coupon, PriceList, Promotion};
use cartwright::store::*;
use chrono::{DateTime, Utc};

/// The commands faults can be injected into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    PlaceOrder,
    SaveOrder,
    ReserveForCheckout,
    EndCheckout,
}

/// When the injected failure strikes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// The command fails and changes nothing.
    Before,
    /// The command takes effect, then its answer is lost.
    After,
}

pub struct FaultyStore {
    inner: Arc<dyn Store>,
    faults: Mutex<HashMap<Command, VecDeque<When>>>,
    /// Pretend to prune and keep everything (a broken store, for the kit's own test).
    never_prune: std::sync::atomic::AtomicBool,
}

impl FaultyStore {
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            inner,
            faults: Mutex::new(HashMap::new()),
            never_prune: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub fn inject(&self, command: Command, when: When) {
        self.faults
            .lock()
            .unwrap()
            .entry(command)
            .or_default()
            .push_back(when);
    }

    /// Turns this into a broken store that never prunes.
    pub fn never_prune(&self) {
        self.never_prune
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Drops every planned fault.
    pub fn clear(&self) {
        self.faults.lock().unwrap().clear();
    }

    fn next(&self, command: Command) -> Option<When> {
        self.faults
            .lock()
            .unwrap()
            .get_mut(&command)
            .and_then(VecDeque::pop_front)
    }

    /// Runs `op` with the fault planned for `command`, if any.
    async fn with<T>(
        &self,
        command: Command,
        op: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let fail = || cartwright::Error::Storage {
            message: format!("injected fault in {command:?}"),
            source: None,
        };
        match self.next(command) {
            Some(When::Before) => Err(fail()),
            Some(When::After) => {
                op.await?;
                Err(fail())
            }
            None => op.await,
        }
    }
}

#[async_trait]
impl CatalogStore for FaultyStore {
    async fn insert_product(&self, p: Product) -> Result<()> {
        self.inner.insert_product(p).await
    }
    async fn update_product(&self, p: Product) -> Result<()> {
        self.inner.update_product(p).await
    }
    async fn product(&self, id: ProductId) -> Result<Product> {
        self.inner.product(id).await
    }
    async fn products(&self, after: Option<ProductId>, limit: usize) -> Result<Vec<Product>> {
        self.inner.products(after, limit).await
    }
    async fn entry_by_sku(&self, sku: &Sku) -> Result<CatalogEntry> {
        self.inner.entry_by_sku(sku).await
    }
    async fn entries(&self, ids: &[VariantId]) -> Result<HashMap<VariantId, CatalogEntry>> {
        self.inner.entries(ids).await
    }
    async fn insert_category(&self, c: Category) -> Result<()> {
        self.inner.insert_category(c).await
    }
    async fn categories(&self) -> Result<Vec<Category>> {
        self.inner.categories().await
    }
    async fn insert_collection(&self, c: Collection) -> Result<()> {
        self.inner.insert_collection(c).await
    }
    async fn collections(&self) -> Result<Vec<Collection>> {
        self.inner.collections().await
    }
}

#[async_trait]
impl CustomerStore for FaultyStore {
    async fn insert_customer(&self, c: Customer) -> Result<()> {
        self.inner.insert_customer(c).await
    }
    async fn save_customer(&self, c: Customer) -> Result<Customer> {
        self.inner.save_customer(c).await
    }
    async fn customer(&self, id: CustomerId) -> Result<Customer> {
        self.inner.customer(id).await
    }
    async fn customer_by_email(&self, e: &Email) -> Result<Option<Customer>> {
        self.inner.customer_by_email(e).await
    }
    async fn insert_group(&self, g: CustomerGroup) -> Result<()> {
        self.inner.insert_group(g).await
    }
    async fn groups(&self) -> Result<Vec<CustomerGroup>> {
        self.inner.groups().await
    }
}

#[async_trait]
impl CartStore for FaultyStore {
    async fn insert_cart(&self, c: Cart) -> Result<()> {
        self.inner.insert_cart(c).await
    }
    async fn cart(&self, id: CartId) -> Result<Cart> {
        self.inner.cart(id).await
    }
    async fn save_carts(&self, carts: Vec<Cart>, now: DateTime<Utc>) -> Result<Vec<Cart>> {
        self.inner.save_carts(carts, now).await
    }
    async fn active_cart_for(&self, c: CustomerId, cur: Currency) -> Result<Option<Cart>> {
        self.inner.active_cart_for(c, cur).await
    }
}

#[async_trait]
impl InventoryStore for FaultyStore {
    async fn insert_location(&self, l: Location) -> Result<()> {
        self.inner.insert_location(l).await
    }
    async fn locations(&self) -> Result<Vec<Location>> {
        self.inner.locations().await
    }
    async fn set_stock(&self, v: VariantId, l: LocationId, n: i64) -> Result<StockLevel> {
        self.inner.set_stock(v, l, n).await
    }
    async fn adjust_stock(&self, v: VariantId, l: LocationId, d: i64) -> Result<StockLevel> {
        self.inner.adjust_stock(v, l, d).await
    }
    async fn stock(&self, v: VariantId) -> Result<StockSummary> {
        self.inner.stock(v).await
    }
    async fn reserve(
        &self,
        r: &[StockRequest],
        c: &[UsageClaim],
        e: DateTime<Utc>,
        n: DateTime<Utc>,
    ) -> Result<Reservation> {
        self.inner.reserve(r, c, e, n).await
    }
    async fn usage(&self, c: &str) -> Result<u64> {
        self.inner.usage(c).await
    }
    async fn release(&self, id: ReservationId, n: DateTime<Utc>) -> Result<Reservation> {
        self.inner.release(id, n).await
    }
    async fn commit(&self, id: ReservationId, n: DateTime<Utc>) -> Result<Reservation> {
        self.inner.commit(id, n).await
    }
    async fn reservation(&self, id: ReservationId) -> Result<Reservation> {
        self.inner.reservation(id).await
    }
    async fn release_expired(&self, n: DateTime<Utc>) -> Result<u64> {
        self.inner.release_expired(n).await
    }
}

#[async_trait]
impl CheckoutStore for FaultyStore {
    async fn prune_checkouts(&self, before: chrono::DateTime<chrono::Utc>) -> Result<u64> {
        if self.never_prune.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(0);
        }
        self.inner.prune_checkouts(before).await
    }
    async fn begin_checkout(&self, b: BeginCheckout) -> Result<CheckoutClaim> {
        self.inner.begin_checkout(b).await
    }
    async fn reserve_for_checkout(
        &self,
        l: &Lease,
        r: &[StockRequest],
        c: &[UsageClaim],
        e: DateTime<Utc>,
        n: DateTime<Utc>,
    ) -> Result<Reservation> {
        self.with(
            Command::ReserveForCheckout,
            self.inner.reserve_for_checkout(l, r, c, e, n),
        )
        .await
    }
    async fn place_order(&self, l: &Lease, o: Order, n: DateTime<Utc>) -> Result<Order> {
        self.with(Command::PlaceOrder, self.inner.place_order(l, o, n))
            .await
    }
    async fn end_checkout(&self, l: &Lease, e: CheckoutEnd, n: DateTime<Utc>) -> Result<()> {
        self.with(Command::EndCheckout, self.inner.end_checkout(l, e, n))
            .await
    }
    async fn checkout(&self, k: &IdempotencyKey) -> Result<Option<CheckoutRecord>> {
        self.inner.checkout(k).await
    }
    async fn stale_checkouts(&self, n: DateTime<Utc>, l: usize) -> Result<Vec<CheckoutRecord>> {
        self.inner.stale_checkouts(n, l).await
    }
    async fn claim_stale(
        &self,
        k: &IdempotencyKey,
        n: DateTime<Utc>,
        u: DateTime<Utc>,
    ) -> Result<Option<Lease>> {
        self.inner.claim_stale(k, n, u).await
    }
}

#[async_trait]
impl OrderStore for FaultyStore {
    async fn order(&self, id: OrderId) -> Result<Order> {
        self.inner.order(id).await
    }
    async fn order_by_payment_reference(&self, r: &str) -> Result<Option<Order>> {
        self.inner.order_by_payment_reference(r).await
    }
    async fn find_orders(&self, q: &OrderQuery) -> Result<Vec<Order>> {
        self.inner.find_orders(q).await
    }
    async fn save_order(&self, c: OrderChange, n: DateTime<Utc>) -> Result<Order> {
        self.with(Command::SaveOrder, self.inner.save_order(c, n))
            .await
    }
}

#[async_trait]
impl EventStore for FaultyStore {
    async fn record_events(
        &self,
        events: Vec<EventKind>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<()> {
        self.inner.record_events(events, now).await
    }
    async fn prune_events(&self, before: chrono::DateTime<chrono::Utc>) -> Result<u64> {
        self.inner.prune_events(before).await
    }
    async fn pending_events(&self, c: &str, l: usize) -> Result<Vec<Event>> {
        self.inner.pending_events(c, l).await
    }
    async fn ack_events(&self, c: &str, t: EventId) -> Result<()> {
        self.inner.ack_events(c, t).await
    }
}

#[async_trait]
impl PromotionStore for FaultyStore {
    async fn save_promotion(&self, p: Promotion) -> Result<()> {
        self.inner.save_promotion(p).await
    }
    async fn promotion(&self, id: PromotionId) -> Result<Promotion> {
        self.inner.promotion(id).await
    }
    async fn promotions(&self) -> Result<Vec<Promotion>> {
        self.inner.promotions().await
    }
    async fn save_price_list(&self, l: PriceList) -> Result<()> {
        self.inner.save_price_list(l).await
    }
    async fn price_lists(&self) -> Result<Vec<PriceList>> {
        self.inner.price_lists().await
    }
    async fn insert_coupons(&self, c: &[Coupon]) -> Result<()> {
        self.inner.insert_coupons(c).await
    }
    async fn pricing_inputs(&self, v: &[VariantId], c: &[String]) -> Result<PricingInputs> {
        self.inner.pricing_inputs(v, c).await
    }
}
