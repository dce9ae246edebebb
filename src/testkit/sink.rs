//! The conformance suite for a relay [`Sink`]: what the relay relies on a
//! sink for, checked against the real system behind it through a
//! [`SinkProbe`] that reads back what that system holds.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use async_trait::async_trait;

use super::{Failure, Report, ensure};
use crate::engine::Engine;
use crate::event::{Event, EventKind};
use crate::id::OrderId;
use crate::relay::{Relay, RelayConfig, Sink};

/// Reads back what the system behind a sink received.
#[async_trait]
pub trait SinkProbe: Send + Sync {
    /// Every CloudEvents envelope the receiving system holds so far, in the
    /// order it took them, duplicates included.
    ///
    /// # Errors
    /// What went wrong reading them, in words.
    async fn received(&self) -> Result<Vec<serde_json::Value>, String>;
}

fn failed(check: &'static str, detail: impl std::fmt::Display) -> Failure {
    Failure {
        check,
        detail: detail.to_string(),
    }
}

/// Runs the suite: `sink` must take every event it accepts, with the
/// CloudEvents envelope unchanged; acknowledge only what its system holds
/// (an event the call said was delivered is at the probe at once); keep
/// the id on a second delivery of one event (so consumers drop
/// duplicates); and, driven by two racing relays over `engine`, let every
/// event of the suite's aggregates arrive, each aggregate's in version
/// order. `engine` should have a store of its own; the suite records
/// `order.cancelled` events on fresh order ids there, and `sink` should
/// accept them.
///
/// # Errors
/// A [`Failure`] naming the check that did not hold.
pub async fn sink_conformance(
    engine: Engine,
    sink: Arc<dyn Sink>,
    probe: &dyn SinkProbe,
) -> Result<Report, Failure> {
    let mut report = Report::default();
    let source = "cartwright-conformance";

    // 1. One delivery: acknowledged means held, envelope unchanged.
    let order = OrderId::new();
    let kind = EventKind::OrderCancelled { order_id: order };
    ensure(sink.accepts(&probe_event(kind.clone())), "accepts", || {
        "the sink must accept order.cancelled events for this suite".into()
    })?;
    let event = probe_event(kind);
    let envelope = event.cloud_event(source);
    sink.deliver(&event, &envelope)
        .await
        .map_err(|e| failed("deliver", e))?;
    let held = probe.received().await.map_err(|e| failed("probe", e))?;
    let copies: Vec<&serde_json::Value> = held
        .iter()
        .filter(|v| v.get("id") == envelope.get("id"))
        .collect();
    ensure(!copies.is_empty(), "acknowledged means held", || {
        format!(
            "event {} was acknowledged but is not at the probe",
            event.id
        )
    })?;
    ensure(copies.iter().all(|c| **c == envelope), "envelope", || {
        format!("expected {envelope}, the system holds {copies:?}")
    })?;
    report.checks += 2;

    // 2. Again: the same id (or dropped as a duplicate), nothing else.
    sink.deliver(&event, &envelope)
        .await
        .map_err(|e| failed("redeliver", e))?;
    let held = probe.received().await.map_err(|e| failed("probe", e))?;
    let copies = held
        .iter()
        .filter(|v| v.get("id") == envelope.get("id"))
        .count();
    ensure(
        (1..=2).contains(&copies),
        "a duplicate keeps its id",
        || format!("{copies} copies of one event delivered twice"),
    )?;
    report.checks += 1;

    // 3. Through two racing relays: everything, each aggregate in order.
    let orders: Vec<OrderId> = (0..5).map(|_| OrderId::new()).collect();
    for _ in 0..4 {
        let kinds = orders
            .iter()
            .map(|o| EventKind::OrderCancelled { order_id: *o })
            .collect();
        engine
            .store()
            .record_events(kinds, engine.now())
            .await
            .map_err(|e| failed("record events", e))?;
    }
    let wanted: HashSet<String> = orders.iter().map(|o| format!("order:{o}")).collect();
    let config = RelayConfig::default()
        .batch(3)
        .retry_schedule(vec![chrono::Duration::zero(); 3]);
    let relays = [
        Relay::new(engine.clone(), vec![Arc::clone(&sink)])
            .and_then(|r| r.with_config(config.clone()))
            .map_err(|e| failed("relay", e))?,
        Relay::new(engine.clone(), vec![Arc::clone(&sink)])
            .and_then(|r| r.with_config(config))
            .map_err(|e| failed("relay", e))?,
    ];
    let mut arrived: Vec<serde_json::Value> = Vec::new();
    for _ in 0..200 {
        let (a, b) = tokio::join!(relays[0].run_once(), relays[1].run_once());
        a.map_err(|e| failed("relay round", e))?;
        b.map_err(|e| failed("relay round", e))?;
        arrived = probe
            .received()
            .await
            .map_err(|e| failed("probe", e))?
            .into_iter()
            .filter(|v| v["subject"].as_str().is_some_and(|s| wanted.contains(s)))
            .collect();
        let distinct: HashSet<&str> = arrived.iter().filter_map(|v| v["id"].as_str()).collect();
        if distinct.len() >= 20 {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    let distinct: HashSet<&str> = arrived.iter().filter_map(|v| v["id"].as_str()).collect();
    ensure(distinct.len() == 20, "every event arrives", || {
        format!("{} of 20 events arrived", distinct.len())
    })?;
    // First arrivals of each aggregate in version order.
    let mut last: HashMap<String, u64> = HashMap::new();
    let mut seen: HashSet<String> = HashSet::new();
    for v in &arrived {
        let id = v["id"].as_str().unwrap_or_default().to_owned();
        if !seen.insert(id) {
            continue;
        }
        let subject = v["subject"].as_str().unwrap_or_default().to_owned();
        let version = v["aggregateversion"].as_u64().unwrap_or(0);
        let before = last.insert(subject.clone(), version).unwrap_or(0);
        ensure(version == before + 1, "each aggregate in order", || {
            format!("{subject}: version {version} arrived after {before}")
        })?;
    }
    report.checks += 2;
    Ok(report)
}

/// An event the suite hands a sink directly (not from the outbox).
fn probe_event(kind: EventKind) -> Event {
    Event::new(crate::id::EventId::new(), 0, chrono::Utc::now(), kind, 1)
}
