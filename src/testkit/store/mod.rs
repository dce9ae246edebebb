//! The store conformance suite.
//!
//! Does not know: the store it checks beyond the `Store` ports.

use std::future::Future;
use std::sync::Arc;

use super::{Failure, Report, ensure, step};
use crate::actor::Actor;
use crate::catalog::{InventoryPolicy, NewProduct, NewVariant, Status};
use crate::checkout::CheckoutRequest;
use crate::customer::NewAddress;
use crate::engine::Engine;
use crate::error::Error;
use crate::event::EventKind;
use crate::id::{IdempotencyKey, VariantId};
use crate::inventory::{StockRequest, UsageClaim};
use crate::money::{Currency, Money};
use crate::order::{OrderChange, OrderQuery};
use crate::shipping::FlatRateShipping;
use crate::store::Store;

mod accounts;
mod checkout;
use accounts::{accounts, channels, gift_cards};
use checkout::{cart_for_pricing, checkout_and_orders, first_commit, waiting_payments};

/// Runs the store conformance suite: `make` must give a fresh, empty store
/// on every call (for PostgreSQL, for example, a new schema). Through the
/// engine and the port it checks what the engine relies on: catalog round
/// trips and duplicate SKUs named by value; reservations all or nothing and
/// never oversold under concurrency; usage limits exact under concurrency;
/// idempotent checkouts; checkout's one-call read
/// ([`PromotionStore::cart_for_pricing`](crate::store::PromotionStore::cart_for_pricing))
/// equal to the separate reads; the combined first commit of a checkout
/// ([`CheckoutStore::begin_and_reserve`](crate::store::CheckoutStore::begin_and_reserve))
/// all or nothing, once per key and never oversold, whatever location a
/// request hints at (a store that does not offer it passes by answering
/// `None`); earlier orders counted by email
/// ([`OrderStore::orders_placed_by`](crate::store::OrderStore::orders_placed_by));
/// order saves refused on a stale version; the event relay per consumer; pruning.
///
/// # Errors
/// The first [`Failure`]: which check, and what was seen.
pub async fn store_conformance<F, Fut>(make: F) -> Result<Report, Failure>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Store>>,
{
    let mut report = Report::default();
    catalog(make().await).await?;
    report.checks += 1;
    reservations(make().await).await?;
    report.checks += 1;
    usage_limits(make().await).await?;
    report.checks += 1;
    checkout_and_orders(make().await).await?;
    report.checks += 1;
    first_commit(make().await).await?;
    report.checks += 1;
    cart_for_pricing(make().await).await?;
    report.checks += 1;
    accounts(make().await).await?;
    report.checks += 1;
    waiting_payments(make().await).await?;
    report.checks += 1;
    gift_cards(make().await).await?;
    report.checks += 1;
    channels(make().await).await?;
    report.checks += 1;
    Ok(report)
}

fn usd(minor: i64) -> Money {
    Money::from_minor(minor, Currency::USD)
}

fn engine(store: Arc<dyn Store>, check: &'static str) -> Result<Engine, Failure> {
    let shipping = step(
        check,
        FlatRateShipping::new().with_method("std", "Standard", &[usd(5_00)]),
    )?;
    step(
        check,
        Engine::builder()
            .store(store)
            .shipping(Arc::new(shipping))
            .test_payment_provider()
            .no_tax()
            .build(),
    )
}

/// A guest cart with `quantity` of `variant`, an email, an address and
/// the standard shipping method: ready to check out.
async fn ready_cart(
    e: &Engine,
    variant: VariantId,
    quantity: u32,
    check: &'static str,
) -> Result<crate::cart::Cart, Failure> {
    let guest = Actor::Guest;
    let cart = step(check, e.create_cart(&guest, Currency::USD).await)?;
    step(
        check,
        e.add_item(&guest, cart.id(), variant, quantity).await,
    )?;
    step(
        check,
        e.set_email(&guest, cart.id(), "kit@example.com").await,
    )?;
    let address = NewAddress::default()
        .name("Kit")
        .line1("1 Main St")
        .city("Springfield")
        .country("US");
    step(
        check,
        e.set_shipping_address(&guest, cart.id(), address).await,
    )?;
    step(check, e.set_shipping_method(&guest, cart.id(), "std").await)
}

async fn product(
    engine: &Engine,
    sku: &str,
    stock: i64,
    check: &'static str,
) -> Result<VariantId, Failure> {
    let system = Actor::System;
    let p = step(
        check,
        engine
            .create_product(
                &system,
                NewProduct::new(format!("Product {sku}"))
                    .status(Status::Active)
                    .variants(vec![
                        NewVariant::shipped(sku)
                            .prices(vec![usd(10_00)])
                            .status(Status::Active),
                    ]),
            )
            .await,
    )?;
    let variant = p
        .variants()
        .first()
        .map(crate::catalog::Variant::id)
        .ok_or_else(|| Failure {
            check,
            detail: "the product has no variant".into(),
        })?;
    let location = step(
        check,
        engine
            .create_location(&system, &format!("L-{sku}"), 0)
            .await,
    )?;
    step(
        check,
        engine
            .set_stock(&system, variant, location.id(), stock)
            .await,
    )?;
    Ok(variant)
}

async fn catalog(store: Arc<dyn Store>) -> Result<(), Failure> {
    const CHECK: &str = "catalog";
    let e = engine(store, CHECK)?;
    let v = product(&e, "MUG", 3, CHECK).await?;
    let entry = step(CHECK, e.variant_by_sku("mug").await)?;
    ensure(entry.variant.id() == v, CHECK, || {
        "SKU lookup found another variant".into()
    })?;
    let again = e
        .create_product(
            &Actor::System,
            NewProduct::new("Copy")
                .variants(vec![NewVariant::digital("MUG").prices(vec![usd(1_00)])]),
        )
        .await;
    ensure(
        matches!(&again, Err(Error::AlreadyExists { what: "sku", value }) if value == "MUG"),
        CHECK,
        || format!("a taken SKU answered {again:?}, expected AlreadyExists {{ sku, \"MUG\" }}"),
    )
}

async fn reservations(store: Arc<dyn Store>) -> Result<(), Failure> {
    const CHECK: &str = "reservations";
    let e = engine(store, CHECK)?;
    let a = product(&e, "A", 5, CHECK).await?;
    let b = product(&e, "B", 1, CHECK).await?;
    let system = Actor::System;
    // All or nothing.
    let short = e.reserve_stock(&system, &[(a, 2), (b, 2)]).await;
    ensure(
        matches!(short, Err(Error::OutOfStock { .. })),
        CHECK,
        || format!("reserving more than is on hand answered {short:?}"),
    )?;
    let left = step(CHECK, e.stock(a).await)?.available();
    ensure(left == 5, CHECK, || {
        format!("a refused reservation held {} units", 5 - left)
    })?;
    // Never oversold: 12 racing for 5.
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let e = e.clone();
        tasks.push(tokio::spawn(async move {
            e.reserve_stock(&Actor::System, &[(a, 1)]).await
        }));
    }
    let mut held = 0;
    for t in tasks {
        if step(CHECK, t.await)?.is_ok() {
            held += 1;
        }
    }
    let left = step(CHECK, e.stock(a).await)?.available();
    ensure(held == 5 && left == 0, CHECK, || {
        format!("12 racing reservations of 5 units: {held} held, {left} left")
    })
}

async fn usage_limits(store: Arc<dyn Store>) -> Result<(), Failure> {
    const CHECK: &str = "usage limits";
    let e = engine(store.clone(), CHECK)?;
    let a = product(&e, "U", 100, CHECK).await?;
    let now = chrono::Utc::now();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let request = StockRequest {
                variant_id: a,
                quantity: 1,
                policy: InventoryPolicy::Tracked {
                    allow_backorder: false,
                },
                channel: None,
                location: None,
            };
            let claim = UsageClaim {
                counter: "conformance:uses".into(),
                amount: 1,
                limit: 3,
            };
            store
                .reserve(
                    &[request],
                    &[claim],
                    now + chrono::Duration::minutes(5),
                    now,
                )
                .await
        }));
    }
    let mut held = Vec::new();
    for t in tasks {
        if let Ok(r) = step(CHECK, t.await)? {
            held.push(r);
        }
    }
    let used = step(CHECK, store.usage("conformance:uses").await)?;
    ensure(held.len() == 3 && used == 3, CHECK, || {
        format!(
            "8 racing claims on a limit of 3: {} held, usage {used}",
            held.len()
        )
    })?;
    if let Some(r) = held.first() {
        step(CHECK, store.release(r.id, now).await)?;
    }
    let used = step(CHECK, store.usage("conformance:uses").await)?;
    ensure(used == 2, CHECK, || {
        format!("usage {used} after a release, expected 2")
    })
}
