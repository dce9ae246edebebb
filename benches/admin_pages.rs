//! Do the admin's list pages grow with the shop? (issue #31)
//!
//! Serves the admin over HTTP on a PostgreSQL store, signed in as an
//! owner, and times whole pages — session lookup, query, template, HTTP —
//! of the order list (newest 50, the next page, newest 50 in a status) and
//! the product list (first 50 by title, the next page, a title search)
//! with 1,000 and then 100,000 orders and products. Orders and products
//! are copies of one real one (new ids, titles, customers, statuses,
//! times). Prints a table; each cell is the median of 200 page loads.
//!
//! `cargo bench --features postgres,admin --bench admin_pages`
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

use cartwright::admin::{AdminConfig, admin_router};
use cartwright::engine::staff::NewStaff;
use cartwright::prelude::*;
use cartwright::store::{PgStore, Store};
use sqlx::postgres::PgPool;

const SCHEMA: &str = "cartwright_admin_pages";

/// One placed guest order (and its product), through the engine.
async fn one_order(engine: &Engine) -> (uuid::Uuid, uuid::Uuid) {
    let staff = Actor::System;
    let usd = |s: &str| Money::parse(s, Currency::USD).unwrap();
    let product = engine
        .create_product(
            &staff,
            NewProduct::new("Mug 0000000")
                .status(Status::Active)
                .variant(
                    NewVariant::digital("MUG")
                        .price(usd("12.00"))
                        .status(Status::Active),
                ),
        )
        .await
        .unwrap();
    let variant = product.variants()[0].id();
    let location = engine.create_location(&staff, "W", 0).await.unwrap();
    engine
        .set_stock(&staff, variant, location.id(), 10)
        .await
        .unwrap();
    let cart = engine
        .create_cart(&Actor::Guest, Currency::USD)
        .await
        .unwrap();
    engine
        .add_item(&Actor::Guest, cart.id(), variant, 1)
        .await
        .unwrap();
    engine
        .set_email(&Actor::Guest, cart.id(), "a@example.com")
        .await
        .unwrap();
    let outcome = engine
        .checkout(CheckoutRequest::new(
            cart.id(),
            IdempotencyKey::random(),
            "tok_visa",
            Actor::Guest,
        ))
        .await
        .unwrap();
    (outcome.order.id().as_uuid(), product.id().as_uuid())
}

/// Copies the template order and product until each table holds `total`
/// rows. Copied products keep the template's variant in their document
/// (lists read documents only) under a title of their own.
async fn grow(pool: &PgPool, order: uuid::Uuid, product: uuid::Uuid, total: i64) {
    let have: i64 = sqlx::query_scalar("SELECT count(*) FROM cw_orders")
        .fetch_one(pool)
        .await
        .unwrap();
    if total > have {
        sqlx::query(
            "INSERT INTO cw_orders (id, customer_id, checkout_key, currency, total, placed_at, status, payment_reference, doc, pending_work)
             SELECT n.id, NULL, 'bench-' || n.id, o.currency, o.total, n.at, n.status, 'bench-' || n.id,
                    jsonb_set(o.doc::jsonb, '{id}', to_jsonb(n.id::text)), false
             FROM cw_orders o,
                  LATERAL (SELECT uuid_send_v7(i) AS id,
                                  (ARRAY['placed', 'processing', 'completed', 'cancelled'])[1 + i % 4] AS status,
                                  now() - make_interval(secs => ($3 - i)::double precision) AS at
                           FROM generate_series($2 + 1, $3) AS i) AS n
             WHERE o.id = $1",
        )
        .bind(order)
        .bind(have)
        .bind(total)
        .execute(pool)
        .await
        .unwrap();
    }
    let have: i64 = sqlx::query_scalar("SELECT count(*) FROM cw_products")
        .fetch_one(pool)
        .await
        .unwrap();
    if total > have {
        sqlx::query(
            "INSERT INTO cw_products (id, doc, summary, search)
             SELECT n.id,
                    jsonb_set(jsonb_set(p.doc::jsonb, '{id}', to_jsonb(n.id::text)), '{title}', to_jsonb(n.title)),
                    jsonb_set(jsonb_set(p.summary::jsonb, '{id}', to_jsonb(n.id::text)), '{title}', to_jsonb(n.title)),
                    p.search
             FROM cw_products p,
                  LATERAL (SELECT uuid_send_v7(1000000000 + i) AS id,
                                  'Mug ' || lpad(i::text, 7, '0') AS title
                           FROM generate_series($2 + 1, $3) AS i) AS n
             WHERE p.id = $1",
        )
        .bind(product)
        .bind(have)
        .bind(total)
        .execute(pool)
        .await
        .unwrap();
    }
    sqlx::query("ANALYZE cw_orders, cw_products")
        .execute(pool)
        .await
        .unwrap();
}

/// The first `href` of the link with id `next` in a page.
fn next_link(page: &str) -> String {
    let at = page.find("id=\"next\" href=\"").expect("a next page");
    let rest = &page[at + 16..];
    rest[..rest.find('"').unwrap()]
        .replace("&amp;", "&")
        .replace("&#x2f;", "/")
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let pool = fresh_schema(
        SCHEMA,
        &[format!(
            "CREATE FUNCTION {SCHEMA}.uuid_send_v7(i bigint) RETURNS uuid LANGUAGE sql IMMUTABLE AS
             $$ SELECT (lpad(to_hex(1700000000000 + i), 12, '0') || '7000' || '8' || lpad(to_hex(i), 15, '0'))::uuid $$"
        )],
        8,
    )
    .await;
    let store = Arc::new(PgStore::from_pool(pool.clone()).await.unwrap());
    let engine = Engine::builder()
        .store(store.clone() as Arc<dyn Store>)
        .test_payment_provider()
        .no_tax()
        .build()
        .unwrap();
    let (order, product) = one_order(&engine).await;
    engine
        .install_builtin_roles(&Actor::System, &[])
        .await
        .unwrap();
    engine
        .create_staff(
            &Actor::System,
            NewStaff::new(
                "owner@shop.test",
                "owner",
                "a long enough password",
                &["owner"],
            ),
        )
        .await
        .unwrap();
    let login = engine
        .staff_login("owner@shop.test", "a long enough password", None)
        .await
        .unwrap();
    let app = axum::Router::new().nest(
        "/admin",
        admin_router(
            engine.clone(),
            AdminConfig::new("/admin").secure_cookies(false),
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = reqwest::Client::new();
    let cookie = format!("cw_admin={}", login.token);
    let load = |path: String| {
        let client = client.clone();
        let cookie = cookie.clone();
        let origin = origin.clone();
        async move {
            let page = client
                .get(format!("{origin}{path}"))
                .header("cookie", cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(page.status(), 200, "{path}");
            page.text().await.unwrap()
        }
    };

    println!(
        "| rows | orders: newest 50 | orders: next 50 | orders: 50 completed | products: first 50 | products: next 50 | products: title search |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for total in [1_000, 100_000] {
        grow(&pool, order, product, total).await;
        let orders_next = next_link(&load("/admin/orders".into()).await);
        let products_next = next_link(&load("/admin/products".into()).await);
        let time = |path: String| {
            let load = &load;
            async move {
                median(|| {
                    let path = path.clone();
                    async move { load(path).await.len() }
                })
                .await
            }
        };
        let cells = [
            time("/admin/orders".into()).await,
            time(orders_next).await,
            time("/admin/orders?status=completed".into()).await,
            time("/admin/products".into()).await,
            time(products_next).await,
            time("/admin/products?q=mug+0000777".into()).await,
        ];
        let cells: Vec<String> = cells
            .iter()
            .map(|d| format!("{:.2} ms", d.as_secs_f64() * 1e3))
            .collect();
        println!("| {total} | {} |", cells.join(" | "));
    }
}
