//! Return requests (RMA): a buyer asks to send units back, the shop's
//! [`ReturnPolicy`] answers at once what may come back and for how much,
//! staff approve or reject, receive the units (each with its condition and
//! whether it goes back on a shelf), then refund them — exactly the units'
//! frozen shares, minus the policy's fees, through the money path.
//!
//! A [`ReturnCase`] lives inside its order, so every step is decided under
//! the order's version check with every other change to it (shipments,
//! cancellations, refunds): two requests can never claim the same unit.
//! Units named by an open case (requested, approved or received) count as
//! spoken for: no other request, and no staff return, can take them.
//!
//! ```text
//! Requested ──approve──▶ Approved ──receive──▶ Received ──refund──▶ Refunded
//!     │  └──reject──▶ Rejected        │                   ▲   │
//!     └──cancel──▶ Canceled ◀──cancel─┘                   └───┘ refund refused:
//!                                                             back to Received
//! ```
//!
//! Does not know: storage, stock or providers: it decides; the engine
//! reads stock levels, calls the provider and saves.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

use super::{LineQuantity, MAX_NOTE_LEN, Order, ShippingRefund, unit_shares};
use crate::actor::Actor;
pub use crate::domain::after_sale::ReturnCaseState;
use crate::error::{Error, Result};
use crate::id::{LineId, LocationId, ReturnCaseId, ReturnId, VariantId};
use crate::money::{Currency, Money};
use crate::pricing::PricedLine;

/// Most return requests one order keeps (staff returns included).
pub const MAX_RETURN_CASES: usize = 500;

/// Most entries in one return request's history.
const MAX_CASE_HISTORY: usize = 50;

/// Why a buyer sends units back. The first four are the shop's fault: the
/// built-in policy charges no fees for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ReturnReason {
    /// Arrived broken.
    Damaged,
    /// Does not work.
    Defective,
    /// Not what was ordered.
    WrongItem,
    /// Not as the shop described it.
    NotAsDescribed,
    /// The wrong size or fit.
    SizeOrFit,
    /// Not wanted any more.
    NoLongerNeeded,
    /// Anything else (say what in the note).
    Other,
}

impl ReturnReason {
    /// Whether the shop is at fault (damaged, defective, wrong or not as
    /// described).
    pub fn shop_at_fault(self) -> bool {
        matches!(
            self,
            Self::Damaged | Self::Defective | Self::WrongItem | Self::NotAsDescribed
        )
    }
}

/// The condition a returned unit arrived in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ItemCondition {
    /// As new; can be sold again.
    Resellable,
    /// Opened or used, but whole.
    Opened,
    /// Broken.
    Damaged,
}

/// Units of one line that arrived back, their condition and where they go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ReceivedUnits {
    /// The order line.
    pub line_id: LineId,
    /// How many units.
    pub quantity: u32,
    /// Their condition.
    pub condition: ItemCondition,
    /// Put them back on hand at this location; `None` keeps them off the
    /// shelf (damaged goods, returned to the maker).
    pub restock_at: Option<LocationId>,
}

impl ReceivedUnits {
    /// `quantity` units of `line_id` arrived in `condition`, not restocked.
    pub fn new(line_id: LineId, quantity: u32, condition: ItemCondition) -> Self {
        Self {
            line_id,
            quantity,
            condition,
            restock_at: None,
        }
    }

    /// Puts them back on hand at `location`.
    #[must_use]
    pub fn restock_at(mut self, location: LocationId) -> Self {
        self.restock_at = Some(location);
        self
    }
}

/// What one line would refund.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct QuotedLine {
    /// The order line.
    pub line_id: LineId,
    /// Units asked for.
    pub quantity: u32,
    /// Their frozen shares of the line's total (what they paid).
    pub amount: Money,
}

/// What a return would refund, worked out at once by the policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ReturnQuote {
    /// Per line.
    pub lines: Vec<QuotedLine>,
    /// What the units paid: their frozen shares.
    pub goods: Money,
    /// Shipping refunded with them (by the policy's [`ShippingRefund`]).
    pub shipping_refund: Money,
    /// The restocking fee kept.
    pub restocking_fee: Money,
    /// The return shipping the buyer pays (kept from the refund).
    pub return_shipping_fee: Money,
    /// `goods + shipping_refund - fees`, never below zero (fees beyond
    /// what is refunded are not charged).
    pub refund: Money,
    /// The last moment a request is accepted, when the policy has a window.
    pub deadline: Option<DateTime<Utc>>,
}

/// The fees a policy keeps from a return's refund.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReturnFees {
    /// For putting the units back in stock.
    pub restocking: Money,
    /// For the return label, when the buyer pays for it.
    pub return_shipping: Money,
}

impl ReturnFees {
    /// No fees, in `currency`.
    pub fn none(currency: Currency) -> Self {
        Self {
            restocking: Money::zero(currency),
            return_shipping: Money::zero(currency),
        }
    }
}

/// Whether a line may be returned.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Eligibility {
    /// It may, until this moment (`None`: no time limit).
    Returnable {
        /// The end of the return window.
        until: Option<DateTime<Utc>>,
    },
    /// It may not, for this reason (shown to the buyer).
    NotReturnable(String),
}

/// The shop's return policy: what may come back and what it costs. Pure:
/// no I/O, time is an input. The engine works out the shares itself and
/// checks what a policy answers (fees in the order's currency, exact, not
/// negative), so a policy decides only eligibility and fees.
pub trait ReturnPolicy: Send + Sync + std::fmt::Debug {
    /// Whether `line` of `order` may be returned by a buyer at `now`.
    fn eligibility(&self, order: &Order, line: &PricedLine, now: DateTime<Utc>) -> Eligibility;

    /// The fees kept from a refund of `goods` (the units' shares) returned
    /// for `reason`.
    ///
    /// # Errors
    /// Whatever the policy cannot work out (an overflow).
    fn fees(&self, order: &Order, goods: Money, reason: ReturnReason) -> Result<ReturnFees>;

    /// How shipping is refunded with returns.
    fn shipping(&self) -> ShippingRefund {
        ShippingRefund::Never
    }
}

/// Who pays for sending goods back under the [`StandardReturnPolicy`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ReturnShipping {
    /// The shop.
    #[default]
    Shop,
    /// The buyer: this flat fee (one per currency) is kept from the refund,
    /// unless the shop is at fault.
    Buyer(Vec<Money>),
}

/// Longest return window, in days.
pub const MAX_RETURN_WINDOW_DAYS: u32 = 3_650;

/// The built-in policy: a window in days from delivery, goods that never
/// come back, a restocking fee and who pays return shipping. Fees are
/// never charged when the shop is at fault ([`ReturnReason::shop_at_fault`]).
///
/// The window runs from the delivery of the last shipment holding units of
/// the line (from its shipping when no delivery was recorded), to the end
/// of that many days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandardReturnPolicy {
    window_days: u32,
    not_returnable: BTreeSet<VariantId>,
    restocking_bps: u32,
    return_shipping: ReturnShipping,
    shipping_refund: ShippingRefund,
}

impl Default for StandardReturnPolicy {
    /// 30 days, everything returnable, no fees, shipping never refunded.
    fn default() -> Self {
        Self {
            window_days: 30,
            not_returnable: BTreeSet::new(),
            restocking_bps: 0,
            return_shipping: ReturnShipping::Shop,
            shipping_refund: ShippingRefund::Never,
        }
    }
}

impl StandardReturnPolicy {
    /// Returns accepted for `days` days after delivery.
    ///
    /// # Errors
    /// [`Error::Invalid`] past [`MAX_RETURN_WINDOW_DAYS`].
    pub fn window_days(mut self, days: u32) -> Result<Self> {
        if days > MAX_RETURN_WINDOW_DAYS {
            return Err(Error::invalid(
                "return window",
                format!("{days} days is more than {MAX_RETURN_WINDOW_DAYS}"),
            ));
        }
        self.window_days = days;
        Ok(self)
    }

    /// These variants are final sale.
    #[must_use]
    pub fn not_returnable(mut self, variants: impl IntoIterator<Item = VariantId>) -> Self {
        self.not_returnable.extend(variants);
        self
    }

    /// Keeps `basis_points` (1/100 of a percent) of the goods' refund as a
    /// restocking fee, rounded down to the minor unit.
    ///
    /// # Errors
    /// [`Error::Invalid`] above 10,000 (100 %).
    pub fn restocking_fee_bps(mut self, basis_points: u32) -> Result<Self> {
        if basis_points > 10_000 {
            return Err(Error::invalid(
                "restocking fee",
                format!("{basis_points} basis points is more than 100 %"),
            ));
        }
        self.restocking_bps = basis_points;
        Ok(self)
    }

    /// Who pays for return shipping.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a fee that is negative or not exact in minor
    /// units, or two fees in one currency.
    pub fn return_shipping(mut self, who: ReturnShipping) -> Result<Self> {
        if let ReturnShipping::Buyer(fees) = &who {
            for (i, fee) in fees.iter().enumerate() {
                if fee.is_negative() || !fee.is_exact() {
                    return Err(Error::invalid(
                        "return shipping fee",
                        format!("{fee} must be zero or more, exact in minor units"),
                    ));
                }
                if fees
                    .iter()
                    .skip(i + 1)
                    .any(|o| o.currency() == fee.currency())
                {
                    return Err(Error::invalid(
                        "return shipping fee",
                        format!("two fees in {}", fee.currency().code()),
                    ));
                }
            }
        }
        self.return_shipping = who;
        Ok(self)
    }

    /// How shipping is refunded with returns.
    #[must_use]
    pub fn shipping_refund(mut self, policy: ShippingRefund) -> Self {
        self.shipping_refund = policy;
        self
    }
}

impl ReturnPolicy for StandardReturnPolicy {
    fn eligibility(&self, order: &Order, line: &PricedLine, now: DateTime<Utc>) -> Eligibility {
        if self.not_returnable.contains(&line.variant_id) {
            return Eligibility::NotReturnable(format!("{} is final sale", line.name));
        }
        let arrived = order
            .shipments()
            .iter()
            .filter(|s| s.items.iter().any(|i| i.line_id == line.line_id))
            .map(|s| s.delivered_at.unwrap_or(s.shipped_at))
            .max();
        let Some(arrived) = arrived else {
            return Eligibility::NotReturnable(format!("{} has not shipped", line.name));
        };
        let until = arrived + Duration::days(i64::from(self.window_days));
        if now > until {
            return Eligibility::NotReturnable(format!(
                "the {}-day return window for {} closed on {}",
                self.window_days,
                line.name,
                until.format("%Y-%m-%d")
            ));
        }
        Eligibility::Returnable { until: Some(until) }
    }

    fn fees(&self, order: &Order, goods: Money, reason: ReturnReason) -> Result<ReturnFees> {
        let currency = order.pricing().currency;
        if reason.shop_at_fault() {
            return Ok(ReturnFees::none(currency));
        }
        // In minor units, rounded down (in the buyer's favour).
        let minor = goods
            .to_minor()?
            .checked_mul(i128::from(self.restocking_bps))
            .ok_or(Error::Overflow("restocking fee"))?
            / 10_000;
        let minor = i64::try_from(minor).map_err(|_| Error::Overflow("restocking fee"))?;
        let restocking = Money::from_minor(minor, currency);
        let return_shipping = match &self.return_shipping {
            ReturnShipping::Shop => Money::zero(currency),
            ReturnShipping::Buyer(fees) => fees
                .iter()
                .find(|f| f.currency() == currency)
                .copied()
                .unwrap_or(Money::zero(currency)),
        };
        Ok(ReturnFees {
            restocking,
            return_shipping,
        })
    }

    fn shipping(&self) -> ShippingRefund {
        self.shipping_refund
    }
}

/// One step of a return request's life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ReturnCaseEntry {
    /// When.
    pub at: DateTime<Utc>,
    /// Who.
    pub actor: Actor,
    /// The state it moved to.
    pub state: ReturnCaseState,
    /// Why, in words (a rejection's reason, a note; may be empty).
    pub note: String,
}

/// A buyer's request to send units back, and everything that happened to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ReturnCase {
    /// Its id.
    pub id: ReturnCaseId,
    /// The idempotency key it was asked for under (the same key finds it).
    pub key: String,
    /// The units asked for.
    pub items: Vec<LineQuantity>,
    /// Why.
    pub reason: ReturnReason,
    /// The buyer's words (may be empty).
    pub note: String,
    /// Where it is.
    pub state: ReturnCaseState,
    /// What the policy said when it was asked for.
    pub quote: ReturnQuote,
    /// Who asked.
    pub requested_by: Actor,
    /// When.
    pub requested_at: DateTime<Utc>,
    /// What arrived back (once received).
    pub received: Vec<ReceivedUnits>,
    /// The return that refunded it (once refunded): see
    /// [`Order::returns`](super::Order::returns) for its money.
    pub return_id: Option<ReturnId>,
    /// Every step, oldest first.
    pub history: Vec<ReturnCaseEntry>,
    /// What the units' shares already paid for (new units of an
    /// exchange): kept from the refund.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit: Option<Money>,
    /// Made by staff taking units back directly
    /// ([`Engine::return_items`](crate::Engine::return_items)): received
    /// and refunded in one step, and called off if the refund is refused.
    #[serde(default)]
    pub direct: bool,
}

impl ReturnCase {
    /// Moves to `to` and records the step.
    pub(crate) fn step(
        &mut self,
        to: ReturnCaseState,
        at: DateTime<Utc>,
        actor: &Actor,
        note: &str,
    ) -> Result<()> {
        use ReturnCaseState::*;
        let allowed = matches!(
            (self.state, to),
            (Requested, Approved | Rejected | Canceled)
                | (Approved, Received | Canceled)
                | (Received, Refunded)
                | (Refunded, Received | Canceled)
        );
        if !allowed {
            return Err(Error::IllegalTransition {
                entity: "return request",
                from: format!("{:?}", self.state),
                to: format!("{to:?}"),
            });
        }
        crate::validate::at_most(
            "steps of a return request",
            self.history.len() + 1,
            MAX_CASE_HISTORY,
        )?;
        self.state = to;
        self.history.push(ReturnCaseEntry {
            at,
            actor: actor.clone(),
            state: to,
            note: note.to_owned(),
        });
        Ok(())
    }
}

/// A buyer's request to return units.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewReturnCase {
    /// Units per order line.
    pub items: Vec<LineQuantity>,
    /// Why.
    pub reason: ReturnReason,
    /// The buyer's words, at most [`MAX_NOTE_LEN`] characters.
    pub note: String,
    /// Makes the request safe to retry: the same key asks once.
    pub key: crate::id::IdempotencyKey,
}

impl NewReturnCase {
    /// A request to return `items` for `reason`, under `key`.
    pub fn new(
        items: Vec<LineQuantity>,
        reason: ReturnReason,
        key: crate::id::IdempotencyKey,
    ) -> Self {
        Self {
            items,
            reason,
            note: String::new(),
            key,
        }
    }
}

crate::domain::setters!(NewReturnCase {} into { note: String });

impl Order {
    /// Its return requests, oldest first.
    pub fn return_cases(&self) -> &[ReturnCase] {
        &self.return_cases
    }

    /// One return request.
    ///
    /// # Errors
    /// [`Error::NotFound`] for a request not on this order.
    pub fn return_case(&self, id: ReturnCaseId) -> Result<&ReturnCase> {
        self.return_cases
            .iter()
            .find(|c| c.id == id)
            .ok_or_else(|| Error::not_found("return request", id))
    }

    pub(crate) fn return_case_mut(&mut self, id: ReturnCaseId) -> Result<&mut ReturnCase> {
        self.return_cases
            .iter_mut()
            .find(|c| c.id == id)
            .ok_or_else(|| Error::not_found("return request", id))
    }

    /// Units of a line named by open return requests (requested, approved
    /// or received): spoken for, so no other return can take them.
    pub fn requested_for_return(&self, line: LineId) -> u32 {
        Self::count(
            self.return_cases
                .iter()
                .filter(|c| c.state.is_open())
                .flat_map(|c| &c.items),
            line,
        )
    }

    /// Units of a line that may still be returned: shipped, not returned,
    /// not named by an open return request and not replaced by a claim.
    pub fn returnable(&self, line: LineId) -> u32 {
        self.shipped(line)
            .saturating_sub(self.returned(line))
            .saturating_sub(self.requested_for_return(line))
            .saturating_sub(self.replaced(line))
    }

    /// Works out what returning `items` refunds under `policy`: every line
    /// must be eligible at `now` (unless `staff_override`), the shares are
    /// the frozen ones, the fees the policy's for `reason` (none when
    /// `waive_fees`).
    ///
    /// # Errors
    /// [`Error::Invalid`] for units that cannot be returned (not shipped,
    /// already returned or requested, not eligible: the policy's reason),
    /// or a policy answering fees that are negative, inexact or in another
    /// currency; [`Error::NotFound`] for a line not in the order;
    /// [`Error::Overflow`].
    pub fn quote_return(
        &self,
        items: &[LineQuantity],
        reason: ReturnReason,
        policy: &dyn ReturnPolicy,
        now: DateTime<Utc>,
        checks: QuoteChecks,
    ) -> Result<ReturnQuote> {
        if checks.policy {
            self.check_items(items, "return", |o, line, _| o.returnable(line))?;
        }
        let (goods, shipping_refund) = self.refund_for(items, policy.shipping())?;
        let goods = goods.checked_sub(shipping_refund)?;
        let currency = self.pricing.currency;
        let mut deadline: Option<DateTime<Utc>> = None;
        let mut lines = Vec::with_capacity(items.len());
        for item in items {
            let line = self.line(item.line_id)?;
            if checks.policy {
                match policy.eligibility(self, line, now) {
                    Eligibility::NotReturnable(why) => {
                        return Err(Error::invalid("return", why));
                    }
                    Eligibility::Returnable { until } => {
                        if let Some(until) = until {
                            deadline = Some(deadline.map_or(until, |d| d.min(until)));
                        }
                    }
                }
            }
            let shares = unit_shares(line.total, line.quantity)?;
            let first = usize::try_from(self.returned(item.line_id))
                .map_err(|_| Error::Overflow("units"))?;
            let count = usize::try_from(item.quantity).map_err(|_| Error::Overflow("units"))?;
            let amount = Money::sum(currency, shares.iter().skip(first).take(count))?;
            lines.push(QuotedLine {
                line_id: item.line_id,
                quantity: item.quantity,
                amount,
            });
        }
        let fees = if checks.waive_fees {
            ReturnFees::none(currency)
        } else {
            policy.fees(self, goods, reason)?
        };
        for (what, fee) in [
            ("restocking fee", fees.restocking),
            ("return shipping fee", fees.return_shipping),
        ] {
            if fee.currency() != currency || fee.is_negative() || !fee.is_exact() {
                return Err(Error::invalid(
                    what,
                    format!(
                        "the return policy answered {fee} for an order in {}",
                        currency.code()
                    ),
                ));
            }
        }
        let gross = goods.checked_add(shipping_refund)?;
        let kept = fees.restocking.checked_add(fees.return_shipping)?;
        let refund = if kept.checked_cmp(&gross)?.is_ge() {
            Money::zero(currency)
        } else {
            gross.checked_sub(kept)?
        };
        Ok(ReturnQuote {
            lines,
            goods,
            shipping_refund,
            restocking_fee: fees.restocking,
            return_shipping_fee: fees.return_shipping,
            refund,
            deadline,
        })
    }

    /// Records a buyer's request to return units (refused when it asks for
    /// units that cannot come back).
    pub(crate) fn request_return(&mut self, case: ReturnCase) -> Result<()> {
        self.ensure_returnable_order()?;
        crate::validate::at_most(
            "return requests on an order",
            self.return_cases.len() + 1,
            MAX_RETURN_CASES,
        )?;
        self.check_items(&case.items, "return", |o, line, _| o.returnable(line))?;
        self.return_cases.push(case);
        Ok(())
    }

    /// Records a return staff made directly (received and being refunded
    /// in one step); the return itself checks the units.
    pub(crate) fn record_direct_case(&mut self, case: ReturnCase) -> Result<()> {
        crate::validate::at_most(
            "return requests on an order",
            self.return_cases.len() + 1,
            MAX_RETURN_CASES,
        )?;
        self.return_cases.push(case);
        Ok(())
    }

    /// Checks units received for a case: each line named by the case, no
    /// more units than it asked for, each line once.
    pub(crate) fn check_received(case: &ReturnCase, received: &[ReceivedUnits]) -> Result<()> {
        if received.is_empty() {
            return Err(Error::invalid("received", "name at least one line"));
        }
        for r in received {
            if r.quantity == 0 {
                return Err(Error::invalid("quantity", "must be at least 1"));
            }
            let asked = case
                .items
                .iter()
                .find(|q| q.line_id == r.line_id)
                .map_or(0, |q| q.quantity);
            let same_line: u64 = received
                .iter()
                .filter(|o| o.line_id == r.line_id)
                .map(|o| u64::from(o.quantity))
                .sum();
            if same_line > u64::from(asked) {
                return Err(Error::invalid(
                    "received",
                    format!(
                        "{same_line} unit(s) of line {} received, but the request named {asked}",
                        r.line_id
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Refuses returns on an order that was cancelled or is being cancelled.
    pub(crate) fn ensure_returnable_order(&self) -> Result<()> {
        if self.status == super::OrderStatus::Cancelled {
            return Err(Error::IllegalTransition {
                entity: "order",
                from: "Cancelled".into(),
                to: "a return".into(),
            });
        }
        self.ensure_not_cancelling()
    }

    /// After a return's refund was refused: the request it paid for waits
    /// for a refund again.
    pub(crate) fn reopen_case_of(&mut self, return_id: ReturnId, at: DateTime<Utc>, reason: &str) {
        if let Some(case) = self
            .return_cases
            .iter_mut()
            .find(|c| c.return_id == Some(return_id) && c.state == ReturnCaseState::Refunded)
        {
            let note: String = reason.chars().take(MAX_NOTE_LEN).collect();
            let to = if case.direct {
                ReturnCaseState::Canceled
            } else {
                ReturnCaseState::Received
            };
            if case.step(to, at, &Actor::System, &note).is_ok() {
                case.return_id = None;
            }
        }
    }
}

/// The policy of a staff return: everything returnable, no fees, shipping
/// as staff said.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StaffReturn(pub(crate) ShippingRefund);

impl ReturnPolicy for StaffReturn {
    fn eligibility(&self, _: &Order, _: &PricedLine, _: DateTime<Utc>) -> Eligibility {
        Eligibility::Returnable { until: None }
    }
    fn fees(&self, order: &Order, _: Money, _: ReturnReason) -> Result<ReturnFees> {
        Ok(ReturnFees::none(order.pricing().currency))
    }
    fn shipping(&self) -> ShippingRefund {
        self.0
    }
}

/// Which checks [`Order::quote_return`] makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct QuoteChecks {
    /// Ask the policy whether each line may come back (off for staff
    /// refunding units already received).
    pub policy: bool,
    /// Keep no fees.
    pub waive_fees: bool,
}

impl QuoteChecks {
    /// What a buyer's request is held to: the policy, with its fees.
    pub fn buyer() -> Self {
        Self {
            policy: true,
            waive_fees: false,
        }
    }

    /// Staff refunding received units: no eligibility check; fees waived
    /// when `waive_fees`.
    pub fn staff(waive_fees: bool) -> Self {
        Self {
            policy: false,
            waive_fees,
        }
    }
}
