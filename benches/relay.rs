//! The event relay's throughput and lag on PostgreSQL, against the same
//! client publishing the same messages directly (the anchor).
//!
//! ```sh
//! bash scripts/test.sh --no-run   # starts NATS and RabbitMQ if needed
//! cargo bench --features postgres,nats,rabbitmq --bench relay
//! ```
//!
//! For NATS JetStream (a file-backed stream) and RabbitMQ (a durable queue
//! behind a topic exchange, publisher confirms), on loopback:
//!
//! - **direct**: the sink's own `deliver` called on every event, 16 at a
//!   time (the relay's default concurrency), nothing recorded — the
//!   client's and the broker's speed;
//! - **relay ×1**: one `Relay` taking the same events out of the outbox
//!   (`RELAY_BENCH_EVENTS`, default 4,000, over 400 aggregates) — claim,
//!   deliver, settle, each aggregate in order;
//! - **relay ×2**: two relays, each on its own engine and pool on the same
//!   schema (two application instances), sharing the work;
//! - **lag**: events recorded at about 500 a second for 4 s while one relay
//!   runs (10 ms between rounds); the time from each event's commit to
//!   the broker's acknowledgement, p50 and p99.
//!
//! The database comes from `DATABASE_URL` (default: the local server); the
//! bench works in its own schema, `cartwright_relay_bench`, recreated for
//! each broker.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[allow(dead_code)] // the median helper serves the other benches
#[path = "pg_support/mod.rs"]
mod pg_support;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use cartwright::Engine;
use cartwright::event::{Event, EventKind};
use cartwright::id::OrderId;
use cartwright::relay::nats::NatsSink;
use cartwright::relay::rabbitmq::RabbitMqSink;
use cartwright::relay::{Relay, RelayConfig, Sink, SinkError};
use cartwright::store::PgStore;

const SCHEMA: &str = "cartwright_relay_bench";
const NATS: &str = "nats://127.0.0.1:4222";
const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// Counts what the inner sink acknowledged (distinct events and every
/// acknowledgement), and the lag of each.
struct Counting {
    name: String,
    inner: Arc<dyn Sink>,
    acks: AtomicU64,
    seen: std::sync::Mutex<HashSet<cartwright::id::EventId>>,
    lags: std::sync::Mutex<Vec<Duration>>,
}

impl Counting {
    fn new(name: &str, inner: Arc<dyn Sink>) -> Arc<Self> {
        Arc::new(Self {
            name: name.to_owned(),
            inner,
            acks: AtomicU64::new(0),
            seen: std::sync::Mutex::new(HashSet::new()),
            lags: std::sync::Mutex::new(Vec::new()),
        })
    }

    fn distinct(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

#[async_trait]
impl Sink for Counting {
    fn name(&self) -> &str {
        &self.name
    }
    async fn deliver(&self, event: &Event, envelope: &serde_json::Value) -> Result<(), SinkError> {
        self.inner.deliver(event, envelope).await?;
        let lag = (chrono::Utc::now() - event.occurred_at)
            .to_std()
            .unwrap_or_default();
        self.acks.fetch_add(1, Ordering::Relaxed);
        self.seen.lock().unwrap().insert(event.id);
        self.lags.lock().unwrap().push(lag);
        Ok(())
    }
}

async fn engine(pool: sqlx::PgPool) -> Engine {
    Engine::builder()
        .store(Arc::new(PgStore::from_pool(pool).await.unwrap()))
        .test_payment_provider()
        .no_tax()
        .build()
        .unwrap()
}

async fn second_engine() -> Engine {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect_with(pg_support::opts().options([("search_path", SCHEMA)]))
        .await
        .unwrap();
    engine(pool).await
}

/// Records `n` events over `n / 10` orders, ten each, interleaved; returns them.
async fn record(engine: &Engine, n: usize) -> Vec<Event> {
    let orders: Vec<OrderId> = (0..n / 10).map(|_| OrderId::new()).collect();
    for _ in 0..10 {
        let kinds: Vec<EventKind> = orders
            .iter()
            .map(|o| EventKind::OrderCancelled { order_id: *o })
            .collect();
        engine
            .store()
            .record_events(kinds, chrono::Utc::now())
            .await
            .unwrap();
    }
    let wanted: HashSet<String> = orders.iter().map(|o| format!("order:{o}")).collect();
    let consumer = format!("bench-{}", uuid::Uuid::new_v4().simple());
    let mut out = Vec::new();
    loop {
        let page = engine
            .pending_events(&cartwright::Actor::System, &consumer, 500)
            .await
            .unwrap();
        let Some(last) = page.last().map(|e| e.id) else {
            if out.len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        out.extend(page.into_iter().filter(|e| wanted.contains(&e.aggregate)));
        engine
            .ack_events(&cartwright::Actor::System, &consumer, last)
            .await
            .unwrap();
    }
    out
}

fn config() -> RelayConfig {
    RelayConfig::default().batch(500)
}

/// Events a second, directly: the sink's `deliver`, 16 at a time.
async fn direct(sink: &dyn Sink, events: &[Event]) -> f64 {
    let envelopes: Vec<serde_json::Value> = events.iter().map(|e| e.cloud_event("bench")).collect();
    let started = Instant::now();
    for (chunk, envs) in events.chunks(16).zip(envelopes.chunks(16)) {
        let results = futures_util::future::join_all(
            chunk.iter().zip(envs).map(|(e, env)| sink.deliver(e, env)),
        )
        .await;
        assert!(results.iter().all(Result::is_ok));
    }
    events.len() as f64 / started.elapsed().as_secs_f64()
}

/// Events a second through `relays` relays sharing sink `sink` until
/// `n` distinct events arrived.
async fn relayed(engines: &[Engine], sink: Arc<Counting>, n: usize) -> f64 {
    let relays: Vec<Arc<Relay>> = engines
        .iter()
        .map(|e| {
            Arc::new(
                Relay::new(e.clone(), vec![sink.clone() as Arc<dyn Sink>])
                    .unwrap()
                    .with_config(config())
                    .unwrap(),
            )
        })
        .collect();
    let started = Instant::now();
    let tasks: Vec<_> = relays
        .into_iter()
        .map(|relay| {
            let sink = sink.clone();
            tokio::spawn(async move {
                while sink.distinct() < n {
                    let report = relay.run_once().await.unwrap();
                    if report.delivered == 0 {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    n as f64 / started.elapsed().as_secs_f64()
}

/// p50 and p99 of the commit-to-acknowledgement lag under a steady stream.
async fn lag(engine: &Engine, sink: Arc<Counting>) -> (Duration, Duration) {
    let relay = Relay::new(engine.clone(), vec![sink.clone() as Arc<dyn Sink>])
        .unwrap()
        .with_config(config())
        .unwrap();
    // Start from the head: nothing older counts.
    while relay.run_once().await.unwrap().delivered > 0 {}
    sink.lags.lock().unwrap().clear();
    let running = tokio::spawn(relay.run(Duration::from_millis(10)));
    let order = OrderId::new();
    let started = Instant::now();
    let mut sent = 0u64;
    while started.elapsed() < Duration::from_secs(4) {
        // Five events every 10 ms, each its own commit, on many aggregates.
        for _ in 0..5 {
            engine
                .store()
                .record_events(
                    vec![EventKind::OrderCancelled {
                        order_id: if sent.is_multiple_of(7) {
                            order
                        } else {
                            OrderId::new()
                        },
                    }],
                    chrono::Utc::now(),
                )
                .await
                .unwrap();
            sent += 1;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    while (sink.lags.lock().unwrap().len() as u64) < sent {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    running.abort();
    let mut lags = sink.lags.lock().unwrap().clone();
    lags.sort();
    let at = |q: f64| lags[((lags.len() as f64 - 1.0) * q) as usize];
    (at(0.5), at(0.99))
}

async fn nats_sink(prefix: &str) -> Arc<dyn Sink> {
    let js = async_nats::jetstream::new(async_nats::connect(NATS).await.unwrap());
    let _ = js.delete_stream("CWBENCH").await;
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "CWBENCH".into(),
        subjects: vec!["cwbench.>".into()],
        storage: async_nats::jetstream::stream::StorageType::File,
        ..Default::default()
    })
    .await
    .unwrap();
    Arc::new(NatsSink::connect("nats", NATS, prefix).await.unwrap())
}

async fn rabbit_sink() -> Arc<dyn Sink> {
    use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
    use lapin::types::FieldTable;
    let conn = lapin::Connection::connect(AMQP, lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.exchange_declare(
        "cwbench".into(),
        lapin::ExchangeKind::Topic,
        ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.queue_declare(
        "cwbench".into(),
        QueueDeclareOptions::durable(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.queue_purge("cwbench".into(), Default::default())
        .await
        .unwrap();
    ch.queue_bind(
        "cwbench".into(),
        "cwbench".into(),
        "cartwright.#".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    Arc::new(
        RabbitMqSink::connect("rabbit", AMQP, "cwbench")
            .await
            .unwrap(),
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::var("RELAY_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4_000);
    println!(
        "| sink | direct (events/s) | relay ×1 | relay ×2 | ×1 / direct | ×2 / direct | lag p50 | lag p99 |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for kind in ["nats", "rabbitmq"] {
        // A fresh outbox for each broker.
        let pool = pg_support::fresh_schema(SCHEMA, &[], 8).await;
        let first = engine(pool).await;
        let second = second_engine().await;
        let sink = match kind {
            "nats" => nats_sink("cwbench").await,
            _ => rabbit_sink().await,
        };
        let events = record(&first, n).await;
        let direct_rate = direct(sink.as_ref(), &events).await;
        let one = relayed(
            std::slice::from_ref(&first),
            Counting::new(&format!("{kind}-1"), sink.clone()),
            n,
        )
        .await;
        let two = relayed(
            &[first.clone(), second.clone()],
            Counting::new(&format!("{kind}-2"), sink.clone()),
            n,
        )
        .await;
        let (p50, p99) = lag(&first, Counting::new(&format!("{kind}-lag"), sink.clone())).await;
        println!(
            "| {kind} | {direct_rate:.0} | {one:.0} | {two:.0} | {:.0} % | {:.0} % | {:.1} ms | {:.1} ms |",
            100.0 * one / direct_rate,
            100.0 * two / direct_rate,
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
        );
    }
}
