//! Webhook subscriptions and their signatures.
//!
//! A [`WebhookSubscription`] is an HTTPS address that wants some event
//! types; the relay's webhook sink (`relay::webhook`, feature `webhooks`)
//! posts each such event there as a CloudEvents 1.0 JSON body, signed in a
//! header in the style of Stripe's:
//!
//! ```text
//! Cartwright-Signature: t=1765100000,v1=5f1c…
//! ```
//!
//! `t` is the Unix time of the request and `v1` the hex HMAC-SHA256, keyed
//! by the subscription's secret, of `t`, a full stop and the raw body. The
//! receiving side checks it with [`verify`] — the same code, so the two
//! cannot disagree — and refuses a request whose time is too far from its
//! clock, so a captured request cannot be replayed later.
//!
//! ```
//! use cartwright::webhook::{sign, verify, WebhookSecret};
//! let secret = WebhookSecret::generate();
//! let body = br#"{"specversion":"1.0"}"#;
//! let now = chrono::Utc::now();
//! let header = sign(&secret, now.timestamp(), body);
//! assert!(verify(&secret, &header, body, now, chrono::Duration::minutes(5)).is_ok());
//! assert!(verify(&secret, &header, b"{}", now, chrono::Duration::minutes(5)).is_err());
//! ```
//!
//! Where a subscription may point is the embedder's [`WebhookPolicy`]:
//! HTTPS only, and never an address in a private, loopback, link-local or
//! otherwise non-public range unless the policy allows that network — so a
//! subscription cannot be used to reach the shop's own network (the cloud
//! metadata service at 169.254.169.254, an admin port on localhost). The
//! sink checks every address a name resolves to when it connects, not only
//! when the subscription is made.
//!
//! Limits: [`MAX_WEBHOOK_URL_LEN`], [`WEBHOOK_SECRET_LEN`],
//! [`MAX_WEBHOOK_EVENT_TYPES`], [`MAX_WEBHOOK_DESCRIPTION_LEN`],
//! [`MAX_WEBHOOKS`].
//!
//! Does not know: HTTP; the sink does.

use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::event::EventKind;

pub use crate::id::WebhookId;

/// Longest subscription address, in bytes.
pub const MAX_WEBHOOK_URL_LEN: usize = 2_048;
/// Shortest and longest secret, in characters (visible ASCII).
pub const WEBHOOK_SECRET_LEN: std::ops::RangeInclusive<usize> = 24..=256;
/// Most event types (or patterns) one subscription names.
pub const MAX_WEBHOOK_EVENT_TYPES: usize = 64;
/// Longest description, in characters.
pub const MAX_WEBHOOK_DESCRIPTION_LEN: usize = 500;
/// Most subscriptions one shop keeps.
pub const MAX_WEBHOOKS: usize = 100;
/// The signature header's name.
pub const SIGNATURE_HEADER: &str = "Cartwright-Signature";
pub use crate::payment::webhook::MAX_SIGNATURE_HEADER_LEN;

/// A subscription's signing secret. Its `Debug` form hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(…)")
    }
}

impl WebhookSecret {
    /// A secret of the shop's choosing.
    ///
    /// # Errors
    /// [`Error::Invalid`] unless it is [`WEBHOOK_SECRET_LEN`] visible ASCII
    /// characters (the error does not repeat it).
    pub fn new(secret: impl Into<String>) -> Result<Self> {
        let secret = secret.into();
        if !WEBHOOK_SECRET_LEN.contains(&secret.len()) {
            return Err(Error::invalid(
                "webhook secret",
                format!(
                    "must be {} to {} characters, not {}",
                    WEBHOOK_SECRET_LEN.start(),
                    WEBHOOK_SECRET_LEN.end(),
                    secret.len()
                ),
            ));
        }
        if !secret.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::invalid(
                "webhook secret",
                "must be visible ASCII characters",
            ));
        }
        Ok(Self(secret))
    }

    /// A new random secret: `whsec_` and 64 hex digits (256 bits).
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        Self(format!("whsec_{}", hex::encode(bytes)))
    }

    /// The secret itself (to show the shop once, or to sign).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Where subscriptions may point. The default allows HTTPS to public
/// addresses only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WebhookPolicy {
    /// Allows `http://` addresses (tests, a receiver on the same host).
    pub allow_http: bool,
    /// Networks allowed although not public (say `127.0.0.0/8` for a
    /// receiver on loopback, `10.1.2.0/24` for one in the shop's network).
    pub allowed_networks: Vec<ipnet::IpNet>,
}

crate::domain::setters!(WebhookPolicy {
    allow_http: bool,
    allowed_networks: Vec<ipnet::IpNet>,
} into {});

impl WebhookPolicy {
    /// Whether a request may go to `ip`: a public address, or one in an
    /// allowed network.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        is_public(ip) || self.allowed_networks.iter().any(|n| n.contains(&ip))
    }

    /// Checks a subscription's address: `https` (or `http` where allowed),
    /// a host, no user name or password, no fragment, at most
    /// [`MAX_WEBHOOK_URL_LEN`] bytes, and — when the host is an IP address —
    /// an address the policy allows. A host name is checked when the sink
    /// resolves it, each time it connects.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming what is wrong, with the address shown
    /// bounded.
    pub fn check_url(&self, url: &str) -> Result<url::Url> {
        let bad = |why: &str| {
            Error::invalid(
                "webhook url",
                format!("{}: {why}", crate::validate::shown(url)),
            )
        };
        if url.len() > MAX_WEBHOOK_URL_LEN {
            return Err(Error::LimitExceeded {
                what: "webhook url",
                max: MAX_WEBHOOK_URL_LEN as u64,
            });
        }
        let parsed = url::Url::parse(url.trim()).map_err(|e| bad(&e.to_string()))?;
        match parsed.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            _ => return Err(bad("must be an https address")),
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(bad("must not carry a user name or password"));
        }
        if parsed.fragment().is_some() {
            return Err(bad("must not have a fragment"));
        }
        let ip = match parsed.host() {
            None => return Err(bad("must name a host")),
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            Some(url::Host::Domain(name)) => {
                if name.eq_ignore_ascii_case("localhost") || name.ends_with(".localhost") {
                    Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
                } else {
                    None
                }
            }
        };
        if let Some(ip) = ip
            && !self.allows(ip)
        {
            return Err(bad(
                "points at an address that is not public (allow its network in the webhook policy)",
            ));
        }
        Ok(parsed)
    }
}

/// An IPv4 address carried in IPv6 (`::ffff:10.0.0.1`, `64:ff9b::a00:1`)
/// as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let s = v6.segments();
            if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
                let o = v6.octets();
                return IpAddr::V4(std::net::Ipv4Addr::new(o[12], o[13], o[14], o[15]));
            }
            IpAddr::V6(v6)
        }
        v4 => v4,
    }
}

/// Whether `ip` is a public unicast address (not private, loopback,
/// link-local, shared, reserved, documentation, benchmarking, multicast or
/// unspecified).
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && c == 0)
                || (a == 198 && (18..20).contains(&b))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || v6.is_unique_local()
                || v6.is_unicast_link_local()
                || (first & 0xffc0) == 0xfec0
                || (first == 0x2001 && v6.segments()[1] == 0x0db8)
                || v6.segments()[..6] == [0, 0, 0, 0, 0, 0])
        }
    }
}

/// Whether `pattern` names event types: `*`, a type name
/// ([`EventKind::TYPE_NAMES`]) or a prefix of some ending in `*`
/// (`cartwright.order.*`).
fn check_pattern(pattern: &str) -> Result<String> {
    let p = pattern.trim();
    let known = match p.strip_suffix('*') {
        Some(prefix) => EventKind::TYPE_NAMES.iter().any(|t| t.starts_with(prefix)),
        None => EventKind::TYPE_NAMES.contains(&p),
    };
    if known {
        Ok(p.to_owned())
    } else {
        Err(Error::invalid(
            "webhook event type",
            format!(
                "{}: not an event type (see EventKind::TYPE_NAMES)",
                crate::validate::shown(pattern)
            ),
        ))
    }
}

/// A subscription to make ([`Engine::create_webhook`](crate::Engine::create_webhook)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewWebhook {
    /// Where events are posted.
    pub url: String,
    /// The event types it wants: type names, prefixes ending in `*`, or
    /// `*` for every type (1 to [`MAX_WEBHOOK_EVENT_TYPES`]).
    pub event_types: Vec<String>,
    /// The signing secret; `None` makes one ([`WebhookSecret::generate`]).
    pub secret: Option<WebhookSecret>,
    /// What it is for (at most [`MAX_WEBHOOK_DESCRIPTION_LEN`] characters).
    pub description: String,
}

crate::domain::setters!(NewWebhook {
    secret: Option<WebhookSecret>,
} into {
    description: String,
});

impl NewWebhook {
    /// A subscription of `url` to `event_types`.
    pub fn new<S: Into<String>>(
        url: impl Into<String>,
        event_types: impl IntoIterator<Item = S>,
    ) -> Self {
        Self {
            url: url.into(),
            event_types: event_types.into_iter().map(Into::into).collect(),
            secret: None,
            description: String::new(),
        }
    }

    /// The subscription this makes under `policy`, created `now`.
    ///
    /// # Errors
    /// [`Error::Invalid`] or [`Error::LimitExceeded`] for an address the
    /// policy refuses, no event type, an unknown one, too many, or a
    /// description too long or with control characters.
    pub fn validate(
        self,
        policy: &WebhookPolicy,
        now: DateTime<Utc>,
    ) -> Result<WebhookSubscription> {
        let url = policy.check_url(&self.url)?.to_string();
        if self.event_types.is_empty() {
            return Err(Error::invalid("webhook event types", "name at least one"));
        }
        crate::validate::at_most(
            "webhook event types",
            self.event_types.len(),
            MAX_WEBHOOK_EVENT_TYPES,
        )?;
        let mut event_types = self
            .event_types
            .iter()
            .map(|t| check_pattern(t))
            .collect::<Result<Vec<_>>>()?;
        event_types.sort();
        event_types.dedup();
        let description = crate::validate::optional_text(
            "webhook description",
            &self.description,
            MAX_WEBHOOK_DESCRIPTION_LEN,
        )?;
        Ok(WebhookSubscription {
            id: WebhookId::new(),
            url,
            event_types,
            secret: self.secret.unwrap_or_else(WebhookSecret::generate),
            description,
            created_at: now,
            status: WebhookStatus::Active,
            failing_since: None,
            failures: 0,
        })
    }
}

/// Whether a subscription receives events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
#[non_exhaustive]
pub enum WebhookStatus {
    /// Events are delivered.
    Active,
    /// Events wait (kept in the outbox) until staff resume it.
    Paused {
        /// When.
        since: DateTime<Utc>,
        /// Why: `failing` (paused by the relay) or `staff`.
        reason: PauseReason,
    },
}

/// Why a subscription was paused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PauseReason {
    /// Its endpoint kept failing ([`WebhookPausing`]).
    Failing,
    /// Staff paused it.
    Staff,
}

/// When the relay pauses an endpoint that keeps failing: after `failures`
/// failed deliveries in a row that span at least `over` (default: 50
/// failures over 3 days, as Stripe disables an endpoint after 3 days).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct WebhookPausing {
    /// Failed deliveries in a row.
    pub failures: u32,
    /// Since the first of them, at least.
    pub over: Duration,
}

impl Default for WebhookPausing {
    fn default() -> Self {
        Self {
            failures: 50,
            over: Duration::days(3),
        }
    }
}

crate::domain::setters!(WebhookPausing { failures: u32, over: Duration } into {});

/// A webhook subscription. Its serialized form leaves the secret out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct WebhookSubscription {
    /// Its id.
    pub id: WebhookId,
    /// Where events are posted (checked against the policy when made).
    pub url: String,
    /// The event types it wants (sorted, no duplicates).
    pub event_types: Vec<String>,
    /// The signing secret.
    #[serde(skip)]
    pub secret: WebhookSecret,
    /// What it is for.
    pub description: String,
    /// When it was made: it receives events committed from then on.
    pub created_at: DateTime<Utc>,
    /// Whether it receives events.
    pub status: WebhookStatus,
    /// When the current run of failed deliveries began.
    pub failing_since: Option<DateTime<Utc>>,
    /// Failed deliveries in a row.
    pub failures: u32,
}

impl WebhookSubscription {
    /// Whether it wants events of type `type_name`.
    pub fn wants(&self, type_name: &str) -> bool {
        self.event_types.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => type_name.starts_with(prefix),
            None => p == type_name,
        })
    }

    /// The name the relay keeps its progress under: `webhook:<id>`.
    pub fn sink_name(&self) -> String {
        sink_name(self.id)
    }

    /// A subscription as a store reads it back.
    #[allow(clippy::too_many_arguments)]
    pub fn from_parts(
        id: WebhookId,
        url: String,
        event_types: Vec<String>,
        secret: WebhookSecret,
        description: String,
        created_at: DateTime<Utc>,
        status: WebhookStatus,
        failing_since: Option<DateTime<Utc>>,
        failures: u32,
    ) -> Self {
        Self {
            id,
            url,
            event_types,
            secret,
            description,
            created_at,
            status,
            failing_since,
            failures,
        }
    }
}

/// The relay's progress name for subscription `id`: `webhook:<id>`.
pub fn sink_name(id: WebhookId) -> String {
    format!("webhook:{id}")
}

/// The signature header's value for `body` sent at Unix time `timestamp`:
/// `t=<timestamp>,v1=<hex HMAC-SHA256 of "<timestamp>.<body>">` — the
/// scheme [`payment::webhook`](crate::payment::webhook) checks for
/// gateways, from the same code.
pub fn sign(secret: &WebhookSecret, timestamp: i64, body: &[u8]) -> String {
    // Only an empty secret fails, and a `WebhookSecret` never is.
    crate::payment::webhook::sign(secret.expose().as_bytes(), timestamp, body).unwrap_or_default()
}

/// Checks a request the relay's webhook sink sent: `header` is the
/// [`SIGNATURE_HEADER`]'s value, `body` the raw body (before parsing),
/// `now` the receiver's clock; the request's time must be within
/// `tolerance` of it (5 minutes is usual). Any `v1` entry may match (the
/// header may carry several while a secret is rotated). Compares in
/// constant time.
///
/// # Errors
/// [`Error::Invalid`] (field `webhook signature`) when the header is
/// missing parts, longer than [`MAX_SIGNATURE_HEADER_LEN`], malformed, too
/// old or too far in the future, or when no signature matches; the reason
/// never echoes the secret or the expected signature.
pub fn verify(
    secret: &WebhookSecret,
    header: &str,
    body: &[u8],
    now: DateTime<Utc>,
    tolerance: Duration,
) -> Result<()> {
    crate::payment::webhook::verify(secret.expose().as_bytes(), header, body, now, tolerance)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> WebhookPolicy {
        WebhookPolicy::default()
    }

    #[test]
    fn private_and_loopback_addresses_are_refused_unless_allowed() {
        for url in [
            "https://127.0.0.1/hook",
            "https://10.0.0.8/hook",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/hook",
            "https://[::ffff:192.168.1.1]/hook",
            "https://[fd00::1]/hook",
            "https://100.64.0.1/",
            "https://0.0.0.0/",
            "https://localhost/hook",
            "https://api.localhost/hook",
        ] {
            assert!(policy().check_url(url).is_err(), "{url}");
        }
        let loopback = policy()
            .allow_http(true)
            .allowed_networks(vec!["127.0.0.0/8".parse().unwrap()]);
        assert!(loopback.check_url("http://127.0.0.1:8080/hook").is_ok());
        assert!(loopback.check_url("http://10.0.0.1/hook").is_err());
        assert!(policy().check_url("https://hooks.example.com/x").is_ok());
        assert!(policy().check_url("https://8.8.8.8/x").is_ok());
    }

    #[test]
    fn malformed_addresses_are_refused() {
        for url in [
            "",
            "not a url",
            "http://example.com/x",
            "ftp://example.com/x",
            "https://user:pw@example.com/x",
            "https://example.com/x#frag",
            "file:///etc/passwd",
        ] {
            assert!(policy().check_url(url).is_err(), "{url}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_WEBHOOK_URL_LEN));
        assert!(matches!(
            policy().check_url(&long),
            Err(Error::LimitExceeded { .. })
        ));
    }

    #[test]
    fn secrets_are_bounded_and_hidden() {
        assert!(WebhookSecret::new("").is_err());
        assert!(WebhookSecret::new("short").is_err());
        assert!(WebhookSecret::new("x".repeat(257)).is_err());
        assert!(WebhookSecret::new("has a space in it, which is not allowed").is_err());
        let s = WebhookSecret::new("a".repeat(32)).unwrap();
        assert!(!format!("{s:?}").contains("aaaa"));
        assert_ne!(WebhookSecret::generate(), WebhookSecret::generate());
        assert!(WebhookSecret::new(WebhookSecret::generate().expose()).is_ok());
    }

    #[test]
    fn patterns_match_known_types_only() {
        let now = Utc::now();
        let sub = NewWebhook::new("https://example.com/h", ["cartwright.order.*"])
            .validate(&policy(), now)
            .unwrap();
        assert!(sub.wants("cartwright.order.placed.v1"));
        assert!(!sub.wants("cartwright.customer.changed.v1"));
        for bad in [vec!["cartwright.nope.v1"], vec![], vec!["nope.*"]] {
            assert!(
                NewWebhook::new("https://example.com/h", bad.clone())
                    .validate(&policy(), now)
                    .is_err(),
                "{bad:?}"
            );
        }
        let all = NewWebhook::new("https://example.com/h", ["*"])
            .validate(&policy(), now)
            .unwrap();
        assert!(EventKind::TYPE_NAMES.iter().all(|t| all.wants(t)));
    }

    #[test]
    fn signatures_verify_and_refuse() {
        let secret = WebhookSecret::generate();
        let other = WebhookSecret::generate();
        let now = Utc::now();
        let body = b"{\"a\":1}";
        let header = sign(&secret, now.timestamp(), body);
        let five = Duration::minutes(5);
        assert!(verify(&secret, &header, body, now, five).is_ok());
        assert!(verify(&other, &header, body, now, five).is_err());
        assert!(verify(&secret, &header, b"{\"a\":2}", now, five).is_err());
        assert!(verify(&secret, &header, body, now + Duration::minutes(6), five).is_err());
        for bad in ["", "t=1", "v1=00", "t=x,v1=00", "garbage"] {
            assert!(verify(&secret, bad, body, now, five).is_err(), "{bad}");
        }
        // Rotation: a header with two signatures verifies under either.
        let two = format!(
            "{header},{}",
            sign(&other, now.timestamp(), body).replace(&format!("t={},", now.timestamp()), "")
        );
        assert!(verify(&other, &two, body, now, five).is_ok());
        assert!(verify(&secret, &two, body, now, five).is_ok());
    }
}
