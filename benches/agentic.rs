//! Complete UCP purchase flows per second over HTTP on loopback, against
//! the same flows through the engine's agent-session calls directly (the
//! anchor), in one run, on the memory store and on PostgreSQL.
//!
//! ```sh
//! cargo bench --features ucp,postgres --bench agentic
//! ```
//!
//! A flow is what an agent does to buy: create a checkout session with a
//! line, update it with a destination and a shipping option, complete it
//! with a token. **UCP/HTTP**: the three requests to `UcpMerchant::router`
//! served by axum on 127.0.0.1, from a reqwest client with keep-alive,
//! each with an idempotency key (so every answer is also stored for
//! replay). **direct**: `open_agent_session`, `update_agent_session` twice
//! and `complete_agent_session` on the same engine. Both at 1 and at 8
//! agents buying at once (`AGENTIC_BENCH_FLOWS` flows per agent, default
//! 60); throughput, and p50 and p99 of a whole flow. The difference is
//! what the protocol layer costs: HTTP, JSON in and out, the idempotency
//! claim and its stored answer, rendering.
//!
//! PostgreSQL comes from `DATABASE_URL` (default: the local server), in the
//! schema `cartwright_agentic_bench`, recreated for each row.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[allow(dead_code)]
#[path = "pg_support/mod.rs"]
mod pg_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use cartwright::agent::{AgentBuyer, AgentProtocol, Destination};
use cartwright::agentic::ucp::{UcpConfig, UcpMerchant};
use cartwright::agents::{AgentPayment, AgentUpdate};
use cartwright::catalog::{NewProduct, NewVariant, Status};
use cartwright::customer::{Address, NewAddress};
use cartwright::id::VariantId;
use cartwright::money::{Currency, Money};
use cartwright::shipping::FlatRateShipping;
use cartwright::store::{MemoryStore, PgStore, Store};
use cartwright::{Actor, Engine};
use serde_json::json;

const SCHEMA: &str = "cartwright_agentic_bench";

async fn engine(store: Arc<dyn Store>) -> (Engine, VariantId) {
    let engine = Engine::builder()
        .store(store)
        .test_payment_provider()
        .shipping(Arc::new(
            FlatRateShipping::new()
                .with_method(
                    "standard",
                    "Standard",
                    &[Money::parse("5.00", Currency::USD).unwrap()],
                )
                .unwrap(),
        ))
        .no_tax()
        .build()
        .unwrap();
    let system = Actor::System;
    let product = engine
        .create_product(
            &system,
            NewProduct::new("Rose")
                .status(Status::Active)
                .variants(vec![
                    NewVariant::shipped("ROSE")
                        .prices(vec![Money::parse("35.00", Currency::USD).unwrap()])
                        .status(Status::Active),
                ]),
        )
        .await
        .unwrap();
    let variant = product.variants()[0].id();
    let location = engine.create_location(&system, "Shop", 0).await.unwrap();
    engine
        .set_stock(&system, variant, location.id(), 1_000_000)
        .await
        .unwrap();
    (engine, variant)
}

async fn store(postgres: bool) -> Arc<dyn Store> {
    if postgres {
        let pool = pg_support::fresh_schema(SCHEMA, &[], 24).await;
        Arc::new(PgStore::from_pool(pool).await.unwrap())
    } else {
        Arc::new(MemoryStore::new())
    }
}

/// One flow over HTTP.
async fn http_flow(client: &reqwest::Client, base: &str) {
    let key = || uuid::Uuid::new_v4().to_string();
    let agent = "version=\"2026-01-11\"";
    let created: serde_json::Value = client
        .post(format!("{base}checkout-sessions"))
        .header("UCP-Agent", agent)
        .header("Idempotency-Key", key())
        .json(
            &json!({"currency": "USD", "line_items": [{"item": {"id": "ROSE"}, "quantity": 1}],
            "buyer": {"email": "agent.buyer@example.com"}}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    let updated = client
        .put(format!("{base}checkout-sessions/{id}"))
        .header("UCP-Agent", agent)
        .header("Idempotency-Key", key())
        .json(&json!({"currency": "USD", "line_items": [{"item": {"id": "ROSE"}, "quantity": 1}],
            "fulfillment": {"methods": [{"type": "shipping",
                "destinations": [{"id": "d", "street_address": "1 Rose Lane", "address_locality": "Springfield", "postal_code": "62704", "address_country": "US"}],
                "selected_destination_id": "d", "groups": [{"selected_option_id": "standard"}]}]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(updated.status(), 200);
    let done = client
        .post(format!("{base}checkout-sessions/{id}/complete"))
        .header("UCP-Agent", agent)
        .header("Idempotency-Key", key())
        .json(&json!({"payment_data": {"handler_id": "h", "credential": {"type": "token", "token": "tok_visa"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200, "{}", done.text().await.unwrap());
}

/// The same flow through the engine.
async fn direct_flow(engine: &Engine, variant: VariantId) {
    let agent = Actor::Agent("bench-agent".into());
    let session = engine
        .open_agent_session(&agent, AgentProtocol::Ucp, Currency::USD)
        .await
        .unwrap();
    engine
        .update_agent_session(
            &agent,
            session.id,
            AgentUpdate::default()
                .lines(Some(vec![(variant, 1)]))
                .buyer(Some(
                    AgentBuyer::default().email(Some("agent.buyer@example.com".to_owned())),
                )),
        )
        .await
        .unwrap();
    let address = Address::partial(
        NewAddress::default()
            .line1("1 Rose Lane")
            .city("Springfield")
            .postal_code("62704")
            .country("US"),
    )
    .unwrap();
    engine
        .update_agent_session(
            &agent,
            session.id,
            AgentUpdate::default()
                .lines(Some(vec![(variant, 1)]))
                .destinations(Some(vec![Destination::new("d", address).unwrap()]))
                .selected_destination(Some(Some("d".into())))
                .selected_option(Some(Some("standard".into()))),
        )
        .await
        .unwrap();
    engine
        .complete_agent_session(&agent, session.id, AgentPayment::new("tok_visa"))
        .await
        .unwrap();
}

struct Row {
    flows: usize,
    seconds: f64,
    p50: Duration,
    p99: Duration,
}

async fn measure<F, Fut>(agents: usize, per_agent: usize, flow: F) -> Row
where
    F: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..agents {
        let flow = flow.clone();
        tasks.push(tokio::spawn(async move {
            let mut times = Vec::with_capacity(per_agent);
            for _ in 0..per_agent {
                let t = Instant::now();
                flow().await;
                times.push(t.elapsed());
            }
            times
        }));
    }
    let mut times = Vec::new();
    for t in tasks {
        times.extend(t.await.unwrap());
    }
    let seconds = started.elapsed().as_secs_f64();
    times.sort();
    let at = |q: f64| times[((times.len() as f64 - 1.0) * q).round() as usize];
    Row {
        flows: times.len(),
        seconds,
        p50: at(0.50),
        p99: at(0.99),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let per_agent: usize = std::env::var("AGENTIC_BENCH_FLOWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    println!("| store | agents | path | flows | flows/s | p50 ms | p99 ms | protocol cost |");
    println!("|---|---|---|---|---|---|---|---|");
    for postgres in [false, true] {
        for agents in [1usize, 8] {
            let (engine, variant) = engine(store(postgres).await).await;
            // Warm both paths (connections, caches).
            direct_flow(&engine, variant).await;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = format!("http://{}/", listener.local_addr().unwrap());
            let merchant = UcpMerchant::new(
                engine.clone(),
                UcpConfig::new(base.parse().unwrap()).trust_every_agent("bench-agent"),
            )
            .unwrap();
            let app = merchant.router();
            let server = tokio::spawn(async move { axum::serve(listener, app).await });
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(16)
                .build()
                .unwrap();
            http_flow(&client, &base).await;
            let direct = {
                let engine = engine.clone();
                measure(agents, per_agent, move || {
                    let engine = engine.clone();
                    async move { direct_flow(&engine, variant).await }
                })
                .await
            };
            let http = {
                let (client, base) = (client.clone(), base.clone());
                measure(agents, per_agent, move || {
                    let (client, base) = (client.clone(), base.clone());
                    async move { http_flow(&client, &base).await }
                })
                .await
            };
            server.abort();
            let store = if postgres { "PostgreSQL" } else { "memory" };
            let rate = |r: &Row| r.flows as f64 / r.seconds;
            for (path, row) in [("direct", &direct), ("UCP/HTTP", &http)] {
                let cost = if path == "direct" {
                    "—".to_owned()
                } else {
                    format!(
                        "+{:.2} ms/flow (p50), {:.0} % of direct's rate",
                        (row.p50.as_secs_f64() - direct.p50.as_secs_f64()) * 1000.0,
                        rate(row) / rate(&direct) * 100.0
                    )
                };
                println!(
                    "| {store} | {agents} | {path} | {} | {:.0} | {} | {} | {cost} |",
                    row.flows,
                    rate(row),
                    ms(row.p50),
                    ms(row.p99)
                );
            }
        }
    }
}
