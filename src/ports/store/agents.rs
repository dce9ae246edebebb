//! Agent checkout sessions and the agentic protocols' request idempotency.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::agent::{AgentSession, AgentSessionId, StoredResponse};
use crate::error::Result;
use crate::id::CartId;

/// A request arriving under an idempotency key, to be claimed before it
/// runs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestClaim<'a> {
    /// Who the key belongs to (the agent platform, say): keys of different
    /// scopes never meet. At most 200 characters.
    pub scope: &'a str,
    /// The key (1 to [`MAX_REQUEST_KEY_LEN`](crate::agent::MAX_REQUEST_KEY_LEN)
    /// visible ASCII characters).
    pub key: &'a str,
    /// A digest of the request (method, path, body): the same key with
    /// another request is a conflict.
    pub fingerprint: &'a str,
    /// Now.
    pub now: DateTime<Utc>,
    /// A claim older than this whose answer never came is taken over (its
    /// caller died).
    pub stale_before: DateTime<Utc>,
}

/// What the store said about a claimed request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestState {
    /// The caller holds the key now: run the request, then
    /// [`AgentStore::finish_request`] (or [`AgentStore::release_request`]).
    Claimed,
    /// The same request ran already: this is its answer.
    Done(StoredResponse),
    /// The same request is running elsewhere.
    InFlight,
    /// The key was used for another request.
    Conflict,
}

/// Agent sessions and request keys.
#[async_trait]
pub trait AgentStore: Send + Sync {
    /// Saves a new session.
    ///
    /// # Errors
    /// [`Error::AlreadyExists`](crate::Error::AlreadyExists) for a taken id;
    /// [`Error::Storage`](crate::Error::Storage).
    async fn create_agent_session(&self, session: &AgentSession) -> Result<()>;

    /// One session.
    ///
    /// # Errors
    /// [`Error::Storage`](crate::Error::Storage).
    async fn agent_session(&self, id: AgentSessionId) -> Result<Option<AgentSession>>;

    /// Replaces a session whose stored version is `session.version - 1`.
    ///
    /// # Errors
    /// [`Error::Conflict`](crate::Error::Conflict) when it changed since it
    /// was read; [`Error::NotFound`](crate::Error::NotFound);
    /// [`Error::Storage`](crate::Error::Storage).
    async fn save_agent_session(&self, session: &AgentSession) -> Result<()>;

    /// The session over `cart`, if an agent opened one (and so, through
    /// [`Order::cart_id`](crate::order::Order::cart_id), the session that
    /// placed an order).
    ///
    /// # Errors
    /// [`Error::Storage`](crate::Error::Storage).
    async fn agent_session_for_cart(&self, cart: CartId) -> Result<Option<AgentSession>>;

    /// Claims an idempotency key for a request, in one atomic command: a
    /// new key (or a stale claim) is claimed; a finished one gives its
    /// answer; another request under the key is a conflict.
    ///
    /// # Errors
    /// [`Error::Storage`](crate::Error::Storage).
    async fn claim_request(&self, claim: &RequestClaim<'_>) -> Result<RequestState>;

    /// Records the answer to a claimed request. Later claims of the same
    /// request get it.
    ///
    /// # Errors
    /// [`Error::Storage`](crate::Error::Storage).
    async fn finish_request(
        &self,
        scope: &str,
        key: &str,
        response: &StoredResponse,
        now: DateTime<Utc>,
    ) -> Result<()>;

    /// Gives a claim up without an answer (the request failed in a way
    /// worth retrying): the next claim runs it afresh.
    ///
    /// # Errors
    /// [`Error::Storage`](crate::Error::Storage).
    async fn release_request(&self, scope: &str, key: &str) -> Result<()>;

    /// Forgets request keys claimed before `before`; returns how many.
    ///
    /// # Errors
    /// [`Error::Storage`](crate::Error::Storage).
    async fn prune_requests(&self, before: DateTime<Utc>) -> Result<u64>;
}
