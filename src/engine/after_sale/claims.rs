//! Claims: damaged, defective, wrong or missing units refunded or replaced
//! without a return.

use crate::actor::Actor;
use crate::engine::Engine;
use crate::error::Result;
use crate::event::{AfterSaleChange, EventKind};
use crate::id::{ClaimId, IdempotencyKey, LineId, OrderId, ReturnId};
use crate::order::{
    Claim, ClaimReason, ClaimResolution, LineQuantity, MAX_NOTE_LEN, Order, OrderChange,
    QuoteChecks, Return, ReturnReason, ReturnState, ShippingRefund, StaffReturn,
};
use crate::validate::optional_text;

/// A claim to make on an order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewClaim {
    /// Units per order line (shipped, not returned or replaced already).
    pub items: Vec<LineQuantity>,
    /// What went wrong.
    pub reason: ClaimReason,
    /// How to settle it.
    pub resolution: ClaimResolution,
    /// In words, at most [`MAX_NOTE_LEN`] characters (may be empty).
    pub note: String,
    /// Makes the claim safe to retry: the same key claims once.
    pub key: IdempotencyKey,
}

impl NewClaim {
    /// A claim on `items` for `reason`, settled by `resolution`, under `key`.
    pub fn new(
        items: Vec<LineQuantity>,
        reason: ClaimReason,
        resolution: ClaimResolution,
        key: IdempotencyKey,
    ) -> Self {
        Self {
            items,
            reason,
            resolution,
            note: String::new(),
            key,
        }
    }
}

crate::domain::setters!(NewClaim {} into { note: String });

fn claim_event(order_id: OrderId, claim_id: ClaimId, resolution: ClaimResolution) -> EventKind {
    super::after_sale(
        order_id,
        AfterSaleChange::Claimed {
            claim_id,
            resolution,
        },
    )
}

impl Engine {
    /// Settles a claim on shipped units without a return (staff and the
    /// system): [`ClaimResolution::Refund`] refunds their frozen shares
    /// by the [money-path protocol](crate::money_path) (they then count as
    /// returned); [`ClaimResolution::Replace`] adds a zero-priced line per
    /// claimed line to the order, with its stock reserved in the same save
    /// (a completed order reopens to ship it). The customer is never
    /// charged. Idempotent by `claim.key`.
    ///
    /// # Errors
    /// [`Error::Forbidden`](crate::Error::Forbidden); [`Error::Invalid`](crate::Error::Invalid) for units not shipped, or
    /// already returned, requested for return or replaced, or a note over
    /// [`MAX_NOTE_LEN`] characters; [`Error::OutOfStock`](crate::Error::OutOfStock) for a replacement
    /// that cannot be reserved (nothing is held); [`Error::IllegalTransition`](crate::Error::IllegalTransition)
    /// for a cancelled order; for a refund, the provider's errors as
    /// [`Engine::refund`]; [`Error::NotFound`](crate::Error::NotFound); [`Error::Storage`](crate::Error::Storage).
    #[tracing::instrument(skip_all, fields(order_id = %order_id))]
    pub async fn create_claim(
        &self,
        actor: &Actor,
        order_id: OrderId,
        claim: NewClaim,
    ) -> Result<Order> {
        actor.require(crate::actor::Permission::Orders)?;
        let note = optional_text("claim note", &claim.note, MAX_NOTE_LEN)?;
        let key = format!("claim:{}", claim.key);
        let order = self.load_order(actor, order_id).await?;
        if order.claims().iter().any(|c| c.key == key) {
            return Ok(Box::pin(self.drive(order)).await?.visible_to(actor));
        }
        order.check_claimable(&claim.items)?;
        let now = self.now();
        let made = Claim {
            id: ClaimId::new(),
            key: key.clone(),
            items: claim.items.clone(),
            reason: claim.reason,
            note,
            resolution: claim.resolution,
            return_id: None,
            replacement_lines: Vec::new(),
            actor: actor.clone(),
            at: now,
        };
        let order = match claim.resolution {
            ClaimResolution::Refund => self.refund_claim(order, made).await?,
            ClaimResolution::Replace => self.replace_claim(actor, order_id, &order, made).await?,
        };
        Ok(order.visible_to(actor))
    }

    /// A refund claim: a return with nothing coming back, through the
    /// money path.
    async fn refund_claim(&self, order: Order, made: Claim) -> Result<Order> {
        let now = made.at;
        let actor = made.actor.clone();
        self.run_operation(order, |order| {
            if order.claims().iter().any(|c| c.key == made.key) {
                return Ok(None);
            }
            order.check_claimable(&made.items)?;
            let quote = order.quote_return(
                &made.items,
                ReturnReason::Other,
                &StaffReturn(ShippingRefund::Never),
                now,
                QuoteChecks::staff(true),
            )?;
            let ret = Return {
                id: ReturnId::new(),
                key: made.key.clone(),
                items: made.items.clone(),
                restocked: Vec::new(),
                refund: quote.refund,
                shipping_refund: quote.shipping_refund,
                at: now,
                state: ReturnState::Pending,
            };
            let claim = Claim {
                return_id: Some(ret.id),
                ..made.clone()
            };
            order.record_claim(claim)?;
            let mut effects = order.begin_return(ret, now, &actor)?;
            let event = claim_event(order.id(), made.id, ClaimResolution::Refund);
            effects.events.insert(0, event);
            Ok(Some(effects))
        })
        .await
    }

    /// A replacement claim: the units' stock is reserved first (a pending
    /// hold that lapses by itself), then joins the order's reservation in
    /// the save that adds the lines.
    async fn replace_claim(
        &self,
        actor: &Actor,
        order_id: OrderId,
        order: &Order,
        made: Claim,
    ) -> Result<Order> {
        let units = made
            .items
            .iter()
            .map(|i| Ok((order.line(i.line_id)?.variant_id, i.quantity)))
            .collect::<Result<Vec<_>>>()?;
        let hold = self.hold_for(order, &units).await?;
        let new_ids: Vec<LineId> = made.items.iter().map(|_| LineId::new()).collect();
        let saved = self
            .modify_order(actor, order_id, |mut order| {
                if order.claims().iter().any(|c| c.key == made.key) {
                    return Ok(None);
                }
                order.replace_units(made.clone(), &new_ids)?;
                let change = OrderChange {
                    merge_reservation: Some(hold.id),
                    ..OrderChange::new(order).with_events(vec![claim_event(
                        order_id,
                        made.id,
                        ClaimResolution::Replace,
                    )])
                };
                Ok(Some(change))
            })
            .await;
        let placed = saved
            .as_ref()
            .is_ok_and(|o| o.claims().iter().any(|c| c.id == made.id));
        if !placed {
            // Not used (refused, or a retry found the claim made).
            self.give_back(&hold).await;
        }
        saved
    }
}
