//! [`FaultyStore`]: a store wrapper that fails chosen commands on demand,
//! before or after they take effect, or holds them back — until the test
//! opens a [`Gate`], or for a while — to test every step boundary of the
//! checkout saga and the money path against a store of your own, and
//! every lease that can run out while a command is on its way.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use crate::Result;
use crate::cart::Cart;
use crate::catalog::{CatalogEntry, Category, Collection, Product, Sku};
use crate::customer::{Customer, CustomerGroup, Email};
use crate::id::*;
use crate::inventory::{Location, Reservation, StockLevel, StockRequest, StockSummary, UsageClaim};
use crate::money::Currency;
use crate::order::{Order, OrderChange, OrderQuery};
use crate::pricing::{Coupon, PriceList, Promotion};
use crate::store::*;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// The store commands faults can be injected into: those at the step
/// boundaries of the checkout saga and the money path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StoreCommand {
    /// [`CheckoutStore::place_order`].
    PlaceOrder,
    /// [`OrderStore::save_order`].
    SaveOrder,
    /// [`CheckoutStore::reserve_for_checkout`].
    ReserveForCheckout,
    /// [`CheckoutStore::end_checkout`].
    EndCheckout,
    /// [`CheckoutStore::begin_and_reserve`].
    BeginAndReserve,
    /// [`CheckoutStore::await_payment`].
    AwaitPayment,
    /// [`CheckoutStore::claim_awaiting`].
    ClaimAwaiting,
    /// [`GiftCardStore::post_gift_card_entry`].
    PostGiftCardEntry,
    /// [`CheckoutStore::fence_checkout`].
    FenceCheckout,
    /// [`CheckoutStore::claim_stale`].
    ClaimStale,
}

/// Where a test holds a stalled command ([`FaultyStore::stall`]): the
/// command waits at the gate, before it takes effect, until the test
/// opens it — so the test can run out its lease and let another engine
/// take over meanwhile.
#[derive(Debug, Default)]
pub struct Gate {
    arrived: tokio::sync::Notify,
    open: tokio::sync::Notify,
}

impl Gate {
    /// A closed gate.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Waits until a call has arrived at the gate (returns at once if one
    /// already has).
    pub async fn arrived(&self) {
        self.arrived.notified().await;
    }

    /// Lets the call waiting at the gate (or the next to arrive) go on.
    pub fn open(&self) {
        self.open.notify_one();
    }

    /// Called by the stalled command.
    pub(crate) async fn pass(&self) {
        self.arrived.notify_one();
        self.open.notified().await;
    }
}

/// How a stalled command is held back.
#[derive(Debug, Clone)]
enum Stall {
    Gate(Arc<Gate>),
    Delay(std::time::Duration),
}

/// When the injected failure strikes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum When {
    /// The command fails and changes nothing.
    Before,
    /// The command takes effect, then its answer is lost.
    After,
}

/// A [`Store`] that forwards every command to the store it wraps, except
/// that a planned fault makes a chosen command fail — before it takes
/// effect, or after (the change is made and the answer is lost, as when a
/// connection dies on commit). Faults are used once each, in the order
/// planned.
///
/// ```
/// # async fn run() -> cartwright::Result<()> {
/// use std::sync::Arc;
/// use cartwright::store::{MemoryStore, Store};
/// use cartwright::testkit::{FaultyStore, StoreCommand, When};
///
/// let store = Arc::new(FaultyStore::new(Arc::new(MemoryStore::new())));
/// store.inject(StoreCommand::PlaceOrder, When::After);
/// // Build an engine on `store.clone() as Arc<dyn Store>`, check out, then
/// // prove that recovery finishes or undoes what the lost answer left.
/// # Ok(())
/// # }
/// ```
pub struct FaultyStore {
    inner: Arc<dyn Store>,
    faults: Mutex<HashMap<StoreCommand, VecDeque<When>>>,
    stalls: Mutex<HashMap<StoreCommand, VecDeque<Stall>>>,
    /// Pretend to prune and keep everything (a broken store, for the kit's own test).
    never_prune: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for FaultyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultyStore").finish_non_exhaustive()
    }
}

impl FaultyStore {
    /// Wraps `inner`, with no faults planned.
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            inner,
            faults: Mutex::new(HashMap::new()),
            stalls: Mutex::new(HashMap::new()),
            never_prune: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Plans one failure of `command`, after those already planned for it.
    pub fn inject(&self, command: StoreCommand, when: When) {
        self.faults
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(command)
            .or_default()
            .push_back(when);
    }

    /// Holds the next call of `command` at the returned [`Gate`], before it
    /// takes effect, until the test opens it (a settler stalled past its
    /// lease, a recovery that stopped half-way). Stalls are used once each,
    /// in the order planned, before any planned fault.
    pub fn stall(&self, command: StoreCommand) -> Arc<Gate> {
        let gate = Gate::new();
        self.plan_stall(command, Stall::Gate(gate.clone()));
        gate
    }

    /// Delays the next call of `command` by `delay` (real time) before it
    /// takes effect: a slow store.
    pub fn delay(&self, command: StoreCommand, delay: std::time::Duration) {
        self.plan_stall(command, Stall::Delay(delay));
    }

    fn plan_stall(&self, command: StoreCommand, stall: Stall) {
        self.stalls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(command)
            .or_default()
            .push_back(stall);
    }

    /// Turns this into a broken store that pretends to prune and keeps
    /// everything (for testing the conformance suite itself).
    pub fn never_prune(&self) {
        self.never_prune
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Drops every planned fault and stall (gates already reached stay
    /// closed until opened).
    pub fn clear(&self) {
        self.faults
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
        self.stalls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    fn next(&self, command: StoreCommand) -> Option<When> {
        self.faults
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get_mut(&command)
            .and_then(VecDeque::pop_front)
    }

    /// Runs `op` with the fault planned for `command`, if any.
    async fn with<T>(
        &self,
        command: StoreCommand,
        op: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let fail = || crate::Error::Storage {
            message: format!("injected fault in {command:?}"),
            source: None,
        };
        let stall = self
            .stalls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get_mut(&command)
            .and_then(VecDeque::pop_front);
        match stall {
            Some(Stall::Gate(gate)) => gate.pass().await,
            Some(Stall::Delay(delay)) => tokio::time::sleep(delay).await,
            None => {}
        }
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
    async fn entries_by_sku(&self, skus: &[Sku]) -> Result<HashMap<Sku, CatalogEntry>> {
        self.inner.entries_by_sku(skus).await
    }
    async fn products_by_id(&self, ids: &[ProductId]) -> Result<HashMap<ProductId, Product>> {
        self.inner.products_by_id(ids).await
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
    async fn update_category(&self, c: Category) -> Result<()> {
        self.inner.update_category(c).await
    }
    async fn delete_category(&self, id: crate::id::CategoryId) -> Result<()> {
        self.inner.delete_category(id).await
    }
    async fn update_collection(&self, c: Collection) -> Result<()> {
        self.inner.update_collection(c).await
    }
    async fn delete_collection(&self, id: crate::id::CollectionId) -> Result<()> {
        self.inner.delete_collection(id).await
    }
    async fn delete_product(&self, id: ProductId) -> Result<()> {
        self.inner.delete_product(id).await
    }
    async fn find_products(&self, q: &crate::catalog::ProductQuery) -> Result<Vec<Product>> {
        self.inner.find_products(q).await
    }
    async fn import_catalog(&self, batch: CatalogBatch) -> Result<()> {
        self.inner.import_catalog(batch).await
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
    async fn issue_account_token(
        &self,
        h: crate::customer::TokenHolder<'_>,
        t: crate::customer::AccountToken,
        n: DateTime<Utc>,
    ) -> Result<Option<CustomerId>> {
        self.inner.issue_account_token(h, t, n).await
    }
    async fn use_account_token(
        &self,
        c: CustomerId,
        p: &str,
        change: &crate::customer::AccountChange,
        n: DateTime<Utc>,
    ) -> Result<Customer> {
        self.inner.use_account_token(c, p, change, n).await
    }
    async fn prune_account_tokens(&self, n: DateTime<Utc>) -> Result<u64> {
        self.inner.prune_account_tokens(n).await
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
    async fn erase_customer(
        &self,
        id: CustomerId,
        now: DateTime<Utc>,
    ) -> Result<crate::store::Erasure> {
        self.inner.erase_customer(id, now).await
    }
    async fn find_customers(
        &self,
        query: &crate::customer::CustomerQuery,
    ) -> Result<Vec<Customer>> {
        self.inner.find_customers(query).await
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
    async fn stock_levels(
        &self,
        v: &[VariantId],
    ) -> Result<std::collections::HashMap<VariantId, Vec<crate::inventory::StockLevel>>> {
        self.inner.stock_levels(v).await
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
    async fn flag_low_stock(
        &self,
        v: VariantId,
        threshold: u32,
        n: DateTime<Utc>,
    ) -> Result<Option<EventKind>> {
        self.inner.flag_low_stock(v, threshold, n).await
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
    async fn begin_and_reserve(
        &self,
        b: BeginCheckout,
        r: &[StockRequest],
        c: &[UsageClaim],
        e: DateTime<Utc>,
    ) -> Result<Option<(Lease, Reservation)>> {
        self.with(
            StoreCommand::BeginAndReserve,
            self.inner.begin_and_reserve(b, r, c, e),
        )
        .await
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
            StoreCommand::ReserveForCheckout,
            self.inner.reserve_for_checkout(l, r, c, e, n),
        )
        .await
    }
    async fn place_order(&self, l: &Lease, o: Order, n: DateTime<Utc>) -> Result<Order> {
        self.with(StoreCommand::PlaceOrder, self.inner.place_order(l, o, n))
            .await
    }
    async fn end_checkout(&self, l: &Lease, e: CheckoutEnd, n: DateTime<Utc>) -> Result<()> {
        self.with(StoreCommand::EndCheckout, self.inner.end_checkout(l, e, n))
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
        self.with(StoreCommand::ClaimStale, self.inner.claim_stale(k, n, u))
            .await
    }
    async fn fence_checkout(&self, l: &Lease, u: DateTime<Utc>) -> Result<()> {
        self.with(StoreCommand::FenceCheckout, self.inner.fence_checkout(l, u))
            .await
    }
    async fn await_payment(
        &self,
        l: &Lease,
        a: &AwaitingPayment,
        u: DateTime<Utc>,
        h: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.with(
            StoreCommand::AwaitPayment,
            self.inner.await_payment(l, a, u, h, now),
        )
        .await
    }
    async fn claim_awaiting(
        &self,
        k: &IdempotencyKey,
        u: DateTime<Utc>,
    ) -> Result<Option<(Lease, AwaitingPayment)>> {
        self.with(StoreCommand::ClaimAwaiting, self.inner.claim_awaiting(k, u))
            .await
    }
    async fn checkout_by_payment_reference(&self, r: &str) -> Result<Option<CheckoutRecord>> {
        self.inner.checkout_by_payment_reference(r).await
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
    async fn orders_placed_by(
        &self,
        customer: Option<CustomerId>,
        email: Option<&Email>,
    ) -> Result<u64> {
        self.inner.orders_placed_by(customer, email).await
    }
    async fn save_order(&self, c: OrderChange, n: DateTime<Utc>) -> Result<Order> {
        self.with(StoreCommand::SaveOrder, self.inner.save_order(c, n))
            .await
    }
}

#[async_trait]
impl EventStore for FaultyStore {
    async fn admin_changes(&self, before: Option<u64>, limit: usize) -> Result<Vec<Event>> {
        self.inner.admin_changes(before, limit).await
    }
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
    async fn claim_deliveries(
        &self,
        sink: &str,
        owner: uuid::Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Event>> {
        self.inner
            .claim_deliveries(sink, owner, now, lease_until, limit)
            .await
    }
    async fn settle_deliveries(
        &self,
        sink: &str,
        owner: uuid::Uuid,
        settled: &[(Event, DeliveryOutcome)],
    ) -> Result<Vec<bool>> {
        self.inner.settle_deliveries(sink, owner, settled).await
    }
    async fn failed_deliveries(
        &self,
        sink: Option<&str>,
        limit: usize,
    ) -> Result<Vec<FailedDelivery>> {
        self.inner.failed_deliveries(sink, limit).await
    }
    async fn replay_delivery(&self, sink: &str, aggregate: &str) -> Result<bool> {
        self.inner.replay_delivery(sink, aggregate).await
    }
    async fn delivery_attempts(&self, sink: &str, aggregate: &str) -> Result<u32> {
        self.inner.delivery_attempts(sink, aggregate).await
    }
    async fn inbox_claim(
        &self,
        consumer: &str,
        event: EventId,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<InboxClaim> {
        self.inner
            .inbox_claim(consumer, event, now, lease_until)
            .await
    }
    async fn inbox_finish(&self, consumer: &str, event: EventId, handled: bool) -> Result<()> {
        self.inner.inbox_finish(consumer, event, handled).await
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
    async fn cart_for_pricing(&self, c: CartId, e: &[VariantId]) -> Result<(Cart, PricingInputs)> {
        self.inner.cart_for_pricing(c, e).await
    }
}

#[async_trait]
impl GiftCardStore for FaultyStore {
    async fn insert_gift_card(&self, c: crate::giftcard::GiftCard) -> Result<()> {
        self.inner.insert_gift_card(c).await
    }
    async fn gift_card(
        &self,
        id: crate::giftcard::GiftCardId,
    ) -> Result<crate::giftcard::GiftCard> {
        self.inner.gift_card(id).await
    }
    async fn gift_card_by_code(&self, h: &str) -> Result<Option<crate::giftcard::GiftCard>> {
        self.inner.gift_card_by_code(h).await
    }
    async fn gift_cards_of(&self, c: CustomerId) -> Result<Vec<crate::giftcard::GiftCard>> {
        self.inner.gift_cards_of(c).await
    }
    async fn post_gift_card_entry(
        &self,
        id: crate::giftcard::GiftCardId,
        e: crate::giftcard::NewEntry,
        n: DateTime<Utc>,
    ) -> Result<crate::giftcard::GiftCard> {
        self.with(
            StoreCommand::PostGiftCardEntry,
            self.inner.post_gift_card_entry(id, e, n),
        )
        .await
    }
    async fn gift_card_entries_for(
        &self,
        r: &str,
    ) -> Result<Vec<(crate::giftcard::GiftCardId, crate::giftcard::LedgerEntry)>> {
        self.inner.gift_card_entries_for(r).await
    }
}

#[async_trait]
impl ChannelStore for FaultyStore {
    async fn save_channel(
        &self,
        c: crate::channel::SalesChannel,
    ) -> Result<crate::channel::SalesChannel> {
        self.inner.save_channel(c).await
    }
    async fn channel(&self, id: crate::channel::ChannelId) -> Result<crate::channel::SalesChannel> {
        self.inner.channel(id).await
    }
    async fn channels(&self) -> Result<Vec<crate::channel::SalesChannel>> {
        self.inner.channels().await
    }
}

#[async_trait]
impl crate::store::WebhookStore for FaultyStore {
    async fn create_webhook(&self, w: &crate::webhook::WebhookSubscription) -> Result<()> {
        self.inner.create_webhook(w).await
    }
    async fn webhook(
        &self,
        id: crate::webhook::WebhookId,
    ) -> Result<Option<crate::webhook::WebhookSubscription>> {
        self.inner.webhook(id).await
    }
    async fn webhooks(&self) -> Result<Vec<crate::webhook::WebhookSubscription>> {
        self.inner.webhooks().await
    }
    async fn set_webhook_status(
        &self,
        id: crate::webhook::WebhookId,
        status: &crate::webhook::WebhookStatus,
    ) -> Result<bool> {
        self.inner.set_webhook_status(id, status).await
    }
    async fn delete_webhook(&self, id: crate::webhook::WebhookId) -> Result<bool> {
        self.inner.delete_webhook(id).await
    }
    async fn record_webhook_delivery(
        &self,
        id: crate::webhook::WebhookId,
        delivered: bool,
        now: DateTime<Utc>,
        pausing: crate::webhook::WebhookPausing,
    ) -> Result<Option<crate::webhook::WebhookStatus>> {
        self.inner
            .record_webhook_delivery(id, delivered, now, pausing)
            .await
    }
}

#[async_trait]
impl crate::store::AgentStore for FaultyStore {
    async fn create_agent_session(&self, s: &crate::agent::AgentSession) -> Result<()> {
        self.inner.create_agent_session(s).await
    }
    async fn agent_session(
        &self,
        id: crate::agent::AgentSessionId,
    ) -> Result<Option<crate::agent::AgentSession>> {
        self.inner.agent_session(id).await
    }
    async fn save_agent_session(&self, s: &crate::agent::AgentSession) -> Result<()> {
        self.inner.save_agent_session(s).await
    }
    async fn agent_session_for_cart(
        &self,
        cart: crate::id::CartId,
    ) -> Result<Option<crate::agent::AgentSession>> {
        self.inner.agent_session_for_cart(cart).await
    }
    async fn claim_request(
        &self,
        claim: &crate::store::RequestClaim<'_>,
    ) -> Result<crate::store::RequestState> {
        self.inner.claim_request(claim).await
    }
    async fn finish_request(
        &self,
        scope: &str,
        key: &str,
        response: &crate::agent::StoredResponse,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.inner.finish_request(scope, key, response, now).await
    }
    async fn release_request(&self, scope: &str, key: &str) -> Result<()> {
        self.inner.release_request(scope, key).await
    }
    async fn prune_requests(&self, before: DateTime<Utc>) -> Result<u64> {
        self.inner.prune_requests(before).await
    }
}

#[async_trait]
impl crate::store::StaffStore for FaultyStore {
    async fn insert_staff(&self, m: &crate::staff::StaffMember) -> Result<()> {
        self.inner.insert_staff(m).await
    }
    async fn save_staff(&self, m: &crate::staff::StaffMember) -> Result<()> {
        self.inner.save_staff(m).await
    }
    async fn staff_member(&self, id: StaffId) -> Result<Option<crate::staff::StaffMember>> {
        self.inner.staff_member(id).await
    }
    async fn staff_by_email(&self, email: &Email) -> Result<Option<crate::staff::StaffMember>> {
        self.inner.staff_by_email(email).await
    }
    async fn list_staff(&self) -> Result<Vec<crate::staff::StaffMember>> {
        self.inner.list_staff().await
    }
    async fn save_role(&self, role: &crate::staff::Role) -> Result<()> {
        self.inner.save_role(role).await
    }
    async fn delete_role(&self, name: &str) -> Result<bool> {
        self.inner.delete_role(name).await
    }
    async fn roles(&self) -> Result<Vec<crate::staff::Role>> {
        self.inner.roles().await
    }
    async fn insert_staff_session(&self, s: &crate::staff::StaffSession) -> Result<()> {
        self.inner.insert_staff_session(s).await
    }
    async fn staff_session(&self, hash: &str) -> Result<Option<crate::staff::StaffSession>> {
        self.inner.staff_session(hash).await
    }
    async fn delete_staff_session(&self, hash: &str) -> Result<()> {
        self.inner.delete_staff_session(hash).await
    }
    async fn delete_staff_sessions(
        &self,
        staff: Option<StaffId>,
        expired_before: DateTime<Utc>,
    ) -> Result<u64> {
        self.inner
            .delete_staff_sessions(staff, expired_before)
            .await
    }
}
