//! The relay's NATS JetStream sink against a real NATS server (the README's
//! test command starts it): every event stored once in the stream under
//! its type's subject, each aggregate's in order, with the event id as
//! `Nats-Msg-Id` so a second publish of one event is dropped; the sink
//! conformance suite; and, on a server of the test's own, nothing lost when
//! the server stops and starts again mid-stream.
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
    common::cancel_orders(&shop.engine, &orders, 3).await;
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

/// A stream's messages, read back in order.
struct StreamProbe {
    js: async_nats::jetstream::Context,
    name: String,
}

#[async_trait::async_trait]
impl cartwright::testkit::SinkProbe for StreamProbe {
    async fn received(&self) -> Result<Vec<serde_json::Value>, String> {
        let mut stream = self
            .js
            .get_stream(&self.name)
            .await
            .map_err(|e| e.to_string())?;
        let state = stream
            .info()
            .await
            .map_err(|e| e.to_string())?
            .state
            .clone();
        let mut out = Vec::new();
        if state.messages == 0 {
            return Ok(out);
        }
        for seq in state.first_sequence..=state.last_sequence {
            let message = stream
                .get_raw_message(seq)
                .await
                .map_err(|e| e.to_string())?;
            out.push(serde_json::from_slice(&message.payload).map_err(|e| e.to_string())?);
        }
        Ok(out)
    }
}

async fn stream_for(js: &async_nats::jetstream::Context, prefix: &str, name: &str) {
    js.create_stream(async_nats::jetstream::stream::Config {
        name: name.to_owned(),
        subjects: vec![format!("{prefix}.>")],
        storage: async_nats::jetstream::stream::StorageType::File,
        ..Default::default()
    })
    .await
    .unwrap();
}

async fn the_nats_sink_passes_the_sink_conformance_suite(backend: Backend) {
    let shop = Shop::new(backend).await;
    let run = uuid::Uuid::new_v4().simple().to_string();
    let (prefix, name) = (format!("cwconf.{run}"), format!("CWCONF_{run}"));
    let js = async_nats::jetstream::new(async_nats::connect(NATS).await.unwrap());
    stream_for(&js, &prefix, &name).await;
    let sink = Arc::new(NatsSink::connect("nats", NATS, &prefix).await.unwrap());
    let probe = StreamProbe {
        js: js.clone(),
        name: name.clone(),
    };
    let report = cartwright::testkit::sink_conformance(shop.engine.clone(), sink, &probe)
        .await
        .unwrap();
    assert!(report.checks >= 5);
    js.delete_stream(&name).await.unwrap();
}

/// A NATS server of the test's own, on a free port with its own store, so
/// stopping it disturbs no other test.
struct OwnServer {
    port: u16,
    dir: std::path::PathBuf,
    child: Option<tokio::process::Child>,
}

impl OwnServer {
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("cw-nats-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut server = Self {
            port,
            dir,
            child: None,
        };
        server.run().await;
        server
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    async fn run(&mut self) {
        let binary = ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .unwrap_or("nats-server");
        let child = tokio::process::Command::new(binary)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(&self.dir)
            .kill_on_drop(true)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nats-server (scripts/test.sh installs it)");
        self.child = Some(child);
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the test's NATS server did not start");
    }

    /// Stops it as an operator would (SIGTERM: it flushes its store).
    async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id().unwrap();
            let status = tokio::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await
                .unwrap();
            assert!(status.success());
            let _ = tokio::time::timeout(std::time::Duration::from_secs(10), child.wait()).await;
        }
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn nothing_is_lost_when_the_nats_server_stops_and_starts_mid_stream(backend: Backend) {
    let shop = Shop::new(backend).await;
    let mut server = OwnServer::start().await;
    let (prefix, name) = ("cwrestart", "CWRESTART");
    let js = async_nats::jetstream::new(async_nats::connect(server.url()).await.unwrap());
    stream_for(&js, prefix, name).await;
    let orders: Vec<_> = (0..8).map(|_| cartwright::id::OrderId::new()).collect();
    common::cancel_orders(&shop.engine, &orders, 5).await;
    let wanted: std::collections::HashSet<String> =
        orders.iter().map(|o| format!("order:{o}")).collect();
    let sink = Arc::new(
        NatsSink::connect("nats", &server.url(), prefix)
            .await
            .unwrap(),
    );
    let relay = Relay::new(shop.engine.clone(), vec![sink as Arc<dyn Sink>])
        .unwrap()
        .with_config(
            cartwright::relay::RelayConfig::default()
                .batch(4)
                .lease(chrono::Duration::seconds(10))
                .retry_schedule(vec![chrono::Duration::seconds(1); 100]),
        )
        .unwrap();
    let clock = shop.clock.clone();
    let running = tokio::spawn(async move {
        loop {
            let _ = relay.run_once().await;
            clock.advance(chrono::Duration::milliseconds(100));
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    });
    let probe = StreamProbe {
        js: js.clone(),
        name: name.to_owned(),
    };
    let mine = |got: Vec<serde_json::Value>| -> Vec<serde_json::Value> {
        got.into_iter()
            .filter(|v| v["subject"].as_str().is_some_and(|s| wanted.contains(s)))
            .collect()
    };
    use cartwright::testkit::SinkProbe;
    let mut through = 0;
    for _ in 0..400 {
        through = mine(probe.received().await.unwrap_or_default()).len();
        if through >= 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert!(
        (4..40).contains(&through),
        "{through} through before the stop"
    );
    server.stop().await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    server.run().await;
    let mut arrived = Vec::new();
    for _ in 0..600 {
        arrived = mine(probe.received().await.unwrap_or_default());
        let distinct: std::collections::HashSet<&str> =
            arrived.iter().filter_map(|v| v["id"].as_str()).collect();
        if distinct.len() >= 40 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    running.abort();
    let distinct: std::collections::HashSet<&str> =
        arrived.iter().filter_map(|v| v["id"].as_str()).collect();
    assert_eq!(distinct.len(), 40, "events lost across the restart");
    let mut seen = std::collections::HashSet::new();
    let mut last: HashMap<String, u64> = HashMap::new();
    for v in &arrived {
        if !seen.insert(v["id"].as_str().unwrap().to_owned()) {
            continue;
        }
        let subject = v["subject"].as_str().unwrap().to_owned();
        let version = v["aggregateversion"].as_u64().unwrap();
        let before = last.insert(subject.clone(), version).unwrap_or(0);
        assert_eq!(version, before + 1, "{subject} out of order");
    }
    server.stop().await;
}

conformance!(
    the_nats_sink_passes_the_sink_conformance_suite,
    nothing_is_lost_when_the_nats_server_stops_and_starts_mid_stream,
);
