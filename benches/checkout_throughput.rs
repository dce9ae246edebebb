//! Checkout throughput on PostgreSQL against a hand-written SQL anchor, and
//! on the in-memory store.
//!
//! ```sh
//! cargo bench --features postgres --bench checkout_throughput
//! ```
//!
//! For each profile (uniform: 3 of 10,000 SKUs per order; hot: every order
//! takes the same SKU) and each concurrency (1, 8, 32 tasks) it times:
//!
//! - **library**: `Engine::checkout` on prepared carts (pricing, stock
//!   reservation, payment authorization and capture with the test gateway,
//!   order placement, events) on `PgStore`;
//! - **anchor**: one call of a PL/pgSQL function per order that does the same
//!   writes in one statement — conditional stock decrement, order, lines,
//!   payment, event — the database's own speed for this work;
//! - **saga anchor**: the same writes as the smallest saga can do them —
//!   three PL/pgSQL calls, each its own commit: reserve (conditional stock
//!   decrement and a reservation row) before the payment provider is
//!   called, place (order, lines, payment, event, reservation allocated)
//!   after it authorizes, and record the capture. A checkout that never
//!   holds a transaction open across a provider call cannot commit less;
//!   this is the ceiling for any library built that way.
//! - **two-commit anchor**: the shape issue #11 asks of the library, with
//!   all the work it lists, in the smallest SQL — one read (the cart and
//!   its lines' catalog entries), commit 1 (a key with a lease, the stock,
//!   a reservation keeping its lines), commit 2 (order, payment, event, cart
//!   completed, key's outcome). The library and this anchor take turns over
//!   three slices of each cell's orders; the bench prints CPU per order for
//!   both, and as its last line the issue's headline ratio. The **bare**
//!   two-commit anchor (no cart, no lease, no reservation lines) is kept for
//!   comparison with earlier runs.
//! - **library's SQL**: the statements `PgStore` sends for a checkout (its
//!   read, `cw_begin_and_reserve`, `cw_place_order`) on the library's own
//!   tables, from the least client code: no pricing, no documents built or
//!   parsed (the order's is a fixed text of the library's size), no
//!   payment provider. Between the library and the two-commit anchor, it
//!   splits the gap into what the library's process adds and what its rows
//!   cost in the database.
//! - **memory**: the library on `MemoryStore`, over 40,000 orders per cell
//!   (about a second; the PostgreSQL cells' 3,000 took under 0.1 s).
//!
//! The library and the anchors share one pool, set up as the store sets up
//! its own (`PgOptions::pool_options`). Before any cell, each of them places
//! 1,000 orders untimed, so that no table is empty when the statistics are
//! taken (a server process that plans against an empty table may keep a
//! plan that scans it while it grows).
//!
//! The database comes from `DATABASE_URL` (default: the local server); the
//! bench works in its own schema, `cartwright_bench`, recreated each run.
//! `CHECKOUT_BENCH_ONLY=uniform:8` runs one cell; with it,
//! `CHECKOUT_BENCH_PROFILE=library` (or `anchor`, or `memory`) runs one side
//! of that cell alone, after a 3 s pause to attach a profiler.
//! `CHECKOUT_BENCH_SQL` holds statements to run on the schema once it is set
//! up, for experiments: what does the library's SQL gain without an index
//! or a constraint?
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cartwright::catalog::InventoryPolicy;
use cartwright::id::{CartId, VariantId};
use cartwright::prelude::*;
use cartwright::store::{MemoryStore, PgOptions, PgStore, Store};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use uuid::Uuid;

const SKUS: usize = 10_000;
const SCHEMA: &str = "cartwright_bench";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Profile {
    Uniform,
    Hot,
}

struct Rng(u64);
impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// The SKUs each order takes, in a fixed seeded sequence.
fn orders(profile: Profile, count: usize, seed: u64) -> Vec<Vec<usize>> {
    let mut rng = Rng(seed | 1);
    (0..count)
        .map(|_| match profile {
            Profile::Hot => vec![0],
            Profile::Uniform => {
                let mut picks: Vec<usize> = Vec::with_capacity(3);
                while picks.len() < 3 {
                    let p = rng.below(SKUS);
                    if !picks.contains(&p) {
                        picks.push(p);
                    }
                }
                picks.sort_unstable();
                picks
            }
        })
        .collect()
}

fn opts() -> PgConnectOptions {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    PgConnectOptions::from_str(&url).unwrap()
}

/// One pool for the library and the anchors, set up as the store sets up
/// its own (`PgOptions::pool_options`: an idle connection is checked with a
/// round trip, one in steady use is not), so both sides pay the same for
/// their connections.
async fn pool(size: u32) -> PgPool {
    PgOptions::default()
        .max_connections(size)
        .pool_options()
        .connect_with(opts().options([("search_path", SCHEMA)]))
        .await
        .unwrap()
}

async fn seed_catalog(engine: &Engine) -> Vec<VariantId> {
    let mut variants = Vec::with_capacity(SKUS);
    for p in 0..SKUS / 250 {
        let product = engine
            .create_product(
                &Actor::System,
                NewProduct::new(format!("Product {p}"))
                    .status(Status::Active)
                    .variants(
                        (0..250)
                            .map(|v| {
                                NewVariant::digital(format!("SKU-{p}-{v}"))
                                    .prices(vec![Money::from_minor(
                                        100 + (p * 250 + v) as i64,
                                        Currency::USD,
                                    )])
                                    .inventory(InventoryPolicy::default())
                                    .status(Status::Active)
                            })
                            .collect(),
                    ),
            )
            .await
            .unwrap();
        variants.extend(product.variants().iter().map(|v| v.id()));
    }
    variants
}

/// An engine capturing at checkout, through a gateway that collects in the
/// authorize call (a sale), as most card gateways can.
async fn engine_on(store: Arc<dyn Store>) -> Engine {
    let gateway = Arc::new(cartwright::payment::TestPaymentProvider::new());
    gateway.allow_sales(true);
    Engine::builder()
        .store(store)
        .payment_provider(gateway)
        .no_tax()
        .build()
        .unwrap()
}

/// Prepares one guest cart per order (not timed).
async fn carts(engine: &Engine, variants: &[VariantId], orders: &[Vec<usize>]) -> Vec<CartId> {
    let mut tasks = Vec::new();
    for chunk in orders.chunks(orders.len().div_ceil(16).max(1)) {
        let engine = engine.clone();
        let chunk: Vec<Vec<VariantId>> = chunk
            .iter()
            .map(|o| o.iter().map(|i| variants[*i]).collect())
            .collect();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for order in chunk {
                let g = Actor::Guest;
                let cart = engine.create_cart(&g, Currency::USD).await.unwrap();
                for v in order {
                    engine.add_item(&g, cart.id(), v, 1).await.unwrap();
                }
                engine
                    .set_email(&g, cart.id(), "bench@example.com")
                    .await
                    .unwrap();
                ids.push(cart.id());
            }
            ids
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all
}

/// Checks out every cart with `tasks` workers; returns checkouts per second.
async fn run_library(engine: &Engine, carts: Vec<CartId>, tasks: usize) -> f64 {
    let engine = engine.clone();
    run_workers(carts, tasks, move |cart| {
        let engine = engine.clone();
        async move {
            engine
                .checkout(CheckoutRequest::new(
                    cart,
                    IdempotencyKey::random(),
                    "tok_visa",
                    Actor::Guest,
                ))
                .await
                .unwrap();
        }
    })
    .await
}

/// Runs `work` on every item with `tasks` workers taking items from one
/// queue; returns items per second.
async fn run_workers<T, F, Fut>(items: Vec<T>, tasks: usize, work: F) -> f64
where
    T: Send + 'static,
    F: Fn(T) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let n = items.len();
    let queue = Arc::new(std::sync::Mutex::new(items));
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let queue = queue.clone();
            let work = work.clone();
            tokio::spawn(async move {
                loop {
                    let Some(item) = queue.lock().unwrap().pop() else {
                        break;
                    };
                    work(item).await;
                }
            })
        })
        .collect();
    for h in handles {
        h.await.unwrap();
    }
    n as f64 / start.elapsed().as_secs_f64()
}

const ANCHOR_SQL: &str = "
CREATE TABLE anchor_stock (variant_id uuid PRIMARY KEY, on_hand bigint NOT NULL, reserved bigint NOT NULL CHECK (reserved >= 0));
CREATE TABLE anchor_orders (id uuid PRIMARY KEY, total numeric NOT NULL, placed_at timestamptz NOT NULL);
CREATE TABLE anchor_order_lines (order_id uuid NOT NULL REFERENCES anchor_orders (id), variant_id uuid NOT NULL, quantity int NOT NULL);
CREATE TABLE anchor_payments (id uuid PRIMARY KEY, order_id uuid NOT NULL REFERENCES anchor_orders (id), amount numeric NOT NULL, status text NOT NULL);
CREATE TABLE anchor_events (sequence bigserial PRIMARY KEY, kind text NOT NULL, order_id uuid NOT NULL);
CREATE FUNCTION anchor_checkout(p_order uuid, p_variants uuid[], p_total numeric) RETURNS void AS $$
BEGIN
  FOR i IN 1 .. array_length(p_variants, 1) LOOP
    UPDATE anchor_stock SET reserved = reserved + 1
     WHERE variant_id = p_variants[i] AND on_hand - reserved >= 1;
    IF NOT FOUND THEN RAISE EXCEPTION 'out of stock'; END IF;
  END LOOP;
  INSERT INTO anchor_orders (id, total, placed_at) VALUES (p_order, p_total, now());
  INSERT INTO anchor_order_lines SELECT p_order, v, 1 FROM unnest(p_variants) AS v;
  INSERT INTO anchor_payments VALUES (gen_random_uuid(), p_order, p_total, 'captured');
  INSERT INTO anchor_events (kind, order_id) VALUES ('order_placed', p_order);
END $$ LANGUAGE plpgsql;
CREATE TABLE anchor_reservations (id uuid PRIMARY KEY, state text NOT NULL, expires_at timestamptz NOT NULL);
CREATE FUNCTION anchor_reserve(p_order uuid, p_variants uuid[]) RETURNS void AS $$
BEGIN
  FOR i IN 1 .. array_length(p_variants, 1) LOOP
    UPDATE anchor_stock SET reserved = reserved + 1
     WHERE variant_id = p_variants[i] AND on_hand - reserved >= 1;
    IF NOT FOUND THEN RAISE EXCEPTION 'out of stock'; END IF;
  END LOOP;
  INSERT INTO anchor_reservations VALUES (p_order, 'pending', now() + interval '10 minutes');
END $$ LANGUAGE plpgsql;
CREATE FUNCTION anchor_place(p_order uuid, p_variants uuid[], p_total numeric) RETURNS void AS $$
BEGIN
  UPDATE anchor_reservations SET state = 'allocated' WHERE id = p_order AND state = 'pending';
  IF NOT FOUND THEN RAISE EXCEPTION 'reservation lapsed'; END IF;
  INSERT INTO anchor_orders (id, total, placed_at) VALUES (p_order, p_total, now());
  INSERT INTO anchor_order_lines SELECT p_order, v, 1 FROM unnest(p_variants) AS v;
  INSERT INTO anchor_payments VALUES (p_order, p_order, p_total, 'authorized');
  INSERT INTO anchor_events (kind, order_id) VALUES ('order_placed', p_order);
END $$ LANGUAGE plpgsql;
CREATE TABLE anchor_keys (key uuid PRIMARY KEY, state text NOT NULL, order_id uuid);
CREATE FUNCTION anchor_commit_one(p_key uuid, p_order uuid, p_variants uuid[]) RETURNS void AS $$
BEGIN
  INSERT INTO anchor_keys VALUES (p_key, 'in_progress', NULL);
  FOR i IN 1 .. array_length(p_variants, 1) LOOP
    UPDATE anchor_stock SET reserved = reserved + 1
     WHERE variant_id = p_variants[i] AND on_hand - reserved >= 1;
    IF NOT FOUND THEN RAISE EXCEPTION 'out of stock'; END IF;
  END LOOP;
  INSERT INTO anchor_reservations VALUES (p_order, 'pending', now() + interval '10 minutes');
END $$ LANGUAGE plpgsql;
CREATE FUNCTION anchor_commit_two(p_key uuid, p_order uuid, p_variants uuid[], p_total numeric) RETURNS void AS $$
BEGIN
  UPDATE anchor_reservations SET state = 'allocated' WHERE id = p_order AND state = 'pending';
  IF NOT FOUND THEN RAISE EXCEPTION 'reservation lapsed'; END IF;
  INSERT INTO anchor_orders (id, total, placed_at) VALUES (p_order, p_total, now());
  INSERT INTO anchor_order_lines SELECT p_order, v, 1 FROM unnest(p_variants) AS v;
  INSERT INTO anchor_payments VALUES (p_order, p_order, p_total, 'captured');
  INSERT INTO anchor_events (kind, order_id) VALUES ('order_placed', p_order);
  UPDATE anchor_keys SET state = 'completed', order_id = p_order WHERE key = p_key;
END $$ LANGUAGE plpgsql;
CREATE TABLE anchor_carts (id uuid PRIMARY KEY, active boolean NOT NULL, version int NOT NULL, variant_ids uuid[] NOT NULL);
CREATE TABLE anchor_leases (key uuid PRIMARY KEY, state text NOT NULL, lease uuid NOT NULL, lease_until timestamptz NOT NULL, order_id uuid);
CREATE TABLE anchor_held (id uuid PRIMARY KEY, state text NOT NULL, expires_at timestamptz, variant_ids uuid[] NOT NULL, quantities int[] NOT NULL);
CREATE FUNCTION anchor_full_one(p_key uuid, p_order uuid, p_variants uuid[]) RETURNS void AS $$
BEGIN
  INSERT INTO anchor_leases VALUES (p_key, 'in_progress', gen_random_uuid(), now() + interval '1 minute', NULL);
  FOR i IN 1 .. array_length(p_variants, 1) LOOP
    UPDATE anchor_stock SET reserved = reserved + 1
     WHERE variant_id = p_variants[i] AND on_hand - reserved >= 1;
    IF NOT FOUND THEN RAISE EXCEPTION 'out of stock'; END IF;
  END LOOP;
  INSERT INTO anchor_held VALUES (p_order, 'pending', now() + interval '10 minutes', p_variants,
                                  array_fill(1, ARRAY[array_length(p_variants, 1)]));
END $$ LANGUAGE plpgsql;
CREATE FUNCTION anchor_full_two(p_key uuid, p_order uuid, p_cart uuid, p_version int, p_variants uuid[], p_total numeric) RETURNS void AS $$
BEGIN
  UPDATE anchor_held SET state = 'allocated', expires_at = NULL WHERE id = p_order AND state = 'pending';
  IF NOT FOUND THEN RAISE EXCEPTION 'reservation lapsed'; END IF;
  UPDATE anchor_carts SET active = false, version = version + 1 WHERE id = p_cart AND version = p_version AND active;
  IF NOT FOUND THEN RAISE EXCEPTION 'cart changed'; END IF;
  INSERT INTO anchor_orders (id, total, placed_at) VALUES (p_order, p_total, now());
  INSERT INTO anchor_order_lines SELECT p_order, v, 1 FROM unnest(p_variants) AS v;
  INSERT INTO anchor_payments VALUES (p_order, p_order, p_total, 'captured');
  INSERT INTO anchor_events (kind, order_id) VALUES ('order_placed', p_order);
  UPDATE anchor_leases SET state = 'completed', order_id = p_order WHERE key = p_key;
END $$ LANGUAGE plpgsql;
";

/// The shapes of hand-written SQL the library is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Anchor {
    /// Everything in one call and one commit (no gateway in between).
    OneCall,
    /// Reserve, place, capture: three commits.
    ThreeCommits,
    /// Two commits, bare: one read round trip (the variants only), commit 1
    /// (claim the key, take the stock, a reservation row without its
    /// lines), commit 2 (place with the payment captured, the event, the
    /// key's outcome). Leaves out work the saga needs (see `TwoCommitsFull`).
    TwoCommits,
    /// The shape issue #11 asks of the library, with all the work its list
    /// names, in the smallest SQL: one read round trip (the cart and its
    /// lines' catalog entries and prices), commit 1 (claim the key with a
    /// lease, take the stock conditionally, a reservation that keeps its
    /// lines — as arrays, the least recovery needs to give stock back after
    /// a crash), commit 2 (place with the payment captured, the event, the
    /// cart completed, the key's outcome).
    TwoCommitsFull,
}

/// The library's own SQL, from the least client code: per order the
/// statements `PgStore` sends for a checkout — its read, one call of
/// `cw_begin_and_reserve`, one of `cw_place_order` — on the library's tables,
/// with the order's document a fixed text of the library's size. No engine:
/// no pricing, no documents built or parsed, no payment provider. Set
/// against the library, it shows what the library's process adds; set
/// against the two-commit anchor, what the library's rows cost in the
/// database.
async fn run_library_sql(
    pool: &PgPool,
    carts: Vec<(CartId, Vec<Uuid>)>,
    location: Uuid,
    template: Arc<(String, rust_decimal::Decimal)>,
    tasks: usize,
) -> f64 {
    let pool = pool.clone();
    run_workers(carts, tasks, move |(cart, mut variants)| {
        let pool = pool.clone();
        let template = template.clone();
        async move {
            variants.sort();
            let rows = sqlx::query(LIBRARY_READ)
                .bind(cart.as_uuid())
                .bind(Vec::<Uuid>::new())
                .fetch_all(&pool)
                .await
                .unwrap();
            let version: i64 = rows
                .iter()
                .find(|r| sqlx::Row::get::<i32, _>(*r, "kind") == 3)
                .map(|r| sqlx::Row::get(r, "version"))
                .unwrap();
            let now = chrono::Utc::now();
            let key = Uuid::new_v4().to_string();
            let (lease, reservation, order) =
                (Uuid::new_v4(), Uuid::now_v7(), Uuid::now_v7());
            let locations: Vec<Option<Uuid>> =
                variants.iter().map(|_| Some(location)).collect();
            let quantities: Vec<i64> = variants.iter().map(|_| 1).collect();
            sqlx::query(
                "SELECT cw_begin_and_reserve($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            )
            .bind(&key)
            .bind(cart.as_uuid())
            .bind("tok_visa")
            .bind(lease)
            .bind(now + chrono::Duration::minutes(1))
            .bind(now)
            .bind(reservation)
            .bind(now + chrono::Duration::minutes(10))
            .bind(&variants)
            .bind(&locations)
            .bind(&quantities)
            .bind(Vec::<String>::new())
            .bind(Vec::<i64>::new())
            .bind(Vec::<i64>::new())
            .execute(&pool)
            .await
            .unwrap();
            let (doc, total) = &*template;
            sqlx::query(
                "SELECT cw_place_order($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::json, $13, $14, $15, $16, $17)",
            )
            .bind(&key)
            .bind(lease)
            .bind(now)
            .bind(reservation)
            .bind(order)
            .bind(sqlx::types::Json(now))
            .bind(cart.as_uuid())
            .bind(version)
            .bind(None::<Uuid>)
            .bind("USD")
            .bind(*total)
            .bind(doc.as_str())
            .bind(Uuid::now_v7())
            .bind(sqlx::types::Json(serde_json::json!({
                "type": "order_placed", "order_id": order,
                "total": {"amount": total.to_string(), "currency": "USD"}
            })))
            .bind(format!("test_auth_{order}"))
            .bind(true)
            .bind("bench@example.com")
            .execute(&pool)
            .await
            .unwrap();
        }
    })
    .await
}

/// `PgStore`'s checkout read (`cart_for_pricing`): the adapter's own file.
const LIBRARY_READ: &str = include_str!("../src/adapters/postgres/sql/checkout_read.sql");

async fn run_anchor(
    pool: &PgPool,
    variants: &[VariantId],
    orders: Vec<Vec<usize>>,
    tasks: usize,
    shape: Anchor,
) -> f64 {
    let n = orders.len();
    let variants: Arc<Vec<Uuid>> = Arc::new(variants.iter().map(|v| v.as_uuid()).collect());
    // The full shape reads and completes a cart: one per order (not timed).
    let carts: Arc<Vec<Uuid>> = Arc::new(if shape == Anchor::TwoCommitsFull {
        let ids: Vec<Uuid> = (0..n).map(|_| Uuid::now_v7()).collect();
        let lines: Vec<String> = orders
            .iter()
            .map(|o| {
                let v: Vec<String> = o.iter().map(|i| variants[*i].to_string()).collect();
                format!("{{{}}}", v.join(","))
            })
            .collect();
        sqlx::query(
            "INSERT INTO anchor_carts SELECT id, true, 1, lines::uuid[] FROM unnest($1::uuid[], $2::text[]) AS u(id, lines)",
        )
        .bind(&ids)
        .bind(&lines)
        .execute(pool)
        .await
        .unwrap();
        ids
    } else {
        Vec::new()
    });
    let next_cart = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let pool = pool.clone();
    run_workers(orders, tasks, move |order| {
        let pool = pool.clone();
        let carts = carts.clone();
        let next_cart = next_cart.clone();
        let variants = variants.clone();
        async move {
            let ids: Vec<Uuid> = order.iter().map(|i| variants[*i]).collect();
            let id = Uuid::now_v7();
            let total = rust_decimal::Decimal::new(1000, 2);
            if shape == Anchor::TwoCommitsFull {
                let key = Uuid::new_v4();
                let cart = carts[next_cart.fetch_add(1, std::sync::atomic::Ordering::Relaxed)];
                let rows: Vec<(i32, Uuid, serde_json::Value)> = sqlx::query_as(
                    "SELECT c.version, v.id, v.doc FROM anchor_carts c
                         JOIN cw_variants v ON v.id = ANY (c.variant_ids)
                         WHERE c.id = $1 AND c.active",
                )
                .bind(cart)
                .fetch_all(&pool)
                .await
                .unwrap();
                let version = rows[0].0;
                let mut ids: Vec<Uuid> = rows.iter().map(|r| r.1).collect();
                ids.sort();
                sqlx::query("SELECT anchor_full_one($1, $2, $3)")
                    .bind(key)
                    .bind(id)
                    .bind(&ids)
                    .execute(&pool)
                    .await
                    .unwrap();
                sqlx::query("SELECT anchor_full_two($1, $2, $3, $4, $5, $6)")
                    .bind(key)
                    .bind(id)
                    .bind(cart)
                    .bind(version)
                    .bind(&ids)
                    .bind(total)
                    .execute(&pool)
                    .await
                    .unwrap();
                return;
            }
            if shape == Anchor::TwoCommits {
                let key = Uuid::new_v4();
                let _docs: Vec<serde_json::Value> =
                    sqlx::query_scalar("SELECT doc FROM cw_variants WHERE id = ANY($1)")
                        .bind(&ids)
                        .fetch_all(&pool)
                        .await
                        .unwrap();
                sqlx::query("SELECT anchor_commit_one($1, $2, $3)")
                    .bind(key)
                    .bind(id)
                    .bind(&ids)
                    .execute(&pool)
                    .await
                    .unwrap();
                sqlx::query("SELECT anchor_commit_two($1, $2, $3, $4)")
                    .bind(key)
                    .bind(id)
                    .bind(&ids)
                    .bind(total)
                    .execute(&pool)
                    .await
                    .unwrap();
                return;
            }
            if shape == Anchor::OneCall {
                sqlx::query("SELECT anchor_checkout($1, $2, $3)")
                    .bind(id)
                    .bind(&ids)
                    .bind(total)
                    .execute(&pool)
                    .await
                    .unwrap();
                return;
            }
            sqlx::query("SELECT anchor_reserve($1, $2)")
                .bind(id)
                .bind(&ids)
                .execute(&pool)
                .await
                .unwrap();
            sqlx::query("SELECT anchor_place($1, $2, $3)")
                .bind(id)
                .bind(&ids)
                .bind(total)
                .execute(&pool)
                .await
                .unwrap();
            sqlx::query("UPDATE anchor_payments SET status = 'captured' WHERE id = $1")
                .bind(id)
                .execute(&pool)
                .await
                .unwrap();
        }
    })
    .await
}

/// CPU time so far, in clock ticks (1/100 s on Linux): this process's and
/// the whole machine's busy time (every process, the database included).
/// Zero where `/proc` is not there.
fn cpu_ticks() -> (u64, u64) {
    let own = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the command name: state is field 3, utime 14, stime 15.
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0);
    let machine = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            let line = s.lines().next()?;
            let f: Vec<u64> = line
                .split_whitespace()
                .skip(1)
                .filter_map(|x| x.parse().ok())
                .collect();
            // user nice system idle iowait irq softirq steal
            let busy = f.iter().take(8).sum::<u64>() - f.get(3)? - f.get(4)?;
            Some(busy)
        })
        .unwrap_or(0);
    (own, machine)
}

/// Per-order CPU, in microseconds, of a phase measured by [`cpu_ticks`]:
/// (this process, everything else on the machine).
fn cpu_per_order(before: (u64, u64), after: (u64, u64), n: usize) -> (u64, u64) {
    let own = after.0.saturating_sub(before.0);
    let all = after.1.saturating_sub(before.1);
    let per = |t: u64| t * 10_000 / n.max(1) as u64;
    (per(own), per(all.saturating_sub(own)))
}

/// Orders the library and each anchor place before any cell (untimed).
const WARM_UP_ORDERS: usize = 1_000;

/// Orders per cell for the in-memory store.
const MEMORY_ORDERS: usize = 40_000;

fn count_for(tasks: usize) -> usize {
    match tasks {
        1 => 600,
        8 => 3_000,
        _ => 4_800,
    }
}

/// How many turns the library and the two-commit anchor take in a cell.
const ROUNDS: usize = 3;

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    // Fresh schema.
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(opts())
        .await
        .unwrap();
    sqlx::query("DROP SCHEMA IF EXISTS cartwright_bench CASCADE")
        .execute(&admin)
        .await
        .unwrap();
    sqlx::query("CREATE SCHEMA cartwright_bench")
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;

    let pg = pool(40).await;
    let store = PgStore::from_pool(pg.clone()).await.unwrap();
    let engine = engine_on(Arc::new(store)).await;
    eprintln!("seeding {SKUS} SKUs ...");
    let variants = seed_catalog(&engine).await;
    let location = engine
        .create_location(&Actor::System, "Warehouse", 0)
        .await
        .unwrap();
    sqlx::query("INSERT INTO cw_stock (variant_id, location_id, on_hand, reserved) SELECT id, $1, 1000000, 0 FROM cw_variants")
        .bind(location.id().as_uuid())
        .execute(&pg)
        .await
        .unwrap();
    sqlx::raw_sql(ANCHOR_SQL).execute(&pg).await.unwrap();
    sqlx::query("INSERT INTO anchor_stock SELECT id, 1000000, 0 FROM cw_variants")
        .execute(&pg)
        .await
        .unwrap();
    // `CHECKOUT_BENCH_SQL`: statements run on the bench's schema once it is
    // set up, for experiments (what does dropping this index save?).
    if let Ok(sql) = std::env::var("CHECKOUT_BENCH_SQL") {
        eprintln!("running CHECKOUT_BENCH_SQL");
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&pg)
            .await
            .unwrap();
    }
    // Untimed warm-up of the library and of every anchor, so that no table
    // is empty when the statistics are taken. With an empty table, a
    // server process caches a plan that scans it (a foreign-key check on
    // `anchor_orders` did), and then scans it at every order while it
    // grows: a cell run alone measured an anchor slowed by its own
    // bookkeeping, and read 70 % where the full table read 55-63 %.
    let warm = orders(Profile::Uniform, WARM_UP_ORDERS, 0x3a3a);
    let warm_carts = carts(&engine, &variants, &warm).await;
    run_library(&engine, warm_carts, 8).await;
    for shape in [
        Anchor::OneCall,
        Anchor::ThreeCommits,
        Anchor::TwoCommits,
        Anchor::TwoCommitsFull,
    ] {
        run_anchor(&pg, &variants, warm.clone(), 8, shape).await;
    }
    sqlx::query("VACUUM ANALYZE").execute(&pg).await.unwrap();
    // A placed order's document, for the library's SQL without the library.
    let template: Arc<(String, rust_decimal::Decimal)> = Arc::new(
        sqlx::query_as("SELECT doc::text, total FROM cw_orders LIMIT 1")
            .fetch_one(&pg)
            .await
            .unwrap(),
    );

    let memory = engine_on(Arc::new(MemoryStore::new())).await;
    let mem_variants = seed_catalog(&memory).await;
    let mem_location = memory
        .create_location(&Actor::System, "Warehouse", 0)
        .await
        .unwrap();
    for v in &mem_variants {
        memory
            .set_stock(&Actor::System, *v, mem_location.id(), 1_000_000)
            .await
            .unwrap();
    }

    println!(
        "| profile | tasks | library (PgStore) /s | one-call anchor /s | three-commit anchor /s | two-commit anchor, bare /s | two-commit anchor /s | library ÷ two-commit | library's SQL /s | memory /s |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut last_line = None;
    let mut cpu_rows = Vec::new();
    // `CHECKOUT_BENCH_ONLY=uniform:8` runs one cell (for profiling).
    let only = std::env::var("CHECKOUT_BENCH_ONLY").ok();
    for profile in [Profile::Uniform, Profile::Hot] {
        for tasks in [1usize, 8, 32] {
            let cell = format!("{profile:?}:{tasks}").to_lowercase();
            if only.as_ref().is_some_and(|o| *o != cell) {
                continue;
            }
            let n = count_for(tasks);
            let seed = 0x5eed + tasks as u64;
            let plan = orders(profile, n, seed);
            let lib_carts = carts(&engine, &variants, &plan).await;
            let sql_carts: Vec<(CartId, Vec<Uuid>)> = carts(&engine, &variants, &plan)
                .await
                .into_iter()
                .zip(&plan)
                .map(|(c, o)| (c, o.iter().map(|i| variants[*i].as_uuid()).collect()))
                .collect();
            // The in-memory store does tens of thousands a second: its
            // cell gets enough orders to run for about a second (3,000
            // took under 0.1 s, and the rate moved by half between runs).
            let mem_plan = orders(profile, MEMORY_ORDERS, seed);
            let mem_carts = carts(&memory, &mem_variants, &mem_plan).await;
            // Steady state: statistics that know the tables' real sizes.
            sqlx::query("ANALYZE").execute(&pg).await.unwrap();
            tokio::time::sleep(Duration::from_millis(200)).await;
            eprintln!("library phase: {profile:?} {tasks}");
            // `CHECKOUT_BENCH_PROFILE=library` (or `anchor`, or `memory`)
            // runs one side of the cell alone, after a pause to attach a
            // profiler.
            if let Ok(side) = std::env::var("CHECKOUT_BENCH_PROFILE") {
                eprintln!("profiling {side}: starting in 3 s");
                tokio::time::sleep(Duration::from_secs(3)).await;
                let rate = match side.as_str() {
                    "anchor" => {
                        run_anchor(&pg, &variants, plan, tasks, Anchor::TwoCommitsFull).await
                    }
                    "memory" => run_library(&memory, mem_carts, tasks).await,
                    _ => run_library(&engine, lib_carts, tasks).await,
                };
                eprintln!("profiled {side}: {rate:.0}/s");
                continue;
            }
            // The library and the two-commit anchor take turns over the
            // same orders in ROUNDS slices, so a slow moment of the machine
            // falls on both; rates are totals over all rounds.
            let slice = n.div_ceil(ROUNDS);
            let (mut lib_secs, mut two_secs) = (0.0, 0.0);
            let (mut lib_cpu, mut two_cpu) = ((0, 0), (0, 0));
            for (plan_part, carts_part) in plan.chunks(slice).zip(lib_carts.chunks(slice)) {
                let k = plan_part.len() as f64;
                let c0 = cpu_ticks();
                lib_secs += k / run_library(&engine, carts_part.to_vec(), tasks).await;
                let c1 = cpu_ticks();
                two_secs += k / run_anchor(
                    &pg,
                    &variants,
                    plan_part.to_vec(),
                    tasks,
                    Anchor::TwoCommitsFull,
                )
                .await;
                let c2 = cpu_ticks();
                lib_cpu = (lib_cpu.0 + c1.0 - c0.0, lib_cpu.1 + c1.1 - c0.1);
                two_cpu = (two_cpu.0 + c2.0 - c1.0, two_cpu.1 + c2.1 - c1.1);
            }
            let library = n as f64 / lib_secs;
            let two = n as f64 / two_secs;
            let lib_cpu = cpu_per_order((0, 0), lib_cpu, n);
            let two_cpu = cpu_per_order((0, 0), two_cpu, n);
            let one = run_anchor(&pg, &variants, plan.clone(), tasks, Anchor::OneCall).await;
            let three = run_anchor(&pg, &variants, plan.clone(), tasks, Anchor::ThreeCommits).await;
            let bare = run_anchor(&pg, &variants, plan, tasks, Anchor::TwoCommits).await;
            let c3 = cpu_ticks();
            let sql = run_library_sql(
                &pg,
                sql_carts,
                location.id().as_uuid(),
                template.clone(),
                tasks,
            )
            .await;
            let sql_cpu = cpu_per_order(c3, cpu_ticks(), n);
            cpu_rows.push(format!(
                "| {profile:?} | {tasks} | {} | {} | {} | {} | {} | {} |",
                lib_cpu.0, lib_cpu.1, sql_cpu.0, sql_cpu.1, two_cpu.0, two_cpu.1
            ));
            let mem = run_library(&memory, mem_carts, tasks).await;
            println!(
                "| {profile:?} | {tasks} | {library:.0} | {one:.0} | {three:.0} | {bare:.0} | {two:.0} | {:.0}% | {sql:.0} | {mem:.0} |",
                100.0 * library / two,
            );
            if profile == Profile::Uniform && tasks == 8 {
                last_line = Some(format!(
                    "uniform 8 tasks: library {library:.0}/s, two-commit anchor {two:.0}/s, ratio {:.0}%",
                    100.0 * library / two
                ));
            }
        }
    }
    println!();
    println!(
        "CPU per order, µs (bench process = library or client; rest = the database and the machine):"
    );
    println!(
        "| profile | tasks | library: process | library: rest | library's SQL: process | library's SQL: rest | two-commit anchor: process | two-commit anchor: rest |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for row in cpu_rows {
        println!("{row}");
    }
    if let Some(line) = last_line {
        println!("{line}");
    }
}
