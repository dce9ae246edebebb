//! The money-path protocol: how every capture, refund and void reaches the
//! payment provider.
//!
//! 1. **Intent.** The operation (kind, amount, purpose, the caller's request
//!    key) is recorded on the order's payment as *pending*, in the same
//!    versioned save that decides it may happen at all (enough captured to
//!    refund, units not already returned, no other operation in flight).
//!    Its provider key is derived from the operation itself —
//!    `<payment id>:<kind>:<sequence>`, at most 255 ASCII characters — never
//!    from the caller's key alone.
//! 2. **Call.** Only then is the provider called, with that key.
//! 3. **Result.** The answer is recorded: the amounts are counted and what
//!    the operation was for is finished (a return restocked, a cancellation
//!    moved on), or, if the provider refused, undone.
//!
//! A payment has at most one pending operation, so two concurrent
//! operations on the same money can never both reach the provider: the
//! second one's save loses the version check, re-reads the order and is
//! refused with [`Error::PaymentInProgress`]. When the provider does not
//! answer (a timeout, an outage, a crash) the operation stays pending;
//! calling the same command again with the same request key, or
//! [`Engine::recover`], finishes it with the same provider key, which the
//! provider answers once. A provider event whose cumulative total covers a
//! pending operation settles it too.
//!
//! Does not know: a gateway's protocol: it calls the `PaymentProvider` port
//! and records every step in the order.

use crate::actor::Actor;
use crate::engine::{Engine, gave_up, pause_before_retry};
use crate::error::{Error, Result};
use crate::id::{IdempotencyKey, OrderId};
use crate::money::Money;
use crate::order::{Effects, Order, OrderStatus, Settlement};
use crate::payment::{
    CaptureRequest, OperationKind, OperationState, PaymentError, PaymentOperation,
    ProviderResponse, RefundRequest, VoidRequest,
};

/// How many protocol steps one command may take before giving up (a
/// cancellation takes at most a refund, a void and the final save).
const MAX_STEPS: usize = 16;

/// A refund of an amount, not tied to returned units (goodwill, a price
/// adjustment, a late delivery).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ManualRefund {
    /// How much; at most what was captured and not yet refunded.
    pub amount: Money,
    /// Why, kept with the payment operation and the history (at most
    /// [`MAX_OPERATION_REASON_LEN`](crate::payment::MAX_OPERATION_REASON_LEN)
    /// characters).
    pub reason: String,
    /// Makes the refund safe to retry: the same key refunds once.
    pub key: IdempotencyKey,
}

impl ManualRefund {
    /// A refund of `amount` for `reason` under `key`.
    pub fn new(amount: Money, reason: impl Into<String>, key: IdempotencyKey) -> Self {
        Self {
            amount,
            reason: reason.into(),
            key,
        }
    }
}

impl Engine {
    /// Applies `change` to `start` (the order as last read; no access check:
    /// callers checked already) and saves it under the version check; on a
    /// lost race it re-reads the stored order and tries again. `change`
    /// returns `None` when there is nothing to save.
    pub(crate) async fn update_order(
        &self,
        start: Order,
        mut change: impl FnMut(&mut Order) -> Result<Option<Effects>>,
    ) -> Result<Order> {
        let id = start.id();
        let mut current = Some(start);
        for attempt in 0..self.inner.config.max_retries {
            pause_before_retry(attempt).await;
            let mut order = match current.take() {
                Some(order) => order,
                None => self.inner.store.order(id).await?,
            };
            let Some(effects) = change(&mut order)? else {
                return Ok(order);
            };
            match self
                .inner
                .store
                .save_order(effects.into_change(order), self.now())
                .await
            {
                Err(Error::Conflict(_)) => continue,
                other => return other,
            }
        }
        Err(gave_up("order"))
    }

    /// Runs the protocol on an order until nothing is in flight: calls the
    /// provider for the pending operation and records its answer, moves a
    /// cancellation on. Returns the order, or the provider's error (a
    /// refusal is recorded first; an operation without an answer stays
    /// pending for a retry or recovery).
    #[tracing::instrument(name = "money_path", skip_all, fields(order_id = %order.id()))]
    pub(crate) async fn drive(&self, mut order: Order) -> Result<Order> {
        let id = order.id();
        for _ in 0..MAX_STEPS {
            if let Some(op) = order.pending_operation().cloned() {
                let answer = self.call_provider(&order, &op).await;
                let (settlement, error) = match answer {
                    Ok(_) => (Settlement::Succeeded, None),
                    Err(e @ (PaymentError::Timeout | PaymentError::Unavailable(_))) => {
                        tracing::warn!(
                            order_id = %id,
                            operation = %op.key,
                            error = %e,
                            "payment operation left pending; a retry or recovery finishes it"
                        );
                        return Err(e.into());
                    }
                    Err(e) => {
                        crate::telemetry::compensation("operation_refused");
                        tracing::warn!(
                            order_id = %id,
                            operation = %op.key,
                            error = %e,
                            "provider refused a payment operation; undoing what it was for"
                        );
                        (Settlement::Failed(e.to_string()), Some(e))
                    }
                };
                let now = self.now();
                order = self
                    .update_order(order, |o| {
                        let pending = o
                            .payment_holding(&op.key)
                            .and_then(|p| p.operation(&op.key))
                            .is_some_and(|p| p.state == OperationState::Pending);
                        if !pending {
                            return Ok(None);
                        }
                        o.settle(&op.key, &settlement, now).map(Some)
                    })
                    .await?;
                if let Some(e) = error {
                    return Err(e.into());
                }
                continue;
            }
            if order.cancellation().is_some() && order.status() != OrderStatus::Cancelled {
                let now = self.now();
                order = self
                    .update_order(order, |o| {
                        if o.cancellation().is_none()
                            || o.status() == OrderStatus::Cancelled
                            || o.pending_operation().is_some()
                        {
                            return Ok(None);
                        }
                        o.advance_cancel(now).map(Some)
                    })
                    .await?;
                continue;
            }
            let order = Box::pin(self.drive_tax(order)).await;
            // A label call that did not go through stays recorded: the
            // drive that changed the order still succeeded.
            let id = order.id();
            return Ok(match Box::pin(self.drive_labels(order.clone())).await {
                Ok(o) => o,
                Err(_) => self.inner.store.order(id).await.unwrap_or(order),
            });
        }
        Err(gave_up("order"))
    }

    /// Sends a pending operation to the provider under its own key.
    async fn call_provider(
        &self,
        order: &Order,
        op: &PaymentOperation,
    ) -> std::result::Result<ProviderResponse, PaymentError> {
        let payment = order.payment_holding(&op.key).unwrap_or(order.payment());
        if payment.tender_kind().is_some() {
            return self.call_ledger(order, payment, op).await;
        }
        // Every operation goes to the provider that took the payment; one
        // no longer registered leaves the operation pending until it is.
        let name = &payment.provider;
        let provider = self.inner.payments.get(name).ok_or_else(|| {
            PaymentError::Unavailable(format!("no payment provider named `{name}` is registered"))
        })?;
        let authorization = payment.reference.clone();
        let idempotency_key = op.key.clone();
        let started = std::time::Instant::now();
        let answer = match op.kind {
            OperationKind::Capture => {
                provider
                    .capture(CaptureRequest {
                        idempotency_key,
                        authorization,
                        amount: op.amount,
                    })
                    .await
            }
            OperationKind::Refund => {
                provider
                    .refund(RefundRequest {
                        idempotency_key,
                        authorization,
                        amount: op.amount,
                    })
                    .await
            }
            OperationKind::Void => {
                provider
                    .void(VoidRequest {
                        idempotency_key,
                        authorization,
                    })
                    .await
            }
        };
        crate::telemetry::provider_call(
            op.kind.name(),
            crate::telemetry::result_label(&answer),
            started.elapsed(),
        );
        answer
    }

    /// Carries out an operation on a gift card or store-credit payment: a
    /// refund is a ledger entry under the operation's own key (posted once,
    /// however often this runs). Nothing else is ever asked of one.
    async fn call_ledger(
        &self,
        order: &Order,
        payment: &crate::payment::Payment,
        op: &PaymentOperation,
    ) -> std::result::Result<ProviderResponse, PaymentError> {
        use crate::giftcard::{EntryKind, GiftCardId, NewEntry};
        if op.kind != OperationKind::Refund {
            return Err(PaymentError::Invalid(
                "a gift card or store credit is collected at checkout".into(),
            ));
        }
        let card = payment
            .reference
            .parse::<uuid::Uuid>()
            .map(GiftCardId::from_uuid)
            .map_err(|_| PaymentError::Invalid("not a gift card reference".into()))?;
        let entry = NewEntry::new(
            op.key.clone(),
            EntryKind::Refund,
            op.amount,
            format!("order:{}", order.id()),
            op.requested_by.clone().unwrap_or(Actor::System),
        );
        match self
            .inner
            .store
            .post_gift_card_entry(card, entry, self.now())
            .await
        {
            Ok(_) => Ok(ProviderResponse::new(
                payment.reference.clone(),
                crate::payment::ProviderStatus::Refunded,
                op.amount,
            )),
            Err(e) if e.is_retryable() => Err(PaymentError::Unavailable(e.to_string())),
            Err(e) => Err(PaymentError::Invalid(e.to_string())),
        }
    }

    /// Records an intent with `begin` (under the version check) and drives
    /// it. `begin` returns `None` when the request was already made; the
    /// order is then driven as it stands (finishing that request if it is
    /// still in flight).
    ///
    /// While another operation is in flight, that one is driven to its end
    /// first (it may be a retry's own, or one a crashed caller left), then
    /// `begin` is tried once more.
    pub(crate) async fn run_operation(
        &self,
        order: Order,
        mut begin: impl FnMut(&mut Order) -> Result<Option<Effects>>,
    ) -> Result<Order> {
        let id = order.id();
        let order = match self.update_order(order, &mut begin).await {
            Err(Error::PaymentInProgress { .. }) => {
                let stored = self.inner.store.order(id).await?;
                let settled = Box::pin(self.drive(stored)).await?;
                self.update_order(settled, &mut begin).await?
            }
            other => other?,
        };
        // Boxed: the protocol's state (orders held across provider calls)
        // stays off the caller's stack.
        Box::pin(self.drive(order)).await
    }

    /// Refunds an amount of what was captured, for a reason (staff only),
    /// by the [money-path protocol](crate::money_path). Safe to retry with
    /// the same key: it refunds once.
    ///
    /// # Errors
    /// [`Error::Forbidden`] for anyone but staff; [`Error::Invalid`] when the
    /// amount is not positive or exceeds what is refundable;
    /// [`Error::PaymentInProgress`] while another operation on the payment is
    /// in flight; the provider's refusal, or [`Error::PaymentUnavailable`]
    /// (the refund stays pending and a retry or recovery finishes it).
    #[tracing::instrument(name = "refund", skip_all, fields(order_id = %order_id))]
    pub async fn refund(
        &self,
        actor: &Actor,
        order_id: OrderId,
        refund: ManualRefund,
    ) -> Result<Order> {
        // A signed-in member needs the refunds permission and the amount
        // within their ceiling (checked with the refund itself).
        if !matches!(actor, Actor::Staff(_) | Actor::StaffMember(_)) {
            return Err(Error::Forbidden);
        }
        let order = self.load_order(actor, order_id).await?;
        let request_key = format!("refund:{}", refund.key);
        let now = self.now();
        let order = self
            .run_operation(order, |o| {
                Ok(
                    o.begin_refund(refund.amount, &refund.reason, &request_key, now, actor)?
                        .map(|_| Effects::default()),
                )
            })
            .await?;
        Ok(order.visible_to(actor))
    }

    /// Finishes the money operations in flight on one order (a pending
    /// capture, refund or void; a cancellation under way). Staff and the
    /// system only; [`Engine::recover`] does this for every order.
    ///
    /// # Errors
    /// [`Error::Forbidden`], [`Error::NotFound`], or the provider's error.
    #[tracing::instrument(name = "settle_order", skip_all, fields(order_id = %order_id))]
    pub async fn settle_order(&self, actor: &Actor, order_id: OrderId) -> Result<Order> {
        if !actor.allows(crate::actor::Permission::Orders) {
            return Err(Error::Forbidden);
        }
        let order = self.load_order(actor, order_id).await?;
        Ok(self.drive(order).await?.visible_to(actor))
    }
}
