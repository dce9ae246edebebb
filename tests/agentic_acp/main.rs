//! The Agentic Commerce Protocol (2026-04-17) on both stores, through the
//! service's own request handler, every answer validated against the
//! official JSON Schemas in `../shared/acp`: a whole purchase; the
//! idempotency rules (required key, byte-for-byte replay with
//! `Idempotent-Replayed`, 422 for another body, 409 while in flight,
//! scoping by endpoint); bearer keys per platform and platforms kept apart
//! (404); hostile input refused with the protocol's error and nothing
//! changed; a declined payment; completions racing on two instances
//! charging once; signed order webhooks delivered through the relay; and
//! a property test of random request sequences (valid and not): every
//! answer valid for its status, no server error, replays byte for byte,
//! the gateway charging exactly the completed sessions.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../common/mod.rs"]
mod common;
mod props;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, HeaderValue, Method};
use cartwright::agentic::acp::{AcpConfig, AcpMerchant, AcpPlatform, VERSION};
use cartwright::prelude::*;
use cartwright::webhook::{WebhookPolicy, WebhookSecret, verify};
use common::{Backend, Shop, ShopOptions};
use serde_json::{Value, json};

/// Requests a test receiver got.
type Received = Arc<Mutex<Vec<(HeaderMap, Vec<u8>)>>>;

const OPENAI_KEY: &str = "key-for-the-openai-platform-0001";
const OTHER_KEY: &str = "key-for-another-platform-000002";
const WEBHOOK_SECRET: &str = "whsec_acp_test_secret_value_0001";

/// The ACP specification bundled beside the project.
fn spec_dir() -> PathBuf {
    let candidates = [
        std::env::var("CARTWRIGHT_SHARED_DIR")
            .ok()
            .map(PathBuf::from),
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared")),
        Some(PathBuf::from("/work/shared")),
    ];
    candidates
        .into_iter()
        .flatten()
        .map(|d| d.join("acp/spec/2026-04-17/json-schema"))
        .find(|d| d.is_dir())
        .expect("the ACP specification (../shared/acp) is needed; set CARTWRIGHT_SHARED_DIR")
}

/// A validator for one definition of the checkout schema.
fn validator(definition: &str) -> jsonschema::Validator {
    let text = std::fs::read_to_string(spec_dir().join("schema.agentic_checkout.json")).unwrap();
    let mut schema: Value = serde_json::from_str(&text).unwrap();
    schema["$ref"] = json!(format!("#/$defs/{definition}"));
    jsonschema::validator_for(&schema).unwrap()
}

fn assert_valid(definition: &str, value: &Value) {
    let v = validator(definition);
    let errors: Vec<String> = v
        .iter_errors(value)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "not a valid {definition}: {errors:#?}\n{value:#}"
    );
}

struct Acp {
    shop: Shop,
    merchant: AcpMerchant,
    hooks: Received,
}

struct Reply {
    status: u16,
    body: Vec<u8>,
    headers: Vec<(&'static str, String)>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn headers(key: Option<&str>, bearer: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {bearer}")).unwrap(),
    );
    h.insert("api-version", HeaderValue::from_static(VERSION));
    if let Some(k) = key {
        h.insert("idempotency-key", HeaderValue::from_str(k).unwrap());
    }
    h
}

async fn receiver(hooks: Received) -> String {
    let app = axum::Router::new().route(
        "/order_events",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let hooks = hooks.clone();
            async move {
                hooks.lock().unwrap().push((headers, body.to_vec()));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/order_events", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

impl Acp {
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
        let hooks = Arc::new(Mutex::new(Vec::new()));
        let url = receiver(hooks.clone()).await;
        let merchant = Self::merchant(shop.engine.clone(), &url);
        Self {
            shop,
            merchant,
            hooks,
        }
    }

    fn merchant(engine: Engine, hook: &str) -> AcpMerchant {
        let config = AcpConfig::new("https://shop.example/".parse().unwrap())
            .platform(AcpPlatform::new("openai", OPENAI_KEY).unwrap().webhook(hook, WEBHOOK_SECRET).unwrap())
            .platform(AcpPlatform::new("other", OTHER_KEY).unwrap())
            .handler(json!({
                "id": "card", "name": "dev.acp.card", "version": VERSION,
                "spec": "https://example.com/spec", "requires_delegate_payment": true,
                "requires_pci_compliance": false, "psp": "test",
                "config_schema": "https://example.com/config", "instrument_schemas": ["https://example.com/card"],
                "config": {},
            }))
            .link("terms_of_use", "https://shop.example/terms");
        AcpMerchant::new(engine, config).unwrap()
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        self.call_as(&self.merchant, OPENAI_KEY, method, path, key, body)
            .await
    }

    async fn call_as(
        &self,
        merchant: &AcpMerchant,
        bearer: &str,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let body = body
            .map(|b| serde_json::to_vec(&b).unwrap())
            .unwrap_or_default();
        let (status, body, headers) = merchant
            .handle(&method, path, &headers(key, bearer), &body)
            .await;
        Reply {
            status,
            body,
            headers,
        }
    }

    /// A session with one line of `sku`, created under a fresh key.
    async fn session(&self, sku: &str, quantity: u32) -> Value {
        let r = self
            .call(Method::POST, "checkout_sessions", Some(&uuid::Uuid::new_v4().to_string()),
                Some(json!({"currency": "usd", "line_items": [{"id": sku, "quantity": quantity}], "capabilities": {}})))
            .await;
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        let v = r.json();
        assert_valid("CheckoutSession", &v);
        v
    }

    async fn ready(&self, id: &str) -> Value {
        let r = self
            .call(Method::POST, &format!("checkout_sessions/{id}"), Some(&uuid::Uuid::new_v4().to_string()),
                Some(json!({
                    "buyer": {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"},
                    "fulfillment_details": {"name": "Ada Lovelace", "address": {
                        "name": "Ada Lovelace", "line_one": "1 Analytical Way", "city": "London",
                        "state": "LND", "country": "GB", "postal_code": "N1 9GU"}},
                    "selected_fulfillment_options": [{"type": "shipping", "option_id": "standard", "item_ids": []}],
                })))
            .await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let v = r.json();
        assert_valid("CheckoutSession", &v);
        v
    }
}

fn complete_body(token: &str) -> Value {
    json!({"payment_data": {"handler_id": "card", "instrument": {"type": "card", "credential": {"type": "spt", "token": token}}}})
}

fn total(v: &Value, kind: &str) -> i64 {
    v["totals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["type"] == kind)
        .map(|t| t["amount"].as_i64().unwrap())
        .unwrap_or(0)
}

async fn a_purchase_from_create_to_order(backend: Backend) {
    let acp = Acp::new(backend).await;
    acp.shop.product("MUG", "12.00", 10).await;
    let created = acp.session("mug", 2).await;
    assert_eq!(created["status"], "not_ready_for_payment");
    assert_eq!(total(&created, "subtotal"), 2400);
    let id = created["id"].as_str().unwrap().to_owned();
    let ready = acp.ready(&id).await;
    assert_eq!(ready["status"], "ready_for_payment");
    assert_eq!(ready["fulfillment_options"][0]["id"], "standard");
    // 24.00 + 5.00 shipping + 10 % tax on both = 31.90
    assert_eq!(total(&ready, "fulfillment"), 550);
    assert_eq!(total(&ready, "total"), 3190);
    let done = acp
        .call(
            Method::POST,
            &format!("checkout_sessions/{id}/complete"),
            Some("complete-1"),
            Some(complete_body("tok_visa")),
        )
        .await;
    assert_eq!(done.status, 200, "{}", String::from_utf8_lossy(&done.body));
    let done = done.json();
    assert_valid("CheckoutSessionWithOrder", &done);
    assert_eq!(done["status"], "completed");
    let order_id: cartwright::id::OrderId = done["order"]["id"].as_str().unwrap().parse().unwrap();
    let order = acp
        .shop
        .engine
        .order(&Actor::System, order_id)
        .await
        .unwrap();
    assert_eq!(order.total().to_minor().unwrap(), 3190);
    assert_eq!(acp.shop.payments.authorizations().len(), 1);
    let read = acp
        .call(Method::GET, &format!("checkout_sessions/{id}"), None, None)
        .await;
    assert_eq!(read.status, 200);
    assert_valid("CheckoutSession", &read.json());
    // Changing or cancelling it now is refused.
    let changed = acp
        .call(
            Method::POST,
            &format!("checkout_sessions/{id}"),
            Some("late"),
            Some(json!({"line_items": [{"id": "MUG", "quantity": 1}]})),
        )
        .await;
    assert_eq!(changed.status, 409);
    assert_valid("Error", &changed.json());
    let cancelled = acp
        .call(
            Method::POST,
            &format!("checkout_sessions/{id}/cancel"),
            Some("late-cancel"),
            None,
        )
        .await;
    assert_eq!(cancelled.status, 405);
    assert_valid("Error", &cancelled.json());
}

async fn idempotency_follows_the_spec(backend: Backend) {
    let acp = Acp::new(backend).await;
    acp.shop.product("MUG", "12.00", 10).await;
    let body = json!({"currency": "usd", "line_items": [{"id": "MUG", "quantity": 1}], "capabilities": {}});
    let missing = acp
        .call(Method::POST, "checkout_sessions", None, Some(body.clone()))
        .await;
    assert_eq!(missing.status, 400);
    assert_eq!(missing.json()["code"], "idempotency_key_required");
    assert_valid("Error", &missing.json());
    let first = acp
        .call(
            Method::POST,
            "checkout_sessions",
            Some("key-1"),
            Some(body.clone()),
        )
        .await;
    let again = acp
        .call(
            Method::POST,
            "checkout_sessions",
            Some("key-1"),
            Some(body.clone()),
        )
        .await;
    assert_eq!(first.status, 201);
    assert_eq!(
        (again.status, &again.body),
        (first.status, &first.body),
        "a replay is byte for byte"
    );
    assert_eq!(again.header("Idempotent-Replayed"), Some("true"));
    assert_eq!(first.header("Idempotent-Replayed"), None);
    assert_eq!(again.header("Idempotency-Key"), Some("key-1"));
    // A replay from another instance on the same store.
    let other = Acp::merchant(acp.shop.second_engine().await, "http://127.0.0.1:9/none");
    let third = acp
        .call_as(
            &other,
            OPENAI_KEY,
            Method::POST,
            "checkout_sessions",
            Some("key-1"),
            Some(body.clone()),
        )
        .await;
    assert_eq!(third.body, first.body);
    // Another body under the key.
    let changed = json!({"currency": "usd", "line_items": [{"id": "MUG", "quantity": 2}], "capabilities": {}});
    let conflict = acp
        .call(
            Method::POST,
            "checkout_sessions",
            Some("key-1"),
            Some(changed),
        )
        .await;
    assert_eq!(conflict.status, 422);
    assert_eq!(conflict.json()["code"], "idempotency_conflict");
    assert_valid("Error", &conflict.json());
    // Keys are scoped to the endpoint: the same key cancels.
    let id = first.json()["id"].as_str().unwrap().to_owned();
    let cancel = acp
        .call(
            Method::POST,
            &format!("checkout_sessions/{id}/cancel"),
            Some("key-1"),
            None,
        )
        .await;
    assert_eq!(cancel.status, 200);
    assert_eq!(cancel.json()["status"], "canceled");
    // And to the platform: the other platform's key-1 is its own.
    let theirs = acp
        .call_as(
            &acp.merchant,
            OTHER_KEY,
            Method::POST,
            "checkout_sessions",
            Some("key-1"),
            Some(body),
        )
        .await;
    assert_eq!(theirs.status, 201);
    assert_ne!(theirs.json()["id"], first.json()["id"]);
}

async fn platforms_are_kept_apart(backend: Backend) {
    let acp = Acp::new(backend).await;
    acp.shop.product("MUG", "12.00", 10).await;
    let mine = acp.session("MUG", 1).await;
    let id = mine["id"].as_str().unwrap();
    for (method, path, body) in [
        (Method::GET, format!("checkout_sessions/{id}"), None),
        (
            Method::POST,
            format!("checkout_sessions/{id}"),
            Some(json!({"line_items": [{"id": "MUG", "quantity": 3}]})),
        ),
        (
            Method::POST,
            format!("checkout_sessions/{id}/complete"),
            Some(complete_body("tok_visa")),
        ),
        (Method::POST, format!("checkout_sessions/{id}/cancel"), None),
    ] {
        let r = acp
            .call_as(
                &acp.merchant,
                OTHER_KEY,
                method,
                &path,
                Some(&uuid::Uuid::new_v4().to_string()),
                body,
            )
            .await;
        assert_eq!(r.status, 404, "{path}");
        assert_valid("Error", &r.json());
    }
    let unknown = acp
        .call_as(
            &acp.merchant,
            "not-a-key-anyone-was-given",
            Method::GET,
            &format!("checkout_sessions/{id}"),
            None,
            None,
        )
        .await;
    assert_eq!(unknown.status, 401);
    let mut no_version = headers(None, OPENAI_KEY);
    no_version.remove("api-version");
    let (status, body, _) = acp
        .merchant
        .handle(
            &Method::GET,
            &format!("checkout_sessions/{id}"),
            &no_version,
            &[],
        )
        .await;
    assert_eq!(status, 400);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["supported_versions"], json!([VERSION]));
    assert_valid("Error", &body);
    // Nothing changed for the owner.
    let read = acp
        .call(Method::GET, &format!("checkout_sessions/{id}"), None, None)
        .await;
    assert_eq!(read.json()["line_items"], mine["line_items"]);
    assert_eq!(read.json()["status"], "not_ready_for_payment");
    assert!(acp.shop.payments.authorizations().is_empty());
}

async fn hostile_input_changes_nothing(backend: Backend) {
    let acp = Acp::new(backend).await;
    acp.shop.product("MUG", "12.00", 3).await;
    let session = acp.session("MUG", 1).await;
    let id = session["id"].as_str().unwrap().to_owned();
    let before = acp
        .call(Method::GET, &format!("checkout_sessions/{id}"), None, None)
        .await
        .body;
    let bad: Vec<(&str, Vec<u8>)> = vec![
        ("malformed", b"{\"line_items\": [".to_vec()),
        ("not an object", b"[1,2]".to_vec()),
        ("zero", serde_json::to_vec(&json!({"line_items": [{"id": "MUG", "quantity": 0}]})).unwrap()),
        ("negative", serde_json::to_vec(&json!({"line_items": [{"id": "MUG", "quantity": -1}]})).unwrap()),
        ("huge", serde_json::to_vec(&json!({"line_items": [{"id": "MUG", "quantity": 9_000_000_000u64}]})).unwrap()),
        ("beyond stock", serde_json::to_vec(&json!({"line_items": [{"id": "MUG", "quantity": 4}]})).unwrap()),
        ("unknown item", serde_json::to_vec(&json!({"line_items": [{"id": "NOPE", "quantity": 1}]})).unwrap()),
        ("bad address", serde_json::to_vec(&json!({"fulfillment_details": {"address": {"name": "x", "line_one": "1 Road", "city": "Town", "state": "", "country": "ZZ", "postal_code": "1"}}})).unwrap()),
        ("bad email", serde_json::to_vec(&json!({"buyer": {"email": "not an email"}})).unwrap()),
        ("bad option list", serde_json::to_vec(&json!({"selected_fulfillment_options": "standard"})).unwrap()),
    ];
    for (what, body) in bad {
        let (status, answer, _) = acp
            .merchant
            .handle(
                &Method::POST,
                &format!("checkout_sessions/{id}"),
                &headers(Some(&uuid::Uuid::new_v4().to_string()), OPENAI_KEY),
                &body,
            )
            .await;
        assert_eq!(status, 400, "{what}: {}", String::from_utf8_lossy(&answer));
        assert_valid("Error", &serde_json::from_slice(&answer).unwrap());
        let now = acp
            .call(Method::GET, &format!("checkout_sessions/{id}"), None, None)
            .await
            .body;
        let strip = |b: &[u8]| {
            let mut v: Value = serde_json::from_slice(b).unwrap();
            v.as_object_mut().unwrap().remove("updated_at");
            v
        };
        assert_eq!(strip(&now), strip(&before), "{what} changed the session");
    }
    for (what, body) in [
        (
            "unknown currency",
            json!({"currency": "xyz", "line_items": [{"id": "MUG"}], "capabilities": {}}),
        ),
        (
            "no items",
            json!({"currency": "usd", "line_items": [], "capabilities": {}}),
        ),
    ] {
        let r = acp
            .call(
                Method::POST,
                "checkout_sessions",
                Some(&uuid::Uuid::new_v4().to_string()),
                Some(body),
            )
            .await;
        assert_eq!(r.status, 400, "{what}");
        assert_valid("Error", &r.json());
    }
    let missing = acp
        .call(Method::GET, "checkout_sessions/not-an-id", None, None)
        .await;
    assert_eq!(missing.status, 404);
}

async fn a_declined_payment_leaves_the_session_open(backend: Backend) {
    let acp = Acp::new(backend).await;
    acp.shop.product("MUG", "12.00", 10).await;
    let id = acp.session("MUG", 1).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    acp.ready(&id).await;
    let declined = acp
        .call(
            Method::POST,
            &format!("checkout_sessions/{id}/complete"),
            Some("pay-1"),
            Some(complete_body("tok_decline")),
        )
        .await;
    assert_eq!(declined.status, 402);
    assert_eq!(declined.json()["code"], "payment_declined");
    assert_valid("Error", &declined.json());
    let open = acp
        .call(Method::GET, &format!("checkout_sessions/{id}"), None, None)
        .await
        .json();
    assert_valid("CheckoutSession", &open);
    assert_eq!(open["status"], "ready_for_payment");
    assert!(
        open["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["code"] == "payment_declined")
    );
    let paid = acp
        .call(
            Method::POST,
            &format!("checkout_sessions/{id}/complete"),
            Some("pay-2"),
            Some(complete_body("tok_visa")),
        )
        .await;
    assert_eq!(paid.status, 200);
    assert_eq!(paid.json()["status"], "completed");
}

async fn completions_racing_on_two_instances_charge_once(backend: Backend) {
    let acp = Acp::new(backend).await;
    acp.shop.product("MUG", "12.00", 10).await;
    let id = acp.session("MUG", 1).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    acp.ready(&id).await;
    let other = Acp::merchant(acp.shop.second_engine().await, "http://127.0.0.1:9/none");
    let path = format!("checkout_sessions/{id}/complete");
    let mut calls = Vec::new();
    for i in 0..8 {
        let merchant = if i % 2 == 0 {
            acp.merchant.clone()
        } else {
            other.clone()
        };
        let path = path.clone();
        calls.push(tokio::spawn(async move {
            let body = serde_json::to_vec(&complete_body("tok_visa")).unwrap();
            merchant
                .handle(
                    &Method::POST,
                    &path,
                    &headers(Some(&format!("race-{i}")), OPENAI_KEY),
                    &body,
                )
                .await
        }));
    }
    let mut orders = std::collections::BTreeSet::new();
    for c in calls {
        let (status, body, _) = c.await.unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        match status {
            200 => {
                orders.insert(v["order"]["id"].as_str().unwrap().to_owned());
            }
            409 => assert_valid("Error", &v),
            other => panic!("unexpected {other}: {v}"),
        }
    }
    assert_eq!(orders.len(), 1, "one order");
    assert_eq!(acp.shop.payments.authorizations().len(), 1, "charged once");
    let stock = acp
        .shop
        .engine
        .stock(
            acp.shop
                .engine
                .variant_by_sku("MUG")
                .await
                .unwrap()
                .variant
                .id(),
        )
        .await
        .unwrap();
    assert_eq!(stock.available(), 9);
}

async fn order_webhooks_are_signed_and_delivered(backend: Backend) {
    let acp = Acp::new(backend).await;
    acp.shop.product("MUG", "12.00", 10).await;
    let id = acp.session("MUG", 1).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    acp.ready(&id).await;
    let done = acp
        .call(
            Method::POST,
            &format!("checkout_sessions/{id}/complete"),
            Some("c"),
            Some(complete_body("tok_visa")),
        )
        .await
        .json();
    let order_id = done["order"]["id"].as_str().unwrap().to_owned();
    let relay =
        cartwright::relay::Relay::new(acp.shop.engine.clone(), vec![acp.merchant.webhook_sink()])
            .unwrap();
    for _ in 0..50 {
        relay.run_once().await.unwrap();
        if !acp.hooks.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let hooks = acp.hooks.lock().unwrap().clone();
    assert_eq!(hooks.len(), 1, "one order event");
    let (headers, body) = &hooks[0];
    let signature = headers["merchant-signature"].to_str().unwrap();
    let secret = WebhookSecret::new(WEBHOOK_SECRET.to_owned()).unwrap();
    verify(
        &secret,
        signature,
        body,
        chrono::Utc::now(),
        chrono::Duration::minutes(5),
    )
    .unwrap();
    let wrong = WebhookSecret::new("whsec_some_other_secret_value_02".to_owned()).unwrap();
    assert!(
        verify(
            &wrong,
            signature,
            body,
            chrono::Utc::now(),
            chrono::Duration::minutes(5)
        )
        .is_err()
    );
    let event: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(event["type"], "order_create");
    assert_eq!(event["data"]["id"], order_id);
    assert_eq!(event["data"]["checkout_session_id"], id);
    assert_valid("Order", &event["data"]);
}

async fn after_sale_changes_reach_the_platform(backend: Backend) {
    let acp = Acp::new(backend).await;
    acp.shop.product("MUG", "12.00", 10).await;
    let id = acp.session("MUG", 2).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    acp.ready(&id).await;
    let done = acp
        .call(
            Method::POST,
            &format!("checkout_sessions/{id}/complete"),
            Some("c"),
            Some(complete_body("tok_visa")),
        )
        .await
        .json();
    let order_id: cartwright::id::OrderId = done["order"]["id"].as_str().unwrap().parse().unwrap();
    // The shop cancels one of the two mugs before they ship.
    let order = acp
        .shop
        .engine
        .order(&Actor::System, order_id)
        .await
        .unwrap();
    let line = order.pricing().lines[0].line_id;
    acp.shop
        .engine
        .cancel_items(
            &Actor::Staff("sam".into()),
            order_id,
            cartwright::after_sale::CancelItems::new(
                vec![cartwright::order::LineQuantity {
                    line_id: line,
                    quantity: 1,
                }],
                cartwright::id::IdempotencyKey::new("one-mug").unwrap(),
            ),
        )
        .await
        .unwrap();
    let relay =
        cartwright::relay::Relay::new(acp.shop.engine.clone(), vec![acp.merchant.webhook_sink()])
            .unwrap();
    let updated = |hooks: &[(axum::http::HeaderMap, Vec<u8>)]| {
        hooks.iter().rev().find_map(|(_, body)| {
            let event: Value = serde_json::from_slice(body).unwrap();
            let current = &event["data"]["line_items"][0]["quantity"]["current"];
            (event["type"] == "order_update" && current == 1).then_some(event)
        })
    };
    let mut found = None;
    for _ in 0..100 {
        relay.run_once().await.unwrap();
        found = updated(&acp.hooks.lock().unwrap());
        if found.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let event = found.expect("an order_update with one mug left");
    assert_eq!(event["data"]["line_items"][0]["quantity"]["ordered"], 2);
    assert_eq!(event["data"]["line_items"][0]["status"], "processing");
    assert_valid("Order", &event["data"]);
}

async fn three_d_secure_is_authentication_required(backend: Backend) {
    let acp = Acp::new(backend).await;
    acp.shop.product("MUG", "12.00", 10).await;
    let id = acp.session("MUG", 1).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    acp.ready(&id).await;
    let path = format!("checkout_sessions/{id}/complete");
    let waiting = acp
        .call(
            Method::POST,
            &path,
            Some("3ds-1"),
            Some(complete_body("tok_3ds")),
        )
        .await;
    assert_eq!(
        waiting.status,
        200,
        "{}",
        String::from_utf8_lossy(&waiting.body)
    );
    let waiting = waiting.json();
    assert_valid("CheckoutSession", &waiting);
    assert_eq!(waiting["status"], "authentication_required");
    let url = waiting["continue_url"].as_str().unwrap();
    assert!(
        url.starts_with("https://pay.test.invalid/3ds/"),
        "the bank's page: {url}"
    );
    assert_eq!(waiting["messages"][0]["code"], "requires_3ds");
    // Reading it says the same; nothing is placed yet.
    let read = acp
        .call(Method::GET, &format!("checkout_sessions/{id}"), None, None)
        .await
        .json();
    assert_eq!(read["status"], "authentication_required");
    let query = cartwright::order::OrderQuery::default().limit(10);
    assert!(
        acp.shop
            .engine
            .find_orders(&Actor::System, &query)
            .await
            .unwrap()
            .orders
            .is_empty()
    );
    // Before the buyer acts, completing again still waits.
    let still = acp
        .call(
            Method::POST,
            &path,
            Some("3ds-2"),
            Some(complete_body("tok_3ds")),
        )
        .await
        .json();
    assert_eq!(still["status"], "authentication_required");
    // The buyer passes the challenge; the agent completes again.
    let reference = url.rsplit('/').next().unwrap();
    acp.shop.payments.complete_action(reference).unwrap();
    let done = acp
        .call(
            Method::POST,
            &path,
            Some("3ds-3"),
            Some(complete_body("tok_3ds")),
        )
        .await;
    assert_eq!(done.status, 200, "{}", String::from_utf8_lossy(&done.body));
    let done = done.json();
    assert_valid("CheckoutSessionWithOrder", &done);
    assert_eq!(done["status"], "completed");
    assert_eq!(acp.shop.payments.authorizations().len(), 1, "one payment");
}

async fn a_key_still_running_answers_in_flight(backend: Backend) {
    // The gateway answers after a second: the first completion is still
    // running when its key comes again.
    let (shop, _slow) = Shop::slow(
        backend,
        std::time::Duration::from_millis(1500),
        CaptureMode::Immediate,
    )
    .await;
    let merchant = Acp::merchant(shop.engine.clone(), "http://127.0.0.1:9/none");
    let acp = Acp {
        shop,
        merchant,
        hooks: Received::default(),
    };
    acp.shop.product("MUG", "12.00", 10).await;
    let id = acp.session("MUG", 1).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    acp.ready(&id).await;
    let path = format!("checkout_sessions/{id}/complete");
    let first = {
        let merchant = acp.merchant.clone();
        let path = path.clone();
        tokio::spawn(async move {
            let body = serde_json::to_vec(&complete_body("tok_visa")).unwrap();
            merchant
                .handle(
                    &Method::POST,
                    &path,
                    &headers(Some("same"), OPENAI_KEY),
                    &body,
                )
                .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let second = acp
        .call(
            Method::POST,
            &path,
            Some("same"),
            Some(complete_body("tok_visa")),
        )
        .await;
    assert_eq!(
        second.status,
        409,
        "{}",
        String::from_utf8_lossy(&second.body)
    );
    assert_eq!(second.json()["code"], "idempotency_in_flight");
    assert_eq!(second.header("Retry-After"), Some("1"));
    assert_valid("Error", &second.json());
    let (status, body, _) = first.await.unwrap();
    assert_eq!(status, 200);
    // Once answered, the key replays the answer.
    let third = acp
        .call(
            Method::POST,
            &path,
            Some("same"),
            Some(complete_body("tok_visa")),
        )
        .await;
    assert_eq!((third.status, third.body), (200, body));
    assert_eq!(acp.shop.payments.authorizations().len(), 1);
    // Oversized bodies are refused before anything runs.
    let huge = vec![b' '; cartwright::agentic::acp::MAX_BODY_BYTES + 1];
    let (status, _, _) = acp
        .merchant
        .handle(
            &Method::POST,
            "checkout_sessions",
            &headers(Some("big"), OPENAI_KEY),
            &huge,
        )
        .await;
    assert_eq!(status, 413);
}

async fn the_spec_examples_payment_shape_is_taken(backend: Backend) {
    let acp = Acp::new(backend).await;
    acp.shop.product("MUG", "12.00", 10).await;
    let id = acp.session("MUG", 1).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    acp.ready(&id).await;
    let path = format!("checkout_sessions/{id}/complete");
    // A buyer with no payment: refused, and the buyer is not applied.
    let refused = acp
        .call(
            Method::POST,
            &path,
            Some("p0"),
            Some(json!({"buyer": {"email": "other@example.com"}})),
        )
        .await;
    assert_eq!(refused.status, 400);
    assert_valid("Error", &refused.json());
    let read = acp
        .call(Method::GET, &format!("checkout_sessions/{id}"), None, None)
        .await
        .json();
    assert_eq!(read["buyer"]["email"], "ada@example.com");
    // The examples' `items` on create.
    let created = acp
        .call(
            Method::POST,
            "checkout_sessions",
            Some("p-create"),
            Some(json!({"currency": "usd", "items": [{"id": "MUG", "quantity": 2}]})),
        )
        .await;
    assert_eq!(
        created.status,
        201,
        "{}",
        String::from_utf8_lossy(&created.body)
    );
    assert_eq!(created.json()["line_items"][0]["quantity"], 2);
    // The examples' `token` and `provider`.
    let done = acp
        .call(
            Method::POST,
            &path,
            Some("p1"),
            Some(json!({"payment_data": {"token": "tok_visa", "provider": "stripe"}})),
        )
        .await;
    assert_eq!(done.status, 200, "{}", String::from_utf8_lossy(&done.body));
    assert_eq!(done.json()["status"], "completed");
}

conformance!(
    the_spec_examples_payment_shape_is_taken,
    a_key_still_running_answers_in_flight,
    three_d_secure_is_authentication_required,
    a_purchase_from_create_to_order,
    idempotency_follows_the_spec,
    platforms_are_kept_apart,
    hostile_input_changes_nothing,
    a_declined_payment_leaves_the_session_open,
    completions_racing_on_two_instances_charge_once,
    order_webhooks_are_signed_and_delivered,
    after_sale_changes_reach_the_platform,
);
