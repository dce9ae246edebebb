//! Does reading a page of orders grow with the table? (issue #11)
//!
//! Seeds a PostgreSQL schema with one real order, copies it (new id,
//! customer, status, time) to 10,000 and then to 100,000 orders, and times
//! the pages a shop reads: one customer's newest orders, the next page of
//! them, staff's newest orders in a status, and recovery's orders with work
//! pending (60 of them, however large the table). Prints a table; each cell
//! is the median of 200 reads of a full page.
//!
//! `cargo bench --features postgres --bench order_pages`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "pg_support/mod.rs"]
mod pg_support;

use pg_support::{fresh_schema, median};
use std::str::FromStr;
use std::sync::Arc;

use cartwright::order::{OrderQuery, OrderStatus};
use cartwright::prelude::*;
use cartwright::store::{PgStore, Store};
use sqlx::postgres::PgPool;

const SCHEMA: &str = "cartwright_order_pages";
const CUSTOMERS: usize = 100;

/// One placed guest order, through the engine.
async fn one_order(engine: &Engine) -> cartwright::id::OrderId {
    let staff = Actor::System;
    let usd = |s: &str| Money::parse(s, Currency::USD).unwrap();
    let product = engine
        .create_product(
            &staff,
            NewProduct::new("Mug").status(Status::Active).variant(
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
    outcome.order.id()
}

/// Copies the template order until the table holds `total` orders: new
/// ids (time-ordered), one of `CUSTOMERS` customers, a status, a time.
async fn grow(pool: &PgPool, template: uuid::Uuid, total: usize) {
    let have: i64 = sqlx::query_scalar("SELECT count(*) FROM cw_orders")
        .fetch_one(pool)
        .await
        .unwrap();
    let add = total as i64 - have;
    if add <= 0 {
        return;
    }
    sqlx::query(
        "INSERT INTO cw_orders (id, customer_id, checkout_key, currency, total, placed_at, status, payment_reference, doc, pending_work)
         SELECT n.id, n.customer, 'bench-' || n.id, o.currency, o.total, n.at, n.status, 'bench-' || n.id,
                jsonb_set(jsonb_set(o.doc::jsonb, '{id}', to_jsonb(n.id::text)), '{customer_id}', to_jsonb(n.customer::text)),
                n.i <= 60
         FROM cw_orders o,
              LATERAL (SELECT i,
                              uuid_send_v7(i) AS id,
                              ('00000000-0000-4000-8000-' || lpad(to_hex(i % $3), 12, '0'))::uuid AS customer,
                              (ARRAY['placed', 'processing', 'completed', 'cancelled'])[1 + i % 4] AS status,
                              now() - make_interval(secs => ($4 + $2 - i)::double precision) AS at
                       FROM generate_series($4 + 1, $4 + $2) AS i) AS n
         WHERE o.id = $1",
    )
    .bind(template)
    .bind(add)
    .bind(CUSTOMERS as i64)
    .bind(have)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query("ANALYZE cw_orders")
        .execute(pool)
        .await
        .unwrap();
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    // Time-ordered ids for the copies, as UUIDv7 orders them.
    let pool = fresh_schema(
        SCHEMA,
        &[format!(
            "CREATE FUNCTION {SCHEMA}.uuid_send_v7(i bigint) RETURNS uuid LANGUAGE sql IMMUTABLE AS
             $$ SELECT (lpad(to_hex(1700000000000 + i), 12, '0') || '7000' || '8' || lpad(to_hex(i), 15, '0'))::uuid $$"
        )],
        4,
    )
    .await;
    let store = Arc::new(PgStore::from_pool(pool.clone()).await.unwrap());
    let engine = Engine::builder()
        .store(store.clone() as Arc<dyn Store>)
        .test_payment_provider()
        .no_tax()
        .build()
        .unwrap();
    let template = one_order(&engine).await.as_uuid();
    let customer = cartwright::id::CustomerId::from_uuid(
        uuid::Uuid::from_str("00000000-0000-4000-8000-000000000007").unwrap(),
    );

    println!(
        "| orders | customer's newest 20 | customer's next 20 | staff: newest 50 placed | recovery: pending work |"
    );
    println!("|---:|---:|---:|---:|---:|");
    for total in [10_000, 100_000] {
        grow(&pool, template, total).await;
        let staff = Actor::System;
        let mine = OrderQuery::default().customer(customer).limit(20);
        let first = engine.find_orders(&staff, &mine).await.unwrap();
        let before = first.orders.last().map(|o| o.id());
        let page = |q: OrderQuery| {
            let engine = engine.clone();
            async move {
                engine
                    .find_orders(&Actor::System, &q)
                    .await
                    .unwrap()
                    .orders
                    .len()
            }
        };
        let newest = median(|| page(mine.clone())).await;
        let next = median(|| page(mine.clone().before(before))).await;
        let placed =
            median(|| page(OrderQuery::default().status(OrderStatus::Placed).limit(50))).await;
        let pending = median(|| page(OrderQuery::default().pending_work(true).limit(50))).await;
        println!(
            "| {total} | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms |",
            newest.as_secs_f64() * 1e3,
            next.as_secs_f64() * 1e3,
            placed.as_secs_f64() * 1e3,
            pending.as_secs_f64() * 1e3,
        );
    }
}
