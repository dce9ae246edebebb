//! The in-memory store: staff accounts, roles and sessions.

use super::*;
use crate::id::StaffId;
use crate::staff::{Role, StaffMember, StaffSession};

#[async_trait]
impl crate::store::StaffStore for MemoryStore {
    async fn insert_staff(&self, member: &StaffMember) -> Result<()> {
        let mut s = self.lock();
        if s.staff.contains_key(&member.id) || s.staff.values().any(|m| m.email == member.email) {
            return Err(Error::AlreadyExists {
                what: "staff member",
                value: member.email.as_str().to_owned(),
            });
        }
        s.staff.insert(member.id, member.clone());
        Ok(())
    }

    async fn save_staff(&self, member: &StaffMember) -> Result<()> {
        let mut s = self.lock();
        if s.staff
            .values()
            .any(|m| m.id != member.id && m.email == member.email)
        {
            return Err(Error::AlreadyExists {
                what: "staff member",
                value: member.email.as_str().to_owned(),
            });
        }
        let Some(stored) = s.staff.get_mut(&member.id) else {
            return Err(Error::not_found("staff member", member.id));
        };
        if stored.version.checked_add(1) != Some(member.version) {
            return Err(Error::Conflict("staff member"));
        }
        *stored = member.clone();
        Ok(())
    }

    async fn staff_member(&self, id: StaffId) -> Result<Option<StaffMember>> {
        Ok(self.lock().staff.get(&id).cloned())
    }

    async fn staff_by_email(&self, email: &Email) -> Result<Option<StaffMember>> {
        Ok(self
            .lock()
            .staff
            .values()
            .find(|m| m.email == *email)
            .cloned())
    }

    async fn list_staff(&self) -> Result<Vec<StaffMember>> {
        let mut all: Vec<StaffMember> = self.lock().staff.values().cloned().collect();
        all.sort_by_key(|m| (m.created_at, m.id));
        Ok(all)
    }

    async fn save_role(&self, role: &Role) -> Result<()> {
        self.lock().roles.insert(role.name.clone(), role.clone());
        Ok(())
    }

    async fn delete_role(&self, name: &str) -> Result<bool> {
        Ok(self.lock().roles.remove(name).is_some())
    }

    async fn roles(&self) -> Result<Vec<Role>> {
        Ok(self.lock().roles.values().cloned().collect())
    }

    async fn insert_staff_session(&self, session: &StaffSession) -> Result<()> {
        self.lock()
            .staff_sessions
            .insert(session.token_hash.clone(), session.clone());
        Ok(())
    }

    async fn staff_session(&self, token_hash: &str) -> Result<Option<StaffSession>> {
        Ok(self.lock().staff_sessions.get(token_hash).cloned())
    }

    async fn delete_staff_session(&self, token_hash: &str) -> Result<()> {
        self.lock().staff_sessions.remove(token_hash);
        Ok(())
    }

    async fn delete_staff_sessions(
        &self,
        staff: Option<StaffId>,
        expired_before: DateTime<Utc>,
    ) -> Result<u64> {
        let mut s = self.lock();
        let before = s.staff_sessions.len();
        s.staff_sessions
            .retain(|_, x| Some(x.staff_id) != staff && x.expires_at > expired_before);
        Ok((before - s.staff_sessions.len()) as u64)
    }
}
