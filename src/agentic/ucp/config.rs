//! How the UCP service is set up, and which protocol versions it speaks.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use serde_json::Value;

use super::SigningKey;
use crate::agentic::{AgentAuth, CredentialHandler, TokenCredentials, TrustEveryAgent};
use crate::error::{Error, Result};
use crate::id::OrderId;

/// A UCP version this module speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Version {
    /// `2026-01-11`.
    V2026_01_11,
}

impl Version {
    /// Every version spoken, oldest first.
    pub const ALL: &'static [Version] = &[Version::V2026_01_11];

    /// Its date, as the protocol writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V2026_01_11 => "2026-01-11",
        }
    }

    /// The newest version spoken: what the discovery profile offers.
    pub fn latest() -> Self {
        Self::V2026_01_11
    }

    /// The version to answer an agent with, from its `UCP-Agent` header:
    /// the newest spoken that is not later than the agent's (the latest
    /// when the agent names none). An agent newer than every version
    /// spoken is refused, as UCP asks: it may rely on what this shop does
    /// not know.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a malformed version, one newer than the
    /// latest spoken, or one older than every version spoken.
    pub fn negotiate(agent_header: Option<&str>) -> Result<Self> {
        let Some(wanted) = agent_header.and_then(|h| header_param(h, "version")) else {
            return Ok(Self::latest());
        };
        let valid = wanted.len() == 10
            && wanted.bytes().enumerate().all(|(i, b)| {
                if i == 4 || i == 7 {
                    b == b'-'
                } else {
                    b.is_ascii_digit()
                }
            });
        if !valid {
            return Err(Error::invalid(
                "UCP-Agent version",
                crate::validate::shown(&wanted),
            ));
        }
        if wanted.as_str() > Self::latest().as_str() {
            return Err(Error::invalid(
                "UCP-Agent version",
                crate::validate::shown(&wanted),
            ));
        }
        Self::ALL
            .iter()
            .rev()
            .find(|v| v.as_str() <= wanted.as_str())
            .copied()
            .ok_or_else(|| Error::invalid("UCP-Agent version", crate::validate::shown(&wanted)))
    }
}

/// A `key="value"` parameter of a structured header such as `UCP-Agent`.
pub(super) fn header_param(header: &str, name: &str) -> Option<String> {
    header.split([';', ',']).find_map(|part| {
        let (k, v) = part.trim().split_once('=')?;
        (k.trim().eq_ignore_ascii_case(name)).then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// Offering a buyer's saved addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AddressBook {
    /// Never (the default): an agent sees only the destinations it sent.
    #[default]
    Off,
    /// By the buyer's e-mail as the agent gives it: the saved addresses of
    /// the customer with that e-mail are offered as destinations, and new
    /// destinations are saved for them. Whoever knows an e-mail sees that
    /// customer's addresses — only for a shop whose agents have verified
    /// the buyer's identity (or for the conformance suite, which expects it).
    ByEmail,
}

/// How the UCP service is set up.
#[derive(Clone)]
#[non_exhaustive]
pub struct UcpConfig {
    /// The shop's base URL: the REST endpoint and order links are under it.
    pub base_url: url::Url,
    /// Who the agent is.
    pub auth: Arc<dyn AgentAuth>,
    /// How credentials become payments.
    pub credentials: Arc<dyn CredentialHandler>,
    /// The payment handlers published in the profile and in checkouts
    /// (UCP `payment_handler` objects).
    pub handlers: Vec<Value>,
    /// Links shown on checkouts (`type`, `url`): terms, privacy, returns.
    pub links: Vec<(String, String)>,
    /// Saved addresses offered to agents.
    pub address_book: AddressBook,
    /// Whether completion needs a street address and a city (true by
    /// default; a destination with only a country is enough to price).
    pub require_street_address: bool,
    /// The key order webhooks are signed with (a fresh one by default;
    /// keep one across restarts so agents' caches stay valid).
    pub signing_key: SigningKey,
    /// How long fetching an agent's profile may take (2 s by default).
    pub profile_timeout: StdDuration,
}

impl std::fmt::Debug for UcpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UcpConfig")
            .field("base_url", &self.base_url.as_str())
            .field("address_book", &self.address_book)
            .field("require_street_address", &self.require_street_address)
            .finish_non_exhaustive()
    }
}

impl UcpConfig {
    /// Served at `base_url`, with no agent accepted until [`UcpConfig::auth`]
    /// says how, token credentials for the default provider, no handlers
    /// and no links.
    pub fn new(base_url: url::Url) -> Self {
        Self {
            base_url,
            auth: Arc::new(crate::agentic::BearerKeys::new()),
            credentials: Arc::new(TokenCredentials::new()),
            handlers: Vec::new(),
            links: Vec::new(),
            address_book: AddressBook::Off,
            require_street_address: true,
            signing_key: SigningKey::generate(),
            profile_timeout: StdDuration::from_secs(2),
        }
    }

    /// Sets how agents are recognised.
    #[must_use]
    pub fn auth(mut self, auth: Arc<dyn AgentAuth>) -> Self {
        self.auth = auth;
        self
    }

    /// Sets how credentials become payments.
    #[must_use]
    pub fn credentials(mut self, credentials: Arc<dyn CredentialHandler>) -> Self {
        self.credentials = credentials;
        self
    }

    /// Publishes a payment handler.
    #[must_use]
    pub fn handler(mut self, handler: Value) -> Self {
        self.handlers.push(handler);
        self
    }

    /// Shows a link on checkouts.
    #[must_use]
    pub fn link(mut self, kind: &str, url: &str) -> Self {
        self.links.push((kind.to_owned(), url.to_owned()));
        self
    }

    /// Sets the address-book policy.
    #[must_use]
    pub fn address_book(mut self, policy: AddressBook) -> Self {
        self.address_book = policy;
        self
    }

    /// Sets whether completion needs a street address.
    #[must_use]
    pub fn require_street_address(mut self, required: bool) -> Self {
        self.require_street_address = required;
        self
    }

    /// Sets the webhook signing key.
    #[must_use]
    pub fn signing_key(mut self, key: SigningKey) -> Self {
        self.signing_key = key;
        self
    }

    /// A permissive set-up for the conformance suite and demos: every
    /// caller is the platform `agent`.
    #[must_use]
    pub fn trust_every_agent(self, agent: &str) -> Self {
        self.auth(Arc::new(TrustEveryAgent(agent.to_owned())))
    }

    pub(super) fn endpoint(&self) -> String {
        self.base_url.as_str().to_owned()
    }

    pub(crate) fn order_url(&self, order: OrderId) -> String {
        format!("{}orders/{order}", self.base_url.as_str())
    }
}
