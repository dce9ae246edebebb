//! Cancelling units of some lines before they ship.
//!
//! A line cancellation gives back exactly the cancelled units' frozen
//! shares of their lines — the *last* shares of each line, so they never
//! overlap the shares returns take from the front — and frees their stock.
//! Of that amount, what the provider holds and has not collected is
//! [released](crate::payment::Payment::released) (never captured, no call
//! needed); the rest is refunded by the money-path protocol. Its units
//! count as cancelled from the moment it is recorded; its stock goes back
//! to sale when its refund completes (at once when there is none), and a
//! refused refund undoes it whole.
//!
//! Shipping is not refunded: the order still ships. An order edit that
//! moves the order to a cheaper shipping method gives the difference back
//! through a line cancellation of its own ([`LineCancellation::shipping`]),
//! with or without units.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Effects, LineQuantity, MAX_NOTE_LEN, Order, ReturnState, unit_shares};
use crate::actor::Actor;
use crate::domain::payment::OperationPurpose;
use crate::error::{Error, Result};
use crate::event::{AfterSaleChange, EventKind};
use crate::id::{LineCancellationId, LineId};
use crate::inventory::ReservationLine;
use crate::money::Money;

/// Most line cancellations one order keeps.
pub const MAX_LINE_CANCELLATIONS: usize = 200;

/// Units of some lines called off before they shipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LineCancellation {
    /// Its id.
    pub id: LineCancellationId,
    /// The idempotency key it was made under.
    pub key: String,
    /// The units called off.
    pub items: Vec<LineQuantity>,
    /// Their frozen shares: what they were charged.
    pub amount: Money,
    /// Of which given up from the payment's hold (never collected).
    pub released: Money,
    /// Of which refunded.
    pub refund: Money,
    /// Given back besides the units: what a cheaper shipping method saves,
    /// chosen by the same order edit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping: Option<Money>,
    /// Of `amount` and `shipping`, kept to pay for what the same order
    /// edit adds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credited: Option<Money>,
    /// Their stock, freed when it completes.
    pub unreserve: Vec<ReservationLine>,
    /// Why.
    pub reason: String,
    /// Who.
    pub actor: Actor,
    /// When.
    pub at: DateTime<Utc>,
    /// Whether its refund has gone through: pending units count as
    /// cancelled; failed ones do not.
    pub state: ReturnState,
}

impl Order {
    /// Its line cancellations, oldest first.
    pub fn line_cancellations(&self) -> &[LineCancellation] {
        &self.line_cancellations
    }

    /// Units of a line cancelled (pending cancellations included, refused
    /// ones not).
    pub fn cancelled(&self, line: LineId) -> u32 {
        Self::count(
            self.line_cancellations
                .iter()
                .filter(|c| c.state != ReturnState::Failed)
                .flat_map(|c| &c.items),
            line,
        )
    }

    /// Units of a line still ordered: its quantity less what was cancelled.
    pub fn ordered(&self, line: LineId) -> u32 {
        self.line(line)
            .map(|l| l.quantity.saturating_sub(self.cancelled(line)))
            .unwrap_or(0)
    }

    /// Stock held for cancellations whose refund is in flight: shipments
    /// leave it alone, so it can be freed when they complete.
    pub(crate) fn stock_being_freed(&self) -> impl Iterator<Item = &ReservationLine> {
        self.line_cancellations
            .iter()
            .filter(|c| c.state == ReturnState::Pending)
            .flat_map(|c| &c.unreserve)
    }

    /// What cancelling `items` gives back: the last not yet cancelled
    /// shares of each line.
    ///
    /// # Errors
    /// [`Error::Invalid`] for units that shipped or were cancelled already,
    /// or a cancellation that would leave nothing ordered (cancel the order
    /// instead); [`Error::NotFound`] for a line not in the order;
    /// [`Error::Overflow`].
    pub fn cancellation_amount(&self, items: &[LineQuantity]) -> Result<Money> {
        self.cancellation_amount_with(items, 0)
    }

    /// As [`Order::cancellation_amount`], with `added` units about to join
    /// the order in the same change (an edit may swap every unit for
    /// others).
    pub(crate) fn cancellation_amount_with(
        &self,
        items: &[LineQuantity],
        added: u64,
    ) -> Result<Money> {
        self.check_items(items, "cancellation", |o, line, _| {
            o.ordered(line).saturating_sub(o.shipped(line))
        })?;
        let left: u64 = self
            .pricing
            .lines
            .iter()
            .map(|l| u64::from(self.ordered(l.line_id)))
            .sum::<u64>()
            .saturating_add(added)
            .saturating_sub(items.iter().map(|i| u64::from(i.quantity)).sum());
        if left == 0 {
            return Err(Error::invalid(
                "cancellation",
                "it would leave nothing ordered: cancel the order instead",
            ));
        }
        let mut amount = Money::zero(self.pricing.currency);
        for item in items {
            let line = self.line(item.line_id)?;
            let shares = unit_shares(line.total, line.quantity)?;
            let skip = usize::try_from(self.cancelled(item.line_id))
                .map_err(|_| Error::Overflow("units"))?;
            let take = usize::try_from(item.quantity).map_err(|_| Error::Overflow("units"))?;
            for share in shares.iter().rev().skip(skip).take(take) {
                amount = amount.checked_add(*share)?;
            }
        }
        Ok(amount)
    }

    /// Records a line cancellation: releases what the hold has not
    /// collected, records the refund of the rest as a pending operation;
    /// with nothing to refund it is completed at once (the effects free its
    /// stock).
    pub(crate) fn begin_line_cancel(
        &mut self,
        mut cancel: LineCancellation,
        at: DateTime<Utc>,
    ) -> Result<Effects> {
        self.ensure_open()?;
        self.ensure_not_cancelling()?;
        crate::validate::optional_text("cancellation reason", &cancel.reason, MAX_NOTE_LEN)?;
        crate::validate::at_most(
            "line cancellations on an order",
            self.line_cancellations.len() + 1,
            MAX_LINE_CANCELLATIONS,
        )?;
        if let Some(waiting) = cancel.items.iter().find(|i| self.awaits_payment(i.line_id)) {
            return Err(Error::invalid(
                "cancellation",
                format!(
                    "line {} waits for its charge: cancel the exchange instead",
                    waiting.line_id
                ),
            ));
        }
        let zero = Money::zero(self.pricing.currency);
        let shipping = cancel.shipping.unwrap_or(zero);
        if shipping.is_negative() {
            return Err(Error::invalid("cancellation", "negative shipping"));
        }
        let amount = if cancel.items.is_empty() && !shipping.is_zero() {
            zero
        } else {
            self.cancellation_amount(&cancel.items)?
        };
        // What pays for what an edit adds is not given back.
        let credited = cancel.credited.unwrap_or(zero);
        let owed = amount.checked_add(shipping)?;
        if credited.is_negative() || credited.checked_cmp(&owed)?.is_gt() {
            return Err(Error::invalid(
                "cancellation",
                "credit beyond the units' shares",
            ));
        }
        let give_back = owed.checked_sub(credited)?;
        let holding = self.payment.capturable()?;
        let released = if give_back.checked_cmp(&holding)?.is_gt() {
            holding
        } else {
            give_back
        };
        let refund = give_back.checked_sub(released)?;
        if !refund.is_zero() {
            self.ensure_nothing_pending()?;
        }
        self.payment.release(released)?;
        cancel.amount = amount;
        cancel.released = released;
        cancel.refund = refund;
        let actor = cancel.actor.clone();
        let id = cancel.id;
        if refund.is_zero() {
            cancel.state = ReturnState::Completed;
            self.tax_reduction(owed, "units cancelled", at)?;
            let effects = self.complete_line_cancel_effects(&cancel);
            self.line_cancellations.push(cancel);
            self.record(
                at,
                &actor,
                super::OrderChangeKind::LinesCancelled {
                    cancellation: id,
                    amount,
                },
                "",
            );
            self.complete_if_done(at, &actor)?;
            return Ok(effects);
        }
        cancel.state = ReturnState::Pending;
        let key = cancel.key.clone();
        let reason = cancel.reason.clone();
        self.begin_refund_parts(
            refund,
            OperationPurpose::CancelLines(id),
            &key,
            &reason,
            &actor,
            at,
        )?;
        self.line_cancellations.push(cancel);
        Ok(Effects::default())
    }

    /// What completing a line cancellation saves with it.
    fn complete_line_cancel_effects(&self, cancel: &LineCancellation) -> Effects {
        Effects {
            unreserve: cancel.unreserve.clone(),
            events: vec![EventKind::AfterSale {
                order_id: self.id,
                change: AfterSaleChange::LinesCancelled {
                    cancellation_id: cancel.id,
                    amount: cancel.amount,
                },
            }],
            ..Effects::default()
        }
    }

    /// After its refund went through: the cancellation is complete.
    pub(crate) fn finish_line_cancel(
        &mut self,
        id: LineCancellationId,
        at: DateTime<Utc>,
    ) -> Result<Effects> {
        let Some(index) = self.line_cancellations.iter().position(|c| c.id == id) else {
            return Ok(Effects::default());
        };
        let cancel = self
            .line_cancellations
            .get(index)
            .cloned()
            .ok_or(Error::Overflow("cancellation index"))?;
        if cancel.state != ReturnState::Pending {
            return Ok(Effects::default());
        }
        if let Some(c) = self.line_cancellations.get_mut(index) {
            c.state = ReturnState::Completed;
        }
        let owed = cancel.amount.checked_add(
            cancel
                .shipping
                .unwrap_or(Money::zero(cancel.amount.currency())),
        )?;
        self.tax_reduction(owed, "units cancelled", at)?;
        self.record(
            at,
            &cancel.actor,
            super::OrderChangeKind::LinesCancelled {
                cancellation: id,
                amount: cancel.amount,
            },
            "",
        );
        self.complete_if_done(at, &cancel.actor)?;
        Ok(self.complete_line_cancel_effects(&cancel))
    }

    /// After its refund was refused: the cancellation is undone whole (its
    /// release taken back, its units ordered again, and the shipping
    /// method its edit changed put back).
    pub(crate) fn undo_line_cancel(&mut self, id: LineCancellationId, at: DateTime<Utc>) {
        let Some(c) = self.line_cancellations.iter_mut().find(|c| c.id == id) else {
            return;
        };
        if c.state != ReturnState::Pending {
            return;
        }
        c.state = ReturnState::Failed;
        let released = c.released;
        let actor = c.actor.clone();
        if let Ok(back) = Money::zero(released.currency()).checked_sub(released) {
            // Taking back what was added cannot go below zero.
            let _ = self.payment.release(back);
        }
        let change = self
            .edits
            .iter()
            .find(|e| e.cancellation == Some(id))
            .and_then(|e| e.shipping.clone());
        if let Some(change) = change {
            // Left alone if a later edit changed the method again.
            let _ = self.swap_shipping(&change, true, &actor, at);
        }
    }
}
