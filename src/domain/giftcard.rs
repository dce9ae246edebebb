//! Gift cards and store credit: balances a customer spends at checkout,
//! kept as **append-only ledger entries**. A card's balance is the sum of
//! its entries; an entry is never changed or removed, and each carries an
//! idempotency key, so posting the same entry twice (a retry, recovery)
//! counts once. A debit never takes the balance below zero: the store
//! posts entries one card at a time under its lock or row lock.
//!
//! A gift card has a secret code. Only its SHA-256 hash and its last four
//! characters are kept: the code is shown once, when the card is issued.
//! Store credit belongs to a customer and has no code.
//!
//! Limits: an entry's amount and a card's balance are at most
//! [`MAX_AMOUNT_UNITS`](crate::money::MAX_AMOUNT_UNITS) whole units; a
//! ledger holds at most [`MAX_LEDGER_ENTRIES`] entries.
//!
//! Does not know: checkout or orders beyond the reference an entry carries.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::actor::Actor;
use crate::error::{Error, Result};
use crate::id::CustomerId;
use crate::money::{Currency, Money};

pub use crate::id::GiftCardId;

/// Most entries one card's ledger holds; issue a new card beyond it.
pub const MAX_LEDGER_ENTRIES: usize = 1_000;
/// Longest idempotency key or reference on an entry, in characters.
pub const MAX_ENTRY_TEXT_LEN: usize = 512;
/// Shortest and longest gift card code accepted, in characters without
/// dashes or spaces.
pub const CODE_LEN: std::ops::RangeInclusive<usize> = 8..=64;
/// Characters in a generated code: 16 × 5 bits = 80 bits of randomness.
pub const GENERATED_CODE_CHARS: usize = 16;
/// Most gift cards one checkout may redeem.
pub const MAX_GIFT_CARDS_PER_CHECKOUT: usize = 5;

/// What a balance is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum BalanceKind {
    /// A gift card: anyone holding its code may spend it.
    GiftCard,
    /// Store credit: only its customer may spend it.
    StoreCredit,
}

impl BalanceKind {
    /// The name recorded as the provider of a payment made with it.
    pub fn provider_name(self) -> &'static str {
        match self {
            Self::GiftCard => "gift_card",
            Self::StoreCredit => "store_credit",
        }
    }
}

/// Why an entry was posted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EntryKind {
    /// The card was issued or credit granted (positive).
    Issue,
    /// Spent at a checkout (negative).
    Redeem,
    /// A redemption given back because its checkout placed no order (positive).
    Release,
    /// An order's refund credited back (positive).
    Refund,
}

/// One ledger entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LedgerEntry {
    /// Its position in the ledger, from 1.
    pub seq: u32,
    /// The idempotency key it was posted under: posting it again counts once.
    pub key: String,
    /// Why.
    pub kind: EntryKind,
    /// Signed: a credit is positive, a redemption negative.
    pub amount: Money,
    /// What it is for (the checkout attempt or the order), for audits and recovery.
    pub reference: String,
    /// When it was posted.
    pub at: DateTime<Utc>,
    /// Who posted it.
    pub actor: Actor,
}

/// An entry to post ([`GiftCard::post`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewEntry {
    /// The idempotency key (1 to [`MAX_ENTRY_TEXT_LEN`] characters).
    pub key: String,
    /// Why.
    pub kind: EntryKind,
    /// How much, positive; the kind gives the sign.
    pub amount: Money,
    /// What it is for.
    pub reference: String,
    /// Who posts it.
    pub actor: Actor,
}

impl NewEntry {
    /// `amount` of `kind` under `key`, for `reference`, by `actor`.
    pub fn new(
        key: impl Into<String>,
        kind: EntryKind,
        amount: Money,
        reference: impl Into<String>,
        actor: Actor,
    ) -> Self {
        Self {
            key: key.into(),
            kind,
            amount,
            reference: reference.into(),
            actor,
        }
    }

    /// Checks what can be checked without the card: the key and reference
    /// (1 to [`MAX_ENTRY_TEXT_LEN`] characters) and the amount (positive,
    /// exact in minor units, at most
    /// [`MAX_AMOUNT_UNITS`](crate::money::MAX_AMOUNT_UNITS)). Callers that
    /// create a card or an account for the entry check it first, so a
    /// refused entry writes nothing.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the field and the value.
    pub fn check(&self) -> Result<()> {
        for (field, text) in [
            ("entry key", &self.key),
            ("entry reference", &self.reference),
        ] {
            if text.is_empty() || text.chars().count() > MAX_ENTRY_TEXT_LEN {
                return Err(Error::invalid(
                    field,
                    format!("must be 1 to {MAX_ENTRY_TEXT_LEN} characters"),
                ));
            }
        }
        self.amount.entered()?;
        if self.amount.is_negative() || self.amount.is_zero() {
            return Err(Error::invalid(
                "amount",
                format!("{} must be positive and exact in minor units", self.amount),
            ));
        }
        Ok(())
    }
}

/// A gift card or a customer's store credit, with its ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GiftCard {
    pub(crate) id: GiftCardId,
    pub(crate) kind: BalanceKind,
    /// SHA-256 of the normalized code, in hex; `None` for store credit.
    pub(crate) code_hash: Option<String>,
    pub(crate) last4: String,
    pub(crate) currency: Currency,
    pub(crate) customer_id: Option<CustomerId>,
    pub(crate) expires_at: Option<DateTime<Utc>>,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) balance: Money,
    pub(crate) entries: Vec<LedgerEntry>,
    pub(crate) version: u64,
}

impl GiftCard {
    /// A new card (or store-credit account) of `kind` in `currency`, empty
    /// until its first entry. `code` is the secret code of a gift card
    /// (kept as a hash and its last four characters).
    ///
    /// # Errors
    /// [`Error::Invalid`] for a gift card without a valid code, store
    /// credit without a customer, or an expiry not after `now`.
    pub fn new(
        kind: BalanceKind,
        code: Option<&str>,
        currency: Currency,
        customer_id: Option<CustomerId>,
        expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Self> {
        let (code_hash, last4) = match (kind, code) {
            (BalanceKind::GiftCard, Some(code)) => {
                let normalized = normalize_code(code)?;
                let last4: String = normalized
                    .chars()
                    .skip(normalized.chars().count().saturating_sub(4))
                    .collect();
                (Some(hash_code(&normalized)), last4)
            }
            (BalanceKind::GiftCard, None) => {
                return Err(Error::invalid("gift card", "needs a code"));
            }
            (BalanceKind::StoreCredit, _) => {
                if customer_id.is_none() {
                    return Err(Error::invalid("store credit", "needs a customer"));
                }
                (None, String::new())
            }
        };
        if expires_at.is_some_and(|e| e <= now) {
            return Err(Error::invalid("expiry", "must be in the future"));
        }
        Ok(Self {
            id: GiftCardId::new(),
            kind,
            code_hash,
            last4,
            currency,
            customer_id,
            expires_at,
            created_at: now,
            balance: Money::zero(currency),
            entries: Vec::new(),
            version: 0,
        })
    }

    /// Its id.
    pub fn id(&self) -> GiftCardId {
        self.id
    }
    /// Gift card or store credit.
    pub fn kind(&self) -> BalanceKind {
        self.kind
    }
    /// The hash of its code (hex SHA-256), for stores; `None` for store credit.
    pub fn code_hash(&self) -> Option<&str> {
        self.code_hash.as_deref()
    }
    /// The last four characters of its code (to show "•••• K7Q2").
    pub fn last4(&self) -> &str {
        &self.last4
    }
    /// Its currency.
    pub fn currency(&self) -> Currency {
        self.currency
    }
    /// The customer it belongs to, if any (always, for store credit).
    pub fn customer_id(&self) -> Option<CustomerId> {
        self.customer_id
    }
    /// When it stops being spendable.
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.expires_at
    }
    /// When it was created.
    pub fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }
    /// What is left: the sum of its entries.
    pub fn balance(&self) -> Money {
        self.balance
    }
    /// Every entry, oldest first.
    pub fn entries(&self) -> &[LedgerEntry] {
        &self.entries
    }
    /// Its version, bumped by every entry (for stores).
    pub fn version(&self) -> u64 {
        self.version
    }
    /// Whether it can be spent at `now` (not expired).
    pub fn spendable_at(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_none_or(|e| now < e)
    }

    /// The entry posted under `key`, if any.
    pub fn entry(&self, key: &str) -> Option<&LedgerEntry> {
        self.entries.iter().find(|e| e.key == key)
    }

    /// Posts `entry` (what a store does under its lock): appended unless an
    /// entry with its key exists (then nothing changes and `Ok(false)`). A
    /// redemption may not exceed the balance or spend an expired card.
    ///
    /// # Errors
    /// [`Error::IdempotencyConflict`] when the key was used for another
    /// amount or kind; [`Error::InsufficientBalance`]; [`Error::Invalid`]
    /// for a non-positive or inexact amount, one above
    /// [`MAX_AMOUNT_UNITS`](crate::money::MAX_AMOUNT_UNITS) or that would
    /// take the balance above it, another currency, an expired card, or bad
    /// text; [`Error::LimitExceeded`] past
    /// [`MAX_LEDGER_ENTRIES`]; [`Error::Overflow`].
    pub fn post(&mut self, entry: NewEntry, now: DateTime<Utc>) -> Result<bool> {
        if let Some(seen) = self.entry(&entry.key) {
            let same =
                seen.kind == entry.kind && seen.amount.checked_cmp(&signed(&entry)?)?.is_eq();
            return if same {
                Ok(false)
            } else {
                Err(Error::IdempotencyConflict(entry.key))
            };
        }
        entry.check()?;
        if entry.amount.currency() != self.currency {
            return Err(Error::CurrencyMismatch {
                left: self.currency,
                right: entry.amount.currency(),
            });
        }
        if self.entries.len() >= MAX_LEDGER_ENTRIES {
            return Err(Error::LimitExceeded {
                what: "gift card ledger entries",
                max: MAX_LEDGER_ENTRIES as u64,
            });
        }
        let amount = signed(&entry)?;
        if entry.kind == EntryKind::Redeem {
            if !self.spendable_at(now) {
                return Err(Error::invalid("gift card", "has expired"));
            }
            if entry.amount.checked_cmp(&self.balance)?.is_gt() {
                return Err(Error::InsufficientBalance {
                    available: self.balance,
                    requested: entry.amount,
                });
            }
        }
        let balance = self.balance.checked_add(amount)?;
        if balance.amount() > rust_decimal::Decimal::from(crate::money::MAX_AMOUNT_UNITS) {
            return Err(Error::invalid(
                "amount",
                format!(
                    "{} would take the balance to {balance}, above the largest balance, {} {}",
                    entry.amount,
                    crate::money::MAX_AMOUNT_UNITS,
                    self.currency
                ),
            ));
        }
        let seq = u32::try_from(self.entries.len() + 1).map_err(|_| Error::Overflow("entries"))?;
        self.entries.push(LedgerEntry {
            seq,
            key: entry.key,
            kind: entry.kind,
            amount,
            reference: entry.reference,
            at: now,
            actor: entry.actor,
        });
        self.balance = balance;
        self.version += 1;
        Ok(true)
    }
}

/// The entry's amount with its sign.
fn signed(entry: &NewEntry) -> Result<Money> {
    Ok(match entry.kind {
        EntryKind::Redeem => Money::zero(entry.amount.currency()).checked_sub(entry.amount)?,
        _ => entry.amount,
    })
}

/// A code as compared: upper case, without dashes or spaces.
///
/// # Errors
/// [`Error::Invalid`] (never echoing the code) unless it is
/// [`CODE_LEN`] letters and digits.
pub fn normalize_code(code: &str) -> Result<String> {
    let normalized: String = code
        .chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if !CODE_LEN.contains(&normalized.len())
        || !normalized.chars().all(|c| c.is_ascii_alphanumeric())
    {
        return Err(Error::invalid(
            "gift card code",
            format!(
                "must be {} to {} letters and digits",
                CODE_LEN.start(),
                CODE_LEN.end()
            ),
        ));
    }
    Ok(normalized)
}

/// The hex SHA-256 of a normalized code: what stores keep and look up.
pub fn hash_code(normalized: &str) -> String {
    hex::encode(Sha256::digest(normalized.as_bytes()))
}

/// A new random code: 16 characters of Crockford's base 32 (80 bits from
/// the operating system), grouped by dashes.
pub fn generate_code() -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let bits = uuid::Uuid::new_v4().as_u128() ^ uuid::Uuid::new_v4().as_u128().rotate_left(64);
    let mut code = String::with_capacity(GENERATED_CODE_CHARS + 3);
    for i in 0..GENERATED_CODE_CHARS {
        if i > 0 && i % 4 == 0 {
            code.push('-');
        }
        let index = usize::try_from((bits >> (i * 5)) & 31).unwrap_or(0);
        code.push(char::from(*ALPHABET.get(index).unwrap_or(&b'0')));
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn usd(minor: i64) -> Money {
        Money::from_minor(minor, Currency::USD)
    }

    fn card() -> GiftCard {
        let now = DateTime::UNIX_EPOCH;
        let mut c = match GiftCard::new(
            BalanceKind::GiftCard,
            Some("ABCD-EFGH-JKMN-PQRS"),
            Currency::USD,
            None,
            None,
            now,
        ) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        let issued = c.post(
            NewEntry::new(
                "issue",
                EntryKind::Issue,
                usd(50_00),
                "issue",
                Actor::System,
            ),
            now,
        );
        assert_eq!(issued.ok(), Some(true));
        c
    }

    #[test]
    fn codes_are_kept_as_hash_and_last_four() {
        let c = card();
        assert_eq!(c.last4(), "PQRS");
        assert_eq!(
            c.code_hash(),
            Some(hash_code(&normalize_code("abcd efgh jkmn pqrs").unwrap_or_default()).as_str())
        );
        assert!(normalize_code("short").is_err());
        assert!(normalize_code("ABCD-EFGH-JKMN-PQR$").is_err());
        let generated = generate_code();
        assert_eq!(normalize_code(&generated).map(|c| c.len()).ok(), Some(16));
        assert_ne!(generated, generate_code());
    }

    #[test]
    fn the_same_key_posts_once_and_a_redemption_never_overdraws() {
        let mut c = card();
        let now = DateTime::UNIX_EPOCH;
        let redeem = |key: &str, minor| {
            NewEntry::new(
                key,
                EntryKind::Redeem,
                usd(minor),
                "checkout",
                Actor::System,
            )
        };
        assert_eq!(c.post(redeem("r1", 30_00), now).ok(), Some(true));
        assert_eq!(c.post(redeem("r1", 30_00), now).ok(), Some(false));
        assert!(matches!(
            c.post(redeem("r1", 10_00), now),
            Err(Error::IdempotencyConflict(_))
        ));
        assert!(matches!(
            c.post(redeem("r2", 20_01), now),
            Err(Error::InsufficientBalance { .. })
        ));
        assert_eq!(c.balance(), usd(20_00));
        assert_eq!(c.entries().len(), 2);
    }

    proptest! {
        /// Whatever is posted, the balance is the sum of the entries and
        /// never negative.
        #[test]
        fn the_balance_is_the_sum_of_the_entries(
            steps in prop::collection::vec((0u8..4, 1i64..6_000, 0u8..20), 1..60),
        ) {
            let mut c = card();
            let now = DateTime::UNIX_EPOCH;
            for (kind, minor, key) in steps {
                let kind = match kind {
                    0 | 1 => EntryKind::Redeem,
                    2 => EntryKind::Release,
                    _ => EntryKind::Refund,
                };
                let _ = c.post(NewEntry::new(format!("k{key}"), kind, usd(minor), "r", Actor::System), now);
                let sum = c.entries().iter().try_fold(usd(0), |s, e| s.checked_add(e.amount));
                prop_assert_eq!(sum.ok(), Some(c.balance()));
                prop_assert!(!c.balance().is_negative());
            }
        }
    }
}
