//! Single-use account tokens: password reset and email verification.
//!
//! The engine issues a token; the embedding program delivers it (by email)
//! and hands it back when the customer follows the link. A token is
//! `<customer id>.<64 hex characters of 256 random bits>`: the id finds the
//! account, the secret proves the holder received it. Only a SHA-256 hash
//! of the secret is stored; it is compared in constant time; each token
//! expires, serves once, and is void after [`MAX_TOKEN_ATTEMPTS`] wrong
//! guesses against its account.

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

/// A token the engine issued, stored with the customer as a hash. For
/// storage adapters: kept beside the serialized customer
/// ([`Customer::account_tokens`](super::Customer::account_tokens)), never
/// in it, never shown by `Debug`.
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

fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A fresh secret (256 bits from the operating system) and its stored form.
pub(crate) fn issue(
    purpose: TokenPurpose,
    customer_id: CustomerId,
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
        new_email: None,
    };
    (
        format!("{}.{secret}", customer_id.as_uuid().simple()),
        stored,
    )
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

/// An email-change token: as [`issue`], carrying the new address.
pub(crate) fn issue_email_change(
    customer_id: CustomerId,
    new_email: super::Email,
    expires_at: DateTime<Utc>,
) -> (String, AccountToken) {
    let (token, mut stored) = issue(TokenPurpose::EmailChange, customer_id, expires_at);
    stored.new_email = Some(new_email);
    (token, stored)
}

/// What checking a presented secret against the stored tokens found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Check {
    /// It matches a live token of the purpose, which is now used up (with
    /// the new email, for an email change).
    Accepted(Option<super::Email>),
    /// No live token of that purpose (none, expired or void).
    Absent,
    /// A live token exists and the secret is wrong: one attempt counted.
    Wrong,
}

/// Checks `secret` against the live token of `purpose` in `tokens`,
/// removing expired ones, the token when it is accepted, and the token
/// after [`MAX_TOKEN_ATTEMPTS`] wrong secrets.
pub(crate) fn check(
    tokens: &mut Vec<AccountToken>,
    purpose: TokenPurpose,
    secret: &str,
    now: DateTime<Utc>,
) -> Check {
    tokens.retain(|t| t.expires_at > now);
    let presented = digest(secret);
    let Some(at) = tokens.iter().position(|t| t.purpose == purpose) else {
        return Check::Absent;
    };
    let matches: bool = tokens
        .get(at)
        .is_some_and(|t| t.hash.as_bytes().ct_eq(presented.as_bytes()).into());
    if matches {
        let used = tokens.remove(at);
        return Check::Accepted(used.new_email);
    }
    if let Some(t) = tokens.get_mut(at) {
        t.attempts = t.attempts.saturating_add(1);
        if t.attempts >= MAX_TOKEN_ATTEMPTS {
            tokens.remove(at);
        }
    }
    Check::Wrong
}

/// Puts `token` in place of any live one of its purpose.
pub(crate) fn replace(tokens: &mut Vec<AccountToken>, token: AccountToken, now: DateTime<Utc>) {
    tokens.retain(|t| t.purpose != token.purpose && t.expires_at > now);
    tokens.push(token);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_serves_once_expires_and_wears_out() {
        let now = Utc::now();
        let id = CustomerId::new();
        let later = now + chrono::Duration::hours(1);
        let (token, stored) = issue(TokenPurpose::PasswordReset, id, later);
        let (parsed_id, secret) = parse(&token).unwrap();
        assert_eq!(parsed_id, id);
        let mut tokens = vec![stored.clone()];
        // The wrong purpose finds nothing; the right one, once.
        assert_eq!(
            check(&mut tokens, TokenPurpose::EmailVerification, secret, now),
            Check::Absent
        );
        assert_eq!(
            check(&mut tokens, TokenPurpose::PasswordReset, secret, now),
            Check::Accepted(None)
        );
        assert_eq!(
            check(&mut tokens, TokenPurpose::PasswordReset, secret, now),
            Check::Absent
        );
        // Expired.
        let mut tokens = vec![stored.clone()];
        assert_eq!(
            check(&mut tokens, TokenPurpose::PasswordReset, secret, later),
            Check::Absent
        );
        // Worn out by wrong guesses, then the right secret no longer works.
        let mut tokens = vec![stored];
        let wrong = "0".repeat(64);
        for _ in 0..MAX_TOKEN_ATTEMPTS {
            assert_eq!(
                check(&mut tokens, TokenPurpose::PasswordReset, &wrong, now),
                Check::Wrong
            );
        }
        assert_eq!(
            check(&mut tokens, TokenPurpose::PasswordReset, secret, now),
            Check::Absent
        );
        // Malformed input is refused unread.
        for bad in [
            "",
            "x",
            "abc.def",
            &"a".repeat(500),
            &format!("{}.zz", id.as_uuid()),
        ] {
            assert!(matches!(parse(bad), Err(Error::InvalidToken)), "{bad}");
        }
        // The stored form never shows the hash.
        assert!(
            !format!("{:?}", issue(TokenPurpose::PasswordReset, id, later).1).contains("hash:")
        );
    }
}
