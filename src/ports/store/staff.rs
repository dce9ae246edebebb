//! The store port for staff accounts, roles and sessions.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::customer::Email;
use crate::error::Result;
use crate::id::StaffId;
use crate::staff::{Role, StaffMember, StaffSession};

/// Staff accounts, their roles and their sessions.
#[async_trait]
pub trait StaffStore: Send + Sync {
    /// Saves a new account.
    ///
    /// # Errors
    /// [`Error::AlreadyExists`](crate::Error::AlreadyExists) for an id or
    /// email already used; [`Error::Storage`](crate::Error::Storage).
    async fn insert_staff(&self, member: &StaffMember) -> Result<()>;

    /// Replaces an account whose stored version is `member.version - 1`.
    ///
    /// # Errors
    /// [`Error::Conflict`](crate::Error::Conflict) when it changed since it
    /// was read; [`Error::NotFound`](crate::Error::NotFound);
    /// [`Error::Storage`](crate::Error::Storage).
    async fn save_staff(&self, member: &StaffMember) -> Result<()>;

    /// One account.
    ///
    /// # Errors
    /// [`Error::Storage`](crate::Error::Storage).
    async fn staff_member(&self, id: StaffId) -> Result<Option<StaffMember>>;

    /// The account signing in with `email`.
    ///
    /// # Errors
    /// [`Error::Storage`](crate::Error::Storage).
    async fn staff_by_email(&self, email: &Email) -> Result<Option<StaffMember>>;

    /// Every account, oldest first.
    ///
    /// # Errors
    /// [`Error::Storage`](crate::Error::Storage).
    async fn list_staff(&self) -> Result<Vec<StaffMember>>;

    /// Saves a role under its name (new, or replacing the one of that
    /// name).
    ///
    /// # Errors
    /// [`Error::Storage`](crate::Error::Storage).
    async fn save_role(&self, role: &Role) -> Result<()>;

    /// Deletes the role named `name`; whether there was one.
    ///
    /// # Errors
    /// [`Error::Storage`](crate::Error::Storage).
    async fn delete_role(&self, name: &str) -> Result<bool>;

    /// Every role, by name.
    ///
    /// # Errors
    /// [`Error::Storage`](crate::Error::Storage).
    async fn roles(&self) -> Result<Vec<Role>>;

    /// Saves a new session.
    ///
    /// # Errors
    /// [`Error::Storage`](crate::Error::Storage).
    async fn insert_staff_session(&self, session: &StaffSession) -> Result<()>;

    /// The session whose token hashes to `token_hash`.
    ///
    /// # Errors
    /// [`Error::Storage`](crate::Error::Storage).
    async fn staff_session(&self, token_hash: &str) -> Result<Option<StaffSession>>;

    /// Ends one session (no-op when there is none).
    ///
    /// # Errors
    /// [`Error::Storage`](crate::Error::Storage).
    async fn delete_staff_session(&self, token_hash: &str) -> Result<()>;

    /// Ends every session of `staff`, and every session of anyone that
    /// ended by `expired_before`; how many.
    ///
    /// # Errors
    /// [`Error::Storage`](crate::Error::Storage).
    async fn delete_staff_sessions(
        &self,
        staff: Option<StaffId>,
        expired_before: DateTime<Utc>,
    ) -> Result<u64>;
}
