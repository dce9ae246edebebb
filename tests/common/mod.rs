//! A small shop used by the integration tests.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;

use cartwright::cart::Cart;
use cartwright::catalog::Product;
use cartwright::clock::ManualClock;
use cartwright::customer::PasswordPolicy;
use cartwright::id::{CartId, LocationId, VariantId};
use cartwright::payment::{PaymentProvider, TestPaymentProvider};
use cartwright::prelude::*;
use cartwright::store::{MemorySnapshot, MemoryStore, Store};
use chrono::{TimeZone, Utc};
use rust_decimal::Decimal;

#[cfg(feature = "postgres")]
pub mod cluster;
pub mod faulty;
pub mod gateway;
pub mod pausing;
pub mod rng;
pub mod world;

pub fn usd(s: &str) -> Money {
    Money::parse(s, Currency::USD).unwrap()
}

/// Which store a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Memory,
    #[cfg(feature = "postgres")]
    Postgres,
}

/// The store behind a shop, kept concretely for snapshots.
#[derive(Clone)]
pub enum Backing {
    Memory(Arc<MemoryStore>),
    #[cfg(feature = "postgres")]
    Postgres(cartwright::store::PgStore),
}

/// A whole-store snapshot, for "nothing changed" assertions.
#[derive(Debug, PartialEq)]
pub enum Snapshot {
    Memory(Box<MemorySnapshot>),
    Postgres(serde_json::Value),
}

pub struct Shop {
    pub engine: Engine,
    pub backing: Backing,
    pub payments: Arc<TestPaymentProvider>,
    pub clock: Arc<ManualClock>,
    pub warehouse: LocationId,
    /// The fault injector, when the options asked for one.
    pub faults: Option<Arc<faulty::FaultyStore>>,
    options: ShopOptions,
}

/// Runs each named `async fn name(backend: Backend)` as a test on every store.
#[macro_export]
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(super::common::Backend::Memory).await
                }
            )*
        }
        #[cfg(feature = "postgres")]
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(super::common::Backend::Postgres).await
                }
            )*
        }
    };
}

#[cfg(feature = "postgres")]
pub mod pg {
    use cartwright::store::PgStore;
    use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
    use std::str::FromStr;

    pub const TEST_DATABASE: &str = "cartwright_test";

    /// The server to test against: `CARTWRIGHT_TEST_DATABASE_URL`, or the
    /// local server. Tests fail (never skip) when it cannot be reached.
    pub fn admin_url() -> String {
        std::env::var("CARTWRIGHT_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
    }

    /// A fresh, empty schema in the test database.
    pub async fn fresh_schema() -> String {
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect(&admin_url())
            .await
            .expect("PostgreSQL must be reachable for the postgres tests");
        let exists: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
                .bind(TEST_DATABASE)
                .fetch_optional(&admin)
                .await
                .unwrap();
        if exists.is_none() {
            // Another test process may create it at the same moment.
            let _ = sqlx::query("CREATE DATABASE cartwright_test")
                .execute(&admin)
                .await;
        }
        admin.close().await;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let schema = format!("cwt_{now}_{}", uuid::Uuid::new_v4().simple());
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(options(""))
            .await
            .unwrap();
        // Best effort: drop schemas that earlier runs left behind an hour ago or more.
        let old: Vec<String> = sqlx::query_scalar(
            "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'cwt\\_%'",
        )
        .fetch_all(&pool)
        .await
        .unwrap_or_default();
        for name in old {
            let born = name
                .split('_')
                .nth(1)
                .and_then(|t| t.parse::<u64>().ok())
                .unwrap_or(0);
            if born + 3600 < now {
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP SCHEMA IF EXISTS {name} CASCADE"
                )))
                .execute(&pool)
                .await;
            }
        }
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        schema
    }

    pub fn options(schema: &str) -> PgConnectOptions {
        let opts = PgConnectOptions::from_str(&admin_url())
            .unwrap()
            .database(TEST_DATABASE);
        if schema.is_empty() {
            opts
        } else {
            opts.options([("search_path", schema)])
        }
    }

    /// A store on `schema` with its own pool (one application instance).
    pub async fn store(schema: &str, max_connections: u32) -> PgStore {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .connect_with(options(schema))
            .await
            .unwrap();
        PgStore::from_pool(pool).await.unwrap()
    }
}

#[derive(Clone)]
pub struct ShopOptions {
    pub capture: CaptureMode,
    pub provider: Option<Arc<dyn PaymentProvider>>,
    /// Put a fault injector between the engine and the store (`Shop::faults`).
    pub faulty: bool,
    /// The engine configuration (capture mode and password policy are set on top).
    pub config: Option<cartwright::EngineConfig>,
    /// Promotion settings (stacking, rounding, coupon codes).
    pub promotion_settings: Option<cartwright::pricing::PromotionSettings>,
    /// The return policy (the engine's default when `None`).
    pub return_policy: Option<Arc<dyn cartwright::order::ReturnPolicy>>,
    /// The shipping rates (`standard` at 5.00 / 500 JPY when `None`).
    pub shipping: Option<Arc<dyn cartwright::shipping::ShippingRates>>,
    /// A tax service instead of the 10 % flat tax, with its fallback.
    pub tax_provider: Option<TaxService>,
    /// A tax calculator instead of the 10 % flat tax.
    pub tax: Option<Arc<dyn cartwright::tax::TaxCalculator>>,
    /// Carriers, and whether to fall back on the table rates.
    pub carriers: Vec<Arc<dyn cartwright::shipping::Carrier>>,
    pub carrier_fallback: bool,
    /// A fulfilment router (none: stock by location priority, one parcel).
    pub router: Option<Arc<dyn cartwright::inventory::FulfilmentRouter>>,
    /// Where uploaded images go (in memory when `None`).
    pub media: Option<Arc<dyn cartwright::media::MediaStore>>,
}

/// A tax service and the tables to fall back on.
pub type TaxService = (
    Arc<dyn cartwright::tax::TaxProvider>,
    Option<Arc<dyn cartwright::tax::TaxCalculator>>,
);

impl Default for ShopOptions {
    fn default() -> Self {
        Self {
            capture: CaptureMode::Immediate,
            provider: None,
            faulty: false,
            config: None,
            promotion_settings: None,
            return_policy: None,
            shipping: None,
            tax_provider: None,
            tax: None,
            carriers: Vec::new(),
            carrier_fallback: false,
            router: None,
            media: None,
        }
    }
}

impl Shop {
    pub async fn new(backend: Backend) -> Self {
        Self::with(backend, ShopOptions::default()).await
    }

    pub async fn with(backend: Backend, options: ShopOptions) -> Self {
        let backing = match backend {
            Backend::Memory => Backing::Memory(Arc::new(MemoryStore::new())),
            #[cfg(feature = "postgres")]
            Backend::Postgres => {
                let schema = pg::fresh_schema().await;
                Backing::Postgres(pg::store(&schema, 8).await)
            }
        };
        Self::on(backing, options).await
    }

    /// A shop on a store the test made (a PostgreSQL store on a cluster of
    /// its own, say).
    pub async fn on(backing: Backing, options: ShopOptions) -> Self {
        let payments = Arc::new(TestPaymentProvider::new());
        let clock = Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap(),
        ));
        let faults = options
            .faulty
            .then(|| Arc::new(faulty::FaultyStore::new(raw_store(&backing))));
        let store: Arc<dyn Store> = match &faults {
            Some(f) => f.clone(),
            None => raw_store(&backing),
        };
        let engine = build_engine(store, &payments, &clock, &options);
        let warehouse = engine
            .create_location(&Actor::System, "Warehouse", 0)
            .await
            .unwrap()
            .id();
        Self {
            engine,
            backing,
            payments,
            clock,
            warehouse,
            faults,
            options,
        }
    }

    /// A shop whose gateway pauses after `pause_on` (see [`pausing`]);
    /// `payments` is the test gateway behind it.
    pub async fn pausing(
        backend: Backend,
        pause_on: cartwright::payment::Operation,
        capture: CaptureMode,
    ) -> (Self, Arc<pausing::PausingProvider>) {
        let inner = Arc::new(TestPaymentProvider::new());
        let pausing = pausing::PausingProvider::new(inner.clone(), pause_on);
        let options = ShopOptions {
            capture,
            provider: Some(pausing.clone()),
            ..ShopOptions::default()
        };
        let mut shop = Self::with(backend, options).await;
        shop.payments = inner;
        (shop, pausing)
    }

    /// A shop whose gateway answers after `delay` (see [`gateway`]);
    /// `payments` is the test gateway behind it.
    pub async fn slow(
        backend: Backend,
        delay: std::time::Duration,
        capture: CaptureMode,
    ) -> (Self, Arc<gateway::SlowGateway>) {
        let inner = Arc::new(TestPaymentProvider::new());
        let slow = gateway::SlowGateway::new(inner.clone(), delay);
        let options = ShopOptions {
            capture,
            provider: Some(slow.clone()),
            ..ShopOptions::default()
        };
        let mut shop = Self::with(backend, options).await;
        shop.payments = inner;
        (shop, slow)
    }

    /// A second application instance on the same database (its own pool),
    /// sharing the gateway and the clock. For the in-memory store it shares
    /// the same store.
    pub async fn second_engine(&self) -> Engine {
        let backing = self.sibling_backing().await;
        build_engine(
            raw_store(&backing),
            &self.payments,
            &self.clock,
            &self.options,
        )
    }

    /// The store of another application instance: the same memory store,
    /// or a pool of its own on the same PostgreSQL schema.
    async fn sibling_backing(&self) -> Backing {
        match &self.backing {
            Backing::Memory(m) => Backing::Memory(m.clone()),
            #[cfg(feature = "postgres")]
            Backing::Postgres(pg) => {
                let schema: String = sqlx::query_scalar("SELECT current_schema()::text")
                    .fetch_one(&pg.pool())
                    .await
                    .unwrap();
                Backing::Postgres(pg::store(&schema, 8).await)
            }
        }
    }

    /// A second application instance, as [`Shop::second_engine`], behind a
    /// fault injector of its own (stalls and faults on this instance only).
    pub async fn second_engine_faulty(&self) -> (Engine, Arc<faulty::FaultyStore>) {
        let backing = self.sibling_backing().await;
        let faults = Arc::new(faulty::FaultyStore::new(raw_store(&backing)));
        let engine = build_engine(faults.clone(), &self.payments, &self.clock, &self.options);
        (engine, faults)
    }

    /// An active product with one active, shippable variant priced `price` USD, with `stock` units.
    pub async fn product(&self, sku: &str, price: &str, stock: i64) -> VariantId {
        let product = self
            .product_with(
                sku,
                NewVariant::shipped("")
                    .prices(vec![usd(price)])
                    .weight_grams(100)
                    .status(Status::Active),
            )
            .await;
        let variant = product.variants()[0].id();
        self.engine
            .set_stock(&Actor::System, variant, self.warehouse, stock)
            .await
            .unwrap();
        variant
    }

    /// An active product whose one variant is `variant` with this SKU.
    pub async fn product_with(&self, sku: &str, variant: NewVariant) -> Product {
        self.engine
            .create_product(
                &Actor::System,
                NewProduct::new(format!("Product {sku}"))
                    .status(Status::Active)
                    .variants(vec![variant.sku(sku)]),
            )
            .await
            .unwrap()
    }

    /// A guest cart with the lines given, an email, an address and shipping chosen.
    pub async fn ready_cart(&self, lines: &[(VariantId, u32)]) -> Cart {
        let guest = Actor::Guest;
        let cart = self
            .engine
            .create_cart(&guest, Currency::USD)
            .await
            .unwrap();
        for (variant, qty) in lines {
            self.engine
                .add_item(&guest, cart.id(), *variant, *qty)
                .await
                .unwrap();
        }
        self.complete_details(&guest, cart.id()).await
    }

    pub async fn complete_details(&self, actor: &Actor, cart: CartId) -> Cart {
        self.engine
            .set_email(actor, cart, "buyer@example.com")
            .await
            .unwrap();
        self.engine
            .set_shipping_address(actor, cart, address())
            .await
            .unwrap();
        self.engine
            .set_shipping_method(actor, cart, "standard")
            .await
            .unwrap()
    }

    /// Checks out `cart` as a guest with the test card under `key`; the order.
    pub async fn place(&self, cart: CartId, key: &str) -> cartwright::order::Order {
        self.engine
            .checkout(request(cart, key))
            .await
            .unwrap()
            .order
    }

    /// Registers an account with password `password1`.
    pub async fn customer(&self, email: &str) -> cartwright::customer::Customer {
        self.engine
            .register(NewCustomer::new(email, "password1").name("Test"))
            .await
            .unwrap()
    }

    /// Everything the store holds, as text, nothing hidden: every map of
    /// the memory store, every table of the PostgreSQL schema.
    pub async fn everything(&self) -> String {
        match &self.backing {
            Backing::Memory(m) => m.snapshot().to_json().unwrap().to_string(),
            #[cfg(feature = "postgres")]
            Backing::Postgres(pg) => pg.dump().await.unwrap().to_string(),
        }
    }

    pub async fn snapshot(&self) -> Snapshot {
        match &self.backing {
            Backing::Memory(m) => Snapshot::Memory(Box::new(m.snapshot())),
            #[cfg(feature = "postgres")]
            Backing::Postgres(pg) => Snapshot::Postgres(pg.dump().await.unwrap()),
        }
    }
}

pub fn raw_store(backing: &Backing) -> Arc<dyn Store> {
    match backing {
        Backing::Memory(m) => m.clone(),
        #[cfg(feature = "postgres")]
        Backing::Postgres(pg) => Arc::new(pg.clone()),
    }
}

pub fn build_engine(
    store: Arc<dyn Store>,
    payments: &Arc<TestPaymentProvider>,
    clock: &Arc<ManualClock>,
    options: &ShopOptions,
) -> Engine {
    let shipping: Arc<dyn cartwright::shipping::ShippingRates> = match &options.shipping {
        Some(rates) => rates.clone(),
        None => Arc::new(
            FlatRateShipping::new()
                .with_method(
                    "standard",
                    "Standard",
                    &[usd("5.00"), Money::parse("500", Currency::JPY).unwrap()],
                )
                .unwrap(),
        ),
    };
    let provider: Arc<dyn PaymentProvider> =
        options.provider.clone().unwrap_or_else(|| payments.clone());
    let builder = match &options.return_policy {
        Some(policy) => Engine::builder().return_policy(policy.clone()),
        None => Engine::builder(),
    };
    let builder = match &options.tax_provider {
        Some((provider, fallback)) => {
            let b = builder.tax_provider(provider.clone());
            match fallback {
                Some(tables) => b.tax_fallback(tables.clone()),
                None => b,
            }
        }
        None => builder.tax(options.tax.clone().unwrap_or_else(|| {
            Arc::new(FlatRateTax::new("Tax 10%", Decimal::new(10, 2)).unwrap())
        })),
    };
    let builder = options
        .carriers
        .iter()
        .fold(builder, |b, c| b.carrier(c.clone()))
        .carrier_fallback(options.carrier_fallback);
    let builder = match &options.media {
        Some(media) => builder.media(media.clone()),
        None => builder,
    };
    let builder = match &options.router {
        Some(router) => builder.fulfilment_router(router.clone()),
        None => builder,
    };
    builder
        .config(options.config.clone().unwrap_or_default())
        .store(store)
        .payment_provider(provider)
        .clock(clock.clone())
        .shipping(shipping)
        .capture_mode(options.capture)
        .password_policy(PasswordPolicy::insecure_fast_for_tests())
        .promotion_settings(options.promotion_settings.unwrap_or_default())
        .build()
        .unwrap()
}

/// Four methods, in any currency: `standard` 5.00, `express` 12.00,
/// `economy` 3.00 and `per_item` 1.00 a unit (major units of the cart's
/// currency).
pub struct ManyMethods;

impl cartwright::shipping::ShippingRates for ManyMethods {
    fn rates(
        &self,
        input: &cartwright::shipping::ShippingInput<'_>,
    ) -> cartwright::error::Result<Vec<cartwright::shipping::ShippingRate>> {
        use cartwright::shipping::ShippingRate;
        let major = |units: u64| Money::new(Decimal::from(units), input.currency);
        Ok(vec![
            ShippingRate::new("standard", "Standard", major(5)),
            ShippingRate::new("express", "Express", major(12)),
            ShippingRate::new("economy", "Economy", major(3)),
            ShippingRate::new("per_item", "Per item", major(input.items)),
        ])
    }
}

/// A coded promotion: 10 % off every item.
pub fn ten_percent_coded() -> cartwright::pricing::Promotion {
    cartwright::pricing::Promotion::new(
        "Ten",
        cartwright::pricing::Action::PercentOffItems {
            target: cartwright::pricing::LineFilter::Any,
            percent: Decimal::TEN,
            max_discount: None,
            max_quantity_per_line: None,
        },
    )
    .coded()
}

pub fn address() -> NewAddress {
    NewAddress::new("Grace Hopper", "1 Navy Way", "Arlington", "22202", "us").region("va")
}

pub fn request(cart: CartId, key: &str) -> CheckoutRequest {
    CheckoutRequest::new(
        cart,
        IdempotencyKey::new(key).unwrap(),
        "tok_visa",
        Actor::Guest,
    )
}

/// The relay delivers an event once no transaction that could still commit
/// an earlier one is running — on a shared PostgreSQL server that can take a
/// moment — so wait (boundedly) until `consumer` has at least `n` events.
pub async fn pending(engine: &Engine, consumer: &str, n: usize) -> Vec<cartwright::store::Event> {
    for _ in 0..200 {
        let events = engine
            .pending_events(&Actor::System, consumer, 100)
            .await
            .unwrap();
        if events.len() >= n {
            return events;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    engine
        .pending_events(&Actor::System, consumer, 100)
        .await
        .unwrap()
}

/// The events `consumer` has not acknowledged, once `done` holds for them
/// (waiting boundedly, as [`pending`] does); the last read when it never
/// does.
#[allow(dead_code)]
pub async fn events_until(
    engine: &Engine,
    consumer: &str,
    done: impl Fn(&[cartwright::store::Event]) -> bool,
) -> Vec<cartwright::store::Event> {
    for _ in 0..200 {
        let events = engine
            .pending_events(&Actor::System, consumer, 500)
            .await
            .unwrap();
        if done(&events) {
            return events;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    engine
        .pending_events(&Actor::System, consumer, 500)
        .await
        .unwrap()
}

/// Records `times` rounds of an `order.cancelled` event on each of
/// `orders`, interleaved (one command per round): events for the relay
/// tests, with no order behind them.
pub async fn cancel_orders(engine: &Engine, orders: &[cartwright::id::OrderId], times: usize) {
    for _ in 0..times {
        let kinds = orders
            .iter()
            .map(|o| cartwright::event::EventKind::OrderCancelled { order_id: *o })
            .collect();
        engine
            .store()
            .record_events(kinds, chrono::Utc::now())
            .await
            .unwrap();
    }
}

/// An idempotency key (test keys are valid).
pub fn key(k: &str) -> IdempotencyKey {
    IdempotencyKey::new(k).unwrap()
}

/// `quantity` units of the order's line number `line`.
pub fn units(
    order: &cartwright::order::Order,
    line: usize,
    quantity: u32,
) -> Vec<cartwright::order::LineQuantity> {
    vec![cartwright::order::LineQuantity {
        line_id: order.pricing().lines[line].line_id,
        quantity,
    }]
}
