//! Return requests: asked for by the buyer, answered by the policy,
//! approved, received and refunded by staff.

use crate::actor::Actor;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::event::{AfterSaleChange, EventKind};
use crate::id::{IdempotencyKey, OrderId, ReturnCaseId, ReturnId};
use crate::inventory::ReservationLine;
use crate::order::{
    Effects, LineQuantity, MAX_NOTE_LEN, NewReturnCase, Order, OrderChange, QuoteChecks,
    ReceivedUnits, Return, ReturnCase, ReturnCaseEntry, ReturnCaseState, ReturnQuote, ReturnReason,
    ReturnState,
};
use crate::validate::{optional_text, required_text};

/// How staff refund a received return request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RefundReturn {
    /// Makes the refund safe to retry: the same key refunds once.
    pub key: IdempotencyKey,
    /// Keep none of the policy's fees (a goodwill gesture).
    pub waive_fees: bool,
}

impl RefundReturn {
    /// A refund under `key`, keeping the policy's fees.
    pub fn new(key: IdempotencyKey) -> Self {
        Self {
            key,
            waive_fees: false,
        }
    }
}

crate::domain::setters!(RefundReturn { waive_fees: bool } into {});

/// The event of a request moving to `state`.
fn case_event(order_id: OrderId, id: ReturnCaseId, state: ReturnCaseState) -> EventKind {
    super::after_sale(
        order_id,
        AfterSaleChange::ReturnRequest {
            return_case_id: id,
            state,
        },
    )
}

/// Units per line of what was received.
fn received_items(received: &[ReceivedUnits]) -> Vec<LineQuantity> {
    let mut items: Vec<LineQuantity> = Vec::new();
    for r in received {
        match items.iter_mut().find(|i| i.line_id == r.line_id) {
            Some(i) => i.quantity = i.quantity.saturating_add(r.quantity),
            None => items.push(LineQuantity {
                line_id: r.line_id,
                quantity: r.quantity,
            }),
        }
    }
    items
}

impl Engine {
    /// What returning `items` for `reason` would refund under the shop's
    /// [return policy](crate::order::ReturnPolicy), answered at once: the
    /// units' frozen shares, shipping by the policy, the fees kept and the
    /// window's end. Changes nothing.
    ///
    /// # Errors
    /// [`Error::Forbidden`] for anyone but the order's customer, a guest
    /// with its token, staff or the system; [`Error::Invalid`] for units
    /// that cannot come back (not shipped, returned or requested already,
    /// final sale, past the window: the policy's reason);
    /// [`Error::NotFound`]; [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all, fields(order_id = %order_id))]
    pub async fn return_quote(
        &self,
        actor: &Actor,
        order_id: OrderId,
        items: &[LineQuantity],
        reason: ReturnReason,
    ) -> Result<ReturnQuote> {
        super::require_buyer_side(actor)?;
        let order = self.load_order(actor, order_id).await?;
        order.ensure_returnable_order()?;
        order.quote_return(
            items,
            reason,
            self.inner.return_policy.as_ref(),
            self.now(),
            QuoteChecks::buyer(),
        )
    }

    /// Asks to return units: the policy must accept every unit (as
    /// [`return_quote`](Self::return_quote) answers); the request then waits
    /// for staff, and its units are spoken for. Idempotent by `request.key`:
    /// a retry finds the same request. Returns the order and the request's
    /// id.
    ///
    /// # Errors
    /// As [`return_quote`](Self::return_quote), and [`Error::Invalid`] for a
    /// note over [`MAX_NOTE_LEN`] characters, [`Error::LimitExceeded`] past
    /// [`MAX_RETURN_CASES`](crate::order::MAX_RETURN_CASES) requests on one
    /// order, [`Error::IllegalTransition`] for a cancelled order.
    #[tracing::instrument(skip_all, fields(order_id = %order_id))]
    pub async fn request_return(
        &self,
        actor: &Actor,
        order_id: OrderId,
        request: NewReturnCase,
    ) -> Result<(Order, ReturnCaseId)> {
        super::require_buyer_side(actor)?;
        let note = optional_text("return note", &request.note, MAX_NOTE_LEN)?;
        let key = format!("return-request:{}", request.key);
        let now = self.now();
        let mut made = None;
        let order = self
            .modify_order(actor, order_id, |mut order| {
                if let Some(case) = order.return_cases().iter().find(|c| c.key == key) {
                    made = Some(case.id);
                    return Ok(None);
                }
                let quote = order.quote_return(
                    &request.items,
                    request.reason,
                    self.inner.return_policy.as_ref(),
                    now,
                    QuoteChecks::buyer(),
                )?;
                let id = ReturnCaseId::new();
                let case = ReturnCase {
                    id,
                    key: key.clone(),
                    items: request.items.clone(),
                    reason: request.reason,
                    note: note.clone(),
                    state: ReturnCaseState::Requested,
                    quote,
                    requested_by: actor.clone(),
                    requested_at: now,
                    received: Vec::new(),
                    return_id: None,
                    history: vec![ReturnCaseEntry {
                        at: now,
                        actor: actor.clone(),
                        state: ReturnCaseState::Requested,
                        note: String::new(),
                    }],
                    direct: false,
                    credit: None,
                };
                order.request_return(case)?;
                made = Some(id);
                let event = case_event(order_id, id, ReturnCaseState::Requested);
                Ok(Some(OrderChange::new(order).with_events(vec![event])))
            })
            .await?;
        let id = made.ok_or_else(|| Error::not_found("return request", &key))?;
        Ok((order.visible_to(actor), id))
    }

    /// Moves a request on by one step (`to`), recording who and why.
    async fn step_return(
        &self,
        actor: &Actor,
        order_id: OrderId,
        case: ReturnCaseId,
        to: ReturnCaseState,
        note: &str,
        mut also: impl FnMut(&Order, &mut ReturnCase) -> Result<()>,
    ) -> Result<Order> {
        let now = self.now();
        let order = self
            .modify_order(actor, order_id, |mut order| {
                if order.return_case(case)?.state == to {
                    return Ok(None);
                }
                if to != ReturnCaseState::Canceled {
                    order.ensure_returnable_order()?;
                }
                let snapshot = order.clone();
                let c = order.return_case_mut(case)?;
                c.step(to, now, actor, note)?;
                also(&snapshot, c)?;
                let event = case_event(order_id, case, to);
                Ok(Some(OrderChange::new(order).with_events(vec![event])))
            })
            .await?;
        Ok(order.visible_to(actor))
    }

    /// Accepts a return request (staff and the system): the buyer may send
    /// the units. Approving an approved request changes nothing.
    ///
    /// # Errors
    /// [`Error::Forbidden`]; [`Error::NotFound`] for an unknown order or
    /// request; [`Error::IllegalTransition`] unless the request is waiting;
    /// [`Error::Invalid`] for a note over [`MAX_NOTE_LEN`] characters;
    /// [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all, fields(order_id = %order_id))]
    pub async fn approve_return(
        &self,
        actor: &Actor,
        order_id: OrderId,
        case: ReturnCaseId,
        note: &str,
    ) -> Result<Order> {
        actor.require(crate::actor::Permission::Orders)?;
        let note = optional_text("note", note, MAX_NOTE_LEN)?;
        self.step_return(
            actor,
            order_id,
            case,
            ReturnCaseState::Approved,
            &note,
            |_, _| Ok(()),
        )
        .await
    }

    /// Turns a return request down, with the reason the buyer is told (staff
    /// and the system). Its units are free again.
    ///
    /// # Errors
    /// As [`approve_return`](Self::approve_return), and [`Error::Invalid`]
    /// for an empty reason.
    #[tracing::instrument(skip_all, fields(order_id = %order_id))]
    pub async fn reject_return(
        &self,
        actor: &Actor,
        order_id: OrderId,
        case: ReturnCaseId,
        reason: &str,
    ) -> Result<Order> {
        actor.require(crate::actor::Permission::Orders)?;
        let reason = required_text("rejection reason", reason, MAX_NOTE_LEN)?;
        self.step_return(
            actor,
            order_id,
            case,
            ReturnCaseState::Rejected,
            &reason,
            |_, _| Ok(()),
        )
        .await
    }

    /// Calls a return request off before its units arrive (the buyer, or
    /// staff). Its units are free again.
    ///
    /// # Errors
    /// [`Error::Forbidden`] for anyone but the order's customer, a guest with
    /// its token, staff or the system; [`Error::IllegalTransition`] once the
    /// units were received; [`Error::NotFound`]; [`Error::Storage`].
    #[tracing::instrument(skip_all, fields(order_id = %order_id))]
    pub async fn cancel_return_request(
        &self,
        actor: &Actor,
        order_id: OrderId,
        case: ReturnCaseId,
    ) -> Result<Order> {
        super::require_buyer_side(actor)?;
        self.step_return(
            actor,
            order_id,
            case,
            ReturnCaseState::Canceled,
            "",
            |_, _| Ok(()),
        )
        .await
    }

    /// Records what arrived back for an approved request (staff and the
    /// system): per line, how many units, their condition and where each
    /// goes back on hand (or not). Fewer units than asked may arrive; only
    /// those are refunded. Receiving twice changes nothing.
    ///
    /// # Errors
    /// [`Error::Forbidden`]; [`Error::Invalid`] for a line the request does
    /// not name, more units than it asked for, or a restock location that
    /// holds no stock of the variant; [`Error::IllegalTransition`] unless
    /// the request is approved; [`Error::NotFound`]; [`Error::Storage`].
    #[tracing::instrument(skip_all, fields(order_id = %order_id))]
    pub async fn receive_return(
        &self,
        actor: &Actor,
        order_id: OrderId,
        case: ReturnCaseId,
        received: Vec<ReceivedUnits>,
    ) -> Result<Order> {
        actor.require(crate::actor::Permission::Orders)?;
        crate::validate::at_most("received lines", received.len(), 1_000)?;
        // Every restock location must hold the variant already, or the
        // refund's completion could not put the units back.
        let order = self.load_order(actor, order_id).await?;
        let c = order.return_case(case)?;
        Order::check_received(c, &received)?;
        for r in &received {
            if let Some(location) = r.restock_at {
                let variant = order.line(r.line_id)?.variant_id;
                let stock = self.inner.store.stock(variant).await?;
                if !stock.levels.iter().any(|l| l.location_id == location) {
                    return Err(Error::invalid(
                        "restock location",
                        format!("location {location} holds no stock of variant {variant}"),
                    ));
                }
            }
        }
        self.step_return(
            actor,
            order_id,
            case,
            ReturnCaseState::Received,
            "",
            |_, c| {
                Order::check_received(c, &received)?;
                c.received = received.clone();
                Ok(())
            },
        )
        .await
    }

    /// Refunds a received request (staff and the system), by the
    /// [money-path protocol](crate::money_path): exactly the received
    /// units' frozen shares, plus shipping by the policy, minus the
    /// policy's fees for the request's reason (unless waived); the units
    /// marked for restock go back on hand when the refund completes.
    /// Idempotent by `refund.key`. A refund the provider refuses puts the
    /// request back to *received*, to be refunded again under a new key.
    ///
    /// # Errors
    /// [`Error::Forbidden`]; [`Error::IllegalTransition`] unless the request
    /// is received; [`Error::PaymentInProgress`] while another operation on
    /// the payment is in flight; the provider's refusal, or
    /// [`Error::PaymentUnavailable`] (the refund stays pending and a retry
    /// or recovery finishes it); [`Error::NotFound`]; [`Error::Storage`].
    #[tracing::instrument(skip_all, fields(order_id = %order_id))]
    pub async fn refund_return(
        &self,
        actor: &Actor,
        order_id: OrderId,
        case: ReturnCaseId,
        refund: RefundReturn,
    ) -> Result<Order> {
        actor.require(crate::actor::Permission::Orders)?;
        let order = self.load_order(actor, order_id).await?;
        let key = format!("return-case:{}", refund.key);
        let now = self.now();
        let policy = self.inner.return_policy.clone();
        let order = self
            .run_operation(order, |order| {
                if order.returns().iter().any(|r| r.key == key) {
                    return Ok(None);
                }
                order.ensure_returnable_order()?;
                let snapshot = order.return_case(case)?.clone();
                let c = order.return_case_mut(case)?;
                c.step(ReturnCaseState::Refunded, now, actor, "")?;
                let items = received_items(&snapshot.received);
                let quote = order.quote_return(
                    &items,
                    snapshot.reason,
                    policy.as_ref(),
                    now,
                    QuoteChecks::staff(refund.waive_fees),
                )?;
                let mut restocked = Vec::new();
                for r in &snapshot.received {
                    if let Some(location_id) = r.restock_at {
                        restocked.push(ReservationLine {
                            variant_id: order.line(r.line_id)?.variant_id,
                            location_id,
                            quantity: r.quantity,
                        });
                    }
                }
                // What the units paid for an exchange's new units is kept.
                let refund = match snapshot.credit {
                    Some(credit) if credit.checked_cmp(&quote.refund)?.is_ge() => {
                        crate::money::Money::zero(quote.refund.currency())
                    }
                    Some(credit) => quote.refund.checked_sub(credit)?,
                    None => quote.refund,
                };
                let ret = Return {
                    id: ReturnId::new(),
                    key: key.clone(),
                    items,
                    restocked,
                    refund,
                    shipping_refund: quote.shipping_refund,
                    at: now,
                    state: ReturnState::Pending,
                };
                order.return_case_mut(case)?.return_id = Some(ret.id);
                let mut effects: Effects = order.begin_return(ret, now, actor)?;
                effects
                    .events
                    .insert(0, case_event(order.id(), case, ReturnCaseState::Refunded));
                Ok(Some(effects))
            })
            .await?;
        Ok(order.visible_to(actor))
    }
}
