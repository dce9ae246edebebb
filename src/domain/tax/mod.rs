//! Tax: the [`TaxCalculator`] trait, a flat-rate built-in and a [`TaxTable`]
//! of rates by country, region and tax class; and the [`TaxProvider`]
//! port for tax computed by a service, quoted before pricing and kept as
//! committed documents after the sale ([`provider`]).
//!
//! Architecture invariant: a calculator is a pure function of its input
//! (called inside the pure pricing core); it does no I/O. A provider's
//! quotes reach pricing as data, through a calculator that looks them up.

pub mod eu_vat;
pub mod provider;

pub use eu_vat::{EuVat, FormatOnly, VatNumberCheck, vat_number_state};

pub use provider::{
    QuoteLine, TaxAddress, TaxAdjustmentRequest, TaxCommitRequest, TaxCommitted, TaxCustomer,
    TaxProvider, TaxQuoteRequest,
};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::customer::Address;
use crate::customer::Country;
use crate::error::{Error, Result};
use crate::id::{ChannelId, LineId, VariantId};
use crate::money::{Currency, Money, RoundingMode, allocate_minor};
use crate::validate::required_text;
use std::collections::BTreeMap;

/// One taxable line: its amount after discounts.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TaxableLine<'a> {
    /// The cart line.
    pub line_id: LineId,
    /// The variant.
    pub variant_id: VariantId,
    /// The variant's tax class (its product tax code).
    pub tax_class: &'a str,
    /// Units.
    pub quantity: u32,
    /// Amount to tax (after discounts), in minor units of the cart currency.
    pub amount: Money,
}

/// What a calculator may look at.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TaxInput<'a> {
    /// The cart's currency.
    pub currency: Currency,
    /// The lines.
    pub lines: Vec<TaxableLine<'a>>,
    /// The shipping charge, if any.
    pub shipping: Option<Money>,
    /// Where the goods go (or the billing address), if known.
    pub address: Option<&'a Address>,
    /// Where they ship from, when the shop set an origin
    /// ([`EngineBuilder::ship_from`](crate::EngineBuilder::ship_from)).
    pub ship_from: Option<&'a Address>,
    /// Who buys: groups, exemption certificate, tax id; `None` when
    /// pricing was given no customer facts for tax.
    pub customer: Option<&'a TaxCustomer>,
    /// The sales channel, when the cart is in one.
    pub channel: Option<ChannelId>,
}

/// A named tax and its total, for the receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaxLine {
    /// E.g. "VAT 20%".
    pub name: String,
    /// The rate as a fraction (0.2 for 20 %).
    #[serde(with = "rust_decimal::serde::str")]
    pub rate: Decimal,
    /// The tax collected under this name.
    pub amount: Money,
}

impl TaxLine {
    /// `amount` of the tax `name` at `rate` (a fraction: 0.2 for 20 %).
    pub fn new(name: impl Into<String>, rate: Decimal, amount: Money) -> Self {
        Self {
            name: name.into(),
            rate,
            amount,
        }
    }
}

/// A calculator's answer. Amounts are in minor units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaxBreakdown {
    /// Tax per input line, in the same order.
    pub lines: Vec<Money>,
    /// Tax on shipping.
    pub shipping: Money,
    /// Totals by named tax.
    pub summary: Vec<TaxLine>,
    /// Whether the amounts given already included the tax (so totals must
    /// not add it again).
    #[serde(default)]
    pub prices_include_tax: bool,
}

impl TaxBreakdown {
    /// Tax per line (in the input's order) and on shipping, added to the
    /// prices given, with no summary (add one with
    /// [`with_summary`](Self::with_summary)).
    pub fn new(lines: Vec<Money>, shipping: Money) -> Self {
        Self {
            lines,
            shipping,
            summary: Vec::new(),
            prices_include_tax: false,
        }
    }

    /// The same answer with totals by named tax.
    #[must_use]
    pub fn with_summary(mut self, summary: Vec<TaxLine>) -> Self {
        self.summary = summary;
        self
    }

    /// The same answer, saying the prices given already included the tax.
    #[must_use]
    pub fn included_in_prices(mut self) -> Self {
        self.prices_include_tax = true;
        self
    }
}

/// Computes tax for a priced cart.
pub trait TaxCalculator: Send + Sync {
    /// Tax for each line and for shipping, and whether the amounts given
    /// included it ([`TaxBreakdown::prices_include_tax`]).
    ///
    /// # Errors
    /// any error of the calculator; pricing fails with it. Amounts returned are
    /// checked (currency, exact, not negative).
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
    ///
    /// # Errors
    /// [`Error::Invalid`] or [`Error::LimitExceeded`] for input that does not
    /// validate, naming the field.
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
        // In minor units: amount × mantissa / 10^scale, rounded once.
        let minor = amount.to_minor()?;
        let n = minor
            .checked_mul(self.rate.mantissa())
            .ok_or_else(|| Error::Overflow("tax"))?;
        let d = 10_i128
            .checked_pow(self.rate.scale())
            .ok_or_else(|| Error::Overflow("tax"))?;
        let tax = crate::money::div_round(n, d, self.rounding);
        let currency = amount.currency();
        let value = Decimal::try_from_i128_with_scale(tax, currency.minor_units())
            .map_err(|_| Error::Overflow("tax"))?;
        Ok(Money::new(value, currency))
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
            prices_include_tax: false,
        })
    }
}

/// Where tax is rounded to minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TaxRounding {
    /// Each line's (and shipping's) tax is rounded by itself.
    #[default]
    PerLine,
    /// Each rate's tax is rounded once on the sum of its amounts, then split
    /// back over the lines by largest remainder (so lines still sum exactly).
    PerTotal,
}

/// One rate in a [`TaxTable`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TaxRate {
    /// E.g. "VAT 20%".
    pub name: String,
    /// The country it applies in.
    pub country: Country,
    /// The region (state, province) it is limited to; `None` for the whole country.
    #[serde(default)]
    pub region: Option<String>,
    /// The tax class it applies to (a variant's `tax_class`).
    pub tax_class: String,
    /// The rate as a fraction (0.2 for 20 %), 0 to 1.
    #[serde(with = "rust_decimal::serde::str")]
    pub rate: Decimal,
}

impl TaxRate {
    /// The tax `name` at `rate` (a fraction, 0 to 1) in `country`, on the
    /// "standard" tax class, in the whole country.
    pub fn new(name: impl Into<String>, country: Country, rate: Decimal) -> Self {
        Self {
            name: name.into(),
            country,
            region: None,
            tax_class: "standard".to_owned(),
            rate,
        }
    }
}

crate::domain::setters!(TaxRate { country: Country, rate: Decimal } into {
    name: String,
    region: Option<String>,
    tax_class: String,
});

/// Tax rates by country, region and tax class.
///
/// A line is taxed at the rate for the destination's country, region and
/// the variant's tax class; a region-specific rate wins over the
/// country-wide one. With no address, or no rate for it, the tax is zero.
/// Shipping is taxed as the tax class `shipping_class` (none: untaxed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaxTable {
    rates: Vec<TaxRate>,
    prices_include_tax: bool,
    rounding: TaxRounding,
    mode: RoundingMode,
    shipping_class: Option<String>,
}

impl Default for TaxTable {
    fn default() -> Self {
        Self::new()
    }
}

impl TaxTable {
    /// No rates; prices exclude tax; rounded per line, half up; shipping untaxed.
    pub fn new() -> Self {
        Self {
            rates: Vec::new(),
            prices_include_tax: false,
            rounding: TaxRounding::PerLine,
            mode: RoundingMode::HalfUp,
            shipping_class: None,
        }
    }

    /// Adds a rate.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a rate outside 0 to 1, or a bad country,
    /// region or class; [`Error::LimitExceeded`] past the number of rates
    /// allowed.
    pub fn with_rate(
        mut self,
        name: &str,
        country: &str,
        region: Option<&str>,
        tax_class: &str,
        rate: Decimal,
    ) -> Result<Self> {
        if rate.is_sign_negative() || rate > Decimal::ONE {
            return Err(Error::invalid("tax rate", "must be between 0 and 1"));
        }
        let region = match region {
            Some(r) => Some(required_text("tax region", r, 100)?.to_uppercase()),
            None => None,
        };
        self.rates.push(TaxRate {
            name: required_text("tax name", name, 100)?,
            country: Country::new(country)?,
            region,
            tax_class: required_text("tax class", tax_class, 100)?,
            rate,
        });
        Ok(self)
    }

    /// Whether catalog prices include tax (as in most of Europe).
    pub fn prices_include_tax(mut self, yes: bool) -> Self {
        self.prices_include_tax = yes;
        self
    }

    /// Where tax is rounded.
    pub fn rounding(mut self, rounding: TaxRounding, mode: RoundingMode) -> Self {
        self.rounding = rounding;
        self.mode = mode;
        self
    }

    /// Taxes shipping as this tax class.
    pub fn shipping_class(mut self, class: &str) -> Self {
        self.shipping_class = Some(class.to_owned());
        self
    }

    fn rate_for(&self, address: Option<&Address>, class: &str) -> Option<&TaxRate> {
        let address = address?;
        let region = address.region.as_str();
        let mut best: Option<&TaxRate> = None;
        for r in &self.rates {
            if r.country != address.country || r.tax_class != class {
                continue;
            }
            match &r.region {
                Some(reg) if reg == region => return Some(r),
                Some(_) => {}
                None => best = best.or(Some(r)),
            }
        }
        best
    }

    /// The exact (unrounded) tax in an amount, as a fraction of minor units
    /// `(numerator, denominator)`.
    fn exact(&self, amount: i128, rate: Decimal) -> Result<(i128, i128)> {
        let scale = 10_i128.pow(rate.scale());
        let m = rate.mantissa();
        let num = amount
            .checked_mul(m)
            .ok_or_else(|| Error::Overflow("tax"))?;
        if self.prices_include_tax {
            // tax = amount × r / (1 + r)
            Ok((
                num,
                scale.checked_add(m).ok_or_else(|| Error::Overflow("tax"))?,
            ))
        } else {
            Ok((num, scale))
        }
    }
}

/// Each taxed amount with its rate, in minor units: the lines, then the
/// shipping charge last; `None` where no rate applies.
type Rated<'t> = Vec<Option<(&'t TaxRate, i128)>>;

impl TaxTable {
    /// The rate for each line and for shipping, with the amounts.
    fn rated<'t>(&'t self, input: &TaxInput<'_>) -> Result<Rated<'t>> {
        let mut items: Rated<'t> = Vec::with_capacity(input.lines.len() + 1);
        for l in &input.lines {
            items.push(match self.rate_for(input.address, l.tax_class) {
                Some(r) => Some((r, l.amount.to_minor()?)),
                None => None,
            });
        }
        let shipping_rate = match (&self.shipping_class, input.shipping) {
            (Some(class), Some(s)) => self.rate_for(input.address, class).map(|r| (r, s)),
            _ => None,
        };
        items.push(match shipping_rate {
            Some((r, s)) => Some((r, s.to_minor()?)),
            None => None,
        });
        Ok(items)
    }

    /// Each item's tax, rounded on its own.
    fn per_line(&self, items: &Rated<'_>) -> Result<Vec<i128>> {
        let mut taxes = vec![0_i128; items.len()];
        for (item, tax) in items.iter().zip(taxes.iter_mut()) {
            if let Some((r, amount)) = item {
                let (n, d) = self.exact(*amount, r.rate)?;
                *tax = crate::money::div_round(n, d, self.mode);
            }
        }
        Ok(taxes)
    }

    /// Each rate's exact total rounded once, then allocated to its items in
    /// proportion (largest remainder).
    fn per_total(&self, items: &Rated<'_>) -> Result<Vec<i128>> {
        let mut taxes = vec![0_i128; items.len()];
        let mut groups: BTreeMap<(&str, Decimal), Vec<usize>> = BTreeMap::new();
        for (i, item) in items.iter().enumerate() {
            if let Some((r, _)) = item {
                groups.entry((r.name.as_str(), r.rate)).or_default().push(i);
            }
        }
        for ((_, rate), members) in groups {
            let mut num = 0_i128;
            let mut den = 1_i128;
            let mut weights = Vec::with_capacity(members.len());
            for i in &members {
                let amount = items.get(*i).and_then(|x| x.map(|(_, a)| a)).unwrap_or(0);
                let (n, d) = self.exact(amount, rate)?;
                num = num.checked_add(n).ok_or_else(|| Error::Overflow("tax"))?;
                den = d;
                weights.push(u64::try_from(n.max(0)).map_err(|_| Error::Overflow("tax"))?);
            }
            let total = crate::money::div_round(num, den, self.mode);
            if weights.iter().all(|w| *w == 0) {
                continue;
            }
            for (i, part) in members.iter().zip(allocate_minor(total, &weights)?) {
                if let Some(t) = taxes.get_mut(*i) {
                    *t = part;
                }
            }
        }
        Ok(taxes)
    }
}

/// One summary line per rate (name and rate) that taxed something.
fn summarize<'m>(
    items: &Rated<'_>,
    amounts: impl Iterator<Item = &'m Money>,
) -> Result<Vec<TaxLine>> {
    let mut summary: Vec<TaxLine> = Vec::new();
    for (item, amount) in items.iter().zip(amounts) {
        let Some((r, _)) = item else { continue };
        if amount.is_zero() {
            continue;
        }
        match summary
            .iter_mut()
            .find(|s| s.name == r.name && s.rate == r.rate)
        {
            Some(s) => s.amount = s.amount.checked_add(*amount)?,
            None => summary.push(TaxLine {
                name: r.name.clone(),
                rate: r.rate,
                amount: *amount,
            }),
        }
    }
    Ok(summary)
}

impl TaxCalculator for TaxTable {
    fn tax(&self, input: &TaxInput<'_>) -> Result<TaxBreakdown> {
        let currency = input.currency;
        let money = |minor: i128| -> Result<Money> {
            let d = Decimal::try_from_i128_with_scale(minor, currency.minor_units())
                .map_err(|_| Error::Overflow("tax"))?;
            Ok(Money::new(d, currency))
        };
        let items = self.rated(input)?;
        let mut taxes = match self.rounding {
            TaxRounding::PerLine => self.per_line(&items)?,
            TaxRounding::PerTotal => self.per_total(&items)?,
        };
        let shipping = money(taxes.pop().unwrap_or(0))?;
        let lines = taxes
            .iter()
            .map(|t| money(*t))
            .collect::<Result<Vec<_>>>()?;
        let summary = summarize(&items, lines.iter().chain(std::iter::once(&shipping)))?;
        Ok(TaxBreakdown {
            lines,
            shipping,
            summary,
            prices_include_tax: self.prices_include_tax,
        })
    }
}
