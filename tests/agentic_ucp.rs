//! The Universal Commerce Protocol service on both stores, through its own
//! request handler (the official conformance suite runs against
//! `examples/ucp_merchant` in `scripts/ucp_conformance.sh`): agents kept
//! apart on sessions and orders; replays byte for byte from another
//! instance, conflicts for another body; version negotiation; hostile
//! input refused with nothing changed; a profile URL outside the shop's
//! webhook policy never fetched; order webhooks signed with a detached
//! ES256 JWS that verifies against the published key.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, HeaderValue, Method};
use cartwright::agentic::AgentAuth;
use cartwright::agentic::ucp::{SigningKey, UcpConfig, UcpMerchant, Version};
use cartwright::prelude::*;
use cartwright::webhook::WebhookPolicy;
use common::{Backend, Shop, ShopOptions};
use serde_json::{Value, json};

/// Requests a test receiver got.
type Received = Arc<Mutex<Vec<(HeaderMap, Vec<u8>)>>>;

/// The agent is named by an `X-Agent` header (the tests' own scheme).
struct HeaderAgent;

impl AgentAuth for HeaderAgent {
    fn authenticate(&self, headers: &HeaderMap) -> Option<String> {
        headers.get("x-agent")?.to_str().ok().map(str::to_owned)
    }
}

struct Ucp {
    shop: Shop,
    merchant: UcpMerchant,
    key: SigningKey,
}

fn headers(agent: &str, key: Option<&str>, profile: Option<&str>) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("x-agent", HeaderValue::from_str(agent).unwrap());
    let mut ucp = "version=\"2026-01-11\"".to_owned();
    if let Some(p) = profile {
        ucp = format!("profile=\"{p}\"; {ucp}");
    }
    h.insert("ucp-agent", HeaderValue::from_str(&ucp).unwrap());
    if let Some(k) = key {
        h.insert("idempotency-key", HeaderValue::from_str(k).unwrap());
    }
    h
}

fn merchant(engine: Engine, key: &SigningKey) -> UcpMerchant {
    let config = UcpConfig::new("https://shop.example/".parse().unwrap())
        .auth(Arc::new(HeaderAgent))
        .signing_key(key.clone());
    UcpMerchant::new(engine, config).unwrap()
}

impl Ucp {
    async fn new(backend: Backend) -> Self {
        let policy = WebhookPolicy::default()
            .allow_http(true)
            .allowed_networks(vec!["127.0.0.0/8".parse().unwrap()]);
        let shop = Shop::with(
            backend,
            ShopOptions {
                config: Some(cartwright::EngineConfig::default().webhook_policy(policy)),
                ..ShopOptions::default()
            },
        )
        .await;
        shop.product("ROSE", "35.00", 5).await;
        let key = SigningKey::generate();
        let merchant = merchant(shop.engine.clone(), &key);
        Self {
            shop,
            merchant,
            key,
        }
    }

    async fn call(
        &self,
        agent: &str,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Vec<u8>) {
        let body = body
            .map(|b| serde_json::to_vec(&b).unwrap())
            .unwrap_or_default();
        self.merchant
            .handle(&method, path, &headers(agent, key, None), &body)
            .await
    }
}

fn create_body(quantity: u64) -> Value {
    json!({
        "currency": "USD",
        "line_items": [{"item": {"id": "ROSE", "title": "ignored"}, "quantity": quantity}],
        "payment": {},
        "fulfillment": {"methods": [{"type": "shipping",
            "destinations": [{"id": "home", "street_address": "1 Rose Lane", "address_locality": "Springfield", "postal_code": "62704", "address_country": "US", "full_name": "Ada"}],
            "selected_destination_id": "home", "groups": [{"selected_option_id": "standard"}]}]},
        "buyer": {"email": "ada@example.com", "first_name": "Ada"},
    })
}

fn complete_body(token: &str) -> Value {
    json!({"payment_data": {"handler_id": "h", "credential": {"type": "token", "token": token}}})
}

fn parse(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap()
}

async fn agents_are_kept_apart(backend: Backend) {
    let ucp = Ucp::new(backend).await;
    let (status, body) = ucp
        .call(
            "agent-a",
            Method::POST,
            "checkout-sessions",
            None,
            Some(create_body(1)),
        )
        .await;
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let session = parse(&body);
    assert_eq!(session["status"], "ready_for_complete");
    assert_eq!(
        session["line_items"][0]["item"]["price"], 3500,
        "the catalogue price, not the agent's"
    );
    let id = session["id"].as_str().unwrap();
    for (method, path, body) in [
        (Method::GET, format!("checkout-sessions/{id}"), None),
        (
            Method::PUT,
            format!("checkout-sessions/{id}"),
            Some(create_body(2)),
        ),
        (
            Method::POST,
            format!("checkout-sessions/{id}/complete"),
            Some(complete_body("tok_visa")),
        ),
        (Method::POST, format!("checkout-sessions/{id}/cancel"), None),
    ] {
        let (status, _) = ucp.call("agent-b", method, &path, None, body).await;
        assert_eq!(status, 404, "{path}");
    }
    let (status, body) = ucp
        .call(
            "agent-a",
            Method::POST,
            &format!("checkout-sessions/{id}/complete"),
            None,
            Some(complete_body("tok_visa")),
        )
        .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let order = parse(&body)["order"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        ucp.call(
            "agent-b",
            Method::GET,
            &format!("orders/{order}"),
            None,
            None
        )
        .await
        .0,
        404
    );
    let (status, body) = ucp
        .call(
            "agent-a",
            Method::GET,
            &format!("orders/{order}"),
            None,
            None,
        )
        .await;
    assert_eq!(status, 200);
    let order_json = parse(&body);
    assert_eq!(order_json["checkout_id"], id);
    assert_eq!(
        order_json["fulfillment"]["expectations"][0]["destination"]["street_address"],
        "1 Rose Lane"
    );
    assert_eq!(ucp.shop.payments.authorizations().len(), 1);
    // Staff see the order through the engine, never through the protocol.
    let (status, _) = ucp
        .call("", Method::GET, &format!("orders/{order}"), None, None)
        .await;
    assert_eq!(status, 401, "an empty agent name is no agent");
}

async fn replays_hold_across_instances(backend: Backend) {
    let ucp = Ucp::new(backend).await;
    let first = ucp
        .call(
            "agent-a",
            Method::POST,
            "checkout-sessions",
            Some("k1"),
            Some(create_body(1)),
        )
        .await;
    let other = merchant(ucp.shop.second_engine().await, &ucp.key);
    let body = serde_json::to_vec(&create_body(1)).unwrap();
    let again = other
        .handle(
            &Method::POST,
            "checkout-sessions",
            &headers("agent-a", Some("k1"), None),
            &body,
        )
        .await;
    assert_eq!(again, first, "the stored answer, byte for byte");
    let conflict = ucp
        .call(
            "agent-a",
            Method::POST,
            "checkout-sessions",
            Some("k1"),
            Some(create_body(2)),
        )
        .await;
    assert_eq!(conflict.0, 409);
    // Another agent's k1 is its own.
    let theirs = ucp
        .call(
            "agent-b",
            Method::POST,
            "checkout-sessions",
            Some("k1"),
            Some(create_body(1)),
        )
        .await;
    assert_eq!(theirs.0, 201);
    assert_ne!(parse(&theirs.1)["id"], parse(&first.1)["id"]);
    // A repeated complete replays; a new one on the completed session is refused.
    let id = parse(&first.1)["id"].as_str().unwrap().to_owned();
    let path = format!("checkout-sessions/{id}/complete");
    let done = ucp
        .call(
            "agent-a",
            Method::POST,
            &path,
            Some("c1"),
            Some(complete_body("tok_visa")),
        )
        .await;
    assert_eq!(done.0, 200);
    assert_eq!(
        ucp.call(
            "agent-a",
            Method::POST,
            &path,
            Some("c1"),
            Some(complete_body("tok_visa"))
        )
        .await,
        done
    );
    assert_eq!(
        ucp.call(
            "agent-a",
            Method::POST,
            &path,
            Some("c2"),
            Some(complete_body("tok_visa"))
        )
        .await
        .0,
        409
    );
    assert_eq!(ucp.shop.payments.authorizations().len(), 1);
}

async fn versions_are_negotiated(backend: Backend) {
    let ucp = Ucp::new(backend).await;
    assert_eq!(Version::negotiate(None).unwrap(), Version::V2026_01_11);
    assert_eq!(
        Version::negotiate(Some("profile=\"x\"; version=\"2026-01-11\"")).unwrap(),
        Version::V2026_01_11
    );
    assert!(Version::negotiate(Some("version=\"2099-01-01\"")).is_err());
    assert!(Version::negotiate(Some("version=\"2025-01-01\"")).is_err());
    assert!(Version::negotiate(Some("version=\"yesterday\"")).is_err());
    let mut h = headers("agent-a", None, None);
    h.insert(
        "ucp-agent",
        HeaderValue::from_static("version=\"2099-01-01\""),
    );
    let body = serde_json::to_vec(&create_body(1)).unwrap();
    let (status, answer) = ucp
        .merchant
        .handle(&Method::POST, "checkout-sessions", &h, &body)
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        parse(&answer)["detail"]["errors"][0]["code"],
        "VERSION_UNSUPPORTED"
    );
    let profile = ucp.merchant.profile();
    assert_eq!(profile["ucp"]["version"], "2026-01-11");
    assert_eq!(
        profile["ucp"]["services"]["dev.ucp.shopping"]["rest"]["endpoint"],
        "https://shop.example/"
    );
}

async fn hostile_input_changes_nothing(backend: Backend) {
    let ucp = Ucp::new(backend).await;
    let (_, body) = ucp
        .call(
            "agent-a",
            Method::POST,
            "checkout-sessions",
            None,
            Some(create_body(1)),
        )
        .await;
    let id = parse(&body)["id"].as_str().unwrap().to_owned();
    let path = format!("checkout-sessions/{id}");
    let before = ucp.call("agent-a", Method::GET, &path, None, None).await.1;
    let with_items = |items: Value| json!({"currency": "USD", "line_items": items});
    for (what, body) in [
        ("malformed", b"{".to_vec()),
        ("zero", serde_json::to_vec(&with_items(json!([{"item": {"id": "ROSE"}, "quantity": 0}]))).unwrap()),
        ("negative", serde_json::to_vec(&with_items(json!([{"item": {"id": "ROSE"}, "quantity": -3}]))).unwrap()),
        ("huge", serde_json::to_vec(&with_items(json!([{"item": {"id": "ROSE"}, "quantity": 4_294_967_296u64}]))).unwrap()),
        ("beyond stock", serde_json::to_vec(&with_items(json!([{"item": {"id": "ROSE"}, "quantity": 6}]))).unwrap()),
        ("unknown", serde_json::to_vec(&with_items(json!([{"item": {"id": "NOPE"}, "quantity": 1}]))).unwrap()),
        ("other currency", serde_json::to_vec(&json!({"currency": "EUR", "line_items": [{"item": {"id": "ROSE"}, "quantity": 1}]})).unwrap()),
        ("bad country", serde_json::to_vec(&json!({"currency": "USD", "line_items": [{"item": {"id": "ROSE"}, "quantity": 1}],
            "fulfillment": {"methods": [{"type": "shipping", "destinations": [{"id": "x", "address_country": "ZZ"}]}]}})).unwrap()),
        ("unknown destination", serde_json::to_vec(&json!({"currency": "USD", "line_items": [{"item": {"id": "ROSE"}, "quantity": 1}],
            "fulfillment": {"methods": [{"type": "shipping", "selected_destination_id": "nowhere"}]}})).unwrap()),
    ] {
        let (status, answer) = ucp.merchant.handle(&Method::PUT, &path, &headers("agent-a", None, None), &body).await;
        assert!((400..500).contains(&status), "{what}: {status}");
        assert!(parse(&answer)["detail"].is_string(), "{what}");
        assert_eq!(ucp.call("agent-a", Method::GET, &path, None, None).await.1, before, "{what} changed the session");
    }
    let (status, _) = ucp
        .call(
            "agent-a",
            Method::POST,
            "checkout-sessions",
            None,
            Some(json!({"currency": "XYZ", "line_items": []})),
        )
        .await;
    assert_eq!(status, 400);
    // A cancelled session takes no more changes.
    assert_eq!(
        ucp.call(
            "agent-a",
            Method::POST,
            &format!("{path}/cancel"),
            None,
            None
        )
        .await
        .0,
        200
    );
    assert_eq!(
        ucp.call("agent-a", Method::PUT, &path, None, Some(create_body(1)))
            .await
            .0,
        409
    );
    assert_eq!(
        ucp.call(
            "agent-a",
            Method::POST,
            &format!("{path}/complete"),
            None,
            Some(complete_body("tok_visa"))
        )
        .await
        .0,
        409
    );
    assert_eq!(
        ucp.call(
            "agent-a",
            Method::POST,
            &format!("{path}/cancel"),
            None,
            None
        )
        .await
        .0,
        409
    );
    assert!(ucp.shop.payments.authorizations().is_empty());
}

async fn profiles_outside_the_policy_are_not_fetched(backend: Backend) {
    // The default policy: public HTTPS only. A profile on loopback is
    // never fetched, and the request still succeeds.
    let shop = Shop::new(backend).await;
    shop.product("ROSE", "35.00", 5).await;
    let hits = Arc::new(Mutex::new(0u32));
    let counter = hits.clone();
    let app = axum::Router::new().route(
        "/profile.json",
        axum::routing::get(move || {
            let counter = counter.clone();
            async move {
                *counter.lock().unwrap() += 1;
                axum::Json(json!({"ucp": {"capabilities": [{"name": "dev.ucp.shopping.order", "config": {"webhook_url": "http://127.0.0.1:1/x"}}]}}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let profile = format!("http://{}/profile.json", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let m = merchant(shop.engine.clone(), &SigningKey::generate());
    let body = serde_json::to_vec(&create_body(1)).unwrap();
    let (status, answer) = m
        .handle(
            &Method::POST,
            "checkout-sessions",
            &headers("agent-a", None, Some(&profile)),
            &body,
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(*hits.lock().unwrap(), 0, "loopback is not allowed");
    let id: cartwright::agent::AgentSessionId =
        parse(&answer)["id"].as_str().unwrap().parse().unwrap();
    let session = shop.engine.agent_session(&Actor::System, id).await.unwrap();
    assert_eq!(session.webhook_url, None);
}

/// Agent A opens a checkout for `quantity` with its `profile` (where its
/// webhook URL is) and completes it with `token`: the session's id and the
/// completion's status.
async fn check_out_with_profile(
    ucp: &Ucp,
    profile: &str,
    quantity: u64,
    token: &str,
) -> (String, u16) {
    let (status, answer) = ucp
        .merchant
        .handle(
            &Method::POST,
            "checkout-sessions",
            &headers("agent-a", None, Some(profile)),
            &serde_json::to_vec(&create_body(quantity)).unwrap(),
        )
        .await;
    assert_eq!(status, 201);
    let id = parse(&answer)["id"].as_str().unwrap().to_owned();
    let (status, _) = ucp
        .call(
            "agent-a",
            Method::POST,
            &format!("checkout-sessions/{id}/complete"),
            None,
            Some(complete_body(token)),
        )
        .await;
    (id, status)
}

/// Runs relay rounds until `got` holds `count` deliveries (or about 2.5
/// seconds pass), and returns what it holds.
async fn relay_until(
    relay: &cartwright::relay::Relay,
    got: &Received,
    count: usize,
) -> Vec<(HeaderMap, Vec<u8>)> {
    for _ in 0..50 {
        relay.run_once().await.unwrap();
        if got.lock().unwrap().len() >= count {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    got.lock().unwrap().clone()
}

async fn order_webhooks_carry_a_verifiable_signature(backend: Backend) {
    let ucp = Ucp::new(backend).await;
    let got: Received = Arc::default();
    let sink = got.clone();
    let hook_app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |h: HeaderMap, b: axum::body::Bytes| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push((h, b.to_vec()));
                "ok"
            }
        }),
    );
    let hook_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", hook_listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(hook_listener, hook_app).await });
    let profile_doc = json!({"ucp": {"capabilities": [{"name": "dev.ucp.shopping.order", "config": {"webhook_url": hook}}]}});
    let profile_app = axum::Router::new().route(
        "/p.json",
        axum::routing::get(move || async move { axum::Json(profile_doc.clone()) }),
    );
    let profile_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let profile = format!("http://{}/p.json", profile_listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(profile_listener, profile_app).await });

    let (id, status) = check_out_with_profile(&ucp, &profile, 1, "tok_visa").await;
    assert_eq!(status, 200);
    let relay =
        cartwright::relay::Relay::new(ucp.shop.engine.clone(), vec![ucp.merchant.webhook_sink()])
            .unwrap();
    let received = relay_until(&relay, &got, 1).await;
    assert_eq!(received.len(), 1);
    let (h, body) = &received[0];
    let jws = h["request-signature"].to_str().unwrap();
    assert!(ucp.key.verify_detached(jws, body), "signed with the key");
    assert!(!ucp.key.verify_detached(jws, b"{\"tampered\":true}"));
    assert!(
        !SigningKey::generate().verify_detached(jws, body),
        "not with another key"
    );
    let published = ucp.merchant.profile()["signing_keys"][0].clone();
    assert_eq!(published["kid"], ucp.key.kid());
    assert_eq!(published["crv"], "P-256");
    let event = parse(body);
    assert_eq!(event["event_type"], "order_placed");
    assert_eq!(event["checkout_id"], id);
    assert!(event["order"]["id"].is_string());

    // A payment that waits for the buyer, settled by the provider's event
    // with the agent never asking again: the order is still the agent's,
    // and its webhook goes out (it was once taken for no agent's order).
    let (waiting_id, status) = check_out_with_profile(&ucp, &profile, 2, "tok_3ds").await;
    assert!(status < 300, "the completion waits for the buyer: {status}");
    let reference = ucp
        .shop
        .payments
        .authorizations()
        .into_iter()
        .find(|a| a.waiting.is_some())
        .expect("a payment waits")
        .reference;
    let settled = ucp.shop.payments.complete_action(&reference).unwrap();
    let order = ucp
        .shop
        .engine
        .apply_provider_event(&Actor::Provider("test".into()), &settled)
        .await
        .unwrap()
        .into_order()
        .expect("the provider's event placed the order");
    let received = relay_until(&relay, &got, 2).await;
    assert_eq!(received.len(), 2);
    let event = parse(&received[1].1);
    assert_eq!(event["event_type"], "order_placed");
    assert_eq!(event["checkout_id"], waiting_id.as_str());
    assert_eq!(event["order"]["id"], order.id().to_string());
}

async fn over_http_bad_bodies_get_the_protocols_errors(backend: Backend) {
    let ucp = Ucp::new(backend).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = ucp.merchant.router();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::Client::new();
    let post = |body: Vec<u8>| {
        http.post(format!("{base}/checkout-sessions"))
            .header("x-agent", "agent-a")
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let huge = post(vec![b' '; cartwright::agentic::ucp::MAX_BODY_BYTES + 10])
        .await
        .unwrap();
    assert_eq!(huge.status(), 413);
    assert!(huge.json::<Value>().await.unwrap()["detail"].is_string());
    let malformed = post(b"{\"currency\": ".to_vec()).await.unwrap();
    assert_eq!(malformed.status(), 400);
    assert!(malformed.json::<Value>().await.unwrap()["detail"].is_string());
    let created = post(serde_json::to_vec(&create_body(1)).unwrap())
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    assert_eq!(created.headers()["content-type"], "application/json");
}

conformance!(
    over_http_bad_bodies_get_the_protocols_errors,
    agents_are_kept_apart,
    replays_hold_across_instances,
    versions_are_negotiated,
    hostile_input_changes_nothing,
    profiles_outside_the_policy_are_not_fetched,
    order_webhooks_carry_a_verifiable_signature,
);
