//! Explanations: what every promotion considered did, or why it did not.
//!
//! Does not know: how outcomes are computed, only how they are told.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::id::{LineId, PromotionId, VariantId};
use crate::money::{Currency, Money};

use super::promotion::Op;

/// One comparison a condition made, with the values compared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Comparison {
    /// What was compared ("subtotal", "customer group", a rule's name).
    pub subject: String,
    /// How.
    pub op: Op,
    /// The value the promotion asks for.
    pub expected: String,
    /// The cart's value.
    pub actual: String,
    /// For a minimum amount not reached: how much more would reach it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing: Option<Money>,
    /// For a minimum count of units not reached: how many more would.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_units: Option<u64>,
}

impl Comparison {
    /// `subject` compared with `op`: the promotion asked for `expected`, the
    /// cart has `actual`.
    pub fn new(
        subject: impl Into<String>,
        op: Op,
        expected: impl Into<String>,
        actual: impl Into<String>,
    ) -> Self {
        Self {
            subject: subject.into(),
            op,
            expected: expected.into(),
            actual: actual.into(),
            missing: None,
            missing_units: None,
        }
    }

    /// The same comparison, saying how much more would meet it.
    #[must_use]
    pub fn missing(mut self, amount: Money) -> Self {
        self.missing = Some(amount);
        self
    }

    /// The same comparison, saying how many more units would meet it.
    #[must_use]
    pub fn missing_units(mut self, units: u64) -> Self {
        self.missing_units = Some(units);
        self
    }
}

impl std::fmt::Display for Comparison {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} is not {} {}",
            self.subject,
            self.actual,
            self.op.symbol(),
            self.expected
        )
    }
}

/// Why a promotion did not apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Rejection {
    /// No coupon has this code.
    UnknownCode,
    /// The promotion is switched off.
    Disabled,
    /// Its window has not opened yet.
    NotStarted {
        /// When it opens.
        starts_at: DateTime<Utc>,
    },
    /// Its window has closed.
    Expired {
        /// When it closed.
        ended_at: DateTime<Utc>,
    },
    /// A use or budget limit is reached.
    UsedUp {
        /// The counter that is exhausted.
        counter: String,
        /// Its limit (uses, or the budget in minor units).
        limit: u64,
        /// How much of it is used or held.
        used: u64,
    },
    /// It is limited per customer and the cart has no customer or email.
    NeedsCustomer,
    /// Its amounts are in other currencies than the cart's.
    WrongCurrency {
        /// The promotion's currencies.
        expected: Vec<Currency>,
        /// The cart's.
        actual: Currency,
    },
    /// A condition failed.
    ConditionsNotMet {
        /// The failed comparisons.
        comparisons: Vec<Comparison>,
    },
    /// Its conditions hold but it found nothing to discount (or what it
    /// targets was already fully discounted).
    NothingToDiscount,
    /// It does not combine with a promotion that applied before it.
    NotCombinable {
        /// The promotion it conflicts with.
        with: PromotionId,
    },
    /// The best-combination policy chose other promotions, worth more.
    NotBest,
    /// Another code for the same promotion is already in the cart. Pricing
    /// reports that case as [`Outcome::AlreadyApplied`] now (or as the
    /// other entry's own reason when it did not apply); kept so stored
    /// explanations still read.
    AlreadyApplied,
    /// The cart met more promotions than one pricing considers
    /// ([`MAX_CANDIDATES`](crate::pricing::MAX_CANDIDATES)); this one, late
    /// in priority order, was left out.
    TooManyCandidates {
        /// The most one pricing considers.
        max: u64,
    },
    /// Its free gift cannot be given (not for sale or no price in the currency).
    GiftUnavailable {
        /// The gift.
        variant_id: VariantId,
    },
    /// It names a custom rule that is not registered.
    UnknownRule {
        /// The rule's name.
        rule: String,
    },
    /// It cannot be evaluated (stored data that no longer validates, a
    /// custom rule that failed): skipped, so it never fails pricing.
    Unevaluable {
        /// What is wrong.
        problem: String,
    },
}

/// One line's share of a promotion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LineAmount {
    /// The line.
    pub line_id: LineId,
    /// What the promotion took off it.
    pub amount: Money,
}

/// What a promotion did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// It applied.
    Applied {
        /// Its whole discount (lines, shipping and gift).
        amount: Money,
        /// Its discount per line.
        lines: Vec<LineAmount>,
        /// What it took off shipping.
        shipping: Money,
        /// The gift line it added.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        gift: Option<LineId>,
    },
    /// It did not apply.
    NotApplied {
        /// Why.
        #[serde(flatten)]
        reason: Rejection,
    },
    /// The code names a promotion that applied already — automatically
    /// (`by: None`) or through another code entered before it (`by`: that
    /// code). Its discount is in that outcome; this code adds nothing to it.
    AlreadyApplied {
        /// The code it applied through, or none when it applies
        /// automatically.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
}

/// A promotion considered for the cart, or a code entered on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PromotionOutcome {
    /// The promotion (none for an unknown code).
    pub promotion_id: Option<PromotionId>,
    /// Its name (the code, for an unknown one).
    pub name: String,
    /// The code that brought it in, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// What happened.
    pub outcome: Outcome,
}

impl PromotionOutcome {
    /// Whether it applied.
    pub fn applied(&self) -> bool {
        matches!(
            self.outcome,
            Outcome::Applied { .. } | Outcome::AlreadyApplied { .. }
        )
    }

    /// Why it did not apply, if it did not.
    pub fn rejection(&self) -> Option<&Rejection> {
        match &self.outcome {
            Outcome::NotApplied { reason } => Some(reason),
            Outcome::Applied { .. } | Outcome::AlreadyApplied { .. } => None,
        }
    }
}

/// A suggestion for the customer: how to unlock a promotion or free shipping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Hint {
    /// The promotion it unlocks (none for a shipping method's own free threshold).
    pub promotion_id: Option<PromotionId>,
    /// The amount to add when the gap is money (a minimum subtotal); zero
    /// when the gap is a count (see `missing_units`).
    pub missing: Money,
    /// The units to add, when the gap is a count (a minimum item count, a
    /// minimum quantity of matching items).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_units: Option<u64>,
    /// E.g. "add 5.00 USD more for Free shipping", "add 2 more items for
    /// Three for two".
    pub message: String,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UnknownCode => f.write_str("no such code"),
            Self::Disabled => f.write_str("switched off"),
            Self::NotStarted { starts_at } => write!(f, "starts at {starts_at}"),
            Self::Expired { ended_at } => write!(f, "ended at {ended_at}"),
            Self::UsedUp { used, limit, .. } => write!(f, "used up ({used} of {limit})"),
            Self::NeedsCustomer => f.write_str("needs a customer account or an email"),
            Self::WrongCurrency { expected, actual } => {
                let list: Vec<&str> = expected.iter().map(|c| c.code()).collect();
                write!(f, "only for {}, not {actual}", list.join(", "))
            }
            Self::ConditionsNotMet { comparisons } => {
                for (i, c) in comparisons.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{c}")?;
                }
                Ok(())
            }
            Self::NothingToDiscount => f.write_str("nothing in the cart for it to discount"),
            Self::NotCombinable { with } => write!(f, "does not combine with promotion {with}"),
            Self::NotBest => f.write_str("a combination worth more applied instead"),
            Self::AlreadyApplied => {
                f.write_str("another code for the same promotion is in the cart")
            }
            Self::GiftUnavailable { variant_id } => {
                write!(f, "its gift {variant_id} is not available")
            }
            Self::UnknownRule { rule } => write!(f, "names the unregistered rule `{rule}`"),
            Self::Unevaluable { problem } => write!(f, "cannot be evaluated: {problem}"),
            Self::TooManyCandidates { max } => {
                write!(f, "left out: the cart met more than {max} promotions")
            }
        }
    }
}
