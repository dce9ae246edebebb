//! Tax: the [`TaxCalculator`] trait and a flat-rate built-in.
//!
//! Architecture invariant: a calculator is a pure function of its input
//! (called inside the pure pricing core); it does no I/O.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::customer::Address;
use crate::error::{Error, Result};
use crate::id::LineId;
use crate::money::{Currency, Money, RoundingMode};

/// One taxable line: its amount after discounts.
#[derive(Debug, Clone)]
pub struct TaxableLine<'a> {
    /// The cart line.
    pub line_id: LineId,
    /// The variant's tax class.
    pub tax_class: &'a str,
    /// Amount to tax (after discounts), in minor units of the cart currency.
    pub amount: Money,
}

/// What a calculator may look at.
#[derive(Debug, Clone)]
pub struct TaxInput<'a> {
    /// The cart's currency.
    pub currency: Currency,
    /// The lines.
    pub lines: Vec<TaxableLine<'a>>,
    /// The shipping charge, if any.
    pub shipping: Option<Money>,
    /// Where the goods go (or the billing address), if known.
    pub address: Option<&'a Address>,
}

/// A named tax and its total, for the receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxLine {
    /// E.g. "VAT 20%".
    pub name: String,
    /// The rate as a fraction (0.2 for 20 %).
    #[serde(with = "rust_decimal::serde::str")]
    pub rate: Decimal,
    /// The tax collected under this name.
    pub amount: Money,
}

/// A calculator's answer. Amounts are in minor units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxBreakdown {
    /// Tax per input line, in the same order.
    pub lines: Vec<Money>,
    /// Tax on shipping.
    pub shipping: Money,
    /// Totals by named tax.
    pub summary: Vec<TaxLine>,
}

/// Computes tax for a priced cart.
pub trait TaxCalculator: Send + Sync {
    /// Tax for each line and for shipping. Prices are tax-exclusive.
    fn tax(&self, input: &TaxInput<'_>) -> Result<TaxBreakdown>;
}

/// One rate for everything, rounded per line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlatRateTax {
    name: String,
    #[serde(with = "rust_decimal::serde::str")]
    rate: Decimal,
    on_shipping: bool,
    rounding: RoundingMode,
}

impl FlatRateTax {
    /// A rate given as a fraction (`0.08` for 8 %), between 0 and 1.
    pub fn new(name: &str, rate: Decimal) -> Result<Self> {
        if rate.is_sign_negative() || rate > Decimal::ONE {
            return Err(Error::invalid("tax rate", "must be between 0 and 1"));
        }
        Ok(Self {
            name: crate::validate::required_text("tax name", name, 100)?,
            rate,
            on_shipping: true,
            rounding: RoundingMode::HalfUp,
        })
    }

    /// No tax at all.
    pub fn none() -> Self {
        Self {
            name: "Tax".into(),
            rate: Decimal::ZERO,
            on_shipping: false,
            rounding: RoundingMode::HalfUp,
        }
    }

    /// Whether shipping is taxed too (default yes).
    pub fn on_shipping(mut self, yes: bool) -> Self {
        self.on_shipping = yes;
        self
    }

    /// How each line's tax is rounded (default half-up).
    pub fn rounding(mut self, mode: RoundingMode) -> Self {
        self.rounding = mode;
        self
    }

    fn of(&self, amount: Money) -> Result<Money> {
        Ok(amount.checked_mul_decimal(self.rate)?.round(self.rounding))
    }
}

impl TaxCalculator for FlatRateTax {
    fn tax(&self, input: &TaxInput<'_>) -> Result<TaxBreakdown> {
        let lines = input
            .lines
            .iter()
            .map(|l| self.of(l.amount))
            .collect::<Result<Vec<_>>>()?;
        let shipping = match (self.on_shipping, input.shipping) {
            (true, Some(s)) => self.of(s)?,
            _ => Money::zero(input.currency),
        };
        let total = Money::sum(
            input.currency,
            lines.iter().chain(std::iter::once(&shipping)),
        )?;
        let summary = if total.is_zero() {
            Vec::new()
        } else {
            vec![TaxLine {
                name: self.name.clone(),
                rate: self.rate,
                amount: total,
            }]
        };
        Ok(TaxBreakdown {
            lines,
            shipping,
            summary,
        })
    }
}
