//! After the sale: return requests (RMA) answered by the shop's return
//! policy, approved, received and refunded; claims (damaged, missing or
//! wrong units refunded or replaced without a return); units of some lines
//! cancelled before they ship; exchanges; order edits; and the charges for
//! what the buyer owes on top.
//!
//! Every step is a pure change to the order (`crate::order`) saved under
//! the order's version check, so it is decided together with every other
//! change to the same order — shipments, cancellations, other returns —
//! on either store and from any number of engines. Money moves only by the
//! [money-path protocol](crate::money_path): the refund is recorded as a
//! pending operation in the same save that moves the request to
//! *refunded*, then the provider is called under the operation's own key.
//! Each step records an [`EventKind::AfterSale`]
//! event in the outbox.
//!
//! Does not know: how orders are stored or payments made: it sequences
//! domain decisions, store commands and the money path.

mod cancel_lines;
mod claims;
mod edits;
mod exchanges;
mod returns;

pub use cancel_lines::CancelItems;
pub(crate) use cancel_lines::{free_stock, held_stock};
pub use claims::NewClaim;
pub use edits::{EditPreview, EditRequest};
pub use exchanges::{ChargePayment, MAX_EXCHANGE_LINES, NewExchange};
pub use returns::RefundReturn;

use crate::actor::Actor;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::event::{AfterSaleChange, EventKind};
use crate::id::{OrderId, VariantId};
use crate::inventory::{Reservation, StockRequest};
use crate::order::Order;

/// The outbox event of an after-sale step.
fn after_sale(order_id: OrderId, change: AfterSaleChange) -> EventKind {
    EventKind::AfterSale { order_id, change }
}

/// Refuses everyone who may not act for the order's buyer: the owner, a
/// guest with the order's token, staff and the system pass (the order's own
/// access check follows).
fn require_buyer_side(actor: &Actor) -> Result<()> {
    match actor {
        Actor::Customer(_) | Actor::GuestWithToken(_) | Actor::Staff(_) | Actor::System => Ok(()),
        Actor::StaffMember(_) => actor.require(crate::actor::Permission::Orders),
        _ => Err(Error::Forbidden),
    }
}

impl Engine {
    /// Holds stock for `lines` (a pending hold the store plans as for a
    /// checkout; it lapses by itself if never merged into the order's).
    pub(super) async fn hold_for(
        &self,
        order: &Order,
        lines: &[(VariantId, u32)],
    ) -> Result<Reservation> {
        let store = &self.inner.store;
        let variants: Vec<VariantId> = lines.iter().map(|(v, _)| *v).collect();
        let entries = store.entries(&variants).await?;
        let channel = match order.channel_id() {
            Some(id) => Some(store.channel(id).await?)
                .filter(|c| c.locations.is_some())
                .map(|c| c.id),
            None => None,
        };
        let requests = lines
            .iter()
            .map(|(v, quantity)| {
                let entry = entries
                    .get(v)
                    .ok_or_else(|| Error::not_found("variant", v))?;
                Ok(StockRequest {
                    variant_id: *v,
                    quantity: *quantity,
                    policy: entry.variant.inventory(),
                    channel,
                    location: entry.stock_location,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let now = self.now();
        store
            .reserve(&requests, &[], now + self.inner.config.reservation_ttl, now)
            .await
    }

    /// Gives an unused hold back at once (it would lapse by itself).
    pub(super) async fn give_back(&self, hold: &Reservation) {
        if let Err(e) = self.inner.store.release(hold.id, self.now()).await {
            tracing::warn!(error = %e, "an unused hold lapses by itself");
        }
    }
}
