//! The relay's RabbitMQ sink against the real broker at 127.0.0.1:5672
//! (the README's test command starts it), on both stores: the sink
//! conformance suite, and a broker stopped and started again mid-stream
//! with nothing lost, duplicates only with the same id and each
//! aggregate's events in order. The tests share the broker, so they run
//! one at a time.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use cartwright::event::EventKind;
use cartwright::relay::rabbitmq::RabbitMqSink;
use cartwright::relay::{Relay, RelayConfig};
use cartwright::testkit::{SinkProbe, sink_conformance};
use common::{Backend, Shop};
use lapin::options::{
    BasicGetOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};

const URI: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// One test at a time: one of them stops the broker.
static BROKER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A durable topic exchange with a durable queue bound to every type, and
/// what the queue held, read back.
struct Queue {
    exchange: String,
    queue: String,
    channel: tokio::sync::Mutex<Option<(Connection, Channel)>>,
    got: tokio::sync::Mutex<Vec<serde_json::Value>>,
}

async fn open() -> Result<(Connection, Channel), lapin::Error> {
    let connection = Connection::connect(URI, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    Ok((connection, channel))
}

impl Queue {
    async fn declare() -> Self {
        let tag = cartwright::deps::uuid::Uuid::new_v4().simple().to_string();
        let (exchange, queue) = (format!("cw-test-{tag}"), format!("cw-test-q-{tag}"));
        let (connection, channel) = open().await.expect("RabbitMQ at 127.0.0.1:5672");
        channel
            .exchange_declare(
                exchange.as_str().into(),
                ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    durable: true,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        channel
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions::durable(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        channel
            .queue_bind(
                queue.as_str().into(),
                exchange.as_str().into(),
                "cartwright.#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        Self {
            exchange,
            queue,
            channel: tokio::sync::Mutex::new(Some((connection, channel))),
            got: tokio::sync::Mutex::new(Vec::new()),
        }
    }

    /// Moves what the queue holds into `got`; `false` when the broker
    /// cannot be read now.
    async fn drain(&self) -> bool {
        let mut held = self.channel.lock().await;
        if held
            .as_ref()
            .is_none_or(|(c, ch)| !c.status().connected() || !ch.status().connected())
        {
            *held = open().await.ok();
        }
        let Some((_, channel)) = held.as_ref() else {
            return false;
        };
        loop {
            match channel
                .basic_get(self.queue.as_str().into(), BasicGetOptions { no_ack: true })
                .await
            {
                Ok(Some(message)) => {
                    let value: serde_json::Value =
                        serde_json::from_slice(&message.delivery.data).unwrap();
                    let properties = &message.delivery.properties;
                    assert_eq!(
                        properties.message_id().as_ref().map(|m| m.as_str()),
                        value["id"].as_str()
                    );
                    assert_eq!(*properties.delivery_mode(), Some(2));
                    assert_eq!(
                        message.delivery.routing_key.as_str(),
                        value["type"].as_str().unwrap()
                    );
                    self.got.lock().await.push(value);
                }
                Ok(None) => return true,
                Err(_) => {
                    *held = None;
                    return false;
                }
            }
        }
    }

    async fn delete(&self) {
        if let Some((_, channel)) = self.channel.lock().await.as_ref() {
            let _ = channel
                .queue_delete(self.queue.as_str().into(), QueueDeleteOptions::default())
                .await;
            let _ = channel
                .exchange_delete(self.exchange.as_str().into(), Default::default())
                .await;
        }
    }
}

#[async_trait]
impl SinkProbe for Queue {
    async fn received(&self) -> Result<Vec<serde_json::Value>, String> {
        if !self.drain().await {
            return Err("the queue cannot be read".into());
        }
        Ok(self.got.lock().await.clone())
    }
}

async fn rabbitmqctl(args: &[&str]) {
    let status = tokio::process::Command::new("rabbitmqctl")
        .args(args)
        .status()
        .await
        .expect("rabbitmqctl");
    assert!(status.success(), "rabbitmqctl {args:?}: {status}");
}

async fn the_rabbitmq_sink_passes_the_sink_conformance_suite(backend: Backend) {
    let _one = BROKER.lock().await;
    let shop = Shop::new(backend).await;
    let queue = Queue::declare().await;
    let sink = Arc::new(
        RabbitMqSink::connect("rabbit", URI, &queue.exchange)
            .await
            .unwrap(),
    );
    let report = sink_conformance(shop.engine.clone(), sink, &queue)
        .await
        .unwrap();
    assert!(report.checks >= 5);
    queue.delete().await;
}

async fn nothing_is_lost_when_the_broker_stops_and_starts_mid_stream(backend: Backend) {
    let _one = BROKER.lock().await;
    let shop = Shop::new(backend).await;
    let queue = Queue::declare().await;
    let sink = Arc::new(
        RabbitMqSink::connect("rabbit", URI, &queue.exchange)
            .await
            .unwrap(),
    );
    let orders: Vec<_> = (0..8).map(|_| cartwright::id::OrderId::new()).collect();
    common::cancel_orders(&shop.engine, &orders, 5).await;
    let wanted: HashSet<String> = orders.iter().map(|o| format!("order:{o}")).collect();
    // Retries every second (the manual clock runs at twice real time),
    // long enough to outlast the outage.
    let relay = Relay::new(shop.engine.clone(), vec![sink])
        .unwrap()
        .with_config(RelayConfig::default().batch(4).retry_schedule(vec![
            chrono::Duration::seconds(
                1
            );
            100
        ]))
        .unwrap();
    let clock = shop.clock.clone();
    let running = tokio::spawn(async move {
        loop {
            let _ = relay.run_once().await;
            clock.advance(chrono::Duration::milliseconds(100));
            tokio::time::sleep(StdDuration::from_millis(50)).await;
        }
    });
    let mine = |got: &[serde_json::Value]| -> Vec<serde_json::Value> {
        got.iter()
            .filter(|v| v["subject"].as_str().is_some_and(|s| wanted.contains(s)))
            .cloned()
            .collect()
    };
    // Some are through; then the broker stops and starts again.
    for _ in 0..200 {
        queue.drain().await;
        if mine(&queue.got.lock().await).len() >= 4 {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    }
    let through = mine(&queue.got.lock().await).len();
    assert!(
        (4..40).contains(&through),
        "{through} through before the stop"
    );
    rabbitmqctl(&["-q", "stop_app"]).await;
    tokio::time::sleep(StdDuration::from_secs(1)).await;
    rabbitmqctl(&["-q", "start_app"]).await;
    rabbitmqctl(&["-q", "await_startup"]).await;
    let mut arrived = Vec::new();
    for _ in 0..1_200 {
        queue.drain().await;
        arrived = mine(&queue.got.lock().await);
        let distinct: HashSet<&str> = arrived.iter().filter_map(|v| v["id"].as_str()).collect();
        if distinct.len() >= 40 {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    running.abort();
    let distinct: HashSet<&str> = arrived.iter().filter_map(|v| v["id"].as_str()).collect();
    assert_eq!(distinct.len(), 40, "events lost across the restart");
    // Duplicates are the same event, whole; first arrivals in order.
    let mut first: HashMap<&str, &serde_json::Value> = HashMap::new();
    let mut last: HashMap<&str, u64> = HashMap::new();
    for v in &arrived {
        let id = v["id"].as_str().unwrap();
        if let Some(earlier) = first.get(id) {
            assert_eq!(*earlier, v, "a duplicate that differs");
            continue;
        }
        first.insert(id, v);
        let subject = v["subject"].as_str().unwrap();
        let version = v["aggregateversion"].as_u64().unwrap();
        let before = last.insert(subject, version).unwrap_or(0);
        assert_eq!(version, before + 1, "{subject} out of order");
    }
    queue.delete().await;
}

async fn a_type_no_queue_takes_fails_instead_of_vanishing(backend: Backend) {
    let _one = BROKER.lock().await;
    let shop = Shop::new(backend).await;
    let queue = Queue::declare().await;
    // Unbind everything: nothing would take the message.
    if let Some((_, channel)) = queue.channel.lock().await.as_ref() {
        channel
            .queue_unbind(
                queue.queue.as_str().into(),
                queue.exchange.as_str().into(),
                "cartwright.#".into(),
                FieldTable::default(),
            )
            .await
            .unwrap();
    }
    let sink = RabbitMqSink::connect("rabbit", URI, &queue.exchange)
        .await
        .unwrap();
    let event = cartwright::event::Event::new(
        cartwright::id::EventId::new(),
        1,
        chrono::Utc::now(),
        EventKind::OrderCancelled {
            order_id: cartwright::id::OrderId::new(),
        },
        1,
    );
    let envelope = event.cloud_event("test");
    let refused = cartwright::relay::Sink::deliver(&sink, &event, &envelope).await;
    let error = refused.unwrap_err();
    assert!(error.message.contains("no queue is bound"), "{error}");
    assert!(!error.permanent);
    assert!(
        RabbitMqSink::connect("rabbit", URI, "bad exchange!")
            .await
            .is_err()
    );
    drop(shop);
    queue.delete().await;
}

conformance!(
    the_rabbitmq_sink_passes_the_sink_conformance_suite,
    nothing_is_lost_when_the_broker_stops_and_starts_mid_stream,
    a_type_no_queue_takes_fails_instead_of_vanishing,
);
