//! # cartwright
//!
//! An embeddable commerce engine: the back end of an online shop as a
//! library. Catalog, customers, carts, pricing and promotions, inventory,
//! payments, checkout and orders, with storage, payments, tax, shipping and
//! pricing rules behind plugin traits.
//!
//! The central design decision: **pricing is a pure function** and **every
//! change that must happen together is one atomic store command**. The
//! [`Engine`] sequences the two; it never reads, checks and then writes
//! across two store calls. That is what keeps stock from being oversold and a
//! retried checkout from charging twice. See `ARCHITECTURE.md` for the map.
//!
//! ## Quick start
//!
//! With no set-up the engine keeps everything in memory; the test payment
//! provider and "no tax" are explicit choices.
//!
//! ```
//! use cartwright::prelude::*;
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> cartwright::Result<()> {
//! let engine = Engine::builder().test_payment_provider().no_tax().build()?;
//! let (staff, guest) = (Actor::Staff("ann".into()), Actor::Guest);
//! let usd = |s: &str| Money::parse(s, Currency::USD);
//! let mug = NewVariant::shipped("MUG").price(usd("12.00")?).status(Status::Active);
//! let product = NewProduct::new("Mug").status(Status::Active).variant(mug);
//! let product = engine.create_product(&staff, product).await?;
//! let cart = engine.create_cart(&guest, Currency::USD).await?;
//! engine.add_item(&guest, cart.id(), product.variants()[0].id(), 2).await?;
//! assert_eq!(engine.price_cart(&guest, cart.id()).await?.total, usd("24.00")?);
//! # Ok(())
//! # }
//! ```
//!
//! ## A whole session
//!
//! Stock, shipping, a guest checkout and the guest's proof of ownership of
//! the order, with the built-in
//! [`TestPaymentProvider`](payment::TestPaymentProvider):
//!
//! ```
//! use std::sync::Arc;
//! use cartwright::prelude::*;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> cartwright::Result<()> {
//! let shipping = FlatRateShipping::new()
//!     .with_method("standard", "Standard", &[Money::parse("4.99", Currency::USD)?])?;
//! let engine = Engine::builder()
//!     .shipping(Arc::new(shipping))
//!     .test_payment_provider()
//!     .no_tax()
//!     .build()?;
//!
//! // A product with one variant, in stock.
//! let admin = Actor::Staff("ann".into());
//! engine
//!     .create_product(
//!         &admin,
//!         NewProduct::new("Mug").status(Status::Active).variant(
//!             NewVariant::shipped("MUG-1")
//!                 .price(Money::parse("12.00", Currency::USD)?)
//!                 
//!                 .status(Status::Active),
//!         ),
//!     )
//!     .await?;
//! let variant = engine.variant_by_sku("mug-1").await?.variant.id();
//! let warehouse = engine.create_location(&admin, "Warehouse", 0).await?;
//! engine.set_stock(&admin, variant, warehouse.id(), 5).await?;
//!
//! // A guest fills a cart and checks out.
//! let guest = Actor::Guest;
//! let cart = engine.create_cart(&guest, Currency::USD).await?;
//! engine.add_item(&guest, cart.id(), variant, 2).await?;
//! engine.set_email(&guest, cart.id(), "ann@example.com").await?;
//! engine
//!     .set_shipping_address(
//!         &guest,
//!         cart.id(),
//!         NewAddress::new("Ann", "1 Main St", "Springfield", "62701", "US"),
//!     )
//!     .await?;
//! engine.set_shipping_method(&guest, cart.id(), "standard").await?;
//!
//! let placed = engine
//!     .checkout(CheckoutRequest::new(
//!         cart.id(),
//!         IdempotencyKey::new("checkout-1")?,
//!         "tok_visa",
//!         guest,
//!     ))
//!     .await?;
//! assert_eq!(placed.order.total(), Money::parse("28.99", Currency::USD)?);
//! assert_eq!(placed.payment, PaymentOutcome::Paid);
//! // The guest's proof of ownership of the order.
//! let token = placed.access_token.expect("guest orders get a token");
//! engine.order(&Actor::GuestWithToken(token), placed.order.id()).await?;
//! assert_eq!(engine.stock(variant).await?.available(), 3);
//! # Ok(())
//! # }
//! ```
//!
//! Promotions, coupon codes and price lists are data saved through the engine
//! ([`Engine::save_promotion`], [`Engine::create_coupon`],
//! [`Engine::save_price_list`]); [`pricing`] documents the pipeline and
//! [`pricing::PricedCart::promotions`] explains every outcome.
//!
//! The back office is on the same [`Engine`]: account recovery
//! ([`Engine::request_password_reset`], [`Engine::reset_password`],
//! [`Engine::verify_email`], [`Engine::confirm_email_change`] — single-use
//! tokens the embedding program delivers), privacy
//! ([`Engine::export_customer`], [`Engine::erase_customer`]), staff search
//! ([`Engine::find_customers`]), catalog upkeep ([`Engine::move_category`],
//! [`Engine::delete_product`], ...) and product listings
//! ([`Engine::find_products`]: words, SKU, category, collection, tag,
//! status, price range, keyset pages).
//!
//! AI agents buy through the same engine: an agent platform
//! ([`Actor::Agent`]) opens an agent session over a cart
//! ([`Engine::open_agent_session`], [`agents`]) that completes through the
//! engine's own checkout; the `ucp` and `acp` features speak the two
//! agentic commerce protocols over it (`agentic`).
//!
//! More in `examples/`: `ucp_merchant/` (the UCP conformance suite's flower
//! shop, served to AI agents), `checkout.rs` (a whole shop session with promotions
//! and a receipt), `custom_rule.rs` (your own pricing condition and action),
//! `postgres_checkout.rs` (the same on PostgreSQL),
//! `custom_payment_provider.rs` (plugging in a gateway),
//! `order_lifecycle.rs` (shipping, capture, a return and its refund),
//! `payment_sessions.rs` (3-D Secure completed by the return or the event,
//! gift cards, store credit and a split refund) and `http_gateway/` (an
//! adapter that talks HTTP to a gateway, with signed webhooks).
//!
//! ## Feature flags
//!
//! | feature | what it does | default |
//! |---|---|---|
//! | *(none)* | everything, with the in-memory store | yes |
//! | `postgres` | [`store::PgStore`](crate::store), the PostgreSQL store | no |
//! | `test-util` | `testkit`: conformance suites for your own store or payment provider; test helpers (`MemoryStore::snapshot`, `PgStore::dump`, `PasswordPolicy::insecure_fast_for_tests`) | no |
//! | `nats` | the event relay's NATS JetStream sink (`relay::nats`) | no |
//! | `rabbitmq` | the event relay's RabbitMQ sink (`relay::rabbitmq`) | no |
//! | `webhooks` | the event relay's signed webhook sink (`relay::webhook`) | no |
//! | `ucp` | AI agents buy through the Universal Commerce Protocol (`agentic::ucp`, an axum router) | no |
//! | `acp` | AI agents buy through the Agentic Commerce Protocol (`agentic::acp`, an axum router) | no |
//! | `metrics` | counters and histograms through the `metrics` facade ([`telemetry`]) | no |
//!
//! ## Limits
//!
//! Every input has a documented maximum, and going past it is
//! [`Error::LimitExceeded`]: for example [`cart::MAX_LINES_PER_CART`],
//! [`cart::MAX_QUANTITY_PER_LINE`], [`cart::MAX_CODES_PER_CART`],
//! [`pricing::MAX_CONDITIONS`], [`pricing::MAX_CANDIDATES`],
//! [`catalog::MAX_VARIANTS_PER_PRODUCT`] and [`store::MAX_PAGE_SIZE`]; and
//! every amount a user enters is at most [`money::MAX_AMOUNT_UNITS`] whole
//! units.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod adapters;
#[cfg(feature = "admin")]
#[cfg_attr(docsrs, doc(cfg(feature = "admin")))]
pub mod admin;
#[cfg(any(feature = "ucp", feature = "acp"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "ucp", feature = "acp"))))]
pub mod agentic;
mod domain;
pub mod engine;
mod ports;
#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod testkit;

pub(crate) use domain::validate;
#[doc(inline)]
pub use domain::{
    actor, agent, cart, catalog, channel, clock, customer, error, event, giftcard, id, inventory,
    money, note, order, pricing, staff, webhook,
};
pub(crate) use engine::promotions;

/// The crates whose types appear in cartwright's public API, re-exported so
/// that an application uses the very versions cartwright was built with:
/// `chrono` (instants and durations), `rust_decimal` (amounts, rates),
/// `uuid` (ids), `serde_json` (custom rules' settings) and, with the
/// `postgres` feature, `sqlx` (`PgStore::from_pool` and `PgStore::pool`).
pub mod deps {
    pub use chrono;
    pub use rust_decimal;
    pub use serde_json;
    #[cfg(feature = "postgres")]
    pub use sqlx;
    pub use uuid;
}
#[doc(inline)]
pub use engine::{
    after_sale, agents, catalog_csv, checkout, fulfillment, giftcards, maintenance, money_path,
    quotes, relay, telemetry,
};
pub mod payment {
    //! Payments: the [`PaymentProvider`] port, the payment state machine,
    //! the money-path operations, and the built-in [`TestPaymentProvider`]
    //! (an adapter, for tests, examples and demos: it moves no real money).
    #[doc(inline)]
    pub use crate::adapters::test_payment::{
        Fault, Operation, ProviderCall, TestAuthorization, TestPaymentProvider,
    };
    #[doc(inline)]
    pub use crate::domain::payment::*;
}

pub mod shipping {
    //! Shipping: the [`ShippingRates`] trait and its table built-ins, the
    //! [`Carrier`] port for live rates, labels and tracking, and the
    //! built-in [`TestCarrier`] (an adapter, for tests, examples and
    //! demos).
    #[doc(inline)]
    pub use crate::adapters::test_carrier::{CarrierCall, CarrierFault, TestCarrier, TestLabel};
    #[doc(inline)]
    pub use crate::domain::shipping::*;
}

pub mod tax {
    //! Tax: the [`TaxCalculator`] trait and its table built-ins, the
    //! [`TaxProvider`] port for a tax service, and the built-in
    //! [`TestTaxProvider`] (an adapter, for tests, examples and demos).
    #[doc(inline)]
    pub use crate::adapters::test_tax::{TaxCall, TaxDocumentRecord, TaxFault, TestTaxProvider};
    #[doc(inline)]
    pub use crate::domain::tax::*;
}

pub mod media {
    //! Product and variant images: the checks every upload passes
    //! ([`check_image`]: sniffed, size-limited, decoded and re-encoded),
    //! the names they are kept under ([`MediaKey`], never from the
    //! upload), the [`MediaStore`] port and its built-ins —
    //! [`MemoryMedia`] (the default), [`FsMedia`] (a folder) and, with the
    //! feature `object-store`, [`ObjectStoreMedia`] (S3, GCS, Azure).
    //! The engine's calls are `Engine::upload_image`, `Engine::remove_image`
    //! and `Engine::media`.
    #[cfg(feature = "object-store")]
    #[cfg_attr(docsrs, doc(cfg(feature = "object-store")))]
    #[doc(inline)]
    pub use crate::adapters::media::object_store::ObjectStoreMedia;
    #[doc(inline)]
    pub use crate::adapters::media::{FsMedia, MemoryMedia};
    #[doc(inline)]
    pub use crate::domain::media::*;
    #[doc(inline)]
    pub use crate::engine::media::ImageUpload;
    #[doc(inline)]
    pub use crate::ports::media::MediaStore;
}

pub mod store {
    //! Where everything lives: the store ports (the traits an adapter
    //! implements, each command atomic) and the two adapters, the in-memory
    //! store and the PostgreSQL store (feature `postgres`). See the ports'
    //! [`Store`] trait for the contract; `testkit::store_conformance`
    //! (feature `test-util`) checks an adapter of your own.
    #[doc(inline)]
    #[cfg(any(test, feature = "test-util"))]
    pub use crate::adapters::memory::MemorySnapshot;
    pub use crate::adapters::memory::{self, MemoryStore};
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    #[doc(inline)]
    pub use crate::adapters::postgres::{self, PgOptions, PgStore};
    #[doc(inline)]
    pub use crate::ports::store::*;
}

pub use actor::Actor;
pub use checkout::{CheckoutOutcome, CheckoutRequest, PaymentOutcome};
pub use engine::{
    CaptureMode, CustomerExport, CustomerPage, Engine, EngineBuilder, EngineConfig, NewCustomer,
    OrderPage, ProductPage,
};
pub use error::{Error, Result};

/// The names most programs need, in one import.
pub mod prelude {
    pub use crate::actor::Actor;
    pub use crate::catalog::{InventoryPolicy, NewProduct, NewVariant, Status};
    pub use crate::checkout::{CheckoutOutcome, CheckoutRequest, PaymentOutcome};
    pub use crate::customer::NewAddress;
    pub use crate::engine::{CaptureMode, Engine, NewCustomer};
    pub use crate::error::{Error, Result};
    pub use crate::id::IdempotencyKey;
    pub use crate::money::{Currency, Money, RoundingMode};
    pub use crate::shipping::FlatRateShipping;
    pub use crate::tax::FlatRateTax;
}
