//! Pricing benchmarks over the seeded workload in `fixture/`.
//!
//! ```text
//! cargo bench --bench pricing                      # everything
//! cargo bench --bench pricing -- 'matrix/50 lines' # one group or case
//! PRICING_FIXTURE_EXPORT=target/fixture cargo bench --bench pricing   # write the JSON, no timing
//! ```
//!
//! Groups:
//! - `matrix`: carts of 1–1,000 lines × 0–10,000 promotions, each
//!   promotion targeting 32 random SKUs of 10,000 (about 15 % meet a
//!   50-line cart), the issue's mix of kinds.
//! - `shapes`: the same 50-line cart and 20 promotions, once with the
//!   usual mix and once with issue #12's shapes (fixed total, quantity
//!   groups, first and additional units, tiered shipping, buy X get Y
//!   rewarding the dearer unit).
//! - `scaling`: one 50-line (and one 1,000-line) cart drawn from the first
//!   half of the catalog, with 100 promotions versus the same 100 plus 9,900
//!   that target only the second half: what the index saves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod fixture;

use std::hint::black_box;

use cartwright::pricing::{PricingContext, price};
use cartwright::tax::FlatRateTax;
use criterion::{BenchmarkId, Criterion};
use rust_decimal::Decimal;

const SEED: u64 = 20_261_125;

fn bench(c: &mut Criterion) {
    let cat = fixture::catalog(SEED);
    let tax = FlatRateTax::new("Tax", Decimal::new(8, 2)).unwrap();
    let all = fixture::promotions(10_000, SEED + 1, 0, fixture::SKUS, 0);

    let mut group = c.benchmark_group("matrix");
    for n in [0, 5, 20, 100, 1_000, 10_000] {
        let (set, coupons) = cat.compile(&all[..n]);
        for lines in [1, 5, 20, 50, 200, 1_000] {
            let spec = fixture::cart(lines, SEED + 2, 0, fixture::SKUS, &all);
            let cart = cat.cart(&spec);
            let entries = cat.entries_for(&cart);
            let mut ctx = PricingContext::new(&entries, &cat.shipping, &tax, cat.now);
            ctx.promotions = &set;
            ctx.coupons = &coupons;
            let priced = price(&cart, &ctx).unwrap();
            let considered = priced.promotions.len();
            let applied = priced.promotions.iter().filter(|p| p.applied()).count();
            eprintln!(
                "matrix {lines} lines × {n} promotions: {considered} considered, {applied} applied"
            );
            group.bench_with_input(
                BenchmarkId::new(format!("{lines} lines"), format!("{n} promotions")),
                &cart,
                |b, cart| b.iter(|| price(black_box(cart), &ctx).unwrap()),
            );
        }
    }
    group.finish();

    // Issue #12's shapes (each on every line) beside the usual mix (each on
    // 32 random SKUs): the same 50-line cart, 20 promotions, in one run.
    let mut group = c.benchmark_group("shapes");
    let spec = fixture::cart(50, SEED + 2, 0, fixture::SKUS, &all);
    let cart = cat.cart(&spec);
    let entries = cat.entries_for(&cart);
    for (name, (set, coupons)) in [
        ("usual mix", cat.compile(&all[..20])),
        ("new shapes", cat.compile_new_shapes(&all[..20])),
    ] {
        let mut ctx = PricingContext::new(&entries, &cat.shipping, &tax, cat.now);
        ctx.promotions = &set;
        ctx.coupons = &coupons;
        let priced = price(&cart, &ctx).unwrap();
        eprintln!(
            "shapes 50 lines × 20 promotions, {name}: {} considered, {} applied",
            priced.promotions.len(),
            priced.promotions.iter().filter(|p| p.applied()).count()
        );
        group.bench_with_input(
            BenchmarkId::new("50 lines × 20 promotions", name),
            &cart,
            |b, cart| b.iter(|| price(black_box(cart), &ctx).unwrap()),
        );
    }
    group.finish();

    let mut group = c.benchmark_group("scaling");
    let half = fixture::SKUS / 2;
    let near = fixture::promotions(100, SEED + 3, 0, half, 0);
    let far = fixture::promotions(9_900, SEED + 4, half, fixture::SKUS, 100);
    let both: Vec<_> = near.iter().chain(&far).cloned().collect();
    let (small, small_coupons) = cat.compile(&near);
    let (large, large_coupons) = cat.compile(&both);
    for lines in [50, 1_000] {
        let spec = fixture::cart(lines, SEED + 5, 0, half, &near);
        let cart = cat.cart(&spec);
        let entries = cat.entries_for(&cart);
        for (name, set, coupons) in [
            ("100 promotions", &small, &small_coupons),
            ("10000 promotions", &large, &large_coupons),
        ] {
            let mut ctx = PricingContext::new(&entries, &cat.shipping, &tax, cat.now);
            ctx.promotions = set;
            ctx.coupons = coupons;
            let priced = price(&cart, &ctx).unwrap();
            eprintln!(
                "scaling {lines} lines × {name}: {} considered, {} applied",
                priced.promotions.len(),
                priced.promotions.iter().filter(|p| p.applied()).count()
            );
            group.bench_with_input(
                BenchmarkId::new(format!("{lines} lines"), name),
                &cart,
                |b, cart| b.iter(|| price(black_box(cart), &ctx).unwrap()),
            );
        }
    }
    group.finish();
}

/// Prices one matrix cell `iterations` times, for a profiler or for
/// `valgrind --tool=callgrind` (which counts instructions exactly).
fn profile(spec: &str) {
    let mut parts = spec.split(':').map(|p| p.parse::<usize>().unwrap());
    let (lines, n, iterations) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap_or(1_000),
    );
    let cat = fixture::catalog(SEED);
    let tax = FlatRateTax::new("Tax", Decimal::new(8, 2)).unwrap();
    let all = fixture::promotions(10_000, SEED + 1, 0, fixture::SKUS, 0);
    let (set, coupons) = cat.compile(&all[..n]);
    let cart = cat.cart(&fixture::cart(lines, SEED + 2, 0, fixture::SKUS, &all));
    let entries = cat.entries_for(&cart);
    let mut ctx = PricingContext::new(&entries, &cat.shipping, &tax, cat.now);
    ctx.promotions = &set;
    ctx.coupons = &coupons;
    let mut total = 0_usize;
    for _ in 0..iterations {
        total += black_box(price(black_box(&cart), &ctx).unwrap())
            .lines
            .len();
    }
    eprintln!("priced {iterations} times ({total} lines)");
}

fn main() {
    if let Ok(spec) = std::env::var("PRICING_PROFILE") {
        profile(&spec);
        return;
    }
    if let Ok(dir) = std::env::var("PRICING_FIXTURE_EXPORT") {
        fixture::export(std::path::Path::new(&dir), SEED).unwrap();
        eprintln!("wrote the pricing fixture to {dir}");
        return;
    }
    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2))
        .configure_from_args();
    bench(&mut c);
    c.final_summary();
}
