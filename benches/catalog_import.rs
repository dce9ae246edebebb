//! How long a catalog CSV import takes on PostgreSQL (issue #31): a file of
//! new products applied, the same file again as a dry run, and applied
//! again (every row then names an existing product: nothing changes).
//! Prints a table; each cell is one run of the whole file.
//!
//! `cargo bench --features postgres --bench catalog_import`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[allow(dead_code)] // the median helper serves the other benches
#[path = "pg_support/mod.rs"]
mod pg_support;

use pg_support::fresh_schema;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cartwright::catalog_csv::{ImportMode, ImportReport};
use cartwright::prelude::*;
use cartwright::store::{PgStore, Store};

const SCHEMA: &str = "cartwright_catalog_import";

/// A file of `rows` one-variant products, SKUs `IMP-<rows>-<n>`.
fn file(rows: usize) -> Vec<u8> {
    let mut csv = String::from("product_title,product_status,sku,price:USD,price:EUR\n");
    for n in 0..rows {
        csv.push_str(&format!(
            "Imported product {rows} {n},active,IMP-{rows}-{n},{}.00,{}.50\n",
            1 + n % 200,
            1 + n % 150
        ));
    }
    csv.into_bytes()
}

async fn timed(engine: &Engine, csv: &[u8], mode: ImportMode) -> (Duration, ImportReport) {
    let started = Instant::now();
    let report = engine
        .import_catalog(&Actor::System, csv, mode)
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    (took, report)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let pool = fresh_schema(SCHEMA, &[], 4).await;
    let store = Arc::new(PgStore::from_pool(pool).await.unwrap());
    let engine = Engine::builder()
        .store(store as Arc<dyn Store>)
        .test_payment_provider()
        .no_tax()
        .build()
        .unwrap();
    println!(
        "| rows | new products, applied | the same file, dry run | the same file, applied again |"
    );
    println!("|---:|---:|---:|---:|");
    for rows in [1_000, 10_000] {
        let csv = file(rows);
        let (new, first) = timed(&engine, &csv, ImportMode::Apply).await;
        assert_eq!(first.products_created, rows);
        let (dry, _) = timed(&engine, &csv, ImportMode::DryRun).await;
        let (again, second) = timed(&engine, &csv, ImportMode::Apply).await;
        assert_eq!(second.products_unchanged, rows);
        let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1e3);
        println!("| {rows} | {} | {} | {} |", ms(new), ms(dry), ms(again));
    }
}
