//! Does a filtered page of products cost the same with 10,000 and 100,000
//! products? (issue #16)
//!
//! Seeds a PostgreSQL schema with four real products (through the engine:
//! two categories under one parent, colours in the titles, tags, prices),
//! copies them in SQL to 10,000 and then 100,000 products (new ids, SKUs,
//! titles, prices), and times the pages a storefront and staff read: a
//! category (with its subcategories) newest first; words of the title;
//! a SKU's start; a category, a word and a price range together by title;
//! the next page of that; words only a handful of titles share, newest
//! first and by title. Prints a table; each cell is the median of 200
//! reads of a page of (at most) 20.
//!
//! `cargo bench --features postgres --bench product_search`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "pg_support/mod.rs"]
mod pg_support;

use pg_support::{fresh_schema, median};
use std::sync::Arc;

use cartwright::catalog::{PriceRange, ProductQuery, ProductSort};
use cartwright::prelude::*;
use cartwright::store::{PgStore, Store};
use sqlx::postgres::PgPool;

const SCHEMA: &str = "cartwright_product_search";

fn usd(s: &str) -> Money {
    Money::parse(s, Currency::USD).unwrap()
}

/// Copies the template products until the table holds `total`: each copy
/// takes one template's categories, tags and variant (a new id and SKU), a
/// title with one of eight colours, and a price from 1 to 200.
async fn grow(pool: &PgPool, total: usize) {
    let have: i64 = sqlx::query_scalar("SELECT count(*) FROM cw_products")
        .fetch_one(pool)
        .await
        .unwrap();
    let add = total as i64 - have;
    if add <= 0 {
        return;
    }
    let mut tx = pool.begin().await.unwrap();
    sqlx::query(
        "CREATE TEMP TABLE copies ON COMMIT DROP AS
         SELECT i, gen_random_uuid() AS id, t.id AS template,
                (ARRAY['Red','Blue','Green','Black','White','Grey','Navy','Olive'])[1 + i % 8]
                    || ' ' || (t.summary->>'title') || ' ' || i AS title,
                (1 + i % 200)::text || '.00' AS price
         FROM generate_series($1 + 1, $1 + $2) AS i,
              LATERAL (SELECT id, summary FROM cw_products WHERE summary->>'title' NOT LIKE '% %'
                       ORDER BY id OFFSET ((i / 8) % 4) LIMIT 1) AS t",
    )
    .bind(have)
    .bind(add)
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO cw_products (id, summary, search, doc)
         SELECT c.id,
                jsonb_set(p.summary, '{title}', to_jsonb(c.title)),
                jsonb_build_object('prices', jsonb_build_object('USD', jsonb_build_array(c.price)),
                                   'skus', jsonb_build_array('BENCH-' || c.i)),
                jsonb_set(jsonb_set(p.doc, '{id}', to_jsonb(c.id::text)), '{title}', to_jsonb(c.title))
         FROM copies c JOIN cw_products p ON p.id = c.template",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO cw_variants (id, product_id, sku, doc)
         SELECT gen_random_uuid(), c.id, 'BENCH-' || c.i,
                jsonb_set(v.doc, '{prices,USD,amount}', to_jsonb(c.price))
         FROM copies c JOIN cw_variants v ON v.product_id = c.template",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO cw_product_categories (product_id, category_id)
         SELECT c.id, pc.category_id FROM copies c
         JOIN cw_product_categories pc ON pc.product_id = c.template",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    sqlx::query("ANALYZE cw_products")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("ANALYZE cw_variants")
        .execute(pool)
        .await
        .unwrap();
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let pool = fresh_schema(SCHEMA, &[], 4).await;
    let store = Arc::new(PgStore::from_pool(pool.clone()).await.unwrap());
    let engine = Engine::builder()
        .store(store.clone() as Arc<dyn Store>)
        .test_payment_provider()
        .no_tax()
        .build()
        .unwrap();
    let staff = Actor::System;
    let apparel = engine
        .create_category(&staff, "Apparel", None)
        .await
        .unwrap();
    let shirts = engine
        .create_category(&staff, "Shirts", Some(apparel.id()))
        .await
        .unwrap();
    let hats = engine
        .create_category(&staff, "Hats", Some(apparel.id()))
        .await
        .unwrap();
    let kitchen = engine
        .create_category(&staff, "Kitchen", None)
        .await
        .unwrap();
    for (title, sku, category) in [
        ("Shirt", "T-SHIRT", shirts.id()),
        ("Cap", "T-CAP", hats.id()),
        ("Mug", "T-MUG", kitchen.id()),
        ("Plate", "T-PLATE", kitchen.id()),
    ] {
        engine
            .create_product(
                &staff,
                NewProduct::new(title)
                    .status(Status::Active)
                    .categories(vec![category])
                    .variants(vec![
                        NewVariant::digital(sku)
                            .prices(vec![usd("10.00")])
                            .status(Status::Active),
                    ]),
            )
            .await
            .unwrap();
    }

    println!(
        "| products | category, newest 20 | title words | SKU start | category + word + price, by title | next page of it | rare words, newest | rare words, by title |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for total in [10_000, 100_000] {
        grow(&pool, total).await;
        let page = |q: ProductQuery| {
            let engine = engine.clone();
            async move {
                engine
                    .find_products(&Actor::Guest, &q)
                    .await
                    .unwrap()
                    .products
                    .len()
            }
        };
        let range =
            PriceRange::new(Currency::USD, Some(usd("20.00")), Some(usd("120.00"))).unwrap();
        let combined = ProductQuery::new(20)
            .category(apparel.id())
            .text("navy")
            .price(range)
            .sort(ProductSort::Title);
        let first = engine
            .find_products(&Actor::Guest, &combined)
            .await
            .unwrap();
        let next = combined.clone().after(first.next.unwrap());
        let cells = [
            median(|| page(ProductQuery::new(20).category(apparel.id()))).await,
            median(|| page(ProductQuery::new(20).text("navy shi"))).await,
            median(|| page(ProductQuery::new(20).text("bench-1"))).await,
            median(|| page(combined.clone())).await,
            median(|| page(next.clone())).await,
            // Words that a handful of titles share: "Navy … 999…".
            median(|| page(ProductQuery::new(20).text("navy 999"))).await,
            median(|| {
                page(
                    ProductQuery::new(20)
                        .text("navy 999")
                        .sort(ProductSort::Title),
                )
            })
            .await,
        ];
        let shown: Vec<String> = cells
            .iter()
            .map(|d| format!("{:.2} ms", d.as_secs_f64() * 1e3))
            .collect();
        println!("| {total} | {} |", shown.join(" | "));
    }
}
