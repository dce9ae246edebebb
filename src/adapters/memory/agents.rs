//! The in-memory store: agent sessions and request keys.

use super::*;
use crate::agent::{AgentSession, AgentSessionId, StoredResponse};
use crate::store::{RequestClaim, RequestState};

/// One request key: what it was claimed for and, once answered, the answer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(super) struct AgentRequest {
    fingerprint: String,
    claimed_at: DateTime<Utc>,
    response: Option<StoredResponse>,
}

#[async_trait]
impl crate::store::AgentStore for MemoryStore {
    async fn create_agent_session(&self, session: &AgentSession) -> Result<()> {
        let mut s = self.lock();
        if s.agent_sessions.contains_key(&session.id) {
            return Err(Error::AlreadyExists {
                what: "agent session",
                value: session.id.to_string(),
            });
        }
        if s.agent_carts.contains_key(&session.cart_id) {
            return Err(Error::AlreadyExists {
                what: "agent session for cart",
                value: session.cart_id.to_string(),
            });
        }
        s.agent_carts.insert(session.cart_id, session.id);
        s.agent_sessions.insert(session.id, session.clone());
        Ok(())
    }

    async fn agent_session(&self, id: AgentSessionId) -> Result<Option<AgentSession>> {
        Ok(self.lock().agent_sessions.get(&id).cloned())
    }

    async fn save_agent_session(&self, session: &AgentSession) -> Result<()> {
        let mut s = self.lock();
        let Some(stored) = s.agent_sessions.get_mut(&session.id) else {
            return Err(Error::not_found("agent session", session.id));
        };
        if stored.version.checked_add(1) != Some(session.version) {
            return Err(Error::Conflict("agent session"));
        }
        if stored.cart_id != session.cart_id {
            return Err(Error::invalid("agent session", "its cart cannot change"));
        }
        *stored = session.clone();
        Ok(())
    }

    async fn agent_session_for_cart(&self, cart: CartId) -> Result<Option<AgentSession>> {
        let s = self.lock();
        Ok(s.agent_carts
            .get(&cart)
            .and_then(|id| s.agent_sessions.get(id))
            .cloned())
    }

    async fn claim_request(&self, claim: &RequestClaim<'_>) -> Result<RequestState> {
        let mut s = self.lock();
        let key = (claim.scope.to_owned(), claim.key.to_owned());
        if let Some(found) = s.agent_requests.get_mut(&key) {
            if found.fingerprint != claim.fingerprint {
                return Ok(RequestState::Conflict);
            }
            if let Some(response) = &found.response {
                return Ok(RequestState::Done(response.clone()));
            }
            if found.claimed_at >= claim.stale_before {
                return Ok(RequestState::InFlight);
            }
            found.claimed_at = claim.now;
            return Ok(RequestState::Claimed);
        }
        s.agent_requests.insert(
            key,
            AgentRequest {
                fingerprint: claim.fingerprint.to_owned(),
                claimed_at: claim.now,
                response: None,
            },
        );
        Ok(RequestState::Claimed)
    }

    async fn finish_request(
        &self,
        scope: &str,
        key: &str,
        response: &StoredResponse,
        _now: DateTime<Utc>,
    ) -> Result<()> {
        let mut s = self.lock();
        if let Some(found) = s
            .agent_requests
            .get_mut(&(scope.to_owned(), key.to_owned()))
        {
            found.response = Some(response.clone());
        }
        Ok(())
    }

    async fn release_request(&self, scope: &str, key: &str) -> Result<()> {
        let mut s = self.lock();
        let k = (scope.to_owned(), key.to_owned());
        if s.agent_requests
            .get(&k)
            .is_some_and(|r| r.response.is_none())
        {
            s.agent_requests.remove(&k);
        }
        Ok(())
    }

    async fn prune_requests(&self, before: DateTime<Utc>) -> Result<u64> {
        let mut s = self.lock();
        let n = s.agent_requests.len();
        s.agent_requests.retain(|_, r| r.claimed_at >= before);
        Ok((n - s.agent_requests.len()) as u64)
    }
}
