//! The relay's webhook sink on both stores, against receivers this test
//! starts on loopback: the sink conformance suite; signed requests the
//! receiver verifies with the public helper; retries, then a parked
//! delivery staff replay; an endpoint that keeps failing paused, its events
//! waiting in order until it is resumed; redirects not followed; addresses
//! outside the policy never reached; bad subscriptions refused with nothing
//! changed; a receiver that answers 10 MB, or never, bounded.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use cartwright::event::EventKind;
use cartwright::prelude::*;
use cartwright::relay::webhook::{WebhookDelivery, WebhookSender};
use cartwright::relay::{Relay, RelayConfig};
use cartwright::testkit::{SinkProbe, sink_conformance};
use cartwright::webhook::{
    NewWebhook, PauseReason, SIGNATURE_HEADER, WebhookPausing, WebhookPolicy, WebhookSecret,
    WebhookStatus, verify,
};
use common::{Backend, Shop, ShopOptions};

/// How a receiver answers.
const OK: u16 = 200;
const FAIL: u16 = 500;
const HUGE: u16 = 1;
const NEVER: u16 = 2;
const REDIRECT: u16 = 3;

#[derive(Default)]
struct Inner {
    /// Verified bodies, in arrival order.
    got: Mutex<Vec<serde_json::Value>>,
    /// Requests whose signature did not verify.
    forged: AtomicU64,
    /// Requests of any kind.
    hits: AtomicU64,
    answer: AtomicU16,
    secret: Mutex<Option<WebhookSecret>>,
    redirect_to: Mutex<String>,
}

/// A webhook receiver on loopback.
#[derive(Clone)]
struct Receiver {
    inner: Arc<Inner>,
    url: String,
}

async fn receive(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    inner.hits.fetch_add(1, Ordering::SeqCst);
    match inner.answer.load(Ordering::SeqCst) {
        NEVER => {
            tokio::time::sleep(StdDuration::from_secs(3_600)).await;
            return StatusCode::OK.into_response();
        }
        HUGE => return (StatusCode::INTERNAL_SERVER_ERROR, vec![b'x'; 10 << 20]).into_response(),
        REDIRECT => {
            let to = inner.redirect_to.lock().unwrap().clone();
            return (StatusCode::FOUND, [("location", to)]).into_response();
        }
        _ => {}
    }
    let secret = inner.secret.lock().unwrap().clone();
    let header = headers
        .get(SIGNATURE_HEADER)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let verified = secret.is_some_and(|s| {
        verify(
            &s,
            header,
            &body,
            chrono::Utc::now(),
            chrono::Duration::minutes(5),
        )
        .is_ok()
    });
    if !verified {
        inner.forged.fetch_add(1, Ordering::SeqCst);
        return StatusCode::UNAUTHORIZED.into_response();
    }
    assert_eq!(
        headers["content-type"].to_str().unwrap(),
        "application/cloudevents+json"
    );
    let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        headers["cartwright-event-id"].to_str().unwrap(),
        value["id"]
    );
    let answer = inner.answer.load(Ordering::SeqCst);
    if answer == OK {
        inner.got.lock().unwrap().push(value);
    }
    StatusCode::from_u16(answer).unwrap().into_response()
}

impl Receiver {
    async fn start() -> Self {
        let inner = Arc::new(Inner::default());
        inner.answer.store(OK, Ordering::SeqCst);
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { inner, url }
    }

    fn answer(&self, code: u16) {
        self.inner.answer.store(code, Ordering::SeqCst);
    }

    fn got(&self) -> Vec<serde_json::Value> {
        self.inner.got.lock().unwrap().clone()
    }
}

#[async_trait]
impl SinkProbe for Receiver {
    async fn received(&self) -> Result<Vec<serde_json::Value>, String> {
        Ok(self.got())
    }
}

fn loopback() -> WebhookPolicy {
    WebhookPolicy::default()
        .allow_http(true)
        .allowed_networks(vec!["127.0.0.0/8".parse().unwrap()])
}

async fn shop(backend: Backend, policy: WebhookPolicy) -> Shop {
    let config = cartwright::EngineConfig::default()
        .webhook_policy(policy)
        .webhook_pausing(
            WebhookPausing::default()
                .failures(4)
                .over(chrono::Duration::zero()),
        );
    Shop::with(
        backend,
        ShopOptions {
            config: Some(config),
            ..ShopOptions::default()
        },
    )
    .await
}

fn staff() -> Actor {
    Actor::Staff("wes".into())
}

fn sender(engine: &Engine) -> WebhookSender {
    WebhookSender::new(
        engine,
        WebhookDelivery::default().timeout(StdDuration::from_secs(2)),
    )
    .unwrap()
}

fn quick(retries: usize) -> RelayConfig {
    RelayConfig::default()
        .batch(50)
        .retry_schedule(vec![chrono::Duration::zero(); retries])
}

async fn subscribe(
    shop: &Shop,
    receiver: &Receiver,
    types: &[&str],
) -> cartwright::webhook::WebhookId {
    let made = shop
        .engine
        .create_webhook(
            &staff(),
            NewWebhook::new(&receiver.url, types.iter().copied()),
        )
        .await
        .unwrap();
    *receiver.inner.secret.lock().unwrap() = Some(made.secret.clone());
    made.id
}

async fn the_webhook_sink_passes_the_sink_conformance_suite(backend: Backend) {
    let shop = shop(backend, loopback()).await;
    let receiver = Receiver::start().await;
    let id = subscribe(&shop, &receiver, &["cartwright.order.*"]).await;
    let subscription = shop.engine.webhook(&staff(), id).await.unwrap();
    let sink = sender(&shop.engine).sink(subscription);
    let report = sink_conformance(shop.engine.clone(), sink, &receiver)
        .await
        .unwrap();
    assert!(report.checks >= 5);
    assert_eq!(receiver.inner.forged.load(Ordering::SeqCst), 0);
}

async fn subscriptions_get_signed_events_of_their_types_from_their_creation_on(backend: Backend) {
    let shop = shop(backend, loopback()).await;
    let before = cartwright::id::OrderId::new();
    common::cancel_orders(&shop.engine, &[before], 1).await;
    let receiver = Receiver::start().await;
    let id = subscribe(&shop, &receiver, &["cartwright.order.cancelled.v1"]).await;
    let orders: Vec<_> = (0..3).map(|_| cartwright::id::OrderId::new()).collect();
    common::cancel_orders(&shop.engine, &orders, 3).await;
    // Not wanted: another type.
    shop.engine
        .store()
        .record_events(
            vec![EventKind::PaymentVoided {
                order_id: orders[0],
            }],
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let relay = Relay::for_webhooks(shop.engine.clone(), sender(&shop.engine))
        .with_config(quick(2))
        .unwrap();
    for _ in 0..20 {
        relay.run_once().await.unwrap();
        if receiver.got().len() >= 9 {
            break;
        }
    }
    let got = receiver.got();
    assert_eq!(got.len(), 9, "{got:#?}");
    assert!(
        got.iter()
            .all(|v| v["type"] == "cartwright.order.cancelled.v1")
    );
    assert!(
        got.iter()
            .all(|v| v["subject"] != format!("order:{before}"))
    );
    for order in &orders {
        let versions: Vec<u64> = got
            .iter()
            .filter(|v| v["subject"] == format!("order:{order}"))
            .map(|v| v["aggregateversion"].as_u64().unwrap())
            .collect();
        assert_eq!(versions, [1, 2, 3]);
    }
    assert_eq!(receiver.inner.forged.load(Ordering::SeqCst), 0);
    let webhook = shop.engine.webhook(&staff(), id).await.unwrap();
    assert_eq!(webhook.failures, 0);
    assert_eq!(webhook.status, WebhookStatus::Active);
}

async fn a_failing_endpoint_is_retried_parked_paused_and_resumed_in_order(backend: Backend) {
    let shop = shop(backend, loopback()).await;
    let receiver = Receiver::start().await;
    let id = subscribe(&shop, &receiver, &["cartwright.order.*"]).await;
    let order = cartwright::id::OrderId::new();
    let other = cartwright::id::OrderId::new();
    common::cancel_orders(&shop.engine, &[order], 2).await;
    receiver.answer(FAIL);
    let relay = Relay::for_webhooks(shop.engine.clone(), sender(&shop.engine))
        .with_config(quick(1))
        .unwrap();
    // Two tries (the first and one retry), then parked.
    let mut parked = 0;
    for _ in 0..3 {
        parked += relay.run_once().await.unwrap().parked;
    }
    assert_eq!(parked, 1);
    let failed = shop
        .engine
        .failed_deliveries(&staff(), None, 10)
        .await
        .unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].aggregate, format!("order:{order}"));
    assert!(failed[0].error.contains("500"), "{}", failed[0].error);
    // More failures on another aggregate pause the endpoint (4 in a row).
    common::cancel_orders(&shop.engine, &[other], 2).await;
    for _ in 0..3 {
        relay.run_once().await.unwrap();
    }
    let webhook = shop.engine.webhook(&staff(), id).await.unwrap();
    assert!(
        matches!(
            webhook.status,
            WebhookStatus::Paused {
                reason: PauseReason::Failing,
                ..
            }
        ),
        "{webhook:?}"
    );
    // Paused: nothing is sent, whatever happens.
    let hits = receiver.inner.hits.load(Ordering::SeqCst);
    common::cancel_orders(&shop.engine, &[other], 1).await;
    relay.run_once().await.unwrap();
    assert_eq!(receiver.inner.hits.load(Ordering::SeqCst), hits);
    // Mended, resumed and the parked aggregate replayed: everything
    // arrives, each aggregate in order.
    receiver.answer(OK);
    shop.engine.resume_webhook(&staff(), id).await.unwrap();
    let sink = cartwright::webhook::sink_name(id);
    for failed in shop
        .engine
        .failed_deliveries(&staff(), Some(&sink), 10)
        .await
        .unwrap()
    {
        assert!(
            shop.engine
                .replay_delivery(&staff(), &sink, &failed.aggregate)
                .await
                .unwrap()
        );
    }
    for _ in 0..10 {
        relay.run_once().await.unwrap();
    }
    let got = receiver.got();
    for (o, n) in [(order, 2u64), (other, 3)] {
        let versions: Vec<u64> = got
            .iter()
            .filter(|v| v["subject"] == format!("order:{o}"))
            .map(|v| v["aggregateversion"].as_u64().unwrap())
            .collect();
        assert_eq!(versions, (1..=n).collect::<Vec<_>>(), "{got:#?}");
    }
    let webhook = shop.engine.webhook(&staff(), id).await.unwrap();
    assert_eq!(
        (webhook.status, webhook.failures),
        (WebhookStatus::Active, 0)
    );
    // Staff pause and delete.
    shop.engine.pause_webhook(&staff(), id).await.unwrap();
    assert!(matches!(
        shop.engine.webhook(&staff(), id).await.unwrap().status,
        WebhookStatus::Paused {
            reason: PauseReason::Staff,
            ..
        }
    ));
    shop.engine.delete_webhook(&staff(), id).await.unwrap();
    assert!(matches!(
        shop.engine.webhook(&staff(), id).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        shop.engine.pause_webhook(&staff(), id).await,
        Err(Error::NotFound { .. })
    ));
}

async fn redirects_are_not_followed_and_refused_addresses_not_reached(backend: Backend) {
    let shop = shop(backend, loopback()).await;
    let receiver = Receiver::start().await;
    let elsewhere = Receiver::start().await;
    *receiver.inner.redirect_to.lock().unwrap() = elsewhere.url.clone();
    receiver.answer(REDIRECT);
    subscribe(&shop, &receiver, &["cartwright.order.*"]).await;
    *elsewhere.inner.secret.lock().unwrap() = receiver.inner.secret.lock().unwrap().clone();
    common::cancel_orders(&shop.engine, &[cartwright::id::OrderId::new()], 1).await;
    let relay = Relay::for_webhooks(shop.engine.clone(), sender(&shop.engine))
        .with_config(quick(0))
        .unwrap();
    relay.run_once().await.unwrap();
    assert_eq!(elsewhere.inner.hits.load(Ordering::SeqCst), 0);
    let failed = shop
        .engine
        .failed_deliveries(&staff(), None, 10)
        .await
        .unwrap();
    assert!(failed[0].error.contains("redirected"), "{failed:?}");

    // An instance whose policy does not allow loopback never reaches the
    // subscription another instance made: the delivery is parked at once.
    let strict = WebhookPolicy::default().allow_http(true);
    let config = cartwright::EngineConfig::default().webhook_policy(strict);
    let other = cartwright::Engine::builder()
        .store(shop.engine.store().clone())
        .test_payment_provider()
        .no_tax()
        .config(config)
        .build()
        .unwrap();
    let target = Receiver::start().await;
    subscribe(&shop, &target, &["cartwright.order.*"]).await;
    common::cancel_orders(&shop.engine, &[cartwright::id::OrderId::new()], 1).await;
    let relay = Relay::for_webhooks(other.clone(), sender(&other))
        .with_config(quick(3))
        .unwrap();
    let report = relay.run_once().await.unwrap();
    assert_eq!(target.inner.hits.load(Ordering::SeqCst), 0);
    assert!(report.parked >= 1, "{report:?}");
}

async fn bad_subscriptions_are_refused_and_change_nothing(backend: Backend) {
    let shop = shop(backend, WebhookPolicy::default()).await;
    let before = shop.snapshot().await;
    let long_secret = "s".repeat(10_000);
    let bad: Vec<(NewWebhook, &str)> = vec![
        (NewWebhook::new("not a url", ["*"]), "url"),
        (NewWebhook::new("http://example.com/h", ["*"]), "https"),
        (NewWebhook::new("https://127.0.0.1/h", ["*"]), "loopback"),
        (
            NewWebhook::new("https://169.254.169.254/latest", ["*"]),
            "metadata",
        ),
        (NewWebhook::new("https://[::1]/h", ["*"]), "v6 loopback"),
        (NewWebhook::new("https://localhost/h", ["*"]), "localhost"),
        (
            NewWebhook::new("https://example.com/h", ["cartwright.nothing.v1"]),
            "unknown type",
        ),
        (
            NewWebhook::new("https://example.com/h", Vec::<String>::new()),
            "no type",
        ),
        (
            NewWebhook::new("https://example.com/h", vec!["*"; 65]),
            "too many types",
        ),
        (
            NewWebhook::new("https://example.com/h", ["*"]).description("x".repeat(501)),
            "long description",
        ),
        (
            NewWebhook::new(format!("https://example.com/{}", "a".repeat(3_000)), ["*"]),
            "long url",
        ),
    ];
    for (webhook, why) in bad {
        let err = shop.engine.create_webhook(&staff(), webhook).await;
        assert!(
            matches!(
                err,
                Err(Error::Invalid { .. } | Error::LimitExceeded { .. })
            ),
            "{why}: {err:?}"
        );
    }
    for secret in [
        "",
        "short",
        long_secret.as_str(),
        "with spaces in it, twenty-four+",
    ] {
        assert!(WebhookSecret::new(secret).is_err(), "{secret:.20}");
    }
    assert!(matches!(
        shop.engine
            .create_webhook(
                &Actor::Guest,
                NewWebhook::new("https://example.com/h", ["*"])
            )
            .await,
        Err(Error::Forbidden)
    ));
    assert!(shop.engine.webhooks(&staff()).await.unwrap().is_empty());
    assert!(
        shop.snapshot().await == before,
        "a refused subscription changed the store"
    );
    // The limit on subscriptions.
    for _ in 0..cartwright::webhook::MAX_WEBHOOKS {
        shop.engine
            .create_webhook(&staff(), NewWebhook::new("https://example.com/h", ["*"]))
            .await
            .unwrap();
    }
    assert!(matches!(
        shop.engine
            .create_webhook(&staff(), NewWebhook::new("https://example.com/h", ["*"]))
            .await,
        Err(Error::LimitExceeded { .. })
    ));
}

async fn a_receiver_that_answers_ten_megabytes_or_never_is_bounded(backend: Backend) {
    let shop = shop(backend, loopback()).await;
    let receiver = Receiver::start().await;
    subscribe(&shop, &receiver, &["cartwright.order.*"]).await;
    common::cancel_orders(&shop.engine, &[cartwright::id::OrderId::new()], 1).await;
    let relay = Relay::for_webhooks(shop.engine.clone(), sender(&shop.engine))
        .with_config(quick(1))
        .unwrap();
    receiver.answer(HUGE);
    let report = relay.run_once().await.unwrap();
    assert_eq!(report.retried, 1, "{report:?}");
    receiver.answer(NEVER);
    let started = std::time::Instant::now();
    let report = relay.run_once().await.unwrap();
    assert_eq!(report.parked, 1, "{report:?}");
    // The two-second timeout, not the receiver's hour.
    assert!(started.elapsed() < StdDuration::from_secs(30));
    let failed = shop
        .engine
        .failed_deliveries(&staff(), None, 10)
        .await
        .unwrap();
    assert!(failed[0].error.contains("in time"), "{failed:?}");
    assert!(failed[0].error.chars().count() <= cartwright::store::MAX_DELIVERY_ERROR_LEN);
}

conformance!(
    the_webhook_sink_passes_the_sink_conformance_suite,
    subscriptions_get_signed_events_of_their_types_from_their_creation_on,
    a_failing_endpoint_is_retried_parked_paused_and_resumed_in_order,
    redirects_are_not_followed_and_refused_addresses_not_reached,
    bad_subscriptions_are_refused_and_change_nothing,
    a_receiver_that_answers_ten_megabytes_or_never_is_bounded,
);
