//! Webhooks (feature `webhooks`): the relay posts each event to every
//! subscription that wants it ([`Engine::create_webhook`]), signed.
//!
//! A [`WebhookSender`] given to the relay ([`Relay::with_webhooks`])
//! makes each active subscription a sink of its own, named `webhook:<id>`:
//! its own progress, its own per-aggregate order, its own retries and
//! parked deliveries. Each request is
//!
//! ```text
//! POST <url>
//! Content-Type: application/cloudevents+json
//! Cartwright-Signature: t=<unix time>,v1=<hex HMAC-SHA256>
//! Cartwright-Event-Id: <event id>
//! Cartwright-Event-Type: <type name>
//!
//! <the CloudEvents 1.0 envelope>
//! ```
//!
//! checked on the receiving side with [`webhook::verify`](crate::webhook::verify).
//! An answer in 2xx delivers the event; anything else, a timeout
//! ([`WebhookDelivery::timeout`]) or a refused connection fails it, and the
//! relay tries again on its [`retry_schedule`](super::RelayConfig::retry_schedule)
//! (about 16 hours by default), then parks it for staff. An endpoint that
//! keeps failing is paused ([`EngineConfig::webhook_pausing`](crate::engine::EngineConfig::webhook_pausing));
//! its events wait in the outbox until staff resume it.
//!
//! What the sender refuses, whatever a subscription says: following a
//! redirect (a 3xx is a failure), a proxy from the environment, an address
//! the [`WebhookPolicy`] does not allow — checked on every address a host
//! name resolves to, at every connection, so a name that later resolves
//! to `127.0.0.1` or `169.254.169.254` reaches nothing (such a delivery is
//! parked at once). It reads at most [`MAX_RESPONSE_READ`] bytes of an
//! answer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use async_trait::async_trait;

use super::{Relay, Sink, SinkError};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::event::Event;
use crate::webhook::{SIGNATURE_HEADER, WebhookPolicy, WebhookSubscription};

/// Most bytes of an answer read (for the failure's text); the rest is
/// dropped with the connection.
pub const MAX_RESPONSE_READ: usize = 1_024;

/// How webhook requests are made.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WebhookDelivery {
    /// How long a request may take, connecting included (default 10 s; at
    /// most half the relay's lease).
    pub timeout: StdDuration,
    /// How long connecting may take (default 5 s).
    pub connect_timeout: StdDuration,
    /// The `User-Agent` sent.
    pub user_agent: String,
}

impl Default for WebhookDelivery {
    fn default() -> Self {
        Self {
            timeout: StdDuration::from_secs(10),
            connect_timeout: StdDuration::from_secs(5),
            user_agent: concat!("cartwright-webhooks/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

crate::domain::setters!(WebhookDelivery {
    timeout: StdDuration,
    connect_timeout: StdDuration,
} into {
    user_agent: String,
});

/// Posts events to webhook subscriptions. Give it to a relay with
/// [`Relay::with_webhooks`].
#[derive(Clone)]
pub struct WebhookSender {
    client: reqwest::Client,
    policy: Arc<WebhookPolicy>,
}

impl std::fmt::Debug for WebhookSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSender")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// Resolves host names, keeping only the addresses the policy allows.
struct GuardedResolver {
    policy: Arc<WebhookPolicy>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = Arc::clone(&self.policy);
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| policy.allows(a.ip()))
                .collect();
            if allowed.is_empty() {
                return Err(Box::new(Refused(host)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// An HTTP client that reaches only what `policy` allows: every address a
/// name resolves to is checked at each connection, redirects are not
/// followed, no proxy is used, and a request may take `timeout` in all.
/// The agentic protocols fetch agents' profiles and post their webhooks
/// with it.
///
/// # Errors
/// [`Error::Invalid`] for a timeout of zero or over 5 minutes;
/// [`Error::Storage`] when the client cannot be built.
#[cfg(any(feature = "ucp", feature = "acp"))]
pub(crate) fn guarded_client(
    policy: &WebhookPolicy,
    timeout: StdDuration,
) -> Result<reqwest::Client> {
    if timeout.is_zero() || timeout > StdDuration::from_secs(300) {
        return Err(Error::invalid(
            "timeout",
            "must be more than zero and at most 5 minutes",
        ));
    }
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("cartwright/", env!("CARGO_PKG_VERSION")))
        .dns_resolver(Arc::new(GuardedResolver {
            policy: Arc::new(policy.clone()),
        }))
        .build()
        .map_err(|e| Error::Storage {
            message: "an HTTP client cannot be built".into(),
            source: Some(Arc::new(e)),
        })
}

/// A host that resolves only to addresses the policy does not allow.
#[derive(Debug, thiserror::Error)]
#[error("{0} resolves only to addresses the webhook policy does not allow")]
struct Refused(String);

impl WebhookSender {
    /// A sender under `engine`'s [`WebhookPolicy`](crate::engine::EngineConfig::webhook_policy).
    ///
    /// # Errors
    /// [`Error::Invalid`] for a timeout of zero or over 5 minutes, or a
    /// `User-Agent` that is not visible ASCII; [`Error::Storage`] when the
    /// HTTP client cannot be built (its TLS set-up failed).
    pub fn new(engine: &Engine, delivery: WebhookDelivery) -> Result<Self> {
        let limit = StdDuration::from_secs(300);
        if delivery.timeout.is_zero()
            || delivery.timeout > limit
            || delivery.connect_timeout.is_zero()
            || delivery.connect_timeout > limit
        {
            return Err(Error::invalid(
                "webhook timeout",
                "must be more than zero and at most 5 minutes",
            ));
        }
        if delivery.user_agent.is_empty()
            || delivery.user_agent.len() > 200
            || !delivery
                .user_agent
                .bytes()
                .all(|b| b == b' ' || b.is_ascii_graphic())
        {
            return Err(Error::invalid(
                "user agent",
                crate::validate::shown(&delivery.user_agent),
            ));
        }
        let policy = Arc::new(engine.config().webhook_policy.clone());
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(delivery.timeout)
            .connect_timeout(delivery.connect_timeout)
            .user_agent(delivery.user_agent)
            .dns_resolver(Arc::new(GuardedResolver {
                policy: Arc::clone(&policy),
            }))
            .build()
            .map_err(|e| Error::Storage {
                message: "the webhook HTTP client cannot be built".into(),
                source: Some(Arc::new(e)),
            })?;
        Ok(Self { client, policy })
    }

    /// The sink delivering to `subscription` (the relay makes one for
    /// each active subscription itself; this is for a relay of one's own,
    /// or the sink conformance suite).
    pub fn sink(&self, subscription: WebhookSubscription) -> Arc<dyn Sink> {
        Arc::new(self.endpoint(subscription))
    }

    pub(super) fn endpoint(&self, subscription: WebhookSubscription) -> Endpoint {
        Endpoint {
            name: subscription.sink_name(),
            subscription,
            sender: self.clone(),
        }
    }

    /// Posts `envelope` to `subscription`, signed at `timestamp`.
    async fn post(
        &self,
        subscription: &WebhookSubscription,
        event: &Event,
        envelope: &serde_json::Value,
        timestamp: i64,
    ) -> std::result::Result<(), SinkError> {
        // A literal address is not resolved, so it is checked here (again:
        // the policy may have changed since the subscription was made).
        let url = self
            .policy
            .check_url(&subscription.url)
            .map_err(|e| SinkError::permanent(e.to_string()))?;
        let body = serde_json::to_vec(envelope)
            .map_err(|e| SinkError::permanent(format!("the event cannot be written: {e}")))?;
        let signature = crate::webhook::sign(&subscription.secret, timestamp, &body);
        let answer = self
            .client
            .post(url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/cloudevents+json",
            )
            .header(SIGNATURE_HEADER, signature)
            .header("Cartwright-Event-Id", event.id.to_string())
            .header("Cartwright-Event-Type", event.kind.type_name())
            .body(body)
            .send()
            .await;
        let mut response = match answer {
            Ok(response) => response,
            Err(e) => return Err(request_failure(&e)),
        };
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        // A little of the answer, for staff; never more.
        let mut read: Vec<u8> = Vec::new();
        while read.len() < MAX_RESPONSE_READ {
            match response.chunk().await {
                Ok(Some(chunk)) => read.extend_from_slice(&chunk),
                _ => break,
            }
        }
        read.truncate(MAX_RESPONSE_READ);
        let text: String = String::from_utf8_lossy(&read)
            .chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect();
        let what = if status.is_redirection() {
            "redirected (not followed)"
        } else {
            "answered"
        };
        Err(SinkError::transient(format!(
            "the endpoint {what} {}: {text}",
            status.as_u16()
        )))
    }
}

/// Why a request failed, for the record: never the address's secret parts.
pub(crate) fn request_failure(e: &reqwest::Error) -> SinkError {
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<Refused>() {
            return SinkError::permanent(refused.to_string());
        }
        source = cause.source();
    }
    if e.is_timeout() {
        SinkError::transient("the endpoint did not answer in time")
    } else if e.is_connect() {
        SinkError::transient("the endpoint cannot be reached")
    } else {
        SinkError::transient("the request failed")
    }
}

/// One subscription as a relay sink.
pub(super) struct Endpoint {
    name: String,
    subscription: WebhookSubscription,
    sender: WebhookSender,
}

impl Endpoint {
    pub(super) fn subscription(&self) -> &WebhookSubscription {
        &self.subscription
    }
}

#[async_trait]
impl Sink for Endpoint {
    fn name(&self) -> &str {
        &self.name
    }

    fn accepts(&self, event: &Event) -> bool {
        self.subscription.wants(event.kind.type_name())
    }

    async fn deliver(
        &self,
        event: &Event,
        envelope: &serde_json::Value,
    ) -> std::result::Result<(), SinkError> {
        // The wall clock, not the engine's: the receiver checks the
        // signature's time against its own clock.
        let now = chrono::Utc::now().timestamp();
        self.sender
            .post(&self.subscription, event, envelope, now)
            .await
    }
}

impl Relay {
    /// Delivers to webhook subscriptions too: each round, every active
    /// subscription is a sink (see the [module docs](self)).
    #[must_use]
    pub fn with_webhooks(mut self, sender: WebhookSender) -> Self {
        self.webhooks = Some(sender);
        self
    }

    /// A relay for webhook subscriptions only.
    pub fn for_webhooks(engine: Engine, sender: WebhookSender) -> Self {
        Self::empty(engine).with_webhooks(sender)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::dns::Resolve;

    fn resolver(policy: WebhookPolicy) -> GuardedResolver {
        GuardedResolver {
            policy: Arc::new(policy),
        }
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_loopback_reaches_nothing_unless_allowed() {
        let name =
            || -> reqwest::dns::Name { "localhost".parse().unwrap_or_else(|_| unreachable!()) };
        let refused = resolver(WebhookPolicy::default()).resolve(name()).await;
        let Err(error) = refused else {
            unreachable!("localhost must be refused")
        };
        assert!(error.to_string().contains("does not allow"), "{error}");
        let allowed = resolver(WebhookPolicy::default().allowed_networks(vec![
            "127.0.0.0/8".parse().unwrap_or_else(|_| unreachable!()),
            "::1/128".parse().unwrap_or_else(|_| unreachable!()),
        ]))
        .resolve(name())
        .await;
        let addrs: Vec<SocketAddr> = match allowed {
            Ok(addrs) => addrs.collect(),
            Err(e) => unreachable!("{e}"),
        };
        assert!(!addrs.is_empty());
        assert!(addrs.iter().all(|a| a.ip().is_loopback()));
    }
}
