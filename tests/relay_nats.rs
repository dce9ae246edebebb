//! The relay's NATS JetStream sink against a real NATS server (the README's
//! test command starts it): every event stored once in the stream under
//! its type's subject, each aggregate's in order, with the event id as
//! `Nats-Msg-Id` so a second publish of one event is dropped.
#![cfg(feature = "nats")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use cartwright::event::EventKind;
use cartwright::relay::nats::NatsSink;
use cartwright::relay::{Relay, Sink};
use common::{Backend, Shop};

const NATS: &str = "nats://127.0.0.1:4222";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_jetstream_once_each_in_order() {
    let shop = Shop::new(Backend::Memory).await;
    let run = uuid::Uuid::new_v4().simple().to_string();
    let prefix = format!("cwtest.{run}");
    let client = async_nats::connect(NATS).await.expect(
        "NATS with JetStream must be running at 127.0.0.1:4222 (scripts/test.sh starts it)",
    );
    let js = async_nats::jetstream::new(client);
    let stream = js
        .create_stream(async_nats::jetstream::stream::Config {
            name: format!("CWTEST_{run}"),
            subjects: vec![format!("{prefix}.>")],
            ..Default::default()
        })
        .await
        .unwrap();
    let orders: Vec<_> = (0..3).map(|_| cartwright::id::OrderId::new()).collect();
    for _ in 0..3 {
        let kinds = orders
            .iter()
            .map(|o| EventKind::OrderCancelled { order_id: *o })
            .collect();
        shop.engine
            .store()
            .record_events(kinds, chrono::Utc::now())
            .await
            .unwrap();
    }
    let sink = Arc::new(NatsSink::connect("nats", NATS, &prefix).await.unwrap());
    let relay = Relay::new(shop.engine.clone(), vec![sink.clone() as Arc<dyn Sink>]).unwrap();
    for _ in 0..10 {
        relay.run_once().await.unwrap();
    }
    let events = shop
        .engine
        .pending_events(&cartwright::Actor::System, "check", 100)
        .await
        .unwrap();
    let mut stream = stream;
    let stored = stream.info().await.unwrap().state.messages;
    assert_eq!(stored, events.len() as u64, "each event stored once");
    let mut last: HashMap<String, u64> = HashMap::new();
    for seq in 1..=stored {
        let message = stream.get_raw_message(seq).await.unwrap();
        let headers = message.headers.clone();
        let id = headers.get("Nats-Msg-Id").unwrap().to_string();
        let envelope: serde_json::Value = serde_json::from_slice(&message.payload).unwrap();
        assert_eq!(envelope["id"], id);
        assert_eq!(
            message.subject.to_string(),
            format!("{prefix}.{}", envelope["type"].as_str().unwrap())
        );
        let aggregate = envelope["aggregate"].as_str().unwrap().to_owned();
        let version = envelope["aggregateversion"].as_u64().unwrap();
        let before = last.insert(aggregate.clone(), version).unwrap_or(0);
        assert_eq!(version, before + 1, "{aggregate} out of order");
    }
    // The same event published again is dropped by JetStream.
    let again = events
        .iter()
        .find(|e| e.aggregate.starts_with("order:"))
        .unwrap();
    sink.deliver(again, &again.cloud_event("cartwright"))
        .await
        .unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, stored);
    js.delete_stream(format!("CWTEST_{run}")).await.unwrap();
}
