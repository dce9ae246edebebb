//! Cancelling units of some lines before they ship.

use crate::actor::Actor;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::id::{IdempotencyKey, LineCancellationId, OrderId};
use crate::inventory::ReservationLine;
use crate::money::Money;
use crate::order::{LineCancellation, LineQuantity, MAX_NOTE_LEN, Order, ReturnState};
use crate::validate::optional_text;

/// Units to call off before they ship.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CancelItems {
    /// Units per order line (not shipped, not cancelled already).
    pub items: Vec<LineQuantity>,
    /// Why, at most [`MAX_NOTE_LEN`] characters (may be empty).
    pub reason: String,
    /// Makes the cancellation safe to retry: the same key cancels once.
    pub key: IdempotencyKey,
}

impl CancelItems {
    /// A cancellation of `items` under `key`.
    pub fn new(items: Vec<LineQuantity>, key: IdempotencyKey) -> Self {
        Self {
            items,
            reason: String::new(),
            key,
        }
    }
}

crate::domain::setters!(CancelItems {} into { reason: String });

/// What the order's reservation holds, less what pending cancellations
/// will free (shipments and new cancellations leave that alone).
pub(crate) fn free_stock(order: &Order, held: &[ReservationLine]) -> Vec<ReservationLine> {
    let mut free: Vec<ReservationLine> = held.to_vec();
    for busy in order.stock_being_freed() {
        if let Some(l) = free
            .iter_mut()
            .find(|l| l.variant_id == busy.variant_id && l.location_id == busy.location_id)
        {
            l.quantity = l.quantity.saturating_sub(busy.quantity);
        }
    }
    free
}

/// The stock of `items` the order's reservation holds and no pending
/// cancellation is freeing, taken location by location.
pub(crate) fn held_stock(
    order: &Order,
    held: &[ReservationLine],
    items: &[LineQuantity],
) -> Result<Vec<ReservationLine>> {
    let mut free = free_stock(order, held);
    let mut out = Vec::new();
    for item in items {
        let variant = order.line(item.line_id)?.variant_id;
        let mut left = item.quantity;
        for l in free.iter_mut().filter(|l| l.variant_id == variant) {
            let take = left.min(l.quantity);
            if take > 0 {
                out.push(ReservationLine {
                    quantity: take,
                    ..*l
                });
                l.quantity -= take;
                left -= take;
            }
        }
        let tracked = held.iter().any(|l| l.variant_id == variant);
        if left > 0 && tracked {
            return Err(Error::invalid(
                "cancellation",
                "the order no longer holds stock for these units",
            ));
        }
    }
    Ok(out)
}

impl Engine {
    /// Calls off units of some lines before they ship (the order's
    /// customer, a guest with its token, staff or the system), giving back
    /// exactly their frozen shares: what the payment holds and has not
    /// collected is released (never captured), the rest is refunded by the
    /// [money-path protocol](crate::money_path); their stock goes back to
    /// sale when the refund completes. Shipping is not refunded. Idempotent
    /// by `cancel.key`. A cancellation racing a shipment of the same units
    /// fails whole.
    ///
    /// # Errors
    /// [`Error::Forbidden`] for anyone else; [`Error::Invalid`] for units
    /// that shipped or were cancelled already, a cancellation that would
    /// leave nothing ordered (cancel the order instead) or a reason over
    /// [`MAX_NOTE_LEN`] characters; [`Error::IllegalTransition`] for a
    /// closed order or one being cancelled; [`Error::PaymentInProgress`]
    /// while another operation on the payment is in flight; the provider's
    /// refusal (the cancellation is undone whole), or
    /// [`Error::PaymentUnavailable`] (it stays pending and a retry or
    /// recovery finishes it); [`Error::NotFound`]; [`Error::Storage`].
    #[tracing::instrument(skip_all, fields(order_id = %order_id))]
    pub async fn cancel_items(
        &self,
        actor: &Actor,
        order_id: OrderId,
        cancel: CancelItems,
    ) -> Result<Order> {
        super::require_buyer_side(actor)?;
        let reason = optional_text("cancellation reason", &cancel.reason, MAX_NOTE_LEN)?;
        let order = self.load_order(actor, order_id).await?;
        let key = format!("cancel-items:{}", cancel.key);
        let now = self.now();
        let store = self.inner.store.clone();
        // The stock is read before the closure (it runs under the order's
        // version check, which a shipment bumps): a race with a shipment
        // retries and reads it again.
        let mut reservation = store.reservation(order.reservation_id()).await?;
        let mut read_at = order.version();
        let mut current = order.clone();
        for _ in 0..self.inner.config.max_retries {
            let attempt = self
                .run_operation(current.clone(), |o| {
                    if o.line_cancellations().iter().any(|c| c.key == key) {
                        return Ok(None);
                    }
                    if o.version() != read_at {
                        return Err(Error::Conflict("order"));
                    }
                    let unreserve = held_stock(o, &reservation.lines, &cancel.items)?;
                    let currency = o.pricing().currency;
                    let c = LineCancellation {
                        id: LineCancellationId::new(),
                        key: key.clone(),
                        items: cancel.items.clone(),
                        amount: Money::zero(currency),
                        released: Money::zero(currency),
                        refund: Money::zero(currency),
                        shipping: None,
                        credited: None,
                        unreserve,
                        reason: reason.clone(),
                        actor: actor.clone(),
                        at: now,
                        state: ReturnState::Pending,
                    };
                    o.begin_line_cancel(c, now).map(Some)
                })
                .await;
            match attempt {
                Err(Error::Conflict("order")) => {
                    // The order moved since the stock was read: read both
                    // again (bounded by the order's own retries).
                    current = store.order(order_id).await?;
                    if current.version() == read_at {
                        return Err(crate::engine::gave_up("order"));
                    }
                    reservation = store.reservation(current.reservation_id()).await?;
                    read_at = current.version();
                }
                other => return Ok(other?.visible_to(actor)),
            }
        }
        Err(crate::engine::gave_up("order"))
    }
}
