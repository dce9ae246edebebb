//! Shipping orders and taking goods back: the engine side of shipments,
//! returns and refunds.
//!
//! A shipment takes units out of the order's stock reservation at the
//! locations that hold them. A return refunds exactly the returned units'
//! frozen share of their lines ([`Order::refund_for`]) — never re-spread over
//! other lines — plus shipping by the stated [`ShippingRefund`] policy, and
//! can put the units back on hand. Both are one atomic store command
//! ([`OrderStore::save_order`](crate::store::OrderStore::save_order)) with a
//! version check; the refund is made at the provider first, under a key
//! derived from the caller's, so a retry never refunds twice.
//!
//! Does not know: how stock or payments are stored or called: it sequences
//! domain decisions and store commands.

use crate::actor::Actor;
use crate::engine::{Engine, gave_up, pause_before_retry};
use crate::error::{Error, Result};
use crate::event::{AfterSaleChange, EventKind};
use crate::id::{IdempotencyKey, LocationId, OrderId, ReturnCaseId, ReturnId, ShipmentId};
use crate::inventory::ReservationLine;
use crate::order::{
    ItemCondition, LineQuantity, Order, OrderChange, QuoteChecks, ReceivedUnits, Return,
    ReturnCase, ReturnCaseEntry, ReturnCaseState, ReturnReason, ReturnState, Shipment,
    ShippingRefund, StaffReturn,
};
use crate::validate::{optional_text, required_text};

/// What leaves in one shipment.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShipmentRequest {
    /// Units per order line.
    pub items: Vec<LineQuantity>,
    /// The carrier ("UPS").
    pub carrier: String,
    /// The carrier's tracking number (may be empty).
    pub tracking_number: String,
    /// Ship from this location only (the units must be held there); `None`
    /// takes them from wherever the order's stock is held, in location order.
    pub location: Option<LocationId>,
}

impl ShipmentRequest {
    /// A shipment of `items` with no carrier or tracking number yet, from
    /// wherever the order's stock is held.
    pub fn new(items: Vec<LineQuantity>) -> Self {
        Self {
            items,
            carrier: String::new(),
            tracking_number: String::new(),
            location: None,
        }
    }
}

impl ShipmentRequest {
    /// A shipment of one routed parcel
    /// ([`PricedCart::fulfilment`](crate::pricing::PricedCart::fulfilment)):
    /// its units, from its location.
    pub fn parcel(parcel: &crate::pricing::Parcel) -> Self {
        let items = parcel
            .units
            .iter()
            .map(|u| LineQuantity {
                line_id: u.line_id,
                quantity: u.quantity,
            })
            .collect();
        Self {
            location: parcel.location_id,
            ..Self::new(items)
        }
    }
}

crate::domain::setters!(ShipmentRequest { items: Vec<LineQuantity> } into {
    carrier: String,
    tracking_number: String,
    location: Option<LocationId>,
});

/// What comes back, and how it is refunded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReturnRequest {
    /// Units per order line (they must have shipped and not come back yet).
    pub items: Vec<LineQuantity>,
    /// Put the units back on hand where they left from.
    pub restock: bool,
    /// How shipping is refunded.
    pub shipping: ShippingRefund,
    /// Makes the return safe to retry: the same key returns and refunds once.
    pub key: IdempotencyKey,
}

impl ReturnRequest {
    /// A return of `items` under `key`, without restocking, refunding
    /// shipping by the default policy.
    pub fn new(items: Vec<LineQuantity>, key: IdempotencyKey) -> Self {
        Self {
            items,
            restock: false,
            shipping: ShippingRefund::default(),
            key,
        }
    }
}

crate::domain::setters!(ReturnRequest {
    items: Vec<LineQuantity>,
    restock: bool,
    shipping: ShippingRefund,
    key: IdempotencyKey,
} into {});

impl Engine {
    /// Ships units of an order (staff and the system only). Several
    /// shipments may follow each other until every unit has left.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::Invalid`] for too many units, a unit not held at the chosen
    /// location, or a bad carrier or tracking number;
    /// [`Error::IllegalTransition`] for a closed or cancelling order;
    /// [`Error::NotFound`]; [`Error::Conflict`]; [`Error::Storage`] when the
    /// store fails.
    #[tracing::instrument(name = "ship", skip_all, fields(order_id = %order_id))]
    pub async fn ship(
        &self,
        actor: &Actor,
        order_id: OrderId,
        request: ShipmentRequest,
    ) -> Result<Order> {
        if !actor.allows(crate::actor::Permission::Orders) {
            return Err(Error::Forbidden);
        }
        let carrier = required_text("carrier", &request.carrier, 100)?;
        let tracking_number = optional_text("tracking number", &request.tracking_number, 200)?;
        for attempt in 0..self.inner.config.max_retries {
            pause_before_retry(attempt).await;
            let order = self.load_order(actor, order_id).await?;
            // Too many units is said as such, before looking at locations.
            order.check_shippable(&request.items)?;
            let reservation = self.inner.store.reservation(order.reservation_id()).await?;
            let held = crate::after_sale::free_stock(&order, &reservation.lines);
            let mut stock = Vec::new();
            for item in &request.items {
                let variant = order.line(item.line_id)?.variant_id;
                // Take the units from the locations holding them, in order.
                let mut left = item.quantity;
                let from_here = |l: &&ReservationLine| {
                    l.variant_id == variant && request.location.is_none_or(|at| l.location_id == at)
                };
                for held in held.iter().filter(from_here) {
                    let take = left.min(held.quantity);
                    if take > 0 {
                        stock.push(ReservationLine {
                            quantity: take,
                            ..*held
                        });
                        left -= take;
                    }
                }
                let tracked = reservation.lines.iter().any(|l| l.variant_id == variant);
                if left > 0 && tracked {
                    return Err(Error::invalid(
                        "shipment",
                        "the order's units of this line are not held at that location",
                    ));
                }
            }
            let mut next = order.clone();
            let shipment = Shipment {
                id: ShipmentId::new(),
                items: request.items.clone(),
                stock: stock.clone(),
                carrier: carrier.clone(),
                tracking_number: tracking_number.clone(),
                shipped_at: self.now(),
                delivered_at: None,
                label: None,
                tracking: Vec::new(),
            };
            let shipment_id = shipment.id;
            next.ship(shipment, self.now(), actor)?;
            let change = OrderChange {
                ship: stock,
                ..OrderChange::new(next).with_events(vec![EventKind::OrderShipped {
                    order_id,
                    shipment_id,
                }])
            };
            match self.inner.store.save_order(change, self.now()).await {
                Err(Error::Conflict(_)) => continue,
                other => return other,
            }
        }
        Err(gave_up("order"))
    }

    /// Records that a shipment arrived (staff, the system or a carrier
    /// integration). Marking it twice changes nothing.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::NotFound`] for an unknown order or shipment; [`Error::Storage`]
    /// when the store fails.
    #[tracing::instrument(name = "mark_delivered", skip_all, fields(order_id = %order_id))]
    pub async fn mark_delivered(
        &self,
        actor: &Actor,
        order_id: OrderId,
        shipment: ShipmentId,
    ) -> Result<Order> {
        if !actor.allows(crate::actor::Permission::Orders) {
            return Err(Error::Forbidden);
        }
        self.modify_order(actor, order_id, |mut order| {
            if order
                .shipments()
                .iter()
                .any(|s| s.id == shipment && s.delivered_at.is_some())
            {
                return Ok(None);
            }
            order.deliver(shipment, self.now(), actor)?;
            let delivered = EventKind::ShipmentDelivered {
                order_id,
                shipment_id: shipment,
            };
            Ok(Some(OrderChange::new(order).with_events(vec![delivered])))
        })
        .await
    }

    /// Takes units back and refunds exactly what they paid (staff and the
    /// system only), by the [money-path protocol](crate::money_path): the
    /// return and its refund are recorded as pending under the order's
    /// version check, so the same units can never be refunded twice, then
    /// the provider is called with the refund operation's own key, then the
    /// return is completed and its units restocked. Idempotent by
    /// `request.key`: a retry finishes the same return.
    ///
    /// # Errors
    /// [`Error::Forbidden`]; [`Error::Invalid`] for units not shipped or
    /// already returned (pending returns count); [`Error::PaymentInProgress`]
    /// while another operation on the payment is in flight; the provider's
    /// refusal (the return is then recorded as failed and its units count
    /// as not returned), or [`Error::PaymentUnavailable`] (the return stays
    /// pending and a retry or recovery finishes it).
    #[tracing::instrument(name = "return_items", skip_all, fields(order_id = %order_id))]
    pub async fn return_items(
        &self,
        actor: &Actor,
        order_id: OrderId,
        request: ReturnRequest,
    ) -> Result<Order> {
        if !actor.allows(crate::actor::Permission::Orders) {
            return Err(Error::Forbidden);
        }
        let order = self.load_order(actor, order_id).await?;
        let return_key = format!("return:{}", request.key);
        let now = self.now();
        self.run_operation(order, |order| {
            if order.returns().iter().any(|r| r.key == return_key) {
                return Ok(None);
            }
            let quote = order.quote_return(
                &request.items,
                ReturnReason::Other,
                &StaffReturn(request.shipping),
                now,
                QuoteChecks::staff(true),
            )?;
            let restocked = if request.restock {
                restock_lines(order, &request.items)?
            } else {
                Vec::new()
            };
            let ret = Return {
                id: ReturnId::new(),
                key: return_key.clone(),
                items: request.items.clone(),
                restocked: restocked.clone(),
                refund: quote.refund,
                shipping_refund: quote.shipping_refund,
                at: now,
                state: ReturnState::Pending,
            };
            // The same model as a buyer's request: one received and being
            // refunded at once.
            let received = request
                .items
                .iter()
                .map(|i| {
                    let variant = order.line(i.line_id)?.variant_id;
                    let at = restocked
                        .iter()
                        .find(|l| l.variant_id == variant)
                        .map(|l| l.location_id);
                    Ok(ReceivedUnits {
                        restock_at: at,
                        ..ReceivedUnits::new(i.line_id, i.quantity, ItemCondition::Resellable)
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let case_id = ReturnCaseId::new();
            order.record_direct_case(ReturnCase {
                id: case_id,
                key: return_key.clone(),
                items: request.items.clone(),
                reason: ReturnReason::Other,
                note: String::new(),
                state: ReturnCaseState::Refunded,
                quote,
                requested_by: actor.clone(),
                requested_at: now,
                received,
                return_id: Some(ret.id),
                history: vec![ReturnCaseEntry {
                    at: now,
                    actor: actor.clone(),
                    state: ReturnCaseState::Refunded,
                    note: String::new(),
                }],
                direct: true,
                credit: None,
            })?;
            let mut effects = order.begin_return(ret, now, actor)?;
            effects.events.insert(
                0,
                EventKind::AfterSale {
                    order_id: order.id(),
                    change: AfterSaleChange::ReturnRequest {
                        return_case_id: case_id,
                        state: ReturnCaseState::Refunded,
                    },
                },
            );
            Ok(Some(effects))
        })
        .await
    }
}

/// Where returned units go back: the locations their line's units left from.
fn restock_lines(order: &Order, items: &[LineQuantity]) -> Result<Vec<ReservationLine>> {
    let mut out = Vec::new();
    for item in items {
        let variant = order.line(item.line_id)?.variant_id;
        let from = order
            .shipments()
            .iter()
            .flat_map(|s| &s.stock)
            .find(|l| l.variant_id == variant);
        // Untracked goods left no stock and go back to none.
        if let Some(line) = from {
            out.push(ReservationLine {
                quantity: item.quantity,
                ..*line
            });
        }
    }
    Ok(out)
}
