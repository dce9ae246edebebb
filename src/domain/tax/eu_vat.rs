//! VAT in the European Union, charged by destination: the One-Stop Shop
//! (OSS) rules for distance sales of goods to consumers, reverse charge
//! for businesses of another member state, and exports free of VAT.
//!
//! [`EuVat`] is a [`TaxCalculator`]: pure, like every calculator. It
//! decides, for each cart:
//!
//! 1. **Outside the EU** (the destination is not a member state): an
//!    export, no VAT.
//! 2. **Reverse charge**: the buyer gave a VAT number
//!    ([`TaxCustomer::tax_id`](super::TaxCustomer::tax_id)) of a member state other than the shop's
//!    whose format is valid ([`vat_number_state`]) and which the shop's
//!    [`VatNumberCheck`] accepts (a VIES-style look-up the embedding
//!    program made beforehand; by default every well-formed number): no
//!    VAT, and a zero tax line named "VAT reverse charge" says why.
//! 3. **Otherwise** VAT at the destination's rate for each line's
//!    category (its variant's tax class; a category the state has no rate
//!    for is taxed at its `standard` rate) — or at the home state's rates
//!    when the shop is under the OSS threshold and chose
//!    [`EuVat::home_rates`]. Shipping is taxed at the rate of
//!    [`EuVat::shipping_category`] (`standard` by default).
//!
//! With [`EuVat::prices_include_vat`], catalog prices are gross and the
//! **same gross price is charged everywhere**: the VAT inside it is worked
//! out at the destination's rate (a 119.00 item holds 19.00 of VAT in
//! Germany, 19.83 in France). Reverse charge and exports then take no VAT
//! out of the price (price for businesses without VAT if they buy from
//! you).

use std::collections::BTreeMap;
use std::sync::Arc;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{TaxBreakdown, TaxCalculator, TaxInput, TaxLine};
use crate::customer::Country;
use crate::error::{Error, Result};
use crate::money::{Money, RoundingMode};

/// The EU member states' standard VAT rates as of 1 January 2025, in
/// percent (Greece under its ISO code GR). Rates change: check them
/// against the Commission's list before relying on them.
pub const STANDARD_RATES_2025: [(&str, &str); 27] = [
    ("AT", "20"),
    ("BE", "21"),
    ("BG", "20"),
    ("CY", "19"),
    ("CZ", "21"),
    ("DE", "19"),
    ("DK", "25"),
    ("EE", "22"),
    ("ES", "21"),
    ("FI", "25.5"),
    ("FR", "20"),
    ("GR", "24"),
    ("HR", "25"),
    ("HU", "27"),
    ("IE", "23"),
    ("IT", "22"),
    ("LT", "21"),
    ("LU", "17"),
    ("LV", "21"),
    ("MT", "18"),
    ("NL", "21"),
    ("PL", "23"),
    ("PT", "23"),
    ("RO", "19"),
    ("SE", "25"),
    ("SI", "22"),
    ("SK", "23"),
];

/// Each member state's VAT number prefix and the shapes of what follows
/// (`#` a digit, `A` a letter, `X` either, anything else itself).
const VAT_FORMATS: [(&str, &str, &[&str]); 27] = [
    ("AT", "AT", &["U########"]),
    ("BE", "BE", &["##########", "#########"]),
    ("BG", "BG", &["#########", "##########"]),
    ("CY", "CY", &["########A"]),
    ("CZ", "CZ", &["########", "#########", "##########"]),
    ("DE", "DE", &["#########"]),
    ("DK", "DK", &["########"]),
    ("EE", "EE", &["#########"]),
    ("ES", "ES", &["X#######X"]),
    ("FI", "FI", &["########"]),
    ("FR", "FR", &["XX#########"]),
    ("EL", "GR", &["#########"]),
    ("HR", "HR", &["###########"]),
    ("HU", "HU", &["########"]),
    ("IE", "IE", &["#######A", "#######AA", "#A#####A"]),
    ("IT", "IT", &["###########"]),
    ("LT", "LT", &["#########", "############"]),
    ("LU", "LU", &["########"]),
    ("LV", "LV", &["###########"]),
    ("MT", "MT", &["########"]),
    ("NL", "NL", &["#########B##"]),
    ("PL", "PL", &["##########"]),
    ("PT", "PT", &["#########"]),
    (
        "RO",
        "RO",
        &[
            "##",
            "###",
            "####",
            "#####",
            "######",
            "#######",
            "########",
            "#########",
            "##########",
        ],
    ),
    ("SE", "SE", &["############"]),
    ("SI", "SI", &["########"]),
    ("SK", "SK", &["##########"]),
];

/// The member state a VAT number belongs to, when its format is valid
/// (a format check only: the number may still not exist). Spaces, dots
/// and dashes are ignored, letters may be lower-case; Greek numbers carry
/// the prefix `EL` (the state is GR).
pub fn vat_number_state(number: &str) -> Option<Country> {
    let n: String = number
        .chars()
        .filter(|c| !matches!(c, ' ' | '.' | '-'))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let (prefix, rest) = (n.get(..2)?, n.get(2..)?);
    let (_, state, shapes) = VAT_FORMATS.iter().find(|(p, _, _)| *p == prefix)?;
    shapes
        .iter()
        .any(|shape| fits(rest, shape))
        .then(|| Country::new(state).ok())
        .flatten()
}

fn fits(value: &str, shape: &str) -> bool {
    value.len() == shape.len()
        && value.chars().zip(shape.chars()).all(|(c, s)| match s {
            '#' => c.is_ascii_digit(),
            'A' => c.is_ascii_uppercase(),
            'X' => c.is_ascii_digit() || c.is_ascii_uppercase(),
            other => c == other,
        })
}

/// Whether a well-formed VAT number may be reverse-charged: the shop's
/// VIES-style check. A calculator is pure, so look numbers up beforehand
/// (when the customer gives one, say) and answer from what you found.
pub trait VatNumberCheck: Send + Sync {
    /// Whether `number` (normalized, with its prefix) is a valid VAT
    /// registration.
    fn is_valid(&self, number: &str) -> bool;
}

/// Every well-formed number is accepted.
#[derive(Debug, Clone, Copy, Default)]
pub struct FormatOnly;

impl VatNumberCheck for FormatOnly {
    fn is_valid(&self, _number: &str) -> bool {
        true
    }
}

/// EU VAT by destination (see the [module](self)).
#[derive(Clone, Serialize, Deserialize)]
pub struct EuVat {
    home: Country,
    rates: BTreeMap<Country, BTreeMap<String, Decimal>>,
    prices_include_vat: bool,
    home_rates: bool,
    shipping_category: String,
    mode: RoundingMode,
    #[serde(skip, default = "format_only")]
    check: Arc<dyn VatNumberCheck>,
}

fn format_only() -> Arc<dyn VatNumberCheck> {
    Arc::new(FormatOnly)
}

impl std::fmt::Debug for EuVat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EuVat")
            .field("home", &self.home)
            .field("states", &self.rates.len())
            .field("prices_include_vat", &self.prices_include_vat)
            .field("home_rates", &self.home_rates)
            .finish_non_exhaustive()
    }
}

impl EuVat {
    /// A shop established in `home` (a member state), with every state's
    /// [standard rate](STANDARD_RATES_2025); prices exclude VAT; rounded
    /// per line, half up; destination rates (OSS).
    ///
    /// # Errors
    /// [`Error::Invalid`] when `home` is not a member state.
    pub fn new(home: &str) -> Result<Self> {
        let home = Country::new(home)?;
        let mut rates: BTreeMap<Country, BTreeMap<String, Decimal>> = BTreeMap::new();
        for (state, percent) in STANDARD_RATES_2025 {
            let rate = Decimal::from_str_exact(percent)
                .map_err(|_| Error::invalid("VAT rate", percent))?
                / Decimal::ONE_HUNDRED;
            rates
                .entry(Country::new(state)?)
                .or_default()
                .insert("standard".to_owned(), rate);
        }
        if !rates.contains_key(&home) {
            return Err(Error::invalid(
                "home state",
                format!("{home} is not an EU member state"),
            ));
        }
        Ok(Self {
            home,
            rates,
            prices_include_vat: false,
            home_rates: false,
            shipping_category: "standard".to_owned(),
            mode: RoundingMode::HalfUp,
            check: format_only(),
        })
    }

    /// Sets `state`'s rate for a category (a tax class: "reduced",
    /// "books"), as a fraction (0.07 for 7 %).
    ///
    /// # Errors
    /// [`Error::Invalid`] for a state that is not a member, or a rate
    /// outside 0 to 1; [`Error::LimitExceeded`] for a category over 100
    /// characters.
    pub fn rate(mut self, state: &str, category: &str, rate: Decimal) -> Result<Self> {
        let state = Country::new(state)?;
        let category = crate::validate::required_text("VAT category", category, 100)?;
        if rate.is_sign_negative() || rate > Decimal::ONE {
            return Err(Error::invalid("VAT rate", "must be between 0 and 1"));
        }
        self.rates
            .get_mut(&state)
            .ok_or_else(|| Error::invalid("VAT state", format!("{state} is not a member state")))?
            .insert(category, rate);
        Ok(self)
    }

    /// Catalog prices include VAT, and the same gross price is charged in
    /// every country.
    pub fn prices_include_vat(mut self, yes: bool) -> Self {
        self.prices_include_vat = yes;
        self
    }

    /// Charges the home state's rates to consumers everywhere in the EU
    /// (a shop under the OSS threshold of 10,000 EUR a year).
    pub fn home_rates(mut self, yes: bool) -> Self {
        self.home_rates = yes;
        self
    }

    /// The category shipping is taxed as (`standard` by default).
    ///
    /// # Errors
    /// [`Error::Invalid`] or [`Error::LimitExceeded`] for an empty or
    /// over-long category.
    pub fn shipping_category(mut self, category: &str) -> Result<Self> {
        self.shipping_category = crate::validate::required_text("VAT category", category, 100)?;
        Ok(self)
    }

    /// Where VAT is rounded (per line, half up by default).
    pub fn rounding(mut self, mode: RoundingMode) -> Self {
        self.mode = mode;
        self
    }

    /// Checks VAT numbers with `check` before reverse-charging them.
    pub fn vat_number_check(mut self, check: Arc<dyn VatNumberCheck>) -> Self {
        self.check = check;
        self
    }

    /// The rate for `category` in `state`, or its standard rate.
    fn rate_in(&self, state: Country, category: &str) -> Option<Decimal> {
        let rates = self.rates.get(&state)?;
        rates
            .get(category)
            .or_else(|| rates.get("standard"))
            .copied()
    }

    /// VAT in `amount` (minor units) at `rate`, rounded.
    fn vat(&self, amount: i128, rate: Decimal) -> Result<i128> {
        let scale = 10_i128.pow(rate.scale());
        let m = rate.mantissa();
        let num = amount.checked_mul(m).ok_or(Error::Overflow("VAT"))?;
        let den = if self.prices_include_vat {
            scale.checked_add(m).ok_or(Error::Overflow("VAT"))?
        } else {
            scale
        };
        Ok(crate::money::div_round(num, den, self.mode))
    }
}

impl TaxCalculator for EuVat {
    fn tax(&self, input: &TaxInput<'_>) -> Result<TaxBreakdown> {
        let currency = input.currency;
        let zero = Money::zero(currency);
        let none = |summary: Vec<TaxLine>| {
            let mut b =
                TaxBreakdown::new(vec![zero; input.lines.len()], zero).with_summary(summary);
            b.prices_include_tax = self.prices_include_vat;
            b
        };
        let destination = input.address.map_or(self.home, |a| a.country);
        if !self.rates.contains_key(&destination) {
            return Ok(none(Vec::new()));
        }
        let reverse = input
            .customer
            .and_then(|c| c.tax_id.as_deref())
            .and_then(|id| vat_number_state(id).map(|state| (id, state)))
            .is_some_and(|(id, state)| state != self.home && self.check.is_valid(id));
        if reverse {
            return Ok(none(vec![TaxLine::new(
                "VAT reverse charge",
                Decimal::ZERO,
                zero,
            )]));
        }
        let state = if self.home_rates {
            self.home
        } else {
            destination
        };
        let mut summary: BTreeMap<(String, Decimal), i128> = BTreeMap::new();
        let mut tax_of = |amount: Money, category: &str| -> Result<Money> {
            let Some(rate) = self.rate_in(state, category) else {
                return Ok(zero);
            };
            let vat = self.vat(amount.to_minor()?, rate)?;
            *summary
                .entry((
                    format!("VAT {state} {}%", (rate * Decimal::ONE_HUNDRED).normalize()),
                    rate,
                ))
                .or_default() += vat;
            Ok(Money::new(
                Decimal::try_from_i128_with_scale(vat, currency.minor_units())
                    .map_err(|_| Error::Overflow("VAT"))?,
                currency,
            ))
        };
        let lines = input
            .lines
            .iter()
            .map(|l| tax_of(l.amount, l.tax_class))
            .collect::<Result<Vec<_>>>()?;
        let shipping = match input.shipping {
            Some(s) => tax_of(s, &self.shipping_category)?,
            None => zero,
        };
        let summary = summary
            .into_iter()
            .filter(|(_, v)| *v != 0)
            .map(|((name, rate), v)| {
                Ok(TaxLine::new(
                    name,
                    rate,
                    Money::new(
                        Decimal::try_from_i128_with_scale(v, currency.minor_units())
                            .map_err(|_| Error::Overflow("VAT"))?,
                        currency,
                    ),
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut b = TaxBreakdown::new(lines, shipping).with_summary(summary);
        b.prices_include_tax = self.prices_include_vat;
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vat_numbers_are_checked_by_their_state_format() {
        for (number, state) in [
            ("DE123456789", "DE"),
            ("de 123.456.789", "DE"),
            ("ATU12345678", "AT"),
            ("EL123456789", "GR"),
            ("NL123456789B01", "NL"),
            ("FRXX123456789", "FR"),
            ("ESX1234567X", "ES"),
            ("IE1234567WA", "IE"),
            ("RO12", "RO"),
        ] {
            assert_eq!(
                vat_number_state(number),
                Some(Country::new(state).unwrap_or_else(|_| unreachable!())),
                "{number}"
            );
        }
        for bad in [
            "",
            "D",
            "DE",
            "DE12345678",
            "DE1234567890",
            "ATU1234567",
            "GR123456789",
            "NL123456789A01",
            "US123456789",
            "DE12345678X",
            "XX",
            "ÄÖ12",
        ] {
            assert_eq!(vat_number_state(bad), None, "{bad}");
        }
    }

    #[test]
    fn only_member_states_can_be_home_or_have_rates() {
        assert!(EuVat::new("US").is_err());
        assert!(EuVat::new("DE").is_ok());
        let vat = EuVat::new("DE").unwrap_or_else(|_| unreachable!());
        assert!(
            vat.clone()
                .rate("CH", "standard", Decimal::new(8, 2))
                .is_err()
        );
        assert!(
            vat.clone()
                .rate("FR", "reduced", Decimal::new(2, 0))
                .is_err()
        );
        assert!(vat.rate("FR", "reduced", Decimal::new(55, 3)).is_ok());
    }
}
