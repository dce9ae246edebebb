//! Single-use account tokens: password reset and email verification.
//!
//! The engine issues a token; the embedding program delivers it (by email)
//! and hands it back when the customer follows the link. A token is
//! `<customer id>.<64 hex characters of 256 random bits>`: the id finds the
//! account, the secret proves the holder received it. Only a SHA-256 hash
//! of the secret is stored; it is compared in constant time; each token
//! expires, serves once, and is void after [`MAX_TOKEN_ATTEMPTS`] wrong
//! guesses against its account.
//!
//! Tokens are kept apart from the customer, one per account and purpose
//! (a newer one replaces the older), by two store commands:
//! [`CustomerStore::issue_account_token`](crate::store::CustomerStore::issue_account_token)
//! records one — for an email without an account too, under a decoy id no
//! account has, so that asking for a reset costs the same write either way
//! and its timing tells nothing — and
//! [`CustomerStore::use_account_token`](crate::store::CustomerStore::use_account_token)
//! checks a presented secret under the account's lock: a wrong one is
//! counted in that same command (so concurrent guesses are all counted), a
//! right one is used up and its change applied to the customer, once. A
//! password-reset token also remembers a fingerprint of the password it was
//! issued under ([`password_mark`]): a new password voids it.

use std::fmt;

use chrono::{DateTime, Utc};
use password_hash::rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};
use crate::id::CustomerId;

/// Wrong secrets tried against one account's token before it is void.
pub const MAX_TOKEN_ATTEMPTS: u32 = 5;
/// Longest token accepted, in characters (longer input is refused unread).
pub const MAX_TOKEN_LEN: usize = 128;

/// What an account token lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TokenPurpose {
    /// Set a new password without the old one.
    PasswordReset,
    /// Confirm that the customer receives mail at the account's email.
    EmailVerification,
    /// Confirm a new email (sent to the new address), which only then
    /// replaces the account's.
    EmailChange,
}

impl TokenPurpose {
    /// Its name in storage: `password_reset`, `email_verification`,
    /// `email_change`.
    pub fn name(self) -> &'static str {
        match self {
            Self::PasswordReset => "password_reset",
            Self::EmailVerification => "email_verification",
            Self::EmailChange => "email_change",
        }
    }

    /// The purpose named `name` ([`TokenPurpose::name`]).
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::PasswordReset,
            Self::EmailVerification,
            Self::EmailChange,
        ]
        .into_iter()
        .find(|p| p.name() == name)
    }
}

/// A token the engine issued, as a store keeps it: a hash of its secret,
/// never the secret; `Debug` never shows the hash. For storage adapters.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountToken {
    purpose: TokenPurpose,
    /// SHA-256 of the secret, hex.
    hash: String,
    expires_at: DateTime<Utc>,
    #[serde(default)]
    attempts: u32,
    /// For an email change: the new address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    new_email: Option<super::Email>,
    /// [`password_mark`] of the account's password when the token was
    /// issued (set by the store): a reset token is void once it differs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    password_mark: Option<String>,
}

impl fmt::Debug for AccountToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountToken")
            .field("purpose", &self.purpose)
            .field("expires_at", &self.expires_at)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

impl AccountToken {
    /// What it is for.
    pub fn purpose(&self) -> TokenPurpose {
        self.purpose
    }

    /// When it stops working.
    pub fn expires_at(&self) -> DateTime<Utc> {
        self.expires_at
    }

    /// Wrong secrets tried against it so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The hex SHA-256 of its secret, for storage.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// For an email change, the new address.
    pub fn new_email(&self) -> Option<&super::Email> {
        self.new_email.as_ref()
    }

    /// The fingerprint of the password it was issued under.
    pub fn password_mark(&self) -> Option<&str> {
        self.password_mark.as_deref()
    }

    /// For storage adapters: the token with the fingerprint of the
    /// account's password when it was recorded ([`password_mark`]).
    #[must_use]
    pub fn issued_under(mut self, mark: Option<String>) -> Self {
        self.password_mark = mark;
        self
    }

    /// For storage adapters: a token read back from its columns.
    pub fn from_parts(
        purpose: TokenPurpose,
        hash: String,
        expires_at: DateTime<Utc>,
        attempts: u32,
        new_email: Option<super::Email>,
        password_mark: Option<String>,
    ) -> Self {
        Self {
            purpose,
            hash,
            expires_at,
            attempts,
            new_email,
            password_mark,
        }
    }

    /// Whether it can still be used by `customer` at `now`: not expired,
    /// not worn out, and — for a password reset — issued under the
    /// customer's current password (a registered account's).
    pub fn live_for(&self, customer: &super::Customer, now: DateTime<Utc>) -> bool {
        let password_holds = self.purpose != TokenPurpose::PasswordReset
            || (customer.kind() == super::CustomerKind::Registered
                && self.password_mark == password_mark(customer.password_hash()));
        self.expires_at > now && self.attempts < MAX_TOKEN_ATTEMPTS && password_holds
    }

    /// Checks a presented secret's digest ([`digest`]) against this token
    /// of `customer`'s, in constant time: a wrong one is counted here (the
    /// store saves the count in the same command).
    pub fn check(
        &mut self,
        customer: &super::Customer,
        presented: &str,
        now: DateTime<Utc>,
    ) -> Check {
        if !self.live_for(customer, now) {
            return Check::Absent;
        }
        if bool::from(self.hash.as_bytes().ct_eq(presented.as_bytes())) {
            return Check::Accepted;
        }
        self.attempts = self.attempts.saturating_add(1);
        Check::Wrong
    }
}

/// A PHC string of the usual length, fingerprinted in place of a password
/// when a token is recorded for an email no account has, so that the work
/// is the same.
pub const DECOY_PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/// The fingerprint of a password hash kept with a reset token (hex SHA-256
/// of its PHC string; `None` without a password): a reset token issued
/// under another password is void. PostgreSQL computes the same with
/// `encode(sha256(convert_to(password_hash, 'UTF8')), 'hex')`.
pub fn password_mark(hash: Option<&super::PasswordHash>) -> Option<String> {
    hash.map(|h| digest(h.as_phc()))
}

/// What checking a presented secret against a stored token found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Check {
    /// It matches a live token, which the store now uses up.
    Accepted,
    /// No live token (none, expired, worn out, or issued under another
    /// password).
    Absent,
    /// A live token exists and the secret is wrong: one attempt counted.
    Wrong,
}

/// Whom [`CustomerStore::issue_account_token`](crate::store::CustomerStore::issue_account_token)
/// records a token for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenHolder<'a> {
    /// The registered account with this email; when none has it, the
    /// token is recorded all the same under `decoy` (an id no account
    /// has), so that the command does the same work either way.
    Email {
        /// The email asked for.
        email: &'a super::Email,
        /// The id to record the token under when no account has the email.
        decoy: CustomerId,
    },
    /// This account (a signed-in customer's own request).
    Customer(CustomerId),
}

/// What a token, once accepted, changes on its account, applied by
/// [`CustomerStore::use_account_token`](crate::store::CustomerStore::use_account_token)
/// under the same lock that used the token up.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AccountChange {
    /// A new password (hashed); with `sign_out_everywhere` every session
    /// ends. The email counts as verified: the customer read mail there.
    ResetPassword {
        /// The new password's hash.
        hash: super::PasswordHash,
        /// Whether every session ends.
        sign_out_everywhere: bool,
    },
    /// The email is verified.
    VerifyEmail,
    /// The token's new email becomes the account's (verified).
    ChangeEmail,
}

impl AccountChange {
    /// The purpose a token must have to make this change.
    pub fn purpose(&self) -> TokenPurpose {
        match self {
            Self::ResetPassword { .. } => TokenPurpose::PasswordReset,
            Self::VerifyEmail => TokenPurpose::EmailVerification,
            Self::ChangeEmail => TokenPurpose::EmailChange,
        }
    }

    /// Applies the change that the accepted `token` allows to `customer`.
    ///
    /// # Errors
    /// [`Error::InvalidToken`] for an email change token without its email.
    pub fn apply(&self, customer: &mut super::Customer, token: &AccountToken) -> Result<()> {
        match self {
            Self::ResetPassword {
                hash,
                sign_out_everywhere,
            } => {
                customer.set_password(hash.clone(), *sign_out_everywhere);
                customer.mark_email_verified();
            }
            Self::VerifyEmail => customer.mark_email_verified(),
            Self::ChangeEmail => {
                let email = token.new_email.clone().ok_or(Error::InvalidToken)?;
                customer.change_email(email);
            }
        }
        Ok(())
    }
}

/// A token to deliver to the customer: the secret itself, shown once.
/// `Debug` hides the secret.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IssuedToken {
    /// The account.
    pub customer_id: CustomerId,
    /// Where to send it (the account's email).
    pub email: super::Email,
    /// What it is for.
    pub purpose: TokenPurpose,
    /// The token to put in the link; the engine keeps only its hash.
    pub token: String,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("customer_id", &self.customer_id)
            .field("email", &self.email)
            .field("purpose", &self.purpose)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// The hex SHA-256 of a secret: what is stored, and what a presented
/// secret is compared as.
pub fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A fresh secret (256 bits from the operating system) and its stored
/// form; the token to deliver is [`token_text`] of the account and the
/// secret, once the store said which account it is.
pub(crate) fn issue(
    purpose: TokenPurpose,
    new_email: Option<super::Email>,
    expires_at: DateTime<Utc>,
) -> (String, AccountToken) {
    let mut bytes = [0_u8; 32];
    OsRng.fill_bytes(&mut bytes);
    let secret = hex::encode(bytes);
    let stored = AccountToken {
        purpose,
        hash: digest(&secret),
        expires_at,
        attempts: 0,
        new_email,
        password_mark: None,
    };
    (secret, stored)
}

/// The token to deliver: the account and the secret.
pub(crate) fn token_text(customer_id: CustomerId, secret: &str) -> String {
    format!("{}.{secret}", customer_id.as_uuid().simple())
}

/// Splits a presented token into the account it names and its secret.
///
/// # Errors
/// [`Error::InvalidToken`] for anything not shaped like a token.
pub(crate) fn parse(token: &str) -> Result<(CustomerId, &str)> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(Error::InvalidToken);
    }
    let (id, secret) = token.trim().split_once('.').ok_or(Error::InvalidToken)?;
    let id = uuid::Uuid::try_parse(id).map_err(|_| Error::InvalidToken)?;
    if secret.len() != 64 || !secret.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::InvalidToken);
    }
    Ok((CustomerId::from_uuid(id), secret))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::customer::{Customer, Email, PasswordHash};

    fn ann(phc: &str) -> Customer {
        Customer::registered(
            Email::new("ann@example.com").unwrap(),
            "Ann",
            PasswordHash::from_phc(phc.into()),
            Utc::now(),
        )
        .unwrap()
    }

    #[test]
    fn a_token_serves_once_expires_wears_out_and_dies_with_the_password() {
        let now = Utc::now();
        let later = now + chrono::Duration::hours(1);
        let customer = ann("$argon2id$one");
        let (secret, stored) = issue(TokenPurpose::PasswordReset, None, later);
        let token = token_text(customer.id(), &secret);
        let (parsed_id, parsed) = parse(&token).unwrap();
        assert_eq!((parsed_id, parsed), (customer.id(), secret.as_str()));
        let stored = stored.issued_under(password_mark(customer.password_hash()));
        let presented = digest(&secret);
        assert_eq!(
            stored.clone().check(&customer, &presented, now),
            Check::Accepted
        );
        // Expired.
        assert_eq!(
            stored.clone().check(&customer, &presented, later),
            Check::Absent
        );
        // Worn out by wrong guesses, then the right secret no longer works.
        let mut worn = stored.clone();
        let wrong = digest(&"0".repeat(64));
        for n in 1..=MAX_TOKEN_ATTEMPTS {
            assert_eq!(worn.check(&customer, &wrong, now), Check::Wrong);
            assert_eq!(worn.attempts(), n);
        }
        assert_eq!(worn.check(&customer, &presented, now), Check::Absent);
        // Another password since: void.
        let changed = ann("$argon2id$two");
        assert_eq!(
            stored.clone().check(&changed, &presented, now),
            Check::Absent
        );
        // Malformed input is refused unread.
        for bad in [
            "",
            "x",
            "abc.def",
            &"a".repeat(500),
            &format!("{}.zz", customer.id().as_uuid()),
        ] {
            assert!(matches!(parse(bad), Err(Error::InvalidToken)), "{bad}");
        }
        // The stored form never shows the hash.
        assert!(!format!("{stored:?}").contains(&stored.hash));
    }
}
