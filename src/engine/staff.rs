//! Staff accounts on the engine: roles, accounts, signing in with a
//! password and a one-time code, sessions that expire, and the actor a
//! session stands for (see [`staff`](crate::staff)).
//!
//! Every change is recorded in the audit log
//! ([`EventKind::AdminChange`](crate::event::EventKind::AdminChange)) with
//! the member who made it. The shop can never lock itself out: a change
//! that would leave no active account able to manage staff is refused.

use chrono::{DateTime, Utc};

use crate::actor::Actor;
use crate::customer::Email;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::id::StaffId;
use crate::money::Money;
use crate::staff::{
    LOCKOUT_MINUTES, MAX_DEVICE_TOKEN_LEN, MAX_FAILED_SIGN_INS, MAX_ROLES, MAX_STAFF_NAME_LEN,
    MAX_TRUSTED_DEVICES, Permission, Role, StaffAccess, StaffLogin, StaffMember, StaffSession,
    TotpEnrollment, TotpState, TrustedDevice, check_role_names, token_hash,
};
use crate::validate::required_text;

/// Most staff accounts a shop keeps.
pub const MAX_STAFF: usize = 10_000;

/// What a new member of staff is made of.
#[derive(Clone)]
#[non_exhaustive]
pub struct NewStaff {
    /// The email they sign in with.
    pub email: String,
    /// Their name (1 to [`MAX_STAFF_NAME_LEN`] characters).
    pub name: String,
    /// Their first password (the engine's password policy applies).
    pub password: String,
    /// The names of their roles (each must exist).
    pub roles: Vec<String>,
}

impl std::fmt::Debug for NewStaff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewStaff")
            .field("email", &self.email)
            .field("name", &self.name)
            .field("roles", &self.roles)
            .finish_non_exhaustive()
    }
}

impl NewStaff {
    /// A member signing in as `email` with `password`, holding `roles`.
    pub fn new(email: &str, name: &str, password: &str, roles: &[&str]) -> Self {
        Self {
            email: email.to_owned(),
            name: name.to_owned(),
            password: password.to_owned(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        }
    }
}

/// The one-time code for `secret` (base32) at time step `step`.
fn totp_code(secret: &str, step: u64) -> Result<String> {
    let bytes = totp_rs::Secret::Encoded(secret.to_owned())
        .to_bytes()
        .map_err(|_| Error::invalid("one-time code", "the stored secret is unreadable"))?;
    let totp = totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, 6, 1, 30, bytes);
    Ok(totp.generate(step.saturating_mul(30)))
}

/// The time step (of 30 seconds) `code` is good for around `now` (one step
/// of clock drift either way), if it is newer than `last_step`: a code is
/// accepted once.
fn totp_step(secret: &str, code: &str, now: DateTime<Utc>, last_step: u64) -> Result<Option<u64>> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    let step = u64::try_from(now.timestamp()).unwrap_or(0) / 30;
    for candidate in [step.saturating_sub(1), step, step.saturating_add(1)] {
        let expected = totp_code(secret, candidate)?;
        let same: bool = subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), code.as_bytes()).into();
        if same && candidate > last_step {
            return Ok(Some(candidate));
        }
    }
    Ok(None)
}

/// The code an authenticator shows for `secret` at `at` (for tests and
/// tools that stand in for a member's phone).
///
/// # Errors
/// [`Error::Invalid`] for a secret that is not base32.
pub fn totp_code_at(secret: &str, at: DateTime<Utc>) -> Result<String> {
    totp_code(secret, u64::try_from(at.timestamp()).unwrap_or(0) / 30)
}

impl Engine {
    /// Installs the built-in roles ([`Role::builtin`]) that are not there
    /// yet (a role of the same name the shop changed is kept); every role.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without [`Permission::Staff`]; [`Error::Invalid`]
    /// for a bad ceiling; [`Error::Storage`].
    pub async fn install_builtin_roles(
        &self,
        actor: &Actor,
        support_ceiling: &[Money],
    ) -> Result<Vec<Role>> {
        actor.require(Permission::Staff)?;
        let existing = self.inner.store.roles().await?;
        for role in Role::builtin(support_ceiling)? {
            if !existing.iter().any(|r| r.name == role.name) {
                self.inner.store.save_role(&role).await?;
                self.audit(actor, "save_role", &role.name).await;
            }
        }
        self.inner.store.roles().await
    }

    /// Saves a role, new or changed. Members holding it have its new
    /// permissions from their next request.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without [`Permission::Staff`]; [`Error::Invalid`]
    /// for a bad name or ceiling; [`Error::LimitExceeded`] past
    /// [`MAX_ROLES`]; [`Error::Storage`].
    pub async fn save_role(&self, actor: &Actor, role: Role) -> Result<Role> {
        actor.require(Permission::Staff)?;
        role.check()?;
        let roles = self.inner.store.roles().await?;
        if !roles.iter().any(|r| r.name == role.name) {
            crate::validate::at_most("roles", roles.len() + 1, MAX_ROLES)?;
        }
        let mut after: Vec<Role> = roles
            .iter()
            .filter(|r| r.name != role.name)
            .cloned()
            .collect();
        after.push(role.clone());
        let staff = self.inner.store.list_staff().await?;
        Self::ensure_someone_manages_staff((&staff, &roles), (&staff, &after))?;
        self.inner.store.save_role(&role).await?;
        self.audit(actor, "save_role", &role.name).await;
        Ok(role)
    }

    /// Deletes a role no member holds.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without [`Permission::Staff`]; [`Error::Invalid`]
    /// while a member holds it; [`Error::NotFound`]; [`Error::Storage`].
    pub async fn delete_role(&self, actor: &Actor, name: &str) -> Result<()> {
        actor.require(Permission::Staff)?;
        let holders = self
            .inner
            .store
            .list_staff()
            .await?
            .iter()
            .filter(|m| m.roles.iter().any(|r| r == name))
            .count();
        if holders > 0 {
            return Err(Error::invalid(
                "role",
                format!(
                    "{} is held by {holders} members of staff",
                    crate::validate::shown(name)
                ),
            ));
        }
        if !self.inner.store.delete_role(name).await? {
            return Err(Error::not_found("role", crate::validate::shown(name)));
        }
        self.audit(actor, "delete_role", name).await;
        Ok(())
    }

    /// Every role, by name.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without [`Permission::Staff`]; [`Error::Storage`].
    pub async fn roles(&self, actor: &Actor) -> Result<Vec<Role>> {
        actor.require(Permission::Staff)?;
        self.inner.store.roles().await
    }

    /// Opens an account for a member of staff.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without [`Permission::Staff`]; [`Error::Invalid`]
    /// for a bad email, name, password or a role that does not exist;
    /// [`Error::AlreadyExists`] for an email another member signs in with;
    /// [`Error::LimitExceeded`]; [`Error::Busy`] when every hashing slot
    /// stays taken; [`Error::Storage`].
    pub async fn create_staff(&self, actor: &Actor, new: NewStaff) -> Result<StaffMember> {
        actor.require(Permission::Staff)?;
        let email = Email::new(&new.email)?;
        let name = required_text("staff name", &new.name, MAX_STAFF_NAME_LEN)?;
        self.check_roles_exist(&new.roles).await?;
        let staff = self.inner.store.list_staff().await?;
        crate::validate::at_most("staff accounts", staff.len() + 1, MAX_STAFF)?;
        let policy = self.inner.config.password_policy;
        let password = new.password;
        let hash = self.hashing(move || policy.hash(&password)).await??;
        let member = StaffMember {
            id: StaffId::new(),
            email,
            name,
            roles: new.roles,
            active: true,
            created_at: self.now(),
            version: 0,
            password: hash,
            totp: None,
            failed_sign_ins: 0,
            locked_until: None,
            devices: Vec::new(),
        };
        self.inner.store.insert_staff(&member).await?;
        self.audit(actor, "create_staff", member.id).await;
        Ok(member)
    }

    /// The audit log: admin changes, newest first, at most `limit`
    /// (≤ [`MAX_PAGE_SIZE`](crate::store::MAX_PAGE_SIZE)), those recorded
    /// before the event with sequence `before` when given (the previous
    /// page's last). Each names who acted, what they did and to what.
    /// Changes are kept as long as the outbox keeps events: a shop that
    /// must keep its log longer relays them (`cartwright.admin.change.v1`)
    /// to an archive.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without [`Permission::Staff`];
    /// [`Error::LimitExceeded`] for a `limit` over the maximum;
    /// [`Error::Storage`].
    pub async fn audit_log(
        &self,
        actor: &Actor,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<crate::event::Event>> {
        actor.require(Permission::Staff)?;
        self.inner.store.admin_changes(before, limit).await
    }

    /// Every staff account, oldest first.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without [`Permission::Staff`]; [`Error::Storage`].
    pub async fn list_staff(&self, actor: &Actor) -> Result<Vec<StaffMember>> {
        actor.require(Permission::Staff)?;
        self.inner.store.list_staff().await
    }

    /// One staff account (a member may read their own).
    ///
    /// # Errors
    /// [`Error::Forbidden`] without [`Permission::Staff`], unless it is the
    /// member's own; [`Error::NotFound`]; [`Error::Storage`].
    pub async fn staff_member(&self, actor: &Actor, id: StaffId) -> Result<StaffMember> {
        if actor.staff_id() != Some(id) {
            actor.require(Permission::Staff)?;
        }
        self.inner
            .store
            .staff_member(id)
            .await?
            .ok_or_else(|| Error::not_found("staff member", id))
    }

    /// Gives a member these roles (in place of theirs).
    ///
    /// # Errors
    /// [`Error::Forbidden`] without [`Permission::Staff`]; [`Error::Invalid`]
    /// for a role that does not exist, or when no active account could
    /// manage staff afterwards; [`Error::NotFound`]; [`Error::Conflict`];
    /// [`Error::Storage`].
    pub async fn set_staff_roles(
        &self,
        actor: &Actor,
        id: StaffId,
        roles: Vec<String>,
    ) -> Result<StaffMember> {
        actor.require(Permission::Staff)?;
        self.check_roles_exist(&roles).await?;
        let member = self
            .change_staff(id, |m| {
                m.roles = roles.clone();
                Ok(())
            })
            .await?;
        self.audit(actor, "set_staff_roles", id).await;
        Ok(member)
    }

    /// Lets a member sign in again, or stops them (their sessions end at
    /// once; the account and its history stay).
    ///
    /// # Errors
    /// [`Error::Forbidden`] without [`Permission::Staff`]; [`Error::Invalid`]
    /// when no active account could manage staff afterwards;
    /// [`Error::NotFound`]; [`Error::Conflict`]; [`Error::Storage`].
    pub async fn set_staff_active(
        &self,
        actor: &Actor,
        id: StaffId,
        active: bool,
    ) -> Result<StaffMember> {
        actor.require(Permission::Staff)?;
        let member = self
            .change_staff(id, |m| {
                m.active = active;
                if active {
                    m.failed_sign_ins = 0;
                    m.locked_until = None;
                }
                Ok(())
            })
            .await?;
        if !active {
            self.inner
                .store
                .delete_staff_sessions(Some(id), self.now())
                .await?;
        }
        self.audit(
            actor,
            if active {
                "activate_staff"
            } else {
                "deactivate_staff"
            },
            id,
        )
        .await;
        Ok(member)
    }

    /// Signs a member of staff in (no actor: the credentials are the
    /// proof), from a device not known to be theirs: as
    /// [`Engine::staff_login_from`] without a device token.
    ///
    /// # Errors
    /// As [`Engine::staff_login_from`].
    pub async fn staff_login(
        &self,
        email: &str,
        password: &str,
        code: Option<&str>,
    ) -> Result<StaffLogin> {
        self.staff_login_from(email, password, code, None).await
    }

    /// Signs a member of staff in (no actor: the credentials are the
    /// proof). With two-factor sign-in on, `code` is the authenticator's
    /// current code, good once. `device` is the
    /// [`StaffLogin::device`] token this device was given at its last
    /// sign-in, if any.
    ///
    /// After [`MAX_FAILED_SIGN_INS`] wrong tries in a row from devices not
    /// known to be the member's, the account is locked to them for
    /// [`LOCKOUT_MINUTES`]; a device the member signed in on keeps its own
    /// count and is not locked out by anyone else's guesses (after
    /// [`MAX_FAILED_SIGN_INS`] wrong tries of its own it is forgotten). So
    /// someone who knows a member's email cannot lock them out of the
    /// devices they use. An unknown email costs the same hashing as a
    /// known one.
    ///
    /// # Errors
    /// [`Error::InvalidCredentials`] for a wrong email, password or code, a
    /// locked or inactive account (one answer for all);
    /// [`Error::Incomplete`] (`"one-time code"`) when the password is right
    /// and a code is needed but none was given; [`Error::Busy`];
    /// [`Error::Storage`].
    pub async fn staff_login_from(
        &self,
        email: &str,
        password: &str,
        code: Option<&str>,
        device: Option<&str>,
    ) -> Result<StaffLogin> {
        let member = match Email::new(email) {
            Ok(email) => self.inner.store.staff_by_email(&email).await?,
            Err(_) => None,
        };
        let hash = member
            .as_ref()
            .map(|m| m.password.clone())
            .unwrap_or_else(|| self.inner.dummy_hash.clone());
        let policy = self.inner.config.password_policy;
        let given = password.to_owned();
        let matches = self.hashing(move || policy.verify(&hash, &given)).await?;
        let now = self.now();
        let Some(member) = member else {
            return Err(Error::InvalidCredentials);
        };
        // A device the member signed in on, still trusted.
        let known = device
            .filter(|d| !d.is_empty() && d.len() <= MAX_DEVICE_TOKEN_LEN)
            .map(token_hash)
            .filter(|h| {
                member
                    .devices
                    .iter()
                    .any(|d| d.token_hash == *h && d.failures < MAX_FAILED_SIGN_INS)
            });
        if !member.active || (known.is_none() && member.locked_until(now).is_some()) {
            return Err(Error::InvalidCredentials);
        }
        if !matches {
            self.count_failed_sign_in(member.id, known.as_deref())
                .await?;
            return Err(Error::InvalidCredentials);
        }
        let mut step = None;
        if let Some(totp) = member.totp.as_ref().filter(|t| t.confirmed) {
            let Some(code) = code else {
                return Err(Error::Incomplete("one-time code"));
            };
            match totp_step(&totp.secret, code, now, totp.last_step)? {
                Some(s) => step = Some(s),
                None => {
                    self.count_failed_sign_in(member.id, known.as_deref())
                        .await?;
                    return Err(Error::InvalidCredentials);
                }
            }
        }
        let device = random_token();
        let fresh = TrustedDevice {
            token_hash: token_hash(&device),
            failures: 0,
            last_used: now,
        };
        let member = self
            .change_staff(member.id, |m| {
                if known.is_none() {
                    // A device known to be the member's leaves the count
                    // of everyone else's guesses (and a lock) alone.
                    m.failed_sign_ins = 0;
                    m.locked_until = None;
                }
                if let (Some(s), Some(totp)) = (step, m.totp.as_mut()) {
                    if s <= totp.last_step {
                        // The same code raced in twice: only one wins.
                        return Err(Error::InvalidCredentials);
                    }
                    totp.last_step = s;
                }
                // The token given in is spent; the device gets a new one,
                // last in the list (kept in order of use: the least
                // recently used goes first when there are too many).
                m.devices.retain(|d| Some(&d.token_hash) != known.as_ref());
                m.devices.push(fresh.clone());
                let excess = m.devices.len().saturating_sub(MAX_TRUSTED_DEVICES);
                m.devices.drain(..excess);
                Ok(())
            })
            .await?;
        let token = random_token();
        let expires_at = now + self.inner.config.staff_session_ttl;
        self.inner
            .store
            .insert_staff_session(&StaffSession {
                token_hash: token_hash(&token),
                staff_id: member.id,
                expires_at,
            })
            .await?;
        // Sessions that ended are cleared as new ones begin.
        self.inner.store.delete_staff_sessions(None, now).await?;
        let actor = Actor::StaffMember(Box::new(self.access_of(&member).await?));
        self.audit(&actor, "staff_sign_in", member.id).await;
        Ok(StaffLogin {
            token,
            staff: member,
            expires_at,
            device,
        })
    }

    /// The actor a session token stands for, with the member's roles as
    /// they are now: what the embedding program passes to every call it
    /// makes for that member.
    ///
    /// # Errors
    /// [`Error::InvalidToken`] for a token unknown, ended or expired, or of
    /// an account switched off; [`Error::Storage`].
    pub async fn staff_actor(&self, token: &str) -> Result<Actor> {
        let hash = token_hash(token);
        let Some(session) = self.inner.store.staff_session(&hash).await? else {
            return Err(Error::InvalidToken);
        };
        if session.expires_at <= self.now() {
            self.inner.store.delete_staff_session(&hash).await?;
            return Err(Error::InvalidToken);
        }
        match self.inner.store.staff_member(session.staff_id).await? {
            Some(member) if member.active => {
                Ok(Actor::StaffMember(Box::new(self.access_of(&member).await?)))
            }
            _ => Err(Error::InvalidToken),
        }
    }

    /// Ends a session (signing out). Ending one that is not there is a
    /// no-op.
    ///
    /// # Errors
    /// [`Error::Storage`].
    pub async fn staff_logout(&self, token: &str) -> Result<()> {
        self.inner
            .store
            .delete_staff_session(&token_hash(token))
            .await
    }

    /// Starts two-factor sign-in for the member acting: a new secret to
    /// put in an authenticator app. Sign-in asks for codes once
    /// [`confirm_totp`](Self::confirm_totp) has seen one.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless a signed-in member acts for themselves;
    /// [`Error::Invalid`] when two-factor sign-in is on already;
    /// [`Error::Conflict`]; [`Error::Storage`].
    pub async fn begin_totp(&self, actor: &Actor) -> Result<TotpEnrollment> {
        let id = actor.staff_id().ok_or(Error::Forbidden)?;
        let mut raw = [0_u8; 20];
        password_hash::rand_core::RngCore::fill_bytes(
            &mut password_hash::rand_core::OsRng,
            &mut raw,
        );
        let secret = totp_rs::Secret::Raw(raw.to_vec()).to_encoded().to_string();
        let member = self
            .change_staff(id, |m| {
                if m.two_factor() {
                    return Err(Error::invalid(
                        "two-factor sign-in",
                        "is on already: ask someone who manages staff to reset it",
                    ));
                }
                m.totp = Some(TotpState {
                    secret: secret.clone(),
                    confirmed: false,
                    last_step: 0,
                });
                Ok(())
            })
            .await?;
        let issuer = &self.inner.config.staff_totp_issuer;
        let mut uri = url::Url::parse("otpauth://totp/")
            .map_err(|e| Error::invalid("one-time code", e.to_string()))?;
        uri.set_path(&format!("/{issuer}:{}", member.email.as_str()));
        uri.query_pairs_mut()
            .append_pair("secret", &secret)
            .append_pair("issuer", issuer)
            .append_pair("algorithm", "SHA1")
            .append_pair("digits", "6")
            .append_pair("period", "30");
        Ok(TotpEnrollment {
            secret,
            uri: uri.to_string(),
        })
    }

    /// Turns two-factor sign-in on, with a code from the authenticator the
    /// secret of [`begin_totp`](Self::begin_totp) was put in.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless a signed-in member acts for themselves;
    /// [`Error::InvalidCredentials`] for a wrong code; [`Error::Invalid`]
    /// when enrolment was not begun; [`Error::Conflict`]; [`Error::Storage`].
    pub async fn confirm_totp(&self, actor: &Actor, code: &str) -> Result<StaffMember> {
        let id = actor.staff_id().ok_or(Error::Forbidden)?;
        let now = self.now();
        let member = self
            .change_staff(id, |m| {
                let Some(totp) = m.totp.as_mut().filter(|t| !t.confirmed) else {
                    return Err(Error::invalid(
                        "two-factor sign-in",
                        "begin enrolment first",
                    ));
                };
                match totp_step(&totp.secret, code, now, totp.last_step)? {
                    Some(step) => {
                        totp.confirmed = true;
                        totp.last_step = step;
                        Ok(())
                    }
                    None => Err(Error::InvalidCredentials),
                }
            })
            .await?;
        self.audit(actor, "enable_two_factor", id).await;
        Ok(member)
    }

    /// Turns a member's two-factor sign-in off (a lost phone); they may
    /// enrol again.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without [`Permission::Staff`];
    /// [`Error::NotFound`]; [`Error::Conflict`]; [`Error::Storage`].
    pub async fn reset_totp(&self, actor: &Actor, id: StaffId) -> Result<StaffMember> {
        actor.require(Permission::Staff)?;
        let member = self
            .change_staff(id, |m| {
                m.totp = None;
                Ok(())
            })
            .await?;
        self.audit(actor, "reset_two_factor", id).await;
        Ok(member)
    }

    /// Changes the acting member's password (they give the current one).
    /// Every session of theirs ends, this one too.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless a signed-in member acts for themselves;
    /// [`Error::InvalidCredentials`] for a wrong current password;
    /// [`Error::Invalid`] for a new one the policy refuses; [`Error::Busy`];
    /// [`Error::Conflict`]; [`Error::Storage`].
    pub async fn change_staff_password(
        &self,
        actor: &Actor,
        current: &str,
        new: &str,
    ) -> Result<()> {
        let id = actor.staff_id().ok_or(Error::Forbidden)?;
        let member = self
            .inner
            .store
            .staff_member(id)
            .await?
            .ok_or_else(|| Error::not_found("staff member", id))?;
        let policy = self.inner.config.password_policy;
        let (hash, current, new) = (member.password.clone(), current.to_owned(), new.to_owned());
        let (matches, new_hash) = self
            .hashing(move || (policy.verify(&hash, &current), policy.hash(&new)))
            .await?;
        if !matches {
            return Err(Error::InvalidCredentials);
        }
        let new_hash = new_hash?;
        self.change_staff(id, |m| {
            m.password = new_hash.clone();
            Ok(())
        })
        .await?;
        self.inner
            .store
            .delete_staff_sessions(Some(id), self.now())
            .await?;
        self.audit(actor, "change_staff_password", id).await;
        Ok(())
    }

    /// What `member` may do through the roles they hold now.
    async fn access_of(&self, member: &StaffMember) -> Result<StaffAccess> {
        let roles = self.inner.store.roles().await?;
        Ok(crate::staff::access_of(member, &roles))
    }

    async fn check_roles_exist(&self, names: &[String]) -> Result<()> {
        check_role_names(names)?;
        let roles = self.inner.store.roles().await?;
        for name in names {
            if !roles.iter().any(|r| r.name == *name) {
                return Err(Error::invalid(
                    "roles",
                    format!("no role is named {}", crate::validate::shown(name)),
                ));
            }
        }
        Ok(())
    }

    /// Refuses a change that leaves no active account able to manage staff
    /// where one could before.
    fn ensure_someone_manages_staff(
        before: (&[StaffMember], &[Role]),
        after: (&[StaffMember], &[Role]),
    ) -> Result<()> {
        let managed = |(staff, roles): (&[StaffMember], &[Role])| {
            staff
                .iter()
                .any(|m| m.active && crate::staff::access_of(m, roles).may(Permission::Staff))
        };
        if !managed(before) || managed(after) {
            Ok(())
        } else {
            Err(Error::invalid(
                "staff",
                "no active account could manage staff afterwards",
            ))
        }
    }

    /// Reads member `id`, applies `change` and saves it (a version bump),
    /// retrying when someone else saved meanwhile; refuses a result that
    /// leaves nobody able to manage staff.
    async fn change_staff(
        &self,
        id: StaffId,
        change: impl Fn(&mut StaffMember) -> Result<()>,
    ) -> Result<StaffMember> {
        for attempt in 0..self.inner.config.max_retries {
            crate::engine::pause_before_retry(attempt).await;
            let staff = self.inner.store.list_staff().await?;
            let Some(mut member) = staff.iter().find(|m| m.id == id).cloned() else {
                return Err(Error::not_found("staff member", id));
            };
            change(&mut member)?;
            member.version = member
                .version
                .checked_add(1)
                .ok_or(Error::Overflow("staff member version"))?;
            let after: Vec<StaffMember> = staff
                .iter()
                .map(|m| {
                    if m.id == id {
                        member.clone()
                    } else {
                        m.clone()
                    }
                })
                .collect();
            let roles = self.inner.store.roles().await?;
            Self::ensure_someone_manages_staff((&staff, &roles), (&after, &roles))?;
            match self.inner.store.save_staff(&member).await {
                Err(Error::Conflict(_)) => continue,
                Err(e) => return Err(e),
                Ok(()) => return Ok(member),
            }
        }
        Err(crate::engine::gave_up("staff member"))
    }

    /// Counts a wrong sign-in: against the device when it is known to be
    /// the member's (forgetting it after too many), else against the
    /// account (locking it after too many).
    async fn count_failed_sign_in(&self, id: StaffId, device: Option<&str>) -> Result<()> {
        let now = self.now();
        self.change_staff(id, |m| {
            if let Some(hash) = device {
                if let Some(d) = m.devices.iter_mut().find(|d| d.token_hash == hash) {
                    d.failures = d.failures.saturating_add(1);
                }
                m.devices.retain(|d| d.failures < MAX_FAILED_SIGN_INS);
                return Ok(());
            }
            m.failed_sign_ins = m.failed_sign_ins.saturating_add(1);
            if m.failed_sign_ins >= MAX_FAILED_SIGN_INS {
                m.failed_sign_ins = 0;
                m.locked_until = Some(now + chrono::Duration::minutes(LOCKOUT_MINUTES));
            }
            Ok(())
        })
        .await
        .map(drop)
    }
}

/// 32 random bytes, hex: a session or device token.
fn random_token() -> String {
    let mut raw = [0_u8; 32];
    password_hash::rand_core::RngCore::fill_bytes(&mut password_hash::rand_core::OsRng, &mut raw);
    hex::encode(raw)
}
