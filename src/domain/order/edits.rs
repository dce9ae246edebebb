//! Order edits: before units ship, lines are added or units removed and the
//! shipping address corrected, priced and shown as a difference, then
//! confirmed in one save.
//!
//! The rule for prices (documented, so an edit can explain itself): units
//! already ordered keep their frozen prices and discounts — the order's
//! original promotions keep their terms — and removed units give back
//! exactly their frozen shares (the last shares of their line, as a line
//! cancellation does). Added units are priced as a cart of their own at
//! the time of the edit, in the order's currency and channel, for its
//! customer and address, at catalog and price-list prices, without
//! promotions. What removed units gave back pays for added units first;
//! the rest is released or refunded, and what it does not cover is a
//! [`Charge`](super::Charge) the added lines wait for.
//!
//! The address may change within its tax jurisdiction (country and
//! region): the order's tax is frozen, and a change of jurisdiction would
//! make it wrong.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{LineQuantity, Order};
use crate::actor::Actor;
use crate::customer::Address;
use crate::error::{Error, Result};
use crate::id::{ChargeId, LineCancellationId, LineId, OrderEditId};
use crate::money::Money;

/// Most edits one order keeps.
pub const MAX_ORDER_EDITS: usize = 50;

/// A confirmed edit of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OrderEdit {
    /// Its id.
    pub id: OrderEditId,
    /// The idempotency key it was confirmed under.
    pub key: String,
    /// The lines it added.
    pub added: Vec<LineId>,
    /// What the added units cost.
    pub added_value: Money,
    /// The units it removed.
    pub removed: Vec<LineQuantity>,
    /// What the removed units had paid (their frozen shares).
    pub removed_value: Money,
    /// Their line cancellation, when units were removed.
    pub cancellation: Option<LineCancellationId>,
    /// The charge for what the removed units did not cover.
    pub charge: Option<ChargeId>,
    /// The shipping address before, when it changed.
    pub address_before: Option<Address>,
    /// Why (may be empty).
    pub reason: String,
    /// Who.
    pub actor: Actor,
    /// When.
    pub at: DateTime<Utc>,
}

impl OrderEdit {
    /// `added_value − removed_value`: charged when positive, given back
    /// when negative.
    ///
    /// # Errors
    /// [`Error::Overflow`] on corrupt data.
    pub fn difference(&self) -> Result<Money> {
        Ok(self.added_value.checked_sub(self.removed_value)?)
    }
}

impl Order {
    /// Its confirmed edits, oldest first.
    pub fn edits(&self) -> &[OrderEdit] {
        &self.edits
    }

    /// Checks the order may be edited: open, not being cancelled, no
    /// unit shipped yet of the lines `removed` names.
    pub(crate) fn check_editable(&self) -> Result<()> {
        self.ensure_open()?;
        self.ensure_not_cancelling()?;
        crate::validate::at_most("order edits", self.edits.len() + 1, MAX_ORDER_EDITS)
    }

    /// Moves the shipping address within its tax jurisdiction.
    pub(crate) fn move_shipping_address(&mut self, to: Address) -> Result<Option<Address>> {
        let before = self.shipping_address.clone();
        if let Some(current) = &before
            && (current.country != to.country
                || !current.region.trim().eq_ignore_ascii_case(to.region.trim()))
        {
            return Err(Error::invalid(
                "shipping address",
                "a move to another country or region changes the order's tax: place a new order",
            ));
        }
        self.shipping_address = Some(to);
        Ok(before)
    }

    /// Records a confirmed edit.
    pub(crate) fn record_edit(&mut self, edit: OrderEdit) -> Result<()> {
        crate::validate::at_most("order edits", self.edits.len() + 1, MAX_ORDER_EDITS)?;
        self.record(
            edit.at,
            &edit.actor,
            super::OrderChangeKind::Edited { edit: edit.id },
            &edit.reason,
        );
        self.edits.push(edit);
        Ok(())
    }
}
