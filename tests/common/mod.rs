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
use cartwright::store::{MemorySnapshot, MemoryStore};
use chrono::{TimeZone, Utc};
use rust_decimal::Decimal;

pub fn usd(s: &str) -> Money {
    Money::parse(s, Currency::USD).unwrap()
}

pub struct Shop {
    pub engine: Engine,
    pub store: Arc<MemoryStore>,
    pub payments: Arc<TestPaymentProvider>,
    pub clock: Arc<ManualClock>,
    pub warehouse: LocationId,
}

pub struct ShopOptions {
    pub capture: CaptureMode,
    pub provider: Option<Arc<dyn PaymentProvider>>,
}

impl Default for ShopOptions {
    fn default() -> Self {
        Self {
            capture: CaptureMode::Immediate,
            provider: None,
        }
    }
}

impl Shop {
    pub async fn new() -> Self {
        Self::with(ShopOptions::default()).await
    }

    pub async fn with(options: ShopOptions) -> Self {
        let store = Arc::new(MemoryStore::new());
        let payments = Arc::new(TestPaymentProvider::new());
        let clock = Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap(),
        ));
        let shipping = FlatRateShipping::new()
            .with_method(
                "standard",
                "Standard",
                &[usd("5.00"), Money::parse("500", Currency::JPY).unwrap()],
            )
            .unwrap();
        let provider: Arc<dyn PaymentProvider> =
            options.provider.unwrap_or_else(|| payments.clone());
        let engine = Engine::builder()
            .store(store.clone())
            .payment_provider(provider)
            .clock(clock.clone())
            .shipping(Arc::new(shipping))
            .tax(Arc::new(
                FlatRateTax::new("Tax 10%", Decimal::new(10, 2)).unwrap(),
            ))
            .capture_mode(options.capture)
            .password_policy(PasswordPolicy::insecure_fast_for_tests())
            .build()
            .unwrap();
        let warehouse = engine.create_location("Warehouse", 0).await.unwrap().id();
        Self {
            engine,
            store,
            payments,
            clock,
            warehouse,
        }
    }

    /// An active product with one active, shippable variant priced `price` USD, with `stock` units.
    pub async fn product(&self, sku: &str, price: &str, stock: i64) -> VariantId {
        let product = self
            .product_with(
                sku,
                NewVariant {
                    prices: vec![usd(price)],
                    requires_shipping: true,
                    weight_grams: 100,
                    status: Status::Active,
                    ..NewVariant::default()
                },
            )
            .await;
        let variant = product.variants()[0].id();
        self.engine
            .set_stock(variant, self.warehouse, stock)
            .await
            .unwrap();
        variant
    }

    /// An active product whose one variant is `variant` with this SKU.
    pub async fn product_with(&self, sku: &str, variant: NewVariant) -> Product {
        self.engine
            .create_product(NewProduct {
                title: format!("Product {sku}"),
                status: Status::Active,
                variants: vec![NewVariant {
                    sku: sku.into(),
                    ..variant
                }],
                ..NewProduct::default()
            })
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

    /// Registers an account with password `password1`.
    pub async fn customer(&self, email: &str) -> cartwright::customer::Customer {
        self.engine
            .register(NewCustomer {
                email: email.into(),
                password: "password1".into(),
                name: "Test".into(),
            })
            .await
            .unwrap()
    }

    pub fn snapshot(&self) -> MemorySnapshot {
        self.store.snapshot()
    }
}

pub fn address() -> NewAddress {
    NewAddress {
        name: "Grace Hopper".into(),
        line1: "1 Navy Way".into(),
        city: "Arlington".into(),
        region: "va".into(),
        postal_code: "22202".into(),
        country: "us".into(),
        ..NewAddress::default()
    }
}

pub fn request(cart: CartId, key: &str) -> CheckoutRequest {
    CheckoutRequest {
        cart_id: cart,
        idempotency_key: IdempotencyKey::new(key).unwrap(),
        payment_token: "tok_visa".into(),
        actor: Actor::Guest,
    }
}
