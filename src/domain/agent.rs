//! Checkout sessions opened by AI agents on a buyer's behalf: the one
//! engine concept under the agentic protocols (UCP, ACP).
//!
//! An [`AgentSession`] wraps a cart the agent fills: its lines, codes,
//! e-mail, shipping address and method live on the cart, priced by the
//! engine's own pricing. The session adds what the protocols carry beside a
//! cart — the buyer's name and consent, the destinations the agent offered
//! (with the agent's own ids), which one and which shipping option are
//! selected, the agent's webhook address — and the session's state:
//! open, completed (with the order it placed) or canceled. It belongs to
//! the agent platform that opened it: another agent reaches neither it nor
//! its order ([`Actor::Agent`](crate::Actor::Agent)).
//!
//! Request idempotency for the protocols' `Idempotency-Key` header is kept
//! beside the sessions ([`StoredResponse`],
//! [`RequestClaim`](crate::store::RequestClaim)), by the store, so it holds
//! across instances and restarts.
//!
//! Does not know: any protocol's wire format; that is `agentic`'s.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::customer::Address;
use crate::error::{Error, Result};
use crate::id::{CartId, OrderId};
use crate::money::Currency;
use crate::validate::{at_most, optional_text, required_text};

pub use crate::id::AgentSessionId;

/// Longest agent platform name, in characters (visible ASCII).
pub const MAX_AGENT_NAME_LEN: usize = 64;
/// Most destinations one session holds.
pub const MAX_DESTINATIONS: usize = 20;
/// Longest destination or option id, in characters.
pub const MAX_DESTINATION_ID_LEN: usize = 64;
/// Longest buyer name part, in characters.
pub const MAX_BUYER_NAME_LEN: usize = 100;
/// Longest webhook address, in bytes.
pub const MAX_AGENT_WEBHOOK_URL_LEN: usize = 2_048;
/// Most protocol annotations (fulfilment events, adjustments) one session's
/// order holds.
pub const MAX_ANNOTATIONS: usize = 100;
/// Largest stored annotation, in bytes of JSON.
pub const MAX_ANNOTATION_BYTES: usize = 16 * 1024;
/// Longest idempotency key the agentic protocols take, in characters.
pub const MAX_REQUEST_KEY_LEN: usize = 255;
/// Largest response body kept for replay, in bytes.
pub const MAX_STORED_RESPONSE_BYTES: usize = 1024 * 1024;

/// Which protocol opened a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AgentProtocol {
    /// The Universal Commerce Protocol.
    Ucp,
    /// The Agentic Commerce Protocol.
    Acp,
}

/// Where a session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AgentSessionStatus {
    /// Being filled; may be completed or canceled.
    Open,
    /// Completed: the order is placed ([`AgentSession::order_id`]).
    Completed,
    /// Canceled by the agent; nothing more may change.
    Canceled,
}

/// What the buyer agreed to, as the agent reports it (`None`: not said).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BuyerConsent {
    /// Marketing messages.
    pub marketing: Option<bool>,
    /// Analytics.
    pub analytics: Option<bool>,
    /// The sale of their data.
    pub sale_of_data: Option<bool>,
}

crate::domain::setters!(BuyerConsent {} into {
    marketing: Option<bool>,
    analytics: Option<bool>,
    sale_of_data: Option<bool>,
});

/// The buyer, as the agent describes them. The e-mail also goes on the
/// cart (and so on the order).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AgentBuyer {
    /// First name (may be empty).
    pub first_name: String,
    /// Last name (may be empty).
    pub last_name: String,
    /// E-mail address, if given (checked by the cart).
    pub email: Option<String>,
    /// Phone number (may be empty).
    pub phone: String,
    /// Their consent, if the agent reported it.
    pub consent: Option<BuyerConsent>,
}

crate::domain::setters!(AgentBuyer {
    consent: Option<BuyerConsent>,
} into {
    first_name: String,
    last_name: String,
    email: Option<String>,
    phone: String,
});

impl AgentBuyer {
    /// Checks the names and phone (at most [`MAX_BUYER_NAME_LEN`]
    /// characters each), trimmed.
    ///
    /// # Errors
    /// [`Error::Invalid`] or [`Error::LimitExceeded`], naming the field.
    pub fn validated(mut self) -> Result<Self> {
        self.first_name = optional_text("buyer first name", &self.first_name, MAX_BUYER_NAME_LEN)?;
        self.last_name = optional_text("buyer last name", &self.last_name, MAX_BUYER_NAME_LEN)?;
        self.phone = optional_text("buyer phone", &self.phone, 40)?;
        if let Some(email) = &self.email {
            self.email = Some(crate::customer::Email::new(email)?.as_str().to_owned());
        }
        Ok(self)
    }

    /// "First Last", or whichever part is given.
    pub fn full_name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name)
            .trim()
            .to_owned()
    }
}

/// A place the agent may ship to, under the agent's id for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Destination {
    /// The id the agent uses (1 to [`MAX_DESTINATION_ID_LEN`] visible
    /// ASCII characters).
    pub id: String,
    /// The address, possibly partial ([`Address::partial`]).
    pub address: Address,
}

impl Destination {
    /// The destination `id` at `address`.
    ///
    /// # Errors
    /// [`Error::Invalid`] or [`Error::LimitExceeded`] for an id that is
    /// empty, too long or not visible ASCII.
    pub fn new(id: &str, address: Address) -> Result<Self> {
        Ok(Self {
            id: check_id("destination id", id)?,
            address,
        })
    }
}

/// Checks an agent-chosen id: 1 to [`MAX_DESTINATION_ID_LEN`] visible ASCII
/// characters.
pub(crate) fn check_id(field: &'static str, id: &str) -> Result<String> {
    let id = required_text(field, id, MAX_DESTINATION_ID_LEN)?;
    if !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::invalid(field, crate::validate::shown(&id)));
    }
    Ok(id)
}

/// Checks an agent platform's name: 1 to [`MAX_AGENT_NAME_LEN`] visible
/// ASCII characters.
///
/// # Errors
/// [`Error::Invalid`] or [`Error::LimitExceeded`].
pub fn check_agent_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > MAX_AGENT_NAME_LEN
        || !name.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(Error::invalid("agent name", crate::validate::shown(name)));
    }
    Ok(())
}

/// A checkout session an agent platform opened over a cart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AgentSession {
    /// Its id (the protocols' checkout id).
    pub id: AgentSessionId,
    /// The agent platform that opened it (and alone may use it).
    pub agent: String,
    /// The protocol it was opened through.
    pub protocol: AgentProtocol,
    /// The cart holding its lines, codes, e-mail, address and method.
    pub cart_id: CartId,
    /// The cart's currency.
    pub currency: Currency,
    /// Where it stands.
    pub status: AgentSessionStatus,
    /// The order it placed, once completed.
    pub order_id: Option<OrderId>,
    /// The buyer, if described.
    pub buyer: Option<AgentBuyer>,
    /// The destinations offered, in the agent's order (at most
    /// [`MAX_DESTINATIONS`]).
    pub destinations: Vec<Destination>,
    /// The selected destination's id (the cart ships there).
    pub selected_destination: Option<String>,
    /// The selected shipping option (the cart's shipping method).
    pub selected_option: Option<String>,
    /// Where the agent wants order events, if it said (checked against the
    /// shop's webhook policy when events are sent).
    pub webhook_url: Option<String>,
    /// Completion attempts that failed for good (a declined payment): the
    /// next attempt checks out under a new key.
    pub failed_attempts: u32,
    /// What the last failed completion said, for the agent.
    pub last_failure: Option<String>,
    /// Whether the last completion's payment waits for the buyer (3-D
    /// Secure, a redirect): completing again with the same credential
    /// finishes it once the buyer acted.
    #[serde(default)]
    pub awaiting_payment: bool,
    /// Where the buyer completes a waiting payment (the provider's
    /// redirect, as a protocol's `continue_url`), when it gave one.
    #[serde(default)]
    pub continue_url: Option<String>,
    /// Protocol annotations of the placed order (fulfilment events,
    /// adjustments the platform recorded), as JSON objects (at most
    /// [`MAX_ANNOTATIONS`], each at most [`MAX_ANNOTATION_BYTES`]).
    #[serde(default)]
    pub annotations: Vec<serde_json::Value>,
    /// Saved changes so far (optimistic concurrency).
    pub version: u64,
    /// When it was opened.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// After this an open session can no longer be completed.
    pub expires_at: DateTime<Utc>,
}

impl AgentSession {
    /// A new open session of `agent` over `cart_id`.
    pub(crate) fn open(
        agent: &str,
        protocol: AgentProtocol,
        cart_id: CartId,
        currency: Currency,
        now: DateTime<Utc>,
        ttl: chrono::Duration,
    ) -> Self {
        Self {
            id: AgentSessionId::new(),
            agent: agent.to_owned(),
            protocol,
            cart_id,
            currency,
            status: AgentSessionStatus::Open,
            order_id: None,
            buyer: None,
            destinations: Vec::new(),
            selected_destination: None,
            selected_option: None,
            webhook_url: None,
            failed_attempts: 0,
            last_failure: None,
            awaiting_payment: false,
            continue_url: None,
            annotations: Vec::new(),
            version: 0,
            created_at: now,
            updated_at: now,
            expires_at: now + ttl,
        }
    }

    /// The selected destination, if one is selected and known.
    pub fn destination(&self) -> Option<&Destination> {
        let id = self.selected_destination.as_deref()?;
        self.destinations.iter().find(|d| d.id == id)
    }

    /// Refuses a change unless the session is open.
    ///
    /// # Errors
    /// [`Error::IllegalTransition`] naming the state.
    pub(crate) fn require_open(&self, to: &str) -> Result<()> {
        if self.status == AgentSessionStatus::Open {
            return Ok(());
        }
        Err(Error::IllegalTransition {
            entity: "agent session",
            from: self.status_name().to_owned(),
            to: to.to_owned(),
        })
    }

    /// The state's name, as errors show it.
    pub fn status_name(&self) -> &'static str {
        match self.status {
            AgentSessionStatus::Open => "open",
            AgentSessionStatus::Completed => "completed",
            AgentSessionStatus::Canceled => "canceled",
        }
    }

    /// Whether the buyer's e-mail is `email` (compared as the engine
    /// stores e-mails).
    pub fn concerns(&self, email: &crate::customer::Email) -> bool {
        self.buyer
            .as_ref()
            .and_then(|b| b.email.as_deref())
            .and_then(|e| crate::customer::Email::new(e).ok())
            .is_some_and(|e| e == *email)
    }

    /// Removes what locates or names the buyer (a customer's erasure):
    /// names, phone, e-mail, the destinations' personal parts and the
    /// protocol annotations; the country and region of each destination
    /// stay, as on the order. Bumps the version.
    pub fn erase_personal_data(&mut self) {
        if let Some(b) = &mut self.buyer {
            b.first_name.clear();
            b.last_name.clear();
            b.phone.clear();
            b.email = None;
        }
        for d in &mut self.destinations {
            d.address.erase();
        }
        self.annotations.clear();
        self.version = self.version.saturating_add(1);
    }

    /// Checks what an agent set on the session against its limits.
    pub(crate) fn validate(&self) -> Result<()> {
        at_most("destinations", self.destinations.len(), MAX_DESTINATIONS)?;
        at_most("annotations", self.annotations.len(), MAX_ANNOTATIONS)?;
        for a in &self.annotations {
            let size = serde_json::to_vec(a).map(|v| v.len()).unwrap_or(usize::MAX);
            at_most("annotation bytes", size, MAX_ANNOTATION_BYTES)?;
        }
        if let Some(url) = &self.webhook_url {
            at_most("webhook url bytes", url.len(), MAX_AGENT_WEBHOOK_URL_LEN)?;
        }
        if let Some(id) = &self.selected_destination {
            check_id("selected destination", id)?;
        }
        if let Some(id) = &self.selected_option {
            required_text("selected option", id, crate::cart::MAX_METHOD_CODE_LEN)?;
        }
        Ok(())
    }
}

/// An answer kept under a request's idempotency key, replayed byte for byte
/// when the same request comes again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StoredResponse {
    /// The HTTP status.
    pub status: u16,
    /// The body, exactly as sent (at most [`MAX_STORED_RESPONSE_BYTES`]).
    pub body: Vec<u8>,
}

impl StoredResponse {
    /// The answer `status` with `body`.
    pub fn new(status: u16, body: Vec<u8>) -> Self {
        Self { status, body }
    }
}
