//! What has shipped and what is left to ship: the units per line, where
//! they left from, and the checks and record of a shipment.

use chrono::{DateTime, Utc};

use super::{LineQuantity, Order, OrderChangeKind, OrderStatus, Shipment};
use crate::actor::Actor;
use crate::error::{Error, Result};
use crate::id::LineId;

impl Order {
    /// Units of a line shipped so far.
    pub fn shipped(&self, line: LineId) -> u32 {
        Self::count(self.shipments.iter().flat_map(|s| &s.items), line)
    }

    /// What one shipment of everything left would carry: of each line
    /// that ships and whose charge is paid, the units ordered (less those
    /// cancelled) that have not shipped. Empty when nothing is left to
    /// ship now.
    pub fn left_to_ship(&self) -> Vec<LineQuantity> {
        self.pricing
            .lines
            .iter()
            .filter(|l| l.requires_shipping && !self.awaits_payment(l.line_id))
            .filter_map(|l| {
                let left = self
                    .ordered(l.line_id)
                    .saturating_sub(self.shipped(l.line_id));
                (left > 0).then_some(LineQuantity {
                    line_id: l.line_id,
                    quantity: left,
                })
            })
            .collect()
    }

    /// Where units of a line left stock from: the location of the first
    /// shipment that took its variant (where a returned unit goes back by
    /// default). `None` for an unknown line or one not shipped.
    pub fn shipped_from(&self, line: LineId) -> Option<crate::id::LocationId> {
        let variant = self.line(line).ok()?.variant_id;
        self.shipments
            .iter()
            .flat_map(|s| &s.stock)
            .find(|r| r.variant_id == variant)
            .map(|r| r.location_id)
    }

    /// Checks that `items` can ship: the order is open, not being cancelled,
    /// and each line has that many units not shipped yet.
    pub(crate) fn check_shippable(&self, items: &[LineQuantity]) -> Result<()> {
        self.ensure_open()?;
        self.ensure_not_cancelling()?;
        if let Some(waiting) = items.iter().find(|i| self.awaits_payment(i.line_id)) {
            return Err(Error::invalid(
                "shipment",
                format!("line {} waits for its charge to be paid", waiting.line_id),
            ));
        }
        self.check_items(items, "shipment", |o, line, _| {
            o.ordered(line).saturating_sub(o.shipped(line))
        })
    }

    /// Records a shipment; `stock` says which reserved units left where.
    pub(crate) fn ship(
        &mut self,
        shipment: Shipment,
        at: DateTime<Utc>,
        actor: &Actor,
    ) -> Result<()> {
        self.check_shippable(&shipment.items)?;
        let id = shipment.id;
        self.shipments.push(shipment);
        self.record(at, actor, OrderChangeKind::Shipped { shipment: id }, "");
        if self.status == OrderStatus::Placed {
            self.move_to(OrderStatus::Processing, at, actor, "first shipment")?;
        }
        self.complete_if_done(at, actor)
    }
}
