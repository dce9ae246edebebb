//! Driving adapters for AI agents: the agentic commerce protocols over the
//! engine's agent sessions ([`Engine::open_agent_session`] and the rest of
//! [`crate::agents`]).
//!
//! | module | protocol | versions | feature |
//! |---|---|---|---|
//! | [`ucp`] | Universal Commerce Protocol (shopping service, REST) | `2026-01-11` | `ucp` |
//! | [`acp`] | Agentic Commerce Protocol (checkout, order webhooks) | `2026-04-17` | `acp` |
//!
//! A protocol module is a framework-agnostic service plus an `axum`
//! router; both only call the engine (never a store), as the agent
//! platform that the shop's [`AgentAuth`] recognised ([`Actor::Agent`]), so
//! the engine's access table keeps one agent away from another's sessions
//! and orders.
//!
//! [`Engine::open_agent_session`]: crate::Engine::open_agent_session
//! [`Actor::Agent`]: crate::Actor::Agent

use crate::agents::AgentPayment;
use crate::error::{Error, Result};

#[cfg(feature = "acp")]
#[cfg_attr(docsrs, doc(cfg(feature = "acp")))]
pub mod acp;
#[cfg(feature = "ucp")]
#[cfg_attr(docsrs, doc(cfg(feature = "ucp")))]
pub mod ucp;

/// Recognises the agent platform behind a request. The embedding program
/// decides how agents authenticate (a bearer key per platform, a request
/// signature checked against the platform's published keys, mTLS); the
/// answer is the platform's name, the [`Actor::Agent`](crate::Actor::Agent)
/// the engine sees.
pub trait AgentAuth: Send + Sync {
    /// The platform's name, or `None` to refuse the request (401).
    fn authenticate(&self, headers: &axum::http::HeaderMap) -> Option<String>;
}

/// `Authorization: Bearer <key>`, one key per agent platform, compared in
/// constant time.
#[derive(Clone, Default)]
pub struct BearerKeys {
    keys: Vec<(String, String)>,
}

impl std::fmt::Debug for BearerKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BearerKeys")
            .field(
                "platforms",
                &self.keys.iter().map(|k| &k.1).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl BearerKeys {
    /// No keys (every request refused).
    pub fn new() -> Self {
        Self::default()
    }

    /// Accepts `key` as the platform `platform`.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a key shorter than 16 characters or not
    /// visible ASCII, or a platform name that is not 1 to
    /// [`MAX_AGENT_NAME_LEN`](crate::agent::MAX_AGENT_NAME_LEN) visible
    /// ASCII characters.
    pub fn with_key(mut self, key: &str, platform: &str) -> Result<Self> {
        crate::agent::check_agent_name(platform)?;
        if key.len() < 16 || key.len() > 512 || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::invalid(
                "agent key",
                "must be 16 to 512 visible ASCII characters",
            ));
        }
        self.keys.push((key.to_owned(), platform.to_owned()));
        Ok(self)
    }
}

impl AgentAuth for BearerKeys {
    fn authenticate(&self, headers: &axum::http::HeaderMap) -> Option<String> {
        use subtle::ConstantTimeEq;
        let value = headers
            .get(axum::http::header::AUTHORIZATION)?
            .to_str()
            .ok()?;
        let presented = value.strip_prefix("Bearer ")?.trim();
        let mut found = None;
        for (key, platform) in &self.keys {
            if bool::from(key.as_bytes().ct_eq(presented.as_bytes())) {
                found = Some(platform.clone());
            }
        }
        found
    }
}

/// Every request is the one platform `name`: for a conformance run or a
/// demo where agents do not authenticate (the UCP suite signs nothing).
/// Never in production: anyone reaching the endpoint acts as the platform.
#[derive(Debug, Clone)]
pub struct TrustEveryAgent(pub String);

impl AgentAuth for TrustEveryAgent {
    fn authenticate(&self, _headers: &axum::http::HeaderMap) -> Option<String> {
        Some(self.0.clone())
    }
}

/// Turns a protocol's payment credential into what the engine's payment
/// provider takes. Delegated credentials are tokens (a vaulted card, a
/// network token, a wallet's payload): the handler names the provider and
/// passes the token; a raw card number must never reach the engine, so a
/// handler that accepts cards tokenizes them at its vault first.
pub trait CredentialHandler: Send + Sync {
    /// The payment for `credential` (the protocol's JSON object) under the
    /// payment handler `handler_id`.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a credential it does not take (the agent gets
    /// the protocol's invalid-payment answer).
    fn payment(&self, handler_id: &str, credential: &serde_json::Value) -> Result<AgentPayment>;
}

/// Passes a token credential's `token` to one provider; refuses cards and
/// anything without a token.
#[derive(Debug, Clone, Default)]
pub struct TokenCredentials {
    provider: Option<String>,
}

impl TokenCredentials {
    /// Tokens for the engine's default provider.
    pub fn new() -> Self {
        Self::default()
    }

    /// Tokens for the provider registered as `name`.
    #[must_use]
    pub fn provider(mut self, name: &str) -> Self {
        self.provider = Some(name.to_owned());
        self
    }
}

impl CredentialHandler for TokenCredentials {
    fn payment(&self, _handler_id: &str, credential: &serde_json::Value) -> Result<AgentPayment> {
        let token = credential
            .get("token")
            .and_then(serde_json::Value::as_str)
            .filter(|t| !t.is_empty() && t.len() <= 4096)
            .ok_or_else(|| Error::invalid("payment credential", "a token credential is needed"))?;
        Ok(AgentPayment::new(token).provider(self.provider.clone()))
    }
}

/// A digest of a request (method, path, body) for idempotency: the same
/// key with another digest is another request.
pub(crate) fn fingerprint(method: &str, path: &str, body: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update(b"\0");
    h.update(path.trim_matches('/').as_bytes());
    h.update(b"\0");
    h.update(body);
    hex::encode(h.finalize())
}

/// Money as the protocols' integer minor units (never negative; an amount
/// beyond `i64` — which the engine's limits keep far away — shows as 0
/// rather than failing a response).
pub(crate) fn minor(m: crate::money::Money) -> i64 {
    m.to_minor()
        .ok()
        .and_then(|v| i64::try_from(v).ok())
        .unwrap_or(0)
        .max(0)
}

/// An order line's fulfilment as both protocols name it: `processing`
/// (nothing shipped), `partial` or `fulfilled`.
pub(crate) fn line_status(fulfilled: u32, quantity: u32) -> &'static str {
    if fulfilled >= quantity {
        "fulfilled"
    } else if fulfilled > 0 {
        "partial"
    } else {
        "processing"
    }
}

/// The agent session that placed `order` through `protocol`, for that
/// protocol's webhook sink: `None` when no agent of it placed the order.
///
/// # Errors
/// A transient [`SinkError`](crate::relay::SinkError) when the order
/// cannot be read now.
pub(crate) async fn agent_order_of(
    engine: &crate::Engine,
    order: crate::id::OrderId,
    protocol: crate::agent::AgentProtocol,
) -> std::result::Result<Option<crate::agents::AgentView>, crate::relay::SinkError> {
    match engine.agent_order(&crate::Actor::System, order).await {
        Ok(view) if view.session.protocol == protocol => Ok(Some(view)),
        Ok(_) | Err(Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(crate::relay::SinkError::transient(format!(
            "the order cannot be read: {e}"
        ))),
    }
}

/// Posts an order event's JSON `body` to an agent platform's `url` with
/// the protocol's signature `headers`: only to an address the engine's
/// webhook policy allows (checked here and, through the guarded client,
/// on every address the name resolves to), within the client's timeout,
/// reading none of the answer. A 2xx is delivered; anything else is a
/// failure the relay retries, or parks at once when the address is
/// refused.
///
/// # Errors
/// A [`SinkError`](crate::relay::SinkError), as said.
pub(crate) async fn post_order_event(
    client: &reqwest::Client,
    engine: &crate::Engine,
    url: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> std::result::Result<(), crate::relay::SinkError> {
    use crate::relay::SinkError;
    let checked = engine
        .config()
        .webhook_policy
        .check_url(url)
        .map_err(|e| SinkError::permanent(e.to_string()))?;
    let mut request = client
        .post(checked)
        .header(reqwest::header::CONTENT_TYPE, "application/json");
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let answer = request
        .body(body)
        .send()
        .await
        .map_err(|e| crate::relay::webhook::request_failure(&e))?;
    if answer.status().is_success() {
        Ok(())
    } else {
        Err(SinkError::transient(format!(
            "the platform's webhook answered {}",
            answer.status().as_u16()
        )))
    }
}
