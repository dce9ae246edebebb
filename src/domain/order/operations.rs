//! The money-moving changes to an order, as pure steps of the money-path
//! protocol: *begin* records the intent as a pending payment operation (the
//! engine saves it under the order's version check before calling the
//! provider), *settle* records the provider's answer and finishes what the
//! operation was for (a return's restock, a cancellation's next step).
//!
//! Architecture invariant: nothing here calls a provider or a store; the
//! engine's driver (`crate::money_path`) does, in the protocol's order.
//!
//! Does not know: payment providers or storage: it records what is to be done
//! and what was done; the engine calls the provider.

use chrono::{DateTime, Utc};

use super::{
    Cancellation, MAX_NOTE_LEN, Order, OrderChange, OrderChangeKind, OrderStatus, Return,
    ReturnState,
};
use crate::actor::Actor;
use crate::domain::payment::{
    Intent, OperationKind, OperationPurpose, OperationState, PaymentOperation, PaymentStatus,
    ProviderEvent,
};
use crate::error::{Error, Result};
use crate::event::EventKind;
use crate::inventory::ReservationLine;
use crate::money::Money;
use crate::validate::optional_text;

/// Most provider events one order records as applied.
const MAX_PROVIDER_EVENTS: usize = 1_000;

/// What must be saved together with an order change: stock moves, the
/// reservation's release and outbox events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Effects {
    pub(crate) restock: Vec<ReservationLine>,
    pub(crate) unreserve: Vec<ReservationLine>,
    pub(crate) merge_reservation: Option<crate::id::ReservationId>,
    pub(crate) release_reservation: bool,
    pub(crate) events: Vec<EventKind>,
}

impl Effects {
    /// Adds `other`'s effects to these.
    pub(crate) fn merge_from(&mut self, other: Effects) {
        self.merge(other);
    }

    fn merge(&mut self, other: Effects) {
        self.restock.extend(other.restock);
        self.unreserve.extend(other.unreserve);
        self.merge_reservation = self.merge_reservation.or(other.merge_reservation);
        self.release_reservation |= other.release_reservation;
        self.events.extend(other.events);
    }

    /// The change that saves `order` with these effects.
    pub(crate) fn into_change(self, order: Order) -> OrderChange {
        OrderChange {
            restock: self.restock,
            unreserve: self.unreserve,
            merge_reservation: self.merge_reservation,
            release_reservation: self.release_reservation,
            ..OrderChange::new(order).with_events(self.events)
        }
    }
}

/// How the provider answered a pending operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Settlement {
    /// It acted.
    Succeeded,
    /// It refused, for this reason; nothing moved.
    Failed(String),
}

impl Order {
    /// Refuses a change while a cancellation is in flight.
    pub(crate) fn ensure_not_cancelling(&self) -> Result<()> {
        if self.cancellation.is_some() && self.status != OrderStatus::Cancelled {
            return Err(Error::IllegalTransition {
                entity: "order",
                from: "being cancelled".into(),
                to: "a further change".into(),
            });
        }
        Ok(())
    }

    /// Records the intent to capture `amount` (everything still authorized
    /// when `None`) under the caller's `request_key`. `Ok(None)` when there
    /// is nothing to do: the request was already made, or nothing is left
    /// to capture on a fully captured payment.
    pub(crate) fn begin_capture(
        &mut self,
        amount: Option<Money>,
        request_key: &str,
        at: DateTime<Utc>,
        actor: &Actor,
    ) -> Result<Option<String>> {
        if self.payment.operation_for_request(request_key).is_some() {
            return Ok(None);
        }
        self.ensure_open()?;
        self.ensure_not_cancelling()?;
        self.ensure_nothing_pending()?;
        let amount = match amount {
            Some(a) => a,
            None => {
                let left = self.payment.capturable()?;
                if left.is_zero() && self.payment.status == PaymentStatus::Captured {
                    return Ok(None);
                }
                left
            }
        };
        self.payment
            .begin(Intent {
                kind: OperationKind::Capture,
                amount,
                purpose: OperationPurpose::Direct,
                request_key: Some(request_key),
                reason: "",
                actor,
                at,
            })
            .map(Some)
    }

    /// Records the intent to refund `amount` of what was captured, for
    /// `reason`, under the caller's `request_key`. `Ok(None)` when the
    /// request was already made.
    pub(crate) fn begin_refund(
        &mut self,
        amount: Money,
        reason: &str,
        request_key: &str,
        at: DateTime<Utc>,
        actor: &Actor,
    ) -> Result<Option<String>> {
        if self
            .payments()
            .any(|p| p.operation_for_request(request_key).is_some())
        {
            return Ok(None);
        }
        self.ensure_not_cancelling()?;
        self.ensure_nothing_pending()?;
        self.begin_refund_parts(
            amount,
            OperationPurpose::Direct,
            request_key,
            reason,
            actor,
            at,
        )
        .map(Some)
    }

    /// Refuses a new money operation while one is in flight on any payment.
    pub(super) fn ensure_nothing_pending(&self) -> Result<()> {
        match self.pending_operation() {
            Some(op) => Err(Error::PaymentInProgress {
                operation: op.key.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Records a refund of `amount` split over the order's payments by the
    /// refund policy: the provider's payment first (up to what it collected
    /// and has not refunded), then the tenders in the reverse order of their
    /// redemption (store credit before gift cards). Each part is a pending
    /// operation on its payment under the same request key; the provider's
    /// is driven first, and if it is refused the other parts are refused
    /// with it. Returns the first part's key.
    pub(super) fn begin_refund_parts(
        &mut self,
        amount: Money,
        purpose: OperationPurpose,
        request_key: &str,
        reason: &str,
        actor: &Actor,
        at: DateTime<Utc>,
    ) -> Result<String> {
        let currency = self.payment.authorized.currency();
        let mut refundable = Money::zero(currency);
        for p in self.payments() {
            refundable = refundable.checked_add(p.refundable()?)?;
        }
        amount.entered()?;
        if amount.is_negative() || amount.is_zero() || !amount.is_exact() {
            return Err(Error::invalid(
                "refund",
                format!("{amount} must be positive and exact in minor units"),
            ));
        }
        actor.check_refund(amount)?;
        if amount.checked_cmp(&refundable)?.is_gt() {
            return Err(Error::invalid(
                "refund",
                format!("{amount} exceeds the {refundable} captured and not yet refunded"),
            ));
        }
        let mut left = amount;
        let mut first = None;
        let order = std::iter::once(&mut self.payment).chain(self.tenders.iter_mut().rev());
        for payment in order {
            if left.is_zero() {
                break;
            }
            let available = payment.refundable()?;
            let part = if left.checked_cmp(&available)?.is_gt() {
                available
            } else {
                left
            };
            if part.is_zero() {
                continue;
            }
            let key = payment.begin(Intent {
                kind: OperationKind::Refund,
                amount: part,
                purpose,
                request_key: Some(request_key),
                reason,
                actor,
                at,
            })?;
            first.get_or_insert(key);
            left = left.checked_sub(part)?;
        }
        first.ok_or_else(|| Error::invalid("refund", "nothing to refund"))
    }

    /// Records a return. With nothing to refund it is completed at once (the
    /// effects restock it); otherwise it is pending with its refund recorded
    /// as a pending operation, and counts as returned until settled.
    pub(crate) fn begin_return(
        &mut self,
        mut ret: Return,
        at: DateTime<Utc>,
        actor: &Actor,
    ) -> Result<Effects> {
        if self.status == OrderStatus::Cancelled {
            return Err(Error::IllegalTransition {
                entity: "order",
                from: "Cancelled".into(),
                to: "a return".into(),
            });
        }
        self.ensure_not_cancelling()?;
        self.check_items(&ret.items, "return", |o, line, _| o.returnable(line))?;
        if ret.refund.is_zero() {
            ret.state = ReturnState::Completed;
            self.return_tax(&ret, at)?;
            let effects = self.complete_return_effects(&ret);
            self.record(
                at,
                actor,
                OrderChangeKind::Returned {
                    return_id: ret.id,
                    refund: ret.refund,
                },
                "",
            );
            self.returns.push(ret);
            return Ok(effects);
        }
        ret.state = ReturnState::Pending;
        self.ensure_nothing_pending()?;
        let key = ret.key.clone();
        self.begin_refund_parts(
            ret.refund,
            OperationPurpose::Return(ret.id),
            &key,
            "return",
            actor,
            at,
        )?;
        self.returns.push(ret);
        Ok(Effects::default())
    }

    /// A completed return's refund, and the credit its request kept for an
    /// exchange's new units, are no longer paid: the tax document follows.
    fn return_tax(&mut self, ret: &Return, at: DateTime<Utc>) -> Result<()> {
        let credit = self
            .return_cases
            .iter()
            .find(|c| c.return_id == Some(ret.id))
            .and_then(|c| c.credit)
            .unwrap_or(Money::zero(ret.refund.currency()));
        self.tax_reduction(ret.refund.checked_add(credit)?, "return", at)
    }

    fn complete_return_effects(&self, ret: &Return) -> Effects {
        Effects {
            restock: ret.restocked.clone(),
            release_reservation: false,
            events: vec![EventKind::ItemsReturned {
                order_id: self.id,
                refund: ret.refund,
            }],
            ..Effects::default()
        }
    }

    /// Records a cancellation request: the payment is voided or refunded
    /// step by step ([`Order::advance_cancel`]), then the order is cancelled.
    pub(crate) fn begin_cancel(
        &mut self,
        reason: &str,
        at: DateTime<Utc>,
        actor: &Actor,
    ) -> Result<()> {
        let reason = optional_text("cancellation reason", reason, MAX_NOTE_LEN)?;
        // What the cancellation would give back must be within the actor's
        // ceiling: asked first, so an actor who may not refund learns
        // nothing more about the order.
        let mut refundable = Money::zero(self.payment.authorized.currency());
        for p in self.payments() {
            refundable = refundable.checked_add(p.refundable()?)?;
        }
        if !refundable.is_zero() {
            actor.check_refund(refundable)?;
        }
        self.ensure_open()?;
        if !self.shipments.is_empty() {
            return Err(Error::IllegalTransition {
                entity: "order",
                from: "shipped".into(),
                to: "Cancelled".into(),
            });
        }
        self.ensure_nothing_pending()?;
        // A charge being paid (asked of the provider, or waiting for the
        // buyer's bank) finishes first: its money must land on the books.
        if let Some(c) = self.charges().iter().find(|c| {
            matches!(
                c.state,
                super::ChargeState::Authorizing | super::ChargeState::AwaitingCustomer
            )
        }) {
            return Err(Error::PaymentInProgress {
                operation: format!("charge {}", c.id),
            });
        }
        self.cancellation = Some(Cancellation {
            reason,
            actor: actor.clone(),
            requested_at: at,
        });
        Ok(())
    }

    /// The next step of a cancellation in flight, with no operation pending:
    /// begin refunding what was captured, else begin voiding the hold, else
    /// cancel the order (releasing its stock and usage claims).
    pub(crate) fn advance_cancel(&mut self, at: DateTime<Utc>) -> Result<Effects> {
        let Some(c) = self.cancellation.clone() else {
            return Ok(Effects::default());
        };
        if self.status == OrderStatus::Cancelled || self.pending_operation().is_some() {
            return Ok(Effects::default());
        }
        let refundable = self.payment.refundable()?;
        if !refundable.is_zero() {
            self.payment.begin(Intent {
                kind: OperationKind::Refund,
                amount: refundable,
                purpose: OperationPurpose::Cancel,
                request_key: None,
                reason: &c.reason,
                actor: &c.actor,
                at,
            })?;
            return Ok(Effects::default());
        }
        if self.payment.status == PaymentStatus::Authorized {
            let authorized = self.payment.authorized;
            self.payment.begin(Intent {
                kind: OperationKind::Void,
                amount: authorized,
                purpose: OperationPurpose::Cancel,
                request_key: None,
                reason: &c.reason,
                actor: &c.actor,
                at,
            })?;
            return Ok(Effects::default());
        }
        // Then each tender is credited back in full, one at a time.
        for tender in self.tenders.iter_mut().rev() {
            let refundable = tender.refundable()?;
            if !refundable.is_zero() {
                tender.begin(Intent {
                    kind: OperationKind::Refund,
                    amount: refundable,
                    purpose: OperationPurpose::Cancel,
                    request_key: None,
                    reason: &c.reason,
                    actor: &c.actor,
                    at,
                })?;
                return Ok(Effects::default());
            }
        }
        self.move_to(OrderStatus::Cancelled, at, &c.actor, &c.reason)?;
        self.tax_void();
        Ok(Effects {
            release_reservation: true,
            events: vec![EventKind::OrderCancelled { order_id: self.id }],
            ..Effects::default()
        })
    }

    /// Records the provider's answer to the pending operation `key` and
    /// finishes what it was for. Nothing changes when it is not pending.
    pub(crate) fn settle(
        &mut self,
        key: &str,
        settlement: &Settlement,
        at: DateTime<Utc>,
    ) -> Result<Effects> {
        let Some(payment) = self.payment_holding_mut(key) else {
            return Ok(Effects::default());
        };
        match settlement {
            Settlement::Succeeded => match payment.succeed(key)? {
                Some(op) => self.finish(&op, at),
                None => Ok(Effects::default()),
            },
            Settlement::Failed(reason) => match payment.fail(key, reason)? {
                Some(op) => Ok(self.compensate(&op, reason, at)),
                None => Ok(Effects::default()),
            },
        }
    }

    /// After an operation succeeded: history, status and what it was for.
    fn finish(&mut self, op: &PaymentOperation, at: DateTime<Utc>) -> Result<Effects> {
        let actor = op.requested_by.clone().unwrap_or(Actor::System);
        let mut effects = Effects::default();
        match op.kind {
            OperationKind::Capture => {
                self.captured(op.amount, at, &actor)?;
                effects.events.push(EventKind::PaymentCaptured {
                    order_id: self.id,
                    amount: op.amount,
                });
            }
            OperationKind::Refund => {
                self.record(
                    at,
                    &actor,
                    OrderChangeKind::PaymentRefunded { amount: op.amount },
                    &op.reason,
                );
                effects.events.push(EventKind::PaymentRefunded {
                    order_id: self.id,
                    amount: op.amount,
                });
                // Refunds by amount; those of returns and line
                // cancellations count when they complete, the order's
                // cancellation voids the tax document instead.
                if matches!(
                    op.purpose,
                    OperationPurpose::Direct | OperationPurpose::Reported
                ) {
                    self.tax_reduction(op.amount, "refund", at)?;
                }
            }
            OperationKind::Void => {
                self.record(at, &actor, OrderChangeKind::PaymentVoided, &op.reason);
                effects
                    .events
                    .push(EventKind::PaymentVoided { order_id: self.id });
            }
        }
        // A return split over several payments completes with its last part.
        let parts_pending = self.payments().any(|p| {
            p.operations()
                .iter()
                .any(|o| o.state == OperationState::Pending && o.purpose == op.purpose)
        });
        if let OperationPurpose::CancelLines(id) = op.purpose
            && !parts_pending
        {
            effects.merge(self.finish_line_cancel(id, at)?);
        }
        if let OperationPurpose::Return(id) = op.purpose
            && !parts_pending
            && let Some(index) = self.returns.iter().position(|r| r.id == id)
        {
            let ret = self
                .returns
                .get(index)
                .cloned()
                .ok_or(Error::Overflow("return index"))?;
            if ret.state == ReturnState::Pending {
                self.return_tax(&ret, at)?;
                effects.merge(self.complete_return_effects(&ret));
                if let Some(r) = self.returns.get_mut(index) {
                    r.state = ReturnState::Completed;
                }
                self.record(
                    at,
                    &actor,
                    OrderChangeKind::Returned {
                        return_id: ret.id,
                        refund: ret.refund,
                    },
                    "",
                );
            }
        }
        Ok(effects)
    }

    /// After the provider refused an operation: undo what it was for.
    fn compensate(&mut self, op: &PaymentOperation, reason: &str, at: DateTime<Utc>) -> Effects {
        let actor = op.requested_by.clone().unwrap_or(Actor::System);
        self.record(
            at,
            &actor,
            OrderChangeKind::PaymentOperationFailed {
                kind: op.kind,
                amount: op.amount,
            },
            reason,
        );
        // The other parts of the same refund (not yet sent: the provider's
        // part goes first) are refused with it.
        if let Some(request) = &op.request_key {
            let siblings: Vec<String> = self
                .payments()
                .flat_map(|p| p.operations())
                .filter(|o| {
                    o.state == OperationState::Pending
                        && o.purpose == op.purpose
                        && o.request_key.as_ref() == Some(request)
                })
                .map(|o| o.key.clone())
                .collect();
            for key in siblings {
                if let Some(p) = self.payment_holding_mut(&key) {
                    let _ = p.fail(&key, reason);
                }
            }
        }
        match op.purpose {
            OperationPurpose::Return(id) => {
                if let Some(r) = self.returns.iter_mut().find(|r| r.id == id) {
                    r.state = ReturnState::Failed;
                }
                self.reopen_case_of(id, at, reason);
            }
            OperationPurpose::Cancel => self.cancellation = None,
            OperationPurpose::CancelLines(id) => self.undo_line_cancel(id, at),
            OperationPurpose::Direct | OperationPurpose::Reported => {}
        }
        Effects::default()
    }

    /// Brings the payment's `kind` total up to a reported cumulative
    /// `total`: a pending operation it covers is settled and finished (its
    /// effects added to `effects`); returns what remains, reported from
    /// outside (a refund made in the provider's dashboard).
    fn sync_reported(
        &mut self,
        kind: OperationKind,
        key: &str,
        total: Money,
        at: DateTime<Utc>,
        effects: &mut Effects,
    ) -> Result<Money> {
        let (delta, settled) = self.payment.sync_reported(kind, key, total)?;
        match &settled {
            Some(op) => {
                effects.merge(self.finish(op, at)?);
                Ok(delta.checked_sub(op.amount)?)
            }
            None => Ok(delta),
        }
    }

    /// Whether the provider's event `id` was applied to this order.
    pub(crate) fn applied_provider_event(&self, id: &str) -> bool {
        self.provider_events.iter().any(|e| e == id)
    }

    /// Records the provider's event `id` as applied without applying it:
    /// for the event that completed the waiting payment this order is
    /// placed with, so that a replay of it finds it applied.
    ///
    /// # Errors
    /// [`Error::LimitExceeded`] past 1,000 events on an order.
    pub(crate) fn note_provider_event(&mut self, id: &str) -> Result<()> {
        if self.applied_provider_event(id) {
            return Ok(());
        }
        crate::validate::at_most(
            "provider events on an order",
            self.provider_events.len() + 1,
            MAX_PROVIDER_EVENTS,
        )?;
        self.provider_events.push(id.to_owned());
        Ok(())
    }

    /// Applies a payment provider's event, once per event id. Amounts are
    /// cumulative totals: a pending operation they cover is settled by them.
    /// `Ok(None)` when the event was already applied (nothing changes).
    pub(crate) fn apply_provider_event(
        &mut self,
        event: &ProviderEvent,
        provider: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<Effects>> {
        use crate::domain::payment::ProviderEventKind as K;
        if self.applied_provider_event(&event.id) {
            return Ok(None);
        }
        crate::validate::at_most(
            "provider events on an order",
            self.provider_events.len() + 1,
            MAX_PROVIDER_EVENTS,
        )?;
        event.validate_for(&self.payment)?;
        let actor = Actor::Provider(provider.to_owned());
        let key = format!("event:{}", event.id);
        let mut effects = Effects::default();
        match &event.kind {
            K::Authorized => {}
            K::Captured { captured_total } => {
                let rest = self.sync_reported(
                    OperationKind::Capture,
                    &key,
                    *captured_total,
                    at,
                    &mut effects,
                )?;
                if !rest.is_zero() {
                    self.captured(rest, at, &actor)?;
                    effects.events.push(EventKind::PaymentCaptured {
                        order_id: self.id,
                        amount: rest,
                    });
                }
            }
            K::Refunded { refunded_total } => {
                let rest = self.sync_reported(
                    OperationKind::Refund,
                    &key,
                    *refunded_total,
                    at,
                    &mut effects,
                )?;
                if !rest.is_zero() {
                    self.record(
                        at,
                        &actor,
                        OrderChangeKind::PaymentRefunded { amount: rest },
                        "reported by the provider",
                    );
                    effects.events.push(EventKind::PaymentRefunded {
                        order_id: self.id,
                        amount: rest,
                    });
                }
            }
            K::Failed { reason } => {
                // A capture still in flight can no longer succeed: it is
                // settled as refused, so nothing stays pending on a dead hold.
                if let Some(op) = self.payment.pending().cloned()
                    && op.kind == OperationKind::Capture
                {
                    effects.merge(self.settle(&op.key, &Settlement::Failed(reason.clone()), at)?);
                }
                self.payment.record_failure()?;
                self.record(at, &actor, OrderChangeKind::PaymentFailed, reason);
                effects.events.push(EventKind::PaymentFailed {
                    order_id: self.id,
                    reason: reason.chars().take(200).collect(),
                });
            }
            K::Disputed { amount, reason } => {
                self.record(
                    at,
                    &actor,
                    OrderChangeKind::PaymentDisputed { amount: *amount },
                    reason,
                );
            }
        }
        self.provider_events.push(event.id.clone());
        Ok(Some(effects))
    }
}
