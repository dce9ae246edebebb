//! The pure pricing core: `price(cart, context) -> PricedCart`.
//!
//! Architecture invariant: **pricing is pure.** No I/O, no async, no clock
//! reads (the time is an input), no global state, no randomness: the same
//! inputs give the same output, bit for bit. It knows nothing of storage or
//! payments. Everything it needs — catalog entries, the shipping and tax
//! plugins, the time — arrives in a [`PricingContext`].
//!
//! Today's pipeline: unit price from the catalog × quantity, the chosen
//! shipping rate, then tax on each line and on shipping. Every amount in a
//! [`PricedCart`] is exact in the cart currency's minor units and the totals
//! are sums of the parts.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::cart::Cart;
use crate::catalog::{CatalogEntry, Sku};
use crate::error::{Error, Result};
use crate::id::{CartId, LineId, VariantId};
use crate::inventory::UsageClaim;
use crate::money::{Currency, Money};
use crate::shipping::{ShippingInput, ShippingRate, ShippingRates};
use crate::tax::{TaxCalculator, TaxInput, TaxLine, TaxableLine};

/// Everything pricing may look at besides the cart.
pub struct PricingContext<'a> {
    /// The catalog entry of every variant in the cart.
    pub catalog: &'a HashMap<VariantId, CatalogEntry>,
    /// Where shipping rates come from.
    pub shipping: &'a dyn ShippingRates,
    /// How tax is computed.
    pub tax: &'a dyn TaxCalculator,
    /// The moment to price at (for validity windows).
    pub now: DateTime<Utc>,
}

/// A discount or surcharge applied to a line, and who made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Adjustment {
    /// What made it (a promotion id, a rule name).
    pub source: String,
    /// Shown to the customer.
    pub label: String,
    /// The amount taken off the line (positive for a discount).
    pub amount: Money,
}

/// One priced line, frozen into the order at checkout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PricedLine {
    /// The cart line.
    pub line_id: LineId,
    /// The variant.
    pub variant_id: VariantId,
    /// Its SKU at pricing time.
    pub sku: Sku,
    /// Its display name at pricing time.
    pub name: String,
    /// Units.
    pub quantity: u32,
    /// Price of one unit.
    pub unit_price: Money,
    /// `unit_price × quantity`.
    pub subtotal: Money,
    /// Discounts on this line.
    pub adjustments: Vec<Adjustment>,
    /// Sum of `adjustments`.
    pub discount: Money,
    /// Tax on this line.
    pub tax: Money,
    /// `subtotal - discount + tax`.
    pub total: Money,
    /// Whether the units ship.
    pub requires_shipping: bool,
    /// Weight of all units, in grams.
    pub weight_grams: u64,
}

/// The chosen shipping method and its price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShippingCharge {
    /// The method's code.
    pub code: String,
    /// Its name.
    pub name: String,
    /// Price before tax.
    pub amount: Money,
    /// Tax on it.
    pub tax: Money,
}

/// A cart with every amount worked out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PricedCart {
    /// The cart priced.
    pub cart_id: CartId,
    /// The cart version priced; checkout refuses to place an order if the cart changed since.
    pub cart_version: u64,
    /// The currency of every amount.
    pub currency: Currency,
    /// The lines, in cart order.
    pub lines: Vec<PricedLine>,
    /// Sum of line subtotals.
    pub subtotal: Money,
    /// Sum of line discounts.
    pub discount_total: Money,
    /// The chosen shipping, if a method is chosen and something ships.
    pub shipping: Option<ShippingCharge>,
    /// Every shipping method offered for this cart.
    pub shipping_options: Vec<ShippingRate>,
    /// Tax on lines and shipping.
    pub tax_total: Money,
    /// Tax by name, for the receipt.
    pub tax_lines: Vec<TaxLine>,
    /// `subtotal - discount_total + shipping + tax_total`; never negative.
    pub total: Money,
    /// Whether any line ships (and so a shipping address and method are needed).
    pub requires_shipping: bool,
    /// The limited counters this pricing consumes if the cart is checked out
    /// (a coupon's uses, a promotion's budget); checkout holds them atomically
    /// with the stock. Empty until promotions apply.
    pub usage_claims: Vec<UsageClaim>,
}

/// Prices `cart` in `ctx`.
///
/// Fails if a variant is missing from the catalog, cannot be bought or has no
/// price in the cart's currency, if the chosen shipping method is not offered,
/// or on overflow.
pub fn price(cart: &Cart, ctx: &PricingContext<'_>) -> Result<PricedCart> {
    let currency = cart.currency();
    let zero = Money::zero(currency);
    let mut lines = Vec::with_capacity(cart.lines().len());
    for line in cart.lines() {
        let entry = ctx
            .catalog
            .get(&line.variant_id)
            .ok_or_else(|| Error::not_found("variant", line.variant_id))?;
        entry.purchasable()?;
        let unit_price = entry.variant.price(currency).ok_or(Error::NoPrice {
            variant_id: line.variant_id,
            currency,
        })?;
        let subtotal = unit_price.checked_mul_qty(line.quantity)?;
        let weight_grams = u64::from(entry.variant.weight_grams())
            .checked_mul(u64::from(line.quantity))
            .ok_or(Error::Overflow("line weight"))?;
        lines.push(PricedLine {
            line_id: line.id,
            variant_id: line.variant_id,
            sku: entry.variant.sku().clone(),
            name: entry.display_name(),
            quantity: line.quantity,
            unit_price,
            subtotal,
            adjustments: Vec::new(),
            discount: zero,
            tax: zero,
            total: subtotal,
            requires_shipping: entry.variant.requires_shipping(),
            weight_grams,
        });
    }

    let subtotal = Money::sum(currency, lines.iter().map(|l| &l.subtotal))?;
    let discount_total = Money::sum(currency, lines.iter().map(|l| &l.discount))?;

    // Shipping
    let shipped: Vec<&PricedLine> = lines.iter().filter(|l| l.requires_shipping).collect();
    let requires_shipping = !shipped.is_empty();
    let (shipping_options, chosen) = if requires_shipping {
        let input = ShippingInput {
            currency,
            subtotal: Money::sum(currency, shipped.iter().map(|l| &l.subtotal))?,
            weight_grams: shipped
                .iter()
                .try_fold(0u64, |acc, l| acc.checked_add(l.weight_grams))
                .ok_or(Error::Overflow("cart weight"))?,
            items: shipped.iter().map(|l| u64::from(l.quantity)).sum(),
            destination: cart.shipping_address(),
        };
        let options = ctx.shipping.rates(&input)?;
        for rate in &options {
            if rate.price.currency() != currency {
                return Err(Error::CurrencyMismatch {
                    left: currency,
                    right: rate.price.currency(),
                });
            }
            rate.price.exact()?;
        }
        let chosen = match cart.shipping_method() {
            Some(code) => Some(
                options
                    .iter()
                    .find(|r| r.code == code)
                    .cloned()
                    .ok_or_else(|| Error::ShippingUnavailable(code.to_owned()))?,
            ),
            None => None,
        };
        (options, chosen)
    } else {
        (Vec::new(), None)
    };

    // Tax, on discounted amounts.
    let taxable = lines
        .iter()
        .map(|l| {
            let entry = ctx.catalog.get(&l.variant_id);
            Ok(TaxableLine {
                line_id: l.line_id,
                tax_class: entry.map_or("standard", |e| e.variant.tax_class()),
                amount: l.subtotal.checked_sub(l.discount)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let address = cart.shipping_address().or(cart.billing_address());
    let breakdown = ctx.tax.tax(&TaxInput {
        currency,
        lines: taxable,
        shipping: chosen.as_ref().map(|c| c.price),
        address,
    })?;
    if breakdown.lines.len() != lines.len() {
        return Err(Error::invalid(
            "tax calculator",
            "returned a different number of lines than it was given",
        ));
    }
    for (line, tax) in lines.iter_mut().zip(&breakdown.lines) {
        let tax = tax.exact()?;
        if tax.currency() != currency {
            return Err(Error::CurrencyMismatch {
                left: currency,
                right: tax.currency(),
            });
        }
        line.tax = tax;
        line.total = line.subtotal.checked_sub(line.discount)?.checked_add(tax)?;
    }
    let shipping = chosen.map(|rate| ShippingCharge {
        code: rate.code,
        name: rate.name,
        amount: rate.price,
        tax: breakdown.shipping,
    });
    let shipping_tax = shipping.as_ref().map_or(zero, |s| s.tax);
    let tax_total =
        Money::sum(currency, lines.iter().map(|l| &l.tax))?.checked_add(shipping_tax)?;
    let shipping_amount = shipping.as_ref().map_or(zero, |s| s.amount);
    let total = subtotal
        .checked_sub(discount_total)?
        .checked_add(shipping_amount)?
        .checked_add(tax_total)?;
    if total.is_negative() {
        return Err(Error::invalid("total", "would be negative"));
    }
    Ok(PricedCart {
        cart_id: cart.id(),
        cart_version: cart.version(),
        currency,
        lines,
        subtotal,
        discount_total,
        shipping,
        shipping_options,
        tax_total,
        tax_lines: breakdown.summary,
        total,
        requires_shipping,
        usage_claims: Vec::new(),
    })
}
