//! The `metrics` feature: counters and histograms through the facade, seen
//! by whatever recorder the program installs (here a debugging one). One
//! test per binary, since a recorder is global.
#![cfg(feature = "metrics")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use cartwright::payment::{Fault, Operation};
use common::{Backend, Shop, request};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

/// A metric's name, labels and value.
type Seen = (String, Vec<(String, String)>, DebugValue);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkouts_provider_calls_and_pricing_are_counted() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().unwrap();

    let shop = Shop::new(Backend::Memory).await;
    let a = shop.product("A", "10.00", 5).await;
    let paid = shop.ready_cart(&[(a, 1)]).await;
    shop.place(paid.id(), "k1").await;
    let declined = shop.ready_cart(&[(a, 1)]).await;
    let mut req = request(declined.id(), "k2");
    req.payment_token = "tok_decline".into();
    assert!(shop.engine.checkout(req).await.is_err());
    shop.payments.inject(Operation::Capture, Fault::Unavailable);
    let pending = shop.ready_cart(&[(a, 1)]).await;
    shop.place(pending.id(), "k3").await;

    // The relay: one aggregate delivered, one refused and parked.
    struct Refusing;
    #[async_trait::async_trait]
    impl cartwright::relay::Sink for Refusing {
        fn name(&self) -> &str {
            "erp"
        }
        async fn deliver(
            &self,
            event: &cartwright::event::Event,
            _: &serde_json::Value,
        ) -> Result<(), cartwright::relay::SinkError> {
            match event.kind {
                cartwright::event::EventKind::PaymentVoided { .. } => {
                    Err(cartwright::relay::SinkError::permanent("refused"))
                }
                _ => Ok(()),
            }
        }
    }
    shop.engine
        .store()
        .record_events(
            vec![cartwright::event::EventKind::PaymentVoided {
                order_id: cartwright::id::OrderId::new(),
            }],
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let relay =
        cartwright::relay::Relay::new(shop.engine.clone(), vec![std::sync::Arc::new(Refusing)])
            .unwrap();
    for _ in 0..5 {
        relay.run_once().await.unwrap();
    }

    let seen: Vec<Seen> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let k = key.key();
            let labels = k
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            (k.name().to_owned(), labels, value)
        })
        .collect();
    let counter = |name: &str, label: (&str, &str)| {
        seen.iter()
            .filter(|(n, labels, _)| {
                n == name && labels.iter().any(|(k, v)| k == label.0 && v == label.1)
            })
            .map(|(_, _, v)| match v {
                DebugValue::Counter(c) => *c,
                _ => 0,
            })
            .sum::<u64>()
    };
    assert_eq!(
        counter("cartwright_checkouts_total", ("outcome", "paid")),
        1
    );
    assert_eq!(
        counter("cartwright_checkouts_total", ("outcome", "declined")),
        1
    );
    assert_eq!(
        counter("cartwright_checkouts_total", ("outcome", "capture_pending")),
        1
    );
    assert_eq!(
        counter("cartwright_provider_calls_total", ("result", "unavailable")),
        1
    );
    assert!(
        counter(
            "cartwright_provider_calls_total",
            ("operation", "authorize")
        ) >= 3
    );
    assert!(seen.iter().any(|(n, _, v)| {
        n == "cartwright_pricing_seconds" && matches!(v, DebugValue::Histogram(h) if !h.is_empty())
    }));
    assert!(
        counter(
            "cartwright_relay_deliveries_total",
            ("outcome", "delivered")
        ) >= 3
    );
    assert_eq!(
        counter("cartwright_relay_deliveries_total", ("outcome", "parked")),
        1
    );
    assert!(
        seen.iter()
            .any(|(n, labels, v)| n == "cartwright_relay_lag_seconds"
                && labels.iter().any(|(k, s)| k == "sink" && s == "erp")
                && matches!(v, DebugValue::Histogram(h) if !h.is_empty()))
    );
}
