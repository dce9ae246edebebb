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
//!
//! The shipping method may change while nothing has shipped, on an order
//! with one shipment (no shipping groups, one parcel when routed). The new
//! method is priced now by
//! the shop's shipping rates for the units the order will ship after the
//! edit (their frozen amounts, weight and count) and taxed by its tax
//! calculator at the order's address, without promotions: a shipping
//! discount the order had was for the method it was given to. The charge
//! replaces the old one in the order's pricing (the pricing before is kept
//! as a version) and the difference joins the edit's: a dearer method is
//! charged, a cheaper one given back with the removed units' shares. A
//! [`ShippingChange`] records both charges; if its refund is refused the
//! old charge is put back.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{LineQuantity, Order, PricingVersion, unit_shares};
use crate::actor::Actor;
use crate::customer::Address;
use crate::error::{Error, Result};
use crate::id::{ChargeId, LineCancellationId, LineId, OrderEditId};
use crate::money::Money;
use crate::pricing::{PricedLine, ShippingCharge};
use crate::shipping::{ShippingInput, ShippingRates};
use crate::tax::{TaxCalculator, TaxInput, TaxLine, TaxableLine};

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
    /// The shipping method's change, when it changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping: Option<ShippingChange>,
    /// Why (may be empty).
    pub reason: String,
    /// Who.
    pub actor: Actor,
    /// When.
    pub at: DateTime<Utc>,
}

impl OrderEdit {
    /// `added_value − removed_value`, plus the shipping method's
    /// difference: charged when positive, given back when negative.
    ///
    /// # Errors
    /// [`Error::Overflow`] on corrupt data.
    pub fn difference(&self) -> Result<Money> {
        let units = self.added_value.checked_sub(self.removed_value)?;
        Ok(match &self.shipping {
            Some(s) => units.checked_add(s.difference()?)?,
            None => units,
        })
    }
}

/// An order's shipping method changed by an edit: the charge before and
/// after, each with the share of the order's tax lines it carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ShippingChange {
    /// The charge it replaced (as frozen in the order).
    pub before: ShippingCharge,
    /// The new method's charge, priced at the edit.
    pub after: ShippingCharge,
    /// What `before` carried of the order's tax lines.
    pub tax_before: Vec<TaxLine>,
    /// What `after` carries of them.
    pub tax_after: Vec<TaxLine>,
}

impl ShippingChange {
    /// The change `before` → `after`, with the tax lines each carries.
    pub fn new(
        before: ShippingCharge,
        after: ShippingCharge,
        tax_before: Vec<TaxLine>,
        tax_after: Vec<TaxLine>,
    ) -> Self {
        Self {
            before,
            after,
            tax_before,
            tax_after,
        }
    }

    /// `after.total − before.total`: charged when positive, given back
    /// when negative.
    ///
    /// # Errors
    /// [`Error::Overflow`]; [`Error::CurrencyMismatch`] on corrupt data.
    pub fn difference(&self) -> Result<Money> {
        Ok(self.after.total.checked_sub(self.before.total)?)
    }
}

/// An order's shipment as an edit leaves it.
#[derive(Clone, Copy)]
pub(crate) struct EditedShipment<'a> {
    /// The method it asks for.
    pub code: &'a str,
    /// The units it removes.
    pub removed: &'a [LineQuantity],
    /// The lines it adds, priced now.
    pub added: &'a [PricedLine],
    /// Where the order ships after it.
    pub address: Option<&'a Address>,
    /// Where it ships from.
    pub ship_from: Option<&'a Address>,
    /// Who buys, as tax sees them.
    pub customer: Option<&'a crate::tax::TaxCustomer>,
    /// Each variant's packed size, when known.
    pub dimensions: &'a (dyn Fn(crate::id::VariantId) -> Option<[u32; 3]> + Sync),
}

/// What a shipping charge taxed `tax` carries of the tax lines: those with
/// it less those `without` it, by name and rate, made to sum to `tax` (a
/// rounding difference goes to the largest). Empty when the calculator
/// names no taxes.
fn carried(with: &[TaxLine], without: &[TaxLine], tax: Money) -> Result<Vec<TaxLine>> {
    let mut out: Vec<TaxLine> = Vec::new();
    for t in with {
        let base = without
            .iter()
            .find(|w| w.name == t.name && w.rate == t.rate)
            .map_or(Ok(Money::zero(t.amount.currency())), |w| {
                Ok::<_, Error>(w.amount)
            })?;
        let part = t.amount.checked_sub(base)?;
        if !part.is_zero() && !part.is_negative() {
            out.push(TaxLine::new(t.name.clone(), t.rate, part));
        }
    }
    let sum = Money::sum(tax.currency(), out.iter().map(|t| &t.amount))?;
    let gap = tax.checked_sub(sum)?;
    if !gap.is_zero() {
        let largest = out.iter_mut().reduce(|a, b| {
            if b.amount.checked_cmp(&a.amount).is_ok_and(|o| o.is_gt()) {
                b
            } else {
                a
            }
        });
        if let Some(t) = largest {
            let fixed = t.amount.checked_add(gap)?;
            t.amount = if fixed.is_negative() {
                Money::zero(fixed.currency())
            } else {
                fixed
            };
        }
    }
    out.retain(|t| !t.amount.is_zero());
    Ok(out)
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

    /// The shipping charge an edit may replace: the order ships as one
    /// shipment (no shipping groups) in one parcel (from at most one
    /// location), has a method, and nothing shipped.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming which of these fails.
    pub(crate) fn replaceable_shipping(&self) -> Result<&ShippingCharge> {
        if !self.pricing.shipping_groups.is_empty() {
            return Err(Error::invalid(
                "shipping method",
                "the order ships in groups, each with its own method: cancel units and add them again instead",
            ));
        }
        if self.pricing.fulfilment.len() > 1 {
            return Err(Error::invalid(
                "shipping method",
                "the order ships in parcels from several locations, each priced from there: cancel units and add them again instead",
            ));
        }
        if !self.shipments.is_empty() {
            return Err(Error::invalid(
                "shipping method",
                "units have shipped by the method chosen",
            ));
        }
        self.pricing
            .shipping
            .as_ref()
            .ok_or_else(|| Error::invalid("shipping method", "the order has no shipping to change"))
    }

    /// Prices a change of the shipping method for the order as an edit
    /// leaves it (`edited`). `tax_class` names each variant's tax class.
    /// See the [module](self) for the rule.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an order that cannot change its method
    /// ([`Order::replaceable_shipping`]) or a method it ships by already;
    /// [`Error::ShippingUnavailable`] for a method not offered; a rate or
    /// tax in another currency, inexact or negative, or a calculator that
    /// now includes tax in prices when the order did not (or the reverse);
    /// the plugins' own errors; [`Error::Overflow`].
    pub(crate) fn price_shipping_change(
        &self,
        edited: &EditedShipment<'_>,
        tax_class: &dyn Fn(crate::id::VariantId) -> String,
        rates: &dyn ShippingRates,
        calculator: &dyn TaxCalculator,
    ) -> Result<ShippingChange> {
        let EditedShipment {
            code,
            removed,
            added,
            address,
            ..
        } = *edited;
        let before = self.replaceable_shipping()?.clone();
        if before.code == code {
            return Err(Error::invalid(
                "shipping method",
                format!("the order ships by {code} already"),
            ));
        }
        let currency = self.pricing.currency;
        // The units left after the edit: each frozen line's first shares
        // of its discounted amount, weight in proportion; then the new lines.
        let mut kept: Vec<(&PricedLine, Money, u64, u32)> = Vec::new();
        for line in &self.pricing.lines {
            let gone: u32 = removed
                .iter()
                .filter(|r| r.line_id == line.line_id)
                .map(|r| r.quantity)
                .sum();
            let left = self.ordered(line.line_id).saturating_sub(gone);
            if left == 0 {
                continue;
            }
            let net = line.subtotal.checked_sub(line.discount)?;
            let count = usize::try_from(left).map_err(|_| Error::Overflow("units"))?;
            let amount = unit_shares(net, line.quantity)?
                .into_iter()
                .take(count)
                .try_fold(Money::zero(currency), |acc, s| acc.checked_add(s))?;
            let weight = u64::try_from(
                u128::from(line.weight_grams) * u128::from(left) / u128::from(line.quantity.max(1)),
            )
            .map_err(|_| Error::Overflow("weight"))?;
            kept.push((line, amount, weight, left));
        }
        for line in added {
            let net = line.subtotal.checked_sub(line.discount)?;
            kept.push((line, net, line.weight_grams, line.quantity));
        }
        let (mut subtotal, mut weight, mut items) = (Money::zero(currency), 0_u64, 0_u64);
        let (mut parcel, mut volume) = (None, 0_u64);
        for (line, amount, grams, units) in kept.iter().filter(|k| k.0.requires_shipping) {
            if let Some(dims) = (edited.dimensions)(line.variant_id) {
                crate::shipping::add_units(&mut parcel, &mut volume, dims, *units);
            }
            subtotal = subtotal.checked_add(*amount)?;
            weight = weight
                .checked_add(*grams)
                .ok_or(Error::Overflow("weight"))?;
            items = items.saturating_add(u64::from(*units));
        }
        let input = ShippingInput {
            currency,
            subtotal,
            weight_grams: weight,
            items,
            destination: address,
            parcel_mm: parcel,
            volume_cm3: volume,
            origin: None,
            ship_from: None,
        };
        let rate = rates
            .rates(&input)?
            .into_iter()
            .find(|r| r.code == code)
            .ok_or_else(|| Error::ShippingUnavailable(code.to_owned()))?;
        crate::domain::pricing::steps::check_rate(&rate, currency)?;
        // Tax on each charge, asked with the same lines: the tax lines
        // each carries are what it adds to the lines' own.
        let classes: Vec<String> = kept.iter().map(|k| tax_class(k.0.variant_id)).collect();
        let ask = |shipping: Option<Money>| {
            let lines = kept
                .iter()
                .zip(&classes)
                .map(|(k, class)| TaxableLine {
                    line_id: k.0.line_id,
                    variant_id: k.0.variant_id,
                    tax_class: class,
                    quantity: k.3,
                    amount: k.1,
                })
                .collect();
            let answer = calculator.tax(&TaxInput {
                currency,
                lines,
                shipping,
                address,
                ship_from: edited.ship_from,
                customer: edited.customer,
                channel: self.channel_id,
            })?;
            if answer.prices_include_tax != self.pricing.prices_include_tax {
                return Err(Error::invalid(
                    "tax calculator",
                    "includes tax in prices differently than when the order was placed",
                ));
            }
            crate::domain::pricing::steps::checked_tax(answer.shipping, currency)?;
            Ok(answer)
        };
        let without = ask(None)?;
        let old = ask(Some(before.amount.checked_sub(before.discount)?))?;
        let new = ask(Some(rate.price))?;
        let total = if self.pricing.prices_include_tax {
            rate.price
        } else {
            rate.price.checked_add(new.shipping)?
        };
        let after = ShippingCharge {
            code: rate.code,
            name: rate.name,
            amount: rate.price,
            adjustments: Vec::new(),
            discount: Money::zero(currency),
            tax: new.shipping,
            total,
        };
        Ok(ShippingChange {
            tax_before: carried(&old.summary, &without.summary, before.tax)?,
            tax_after: carried(&new.summary, &without.summary, after.tax)?,
            before,
            after,
        })
    }

    /// Puts `change.after` in place of `change.before` (or back, when
    /// `reverse`) in the order's pricing: totals, discounts, tax and tax
    /// lines follow; the pricing before is kept as a version.
    pub(crate) fn swap_shipping(
        &mut self,
        change: &ShippingChange,
        reverse: bool,
        actor: &Actor,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let (from, to, tax_out, tax_in) = if reverse {
            (
                &change.after,
                &change.before,
                &change.tax_after,
                &change.tax_before,
            )
        } else {
            (
                &change.before,
                &change.after,
                &change.tax_before,
                &change.tax_after,
            )
        };
        if self.pricing.shipping.as_ref() != Some(from) {
            return Err(Error::invalid(
                "shipping method",
                "the order's shipping changed since it was priced",
            ));
        }
        crate::validate::at_most(
            "pricing versions",
            self.pricing_versions.len() + 1,
            super::exchanges::MAX_PRICING_VERSIONS,
        )?;
        // Worked out on a copy: a refusal changes nothing.
        let mut p = self.pricing.clone();
        p.discount_total = p
            .discount_total
            .checked_sub(from.discount)?
            .checked_add(to.discount)?;
        p.tax_total = p.tax_total.checked_sub(from.tax)?.checked_add(to.tax)?;
        p.total = p.total.checked_sub(from.total)?.checked_add(to.total)?;
        if p.total.is_negative() || p.tax_total.is_negative() {
            return Err(Error::invalid(
                "shipping method",
                "the totals would go below zero",
            ));
        }
        for t in tax_out {
            if let Some(m) = p
                .tax_lines
                .iter_mut()
                .find(|m| m.name == t.name && m.rate == t.rate)
            {
                let left = m.amount.checked_sub(t.amount)?;
                m.amount = if left.is_negative() {
                    Money::zero(left.currency())
                } else {
                    left
                };
            }
        }
        p.tax_lines.retain(|t| !t.amount.is_zero());
        for t in tax_in {
            match p
                .tax_lines
                .iter_mut()
                .find(|m| m.name == t.name && m.rate == t.rate)
            {
                Some(m) => m.amount = m.amount.checked_add(t.amount)?,
                None => p.tax_lines.push(t.clone()),
            }
        }
        p.shipping = Some(to.clone());
        let before = std::mem::replace(&mut self.pricing, p);
        // A dearer method is paid on top; a cheaper one counts when its
        // line cancellation completes.
        if !reverse {
            self.tax_addition(
                to.total.checked_sub(from.total)?,
                to.tax.checked_sub(from.tax)?,
                "shipping method",
                at,
            )?;
        }
        self.pricing_versions.push(PricingVersion {
            at,
            actor: actor.clone(),
            cause: if reverse {
                "order edit undone: its refund was refused".into()
            } else {
                "order edit".into()
            },
            pricing: before,
        });
        Ok(())
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
