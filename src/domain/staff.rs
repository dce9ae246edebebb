//! Staff accounts, roles and permissions: who in the back office may do
//! what.
//!
//! A member of staff signs in with an email, a password (argon2id, under
//! the engine's [`PasswordPolicy`](crate::customer::PasswordPolicy)) and,
//! once enrolled, a time-based one-time code (TOTP, RFC 6238). The engine
//! issues a session token that expires
//! ([`EngineConfig::staff_session_ttl`](crate::EngineConfig)) and turns it,
//! on every request, into an [`Actor::StaffMember`](crate::Actor::StaffMember)
//! carrying the union of the member's roles ([`StaffAccess`]), read afresh:
//! a role taken away, or an account switched off, takes effect at the next
//! request. Every engine call checks that actor against the access table
//! ([`actor`](crate::actor)): one [`Permission`] per area of the shop, and
//! for money given back a ceiling per refund and currency.
//!
//! The built-in roles ([`Role::owner`], [`Role::manager`],
//! [`Role::support`], [`Role::warehouse`], [`Role::marketing`]) are data
//! like any other role: installed with
//! [`Engine::install_builtin_roles`](crate::Engine::install_builtin_roles),
//! changed or replaced by the shop.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use crate::actor::{Permission, StaffAccess};
use crate::customer::{Email, PasswordHash};
use crate::error::{Error, Result};
use crate::id::StaffId;
use crate::money::{Currency, Money};

/// Longest role name, in characters.
pub const MAX_ROLE_NAME_LEN: usize = 64;
/// Most roles one member of staff holds.
pub const MAX_ROLES_PER_STAFF: usize = 10;
/// Most roles a shop defines.
pub const MAX_ROLES: usize = 100;
/// Most currencies a refund ceiling names.
pub const MAX_REFUND_CEILINGS: usize = 50;
/// Longest staff name, in characters.
pub const MAX_STAFF_NAME_LEN: usize = 200;
/// Wrong passwords or codes in a row before an account is locked for
/// [`LOCKOUT_MINUTES`].
pub const MAX_FAILED_SIGN_INS: u32 = 5;
/// How long an account stays locked after too many wrong sign-ins.
pub const LOCKOUT_MINUTES: i64 = 15;
/// Most devices a member of staff is remembered on (the least recently
/// used is forgotten first).
pub const MAX_TRUSTED_DEVICES: usize = 10;
/// Longest device token accepted at sign-in, in bytes (longer ones are
/// taken for none).
pub const MAX_DEVICE_TOKEN_LEN: usize = 128;

/// A device a member signed in on: the SHA-256 of the token it was given,
/// its own count of wrong sign-ins, and when it was last used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TrustedDevice {
    pub(crate) token_hash: String,
    pub(crate) failures: u32,
    pub(crate) last_used: DateTime<Utc>,
}

/// A named set of permissions, with a ceiling on refunds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Role {
    /// Its name, unique in the shop: 1 to [`MAX_ROLE_NAME_LEN`] lower-case
    /// ASCII letters, digits, `-` or `_`.
    pub name: String,
    /// What it may do.
    pub permissions: BTreeSet<Permission>,
    /// With [`Permission::Refunds`]: the most one refund may give back, per
    /// currency; a currency not listed allows none. `None`: no ceiling.
    pub refund_ceiling: Option<BTreeMap<Currency, Money>>,
}

impl Role {
    /// A role named `name` with `permissions` and no refund ceiling.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the name given.
    pub fn new(name: &str, permissions: impl IntoIterator<Item = Permission>) -> Result<Self> {
        let role = Self {
            name: name.to_owned(),
            permissions: permissions.into_iter().collect(),
            refund_ceiling: None,
        };
        role.check()?;
        Ok(role)
    }

    /// The same role, refunding at most `ceiling` (one amount per currency)
    /// in one refund.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an amount that is not positive and exact or a
    /// currency named twice; [`Error::LimitExceeded`] past
    /// [`MAX_REFUND_CEILINGS`].
    pub fn with_refund_ceiling(mut self, ceiling: &[Money]) -> Result<Self> {
        crate::validate::at_most("refund ceilings", ceiling.len(), MAX_REFUND_CEILINGS)?;
        let mut map = BTreeMap::new();
        for m in ceiling {
            if map.insert(m.currency(), *m).is_some() {
                return Err(Error::invalid(
                    "refund ceiling",
                    format!("{} is named twice", m.currency()),
                ));
            }
        }
        self.refund_ceiling = Some(map);
        self.check()?;
        Ok(self)
    }

    /// Every permission, no refund ceiling: whoever runs the shop.
    pub fn owner() -> Self {
        Self {
            name: "owner".into(),
            permissions: Permission::ALL.into_iter().collect(),
            refund_ceiling: None,
        }
    }

    /// Everything but staff and settings, refunds without a ceiling.
    pub fn manager() -> Self {
        Self {
            name: "manager".into(),
            permissions: Permission::ALL
                .into_iter()
                .filter(|p| !matches!(p, Permission::Staff | Permission::Settings))
                .collect(),
            refund_ceiling: None,
        }
    }

    /// Orders, customers and gift cards, and refunds up to `ceiling` (one
    /// amount per currency; none in a currency not named).
    ///
    /// # Errors
    /// As [`with_refund_ceiling`](Self::with_refund_ceiling).
    pub fn support(ceiling: &[Money]) -> Result<Self> {
        Self {
            name: "support".into(),
            permissions: [
                Permission::Orders,
                Permission::Customers,
                Permission::GiftCards,
                Permission::Refunds,
            ]
            .into(),
            refund_ceiling: None,
        }
        .with_refund_ceiling(ceiling)
    }

    /// Stock and orders (to ship, receive returns and buy labels); no
    /// refunds.
    pub fn warehouse() -> Self {
        Self {
            name: "warehouse".into(),
            permissions: [Permission::Inventory, Permission::Orders].into(),
            refund_ceiling: None,
        }
    }

    /// Promotions, coupons and price lists, and the catalog they sell.
    pub fn marketing() -> Self {
        Self {
            name: "marketing".into(),
            permissions: [Permission::Promotions, Permission::Catalog].into(),
            refund_ceiling: None,
        }
    }

    /// The five built-in roles, support refunding up to `support_ceiling`.
    ///
    /// # Errors
    /// As [`support`](Self::support).
    pub fn builtin(support_ceiling: &[Money]) -> Result<Vec<Self>> {
        Ok(vec![
            Self::owner(),
            Self::manager(),
            Self::support(support_ceiling)?,
            Self::warehouse(),
            Self::marketing(),
        ])
    }

    /// Checks the name and the ceiling.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming what is wrong.
    pub(crate) fn check(&self) -> Result<()> {
        let ok = !self.name.is_empty()
            && self.name.chars().count() <= MAX_ROLE_NAME_LEN
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !ok {
            return Err(Error::invalid(
                "role name",
                format!(
                    "{} must be 1 to {MAX_ROLE_NAME_LEN} lower-case letters, digits, `-` or `_`",
                    crate::validate::shown(&self.name)
                ),
            ));
        }
        if let Some(ceiling) = &self.refund_ceiling {
            crate::validate::at_most("refund ceilings", ceiling.len(), MAX_REFUND_CEILINGS)?;
            for (currency, m) in ceiling {
                m.entered()?;
                if m.currency() != *currency || m.is_negative() || m.is_zero() || !m.is_exact() {
                    return Err(Error::invalid(
                        "refund ceiling",
                        format!("{m} must be positive and exact in minor units"),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A member of staff's second factor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TotpState {
    /// The shared secret, base32 (RFC 4648, no padding).
    pub(crate) secret: String,
    /// Whether a code proved the member's authenticator holds it; until
    /// then it is not asked for at sign-in.
    pub(crate) confirmed: bool,
    /// The last time step a code was accepted for: a code is good once.
    pub(crate) last_step: u64,
}

/// A member of staff's account.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StaffMember {
    /// Its id.
    pub id: StaffId,
    /// The email they sign in with (unique among staff).
    pub email: Email,
    /// Their name, for the history and the audit log.
    pub name: String,
    /// The names of their roles.
    pub roles: Vec<String>,
    /// Whether they may sign in (an account switched off keeps its
    /// history).
    pub active: bool,
    /// When the account was made.
    pub created_at: DateTime<Utc>,
    /// Bumped by every save; a save of an older version is a conflict.
    pub version: u64,
    pub(crate) password: PasswordHash,
    #[serde(default)]
    pub(crate) totp: Option<TotpState>,
    /// Wrong sign-ins in a row.
    #[serde(default)]
    pub(crate) failed_sign_ins: u32,
    #[serde(default)]
    pub(crate) locked_until: Option<DateTime<Utc>>,
    /// Devices it signed in on, which the account's lockout spares.
    #[serde(default)]
    pub(crate) devices: Vec<TrustedDevice>,
}

impl std::fmt::Debug for StaffMember {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaffMember")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("name", &self.name)
            .field("roles", &self.roles)
            .field("active", &self.active)
            .field("two_factor", &self.two_factor())
            .finish_non_exhaustive()
    }
}

impl StaffMember {
    /// Whether sign-in asks for a one-time code.
    pub fn two_factor(&self) -> bool {
        self.totp.as_ref().is_some_and(|t| t.confirmed)
    }

    /// Until when the account is locked after wrong sign-ins, if it is at
    /// `now`.
    pub fn locked_until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.locked_until.filter(|t| *t > now)
    }
}

/// Checks role names for a member: 1 to [`MAX_ROLES_PER_STAFF`], each
/// once.
///
/// # Errors
/// [`Error::Invalid`]; [`Error::LimitExceeded`].
pub(crate) fn check_role_names(roles: &[String]) -> Result<()> {
    if roles.is_empty() {
        return Err(Error::invalid("roles", "a member of staff needs a role"));
    }
    crate::validate::at_most(
        "roles of a member of staff",
        roles.len(),
        MAX_ROLES_PER_STAFF,
    )?;
    for (i, r) in roles.iter().enumerate() {
        if roles.iter().skip(i + 1).any(|o| o == r) {
            return Err(Error::invalid(
                "roles",
                format!("{} is named twice", crate::validate::shown(r)),
            ));
        }
    }
    Ok(())
}

/// What `member` may do through `roles` (the roles they hold; others
/// are ignored): the union of their permissions, and the highest refund
/// ceiling among the roles that may refund.
pub(crate) fn access_of(member: &StaffMember, roles: &[Role]) -> StaffAccess {
    let held: Vec<&Role> = roles
        .iter()
        .filter(|r| member.roles.contains(&r.name))
        .collect();
    let permissions: BTreeSet<Permission> = held
        .iter()
        .flat_map(|r| r.permissions.iter().copied())
        .collect();
    let refunders = held
        .iter()
        .filter(|r| r.permissions.contains(&Permission::Refunds));
    let mut ceiling: Option<BTreeMap<Currency, Money>> = Some(BTreeMap::new());
    for r in refunders {
        match (&mut ceiling, &r.refund_ceiling) {
            (_, None) => ceiling = None,
            (None, Some(_)) => {}
            (Some(acc), Some(limits)) => {
                for (c, m) in limits {
                    let higher = match acc.get(c) {
                        Some(have) => have.checked_cmp(m).is_ok_and(|o| o.is_lt()),
                        None => true,
                    };
                    if higher {
                        acc.insert(*c, *m);
                    }
                }
            }
        }
    }
    StaffAccess {
        staff_id: member.id,
        name: member.name.clone(),
        permissions,
        refund_ceiling: ceiling,
    }
}

/// What signing in gives: the session's secret token (for the embedding
/// program's cookie, never logged) and when it ends.
#[derive(Clone)]
#[non_exhaustive]
pub struct StaffLogin {
    /// The session token: pass it to
    /// [`Engine::staff_actor`](crate::Engine::staff_actor) on each request.
    pub token: String,
    /// Who signed in.
    pub staff: StaffMember,
    /// When the session ends, used or not.
    pub expires_at: DateTime<Utc>,
    /// This device's new token (for a long-lived cookie; never logged):
    /// given back at the next sign-in
    /// ([`Engine::staff_login_from`](crate::Engine::staff_login_from)), it
    /// spares the device the account's lockout. A new one each sign-in;
    /// the one given in is spent.
    pub device: String,
}

impl std::fmt::Debug for StaffLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaffLogin")
            .field("staff", &self.staff)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A stored session: the SHA-256 of its token, whose it is and when it
/// ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StaffSession {
    /// Hex SHA-256 of the token (the token itself is never stored).
    pub token_hash: String,
    /// Whose.
    pub staff_id: StaffId,
    /// When it ends.
    pub expires_at: DateTime<Utc>,
}

/// What enrolling in two-factor sign-in gives, to show once (as a QR code
/// of `uri`, or the secret to type in).
#[derive(Clone)]
#[non_exhaustive]
pub struct TotpEnrollment {
    /// The shared secret, base32.
    pub secret: String,
    /// The `otpauth://` URI authenticator apps read.
    pub uri: String,
}

impl std::fmt::Debug for TotpEnrollment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpEnrollment(<secret>)")
    }
}

/// SHA-256 of a session token, hex: how sessions are stored and found.
pub(crate) fn token_hash(token: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(roles: &[&str]) -> StaffMember {
        StaffMember {
            id: StaffId::new(),
            email: Email::new("a@example.com").unwrap(),
            name: "A".into(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            active: true,
            created_at: Utc::now(),
            version: 0,
            password: PasswordHash::from_phc(String::new()),
            totp: None,
            failed_sign_ins: 0,
            locked_until: None,
            devices: Vec::new(),
        }
    }

    #[test]
    fn access_is_the_union_of_roles_with_the_highest_ceiling() {
        let usd = |s: &str| Money::parse(s, Currency::USD).unwrap();
        let roles = vec![
            Role::support(&[usd("50.00")]).unwrap(),
            Role::warehouse(),
            Role::new("senior", [Permission::Refunds])
                .unwrap()
                .with_refund_ceiling(&[usd("200.00")])
                .unwrap(),
            Role::owner(),
        ];
        let a = access_of(&member(&["support", "warehouse"]), &roles);
        assert!(a.may(Permission::Inventory) && a.may(Permission::Customers));
        assert!(!a.may(Permission::Catalog));
        assert!(a.may_refund(usd("50.00")) && !a.may_refund(usd("50.01")));
        let eur = Money::parse("1.00", Currency::EUR).unwrap();
        assert!(!a.may_refund(eur), "no ceiling named: no refund");
        let b = access_of(&member(&["support", "senior"]), &roles);
        assert!(b.may_refund(usd("200.00")) && !b.may_refund(usd("200.01")));
        let w = access_of(&member(&["warehouse"]), &roles);
        assert!(!w.may_refund(usd("0.01")));
        let o = access_of(&member(&["owner", "support"]), &roles);
        assert!(o.may_refund(eur), "the owner has no ceiling");
    }

    #[test]
    fn role_names_and_ceilings_are_checked() {
        assert!(Role::new("Support", []).is_err());
        assert!(Role::new("", []).is_err());
        assert!(Role::new(&"x".repeat(65), []).is_err());
        let usd = |s: &str| Money::parse(s, Currency::USD).unwrap();
        assert!(Role::support(&[usd("0.00")]).is_err());
        assert!(Role::support(&[usd("1.00"), usd("2.00")]).is_err());
        assert!(Role::support(&[usd("-1.00")]).is_err());
        assert!(check_role_names(&[]).is_err());
        assert!(check_role_names(&["a".into(), "a".into()]).is_err());
    }
}
