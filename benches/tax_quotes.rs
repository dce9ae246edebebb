//! Pricing a cart with a tax service's cached quote against pricing it
//! with tables (issue #30's target: within 5 % in instructions).
//!
//! Two engines on in-memory stores holding the same catalog and the same
//! 50-line cart: one taxes with a flat 8 % table, the other with
//! `TestTaxProvider` quoting the same 8 % — warmed once, so each of its
//! pricings is served from the quote cache. Each timed call is one
//! `Engine::price_cart` (store reads, pricing, the quote look-up).
//!
//! ```text
//! cargo bench --bench tax_quotes                  # a table of both, alternating
//! TAX_BENCH_MODE=tables TAX_BENCH_CALLS=2000 valgrind --tool=callgrind \
//!     target/release/deps/tax_quotes-<hash>        # one mode, for instruction counts
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::Arc;
use std::time::Instant;

use cartwright::prelude::*;
use cartwright::tax::{TaxCalculator, TestTaxProvider};
use rust_decimal::Decimal;

const LINES: usize = 50;

async fn engine_and_cart(service: bool) -> (Engine, cartwright::id::CartId) {
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
    let engine = if service {
        builder.tax_provider(Arc::new(TestTaxProvider::new(tax)))
    } else {
        builder.tax(tax)
    }
    .build()
    .unwrap();
    let guest = Actor::Guest;
    let cart = engine.create_cart(&guest, Currency::USD).await.unwrap();
    for i in 0..LINES {
        let product = engine
            .create_product(
                &Actor::System,
                NewProduct::new(format!("Product {i}"))
                    .status(Status::Active)
                    .variants(vec![
                        NewVariant::shipped(format!("SKU-{i}"))
                            .prices(vec![Money::from_minor(100 + i as i64 * 37, Currency::USD)])
                            .inventory(InventoryPolicy::Untracked)
                            .status(Status::Active),
                    ]),
            )
            .await
            .unwrap();
        engine
            .add_item(
                &guest,
                cart.id(),
                product.variants()[0].id(),
                1 + (i % 3) as u32,
            )
            .await
            .unwrap();
    }
    engine
        .set_shipping_address(
            &guest,
            cart.id(),
            NewAddress::new("Ada", "1 Main St", "Springfield", "12345", "US"),
        )
        .await
        .unwrap();
    engine
        .set_shipping_method(&guest, cart.id(), "standard")
        .await
        .unwrap();
    // Warm: the service's quote is fetched and cached here.
    engine.price_cart(&guest, cart.id()).await.unwrap();
    (engine, cart.id())
}

async fn run(engine: &Engine, cart: cartwright::id::CartId, calls: usize) -> std::time::Duration {
    let started = Instant::now();
    for _ in 0..calls {
        std::hint::black_box(engine.price_cart(&Actor::Guest, cart).await.unwrap());
    }
    started.elapsed()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let calls: usize = std::env::var("TAX_BENCH_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    runtime.block_on(async {
        match std::env::var("TAX_BENCH_MODE").as_deref() {
            Ok(mode) => {
                let (engine, cart) = engine_and_cart(mode == "service").await;
                let took = run(&engine, cart, calls).await;
                println!("{mode}: {calls} pricings in {took:?}");
            }
            Err(_) => {
                let (tables, t_cart) = engine_and_cart(false).await;
                let (service, s_cart) = engine_and_cart(true).await;
                let (mut t_total, mut s_total) = (0.0, 0.0);
                for _ in 0..5 {
                    t_total += run(&tables, t_cart, calls).await.as_secs_f64();
                    s_total += run(&service, s_cart, calls).await.as_secs_f64();
                }
                let n = (5 * calls) as f64;
                println!("| tax | µs per price_cart ({LINES} lines) |");
                println!("|---|---|");
                println!("| tables (flat 8 %) | {:.1} |", t_total / n * 1e6);
                println!("| service, cached quote | {:.1} |", s_total / n * 1e6);
                println!("ratio: {:.3}", s_total / t_total);
            }
        }
    });
}
