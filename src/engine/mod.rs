//! The [`Engine`]: the facade an application holds.
//!
//! It wires the store, the payment provider, the tax and shipping plugins and
//! the clock, checks who is calling ([`Actor`]) and runs each use case as a
//! short sequence of pure domain steps and atomic store commands.
//!
//! Architecture invariant: the engine is the only module that knows every
//! plugin; domain modules never import it.
//!
//! Does not know: SQL, HTTP or a gateway's protocol: everything outside the
//! process is behind a port.

pub(crate) mod accounts;
mod catalog;
mod channels;
pub use accounts::{CustomerExport, CustomerPage};
pub use catalog::ProductPage;
pub mod checkout;
mod fence;
pub mod fulfillment;
pub mod giftcards;
pub mod maintenance;
pub mod money_path;
pub(crate) mod promotions;
pub mod telemetry;

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};

use crate::actor::Actor;
use crate::cart::Cart;
use crate::catalog::{CatalogEntry, Category, Collection, NewProduct, Product, Sku, Status};
use crate::clock::{Clock, SystemClock};
use crate::customer::{
    Address, Customer, CustomerGroup, CustomerKind, Email, NewAddress, PasswordHash, PasswordPolicy,
};
use crate::error::{Error, Result};
use crate::id::{
    AddressId, CartId, CategoryId, CustomerGroupId, CustomerId, EventId, IdempotencyKey, LineId,
    LocationId, OrderId, ProductId, ReservationId, VariantId,
};
use crate::inventory::{Location, Reservation, StockLevel, StockRequest, StockSummary};
use crate::money::Currency;
use crate::note::{Note, Visibility};
use crate::order::{Order, OrderChange, OrderQuery};
use crate::payment::{PaymentProvider, TestPaymentProvider};
use crate::pricing::{PricedCart, PricingRule, PromotionSettings, RuleRegistry, StackingPolicy};
use crate::promotions::PricingRules;
use crate::shipping::{FlatRateShipping, ShippingRates};
use crate::store::{Event, MemoryStore, Store};
use crate::tax::{FlatRateTax, TaxCalculator};

/// When a checkout's payment is captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CaptureMode {
    /// Right after the order is placed.
    #[default]
    Immediate,
    /// Later, by calling [`Engine::capture`] (for example when the order ships).
    Manual,
}

/// Waits before retry `attempt` of a command whose save lost to a
/// concurrent change: not at all before the first, then exponentially
/// longer (up to 1, 2, 4 … 32 ms) with full jitter, so contending callers
/// spread out instead of colliding again in step.
pub(crate) async fn pause_before_retry(attempt: u32) {
    if attempt == 0 {
        return;
    }
    tracing::debug!(attempt, "a concurrent change won; retrying");
    tokio::time::sleep(crate::clock::retry_backoff(attempt, 5)).await;
}

/// The error after every retry lost to a concurrent change, logged as a
/// warning: sustained contention on one record is worth an operator's look.
pub(crate) fn gave_up(what: &'static str) -> Error {
    tracing::warn!(what, "concurrent changes kept winning; giving up");
    Error::Conflict(what)
}

/// Tunables, with safe defaults.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EngineConfig {
    /// When payments are captured.
    pub capture: CaptureMode,
    /// How long a checkout's stock reservation lasts before it lapses.
    pub reservation_ttl: Duration,
    /// How long one checkout attempt may run before recovery may clean it up.
    /// Must exceed the slowest provider call.
    pub checkout_lease: Duration,
    /// How long a checkout call waits for another call with the same key to finish.
    pub checkout_wait: StdDuration,
    /// How often a change that lost a race (a cart saved concurrently) is retried.
    pub max_retries: u32,
    /// Password rules and hashing cost.
    pub password_policy: PasswordPolicy,
    /// How many password hashes (log-ins, sign-ups) may run at once; each
    /// takes about 19 MiB and tens of milliseconds of CPU with the default
    /// policy, so a burst of log-ins cannot exhaust the machine.
    pub max_concurrent_password_hashes: usize,
    /// How long a log-in or sign-up waits for a hashing slot before failing
    /// with [`Error::Busy`].
    pub password_hash_wait: StdDuration,
    /// How long idempotency records and delivered events are kept before
    /// [maintenance] prunes them. A checkout retried
    /// with a key older than this runs as a new checkout.
    pub retention: Duration,
    /// How long a password-reset token works (1 hour by default).
    pub password_reset_ttl: Duration,
    /// How long an email-verification token works (2 days by default).
    pub email_verification_ttl: Duration,
    /// How long a checkout's payment may wait for the customer (3-D
    /// Secure, a redirect) or the provider before it is cancelled and its
    /// stock released (30 minutes by default).
    pub payment_session_ttl: Duration,
    /// How long a waiting payment may hold the gift cards and store credit
    /// its checkout redeemed (30 minutes by default, as long as any
    /// session). A checkout that redeemed some parks its payment for the
    /// shorter of this and `payment_session_ttl`: an abandoned 3-D Secure
    /// checkout then gives the balance back sooner (once recovery sees the
    /// session expired), at the cost of a shorter session for the buyer.
    pub gift_card_hold: Duration,
}

crate::domain::setters!(EngineConfig {
    capture: CaptureMode,
    reservation_ttl: Duration,
    checkout_lease: Duration,
    checkout_wait: StdDuration,
    max_retries: u32,
    password_policy: PasswordPolicy,
    max_concurrent_password_hashes: usize,
    password_hash_wait: StdDuration,
    retention: Duration,
    password_reset_ttl: Duration,
    email_verification_ttl: Duration,
    payment_session_ttl: Duration,
    gift_card_hold: Duration,
} into {});

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            capture: CaptureMode::Immediate,
            reservation_ttl: Duration::minutes(10),
            checkout_lease: Duration::minutes(2),
            checkout_wait: StdDuration::from_secs(30),
            max_retries: 8,
            password_policy: PasswordPolicy::default(),
            max_concurrent_password_hashes: 4,
            password_hash_wait: StdDuration::from_secs(5),
            retention: Duration::days(30),
            password_reset_ttl: Duration::hours(1),
            email_verification_ttl: Duration::days(2),
            payment_session_ttl: Duration::minutes(30),
            gift_card_hold: Duration::minutes(30),
        }
    }
}

/// Builds an [`Engine`].
///
/// The payment provider and the tax choice have no silent default: a
/// production engine must never take payments with the test gateway or
/// charge no tax by accident. Say so explicitly for tests and demos
/// ([`EngineBuilder::test_payment_provider`], [`EngineBuilder::no_tax`]).
///
/// | plugin | default |
/// |---|---|
/// | store | [`MemoryStore`] |
/// | payments | **required**: [`EngineBuilder::payment_provider`] (one or several, by name), or [`EngineBuilder::test_payment_provider`] |
/// | tax | **required**: [`EngineBuilder::tax`], or [`EngineBuilder::no_tax`] |
/// | shipping | no methods (nothing that ships can be checked out) |
/// | clock | [`SystemClock`] |
/// | configuration | [`EngineConfig::default`] |
#[must_use]
pub struct EngineBuilder {
    store: Option<Arc<dyn Store>>,
    payments: Vec<Arc<dyn PaymentProvider>>,
    default_payments: Option<String>,
    tax: Option<Arc<dyn TaxCalculator>>,
    shipping: Option<Arc<dyn ShippingRates>>,
    clock: Option<Arc<dyn Clock>>,
    rules: Vec<Arc<dyn PricingRule>>,
    promotion_settings: PromotionSettings,
    config: EngineConfig,
}

impl std::fmt::Debug for EngineBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineBuilder")
            .field("store", &self.store.is_some())
            .field(
                "payment_providers",
                &self.payments.iter().map(|p| p.name()).collect::<Vec<_>>(),
            )
            .field("tax", &self.tax.is_some())
            .field("shipping", &self.shipping.is_some())
            .field("rules", &self.rules.len())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl EngineBuilder {
    /// Uses this store.
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }
    /// Takes payments with this provider, registered under its
    /// [name](PaymentProvider::name) (replacing one registered under the
    /// same name). Call it once per provider: a checkout names the one to
    /// use ([`CheckoutRequest::provider`](crate::CheckoutRequest::provider)),
    /// and every later operation on a payment goes to the provider that
    /// took it. The first registered is the default unless
    /// [`default_payment_provider`](Self::default_payment_provider) names
    /// another.
    pub fn payment_provider(mut self, provider: Arc<dyn PaymentProvider>) -> Self {
        match self
            .payments
            .iter_mut()
            .find(|p| p.name() == provider.name())
        {
            Some(slot) => *slot = provider,
            None => self.payments.push(provider),
        }
        self
    }
    /// Makes the provider registered as `name` the default for checkouts
    /// that name none.
    pub fn default_payment_provider(mut self, name: impl Into<String>) -> Self {
        self.default_payments = Some(name.into());
        self
    }
    /// Takes payments with the built-in [`TestPaymentProvider`] (for tests,
    /// examples and demos: it moves no real money).
    pub fn test_payment_provider(self) -> Self {
        self.payment_provider(Arc::new(TestPaymentProvider::new()))
    }
    /// Charges no tax ([`FlatRateTax::none`]), on purpose.
    pub fn no_tax(self) -> Self {
        self.tax(Arc::new(FlatRateTax::none()))
    }
    /// Uses this tax calculator.
    pub fn tax(mut self, tax: Arc<dyn TaxCalculator>) -> Self {
        self.tax = Some(tax);
        self
    }
    /// Uses these shipping rates.
    pub fn shipping(mut self, shipping: Arc<dyn ShippingRates>) -> Self {
        self.shipping = Some(shipping);
        self
    }
    /// Uses this clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }
    /// Registers a custom pricing rule that promotions may name.
    pub fn pricing_rule(mut self, rule: Arc<dyn PricingRule>) -> Self {
        self.rules.push(rule);
        self
    }
    /// Sets how promotions stack and round.
    pub fn promotion_settings(mut self, settings: PromotionSettings) -> Self {
        self.promotion_settings = settings;
        self
    }
    /// Sets the stacking policy.
    pub fn stacking_policy(mut self, policy: StackingPolicy) -> Self {
        self.promotion_settings.policy = policy;
        self
    }
    /// Replaces the whole configuration.
    pub fn config(mut self, config: EngineConfig) -> Self {
        self.config = config;
        self
    }
    /// Sets when payments are captured.
    pub fn capture_mode(mut self, mode: CaptureMode) -> Self {
        self.config.capture = mode;
        self
    }
    /// Sets the password policy.
    pub fn password_policy(mut self, policy: PasswordPolicy) -> Self {
        self.config.password_policy = policy;
        self
    }

    /// Checks the configuration and builds the engine.
    ///
    /// # Errors
    /// [`Error::Invalid`] when no payment provider or tax choice was made,
    /// a duration is not positive, the reservation TTL is shorter than the
    /// checkout lease, the retention shorter than the TTL, no password hash
    /// may run, or two custom rules share a name.
    pub fn build(self) -> Result<Engine> {
        let c = &self.config;
        if c.reservation_ttl <= Duration::zero() || c.checkout_lease <= Duration::zero() {
            return Err(Error::invalid("config", "durations must be positive"));
        }
        if c.retention < c.reservation_ttl {
            return Err(Error::invalid(
                "config",
                "retention must be at least reservation_ttl",
            ));
        }
        if c.max_concurrent_password_hashes == 0 {
            return Err(Error::invalid(
                "config",
                "max_concurrent_password_hashes must be at least 1",
            ));
        }
        if c.reservation_ttl < c.checkout_lease {
            return Err(Error::invalid(
                "config",
                "reservation_ttl must be at least checkout_lease",
            ));
        }
        if c.payment_session_ttl <= Duration::zero() {
            return Err(Error::invalid(
                "config",
                "payment_session_ttl must be positive",
            ));
        }
        if c.gift_card_hold <= Duration::zero() {
            return Err(Error::invalid("config", "gift_card_hold must be positive"));
        }
        let payments = Providers::new(self.payments, self.default_payments)?;
        let Some(tax) = self.tax else {
            return Err(Error::invalid(
                "config",
                "no tax choice: call tax(..), or no_tax() to charge none",
            ));
        };
        // Login verifies against this hash when the email is unknown, so an
        // unknown email costs the same time as a wrong password.
        let dummy_hash = c
            .password_policy
            .hash_unchecked("cartwright: no such account")?;
        let hash_slots = tokio::sync::Semaphore::new(c.max_concurrent_password_hashes);
        let mut rules = RuleRegistry::new();
        for rule in self.rules {
            rules.register(rule)?;
        }
        Ok(Engine {
            inner: Arc::new(Inner {
                store: self.store.unwrap_or_else(|| Arc::new(MemoryStore::new())),
                payments,
                tax,
                shipping: self
                    .shipping
                    .unwrap_or_else(|| Arc::new(FlatRateShipping::new())),
                clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
                config: self.config,
                dummy_hash,
                rules,
                promotion_settings: self.promotion_settings,
                pricing_cache: Mutex::new(None),
                hash_slots,
                guesses: crate::engine::giftcards::GuessLimiter::default(),
            }),
        })
    }
}

/// Longest payment provider name, in characters.
pub const MAX_PROVIDER_NAME_LEN: usize = 64;

/// The payment providers of one engine, by name.
pub(crate) struct Providers {
    list: Vec<Arc<dyn PaymentProvider>>,
    default: Arc<dyn PaymentProvider>,
}

impl Providers {
    fn new(list: Vec<Arc<dyn PaymentProvider>>, default: Option<String>) -> Result<Self> {
        if list.is_empty() {
            return Err(Error::invalid(
                "config",
                "no payment provider: call payment_provider(..), or test_payment_provider() outside production",
            ));
        }
        for p in &list {
            let name = p.name();
            let ok = !name.is_empty()
                && name.len() <= MAX_PROVIDER_NAME_LEN
                && name.bytes().all(|b| b.is_ascii_graphic())
                && name != FREE_ORDER_PROVIDER
                && name != "gift_card"
                && name != "store_credit";
            if !ok {
                return Err(Error::invalid(
                    "payment provider name",
                    format!(
                        "`{name}` must be 1 to {MAX_PROVIDER_NAME_LEN} visible ASCII characters, and not `{FREE_ORDER_PROVIDER}`, `gift_card` or `store_credit`"
                    ),
                ));
            }
        }
        let default = match &default {
            None => list.first(),
            Some(name) => list.iter().find(|p| p.name() == name),
        }
        .cloned()
        .ok_or_else(|| {
            Error::invalid(
                "default payment provider",
                format!(
                    "no provider named `{}` is registered",
                    default.unwrap_or_default()
                ),
            )
        })?;
        Ok(Self { list, default })
    }

    /// The provider for checkouts that name none.
    pub(crate) fn default(&self) -> &Arc<dyn PaymentProvider> {
        &self.default
    }

    /// The provider registered as `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&Arc<dyn PaymentProvider>> {
        self.list.iter().find(|p| p.name() == name)
    }

    /// Every provider, the default first.
    pub(crate) fn all(&self) -> impl Iterator<Item = &Arc<dyn PaymentProvider>> {
        let default = self.default();
        std::iter::once(default).chain(self.list.iter().filter(move |p| !Arc::ptr_eq(p, default)))
    }
}

/// The provider name recorded on a payment of nothing (a free order).
pub(crate) const FREE_ORDER_PROVIDER: &str = "none";

pub(crate) struct Inner {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) payments: Providers,
    pub(crate) tax: Arc<dyn TaxCalculator>,
    pub(crate) shipping: Arc<dyn ShippingRates>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: EngineConfig,
    dummy_hash: PasswordHash,
    pub(crate) rules: RuleRegistry,
    pub(crate) promotion_settings: PromotionSettings,
    pub(crate) pricing_cache: Mutex<Option<Arc<PricingRules>>>,
    /// Bounds concurrent password hashing.
    hash_slots: tokio::sync::Semaphore,
    /// Counts wrong gift card codes.
    pub(crate) guesses: crate::engine::giftcards::GuessLimiter,
}

/// The commerce engine. Cheap to clone; share it between tasks.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field(
                "payment_providers",
                &self
                    .inner
                    .payments
                    .all()
                    .map(|p| p.name())
                    .collect::<Vec<_>>(),
            )
            .field("rules", &self.inner.rules)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// One page of [`Engine::find_orders`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OrderPage {
    /// The orders, newest first.
    pub orders: Vec<Order>,
    /// Pass as `before` to get the next page; `None` on the last page.
    pub next_before: Option<OrderId>,
}

/// A new account's details.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NewCustomer {
    /// Email (normalized; must be unique among accounts).
    pub email: String,
    /// Plain password; hashed with argon2id and then forgotten.
    pub password: String,
    /// Display name.
    pub name: String,
}

impl NewCustomer {
    /// An account for `email` with `password`, with no name.
    pub fn new(email: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            email: email.into(),
            password: password.into(),
            name: String::new(),
        }
    }
}

crate::domain::setters!(NewCustomer {} into {
    email: String,
    password: String,
    name: String,
});

/// Runs CPU-heavy work (password hashing) off the async worker threads when a
/// tokio runtime is present, inline otherwise.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => handle.spawn_blocking(f).await.map_err(|e| Error::Storage {
            message: "password hashing task failed".into(),
            source: Some(Arc::new(e)),
        }),
        Err(_) => Ok(f()),
    }
}

impl Engine {
    /// Starts building an engine.
    pub fn builder() -> EngineBuilder {
        EngineBuilder {
            store: None,
            payments: Vec::new(),
            default_payments: None,
            tax: None,
            shipping: None,
            clock: None,
            rules: Vec::new(),
            promotion_settings: PromotionSettings::default(),
            config: EngineConfig::default(),
        }
    }

    /// The store, for direct access by adapters and tools.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The configuration in force.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// The names of the payment providers this engine takes payments with,
    /// the default first.
    pub fn payment_providers(&self) -> Vec<&str> {
        self.inner.payments.all().map(|p| p.name()).collect()
    }

    /// Runs password hashing in one of the bounded slots, waiting at most
    /// the configured time for one.
    async fn hashing<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        let wait = self.inner.config.password_hash_wait;
        let _slot = match tokio::time::timeout(wait, self.inner.hash_slots.acquire()).await {
            Ok(Ok(slot)) => slot,
            _ => return Err(Error::Busy("password hashing")),
        };
        blocking(f).await
    }

    /// Records who made an admin change, right after it took effect (an
    /// [`EventKind::AdminChange`](crate::event::EventKind::AdminChange) in
    /// the outbox). The change stands even if this record cannot be
    /// written; that is logged.
    pub(crate) async fn audit(
        &self,
        actor: &Actor,
        action: &'static str,
        subject: impl std::fmt::Display,
    ) {
        self.audit_with(actor, action, subject, None).await;
    }

    /// As [`Engine::audit`], with the catalog change it made.
    pub(crate) async fn audit_catalog(
        &self,
        actor: &Actor,
        action: &'static str,
        subject: impl std::fmt::Display,
        change: crate::event::CatalogChange,
    ) {
        let event = crate::event::EventKind::CatalogChanged { change };
        self.audit_with(actor, action, subject, Some(event)).await;
    }

    /// As [`Engine::audit`], with the promotion change it made.
    pub(crate) async fn audit_promotion(
        &self,
        actor: &Actor,
        action: &'static str,
        subject: impl std::fmt::Display,
        change: crate::event::PromotionChange,
    ) {
        let event = crate::event::EventKind::PromotionChanged { change };
        self.audit_with(actor, action, subject, Some(event)).await;
    }

    /// As [`Engine::audit`], recording `event` (what changed, typed) with it.
    pub(crate) async fn audit_with(
        &self,
        actor: &Actor,
        action: &'static str,
        subject: impl std::fmt::Display,
        event: Option<crate::event::EventKind>,
    ) {
        let audit = crate::event::EventKind::AdminChange {
            actor: actor.clone(),
            action: action.to_owned(),
            subject: subject.to_string(),
        };
        let events = std::iter::once(audit).chain(event).collect();
        if let Err(error) = self.inner.store.record_events(events, self.now()).await {
            tracing::warn!(%error, action, "admin change made, but its audit event was not recorded");
        }
    }

    /// Records something that happened to a customer's account, right after
    /// it took effect (an
    /// [`EventKind::CustomerChanged`](crate::event::EventKind::CustomerChanged)
    /// in the outbox). The change stands even if this record cannot be
    /// written; that is logged.
    pub(crate) async fn customer_event(
        &self,
        customer_id: CustomerId,
        change: crate::event::CustomerChange,
    ) {
        let event = crate::event::EventKind::CustomerChanged {
            customer_id,
            change,
        };
        if let Err(error) = self
            .inner
            .store
            .record_events(vec![event], self.now())
            .await
        {
            tracing::warn!(%error, ?change, "customer change made, but its event was not recorded");
        }
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    // ----- catalog -------------------------------------------------------

    /// Creates a category under `parent` (a root when `None`).
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::Invalid`] for a bad name; [`Error::NotFound`] for an unknown
    /// parent; [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all)]
    pub async fn create_category(
        &self,
        actor: &Actor,
        name: &str,
        parent: Option<CategoryId>,
    ) -> Result<Category> {
        actor.require_privileged()?;
        let category = Category::new(name, parent)?;
        self.inner.store.insert_category(category.clone()).await?;
        self.audit_catalog(
            actor,
            "create_category",
            category.id(),
            crate::event::CatalogChange::CategoryChanged {
                category_id: category.id(),
            },
        )
        .await;
        Ok(category)
    }

    /// Every category.
    ///
    /// # Errors
    /// [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all)]
    pub async fn categories(&self) -> Result<Vec<Category>> {
        self.inner.store.categories().await
    }

    /// Creates a collection.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::Invalid`] for a bad title; [`Error::Storage`] when the store
    /// fails.
    #[tracing::instrument(skip_all)]
    pub async fn create_collection(&self, actor: &Actor, title: &str) -> Result<Collection> {
        actor.require_privileged()?;
        let collection = Collection::new(title)?;
        self.inner
            .store
            .insert_collection(collection.clone())
            .await?;
        self.audit_catalog(
            actor,
            "create_collection",
            collection.id(),
            crate::event::CatalogChange::CollectionChanged {
                collection_id: collection.id(),
            },
        )
        .await;
        Ok(collection)
    }

    /// Creates a product with its variants.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::Invalid`] or [`Error::LimitExceeded`] for bad input, naming it;
    /// [`Error::AlreadyExists`] for a SKU already taken (naming it);
    /// [`Error::NotFound`] for an unknown category or collection;
    /// [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all)]
    pub async fn create_product(&self, actor: &Actor, input: NewProduct) -> Result<Product> {
        actor.require_privileged()?;
        let product = Product::new(input)?;
        self.inner.store.insert_product(product.clone()).await?;
        self.audit_catalog(
            actor,
            "create_product",
            product.id(),
            crate::event::CatalogChange::ProductCreated {
                product_id: product.id(),
            },
        )
        .await;
        Ok(product)
    }

    /// Replaces a product (for example after [`Product::set_status`] or
    /// [`Product::set_variant_price`]).
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting; as
    /// [`Engine::create_product`]; [`Error::NotFound`] for an unknown product.
    #[tracing::instrument(skip_all)]
    pub async fn update_product(&self, actor: &Actor, product: Product) -> Result<()> {
        actor.require_privileged()?;
        let id = product.id();
        self.inner.store.update_product(product).await?;
        self.audit_catalog(
            actor,
            "update_product",
            id,
            crate::event::CatalogChange::ProductUpdated { product_id: id },
        )
        .await;
        Ok(())
    }

    /// Sets a product's status.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::NotFound`] for an unknown product; [`Error::Storage`] when the
    /// store fails.
    #[tracing::instrument(skip_all)]
    pub async fn set_product_status(
        &self,
        actor: &Actor,
        id: ProductId,
        status: Status,
    ) -> Result<Product> {
        actor.require_privileged()?;
        let mut product = self.inner.store.product(id).await?;
        product.set_status(status);
        self.inner.store.update_product(product.clone()).await?;
        self.audit_catalog(
            actor,
            "set_product_status",
            format!("{id} {status:?}"),
            crate::event::CatalogChange::ProductStatusChanged {
                product_id: id,
                status,
            },
        )
        .await;
        Ok(product)
    }

    /// One product.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown product; [`Error::Storage`] when the
    /// store fails.
    #[tracing::instrument(skip_all)]
    pub async fn product(&self, id: ProductId) -> Result<Product> {
        self.inner.store.product(id).await
    }

    /// Products by id, after `after`, at most `limit`.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a `limit` outside 1 to
    /// [`MAX_PAGE_SIZE`](crate::store::MAX_PAGE_SIZE); [`Error::Storage`] when
    /// the store fails.
    #[tracing::instrument(skip_all)]
    pub async fn products(&self, after: Option<ProductId>, limit: usize) -> Result<Vec<Product>> {
        self.inner.store.products(after, limit).await
    }

    /// The variant with this SKU.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a malformed SKU; [`Error::NotFound`] for an unknown
    /// one; [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all)]
    pub async fn variant_by_sku(&self, sku: &str) -> Result<CatalogEntry> {
        self.inner.store.entry_by_sku(&Sku::new(sku)?).await
    }

    // ----- customers -----------------------------------------------------

    /// Opens an account. If a guest with this email exists, the guest becomes
    /// the account (same id, same order history).
    ///
    /// # Errors
    /// [`Error::Invalid`] for an email or password the policy refuses;
    /// [`Error::AlreadyExists`] when the email has an account; [`Error::Busy`]
    /// when every hashing slot stays taken; [`Error::Storage`] when the store
    /// fails.
    #[tracing::instrument(skip_all)]
    pub async fn register(&self, input: NewCustomer) -> Result<Customer> {
        let email = Email::new(&input.email)?;
        let policy = self.inner.config.password_policy;
        let password = input.password;
        let hash = self.hashing(move || policy.hash(&password)).await??;
        let customer = match self.inner.store.customer_by_email(&email).await? {
            Some(mut existing) if existing.kind() == CustomerKind::Guest => {
                existing.register(&input.name, hash)?;
                self.inner.store.save_customer(existing).await?
            }
            Some(_) => {
                return Err(Error::AlreadyExists {
                    what: "email",
                    value: email.to_string(),
                });
            }
            None => {
                let customer = Customer::registered(email, &input.name, hash, self.now())?;
                self.inner.store.insert_customer(customer.clone()).await?;
                customer
            }
        };
        self.customer_event(customer.id(), crate::event::CustomerChange::Registered)
            .await;
        Ok(customer)
    }

    /// Checks an email and password. Unknown emails, guests and wrong
    /// passwords all get [`Error::InvalidCredentials`] after the same work.
    ///
    /// # Errors
    /// [`Error::InvalidCredentials`] for an unknown email, a guest or a wrong
    /// password (after the same work); [`Error::Busy`] when every hashing slot
    /// stays taken; [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all)]
    pub async fn login(&self, email: &str, password: &str) -> Result<Customer> {
        let customer = match Email::new(email) {
            Ok(email) => self.inner.store.customer_by_email(&email).await?,
            Err(_) => None,
        };
        let hash = customer
            .as_ref()
            .and_then(|c| c.password_hash())
            .cloned()
            .unwrap_or_else(|| self.inner.dummy_hash.clone());
        let policy = self.inner.config.password_policy;
        let password = password.to_owned();
        let matches = self
            .hashing(move || policy.verify(&hash, &password))
            .await?;
        match customer {
            Some(c) if matches && c.kind() == CustomerKind::Registered => Ok(c),
            _ => Err(Error::InvalidCredentials),
        }
    }

    /// The guest record for an email, created if needed. Fails if the email
    /// belongs to an account (the customer should log in).
    ///
    /// # Errors
    /// [`Error::Invalid`] for a malformed email; [`Error::AlreadyExists`] when it
    /// belongs to an account; [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all)]
    pub async fn guest(&self, email: &str) -> Result<Customer> {
        let email = Email::new(email)?;
        match self.inner.store.customer_by_email(&email).await? {
            Some(c) if c.kind() == CustomerKind::Guest => Ok(c),
            Some(_) => Err(Error::AlreadyExists {
                what: "email",
                value: email.to_string(),
            }),
            None => {
                let c = Customer::guest(email, self.now());
                self.inner.store.insert_customer(c.clone()).await?;
                Ok(c)
            }
        }
    }

    /// One customer, as seen by `actor` (themselves or staff; internal notes
    /// only for staff).
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless the customer themselves, staff or the system
    /// is acting; [`Error::NotFound`] for an unknown customer or address;
    /// [`Error::Invalid`] or [`Error::LimitExceeded`] for bad input;
    /// [`Error::Conflict`] when concurrent changes keep winning;
    /// [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all, fields(customer_id = %id))]
    pub async fn customer(&self, actor: &Actor, id: CustomerId) -> Result<Customer> {
        Ok(self.load_customer(actor, id).await?.visible_to(actor))
    }

    /// The whole stored customer, after the access check. Changes start here,
    /// never from a filtered copy.
    pub(crate) async fn load_customer(&self, actor: &Actor, id: CustomerId) -> Result<Customer> {
        if !actor.may_use_customer(id) {
            return Err(Error::Forbidden);
        }
        self.inner.store.customer(id).await
    }

    /// Leaves a note on a customer (staff only).
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::Forbidden`] unless the customer themselves, staff or the system
    /// is acting; [`Error::NotFound`] for an unknown customer or address;
    /// [`Error::Invalid`] or [`Error::LimitExceeded`] for bad input;
    /// [`Error::Conflict`] when concurrent changes keep winning;
    /// [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all, fields(customer_id = %id))]
    pub async fn add_customer_note(
        &self,
        actor: &Actor,
        id: CustomerId,
        text: &str,
        visibility: Visibility,
    ) -> Result<Customer> {
        if !actor.is_privileged() {
            return Err(Error::Forbidden);
        }
        let note = Note::new(actor, text, visibility, self.now())?;
        self.modify_customer(actor, id, |c| c.add_note(note.clone()))
            .await
    }

    async fn modify_customer(
        &self,
        actor: &Actor,
        id: CustomerId,
        f: impl Fn(&mut Customer) -> Result<()>,
    ) -> Result<Customer> {
        for attempt in 0..self.inner.config.max_retries {
            pause_before_retry(attempt).await;
            let mut c = self.load_customer(actor, id).await?;
            f(&mut c)?;
            match self.inner.store.save_customer(c).await {
                Err(Error::Conflict(_)) => continue,
                other => return other,
            }
        }
        Err(gave_up("customer"))
    }

    /// Adds an address to a customer's book; returns the customer and the new address's id.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless the customer themselves, staff or the system
    /// is acting; [`Error::NotFound`] for an unknown customer or address;
    /// [`Error::Invalid`] or [`Error::LimitExceeded`] for bad input;
    /// [`Error::Conflict`] when concurrent changes keep winning;
    /// [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all, fields(customer_id = %id))]
    pub async fn add_address(
        &self,
        actor: &Actor,
        id: CustomerId,
        address: NewAddress,
    ) -> Result<(Customer, AddressId)> {
        let address = Address::new(address)?;
        let address_id = address.id;
        let c = self
            .modify_customer(actor, id, |c| c.add_address(address.clone()).map(|_| ()))
            .await?;
        Ok((c, address_id))
    }

    /// Removes an address from a customer's book.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless the customer themselves, staff or the system
    /// is acting; [`Error::NotFound`] for an unknown customer or address;
    /// [`Error::Invalid`] or [`Error::LimitExceeded`] for bad input;
    /// [`Error::Conflict`] when concurrent changes keep winning;
    /// [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all, fields(customer_id = %id))]
    pub async fn remove_address(
        &self,
        actor: &Actor,
        id: CustomerId,
        address: AddressId,
    ) -> Result<Customer> {
        self.modify_customer(actor, id, |c| c.remove_address(address))
            .await
    }

    /// Creates a customer group.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::Invalid`] for a bad name; [`Error::Storage`] when the store
    /// fails.
    #[tracing::instrument(skip_all)]
    pub async fn create_group(&self, actor: &Actor, name: &str) -> Result<CustomerGroup> {
        actor.require_privileged()?;
        let group = CustomerGroup::new(name)?;
        self.inner.store.insert_group(group.clone()).await?;
        self.audit(actor, "create_group", group.id()).await;
        Ok(group)
    }

    /// Puts a customer in a group (staff only).
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::NotFound`] for an unknown customer or group; [`Error::Storage`]
    /// when the store fails.
    #[tracing::instrument(skip_all, fields(customer_id = %customer))]
    pub async fn add_to_group(
        &self,
        actor: &Actor,
        customer: CustomerId,
        group: CustomerGroupId,
    ) -> Result<Customer> {
        if !actor.is_privileged() {
            return Err(Error::Forbidden);
        }
        if !self
            .inner
            .store
            .groups()
            .await?
            .iter()
            .any(|g| g.id() == group)
        {
            return Err(Error::not_found("customer group", group));
        }
        let c = self
            .modify_customer(actor, customer, |c| c.add_group(group))
            .await?;
        self.audit(actor, "add_to_group", format!("{customer} to {group}"))
            .await;
        Ok(c)
    }

    /// Takes a customer out of a group (staff). Not being in it is fine.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::NotFound`] for an unknown customer; [`Error::Conflict`] when
    /// concurrent changes keep winning; [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all, fields(customer_id = %customer))]
    pub async fn remove_from_group(
        &self,
        actor: &Actor,
        customer: CustomerId,
        group: CustomerGroupId,
    ) -> Result<Customer> {
        actor.require_privileged()?;
        let c = self
            .modify_customer(actor, customer, |c| {
                c.remove_group(group);
                Ok(())
            })
            .await?;
        self.audit(
            actor,
            "remove_from_group",
            format!("{customer} from {group}"),
        )
        .await;
        Ok(c)
    }

    // ----- carts ---------------------------------------------------------

    /// Creates an empty cart owned by `actor` (a customer) or by nobody (a guest).
    ///
    /// # Errors
    /// [`Error::Forbidden`] for the provider; [`Error::Storage`] when the store
    /// fails.
    #[tracing::instrument(skip_all)]
    pub async fn create_cart(&self, actor: &Actor, currency: Currency) -> Result<Cart> {
        if matches!(actor, Actor::Provider(_)) {
            return Err(Error::Forbidden);
        }
        let owner = match actor {
            Actor::Customer(id) => Some(*id),
            _ => None,
        };
        let cart = Cart::new(currency, owner, self.now());
        self.inner.store.insert_cart(cart.clone()).await?;
        Ok(cart)
    }

    /// One cart, if `actor` may see it.
    ///
    /// # Errors
    /// [`Error::Forbidden`] when `actor` may not use the cart;
    /// [`Error::NotFound`] for an unknown cart or line; [`Error::CartNotActive`]
    /// once it is checked out; [`Error::Invalid`] or [`Error::LimitExceeded`] for
    /// bad input, naming it; [`Error::Conflict`] when concurrent changes keep
    /// winning; [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all, fields(cart_id = %id))]
    pub async fn cart(&self, actor: &Actor, id: CartId) -> Result<Cart> {
        let cart = self.inner.store.cart(id).await?;
        cart.check_access(actor)?;
        Ok(cart)
    }

    /// Loads, changes and saves a cart, retrying when a concurrent change won.
    async fn modify_cart(
        &self,
        actor: &Actor,
        id: CartId,
        f: impl Fn(&mut Cart) -> Result<()>,
    ) -> Result<Cart> {
        self.modify_cart_keyed(actor, id, None, f).await
    }

    /// As [`Engine::modify_cart`]; with a request key, an edit already
    /// applied under it returns the cart unchanged, and the key is saved with
    /// the edit in the same versioned write.
    async fn modify_cart_keyed(
        &self,
        actor: &Actor,
        id: CartId,
        key: Option<&str>,
        f: impl Fn(&mut Cart) -> Result<()>,
    ) -> Result<Cart> {
        for attempt in 0..self.inner.config.max_retries {
            pause_before_retry(attempt).await;
            let mut cart = self.cart(actor, id).await?;
            if let Some(key) = key {
                if cart.applied(key) {
                    return Ok(cart);
                }
                cart.remember(key);
            }
            f(&mut cart)?;
            match self.inner.store.save_carts(vec![cart], self.now()).await {
                Err(Error::Conflict(_)) => continue,
                Ok(mut saved) => return saved.pop().ok_or_else(|| Error::Conflict("cart")),
                Err(e) => return Err(e),
            }
        }
        Err(gave_up("cart"))
    }

    /// Adds units of a variant. The variant must be for sale and have a price
    /// in the cart's currency; the price itself is never taken from the caller.
    ///
    /// Adding is not safe to repeat blindly (a retry after a lost answer
    /// adds the units twice): a client that retries uses
    /// [`Engine::add_item_once`]. Every other cart command sets a value
    /// (quantity, address, method, email, a code: entering it twice keeps
    /// one) and is safe to repeat as it is.
    ///
    /// # Errors
    /// [`Error::Forbidden`], [`Error::NotFound`], [`Error::NotPurchasable`],
    /// [`Error::NoPrice`], [`Error::CartNotActive`], [`Error::Invalid`] or
    /// [`Error::LimitExceeded`] for the quantity or the number of lines.
    #[tracing::instrument(skip_all, fields(cart_id = %cart, variant_id = %variant))]
    pub async fn add_item(
        &self,
        actor: &Actor,
        cart: CartId,
        variant: VariantId,
        quantity: u32,
    ) -> Result<Cart> {
        self.add_item_keyed(actor, cart, variant, quantity, None, BTreeMap::new())
            .await
    }

    /// [`Engine::add_item`] with line metadata: a line of the same variant
    /// and the same metadata grows, otherwise a new line is added (an
    /// engraved mug beside a plain one). The metadata is kept on the priced
    /// line and the order; it never changes a price. See
    /// [`LineItem::metadata`](crate::cart::LineItem::metadata) for its limits.
    ///
    /// # Errors
    /// As [`Engine::add_item`]; [`Error::Invalid`] or
    /// [`Error::LimitExceeded`] for metadata beyond its limits, naming it.
    #[tracing::instrument(skip_all, fields(cart_id = %cart, variant_id = %variant))]
    pub async fn add_item_with(
        &self,
        actor: &Actor,
        cart: CartId,
        variant: VariantId,
        quantity: u32,
        metadata: BTreeMap<String, String>,
    ) -> Result<Cart> {
        self.add_item_keyed(actor, cart, variant, quantity, None, metadata)
            .await
    }

    /// [`Engine::add_item`] under a request key: the same key adds once,
    /// however often it is retried (the cart remembers its last
    /// [`MAX_REMEMBERED_REQUESTS`](crate::cart::MAX_REMEMBERED_REQUESTS)
    /// keys, saved with the edit).
    ///
    /// # Errors
    /// As [`Engine::add_item`].
    #[tracing::instrument(skip_all, fields(cart_id = %cart, variant_id = %variant))]
    pub async fn add_item_once(
        &self,
        actor: &Actor,
        cart: CartId,
        variant: VariantId,
        quantity: u32,
        key: &IdempotencyKey,
    ) -> Result<Cart> {
        let key = format!("add_item:{key}");
        self.add_item_keyed(actor, cart, variant, quantity, Some(&key), BTreeMap::new())
            .await
    }

    async fn add_item_keyed(
        &self,
        actor: &Actor,
        cart: CartId,
        variant: VariantId,
        quantity: u32,
        key: Option<&str>,
        metadata: BTreeMap<String, String>,
    ) -> Result<Cart> {
        let current = self.cart(actor, cart).await?;
        let entry = self.addable(&current, variant).await?;
        if entry.variant.price(current.currency()).is_none() {
            return Err(Error::NoPrice {
                variant_id: variant,
                currency: current.currency(),
            });
        }
        self.modify_cart_keyed(actor, cart, key, |c| {
            c.add_line_with(variant, quantity, metadata.clone())
                .map(|_| ())
        })
        .await
    }

    /// The catalog entry of `variant` if it may be added to `cart`: it
    /// exists, is for sale, and the cart's sales channel sells its product.
    /// Every command that adds a line to a cart asks here, so no path can
    /// put another channel's product in a cart.
    async fn addable(&self, cart: &Cart, variant: VariantId) -> Result<CatalogEntry> {
        let mut entries = self.inner.store.entries(&[variant]).await?;
        let entry = entries
            .remove(&variant)
            .ok_or_else(|| Error::not_found("variant", variant))?;
        entry.purchasable()?;
        if let Some(channel) = self.cart_channel(cart).await? {
            channel.ensure_sells(entry.variant.product_id())?;
        }
        Ok(entry)
    }

    /// Adds a line at a price the embedding program sets (a quote, a
    /// configured product; see [`CustomPrice`](crate::cart::CustomPrice)):
    /// marked as custom with its reason, never merged with another line,
    /// and left alone by promotions unless the price allows them. Only
    /// staff or the system may set a price: a price never comes from a
    /// customer's request. The variant must exist and be for sale; it needs
    /// no catalog price in the cart's currency.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::NotFound`] for an unknown cart or variant;
    /// [`Error::NotPurchasable`]; [`Error::NotInChannel`] for a product
    /// the cart's sales channel does not sell; [`Error::CartNotActive`];
    /// [`Error::CurrencyMismatch`] for a price in another currency;
    /// [`Error::Invalid`] or [`Error::LimitExceeded`] for bad input, naming
    /// it; [`Error::Conflict`] when concurrent changes keep winning;
    /// [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all, fields(cart_id = %cart, variant_id = %variant))]
    pub async fn add_custom_line(
        &self,
        actor: &Actor,
        cart: CartId,
        variant: VariantId,
        quantity: u32,
        price: crate::cart::CustomPrice,
    ) -> Result<Cart> {
        actor.require_privileged()?;
        let current = self.cart(actor, cart).await?;
        self.addable(&current, variant).await?;
        let updated = self
            .modify_cart(actor, cart, |c| {
                c.add_custom_line(variant, quantity, price.clone())
                    .map(|_| ())
            })
            .await?;
        self.audit(actor, "add_custom_line", format!("{cart}"))
            .await;
        Ok(updated)
    }

    /// Sets a line's quantity.
    ///
    /// # Errors
    /// [`Error::Forbidden`] when `actor` may not use the cart;
    /// [`Error::NotFound`] for an unknown cart or line; [`Error::CartNotActive`]
    /// once it is checked out; [`Error::Invalid`] or [`Error::LimitExceeded`] for
    /// bad input, naming it; [`Error::Conflict`] when concurrent changes keep
    /// winning; [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all, fields(cart_id = %cart))]
    pub async fn set_quantity(
        &self,
        actor: &Actor,
        cart: CartId,
        line: LineId,
        quantity: u32,
    ) -> Result<Cart> {
        self.modify_cart(actor, cart, |c| c.set_quantity(line, quantity))
            .await
    }

    /// Removes a line.
    ///
    /// # Errors
    /// [`Error::Forbidden`] when `actor` may not use the cart;
    /// [`Error::NotFound`] for an unknown cart or line; [`Error::CartNotActive`]
    /// once it is checked out; [`Error::Invalid`] or [`Error::LimitExceeded`] for
    /// bad input, naming it; [`Error::Conflict`] when concurrent changes keep
    /// winning; [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all, fields(cart_id = %cart))]
    pub async fn remove_line(&self, actor: &Actor, cart: CartId, line: LineId) -> Result<Cart> {
        self.modify_cart(actor, cart, |c| c.remove_line(line)).await
    }

    /// Sets the contact email.
    ///
    /// # Errors
    /// [`Error::Forbidden`] when `actor` may not use the cart;
    /// [`Error::NotFound`] for an unknown cart or line; [`Error::CartNotActive`]
    /// once it is checked out; [`Error::Invalid`] or [`Error::LimitExceeded`] for
    /// bad input, naming it; [`Error::Conflict`] when concurrent changes keep
    /// winning; [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all, fields(cart_id = %cart))]
    pub async fn set_email(&self, actor: &Actor, cart: CartId, email: &str) -> Result<Cart> {
        let email = Email::new(email)?;
        self.modify_cart(actor, cart, |c| c.set_email(email.clone()))
            .await
    }

    /// Sets the shipping address.
    ///
    /// # Errors
    /// [`Error::Forbidden`] when `actor` may not use the cart;
    /// [`Error::NotFound`] for an unknown cart or line; [`Error::CartNotActive`]
    /// once it is checked out; [`Error::Invalid`] or [`Error::LimitExceeded`] for
    /// bad input, naming it; [`Error::Conflict`] when concurrent changes keep
    /// winning; [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all, fields(cart_id = %cart))]
    pub async fn set_shipping_address(
        &self,
        actor: &Actor,
        cart: CartId,
        address: NewAddress,
    ) -> Result<Cart> {
        let address = Address::new(address)?;
        self.modify_cart(actor, cart, |c| c.set_shipping_address(address.clone()))
            .await
    }

    /// Sets the billing address.
    ///
    /// # Errors
    /// [`Error::Forbidden`] when `actor` may not use the cart;
    /// [`Error::NotFound`] for an unknown cart or line; [`Error::CartNotActive`]
    /// once it is checked out; [`Error::Invalid`] or [`Error::LimitExceeded`] for
    /// bad input, naming it; [`Error::Conflict`] when concurrent changes keep
    /// winning; [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all, fields(cart_id = %cart))]
    pub async fn set_billing_address(
        &self,
        actor: &Actor,
        cart: CartId,
        address: NewAddress,
    ) -> Result<Cart> {
        let address = Address::new(address)?;
        self.modify_cart(actor, cart, |c| c.set_billing_address(address.clone()))
            .await
    }

    /// Chooses a shipping method by code.
    ///
    /// # Errors
    /// [`Error::Forbidden`] when `actor` may not use the cart;
    /// [`Error::NotFound`] for an unknown cart or line; [`Error::CartNotActive`]
    /// once it is checked out; [`Error::Invalid`] or [`Error::LimitExceeded`] for
    /// bad input, naming it; [`Error::Conflict`] when concurrent changes keep
    /// winning; [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all, fields(cart_id = %cart))]
    pub async fn set_shipping_method(
        &self,
        actor: &Actor,
        cart: CartId,
        code: &str,
    ) -> Result<Cart> {
        self.modify_cart(actor, cart, |c| c.set_shipping_method(code))
            .await
    }

    /// Ships some of the cart's lines apart, as the group `name`, by
    /// `method` (see [`Cart::set_shipping_group`]): each group is priced as
    /// a shipment of its own and may be the target of shipping promotions.
    ///
    /// # Errors
    /// [`Error::Forbidden`] when `actor` may not use the cart;
    /// [`Error::NotFound`] for an unknown cart or line; [`Error::CartNotActive`]
    /// once it is checked out; [`Error::Invalid`] or [`Error::LimitExceeded`] for
    /// bad input, naming it; [`Error::Conflict`] when concurrent changes keep
    /// winning; [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all, fields(cart_id = %cart))]
    pub async fn set_shipping_group(
        &self,
        actor: &Actor,
        cart: CartId,
        name: &str,
        lines: &[LineId],
        method: Option<&str>,
    ) -> Result<Cart> {
        self.modify_cart(actor, cart, |c| c.set_shipping_group(name, lines, method))
            .await
    }

    /// Removes a shipping group: its lines ship with the cart's own method.
    ///
    /// # Errors
    /// [`Error::Forbidden`] when `actor` may not use the cart;
    /// [`Error::NotFound`] for an unknown cart or group; [`Error::CartNotActive`]
    /// once it is checked out; [`Error::Conflict`] when concurrent changes keep
    /// winning; [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all, fields(cart_id = %cart))]
    pub async fn remove_shipping_group(
        &self,
        actor: &Actor,
        cart: CartId,
        name: &str,
    ) -> Result<Cart> {
        self.modify_cart(actor, cart, |c| c.remove_shipping_group(name))
            .await
    }

    /// Enters a coupon code.
    ///
    /// # Errors
    /// [`Error::Forbidden`] when `actor` may not use the cart;
    /// [`Error::NotFound`] for an unknown cart or line; [`Error::CartNotActive`]
    /// once it is checked out; [`Error::Invalid`] or [`Error::LimitExceeded`] for
    /// bad input, naming it; [`Error::Conflict`] when concurrent changes keep
    /// winning; [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all, fields(cart_id = %cart))]
    pub async fn add_coupon_code(&self, actor: &Actor, cart: CartId, code: &str) -> Result<Cart> {
        let policy = self.inner.promotion_settings.codes;
        self.modify_cart(actor, cart, |c| c.add_coupon_code_with(code, &policy))
            .await
    }

    /// Removes a coupon code.
    ///
    /// # Errors
    /// [`Error::Forbidden`] when `actor` may not use the cart;
    /// [`Error::NotFound`] for an unknown cart or line; [`Error::CartNotActive`]
    /// once it is checked out; [`Error::Invalid`] or [`Error::LimitExceeded`] for
    /// bad input, naming it; [`Error::Conflict`] when concurrent changes keep
    /// winning; [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all, fields(cart_id = %cart))]
    pub async fn remove_coupon_code(
        &self,
        actor: &Actor,
        cart: CartId,
        code: &str,
    ) -> Result<Cart> {
        let policy = self.inner.promotion_settings.codes;
        self.modify_cart(actor, cart, |c| c.remove_coupon_code_with(code, &policy))
            .await
    }

    /// At login: moves a guest cart into the customer's active cart in the
    /// same currency, or gives the guest cart to the customer if they have
    /// none. Both carts change in one atomic save.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless a customer is acting; [`Error::Forbidden`]
    /// when `actor` may not use the cart; [`Error::NotFound`] for an unknown cart
    /// or line; [`Error::CartNotActive`] once it is checked out;
    /// [`Error::Invalid`] or [`Error::LimitExceeded`] for bad input, naming it;
    /// [`Error::Conflict`] when concurrent changes keep winning;
    /// [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all, fields(cart_id = %guest_cart))]
    pub async fn merge_guest_cart(&self, actor: &Actor, guest_cart: CartId) -> Result<Cart> {
        let Actor::Customer(customer) = actor else {
            return Err(Error::Forbidden);
        };
        let (customer, actor) = (*customer, actor.clone());
        for attempt in 0..self.inner.config.max_retries {
            pause_before_retry(attempt).await;
            let mut guest = self.cart(&Actor::Guest, guest_cart).await?;
            let result = match self
                .inner
                .store
                .active_cart_for(customer, guest.currency())
                .await?
            {
                // Carts of two channels are never merged: the guest's
                // becomes the customer's as it is.
                Some(mut mine)
                    if mine.id() != guest.id() && mine.channel_id() == guest.channel_id() =>
                {
                    mine.check_access(&actor)?;
                    mine.merge_from(&mut guest)?;
                    self.inner
                        .store
                        .save_carts(vec![mine, guest], self.now())
                        .await
                }
                _ => {
                    guest.assign_to(customer)?;
                    self.inner.store.save_carts(vec![guest], self.now()).await
                }
            };
            match result {
                Err(Error::Conflict(_)) => continue,
                Ok(mut saved) => {
                    return saved
                        .drain(..)
                        .next()
                        .ok_or_else(|| Error::Conflict("cart"));
                }
                Err(e) => return Err(e),
            }
        }
        Err(gave_up("cart"))
    }

    /// Prices a cart as it stands.
    ///
    /// # Errors
    /// [`Error::Forbidden`] when `actor` may not use the cart;
    /// [`Error::NotFound`] for an unknown cart or line; [`Error::CartNotActive`]
    /// once it is checked out; [`Error::Invalid`] or [`Error::LimitExceeded`] for
    /// bad input, naming it; [`Error::Conflict`] when concurrent changes keep
    /// winning; [`Error::Storage`] when the store fails. Pricing errors:
    /// [`Error::ShippingUnavailable`] for a method that does not serve the cart,
    /// [`Error::Overflow`] for amounts beyond range.
    #[tracing::instrument(skip_all, fields(cart_id = %cart))]
    pub async fn price_cart(&self, actor: &Actor, cart: CartId) -> Result<PricedCart> {
        let cart = self.cart(actor, cart).await?;
        self.price(&cart).await
    }

    pub(crate) async fn price(&self, cart: &Cart) -> Result<PricedCart> {
        Ok(self.price_with_catalog(cart).await?.cart)
    }

    /// Prices a cart with only some automatic promotions: none (codes
    /// only) or a listed set ([`AutomaticPromotions`](crate::pricing::AutomaticPromotions));
    /// for "what would this cart cost with only these offers". Checkout
    /// always prices with every automatic promotion. Access as
    /// [`Engine::price_cart`].
    ///
    /// # Errors
    /// As [`Engine::price_cart`]; [`Error::Invalid`] for a list of more than
    /// [`MAX_VALUES`](crate::pricing::MAX_VALUES) promotions.
    #[tracing::instrument(skip_all)]
    pub async fn price_cart_with(
        &self,
        actor: &Actor,
        cart: CartId,
        automatic: &crate::pricing::AutomaticPromotions,
    ) -> Result<PricedCart> {
        if let crate::pricing::AutomaticPromotions::Only { ids } = automatic
            && ids.len() > crate::pricing::MAX_VALUES
        {
            return Err(Error::invalid(
                "automatic promotions",
                format!(
                    "{} listed, at most {}",
                    ids.len(),
                    crate::pricing::MAX_VALUES
                ),
            ));
        }
        let cart = self.cart(actor, cart).await?;
        Ok(self.price_with_catalog_as(&cart, automatic).await?.cart)
    }

    /// Which promotions the cart qualifies for — window, currency, limits
    /// (with today's usage) and conditions — and, for each that does not,
    /// why; whether or not stacking would then let it apply. The answer
    /// lists no amounts. Access as [`Engine::price_cart`].
    ///
    /// # Errors
    /// As [`Engine::price_cart`].
    #[tracing::instrument(skip_all)]
    pub async fn eligible_promotions(
        &self,
        actor: &Actor,
        cart: CartId,
    ) -> Result<Vec<crate::pricing::Eligibility>> {
        let priced = self.price_cart(actor, cart).await?;
        Ok(crate::pricing::Eligibility::of(&priced))
    }

    // ----- inventory -----------------------------------------------------

    /// Creates a stock location; lower `priority` is reserved from first.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::Invalid`] for a bad name; [`Error::Storage`] when the store
    /// fails.
    #[tracing::instrument(skip_all)]
    pub async fn create_location(
        &self,
        actor: &Actor,
        name: &str,
        priority: u32,
    ) -> Result<Location> {
        actor.require_privileged()?;
        let location = Location::new(name, priority)?;
        self.inner.store.insert_location(location.clone()).await?;
        self.audit(actor, "create_location", location.id()).await;
        Ok(location)
    }

    /// Sets the units on hand of a variant at a location.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::Invalid`] for a negative or too large count; [`Error::NotFound`]
    /// for an unknown variant or location; [`Error::Storage`] when the store
    /// fails.
    #[tracing::instrument(skip_all, fields(variant_id = %variant))]
    pub async fn set_stock(
        &self,
        actor: &Actor,
        variant: VariantId,
        location: LocationId,
        on_hand: i64,
    ) -> Result<StockLevel> {
        actor.require_privileged()?;
        let level = self
            .inner
            .store
            .set_stock(variant, location, on_hand)
            .await?;
        self.audit_with(
            actor,
            "set_stock",
            format!("{variant} at {location}: on hand {on_hand}"),
            Some(crate::event::EventKind::StockChanged {
                variant_id: variant,
                location_id: location,
                on_hand: level.on_hand,
            }),
        )
        .await;
        self.check_low_stock(variant, None).await;
        Ok(level)
    }

    /// Adds (or with a negative `delta`, removes) units on hand.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::Overflow`] or [`Error::Invalid`] when the result leaves the
    /// allowed range; [`Error::NotFound`] for an unknown variant or location;
    /// [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all, fields(variant_id = %variant))]
    pub async fn adjust_stock(
        &self,
        actor: &Actor,
        variant: VariantId,
        location: LocationId,
        delta: i64,
    ) -> Result<StockLevel> {
        actor.require_privileged()?;
        let level = self
            .inner
            .store
            .adjust_stock(variant, location, delta)
            .await?;
        self.audit_with(
            actor,
            "adjust_stock",
            format!("{variant} at {location}: {delta:+}"),
            Some(crate::event::EventKind::StockChanged {
                variant_id: variant,
                location_id: location,
                on_hand: level.on_hand,
            }),
        )
        .await;
        self.check_low_stock(variant, None).await;
        Ok(level)
    }

    /// Announces a crossing of `variant`'s low-stock threshold (read from
    /// the catalog when `None`): [`EventKind::LowStock`] when fewer units
    /// than the threshold are available everywhere, and
    /// [`EventKind::StockReplenished`] when a low variant is back. The store
    /// marks the variant in the same command that records the event, so a
    /// crossing noticed by many callers is announced once. Evaluated when
    /// staff set or adjust stock and when a checkout reserves; a failure to
    /// evaluate is logged, never returned.
    ///
    /// [`EventKind::LowStock`]: crate::event::EventKind::LowStock
    /// [`EventKind::StockReplenished`]: crate::event::EventKind::StockReplenished
    pub(crate) async fn check_low_stock(&self, variant: VariantId, threshold: Option<u32>) {
        let threshold = match threshold {
            Some(t) => t,
            None => match self.inner.store.entries(&[variant]).await {
                Ok(entries) => match entries
                    .get(&variant)
                    .and_then(|e| e.variant.low_stock_threshold())
                {
                    Some(t) => t,
                    None => return,
                },
                Err(error) => {
                    tracing::warn!(%error, %variant, "low stock not evaluated");
                    return;
                }
            },
        };
        let summary = match self.inner.store.stock(variant).await {
            Ok(s) => s,
            Err(error) => {
                tracing::warn!(%error, %variant, "low stock not evaluated");
                return;
            }
        };
        let available = summary.on_hand.saturating_sub(summary.reserved);
        let low = available < i64::from(threshold);
        let event = if low {
            crate::event::EventKind::LowStock {
                variant_id: variant,
                available,
                threshold,
            }
        } else {
            crate::event::EventKind::StockReplenished {
                variant_id: variant,
                available,
                threshold,
            }
        };
        if let Err(error) = self
            .inner
            .store
            .flag_low_stock(variant, low, event, self.now())
            .await
        {
            tracing::warn!(%error, %variant, "low stock not recorded");
        }
    }

    /// A variant's stock everywhere.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown variant; [`Error::Storage`] when the
    /// store fails.
    #[tracing::instrument(skip_all, fields(variant_id = %variant))]
    pub async fn stock(&self, variant: VariantId) -> Result<StockSummary> {
        self.inner.store.stock(variant).await
    }

    /// Holds stock outside a checkout (a phone order, a hold for a
    /// customer): all or nothing, lapsing after the configured reservation TTL.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::NotFound`] for an unknown variant; [`Error::OutOfStock`] (nothing
    /// is held); [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all)]
    pub async fn reserve_stock(
        &self,
        actor: &Actor,
        items: &[(VariantId, u32)],
    ) -> Result<Reservation> {
        actor.require_privileged()?;
        let ids: Vec<VariantId> = items.iter().map(|(v, _)| *v).collect();
        let entries = self.inner.store.entries(&ids).await?;
        let requests = items
            .iter()
            .map(|(v, q)| {
                let entry = entries
                    .get(v)
                    .ok_or_else(|| Error::not_found("variant", v))?;
                Ok(StockRequest {
                    variant_id: *v,
                    quantity: *q,
                    policy: entry.variant.inventory(),
                    channel: None,
                    location: None,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let now = self.now();
        self.inner
            .store
            .reserve(&requests, &[], now + self.inner.config.reservation_ttl, now)
            .await
    }

    /// How much of a usage counter (a coupon's uses, a promotion's budget) is
    /// held or used.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all)]
    pub async fn usage(&self, actor: &Actor, counter: &str) -> Result<u64> {
        actor.require_privileged()?;
        self.inner.store.usage(counter).await
    }

    /// Gives a reservation back.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::NotFound`] for an unknown reservation;
    /// [`Error::IllegalTransition`] for one already committed; [`Error::Storage`]
    /// when the store fails.
    #[tracing::instrument(skip_all)]
    pub async fn release_reservation(
        &self,
        actor: &Actor,
        id: ReservationId,
    ) -> Result<Reservation> {
        actor.require_privileged()?;
        self.inner.store.release(id, self.now()).await
    }

    /// Takes a reservation's units out of stock (they were shipped or handed over).
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::NotFound`] for an unknown reservation;
    /// [`Error::IllegalTransition`] for one already released; [`Error::Storage`]
    /// when the store fails.
    #[tracing::instrument(skip_all)]
    pub async fn commit_reservation(
        &self,
        actor: &Actor,
        id: ReservationId,
    ) -> Result<Reservation> {
        actor.require_privileged()?;
        self.inner.store.commit(id, self.now()).await
    }

    // ----- orders and events --------------------------------------------

    /// One order, if `actor` may see it (internal notes only for staff).
    ///
    /// # Errors
    /// [`Error::Forbidden`] when `actor` may not see the order (see the [access
    /// table](crate::actor)); [`Error::NotFound`]; [`Error::Storage`] when the
    /// store fails.
    #[tracing::instrument(skip_all, fields(order_id = %id))]
    pub async fn order(&self, actor: &Actor, id: OrderId) -> Result<Order> {
        Ok(self.load_order(actor, id).await?.visible_to(actor))
    }

    /// The whole stored order, after the access check. Changes start here,
    /// never from a filtered copy.
    pub(crate) async fn load_order(&self, actor: &Actor, id: OrderId) -> Result<Order> {
        let order = self.inner.store.order(id).await?;
        if !actor.may_use_order(order.customer_id(), order.access_token_hash.as_deref()) {
            return Err(Error::Forbidden);
        }
        Ok(order)
    }

    /// A customer's orders, newest first; pass the last id seen as `before`
    /// for the next page.
    ///
    /// # Errors
    /// [`Error::Forbidden`] for anyone but the customer, staff or the system;
    /// [`Error::Invalid`] for a `limit` outside 1 to
    /// [`MAX_PAGE_SIZE`](crate::store::MAX_PAGE_SIZE); [`Error::Storage`] when
    /// the store fails.
    #[tracing::instrument(skip_all, fields(customer_id = %customer))]
    pub async fn orders_for_customer(
        &self,
        actor: &Actor,
        customer: CustomerId,
        before: Option<OrderId>,
        limit: usize,
    ) -> Result<Vec<Order>> {
        let query = OrderQuery {
            customer: Some(customer),
            before,
            limit,
            ..OrderQuery::default()
        };
        Ok(self.find_orders(actor, &query).await?.orders)
    }

    /// Finds orders, newest first. Staff may search every order; a customer
    /// only their own (a query for someone else's is refused); guests none.
    ///
    /// # Errors
    /// [`Error::Forbidden`] for guests, the provider, or a customer asking for
    /// someone else's orders; [`Error::Invalid`] for a `limit` outside 1 to
    /// [`MAX_PAGE_SIZE`](crate::store::MAX_PAGE_SIZE); [`Error::Storage`] when
    /// the store fails.
    #[tracing::instrument(skip_all)]
    pub async fn find_orders(&self, actor: &Actor, query: &OrderQuery) -> Result<OrderPage> {
        let mut query = query.clone();
        match actor {
            a if a.is_privileged() => {}
            Actor::Customer(me) => match query.customer {
                Some(c) if c != *me => return Err(Error::Forbidden),
                _ => query.customer = Some(*me),
            },
            _ => return Err(Error::Forbidden),
        }
        let orders: Vec<Order> = self
            .inner
            .store
            .find_orders(&query)
            .await?
            .into_iter()
            .map(|o| o.visible_to(actor))
            .collect();
        let next_before = if orders.len() == query.limit {
            orders.last().map(Order::id)
        } else {
            None
        };
        Ok(OrderPage {
            orders,
            next_before,
        })
    }

    /// Loads an order, applies a pure change and saves it with a version
    /// check, retrying when a concurrent change won. `change` returns `None`
    /// when there is nothing to do; the order is then returned as it is.
    pub(crate) async fn modify_order(
        &self,
        actor: &Actor,
        id: OrderId,
        mut change: impl FnMut(Order) -> Result<Option<OrderChange>>,
    ) -> Result<Order> {
        for attempt in 0..self.inner.config.max_retries {
            pause_before_retry(attempt).await;
            let order = self.load_order(actor, id).await?;
            let Some(next) = change(order.clone())? else {
                return Ok(order);
            };
            match self.inner.store.save_order(next, self.now()).await {
                Err(Error::Conflict(_)) => continue,
                other => return other,
            }
        }
        Err(gave_up("order"))
    }

    /// Leaves a note on an order. Staff may write either kind; the order's
    /// customer may write notes they can see ([`Visibility::Customer`]).
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff, the system, or the order's customer
    /// writing a customer-visible note; [`Error::Invalid`] or
    /// [`Error::LimitExceeded`] for the text; [`Error::NotFound`];
    /// [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all, fields(order_id = %id))]
    pub async fn add_order_note(
        &self,
        actor: &Actor,
        id: OrderId,
        text: &str,
        visibility: Visibility,
    ) -> Result<Order> {
        let allowed = actor.is_privileged()
            || (matches!(actor, Actor::Customer(_)) && visibility == Visibility::Customer);
        if !allowed {
            return Err(Error::Forbidden);
        }
        let note = Note::new(actor, text, visibility, self.now())?;
        let order = self
            .modify_order(actor, id, |mut order| {
                if order.customer_id().is_none() && !actor.is_privileged() {
                    return Err(Error::Forbidden);
                }
                order.add_note(note.clone())?;
                Ok(Some(OrderChange::new(order)))
            })
            .await?;
        Ok(order.visible_to(actor))
    }

    /// The events `consumer` has not acknowledged yet, oldest first (see
    /// [`EventStore`](crate::store::EventStore)).
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::Invalid`] for a bad consumer name or limit; [`Error::Storage`]
    /// when the store fails.
    #[tracing::instrument(skip_all)]
    pub async fn pending_events(
        &self,
        actor: &Actor,
        consumer: &str,
        limit: usize,
    ) -> Result<Vec<Event>> {
        actor.require_privileged()?;
        self.inner.store.pending_events(consumer, limit).await
    }

    /// Acknowledges every event up to and including `through` for `consumer`.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::Invalid`] for a bad consumer name; [`Error::NotFound`] for an
    /// unknown event; [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all)]
    pub async fn ack_events(&self, actor: &Actor, consumer: &str, through: EventId) -> Result<()> {
        actor.require_privileged()?;
        self.inner.store.ack_events(consumer, through).await
    }
}
