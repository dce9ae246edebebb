//! The Agentic Commerce Protocol's checkout API (`2026-04-17`) over the
//! engine's agent sessions: `POST /checkout_sessions`, update
//! (`POST /checkout_sessions/{id}`), retrieve, complete and cancel, and
//! order webhooks signed with `Merchant-Signature`.
//!
//! ```no_run
//! # async fn run(engine: cartwright::Engine) -> cartwright::Result<()> {
//! use cartwright::agentic::acp::{AcpConfig, AcpMerchant, AcpPlatform};
//! let base = "https://shop.example/".parse().map_err(|_| cartwright::Error::invalid("url", "bad"))?;
//! let config = AcpConfig::new(base).platform(
//!     AcpPlatform::new("openai", "a-long-secret-api-key-for-openai")?
//!         .webhook("https://agent.example/acp/order_events", "whsec_shared_secret")?,
//! );
//! let merchant = AcpMerchant::new(engine.clone(), config)?;
//! let app = merchant.router();
//! let relay = cartwright::relay::Relay::new(engine, vec![merchant.webhook_sink()])?;
//! tokio::spawn(relay.run(std::time::Duration::from_millis(250)));
//! # let _ = app; Ok(())
//! # }
//! ```
//!
//! **Authentication**: `Authorization: Bearer <key>`, one key per agent
//! platform ([`AcpPlatform`]); the platform is the
//! [`Actor::Agent`] the engine sees, so one platform
//! never reaches another's sessions (404).
//!
//! **Idempotency** (as the spec says): every POST needs an
//! `Idempotency-Key` (400 `idempotency_key_required`); keys are scoped to
//! the platform and the endpoint and kept by the store; the same key and
//! body replay the first answer byte for byte with `Idempotent-Replayed:
//! true`; a request still running answers 409 `idempotency_in_flight` with
//! `Retry-After`; another body under the key is 422
//! `idempotency_conflict`. Server errors are not kept.
//!
//! **Payments**: `payment_data.instrument.credential` (a delegated vault
//! token) goes through the configured
//! [`CredentialHandler`] to the engine's
//! checkout; a payment that needs 3-D Secure leaves the session
//! `authentication_required` with a `continue_url`.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::{AgentAuth, BearerKeys, CredentialHandler, TokenCredentials};
use crate::actor::Actor;
use crate::agent::{AgentProtocol, AgentSessionId, AgentSessionStatus, StoredResponse};
use crate::agents::{AgentUpdate, AgentView};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::money::Currency;
use crate::store::RequestState;
use crate::webhook::WebhookSecret;

mod render;
mod webhooks;
mod wire;

use wire::buyer_from;

pub use webhooks::AcpWebhookSink;

/// The ACP version spoken.
pub const VERSION: &str = "2026-04-17";
/// Largest request body taken, in bytes.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// The destination id a session's `fulfillment_details` address gets.
const DETAILS: &str = "fulfillment_details";

/// One agent platform the shop accepts: its API key and, if it wants
/// order events, where and with what secret.
#[derive(Clone)]
pub struct AcpPlatform {
    name: String,
    key: String,
    webhook: Option<(String, WebhookSecret)>,
}

impl std::fmt::Debug for AcpPlatform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcpPlatform")
            .field("name", &self.name)
            .field("webhook", &self.webhook.as_ref().map(|w| &w.0))
            .finish_non_exhaustive()
    }
}

impl AcpPlatform {
    /// The platform `name`, authenticated by `key` (`Authorization: Bearer`).
    ///
    /// # Errors
    /// As [`BearerKeys::with_key`].
    pub fn new(name: &str, key: &str) -> Result<Self> {
        BearerKeys::new().with_key(key, name)?;
        Ok(Self {
            name: name.to_owned(),
            key: key.to_owned(),
            webhook: None,
        })
    }

    /// Sends the platform's order events to `url`, signed with `secret`
    /// (checked against the engine's webhook policy when sent).
    ///
    /// # Errors
    /// [`Error::Invalid`] for a URL that does not parse or a secret that
    /// is not a valid [`WebhookSecret`].
    pub fn webhook(mut self, url: &str, secret: &str) -> Result<Self> {
        url::Url::parse(url)
            .map_err(|_| Error::invalid("webhook url", crate::validate::shown(url)))?;
        self.webhook = Some((url.to_owned(), WebhookSecret::new(secret.to_owned())?));
        Ok(self)
    }
}

/// How the ACP service is set up.
#[derive(Clone)]
#[non_exhaustive]
pub struct AcpConfig {
    /// The shop's base URL (order links and continue URLs are under it).
    pub base_url: url::Url,
    /// The platforms accepted.
    pub platforms: Vec<AcpPlatform>,
    /// How credentials become payments.
    pub credentials: Arc<dyn CredentialHandler>,
    /// The payment handlers offered (ACP `PaymentHandler` objects).
    pub handlers: Vec<Value>,
    /// Links shown on sessions (`type` as ACP names them, `url`).
    pub links: Vec<(String, String)>,
}

impl std::fmt::Debug for AcpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcpConfig")
            .field("base_url", &self.base_url.as_str())
            .field("platforms", &self.platforms)
            .finish_non_exhaustive()
    }
}

impl AcpConfig {
    /// Served at `base_url`, no platform yet, tokens for the engine's
    /// default provider.
    pub fn new(base_url: url::Url) -> Self {
        Self {
            base_url,
            platforms: Vec::new(),
            credentials: Arc::new(TokenCredentials::new()),
            handlers: Vec::new(),
            links: Vec::new(),
        }
    }

    /// Accepts a platform.
    #[must_use]
    pub fn platform(mut self, platform: AcpPlatform) -> Self {
        self.platforms.push(platform);
        self
    }

    /// Sets how credentials become payments.
    #[must_use]
    pub fn credentials(mut self, credentials: Arc<dyn CredentialHandler>) -> Self {
        self.credentials = credentials;
        self
    }

    /// Offers a payment handler.
    #[must_use]
    pub fn handler(mut self, handler: Value) -> Self {
        self.handlers.push(handler);
        self
    }

    /// Shows a link on sessions.
    #[must_use]
    pub fn link(mut self, kind: &str, url: &str) -> Self {
        self.links.push((kind.to_owned(), url.to_owned()));
        self
    }

    pub(crate) fn order_url(&self, order: crate::id::OrderId) -> String {
        format!("{}orders/{order}", self.base_url.as_str())
    }
}

/// The ACP merchant service over an engine.
#[derive(Clone)]
pub struct AcpMerchant {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    config: AcpConfig,
    keys: BearerKeys,
    client: reqwest::Client,
}

impl std::fmt::Debug for AcpMerchant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcpMerchant")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// An answer: status, body and extra headers.
struct Answer {
    status: u16,
    body: Value,
}

impl Answer {
    fn error(status: u16, kind: &str, code: &str, message: impl AsRef<str>) -> Self {
        Self {
            status,
            body: render::error(kind, code, message.as_ref()),
        }
    }

    fn invalid(code: &str, message: impl AsRef<str>) -> Self {
        Self::error(400, "invalid_request", code, message)
    }
}

fn answer_for(e: &Error) -> Answer {
    let message = e.to_string();
    match e {
        Error::OutOfStock { .. } => Answer::invalid("out_of_stock", message),
        Error::NotFound { .. } | Error::Forbidden => {
            Answer::error(404, "invalid_request", "not_found", message)
        }
        Error::NotPurchasable { .. } | Error::NoPrice { .. } | Error::NotInChannel { .. } => {
            Answer::invalid("invalid", message)
        }
        Error::Invalid { .. }
        | Error::LimitExceeded { .. }
        | Error::CurrencyMismatch { .. }
        | Error::EmptyCart => Answer::invalid("invalid", message),
        Error::Incomplete(_) => Answer::invalid("missing", message),
        Error::IllegalTransition { .. } | Error::CartNotActive { .. } => {
            Answer::error(409, "invalid_request", "conflict", message)
        }
        Error::PaymentDeclined { .. } => {
            Answer::error(402, "invalid_request", "payment_declined", message)
        }
        Error::PriceChanged { .. }
        | Error::UsageLimitReached { .. }
        | Error::ShippingUnavailable(_) => {
            Answer::error(409, "invalid_request", "conflict", message)
        }
        Error::Conflict(_) | Error::CheckoutInProgress(_) | Error::PaymentInProgress { .. } => {
            Answer::error(409, "invalid_request", "conflict", message)
        }
        Error::PaymentUnavailable(_) | Error::Busy(_) => {
            Answer::error(503, "service_unavailable", "service_unavailable", message)
        }
        _ => Answer::error(
            500,
            "processing_error",
            "processing_error",
            "the request could not be completed",
        ),
    }
}

type Outcome = std::result::Result<Answer, Answer>;

impl AcpMerchant {
    /// The service over `engine`.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a base URL that is not http(s), has a query
    /// or no trailing `/`, or two platforms with one name; [`Error::Storage`]
    /// when the HTTP client for webhooks cannot be built.
    pub fn new(engine: Engine, config: AcpConfig) -> Result<Self> {
        let base = &config.base_url;
        if !matches!(base.scheme(), "http" | "https")
            || base.query().is_some()
            || !base.path().ends_with('/')
        {
            return Err(Error::invalid(
                "ACP base url",
                "must be http(s), end with / and have no query",
            ));
        }
        let mut keys = BearerKeys::new();
        for (i, p) in config.platforms.iter().enumerate() {
            if config.platforms.iter().take(i).any(|q| q.name == p.name) {
                return Err(Error::invalid(
                    "ACP platform",
                    crate::validate::shown(&p.name),
                ));
            }
            keys = keys.with_key(&p.key, &p.name)?;
        }
        let client = crate::relay::webhook::guarded_client(
            &engine.config().webhook_policy,
            std::time::Duration::from_secs(10),
        )?;
        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                config,
                keys,
                client,
            }),
        })
    }

    /// The engine it serves.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// The relay sink delivering each platform's order events.
    pub fn webhook_sink(&self) -> Arc<dyn crate::relay::Sink> {
        Arc::new(AcpWebhookSink::new(self.clone()))
    }

    /// The axum router: mount it at the base URL's path.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/checkout_sessions", post(create))
            .route("/checkout_sessions/{id}", get(read).post(update))
            .route("/checkout_sessions/{id}/complete", post(complete))
            .route("/checkout_sessions/{id}/cancel", post(cancel))
            .with_state(self.clone())
    }

    /// [`AcpMerchant::handle`] for a streamed body, read up to
    /// [`MAX_BODY_BYTES`] (a longer one is refused with the protocol's 413
    /// without being read further).
    pub async fn handle_body(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        body: Body,
    ) -> (u16, Vec<u8>, Vec<(&'static str, String)>) {
        match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
            Ok(bytes) => self.handle(method, path, headers, &bytes).await,
            Err(_) => {
                let a = Answer::error(
                    413,
                    "invalid_request",
                    "request_too_large",
                    format!("the body is over {MAX_BODY_BYTES} bytes"),
                );
                finish(&a, Vec::new())
            }
        }
    }

    /// Handles one request (framework-agnostic); returns the status, the
    /// body and the headers to add. `path` is relative to the base URL.
    pub async fn handle(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> (u16, Vec<u8>, Vec<(&'static str, String)>) {
        let mut extra: Vec<(&'static str, String)> = Vec::new();
        if body.len() > MAX_BODY_BYTES {
            let a = Answer::error(
                413,
                "invalid_request",
                "request_too_large",
                format!("the body is over {MAX_BODY_BYTES} bytes"),
            );
            return finish(&a, extra);
        }
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        if let Some(id) = text("request-id").filter(|r| r.len() <= 255) {
            extra.push(("Request-Id", id));
        }
        let Some(agent) = self.inner.keys.authenticate(headers) else {
            let a = Answer::error(
                401,
                "invalid_request",
                "unauthorized",
                "a valid bearer key is needed",
            );
            return finish(&a, extra);
        };
        match text("api-version") {
            Some(v) if v == VERSION => {}
            other => {
                let mut body = render::error(
                    "invalid_request",
                    "unsupported_api_version",
                    &format!(
                        "API-Version {} is not supported",
                        other
                            .as_deref()
                            .map(crate::validate::shown)
                            .unwrap_or_else(|| "(missing)".into())
                    ),
                );
                if let Value::Object(m) = &mut body {
                    m.insert("supported_versions".into(), json!([VERSION]));
                }
                return finish(&Answer { status: 400, body }, extra);
            }
        }
        let actor = Actor::Agent(agent);
        let post = *method == Method::POST;
        let key = text("idempotency-key");
        let scoped = match (post, &key) {
            (false, _) => None,
            (true, None) => {
                let a = Answer::invalid(
                    "idempotency_key_required",
                    "Idempotency-Key header is required",
                );
                return finish(&a, extra);
            }
            (true, Some(k)) if k.is_empty() || k.len() > crate::agent::MAX_REQUEST_KEY_LEN => {
                let a = Answer::invalid("invalid", "Idempotency-Key must be 1 to 255 characters");
                return finish(&a, extra);
            }
            (true, Some(k)) => {
                extra.push(("Idempotency-Key", k.clone()));
                // Scoped to the platform (the engine) and the endpoint.
                let endpoint = path.trim_matches('/');
                Some(super::fingerprint("ACP-KEY", endpoint, k.as_bytes()))
            }
        };
        if let Some(key) = &scoped {
            let fingerprint = super::fingerprint(method.as_str(), path, body);
            match self
                .inner
                .engine
                .claim_agent_request(&actor, key, &fingerprint)
                .await
            {
                Ok(RequestState::Claimed) => {}
                Ok(RequestState::Done(stored)) => {
                    extra.push(("Idempotent-Replayed", "true".into()));
                    return (stored.status, stored.body, extra);
                }
                Ok(RequestState::InFlight) => {
                    extra.push(("Retry-After", "1".into()));
                    let a = Answer::error(
                        409,
                        "invalid_request",
                        "idempotency_in_flight",
                        "A request with this Idempotency-Key is currently being processed",
                    );
                    return finish(&a, extra);
                }
                Ok(RequestState::Conflict) => {
                    let a = Answer::error(
                        422,
                        "invalid_request",
                        "idempotency_conflict",
                        "Idempotency-Key has already been used with a different request body",
                    );
                    return finish(&a, extra);
                }
                Err(e) => return finish(&answer_for(&e), extra),
            }
        }
        // Boxed: a checkout's future is large, and a caller may await this
        // one inline on a small stack.
        let answer = Box::pin(self.run(&actor, method, path, body))
            .await
            .unwrap_or_else(|a| a);
        let bytes = serde_json::to_vec(&answer.body).unwrap_or_default();
        if let Some(key) = &scoped {
            let kept = if answer.status >= 500 {
                self.inner.engine.release_agent_request(&actor, key).await
            } else {
                self.inner
                    .engine
                    .finish_agent_request(
                        &actor,
                        key,
                        &StoredResponse::new(answer.status, bytes.clone()),
                    )
                    .await
            };
            if let Err(error) = kept {
                tracing::warn!(%error, "the ACP answer could not be kept for replay");
            }
        }
        (answer.status, bytes, extra)
    }

    async fn run(&self, actor: &Actor, method: &Method, path: &str, body: &[u8]) -> Outcome {
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        match (method.as_str(), parts.as_slice()) {
            ("POST", ["checkout_sessions"]) => self.create(actor, body).await,
            ("GET", ["checkout_sessions", id]) => self.read(actor, id).await,
            ("POST", ["checkout_sessions", id]) => self.update(actor, id, body).await,
            ("POST", ["checkout_sessions", id, "complete"]) => self.complete(actor, id, body).await,
            ("POST", ["checkout_sessions", id, "cancel"]) => self.cancel(actor, id).await,
            _ => Err(Answer::error(
                404,
                "invalid_request",
                "not_found",
                "no such resource",
            )),
        }
    }

    fn render(&self, view: &AgentView) -> Value {
        render::session(&self.inner.config, view)
    }

    async fn create(&self, actor: &Actor, body: &[u8]) -> Outcome {
        let request = parse(body)?;
        let currency = request
            .get("currency")
            .and_then(Value::as_str)
            .ok_or_else(|| Answer::invalid("missing", "currency is required"))?;
        let currency = Currency::from_code(&currency.to_ascii_uppercase())
            .map_err(|e| Answer::invalid("invalid", e.to_string()))?;
        if request
            .get("line_items")
            .or_else(|| request.get("items"))
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
        {
            return Err(Answer::invalid(
                "missing",
                "line_items needs at least one item",
            ));
        }
        let update = self.update_from(&request, None).await?;
        let engine = &self.inner.engine;
        let session = engine
            .open_agent_session(actor, AgentProtocol::Acp, currency)
            .await
            .map_err(|e| answer_for(&e))?;
        match engine.update_agent_session(actor, session.id, update).await {
            Ok(view) => Ok(Answer {
                status: 201,
                body: self.render(&view),
            }),
            Err(e) => {
                let _ = engine.cancel_agent_session(actor, session.id).await;
                Err(answer_for(&e))
            }
        }
    }

    async fn read(&self, actor: &Actor, id: &str) -> Outcome {
        let id = session_id(id)?;
        let view = self
            .inner
            .engine
            .agent_view(actor, id)
            .await
            .map_err(|e| answer_for(&e))?;
        Ok(Answer {
            status: 200,
            body: self.render(&view),
        })
    }

    async fn update(&self, actor: &Actor, id: &str, body: &[u8]) -> Outcome {
        let id = session_id(id)?;
        let request = parse(body)?;
        let engine = &self.inner.engine;
        let current = engine
            .agent_session(actor, id)
            .await
            .map_err(|e| answer_for(&e))?;
        if current.status != AgentSessionStatus::Open {
            return Err(Answer::error(
                409,
                "invalid_request",
                "conflict",
                format!("the checkout session is {}", current.status_name()),
            ));
        }
        let update = self.update_from(&request, Some(&current)).await?;
        let view = engine
            .update_agent_session(actor, id, update)
            .await
            .map_err(|e| answer_for(&e))?;
        Ok(Answer {
            status: 200,
            body: self.render(&view),
        })
    }

    async fn complete(&self, actor: &Actor, id: &str, body: &[u8]) -> Outcome {
        let id = session_id(id)?;
        let request = parse(body)?;
        let engine = &self.inner.engine;
        let current = engine
            .agent_session(actor, id)
            .await
            .map_err(|e| answer_for(&e))?;
        if current.status != AgentSessionStatus::Open {
            return Err(Answer::error(
                409,
                "invalid_request",
                "conflict",
                format!("the checkout session is {}", current.status_name()),
            ));
        }
        let data = request
            .get("payment_data")
            .filter(|d| d.is_object())
            .ok_or_else(|| Answer::invalid("missing", "payment_data is required"))?;
        // The schema's shape (`handler_id`, `instrument.credential`), or
        // the shape of the spec's own examples (`token`, `provider`).
        let legacy = data.get("token").filter(|t| t.is_string()).map(|token| {
            let provider = data
                .get("provider")
                .and_then(Value::as_str)
                .unwrap_or_default();
            (provider, json!({"type": "token", "token": token}))
        });
        let (handler, credential) = match (
            data.get("instrument").and_then(|i| i.get("credential")),
            legacy,
        ) {
            (Some(credential), _) => {
                let handler = data
                    .get("handler_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                (handler, credential.clone())
            }
            (None, Some(legacy)) => legacy,
            (None, None) => {
                return Err(Answer::invalid(
                    "missing",
                    "payment_data.instrument.credential is required",
                ));
            }
        };
        let credential = &credential;
        let buyer = match request.get("buyer").filter(|b| b.is_object()) {
            Some(b) => Some(buyer_from(b)?),
            None => None,
        };
        let payment_for = self
            .inner
            .config
            .credentials
            .payment(handler, credential)
            .map_err(|e| Answer::invalid("invalid", e.to_string()))?;
        if let Some(buyer) = buyer {
            let update = AgentUpdate::default().buyer(Some(buyer));
            engine
                .update_agent_session(actor, id, update)
                .await
                .map_err(|e| answer_for(&e))?;
        }
        let view = engine
            .agent_view(actor, id)
            .await
            .map_err(|e| answer_for(&e))?;
        let mut payment = payment_for;
        if let Ok(priced) = &view.priced {
            payment = payment.expected_total(Some(priced.total));
        }
        // Placed, or waiting for the buyer (the session says which).
        match engine.complete_agent_session(actor, id, payment).await {
            Ok((view, _)) => Ok(Answer {
                status: 200,
                body: self.render(&view),
            }),
            Err(e) => Err(answer_for(&e)),
        }
    }

    async fn cancel(&self, actor: &Actor, id: &str) -> Outcome {
        let id = session_id(id)?;
        let engine = &self.inner.engine;
        let current = engine
            .agent_session(actor, id)
            .await
            .map_err(|e| answer_for(&e))?;
        if current.status != AgentSessionStatus::Open {
            return Err(Answer::error(
                405,
                "invalid_request",
                "conflict",
                format!("the checkout session is {}", current.status_name()),
            ));
        }
        let view = engine
            .cancel_agent_session(actor, id)
            .await
            .map_err(|e| answer_for(&e))?;
        Ok(Answer {
            status: 200,
            body: self.render(&view),
        })
    }
}

fn parse(body: &[u8]) -> std::result::Result<Value, Answer> {
    if body.is_empty() {
        return Ok(json!({}));
    }
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| Answer::invalid("invalid", format!("malformed JSON: {e}")))?;
    if !v.is_object() {
        return Err(Answer::invalid("invalid", "the body must be a JSON object"));
    }
    Ok(v)
}

fn session_id(id: &str) -> std::result::Result<AgentSessionId, Answer> {
    id.parse().map_err(|_| {
        Answer::error(
            404,
            "invalid_request",
            "not_found",
            "no such checkout session",
        )
    })
}

fn finish(
    answer: &Answer,
    extra: Vec<(&'static str, String)>,
) -> (u16, Vec<u8>, Vec<(&'static str, String)>) {
    (
        answer.status,
        serde_json::to_vec(&answer.body).unwrap_or_default(),
        extra,
    )
}

fn respond((status, body, extra): (u16, Vec<u8>, Vec<(&'static str, String)>)) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    for (name, value) in extra {
        if let Ok(v) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, v);
        }
    }
    response
}

async fn create(State(m): State<AcpMerchant>, headers: HeaderMap, body: Body) -> Response {
    respond(
        m.handle_body(&Method::POST, "checkout_sessions", &headers, body)
            .await,
    )
}

async fn read(
    State(m): State<AcpMerchant>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let path = format!("checkout_sessions/{id}");
    respond(m.handle(&Method::GET, &path, &headers, &[]).await)
}

async fn update(
    State(m): State<AcpMerchant>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let path = format!("checkout_sessions/{id}");
    respond(m.handle_body(&Method::POST, &path, &headers, body).await)
}

async fn complete(
    State(m): State<AcpMerchant>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let path = format!("checkout_sessions/{id}/complete");
    respond(m.handle_body(&Method::POST, &path, &headers, body).await)
}

async fn cancel(
    State(m): State<AcpMerchant>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let path = format!("checkout_sessions/{id}/cancel");
    respond(m.handle_body(&Method::POST, &path, &headers, body).await)
}
