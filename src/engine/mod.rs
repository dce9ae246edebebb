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
pub mod after_sale;
pub mod agents;
mod carts;
mod catalog;
pub mod catalog_csv;
mod channels;
mod customers;
pub use customers::NewCustomer;
mod events;
mod inventory;
pub(crate) mod media;
mod orders;
mod webhooks;
pub use accounts::{CustomerExport, CustomerPage};
pub use catalog::ProductPage;
pub use orders::OrderPage;
pub(crate) mod carriers;
pub mod checkout;
mod fence;
pub mod fulfillment;
pub mod giftcards;
pub mod maintenance;
pub mod money_path;
pub(crate) mod promotions;
pub mod quotes;
pub mod relay;
pub(crate) mod routing;
pub(crate) mod services;
pub mod staff;
pub(crate) mod tax;
pub mod telemetry;

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};

use crate::actor::Actor;
use crate::cart::Cart;
use crate::catalog::{CatalogEntry, NewProduct, Product, Sku, Status};
use crate::clock::{Clock, SystemClock};
use crate::customer::{
    Address, Customer, CustomerGroup, CustomerKind, Email, NewAddress, PasswordHash, PasswordPolicy,
};
use crate::error::{Error, Result};
use crate::id::{
    AddressId, CartId, CustomerGroupId, CustomerId, EventId, IdempotencyKey, LineId, LocationId,
    OrderId, ReservationId, VariantId,
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
    /// Where webhook subscriptions may point (HTTPS to public addresses
    /// by default).
    pub webhook_policy: crate::webhook::WebhookPolicy,
    /// When the relay pauses a webhook endpoint that keeps failing.
    pub webhook_pausing: crate::webhook::WebhookPausing,
    /// How long an agent checkout session stays open (6 hours by
    /// default, as UCP suggests).
    pub agent_session_ttl: Duration,
    /// Whether customers (and guests with their order's token) may edit
    /// their own orders before they ship
    /// ([`Engine::confirm_order_edit`]); staff always may. Off by default.
    pub customer_order_edits: bool,
    /// How long a tax provider may take to quote before pricing gives up
    /// on it (and uses the fallback, when set): 5 seconds by default.
    pub tax_timeout: StdDuration,
    /// How long a tax provider's quote is reused for the same request
    /// (10 minutes by default).
    pub tax_quote_ttl: StdDuration,
    /// How long a carrier may take to answer (rates, labels) before the
    /// engine gives up on it: 5 seconds by default.
    pub carrier_timeout: StdDuration,
    /// How long a carrier's rates are reused for the same parcel and
    /// route (10 minutes by default).
    pub carrier_rate_ttl: StdDuration,
    /// How long a staff session lasts from sign-in, used or not (8 hours
    /// by default): see [`Engine::staff_login`].
    pub staff_session_ttl: Duration,
    /// The issuer authenticator apps show beside a member's two-factor
    /// entry (`"cartwright"` by default).
    pub staff_totp_issuer: String,
    /// Where uploaded images are served from: an image's URL is this
    /// followed by its [`MediaKey`](crate::media::MediaKey) (`"/media/"` by
    /// default, where the admin router and the storefront serve them; a
    /// CDN's address in front of the media store otherwise).
    pub media_url_prefix: String,
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
    webhook_policy: crate::webhook::WebhookPolicy,
    webhook_pausing: crate::webhook::WebhookPausing,
    agent_session_ttl: Duration,
    customer_order_edits: bool,
    tax_timeout: StdDuration,
    tax_quote_ttl: StdDuration,
    carrier_timeout: StdDuration,
    carrier_rate_ttl: StdDuration,
    staff_session_ttl: Duration,
    staff_totp_issuer: String,
    media_url_prefix: String,
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
            webhook_policy: crate::webhook::WebhookPolicy::default(),
            webhook_pausing: crate::webhook::WebhookPausing::default(),
            agent_session_ttl: Duration::hours(6),
            customer_order_edits: false,
            tax_timeout: StdDuration::from_secs(5),
            tax_quote_ttl: StdDuration::from_secs(600),
            carrier_timeout: StdDuration::from_secs(5),
            carrier_rate_ttl: StdDuration::from_secs(600),
            staff_session_ttl: Duration::hours(8),
            staff_totp_issuer: "cartwright".to_owned(),
            media_url_prefix: "/media/".to_owned(),
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
/// | tax | **required**: [`EngineBuilder::tax`] (a calculator), [`EngineBuilder::tax_provider`] (a service), or [`EngineBuilder::no_tax`] |
/// | shipping | no methods (nothing that ships can be checked out) |
/// | clock | [`SystemClock`] |
/// | configuration | [`EngineConfig::default`] |
#[must_use]
pub struct EngineBuilder {
    store: Option<Arc<dyn Store>>,
    payments: Vec<Arc<dyn PaymentProvider>>,
    default_payments: Option<String>,
    tax: Option<Arc<dyn TaxCalculator>>,
    tax_provider: Option<Arc<dyn crate::tax::TaxProvider>>,
    tax_fallback: Option<Arc<dyn TaxCalculator>>,
    ship_from: Option<crate::customer::Address>,
    router: Option<Arc<dyn crate::inventory::FulfilmentRouter>>,
    media: Option<Arc<dyn crate::media::MediaStore>>,
    carriers: Vec<Arc<dyn crate::shipping::Carrier>>,
    carrier_fallback: bool,
    shipping: Option<Arc<dyn ShippingRates>>,
    clock: Option<Arc<dyn Clock>>,
    rules: Vec<Arc<dyn PricingRule>>,
    promotion_settings: PromotionSettings,
    return_policy: Option<Arc<dyn crate::order::ReturnPolicy>>,
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
            .field(
                "tax_provider",
                &self.tax_provider.as_ref().map(|p| p.name().to_owned()),
            )
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
    /// Takes tax from this service: quoted before pricing (cached by
    /// request, see [`tax::provider`](crate::tax::provider)), committed as
    /// a document for every placed order, voided and adjusted as money
    /// moves. Counts as the tax choice.
    pub fn tax_provider(mut self, provider: Arc<dyn crate::tax::TaxProvider>) -> Self {
        self.tax_provider = Some(provider);
        self
    }
    /// When the tax service cannot be reached in time, prices with this
    /// calculator (tables) instead of refusing, and records on the order
    /// that it did ([`PricedCart::tax_fallback`](crate::pricing::PricedCart::tax_fallback)).
    /// Without it, pricing and checkout fail with
    /// [`Error::ServiceUnavailable`] while the service is down.
    pub fn tax_fallback(mut self, tables: Arc<dyn TaxCalculator>) -> Self {
        self.tax_fallback = Some(tables);
        self
    }
    /// Where goods ship from, for tax (a tax service's origin address) and
    /// carriers' rates, unless fulfilment routing ships from a location
    /// with an address of its own
    /// ([`Location::with_address`](crate::inventory::Location::with_address)).
    pub fn ship_from(mut self, origin: crate::customer::Address) -> Self {
        self.ship_from = Some(origin);
        self
    }
    /// Routes every cart's stock-tracked units to locations with `router`
    /// ([`inventory::ByPriority`](crate::inventory::ByPriority),
    /// [`OneLocationFirst`](crate::inventory::OneLocationFirst),
    /// [`Nearest`](crate::inventory::Nearest) or one's own). Pricing then
    /// prices each shipment's units from each location as a parcel of
    /// their own ([`PricedCart::fulfilment`](crate::pricing::PricedCart::fulfilment)),
    /// and checkout holds exactly the routed units at their locations.
    /// Without a router, stock is held from the locations in priority order
    /// and each shipment is priced as one parcel.
    pub fn fulfilment_router(
        mut self,
        router: Arc<dyn crate::inventory::FulfilmentRouter>,
    ) -> Self {
        self.router = Some(router);
        self
    }
    /// Keeps uploaded images ([`Engine::upload_image`]) in `media`:
    /// [`FsMedia`](crate::media::FsMedia), `ObjectStoreMedia` (feature
    /// `object-store`) or one's own. Without one they are kept in memory
    /// ([`MemoryMedia`](crate::media::MemoryMedia)).
    pub fn media(mut self, media: Arc<dyn crate::media::MediaStore>) -> Self {
        self.media = Some(media);
        self
    }
    /// Offers this carrier's live rates beside the table rates, and buys
    /// its labels ([`Engine::purchase_label`]), registered under its
    /// [name](crate::shipping::Carrier::name) (replacing one of the same
    /// name). Rates are fetched before pricing and cached (see
    /// [`shipping::carrier`](crate::shipping::carrier)).
    pub fn carrier(mut self, carrier: Arc<dyn crate::shipping::Carrier>) -> Self {
        match self
            .carriers
            .iter_mut()
            .find(|c| c.name() == carrier.name())
        {
            Some(slot) => *slot = carrier,
            None => self.carriers.push(carrier),
        }
        self
    }
    /// When a carrier cannot answer in time, prices with the table rates
    /// only (a method of the carrier's is then unavailable) and records
    /// why on the pricing ([`PricedCart::shipping_fallback`](crate::pricing::PricedCart::shipping_fallback)),
    /// instead of failing with [`Error::ServiceUnavailable`].
    pub fn carrier_fallback(mut self, yes: bool) -> Self {
        self.carrier_fallback = yes;
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
    /// Answers return requests by this policy (by default a
    /// [`StandardReturnPolicy`](crate::order::StandardReturnPolicy): 30
    /// days from delivery, no fees).
    pub fn return_policy(mut self, policy: Arc<dyn crate::order::ReturnPolicy>) -> Self {
        self.return_policy = Some(policy);
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
        if self.tax_provider.is_some() && self.tax.is_some() {
            return Err(Error::invalid(
                "config",
                "two tax choices: a tax provider, or a calculator (tax_fallback(..) sets the provider's fallback)",
            ));
        }
        if self.tax_fallback.is_some() && self.tax_provider.is_none() {
            return Err(Error::invalid(
                "config",
                "a tax fallback needs a tax provider",
            ));
        }
        if c.tax_timeout.is_zero()
            || c.tax_quote_ttl.is_zero()
            || c.carrier_timeout.is_zero()
            || c.carrier_rate_ttl.is_zero()
        {
            return Err(Error::invalid(
                "config",
                "the tax and carrier timeouts and cache lifetimes must be positive",
            ));
        }
        let carriers = (!self.carriers.is_empty()).then(|| {
            crate::engine::carriers::Carriers::new(
                self.carriers,
                self.carrier_fallback,
                c.carrier_rate_ttl,
            )
        });
        let tax_service = self.tax_provider.map(|provider| {
            crate::engine::tax::TaxService::new(provider, self.tax_fallback, c.tax_quote_ttl)
        });
        // With a provider, tax never comes from this calculator (every
        // path asks `Engine::with_tax`); it stands in as "none".
        let tax = match (self.tax, &tax_service) {
            (Some(tax), _) => tax,
            (None, Some(_)) => Arc::new(FlatRateTax::none()),
            (None, None) => {
                return Err(Error::invalid(
                    "config",
                    "no tax choice: call tax(..) or tax_provider(..), or no_tax() to charge none",
                ));
            }
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
                tax_service,
                ship_from: self.ship_from,
                router: self.router,
                media: self
                    .media
                    .unwrap_or_else(|| Arc::new(crate::media::MemoryMedia::new())),
                carriers,
                shipping: self
                    .shipping
                    .unwrap_or_else(|| Arc::new(FlatRateShipping::new())),
                clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
                config: self.config,
                dummy_hash,
                rules,
                promotion_settings: self.promotion_settings,
                return_policy: self
                    .return_policy
                    .unwrap_or_else(|| Arc::new(crate::order::StandardReturnPolicy::default())),
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
    /// The tax service, when tax comes from one.
    pub(crate) tax_service: Option<crate::engine::tax::TaxService>,
    /// Where goods ship from, for tax and carriers.
    pub(crate) ship_from: Option<crate::customer::Address>,
    /// Which location ships which units, when the shop routes.
    pub(crate) router: Option<Arc<dyn crate::inventory::FulfilmentRouter>>,
    /// Where uploaded images are kept.
    pub(crate) media: Arc<dyn crate::media::MediaStore>,
    /// The shop's carriers, when it has any.
    pub(crate) carriers: Option<crate::engine::carriers::Carriers>,
    pub(crate) shipping: Arc<dyn ShippingRates>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: EngineConfig,
    dummy_hash: PasswordHash,
    pub(crate) rules: RuleRegistry,
    pub(crate) promotion_settings: PromotionSettings,
    pub(crate) return_policy: Arc<dyn crate::order::ReturnPolicy>,
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
            tax_provider: None,
            tax_fallback: None,
            ship_from: None,
            router: None,
            media: None,
            carriers: Vec::new(),
            carrier_fallback: false,
            shipping: None,
            clock: None,
            rules: Vec::new(),
            promotion_settings: PromotionSettings::default(),
            return_policy: None,
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

    /// The names of the carriers it asks for live rates and labels, in
    /// the order they were added (empty: table rates only).
    pub fn carrier_names(&self) -> Vec<&str> {
        self.inner
            .carriers
            .as_ref()
            .map(|c| c.list.iter().map(|c| c.name()).collect())
            .unwrap_or_default()
    }

    /// The name of the tax service tax comes from, when it comes from one
    /// (else from the calculator's tables).
    pub fn tax_service_name(&self) -> Option<&str> {
        self.inner.tax_service.as_ref().map(|s| s.provider.name())
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
        self.cpu_bound("password hashing", f).await
    }

    /// Runs CPU- and memory-heavy work (password hashing, image decoding)
    /// in one of the bounded slots, off the async threads, waiting at most
    /// the configured time for a slot ([`Error::Busy`] naming `what`).
    pub(crate) async fn cpu_bound<T: Send + 'static>(
        &self,
        what: &'static str,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        let wait = self.inner.config.password_hash_wait;
        let _slot = match tokio::time::timeout(wait, self.inner.hash_slots.acquire()).await {
            Ok(Ok(slot)) => slot,
            _ => return Err(Error::Busy(what)),
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
}
