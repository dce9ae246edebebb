//! The Universal Commerce Protocol's shopping service (REST binding) over
//! the engine's agent sessions: `GET /.well-known/ucp`, checkout sessions
//! (create, get, update, complete, cancel), orders (get, update) and order
//! webhooks, as UCP `2026-01-11` specifies them.
//!
//! ```no_run
//! # async fn run(engine: cartwright::Engine) -> cartwright::Result<()> {
//! use std::sync::Arc;
//! use cartwright::agentic::{BearerKeys, TokenCredentials, ucp};
//!
//! let config = ucp::UcpConfig::new("https://shop.example/".parse().map_err(|_| cartwright::Error::invalid("url", "bad"))?)
//!     .auth(Arc::new(BearerKeys::new().with_key("a-long-secret-key-for-the-agent", "agent-co")?))
//!     .credentials(Arc::new(TokenCredentials::new()));
//! let merchant = ucp::UcpMerchant::new(engine.clone(), config)?;
//! let app = merchant.router();
//! // axum::serve(listener, app) …; and deliver order webhooks:
//! let relay = cartwright::relay::Relay::new(engine, vec![merchant.webhook_sink()])?;
//! tokio::spawn(relay.run(std::time::Duration::from_millis(250)));
//! # let _ = app; Ok(())
//! # }
//! ```
//!
//! **Versions.** The agent names its version in the `UCP-Agent` header
//! (`version="YYYY-MM-DD"`); the newest version this module speaks that is
//! not later than the agent's is used ([`Version::negotiate`]), and an
//! agent older than every version spoken is refused (400
//! `VERSION_UNSUPPORTED`). Each version's documents are rendered by their
//! own functions, so a new release is a new variant and a renderer beside
//! the old ones.
//!
//! **Idempotency.** A request with an `Idempotency-Key` is claimed through
//! the engine before anything runs; the answer (status and body, byte for
//! byte) is kept by the store and replayed to the same request, on any
//! instance, after restarts; the same key with another request is a 409.
//! A server error is not kept (the retry runs).
//!
//! **Safety.** Bodies are limited to [`MAX_BODY_BYTES`]; malformed JSON,
//! unknown items, bad quantities, currencies or addresses get a 400 and
//! change nothing; the agent's profile is fetched (for its order webhook
//! address) under the engine's webhook policy, with a timeout and a size
//! limit, and a failed fetch never fails the request; an address fetched is
//! used for [`PROFILE_CACHE_TTL`] before the profile is fetched again.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::actor::Actor;
use crate::agent::{AgentProtocol, AgentSessionId, StoredResponse};
use crate::agents::AgentView;
use config::header_param;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::id::OrderId;
use crate::money::Currency;
use crate::store::RequestState;

mod config;
mod render;
mod webhooks;
mod wire;

pub use config::{AddressBook, UcpConfig, Version};
pub use webhooks::{SigningKey, UcpWebhookSink};

/// Largest request body taken, in bytes.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// Largest agent profile read, in bytes.
pub const MAX_PROFILE_BYTES: usize = 64 * 1024;

/// The UCP merchant service over an engine.
#[derive(Clone)]
pub struct UcpMerchant {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    config: UcpConfig,
    client: reqwest::Client,
    /// Agent profiles fetched lately: the webhook address each named, for
    /// [`PROFILE_CACHE_TTL`] (at most [`MAX_CACHED_PROFILES`]).
    profiles:
        parking_lot::Mutex<std::collections::HashMap<String, (std::time::Instant, Option<String>)>>,
}

/// How long a fetched agent profile is used before it is fetched again.
pub const PROFILE_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(60);
/// Most agent profiles kept in the cache.
pub const MAX_CACHED_PROFILES: usize = 1_024;

impl std::fmt::Debug for UcpMerchant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UcpMerchant")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// A protocol answer: status and JSON body.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Answer {
    /// The HTTP status.
    status: u16,
    /// The body.
    body: Value,
}

impl Answer {
    fn ok(body: Value) -> Self {
        Self { status: 200, body }
    }

    fn error(status: u16, code: &str, detail: impl Into<String>) -> Self {
        Self {
            status,
            body: json!({"detail": detail.into(), "code": code}),
        }
    }
}

/// The protocol's answer to an engine error.
fn answer_for(e: &Error) -> Answer {
    match e {
        Error::OutOfStock { .. } => {
            Answer::error(400, "OUT_OF_STOCK", format!("Insufficient stock: {e}"))
        }
        Error::NotFound { .. } => Answer::error(404, "RESOURCE_NOT_FOUND", e.to_string()),
        Error::NotPurchasable { .. } | Error::NoPrice { .. } | Error::NotInChannel { .. } => {
            Answer::error(400, "INVALID_REQUEST", e.to_string())
        }
        Error::Invalid { .. } | Error::LimitExceeded { .. } | Error::CurrencyMismatch { .. } => {
            Answer::error(400, "INVALID_REQUEST", e.to_string())
        }
        Error::Incomplete(_) => Answer::error(
            400,
            "INVALID_REQUEST",
            format!("Fulfillment address and option must be selected ({e})"),
        ),
        Error::EmptyCart => Answer::error(400, "INVALID_REQUEST", e.to_string()),
        Error::IllegalTransition { .. } | Error::CartNotActive { .. } => {
            Answer::error(409, "CHECKOUT_NOT_MODIFIABLE", e.to_string())
        }
        Error::PaymentDeclined { .. } => Answer::error(402, "PAYMENT_FAILED", e.to_string()),
        Error::PriceChanged { .. }
        | Error::UsageLimitReached { .. }
        | Error::ShippingUnavailable(_) => Answer::error(409, "INVALID_REQUEST", e.to_string()),
        Error::Conflict(_) | Error::CheckoutInProgress(_) | Error::PaymentInProgress { .. } => {
            Answer::error(409, "CONFLICT", e.to_string())
        }
        Error::Forbidden => Answer::error(404, "RESOURCE_NOT_FOUND", "not found"),
        Error::PaymentUnavailable(_) | Error::Busy(_) => {
            Answer::error(503, "SERVICE_UNAVAILABLE", e.to_string())
        }
        _ => Answer::error(500, "INTERNAL_ERROR", "the request could not be completed"),
    }
}

fn bad_request(detail: impl Into<String>) -> Answer {
    Answer::error(400, "INVALID_REQUEST", detail)
}

impl UcpMerchant {
    /// The service over `engine`, as `config` says.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a base URL that is not http(s) or has a
    /// query, or no trailing `/`; [`Error::Storage`] when the HTTP client
    /// for profiles cannot be built.
    pub fn new(engine: Engine, config: UcpConfig) -> Result<Self> {
        let base = &config.base_url;
        if !matches!(base.scheme(), "http" | "https")
            || base.query().is_some()
            || !base.path().ends_with('/')
        {
            return Err(Error::invalid(
                "UCP base url",
                "must be http(s), end with / and have no query",
            ));
        }
        let client = crate::relay::webhook::guarded_client(
            &engine.config().webhook_policy,
            config.profile_timeout,
        )?;
        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                config,
                client,
                profiles: parking_lot::Mutex::new(std::collections::HashMap::new()),
            }),
        })
    }

    /// The relay sink delivering agents' order webhooks
    /// (`order_placed`, `order_shipped`, …), signed with the configured key.
    pub fn webhook_sink(&self) -> Arc<dyn crate::relay::Sink> {
        Arc::new(UcpWebhookSink::new(self.clone()))
    }

    /// The discovery profile (`/.well-known/ucp`).
    pub fn profile(&self) -> Value {
        let c = &self.inner.config;
        let v = Version::latest().as_str();
        let cap = |name: &str, extends: Option<&str>| {
            let short = name.rsplit('.').next().unwrap_or(name);
            let mut value = json!({
                "name": name,
                "version": v,
                "spec": format!("https://ucp.dev/specification/{short}"),
                "schema": format!("https://ucp.dev/schemas/shopping/{short}.json"),
            });
            if let (Some(e), Value::Object(map)) = (extends, &mut value) {
                map.insert("extends".into(), Value::String(e.to_owned()));
            }
            value
        };
        json!({
            "ucp": {
                "version": v,
                "services": {
                    "dev.ucp.shopping": {
                        "version": v,
                        "spec": "https://ucp.dev/specification/reference",
                        "rest": {
                            "schema": "https://ucp.dev/services/shopping/openapi.json",
                            "endpoint": c.endpoint(),
                        },
                    },
                },
                "capabilities": [
                    cap("dev.ucp.shopping.checkout", None),
                    cap("dev.ucp.shopping.order", None),
                    cap("dev.ucp.shopping.discount", Some("dev.ucp.shopping.checkout")),
                    cap("dev.ucp.shopping.fulfillment", Some("dev.ucp.shopping.checkout")),
                    cap("dev.ucp.shopping.buyer_consent", Some("dev.ucp.shopping.checkout")),
                ],
            },
            "payment": {"handlers": c.handlers},
            "signing_keys": [c.signing_key.jwk()],
        })
    }

    /// The axum router: mount it at the base URL's path.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/.well-known/ucp", get(discovery))
            .route("/checkout-sessions", post(create))
            .route("/checkout-sessions/{id}", get(read).put(update))
            .route("/checkout-sessions/{id}/complete", post(complete))
            .route("/checkout-sessions/{id}/cancel", post(cancel))
            .route("/orders/{id}", get(read_order).put(update_order))
            .with_state(self.clone())
    }

    /// The engine it serves.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// [`UcpMerchant::handle`] for a streamed body, read up to
    /// [`MAX_BODY_BYTES`] (a longer one is refused with the protocol's 413
    /// without being read further).
    pub async fn handle_body(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        body: Body,
    ) -> (u16, Vec<u8>) {
        match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
            Ok(bytes) => self.handle(method, path, headers, &bytes).await,
            Err(_) => encode(&Answer::error(
                413,
                "REQUEST_TOO_LARGE",
                format!("the body is over {MAX_BODY_BYTES} bytes"),
            )),
        }
    }

    /// Handles one request (framework-agnostic): authentication, version
    /// negotiation and idempotency, then the operation. `path` is relative
    /// to the base URL (`checkout-sessions/…`).
    pub async fn handle(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> (u16, Vec<u8>) {
        if body.len() > MAX_BODY_BYTES {
            return encode(&Answer::error(
                413,
                "REQUEST_TOO_LARGE",
                format!("the body is over {MAX_BODY_BYTES} bytes"),
            ));
        }
        let agent_header = headers.get("ucp-agent").and_then(|v| v.to_str().ok());
        let version = match Version::negotiate(agent_header) {
            Ok(v) => v,
            Err(e) => {
                let body = json!({"detail": {"status": "error", "errors": [{"code": "VERSION_UNSUPPORTED", "message": e.to_string()}]}});
                return (400, serde_json::to_vec(&body).unwrap_or_default());
            }
        };
        let recognised = self
            .inner
            .config
            .auth
            .authenticate(headers)
            .filter(|a| crate::agent::check_agent_name(a).is_ok());
        let Some(agent) = recognised else {
            return encode(&Answer::error(
                401,
                "UNAUTHORIZED",
                "the agent is not recognised",
            ));
        };
        let actor = Actor::Agent(agent);
        let key = headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mutating = *method != Method::GET;
        if let (true, Some(key)) = (mutating, &key) {
            let fingerprint = super::fingerprint(method.as_str(), path, body);
            match self
                .inner
                .engine
                .claim_agent_request(&actor, key, &fingerprint)
                .await
            {
                Ok(RequestState::Claimed) => {}
                Ok(RequestState::Done(stored)) => return (stored.status, stored.body),
                Ok(RequestState::Conflict) => {
                    return encode(&Answer::error(
                        409,
                        "IDEMPOTENCY_CONFLICT",
                        "the idempotency key was used for another request",
                    ));
                }
                Ok(RequestState::InFlight) => {
                    return encode(&Answer::error(
                        409,
                        "IDEMPOTENCY_IN_FLIGHT",
                        "a request with this idempotency key is still running",
                    ));
                }
                Err(e) => return encode(&answer_for(&e)),
            }
        }
        let profile = agent_header.and_then(|h| header_param(h, "profile"));
        // Boxed: a checkout's future is large, and a caller may await this
        // one inline on a small stack.
        let answer = Box::pin(self.run(&actor, version, method, path, body, profile)).await;
        let (status, bytes) = encode(&answer);
        if let (true, Some(key)) = (mutating, &key) {
            let done = if status >= 500 {
                self.inner.engine.release_agent_request(&actor, key).await
            } else {
                self.inner
                    .engine
                    .finish_agent_request(&actor, key, &StoredResponse::new(status, bytes.clone()))
                    .await
            };
            if let Err(error) = done {
                tracing::warn!(%error, "the UCP answer could not be kept for replay");
            }
        }
        (status, bytes)
    }

    async fn run(
        &self,
        actor: &Actor,
        version: Version,
        method: &Method,
        path: &str,
        body: &[u8],
        profile: Option<String>,
    ) -> Answer {
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        let result = match (method.as_str(), parts.as_slice()) {
            ("POST", ["checkout-sessions"]) => self.create(actor, version, body, profile).await,
            ("GET", ["checkout-sessions", id]) => self.read(actor, version, id).await,
            ("PUT", ["checkout-sessions", id]) => {
                self.update(actor, version, id, body, profile).await
            }
            ("POST", ["checkout-sessions", id, "complete"]) => {
                self.complete(actor, version, id, body).await
            }
            ("POST", ["checkout-sessions", id, "cancel"]) => self.cancel(actor, version, id).await,
            ("GET", ["orders", id]) => self.read_order(actor, version, id).await,
            ("PUT", ["orders", id]) => self.update_order(actor, version, id, body).await,
            _ => Err(Answer::error(404, "RESOURCE_NOT_FOUND", "no such resource")),
        };
        result.unwrap_or_else(|answer| answer)
    }

    fn checkout(&self, version: Version, view: &AgentView) -> Value {
        render::checkout(&self.inner.config, version, view)
    }

    async fn create(
        &self,
        actor: &Actor,
        version: Version,
        body: &[u8],
        profile: Option<String>,
    ) -> std::result::Result<Answer, Answer> {
        let request = parse(body)?;
        let currency = request
            .get("currency")
            .and_then(Value::as_str)
            .ok_or_else(|| bad_request("currency is required"))?;
        let currency = Currency::from_code(currency).map_err(|e| bad_request(e.to_string()))?;
        // Everything is checked before the session exists, so a refused
        // request leaves nothing behind.
        let update = self.update_from(actor, &request, None).await?;
        let engine = &self.inner.engine;
        let session = engine
            .open_agent_session(actor, AgentProtocol::Ucp, currency)
            .await
            .map_err(|e| answer_for(&e))?;
        let webhook = self.webhook_url(profile).await;
        let update = match webhook {
            Some(url) => update.webhook_url(Some(url)),
            None => update,
        };
        match engine.update_agent_session(actor, session.id, update).await {
            Ok(view) => Ok(Answer {
                status: 201,
                body: self.checkout(version, &view),
            }),
            Err(e) => {
                // Nothing the agent can reach stays open.
                let _ = engine.cancel_agent_session(actor, session.id).await;
                Err(answer_for(&e))
            }
        }
    }

    async fn read(
        &self,
        actor: &Actor,
        version: Version,
        id: &str,
    ) -> std::result::Result<Answer, Answer> {
        let id = session_id(id)?;
        let view = self
            .inner
            .engine
            .agent_view(actor, id)
            .await
            .map_err(|e| answer_for(&e))?;
        Ok(Answer::ok(self.checkout(version, &view)))
    }

    async fn update(
        &self,
        actor: &Actor,
        version: Version,
        id: &str,
        body: &[u8],
        profile: Option<String>,
    ) -> std::result::Result<Answer, Answer> {
        let id = session_id(id)?;
        let request = parse(body)?;
        let engine = &self.inner.engine;
        let current = engine
            .agent_session(actor, id)
            .await
            .map_err(|e| answer_for(&e))?;
        if current.status != crate::agent::AgentSessionStatus::Open {
            return Err(Answer::error(
                409,
                "CHECKOUT_NOT_MODIFIABLE",
                format!("the checkout is {}", current.status_name()),
            ));
        }
        if let Some(c) = request.get("currency").and_then(Value::as_str)
            && !c.eq_ignore_ascii_case(current.currency.code())
        {
            return Err(bad_request("the currency of a checkout cannot change"));
        }
        let mut update = self.update_from(actor, &request, Some(&current)).await?;
        if let Some(url) = self.webhook_url(profile).await {
            update = update.webhook_url(Some(url));
        }
        let view = engine
            .update_agent_session(actor, id, update)
            .await
            .map_err(|e| answer_for(&e))?;
        Ok(Answer::ok(self.checkout(version, &view)))
    }

    async fn complete(
        &self,
        actor: &Actor,
        version: Version,
        id: &str,
        body: &[u8],
    ) -> std::result::Result<Answer, Answer> {
        let id = session_id(id)?;
        let request = parse(body)?;
        let engine = &self.inner.engine;
        let view = engine
            .agent_view(actor, id)
            .await
            .map_err(|e| answer_for(&e))?;
        if view.session.status == crate::agent::AgentSessionStatus::Open {
            if view.session.destination().is_none() || view.session.selected_option.is_none() {
                if view.priced.as_ref().is_ok_and(|p| p.requires_shipping) {
                    return Err(bad_request(
                        "Fulfillment address and option must be selected",
                    ));
                }
            } else if self.inner.config.require_street_address
                && view
                    .session
                    .destination()
                    .is_some_and(|d| !d.address.is_complete())
            {
                return Err(bad_request(
                    "Fulfillment address must have a street address and a city",
                ));
            }
        } else {
            // A replay with the same key got the first answer already.
            return Err(Answer::error(
                409,
                "CHECKOUT_NOT_MODIFIABLE",
                format!("the checkout is {}", view.session.status_name()),
            ));
        }
        let data = request.get("payment_data").unwrap_or(&Value::Null);
        let handler = data
            .get("handler_id")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let credential = data.get("credential").unwrap_or(&Value::Null);
        let mut payment = self
            .inner
            .config
            .credentials
            .payment(handler, credential)
            .map_err(|e| Answer::error(400, "INVALID_PAYMENT", e.to_string()))?;
        if let Ok(priced) = &view.priced {
            payment = payment.expected_total(Some(priced.total));
        }
        match engine.complete_agent_session(actor, id, payment).await {
            // Placed, or waiting for the buyer (the session says which).
            Ok((view, _)) => Ok(Answer::ok(self.checkout(version, &view))),
            Err(e) => Err(answer_for(&e)),
        }
    }

    async fn cancel(
        &self,
        actor: &Actor,
        version: Version,
        id: &str,
    ) -> std::result::Result<Answer, Answer> {
        let id = session_id(id)?;
        let engine = &self.inner.engine;
        let current = engine
            .agent_session(actor, id)
            .await
            .map_err(|e| answer_for(&e))?;
        if current.status != crate::agent::AgentSessionStatus::Open {
            return Err(Answer::error(
                409,
                "CHECKOUT_NOT_MODIFIABLE",
                format!("the checkout is {}", current.status_name()),
            ));
        }
        let view = engine
            .cancel_agent_session(actor, id)
            .await
            .map_err(|e| answer_for(&e))?;
        Ok(Answer::ok(self.checkout(version, &view)))
    }

    pub(crate) async fn order_view(
        &self,
        actor: &Actor,
        id: &str,
    ) -> std::result::Result<AgentView, Answer> {
        let order: OrderId = id
            .parse()
            .map_err(|_| Answer::error(404, "RESOURCE_NOT_FOUND", "no such order"))?;
        self.inner
            .engine
            .agent_order(actor, order)
            .await
            .map_err(|e| answer_for(&e))
    }

    pub(crate) fn render_order(
        &self,
        version: Version,
        view: &AgentView,
    ) -> std::result::Result<Value, Answer> {
        render::order(&self.inner.config, version, view)
            .ok_or_else(|| Answer::error(404, "RESOURCE_NOT_FOUND", "no such order"))
    }

    async fn read_order(
        &self,
        actor: &Actor,
        version: Version,
        id: &str,
    ) -> std::result::Result<Answer, Answer> {
        let view = self.order_view(actor, id).await?;
        Ok(Answer::ok(self.render_order(version, &view)?))
    }

    async fn update_order(
        &self,
        actor: &Actor,
        version: Version,
        id: &str,
        body: &[u8],
    ) -> std::result::Result<Answer, Answer> {
        let request = parse(body)?;
        let view = self.order_view(actor, id).await?;
        let mut annotations = Vec::new();
        let shipments: Vec<String> = view
            .order
            .iter()
            .flat_map(|o| o.shipments().iter().map(|s| s.id.to_string()))
            .collect();
        if let Some(events) = request.get("fulfillment").and_then(|f| f.get("events")) {
            let events = events
                .as_array()
                .ok_or_else(|| unprocessable("fulfillment.events must be a list"))?;
            for e in events {
                let id = e
                    .get("id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| unprocessable("a fulfillment event needs an id"))?;
                if e.get("type").and_then(Value::as_str).is_none() {
                    return Err(unprocessable("a fulfillment event needs a type"));
                }
                if shipments.iter().any(|s| s == id) {
                    continue;
                }
                annotations.push(tagged(e, "fulfillment_event")?);
            }
        }
        if let Some(adjustments) = request.get("adjustments") {
            let adjustments = adjustments
                .as_array()
                .ok_or_else(|| unprocessable("adjustments must be a list"))?;
            for a in adjustments {
                if a.get("id").and_then(Value::as_str).is_none()
                    || a.get("type").and_then(Value::as_str).is_none()
                {
                    return Err(unprocessable("an adjustment needs an id and a type"));
                }
                match a.get("status").and_then(Value::as_str) {
                    Some("pending" | "completed" | "failed") => {}
                    _ => {
                        return Err(unprocessable(
                            "an adjustment's status is pending, completed or failed",
                        ));
                    }
                }
                if a.get("amount").is_some_and(|m| !m.is_i64() && !m.is_u64()) {
                    return Err(unprocessable(
                        "an adjustment's amount is an integer in minor units",
                    ));
                }
                annotations.push(tagged(a, "adjustment")?);
            }
        }
        let order = view
            .session
            .order_id
            .ok_or_else(|| Answer::error(404, "RESOURCE_NOT_FOUND", "no such order"))?;
        let view = self
            .inner
            .engine
            .annotate_agent_order(actor, order, annotations)
            .await
            .map_err(|e| match e {
                Error::LimitExceeded { .. } | Error::Invalid { .. } => {
                    unprocessable(&e.to_string())
                }
                other => answer_for(&other),
            })?;
        Ok(Answer::ok(self.render_order(version, &view)?))
    }
}

fn tagged(v: &Value, kind: &str) -> std::result::Result<Value, Answer> {
    let mut v = v.clone();
    match &mut v {
        Value::Object(map) => {
            map.insert("ucp_kind".into(), Value::String(kind.to_owned()));
            Ok(v)
        }
        _ => Err(unprocessable("each entry is an object")),
    }
}

fn unprocessable(detail: &str) -> Answer {
    Answer::error(422, "INVALID_REQUEST", detail)
}

fn parse(body: &[u8]) -> std::result::Result<Value, Answer> {
    if body.is_empty() {
        return Ok(json!({}));
    }
    let v: Value =
        serde_json::from_slice(body).map_err(|e| bad_request(format!("malformed JSON: {e}")))?;
    if !v.is_object() {
        return Err(bad_request("the body must be a JSON object"));
    }
    Ok(v)
}

fn session_id(id: &str) -> std::result::Result<AgentSessionId, Answer> {
    id.parse()
        .map_err(|_| Answer::error(404, "RESOURCE_NOT_FOUND", "no such checkout session"))
}

fn encode(answer: &Answer) -> (u16, Vec<u8>) {
    (
        answer.status,
        serde_json::to_vec(&answer.body).unwrap_or_default(),
    )
}

fn respond((status, body): (u16, Vec<u8>)) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn discovery(State(m): State<UcpMerchant>) -> Response {
    respond((200, serde_json::to_vec(&m.profile()).unwrap_or_default()))
}

async fn create(State(m): State<UcpMerchant>, headers: HeaderMap, body: Body) -> Response {
    respond(
        m.handle_body(&Method::POST, "checkout-sessions", &headers, body)
            .await,
    )
}

async fn read(
    State(m): State<UcpMerchant>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let path = format!("checkout-sessions/{id}");
    respond(m.handle(&Method::GET, &path, &headers, &[]).await)
}

async fn update(
    State(m): State<UcpMerchant>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let path = format!("checkout-sessions/{id}");
    respond(m.handle_body(&Method::PUT, &path, &headers, body).await)
}

async fn complete(
    State(m): State<UcpMerchant>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let path = format!("checkout-sessions/{id}/complete");
    respond(m.handle_body(&Method::POST, &path, &headers, body).await)
}

async fn cancel(
    State(m): State<UcpMerchant>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let path = format!("checkout-sessions/{id}/cancel");
    respond(m.handle_body(&Method::POST, &path, &headers, body).await)
}

async fn read_order(
    State(m): State<UcpMerchant>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let path = format!("orders/{id}");
    respond(m.handle(&Method::GET, &path, &headers, &[]).await)
}

async fn update_order(
    State(m): State<UcpMerchant>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let path = format!("orders/{id}");
    respond(m.handle_body(&Method::PUT, &path, &headers, body).await)
}
