//! Order edits: priced, shown as a difference, then confirmed in one save.
//! See [`OrderEdit`](crate::order::OrderEdit) for the pricing rule.

use super::after_sale;
use crate::actor::Actor;
use crate::customer::{Address, NewAddress};
use crate::domain::order::EditedShipment;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::event::AfterSaleChange;
use crate::id::{
    ChargeId, IdempotencyKey, LineCancellationId, LineId, OrderEditId, OrderId, VariantId,
};
use crate::money::Money;
use crate::order::{
    Charge, ChargeState, Effects, LineCancellation, LineQuantity, MAX_NOTE_LEN, Order, OrderEdit,
    ReturnState, ShippingChange,
};
use crate::pricing::{PricedCart, PricedLine};
use crate::validate::{optional_text, required_text};

/// What to change in an order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct EditRequest {
    /// Units to add: variant and quantity (a unit more of a line ordered
    /// already is a line of its own, priced now).
    pub add_units: Vec<(crate::id::VariantId, u32)>,
    /// Units to remove, per order line (not shipped, not cancelled).
    pub remove_units: Vec<LineQuantity>,
    /// A new shipping address, in the same country and region.
    pub shipping_address: Option<NewAddress>,
    /// A new shipping method, by code, while nothing has shipped (see
    /// [`OrderEdit`] for how it is priced), at most
    /// [`MAX_METHOD_CODE_LEN`](crate::cart::MAX_METHOD_CODE_LEN)
    /// characters.
    pub shipping_method: Option<String>,
    /// Why, at most [`MAX_NOTE_LEN`] characters (may be empty).
    pub reason: String,
}

crate::domain::setters!(EditRequest {} into {
    add_units: Vec<(crate::id::VariantId, u32)>,
    remove_units: Vec<LineQuantity>,
    shipping_address: Option<NewAddress>,
    shipping_method: Option<String>,
    reason: String,
});

/// An edit priced, before it is confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EditPreview {
    /// The lines it would add, priced now.
    pub added: Vec<PricedLine>,
    /// What they cost.
    pub added_value: Money,
    /// What the removed units had paid (their frozen shares).
    pub removed_value: Money,
    /// The shipping method's change, priced, when the edit names one.
    pub shipping: Option<ShippingChange>,
    /// `added_value − removed_value`, plus the new method's charge less
    /// the old one's: charged when positive, released or refunded when
    /// negative. Pass it to [`Engine::confirm_order_edit`]: the edit is
    /// refused if it changed.
    pub difference: Money,
}

impl EditPreview {
    /// What the edit gives back (removed units, a cheaper method) and
    /// what it takes (added units, a dearer method).
    fn give_and_take(&self) -> Result<(Money, Money)> {
        let zero = Money::zero(self.difference.currency());
        let shipping = match &self.shipping {
            Some(s) => s.difference()?,
            None => zero,
        };
        let (back, more) = if shipping.is_negative() {
            (zero.checked_sub(shipping)?, zero)
        } else {
            (zero, shipping)
        };
        Ok((
            self.removed_value.checked_add(back)?,
            self.added_value.checked_add(more)?,
        ))
    }
}

impl Engine {
    /// Who may edit: staff and the system; the order's customer and a
    /// guest with its token when the shop allows it.
    fn may_edit(&self, actor: &Actor) -> Result<()> {
        match actor {
            Actor::Staff(_) | Actor::System => Ok(()),
            Actor::StaffMember(_) => actor.require(crate::actor::Permission::Orders),
            Actor::Customer(_) | Actor::GuestWithToken(_)
                if self.inner.config.customer_order_edits =>
            {
                Ok(())
            }
            _ => Err(Error::Forbidden),
        }
    }

    /// Prices an edit and its parts on `order`.
    async fn price_edit(
        &self,
        order: &Order,
        edit: &EditRequest,
    ) -> Result<(Option<PricedCart>, EditPreview)> {
        order.check_editable()?;
        if edit.add_units.is_empty()
            && edit.remove_units.is_empty()
            && edit.shipping_address.is_none()
            && edit.shipping_method.is_none()
        {
            return Err(Error::invalid("order edit", "changes nothing"));
        }
        let currency = order.pricing().currency;
        let removed_value = if edit.remove_units.is_empty() {
            Money::zero(currency)
        } else {
            // Checked with the added units counted (an edit may swap every
            // unit for others).
            let added = edit.add_units.iter().map(|(_, q)| u64::from(*q)).sum();
            order.cancellation_amount_with(&edit.remove_units, added)?
        };
        let priced = if edit.add_units.is_empty() {
            None
        } else {
            Some(self.price_new_units(order, &edit.add_units).await?)
        };
        let added = priced.as_ref().map(|p| p.lines.clone()).unwrap_or_default();
        let added_value = Money::sum(currency, added.iter().map(|l| &l.total))?;
        let shipping = match &edit.shipping_method {
            Some(code) => Some(self.price_method_change(order, edit, code, &added).await?),
            None => None,
        };
        let mut difference = added_value.checked_sub(removed_value)?;
        if let Some(change) = &shipping {
            difference = difference.checked_add(change.difference()?)?;
        }
        Ok((
            priced,
            EditPreview {
                added,
                added_value,
                removed_value,
                shipping,
                difference,
            },
        ))
    }

    /// Prices the edit's change of shipping method to `code`, for the
    /// order as the edit leaves it.
    async fn price_method_change(
        &self,
        order: &Order,
        edit: &EditRequest,
        code: &str,
        added: &[PricedLine],
    ) -> Result<ShippingChange> {
        let code = required_text("shipping method", code, crate::cart::MAX_METHOD_CODE_LEN)?;
        let address = edit
            .shipping_address
            .clone()
            .map(Address::new)
            .transpose()?;
        let mut ids: Vec<VariantId> = order
            .pricing()
            .lines
            .iter()
            .chain(added)
            .map(|l| l.variant_id)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let entries = self.inner.store.entries(&ids).await?;
        let tax_class = |v: VariantId| {
            entries
                .get(&v)
                .map_or("standard", |e| e.variant.tax_class())
                .to_owned()
        };
        let tax_customer = self.tax_customer(order.customer_id()).await?;
        let edited = EditedShipment {
            code: &code,
            removed: &edit.remove_units,
            added,
            address: address.as_ref().or(order.shipping_address()),
            ship_from: self.inner.ship_from.as_ref(),
            customer: Some(&tax_customer),
            dimensions: &|v| entries.get(&v).and_then(|e| e.variant.dimensions_mm()),
        };
        let (change, _) = self
            .with_services(|tax, rates| {
                order.price_shipping_change(&edited, &tax_class, rates, tax)
            })
            .await?;
        Ok(change)
    }

    /// Prices an edit of an order before it ships, changing nothing: the
    /// lines it would add, what the removed units had paid, the new
    /// shipping method's charge against the old one, and the difference
    /// (see [`OrderEdit`] for the rule).
    ///
    /// # Errors
    /// [`Error::Forbidden`] (customers only where
    /// [`EngineConfig::customer_order_edits`](crate::EngineConfig::customer_order_edits)
    /// allows); [`Error::Invalid`] for an edit that changes nothing, units
    /// that shipped or were cancelled, new items not for sale, or a new
    /// method for an order that ships in groups, has shipped units or
    /// ships by that method already; [`Error::ShippingUnavailable`] for a
    /// method not offered for the order; [`Error::IllegalTransition`] for
    /// a closed or cancelling order; [`Error::NotFound`];
    /// [`Error::Storage`].
    #[tracing::instrument(skip_all, fields(order_id = %order_id))]
    pub async fn preview_order_edit(
        &self,
        actor: &Actor,
        order_id: OrderId,
        edit: &EditRequest,
    ) -> Result<EditPreview> {
        self.may_edit(actor)?;
        let order = self.load_order(actor, order_id).await?;
        Ok(self.price_edit(&order, edit).await?.1)
    }

    /// Confirms an edit of an order before it ships, in one save: added
    /// lines appended with their stock merged into the order's
    /// reservation (the pricing before kept as a version), removed units
    /// cancelled (their stock freed), the address moved, the shipping
    /// charge replaced by the new method's; what the removed units paid
    /// (and a cheaper method saves) covers the added units (and a dearer
    /// method) first, the rest is released or refunded by the
    /// [money-path protocol](crate::money_path), and what it does not
    /// cover is a charge ([`Engine::pay_charge`]) the added lines wait for
    /// (a charge for a dearer method alone holds nothing back: whether to
    /// ship before it is paid is the shop's call, [`Order::charges`]). `expected_difference` is the preview's:
    /// an edit that prices differently now is refused. An edit that would
    /// oversell, or that races a shipment of its units, fails whole.
    /// Idempotent by `key`.
    ///
    /// # Errors
    /// As [`Engine::preview_order_edit`]; [`Error::PriceChanged`];
    /// [`Error::OutOfStock`] (nothing is held); [`Error::Invalid`] for an
    /// address in another country or region, or a reason over
    /// [`MAX_NOTE_LEN`] characters; the provider's errors for a refund, as
    /// [`Engine::refund`].
    #[tracing::instrument(skip_all, fields(order_id = %order_id))]
    pub async fn confirm_order_edit(
        &self,
        actor: &Actor,
        order_id: OrderId,
        edit: EditRequest,
        expected_difference: Money,
        key: &IdempotencyKey,
    ) -> Result<Order> {
        self.may_edit(actor)?;
        let reason = optional_text("edit reason", &edit.reason, MAX_NOTE_LEN)?;
        let address = edit
            .shipping_address
            .clone()
            .map(Address::new)
            .transpose()?;
        let key = format!("order-edit:{key}");
        let store = self.inner.store.clone();
        for _ in 0..self.inner.config.max_retries {
            let order = self.load_order(actor, order_id).await?;
            if order.edits().iter().any(|e| e.key == key) {
                return Ok(Box::pin(self.drive(order)).await?.visible_to(actor));
            }
            let (priced, preview) = self.price_edit(&order, &edit).await?;
            if preview.difference != expected_difference {
                return Err(Error::PriceChanged {
                    expected: expected_difference,
                    actual: preview.difference,
                });
            }
            let reservation = store.reservation(order.reservation_id()).await?;
            let unreserve = if edit.remove_units.is_empty() {
                Vec::new()
            } else {
                super::held_stock(&order, &reservation.lines, &edit.remove_units)?
            };
            let units: Vec<(VariantId, u32)> = preview
                .added
                .iter()
                .map(|l| (l.variant_id, l.quantity))
                .collect();
            let hold = if units.is_empty() {
                None
            } else {
                Some(self.hold_for(&order, &units).await?)
            };
            let read_at = order.version();
            let now = self.now();
            let edit_id = OrderEditId::new();
            let attempt = self
                .run_operation(order, |o| {
                    if o.edits().iter().any(|e| e.key == key) {
                        return Ok(None);
                    }
                    if o.version() != read_at {
                        return Err(Error::Conflict("order"));
                    }
                    let currency = o.pricing().currency;
                    let mut effects = Effects::default();
                    let address_before = match &address {
                        Some(a) => o.move_shipping_address(a.clone())?,
                        None => None,
                    };
                    let added: Vec<LineId> = preview.added.iter().map(|l| l.line_id).collect();
                    if let Some(priced) = &priced {
                        o.append_lines(
                            priced.lines.clone(),
                            &priced.tax_lines,
                            "order edit",
                            actor,
                            now,
                        )?;
                    }
                    if let Some(change) = &preview.shipping {
                        o.swap_shipping(change, false, actor, now)?;
                    }
                    // What the edit gives back pays for what it takes
                    // first.
                    let (give, take) = preview.give_and_take()?;
                    let credited = if take.checked_cmp(&give)?.is_lt() {
                        take
                    } else {
                        give
                    };
                    let shipping_back = give.checked_sub(preview.removed_value)?;
                    let cancellation = if edit.remove_units.is_empty() && shipping_back.is_zero() {
                        None
                    } else {
                        let c = LineCancellation {
                            id: LineCancellationId::new(),
                            key: format!("{key}:remove"),
                            items: edit.remove_units.clone(),
                            amount: Money::zero(currency),
                            released: Money::zero(currency),
                            refund: Money::zero(currency),
                            shipping: (!shipping_back.is_zero()).then_some(shipping_back),
                            credited: Some(credited),
                            unreserve: unreserve.clone(),
                            reason: reason.clone(),
                            actor: actor.clone(),
                            at: now,
                            state: ReturnState::Pending,
                        };
                        let id = c.id;
                        effects.merge_from(o.begin_line_cancel(c, now)?);
                        Some(id)
                    };
                    let charge = if preview.difference.is_negative() || preview.difference.is_zero()
                    {
                        None
                    } else {
                        let id = ChargeId::new();
                        o.add_charge(Charge {
                            id,
                            amount: preview.difference,
                            reason: "order edit".into(),
                            lines: added.clone(),
                            state: ChargeState::Due,
                            attempts: 0,
                            open_try: false,
                            tried_at: None,
                            provider: None,
                            action: None,
                            last_error: String::new(),
                            payment: None,
                            at: now,
                        })?;
                        Some(id)
                    };
                    o.record_edit(OrderEdit {
                        id: edit_id,
                        key: key.clone(),
                        added,
                        added_value: preview.added_value,
                        removed: edit.remove_units.clone(),
                        removed_value: preview.removed_value,
                        cancellation,
                        charge,
                        address_before,
                        shipping: preview.shipping.clone(),
                        reason: reason.clone(),
                        actor: actor.clone(),
                        at: now,
                    })?;
                    effects.events.insert(
                        0,
                        after_sale(
                            o.id(),
                            AfterSaleChange::OrderEdited {
                                edit_id,
                                difference: preview.difference,
                            },
                        ),
                    );
                    effects.merge_reservation = hold.as_ref().map(|h| h.id);
                    Ok(Some(effects))
                })
                .await;
            let placed = match &attempt {
                Ok(o) => o.edits().iter().any(|e| e.id == edit_id),
                Err(_) => store
                    .order(order_id)
                    .await
                    .is_ok_and(|o| o.edits().iter().any(|e| e.id == edit_id)),
            };
            if !placed && let Some(hold) = &hold {
                self.give_back(hold).await;
            }
            match attempt {
                Err(Error::Conflict("order")) if !placed => continue,
                other => return Ok(other?.visible_to(actor)),
            }
        }
        Err(crate::engine::gave_up("order"))
    }
}
