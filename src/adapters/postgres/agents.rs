//! The PostgreSQL store: agent sessions and request keys.

use super::*;
use crate::agent::{AgentSession, AgentSessionId, StoredResponse};
use crate::store::{RequestClaim, RequestState};

fn version_i64(version: u64) -> Try<i64> {
    i64::try_from(version).map_err(|_| Fail::Domain(Error::Overflow("agent session version")))
}

#[async_trait]
impl crate::store::AgentStore for PgStore {
    async fn create_agent_session(&self, session: &AgentSession) -> Result<()> {
        retry!(self, async {
            let done = sqlx::query(
                "INSERT INTO cw_agent_sessions (id, agent, cart_id, version, updated_at, doc)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            )
            .bind(session.id.as_uuid())
            .bind(&session.agent)
            .bind(session.cart_id.as_uuid())
            .bind(version_i64(session.version)?)
            .bind(session.updated_at)
            .bind(Json(to_json(session)?))
            .execute(&self.pool())
            .await?;
            if done.rows_affected() == 0 {
                return Err(Error::AlreadyExists {
                    what: "agent session",
                    value: session.id.to_string(),
                }
                .into());
            }
            Ok(())
        })
    }

    async fn agent_session(&self, id: AgentSessionId) -> Result<Option<AgentSession>> {
        retry!(self, async {
            let row = sqlx::query("SELECT doc FROM cw_agent_sessions WHERE id = $1")
                .bind(id.as_uuid())
                .fetch_optional(&self.pool())
                .await?;
            row.map(|r| doc(&r, "doc", "agent session")).transpose()
        })
    }

    async fn save_agent_session(&self, session: &AgentSession) -> Result<()> {
        retry!(self, async {
            let previous = session
                .version
                .checked_sub(1)
                .ok_or(Fail::Domain(Error::Conflict("agent session")))?;
            let done = sqlx::query(
                "UPDATE cw_agent_sessions
                 SET version = $3, updated_at = $4, doc = $5
                 WHERE id = $1 AND cart_id = $2 AND version = $6",
            )
            .bind(session.id.as_uuid())
            .bind(session.cart_id.as_uuid())
            .bind(version_i64(session.version)?)
            .bind(session.updated_at)
            .bind(Json(to_json(session)?))
            .bind(version_i64(previous)?)
            .execute(&self.pool())
            .await?;
            if done.rows_affected() == 1 {
                return Ok(());
            }
            let exists: Option<i32> =
                sqlx::query_scalar("SELECT 1 FROM cw_agent_sessions WHERE id = $1")
                    .bind(session.id.as_uuid())
                    .fetch_optional(&self.pool())
                    .await?;
            Err(match exists {
                Some(_) => Error::Conflict("agent session"),
                None => Error::not_found("agent session", session.id),
            }
            .into())
        })
    }

    async fn agent_session_for_cart(&self, cart: CartId) -> Result<Option<AgentSession>> {
        retry!(self, async {
            let row = sqlx::query("SELECT doc FROM cw_agent_sessions WHERE cart_id = $1")
                .bind(cart.as_uuid())
                .fetch_optional(&self.pool())
                .await?;
            row.map(|r| doc(&r, "doc", "agent session")).transpose()
        })
    }

    async fn claim_request(&self, claim: &RequestClaim<'_>) -> Result<RequestState> {
        retry!(self, async {
            // Insert, or take over a stale unanswered claim of the same
            // request, in one statement; otherwise read what is there.
            let claimed: Option<i32> = sqlx::query_scalar(
                "INSERT INTO cw_agent_requests (scope, key, fingerprint, claimed_at)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (scope, key) DO UPDATE SET claimed_at = EXCLUDED.claimed_at
                 WHERE cw_agent_requests.status IS NULL
                   AND cw_agent_requests.fingerprint = EXCLUDED.fingerprint
                   AND cw_agent_requests.claimed_at < $5
                 RETURNING 1",
            )
            .bind(claim.scope)
            .bind(claim.key)
            .bind(claim.fingerprint)
            .bind(claim.now)
            .bind(claim.stale_before)
            .fetch_optional(&self.pool())
            .await?;
            if claimed.is_some() {
                return Ok(RequestState::Claimed);
            }
            let row = sqlx::query(
                "SELECT fingerprint, status, body FROM cw_agent_requests
                 WHERE scope = $1 AND key = $2",
            )
            .bind(claim.scope)
            .bind(claim.key)
            .fetch_optional(&self.pool())
            .await?;
            let Some(row) = row else {
                // Released between the two statements: the caller tries again.
                return Ok(RequestState::InFlight);
            };
            let fingerprint: String = col(&row, "fingerprint", "agent request")?;
            if fingerprint != claim.fingerprint {
                return Ok(RequestState::Conflict);
            }
            let status: Option<i32> = col(&row, "status", "agent request")?;
            let body: Option<Vec<u8>> = col(&row, "body", "agent request")?;
            Ok(match (status, body) {
                (Some(status), Some(body)) => RequestState::Done(StoredResponse::new(
                    u16::try_from(status).map_err(|_| corrupt("agent request", "status"))?,
                    body,
                )),
                _ => RequestState::InFlight,
            })
        })
    }

    async fn finish_request(
        &self,
        scope: &str,
        key: &str,
        response: &StoredResponse,
        _now: DateTime<Utc>,
    ) -> Result<()> {
        retry!(self, async {
            sqlx::query(
                "UPDATE cw_agent_requests SET status = $3, body = $4
                 WHERE scope = $1 AND key = $2 AND status IS NULL",
            )
            .bind(scope)
            .bind(key)
            .bind(i32::from(response.status))
            .bind(&response.body)
            .execute(&self.pool())
            .await?;
            Ok(())
        })
    }

    async fn release_request(&self, scope: &str, key: &str) -> Result<()> {
        retry!(self, async {
            sqlx::query(
                "DELETE FROM cw_agent_requests WHERE scope = $1 AND key = $2 AND status IS NULL",
            )
            .bind(scope)
            .bind(key)
            .execute(&self.pool())
            .await?;
            Ok(())
        })
    }

    async fn prune_requests(&self, before: DateTime<Utc>) -> Result<u64> {
        retry!(self, async {
            let done = sqlx::query("DELETE FROM cw_agent_requests WHERE claimed_at < $1")
                .bind(before)
                .execute(&self.pool())
                .await?;
            Ok(done.rows_affected())
        })
    }
}
