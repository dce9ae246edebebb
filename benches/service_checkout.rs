//! Checkout with a tax service and a carrier that each answer in 5 ms,
//! against the same checkout with tables (issue #30): 8 tasks, each a
//! buyer pricing a fresh cart (the cart page) and checking it out.
//!
//! With services, the cart page asks the tax service for the cart's quote
//! (5 ms) and the carrier for the parcel's rates (cached after the first
//! buyer of the same parcel and route); checkout prices from the caches
//! and, once the order is placed, commits its tax document (5 ms).
//!
//! ```text
//! cargo bench --bench service_checkout    # prints a table
//! SERVICE_CHECKOUT_BUYERS=200 cargo bench --bench service_checkout
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use cartwright::prelude::*;
use cartwright::shipping::TestCarrier;
use cartwright::tax::{TaxCalculator, TestTaxProvider};
use rust_decimal::Decimal;

const TASKS: usize = 8;
const LATENCY: Duration = Duration::from_millis(5);

async fn engine(services: bool) -> (Engine, Vec<cartwright::id::VariantId>, &'static str) {
    let tax: Arc<dyn TaxCalculator> =
        Arc::new(FlatRateTax::new("Tax", Decimal::new(8, 2)).unwrap());
    let builder = Engine::builder().test_payment_provider().shipping(Arc::new(
        FlatRateShipping::new()
            .with_method(
                "standard",
                "Standard",
                &[Money::parse("5.00", Currency::USD).unwrap()],
            )
            .unwrap(),
    ));
    let (builder, method) = if services {
        let service = Arc::new(TestTaxProvider::new(tax));
        service.set_latency(LATENCY);
        let carrier = Arc::new(TestCarrier::new());
        carrier.set_latency(LATENCY);
        (
            builder.tax_provider(service).carrier(carrier),
            "test:ground",
        )
    } else {
        (builder.tax(tax), "standard")
    };
    let engine = builder.build().unwrap();
    let mut variants = Vec::new();
    for i in 0..20 {
        let p = engine
            .create_product(
                &Actor::System,
                NewProduct::new(format!("P{i}"))
                    .status(Status::Active)
                    .variants(vec![
                        NewVariant::shipped(format!("SKU{i}"))
                            .prices(vec![Money::from_minor(1_000 + i * 17, Currency::USD)])
                            .weight_grams(300)
                            .inventory(InventoryPolicy::Untracked)
                            .status(Status::Active),
                    ]),
            )
            .await
            .unwrap();
        variants.push(p.variants()[0].id());
    }
    (engine, variants, method)
}

/// One buyer: a fresh cart of three items, priced, then checked out.
async fn buyer(
    engine: &Engine,
    variants: &[cartwright::id::VariantId],
    method: &str,
    n: usize,
) -> Duration {
    let guest = Actor::Guest;
    let cart = engine.create_cart(&guest, Currency::USD).await.unwrap();
    for k in 0..3 {
        engine
            .add_item(&guest, cart.id(), variants[(n + k * 7) % variants.len()], 1)
            .await
            .unwrap();
    }
    engine
        .set_email(&guest, cart.id(), "b@example.com")
        .await
        .unwrap();
    engine
        .set_shipping_address(
            &guest,
            cart.id(),
            NewAddress::new("B", "1 Main St", "Springfield", "12345", "US"),
        )
        .await
        .unwrap();
    engine
        .set_shipping_method(&guest, cart.id(), method)
        .await
        .unwrap();
    let started = Instant::now();
    engine.price_cart(&guest, cart.id()).await.unwrap();
    engine
        .checkout(CheckoutRequest::new(
            cart.id(),
            IdempotencyKey::new(format!("k{n}")).unwrap(),
            "tok_visa",
            guest,
        ))
        .await
        .unwrap();
    started.elapsed()
}

async fn run(services: bool, buyers: usize) -> (f64, Duration, Duration) {
    let (engine, variants, method) = engine(services).await;
    let variants = Arc::new(variants);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let (engine, variants) = (engine.clone(), variants.clone());
        tasks.push(tokio::spawn(async move {
            let mut took = Vec::new();
            for i in 0..buyers / TASKS {
                took.push(buyer(&engine, &variants, method, t * 1_000_000 + i).await);
            }
            took
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let wall = started.elapsed().as_secs_f64();
    all.sort_unstable();
    let at = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
    (all.len() as f64 / wall, at(0.5), at(0.99))
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let buyers: usize = std::env::var("SERVICE_CHECKOUT_BUYERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    runtime.block_on(async {
        println!("| tax and shipping | checkouts/s | p50 (price + checkout) | p99 |");
        println!("|---|---|---|---|");
        for (label, services) in [
            ("tables", false),
            ("services at 5 ms", true),
            ("tables, again", false),
            ("services at 5 ms, again", true),
        ] {
            let (rate, p50, p99) = run(services, buyers).await;
            println!(
                "| {label} | {rate:.0} | {:.2} ms | {:.2} ms |",
                p50.as_secs_f64() * 1e3,
                p99.as_secs_f64() * 1e3
            );
        }
    });
}
