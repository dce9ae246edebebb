//! An order's tax document at a tax service: committed once when the
//! order is placed, adjusted as what the buyer pays changes, voided when
//! the order is cancelled.
//!
//! Every call is recorded on the order first — in the save that decides
//! it (placing the order, completing a refund, adding lines, cancelling) —
//! with its own idempotency key, then sent, then its answer recorded: the
//! protocol money moves follow. A retry, a crash between the steps or two
//! engines therefore commit, adjust and void exactly once, and recovery
//! sends a call whose answer never came.
//!
//! What is adjusted, and by how much:
//! - **additions** (lines an exchange or edit adds, a dearer shipping
//!   method) add exactly their amount and their tax;
//! - **reductions** — money given back or no longer owed: a completed line
//!   cancellation (what its units and a cheaper method gave back, released,
//!   refunded or credited), a completed return (its refund and the credit
//!   it kept for an exchange), a manual refund — reverse tax in proportion
//!   to the document's tax in its gross amount at that moment (rounded half
//!   to even, never more than it holds), as Stripe Tax's flat-amount
//!   reversals do. Giving back everything reverses all of it exactly;
//! - **cancelling the order** voids the document (its pending adjustments
//!   are then moot).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Order;
use crate::error::{Error, Result};
use crate::money::{Money, RoundingMode};
use crate::tax::{TaxAdjustmentRequest, TaxCommitRequest, TaxQuoteRequest};

/// Most adjustments one document keeps.
pub const MAX_TAX_ADJUSTMENTS: usize = 500;

/// Where a tax document stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TaxDocumentState {
    /// Recorded with the order; the commit is being sent.
    Committing,
    /// Committed at the service.
    Committed,
    /// The order was cancelled; the void is being sent.
    Voiding,
    /// Voided at the service.
    Voided,
    /// The service refused the commit (see
    /// [`TaxDocument::last_error`]); nothing more is sent.
    Refused,
}

/// Where an adjustment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TaxAdjustmentState {
    /// Recorded; being sent.
    Pending,
    /// Recorded at the service.
    Done,
    /// Refused by the service (see [`TaxAdjustment::error`]).
    Refused,
    /// Not sent: the order was cancelled and its document voided first.
    Moot,
}

/// A change to the document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaxAdjustment {
    /// Its idempotency key (`<order>:tax:adjust:<n>`).
    pub key: String,
    /// The money, tax included: negative when given back.
    pub amount: Money,
    /// Of which tax (same sign).
    pub tax: Money,
    /// Why.
    pub reason: String,
    /// Where it stands.
    pub state: TaxAdjustmentState,
    /// The service's refusal, if any (the engine's words).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
    /// When it was recorded.
    pub at: DateTime<Utc>,
}

/// An order's tax document at the tax service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaxDocument {
    /// The service's name.
    pub provider: String,
    /// The commit's idempotency key (`<order>:tax`).
    pub key: String,
    /// The facts the order's tax was quoted for.
    pub request: TaxQuoteRequest,
    /// The tax charged per line at placement, in order.
    pub line_tax: Vec<Money>,
    /// The tax charged on shipping at placement.
    pub shipping_tax: Money,
    /// The order's total and tax at placement.
    pub gross: Money,
    /// Of which tax.
    pub tax: Money,
    /// What the document holds now, tax included, after its adjustments.
    pub gross_now: Money,
    /// Of which tax.
    pub tax_now: Money,
    /// Where it stands.
    pub state: TaxDocumentState,
    /// The service's id for it, once committed.
    pub reference: Option<String>,
    /// Its adjustments, oldest first.
    pub adjustments: Vec<TaxAdjustment>,
    /// Calls sent so far.
    pub attempts: u32,
    /// The last refusal or failure (the engine's words).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub last_error: String,
}

/// The next call a document needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TaxStep {
    /// Commit it.
    Commit(Box<TaxCommitRequest>),
    /// Send this adjustment.
    Adjust(TaxAdjustmentRequest),
    /// Void it (committed: `reference` known).
    Void {
        /// The void's idempotency key.
        key: String,
        /// The document.
        reference: String,
    },
}

impl TaxDocument {
    /// The document for an order placed with `pricing`, quoted as
    /// `request` by `provider`.
    pub(crate) fn new(provider: &str, order: &Order, request: TaxQuoteRequest) -> Self {
        let p = &order.pricing;
        let shipping_tax = p
            .shipping_charges()
            .try_fold(Money::zero(p.currency), |acc, s| acc.checked_add(s.tax))
            .unwrap_or(Money::zero(p.currency));
        Self {
            provider: provider.to_owned(),
            key: format!("{}:tax", order.id),
            request,
            line_tax: p.lines.iter().map(|l| l.tax).collect(),
            shipping_tax,
            gross: p.total,
            tax: p.tax_total,
            gross_now: p.total,
            tax_now: p.tax_total,
            state: TaxDocumentState::Committing,
            reference: None,
            adjustments: Vec::new(),
            attempts: 0,
            last_error: String::new(),
        }
    }
}

impl Order {
    /// Its tax document at the tax service, when tax comes from one.
    pub fn tax_document(&self) -> Option<&TaxDocument> {
        self.tax_document.as_ref()
    }

    /// The next call its tax document needs, if any.
    pub(crate) fn tax_step(&self) -> Option<TaxStep> {
        let doc = self.tax_document.as_ref()?;
        let commit = || {
            TaxStep::Commit(Box::new(TaxCommitRequest {
                key: doc.key.clone(),
                order_id: self.id,
                quote: doc.request.clone(),
                line_tax: doc.line_tax.clone(),
                shipping_tax: doc.shipping_tax,
                tax_total: doc.tax,
                at: self.placed_at,
            }))
        };
        match (doc.state, &doc.reference) {
            (TaxDocumentState::Committing, _) | (TaxDocumentState::Voiding, None) => Some(commit()),
            (TaxDocumentState::Voiding, Some(reference)) => Some(TaxStep::Void {
                key: format!("{}:void", doc.key),
                reference: reference.clone(),
            }),
            (TaxDocumentState::Committed, Some(reference)) => doc
                .adjustments
                .iter()
                .find(|a| a.state == TaxAdjustmentState::Pending)
                .map(|a| {
                    TaxStep::Adjust(TaxAdjustmentRequest {
                        key: a.key.clone(),
                        reference: reference.clone(),
                        amount: a.amount,
                        tax: a.tax,
                        reason: a.reason.clone(),
                    })
                }),
            _ => None,
        }
    }

    /// Records the service's answer to `step`: `Ok` with the document's
    /// reference for a commit, or its refusal.
    pub(crate) fn tax_answered(
        &mut self,
        step: &TaxStep,
        answer: std::result::Result<Option<String>, String>,
    ) {
        let Some(doc) = self.tax_document.as_mut() else {
            return;
        };
        doc.attempts = doc.attempts.saturating_add(1);
        match (step, answer) {
            (TaxStep::Commit(_), Ok(reference)) => {
                if doc.reference.is_none() {
                    doc.reference = reference;
                }
                if doc.state == TaxDocumentState::Committing {
                    doc.state = TaxDocumentState::Committed;
                }
            }
            (TaxStep::Commit(_), Err(e)) => {
                doc.last_error = e;
                if doc.state == TaxDocumentState::Committing {
                    doc.state = TaxDocumentState::Refused;
                } else {
                    // Voiding a document never committed: nothing to void.
                    doc.state = TaxDocumentState::Voided;
                }
            }
            (TaxStep::Adjust(request), answer) => {
                if let Some(a) = doc
                    .adjustments
                    .iter_mut()
                    .find(|a| a.key == request.key && a.state == TaxAdjustmentState::Pending)
                {
                    match answer {
                        Ok(_) => a.state = TaxAdjustmentState::Done,
                        Err(e) => {
                            a.state = TaxAdjustmentState::Refused;
                            a.error = e;
                        }
                    }
                }
            }
            (TaxStep::Void { .. }, answer) => {
                if let Err(e) = answer {
                    doc.last_error = e;
                }
                doc.state = TaxDocumentState::Voided;
            }
        }
    }

    /// Money the buyer no longer pays (`amount`, positive): an adjustment
    /// reversing tax in proportion (see the [module](self)).
    pub(crate) fn tax_reduction(
        &mut self,
        amount: Money,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let Some(doc) = self.tax_document.as_ref() else {
            return Ok(());
        };
        if amount.is_zero() || amount.is_negative() {
            return Ok(());
        }
        let currency = amount.currency();
        let gross = doc.gross_now.to_minor()?;
        let tax = if gross <= 0 {
            0
        } else {
            let share = amount
                .to_minor()?
                .checked_mul(doc.tax_now.to_minor()?)
                .ok_or(Error::Overflow("tax reduction"))?;
            crate::money::div_round(share, gross, RoundingMode::HalfEven)
                .min(doc.tax_now.to_minor()?)
        };
        let zero = Money::zero(currency);
        self.tax_adjustment(
            zero.checked_sub(amount)?,
            zero.checked_sub(Money::new(
                rust_decimal::Decimal::try_from_i128_with_scale(tax, currency.minor_units())
                    .map_err(|_| Error::Overflow("tax reduction"))?,
                currency,
            ))?,
            reason,
            at,
        )
    }

    /// Money the buyer pays on top (`amount`, positive, with `tax` of it).
    pub(crate) fn tax_addition(
        &mut self,
        amount: Money,
        tax: Money,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<()> {
        if amount.is_zero() || amount.is_negative() {
            return Ok(());
        }
        self.tax_adjustment(amount, tax, reason, at)
    }

    fn tax_adjustment(
        &mut self,
        amount: Money,
        tax: Money,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let Some(doc) = self.tax_document.as_mut() else {
            return Ok(());
        };
        if matches!(
            doc.state,
            TaxDocumentState::Voiding | TaxDocumentState::Voided | TaxDocumentState::Refused
        ) {
            return Ok(());
        }
        crate::validate::at_most(
            "tax adjustments",
            doc.adjustments.len() + 1,
            MAX_TAX_ADJUSTMENTS,
        )?;
        doc.gross_now = doc.gross_now.checked_add(amount)?;
        doc.tax_now = doc.tax_now.checked_add(tax)?;
        let key = format!("{}:adjust:{}", doc.key, doc.adjustments.len() + 1);
        doc.adjustments.push(TaxAdjustment {
            key,
            amount,
            tax,
            reason: reason.to_owned(),
            state: TaxAdjustmentState::Pending,
            error: String::new(),
            at,
        });
        Ok(())
    }

    /// The order is cancelled: the document is to be voided.
    pub(crate) fn tax_void(&mut self) {
        let Some(doc) = self.tax_document.as_mut() else {
            return;
        };
        if matches!(
            doc.state,
            TaxDocumentState::Committing | TaxDocumentState::Committed
        ) {
            doc.state = TaxDocumentState::Voiding;
            for a in &mut doc.adjustments {
                if a.state == TaxAdjustmentState::Pending {
                    a.state = TaxAdjustmentState::Moot;
                }
            }
        }
    }
}
