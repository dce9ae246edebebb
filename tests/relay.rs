//! The event relay on both stores: every event reaches every sink, each
//! aggregate's in order, once in normal operation even with two relays
//! racing; a sink that keeps refusing one aggregate's event parks that
//! aggregate alone, staff see and replay it; a relay that stops is taken
//! over when its lease ends.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use cartwright::event::{Event, EventKind};
use cartwright::prelude::*;
use cartwright::relay::{Relay, RelayConfig, Sink, SinkError};
use common::{Backend, Shop};

/// Records what it was given; refuses the aggregates in `refuse`.
#[derive(Default)]
struct Recorder {
    name: String,
    got: Mutex<Vec<(String, u64, String)>>,
    refuse: Mutex<HashSet<String>>,
}

#[async_trait]
impl Sink for Recorder {
    fn name(&self) -> &str {
        &self.name
    }
    async fn deliver(&self, event: &Event, envelope: &serde_json::Value) -> Result<(), SinkError> {
        assert_eq!(envelope["id"], event.id.to_string());
        if self.refuse.lock().unwrap().contains(&event.aggregate) {
            return Err(SinkError::transient("503 from the receiver"));
        }
        // Only the test's order events are looked at (setting up the shop
        // records admin events too).
        if !event.aggregate.starts_with("order:") {
            return Ok(());
        }
        self.got.lock().unwrap().push((
            event.aggregate.clone(),
            event.version,
            event.id.to_string(),
        ));
        Ok(())
    }
}

fn recorder(name: &str) -> Arc<Recorder> {
    Arc::new(Recorder {
        name: name.into(),
        ..Recorder::default()
    })
}

fn quick() -> RelayConfig {
    RelayConfig::default()
        .batch(7)
        .retry_schedule(vec![chrono::Duration::zero(), chrono::Duration::zero()])
}

async fn two_relays_deliver_every_event_once_in_order(backend: Backend) {
    let shop = Shop::new(backend).await;
    let orders: Vec<_> = (0..6).map(|_| cartwright::id::OrderId::new()).collect();
    common::cancel_orders(&shop.engine, &orders, 5).await;
    let (a, b) = (recorder("erp"), recorder("search"));
    let second = shop.second_engine().await;
    let relays = [
        Relay::new(shop.engine.clone(), vec![a.clone(), b.clone()])
            .unwrap()
            .with_config(quick())
            .unwrap(),
        Relay::new(second, vec![a.clone(), b.clone()])
            .unwrap()
            .with_config(quick())
            .unwrap(),
    ];
    let relays = Arc::new(relays);
    for _ in 0..100 {
        let (r1, r2) = (relays.clone(), relays.clone());
        let (x, y) = tokio::join!(
            tokio::spawn(async move { r1[0].run_once().await }),
            tokio::spawn(async move { r2[1].run_once().await })
        );
        x.unwrap().unwrap();
        y.unwrap().unwrap();
        if a.got.lock().unwrap().len() >= 30 && b.got.lock().unwrap().len() >= 30 {
            break;
        }
    }
    for sink in [&a, &b] {
        let got = sink.got.lock().unwrap().clone();
        assert_eq!(got.len(), 30, "each event once: {got:?}");
        let ids: HashSet<&String> = got.iter().map(|(_, _, id)| id).collect();
        assert_eq!(ids.len(), 30);
        let mut last: HashMap<&str, u64> = HashMap::new();
        for (aggregate, version, _) in &got {
            let before = last.insert(aggregate.as_str(), *version).unwrap_or(0);
            assert_eq!(*version, before + 1, "{aggregate} out of order: {got:?}");
        }
    }
}

async fn a_refused_aggregate_is_parked_alone_and_replayed(backend: Backend) {
    let shop = Shop::new(backend).await;
    let orders: Vec<_> = (0..3).map(|_| cartwright::id::OrderId::new()).collect();
    common::cancel_orders(&shop.engine, &orders, 2).await;
    let sink = recorder("webhook-1");
    let poison = format!("order:{}", orders[0]);
    sink.refuse.lock().unwrap().insert(poison.clone());
    let relay = Relay::new(shop.engine.clone(), vec![sink.clone()])
        .unwrap()
        .with_config(quick())
        .unwrap();
    let mut parked = 0;
    for _ in 0..20 {
        parked += relay.run_once().await.unwrap().parked;
    }
    assert_eq!(parked, 1);
    // The others went through, in order; the poisoned one waits.
    let got = sink.got.lock().unwrap().clone();
    assert_eq!(got.len(), 4, "{got:?}");
    assert!(got.iter().all(|(a, _, _)| *a != poison));
    let staff = Actor::Staff("wes".into());
    assert!(matches!(
        shop.engine.failed_deliveries(&Actor::Guest, None, 10).await,
        Err(Error::Forbidden)
    ));
    let failed = shop
        .engine
        .failed_deliveries(&staff, None, 10)
        .await
        .unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(
        (failed[0].aggregate.as_str(), failed[0].version),
        (poison.as_str(), 1)
    );
    assert_eq!(failed[0].attempts, 3);
    assert!(failed[0].error.contains("503"));
    // Mended and replayed: both its events arrive, in order.
    sink.refuse.lock().unwrap().clear();
    assert!(
        shop.engine
            .replay_delivery(&staff, "webhook-1", &poison)
            .await
            .unwrap()
    );
    for _ in 0..5 {
        relay.run_once().await.unwrap();
    }
    let got = sink.got.lock().unwrap().clone();
    let versions: Vec<u64> = got
        .iter()
        .filter(|(a, _, _)| *a == poison)
        .map(|(_, v, _)| *v)
        .collect();
    assert_eq!(versions, [1, 2]);
    assert!(
        shop.engine
            .failed_deliveries(&staff, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_stopped_relay_is_taken_over_when_its_lease_ends(backend: Backend) {
    let shop = Shop::new(backend).await;
    let order = cartwright::id::OrderId::new();
    common::cancel_orders(&shop.engine, &[order], 1).await;
    // A relay claims and stops before delivering (a crash).
    let now = cartwright::clock::Clock::now(shop.clock.as_ref());
    let claimed = shop
        .engine
        .store()
        .claim_deliveries(
            "mail",
            uuid::Uuid::new_v4(),
            now,
            now + chrono::Duration::seconds(60),
            10,
        )
        .await
        .unwrap();
    assert!(
        claimed
            .iter()
            .any(|e| e.aggregate == format!("order:{order}"))
    );
    let sink = recorder("mail");
    let relay = Relay::new(shop.engine.clone(), vec![sink.clone()]).unwrap();
    relay.run_once().await.unwrap();
    assert!(sink.got.lock().unwrap().is_empty(), "the lease holds");
    shop.clock.advance(chrono::Duration::seconds(61));
    relay.run_once().await.unwrap();
    assert_eq!(sink.got.lock().unwrap().len(), 1, "taken over");
}

async fn delivered_events_are_pruned_and_the_rest_kept(backend: Backend) {
    let shop = Shop::new(backend).await;
    let (done, stuck) = (
        cartwright::id::OrderId::new(),
        cartwright::id::OrderId::new(),
    );
    common::cancel_orders(&shop.engine, &[done, stuck], 2).await;
    let sink = recorder("erp");
    let poison = format!("order:{stuck}");
    sink.refuse.lock().unwrap().insert(poison.clone());
    let relay = Relay::new(shop.engine.clone(), vec![sink.clone()])
        .unwrap()
        .with_config(quick())
        .unwrap();
    for _ in 0..10 {
        relay.run_once().await.unwrap();
    }
    let store = shop.engine.store();
    let later = chrono::Utc::now() + chrono::Duration::days(3_650);
    assert!(store.prune_events(later).await.unwrap() >= 2);
    // Only the parked aggregate's events are left.
    let left = common::pending(&shop.engine, "probe", 2).await;
    let aggregates: HashSet<&str> = left.iter().map(|e| e.aggregate.as_str()).collect();
    assert_eq!(aggregates, HashSet::from([poison.as_str()]), "{left:?}");
    assert_eq!(left.len(), 2);
    // The pruned aggregate goes on from its next version; the parked one,
    // replayed, from its first.
    common::cancel_orders(&shop.engine, &[done], 1).await;
    sink.refuse.lock().unwrap().clear();
    let staff = Actor::Staff("wes".into());
    assert!(
        shop.engine
            .replay_delivery(&staff, "erp", &poison)
            .await
            .unwrap()
    );
    for _ in 0..10 {
        relay.run_once().await.unwrap();
    }
    let got = sink.got.lock().unwrap().clone();
    let versions = |aggregate: &str| -> Vec<u64> {
        got.iter()
            .filter(|(a, _, _)| a == aggregate)
            .map(|(_, v, _)| *v)
            .collect()
    };
    assert_eq!(versions(&format!("order:{done}")), [1, 2, 3]);
    assert_eq!(versions(&poison), [1, 2]);
}

/// Passes deliveries to a recorder, but the `stall_at`-th never returns
/// (a relay process killed while a delivery is under way).
struct Stalling {
    inner: Arc<Recorder>,
    calls: std::sync::atomic::AtomicUsize,
    stall_at: usize,
}

#[async_trait]
impl Sink for Stalling {
    fn name(&self) -> &str {
        &self.inner.name
    }
    async fn deliver(&self, event: &Event, envelope: &serde_json::Value) -> Result<(), SinkError> {
        if !event.aggregate.starts_with("order:") {
            return Ok(());
        }
        let n = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if n == self.stall_at {
            std::future::pending::<()>().await;
        }
        self.inner.deliver(event, envelope).await
    }
}

/// Every one of `n` events arrived, each aggregate's first arrivals in
/// version order, duplicates only as the same event.
fn all_in_order(got: &[(String, u64, String)], n: usize) {
    let mut seen: HashMap<&str, (&str, u64)> = HashMap::new();
    let mut last: HashMap<&str, u64> = HashMap::new();
    for (aggregate, version, id) in got {
        if let Some(earlier) = seen.get(id.as_str()) {
            assert_eq!(*earlier, (aggregate.as_str(), *version));
            continue;
        }
        seen.insert(id, (aggregate, *version));
        let before = last.insert(aggregate, *version).unwrap_or(0);
        assert_eq!(*version, before + 1, "{aggregate} out of order: {got:?}");
    }
    assert_eq!(seen.len(), n, "{got:?}");
}

async fn a_relay_killed_mid_batch_loses_nothing(backend: Backend) {
    let shop = Shop::new(backend).await;
    let orders: Vec<_> = (0..4).map(|_| cartwright::id::OrderId::new()).collect();
    common::cancel_orders(&shop.engine, &orders, 3).await;
    let sink = recorder("warehouse");
    let stalling = Arc::new(Stalling {
        inner: sink.clone(),
        calls: Default::default(),
        stall_at: 2,
    });
    let first = Relay::new(shop.engine.clone(), vec![stalling])
        .unwrap()
        .with_config(quick().batch(10))
        .unwrap();
    let killed = tokio::spawn(async move { first.run_once().await });
    for _ in 0..200 {
        if sink.got.lock().unwrap().len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    killed.abort();
    assert!(killed.await.unwrap_err().is_cancelled());
    // Another instance goes on; the stalled aggregate once its lease ends.
    let second = Relay::new(shop.second_engine().await, vec![sink.clone()])
        .unwrap()
        .with_config(quick())
        .unwrap();
    for round in 0..40 {
        if round == 5 {
            shop.clock.advance(chrono::Duration::seconds(61));
        }
        second.run_once().await.unwrap();
    }
    all_in_order(&sink.got.lock().unwrap(), 12);
}

/// PostgreSQL connections killed under a running relay (a failover, an
/// administrator): rounds fail and the next ones go on; nothing is lost.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_database_connections_lose_nothing() {
    let schema = common::pg::fresh_schema().await;
    let app = format!("cw_relay_{}", uuid::Uuid::new_v4().simple());
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect_with(common::pg::options(&schema).application_name(&app))
        .await
        .unwrap();
    let store = cartwright::store::PgStore::from_pool(pool).await.unwrap();
    let engine = Engine::builder()
        .store(Arc::new(store))
        .test_payment_provider()
        .no_tax()
        .build()
        .unwrap();
    let orders: Vec<_> = (0..10).map(|_| cartwright::id::OrderId::new()).collect();
    common::cancel_orders(&engine, &orders, 4).await;
    let sink = recorder("erp");
    let relay = Relay::new(engine, vec![sink.clone()])
        .unwrap()
        .with_config(quick().batch(3).lease(chrono::Duration::seconds(2)))
        .unwrap();
    // A round whose outcome could not be recorded leaves its claims leased:
    // they go out again when the (short) lease ends.
    let running = tokio::spawn(async move {
        loop {
            let _ = relay.run_once().await;
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    });
    let admin = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&common::pg::admin_url())
        .await
        .unwrap();
    let mut kills = 0;
    for _ in 0..10 {
        let killed: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
        )
        .bind(&app)
        .fetch_all(&admin)
        .await
        .unwrap();
        kills += killed.len();
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    }
    for _ in 0..1_200 {
        let distinct: HashSet<String> = sink
            .got
            .lock()
            .unwrap()
            .iter()
            .map(|(_, _, id)| id.clone())
            .collect();
        if distinct.len() >= 40 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    running.abort();
    assert!(kills > 0, "no connection was killed");
    all_in_order(&sink.got.lock().unwrap(), 40);
}

/// A claim hands out an aggregate's next events in version order; settling
/// them out of order, or after a failed one, is refused and changes nothing.
async fn a_claims_events_settle_in_order_or_not_at_all(backend: Backend) {
    let shop = Shop::new(backend).await;
    let order = cartwright::id::OrderId::new();
    common::cancel_orders(&shop.engine, &[order], 3).await;
    let store = shop.engine.store();
    let owner = uuid::Uuid::new_v4();
    let now = cartwright::clock::Clock::now(shop.clock.as_ref());
    let claimed: Vec<Event> = store
        .claim_deliveries(
            "audit",
            owner,
            now,
            now + chrono::Duration::seconds(60),
            100,
        )
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.aggregate == format!("order:{order}"))
        .collect();
    let versions: Vec<u64> = claimed.iter().map(|e| e.version).collect();
    assert_eq!(versions, [1, 2, 3]);
    use cartwright::store::DeliveryOutcome as D;
    let retry = || D::Retry {
        at: now,
        error: "503".into(),
    };
    for bad in [
        vec![(claimed[1].clone(), D::Delivered)],
        vec![
            (claimed[0].clone(), D::Delivered),
            (claimed[2].clone(), D::Delivered),
        ],
        vec![
            (claimed[0].clone(), retry()),
            (claimed[1].clone(), D::Delivered),
        ],
    ] {
        let refused = store.settle_deliveries("audit", owner, &bad).await;
        assert!(
            matches!(refused, Ok(ref r) if r.iter().all(|ok| !ok)) || refused.is_err(),
            "{refused:?}"
        );
    }
    // Two delivered, the third failed: recorded as one.
    let recorded = store
        .settle_deliveries(
            "audit",
            owner,
            &[
                (claimed[0].clone(), D::Delivered),
                (claimed[1].clone(), D::Delivered),
                (claimed[2].clone(), retry()),
            ],
        )
        .await
        .unwrap();
    assert_eq!(recorded, [true, true, true]);
    assert_eq!(
        store
            .delivery_attempts("audit", &format!("order:{order}"))
            .await
            .unwrap(),
        1
    );
    let again = store
        .claim_deliveries(
            "audit",
            owner,
            now,
            now + chrono::Duration::seconds(60),
            100,
        )
        .await
        .unwrap();
    let next: Vec<u64> = again
        .iter()
        .filter(|e| e.aggregate == format!("order:{order}"))
        .map(|e| e.version)
        .collect();
    assert_eq!(next, [3]);
}

/// Never answers.
struct Hanging;

#[async_trait]
impl Sink for Hanging {
    fn name(&self) -> &str {
        "hanging"
    }
    async fn deliver(&self, _: &Event, _: &serde_json::Value) -> Result<(), SinkError> {
        std::future::pending::<()>().await;
        Ok(())
    }
}

/// A sink that never answers costs a round at most its lease: nothing new
/// starts past half of it, so what was tried is recorded while the claim
/// is still the relay's.
async fn a_hanging_sink_costs_a_round_at_most_its_lease(backend: Backend) {
    let shop = Shop::new(backend).await;
    let orders: Vec<_> = (0..40).map(|_| cartwright::id::OrderId::new()).collect();
    common::cancel_orders(&shop.engine, &orders, 1).await;
    let relay = Relay::new(shop.engine.clone(), vec![Arc::new(Hanging)])
        .unwrap()
        .with_config(
            quick()
                .batch(100)
                .concurrency(4)
                .lease(chrono::Duration::seconds(2)),
        )
        .unwrap();
    let started = std::time::Instant::now();
    let report = relay.run_once().await.unwrap();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(report.lost_leases, 0, "{report:?}");
    assert_eq!(
        report.retried + report.parked,
        4,
        "one window of four: {report:?}"
    );
}

conformance!(
    a_hanging_sink_costs_a_round_at_most_its_lease,
    a_claims_events_settle_in_order_or_not_at_all,
    a_relay_killed_mid_batch_loses_nothing,
    delivered_events_are_pruned_and_the_rest_kept,
    two_relays_deliver_every_event_once_in_order,
    a_refused_aggregate_is_parked_alone_and_replayed,
    a_stopped_relay_is_taken_over_when_its_lease_ends,
    the_inbox_handles_each_event_once,
);

#[tokio::test]
async fn relays_refuse_bad_sinks() {
    let shop = Shop::new(Backend::Memory).await;
    assert!(Relay::new(shop.engine.clone(), vec![]).is_err());
    assert!(Relay::new(shop.engine.clone(), vec![recorder("")]).is_err());
    assert!(Relay::new(shop.engine.clone(), vec![recorder("a b")]).is_err());
    assert!(Relay::new(shop.engine.clone(), vec![recorder("x"), recorder("x")]).is_err());
    let ok = Relay::new(shop.engine.clone(), vec![recorder("x")]).unwrap();
    assert!(ok.with_config(RelayConfig::default().batch(0)).is_err());
}

async fn the_inbox_handles_each_event_once(backend: Backend) {
    use cartwright::relay::Inbox;
    let shop = Shop::new(backend).await;
    let inbox = Inbox::new(shop.engine.clone(), "warehouse").unwrap();
    let other = Inbox::new(shop.second_engine().await, "warehouse").unwrap();
    let event = cartwright::id::EventId::new();
    // A failing handler leaves the event to be handled again.
    let failed = inbox
        .handle(event, async { Err::<(), &str>("warehouse down") })
        .await
        .unwrap();
    assert_eq!(failed, Some(Err("warehouse down")));
    // Two deliveries racing on two instances: handled once.
    let runs = Arc::new(Mutex::new(0));
    let (r1, r2) = (runs.clone(), runs.clone());
    let (a, b) = tokio::join!(
        inbox.handle(event, async move {
            *r1.lock().unwrap() += 1;
            Ok::<_, ()>(())
        }),
        other.handle(event, async move {
            *r2.lock().unwrap() += 1;
            Ok::<_, ()>(())
        })
    );
    let ran = [a.unwrap(), b.unwrap()]
        .iter()
        .filter(|r| r.is_some())
        .count();
    assert_eq!((ran, *runs.lock().unwrap()), (1, 1));
    // Later deliveries skip it; another consumer has its own inbox.
    assert_eq!(
        inbox
            .handle(event, async { Ok::<_, ()>(()) })
            .await
            .unwrap(),
        None
    );
    let mailer = Inbox::new(shop.engine.clone(), "mailer").unwrap();
    assert!(
        mailer
            .handle(event, async { Ok::<_, ()>(()) })
            .await
            .unwrap()
            .is_some()
    );
    assert!(Inbox::new(shop.engine.clone(), "bad name").is_err());
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Fails each event listed in `flaky` once, and every event of an
    /// aggregate in `broken` until it is mended; records the rest.
    struct Plan {
        inner: Arc<Recorder>,
        flaky: Mutex<HashSet<(String, u64)>>,
        broken: Mutex<HashSet<String>>,
    }

    #[async_trait]
    impl Sink for Plan {
        fn name(&self) -> &str {
            &self.inner.name
        }
        async fn deliver(
            &self,
            event: &Event,
            envelope: &serde_json::Value,
        ) -> Result<(), SinkError> {
            if !event.aggregate.starts_with("order:") {
                return Ok(());
            }
            if self.broken.lock().unwrap().contains(&event.aggregate) {
                return Err(SinkError::permanent("refused"));
            }
            if self
                .flaky
                .lock()
                .unwrap()
                .remove(&(event.aggregate.clone(), event.version))
            {
                return Err(SinkError::transient("503"));
            }
            self.inner.deliver(event, envelope).await
        }
    }

    /// One case: events per aggregate, (aggregate, version) deliveries
    /// that fail once, aggregates refused until mended, the relays' batch
    /// and concurrency.
    #[derive(Debug, Clone)]
    struct Case {
        counts: Vec<usize>,
        flaky: Vec<(usize, u64)>,
        broken: Vec<usize>,
        batch: usize,
        concurrency: usize,
    }

    fn cases() -> impl Strategy<Value = Case> {
        (
            prop::collection::vec(1usize..8, 1..6),
            prop::collection::vec((0usize..6, 1u64..8), 0..10),
            prop::collection::vec(0usize..6, 0..2),
            1usize..12,
            1usize..5,
        )
            .prop_map(|(counts, flaky, broken, batch, concurrency)| Case {
                counts,
                flaky,
                broken,
                batch,
                concurrency,
            })
    }

    async fn run_case(backend: Backend, case: Case) {
        let Case {
            counts,
            flaky,
            broken,
            batch,
            concurrency,
        } = case;
        let shop = Shop::new(backend).await;
        let orders: Vec<_> = counts
            .iter()
            .map(|_| cartwright::id::OrderId::new())
            .collect();
        // Interleaved: round r records the r-th event of every
        // aggregate that has one.
        let most = counts.iter().copied().max().unwrap_or(0);
        for round in 0..most {
            let kinds: Vec<EventKind> = orders
                .iter()
                .zip(&counts)
                .filter(|(_, n)| round < **n)
                .map(|(o, _)| EventKind::OrderCancelled { order_id: *o })
                .collect();
            shop.engine
                .store()
                .record_events(kinds, chrono::Utc::now())
                .await
                .unwrap();
        }
        let name = |i: usize| orders.get(i).map(|o| format!("order:{o}"));
        let plan = Arc::new(Plan {
            inner: recorder("erp"),
            flaky: Mutex::new(
                flaky
                    .iter()
                    .filter_map(|(i, v)| name(*i).map(|a| (a, *v)))
                    .collect(),
            ),
            broken: Mutex::new(broken.iter().filter_map(|i| name(*i)).collect()),
        });
        let config = quick().batch(batch).concurrency(concurrency);
        let relays = [
            Relay::new(shop.engine.clone(), vec![plan.clone()])
                .unwrap()
                .with_config(config.clone())
                .unwrap(),
            Relay::new(shop.engine.clone(), vec![plan.clone()])
                .unwrap()
                .with_config(config)
                .unwrap(),
        ];
        for _ in 0..60 {
            let (a, b) = tokio::join!(relays[0].run_once(), relays[1].run_once());
            a.unwrap();
            b.unwrap();
        }
        // Mended, and what was parked replayed.
        plan.broken.lock().unwrap().clear();
        let staff = Actor::Staff("wes".into());
        for parked in shop
            .engine
            .failed_deliveries(&staff, Some("erp"), 100)
            .await
            .unwrap()
        {
            shop.engine
                .replay_delivery(&staff, "erp", &parked.aggregate)
                .await
                .unwrap();
        }
        for _ in 0..60 {
            let (a, b) = tokio::join!(relays[0].run_once(), relays[1].run_once());
            a.unwrap();
            b.unwrap();
        }
        let total: usize = counts.iter().sum();
        all_in_order(&plan.inner.got.lock().unwrap(), total);
    }

    fn run(backend: Backend, case: Case) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(run_case(backend, case));
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 32, .. ProptestConfig::default() })]
        /// Whatever the events, the failures and the two relays racing:
        /// once the refused aggregates are mended and replayed, every event
        /// arrived, each aggregate's first arrivals in version order, and a
        /// duplicate is the same event.
        #[test]
        fn every_event_arrives_in_order_whatever_fails(case in cases()) {
            run(Backend::Memory, case);
        }
    }

    #[cfg(feature = "postgres")]
    proptest! {
        #![proptest_config(ProptestConfig { cases: 6, .. ProptestConfig::default() })]
        /// The same on PostgreSQL (its claims, floors and settlements are SQL).
        #[test]
        fn every_event_arrives_in_order_whatever_fails_on_postgres(case in cases()) {
            run(Backend::Postgres, case);
        }
    }
}
