//! The PostgreSQL store: staff accounts, roles and sessions.

use super::*;
use crate::id::StaffId;
use crate::staff::{Role, StaffMember, StaffSession};

fn version_i64(version: u64) -> Try<i64> {
    i64::try_from(version).map_err(|_| Fail::Domain(Error::Overflow("staff member version")))
}

/// An email already used by another account (the unique index), said as
/// such.
fn email_taken(f: Fail, member: &StaffMember) -> Fail {
    if sqlstate(&f).as_deref() == Some("23505") {
        Error::AlreadyExists {
            what: "staff member",
            value: member.email.as_str().to_owned(),
        }
        .into()
    } else {
        f
    }
}

#[async_trait]
impl crate::store::StaffStore for PgStore {
    async fn insert_staff(&self, member: &StaffMember) -> Result<()> {
        retry!(self, async {
            sqlx::query(
                "INSERT INTO cw_staff (id, email, version, created_at, doc)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(member.id.as_uuid())
            .bind(member.email.as_str())
            .bind(version_i64(member.version)?)
            .bind(member.created_at)
            .bind(Json(to_json(member)?))
            .execute(&self.pool())
            .await
            .map(|_| ())
            .map_err(|e| email_taken(e.into(), member))
        })
    }

    async fn save_staff(&self, member: &StaffMember) -> Result<()> {
        retry!(self, async {
            let previous = member
                .version
                .checked_sub(1)
                .ok_or(Fail::Domain(Error::Conflict("staff member")))?;
            let done = sqlx::query(
                "UPDATE cw_staff SET email = $2, version = $3, doc = $4
                 WHERE id = $1 AND version = $5",
            )
            .bind(member.id.as_uuid())
            .bind(member.email.as_str())
            .bind(version_i64(member.version)?)
            .bind(Json(to_json(member)?))
            .bind(version_i64(previous)?)
            .execute(&self.pool())
            .await
            .map_err(|e| email_taken(e.into(), member))?;
            if done.rows_affected() == 1 {
                return Ok(());
            }
            let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM cw_staff WHERE id = $1")
                .bind(member.id.as_uuid())
                .fetch_optional(&self.pool())
                .await?;
            Err(match exists {
                Some(_) => Error::Conflict("staff member"),
                None => Error::not_found("staff member", member.id),
            }
            .into())
        })
    }

    async fn staff_member(&self, id: StaffId) -> Result<Option<StaffMember>> {
        retry!(self, async {
            let row = sqlx::query("SELECT doc FROM cw_staff WHERE id = $1")
                .bind(id.as_uuid())
                .fetch_optional(&self.pool())
                .await?;
            row.map(|r| doc(&r, "doc", "staff member")).transpose()
        })
    }

    async fn staff_by_email(&self, email: &Email) -> Result<Option<StaffMember>> {
        retry!(self, async {
            let row = sqlx::query("SELECT doc FROM cw_staff WHERE email = $1")
                .bind(email.as_str())
                .fetch_optional(&self.pool())
                .await?;
            row.map(|r| doc(&r, "doc", "staff member")).transpose()
        })
    }

    async fn list_staff(&self) -> Result<Vec<StaffMember>> {
        retry!(
            self,
            self.all_docs(
                "SELECT doc FROM cw_staff ORDER BY created_at, id",
                "staff member"
            )
        )
    }

    async fn save_role(&self, role: &Role) -> Result<()> {
        retry!(self, async {
            sqlx::query(
                "INSERT INTO cw_staff_roles (name, doc) VALUES ($1, $2)
                 ON CONFLICT (name) DO UPDATE SET doc = EXCLUDED.doc",
            )
            .bind(&role.name)
            .bind(Json(to_json(role)?))
            .execute(&self.pool())
            .await?;
            Ok(())
        })
    }

    async fn delete_role(&self, name: &str) -> Result<bool> {
        retry!(self, async {
            let done = sqlx::query("DELETE FROM cw_staff_roles WHERE name = $1")
                .bind(name)
                .execute(&self.pool())
                .await?;
            Ok(done.rows_affected() > 0)
        })
    }

    async fn roles(&self) -> Result<Vec<Role>> {
        retry!(
            self,
            self.all_docs("SELECT doc FROM cw_staff_roles ORDER BY name", "role")
        )
    }

    async fn insert_staff_session(&self, session: &StaffSession) -> Result<()> {
        retry!(self, async {
            sqlx::query(
                "INSERT INTO cw_staff_sessions (token_hash, staff_id, expires_at)
                 VALUES ($1, $2, $3)",
            )
            .bind(&session.token_hash)
            .bind(session.staff_id.as_uuid())
            .bind(session.expires_at)
            .execute(&self.pool())
            .await?;
            Ok(())
        })
    }

    async fn staff_session(&self, token_hash: &str) -> Result<Option<StaffSession>> {
        retry!(self, async {
            let row: Option<(Uuid, DateTime<Utc>)> = sqlx::query_as(
                "SELECT staff_id, expires_at FROM cw_staff_sessions WHERE token_hash = $1",
            )
            .bind(token_hash)
            .fetch_optional(&self.pool())
            .await?;
            Ok(row.map(|(staff, expires_at)| StaffSession {
                token_hash: token_hash.to_owned(),
                staff_id: StaffId::from_uuid(staff),
                expires_at,
            }))
        })
    }

    async fn delete_staff_session(&self, token_hash: &str) -> Result<()> {
        retry!(self, async {
            sqlx::query("DELETE FROM cw_staff_sessions WHERE token_hash = $1")
                .bind(token_hash)
                .execute(&self.pool())
                .await?;
            Ok(())
        })
    }

    async fn delete_staff_sessions(
        &self,
        staff: Option<StaffId>,
        expired_before: DateTime<Utc>,
    ) -> Result<u64> {
        retry!(self, async {
            let done = sqlx::query(
                "DELETE FROM cw_staff_sessions WHERE staff_id = $1 OR expires_at <= $2",
            )
            .bind(staff.map(|s| s.as_uuid()))
            .bind(expired_before)
            .execute(&self.pool())
            .await?;
            Ok(done.rows_affected())
        })
    }
}
