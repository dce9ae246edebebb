//! Shipping rates: the [`ShippingRates`] trait, a flat-rate built-in and a
//! [`ShippingTable`] of methods priced flat, by weight or by subtotal, free
//! above a threshold and limited to countries.
//!
//! Architecture invariant: a rate source is a pure function of its input
//! (called inside the pure pricing core), so it does no I/O. Rates that come
//! from a carrier's API are fetched before pricing and passed in as data.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::customer::Address;
use crate::customer::Country;
use crate::error::{Error, Result};
use crate::money::{Currency, Money};
use crate::validate::required_text;

pub mod carrier;

pub use carrier::{
    Carrier, Label, LabelRequest, MAX_CARRIER_RATES, RateRequest, TrackingEvent, TrackingStatus,
    verify_tracking,
};

/// What a rate source may look at.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ShippingInput<'a> {
    /// The cart's currency; rates must be in it.
    pub currency: Currency,
    /// Merchandise subtotal of the lines that ship.
    pub subtotal: Money,
    /// Total weight of the lines that ship, in grams.
    pub weight_grams: u64,
    /// Units that ship.
    pub items: u64,
    /// Where to, if known.
    pub destination: Option<&'a Address>,
    /// The smallest box any one unit fits in, longest side first (each
    /// side the largest among the units of known size); `None` when no
    /// unit's size is known.
    pub parcel_mm: Option<[u32; 3]>,
    /// The units' volume together, in cubic centimetres (those of known
    /// size).
    pub volume_cm3: u64,
    /// The location the parcel leaves from, when fulfilment routing chose
    /// one.
    pub origin: Option<crate::id::LocationId>,
    /// That location's address, when it has one.
    pub ship_from: Option<&'a Address>,
}

/// Adds `quantity` units of size `dims` (millimetres, any order) to a
/// parcel: each side of the box the largest seen, longest first, and the
/// volume in cubic centimetres.
pub(crate) fn add_units(
    parcel: &mut Option<[u32; 3]>,
    volume: &mut u64,
    mut dims: [u32; 3],
    quantity: u32,
) {
    dims.sort_unstable_by(|a, b| b.cmp(a));
    let p = parcel.get_or_insert([0; 3]);
    for (side, d) in p.iter_mut().zip(dims) {
        *side = (*side).max(d);
    }
    let unit = dims.iter().map(|d| u64::from(*d)).product::<u64>() / 1_000;
    *volume = volume.saturating_add(unit.saturating_mul(u64::from(quantity)));
}

/// One way to ship and its price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ShippingRate {
    /// The method's code, as chosen on the cart.
    pub code: String,
    /// Shown to the customer.
    pub name: String,
    /// The price, in the cart's currency.
    pub price: Money,
    /// The merchandise subtotal from which the method is free (for hints).
    #[serde(default)]
    pub free_from: Option<Money>,
}

impl ShippingRate {
    /// The method `code`, shown as `name`, at `price`.
    pub fn new(code: impl Into<String>, name: impl Into<String>, price: Money) -> Self {
        Self {
            code: code.into(),
            name: name.into(),
            price,
            free_from: None,
        }
    }

    /// The same rate, free from a merchandise subtotal of `threshold` (for
    /// "add X more for free shipping" hints).
    #[must_use]
    pub fn free_from(mut self, threshold: Money) -> Self {
        self.free_from = Some(threshold);
        self
    }
}

/// A source of shipping rates.
pub trait ShippingRates: Send + Sync {
    /// The methods offered for this input, with their prices.
    ///
    /// # Errors
    /// any error of the rate source; pricing fails with it (rates must be
    /// fetched before pricing, which is pure).
    fn rates(&self, input: &ShippingInput<'_>) -> Result<Vec<ShippingRate>>;
}

/// Methods with one fixed price per currency each.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlatRateShipping {
    methods: Vec<FlatMethod>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct FlatMethod {
    code: String,
    name: String,
    prices: BTreeMap<Currency, Money>,
}

impl FlatRateShipping {
    /// No methods yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a method with its price in each currency it is offered in.
    ///
    /// # Errors
    /// [`Error::Invalid`] or [`Error::LimitExceeded`] for input that does not
    /// validate, naming the field.
    pub fn with_method(mut self, code: &str, name: &str, prices: &[Money]) -> Result<Self> {
        let mut by_currency = BTreeMap::new();
        for p in prices {
            let p = p.entered()?;
            if p.is_negative() {
                return Err(crate::Error::invalid(
                    "shipping price",
                    "must not be negative",
                ));
            }
            by_currency.insert(p.currency(), p);
        }
        self.methods.push(FlatMethod {
            code: required_text(
                "shipping method code",
                code,
                crate::cart::MAX_METHOD_CODE_LEN,
            )?,
            name: required_text("shipping method name", name, 200)?,
            prices: by_currency,
        });
        Ok(self)
    }
}

impl ShippingRates for FlatRateShipping {
    fn rates(&self, input: &ShippingInput<'_>) -> Result<Vec<ShippingRate>> {
        Ok(self
            .methods
            .iter()
            .filter_map(|m| {
                m.prices.get(&input.currency).map(|price| ShippingRate {
                    code: m.code.clone(),
                    name: m.name.clone(),
                    price: *price,
                    free_from: None,
                })
            })
            .collect())
    }
}

/// Most methods in a [`ShippingTable`], and most tiers per method.
pub const MAX_SHIPPING_METHODS: usize = 100;

/// How a [`ShippingTable`] method is priced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum MethodPricing {
    /// One price.
    Flat {
        /// The price.
        price: Money,
    },
    /// By total weight: the tier with the highest `from_grams` reached.
    WeightTiers {
        /// `(from_grams, price)`, any order; one must start at 0.
        tiers: Vec<(u64, Money)>,
    },
    /// By merchandise subtotal: the tier with the highest `from` reached.
    SubtotalTiers {
        /// `(from, price)`, any order; one must start at zero.
        tiers: Vec<(Money, Money)>,
    },
}

/// One method of a [`ShippingTable`], offered in one currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ShippingMethod {
    /// The code chosen on the cart.
    pub code: String,
    /// Shown to the customer.
    pub name: String,
    /// The currency its prices are in; carts in others do not see it.
    pub currency: Currency,
    /// How it is priced.
    pub pricing: MethodPricing,
    /// Free from this merchandise subtotal (after discounts).
    #[serde(default)]
    pub free_from: Option<Money>,
    /// Only to these countries; empty means everywhere. With a country
    /// limit, a cart without a shipping address is not offered the method.
    #[serde(default)]
    pub countries: Vec<Country>,
    /// Heaviest parcel it takes, in grams.
    #[serde(default)]
    pub max_weight_grams: Option<u64>,
}

impl ShippingMethod {
    /// The method `code`, shown as `name`, priced by `pricing` in
    /// `currency`, to everywhere, with no weight limit.
    pub fn new(
        code: impl Into<String>,
        name: impl Into<String>,
        currency: Currency,
        pricing: MethodPricing,
    ) -> Self {
        Self {
            code: code.into(),
            name: name.into(),
            currency,
            pricing,
            free_from: None,
            countries: Vec::new(),
            max_weight_grams: None,
        }
    }
}

crate::domain::setters!(ShippingMethod { pricing: MethodPricing } into {
    max_weight_grams: Option<u64>,
});

impl ShippingMethod {
    /// A method with one price, everywhere.
    pub fn flat(code: &str, name: &str, price: Money) -> Self {
        Self {
            code: code.to_owned(),
            name: name.to_owned(),
            currency: price.currency(),
            pricing: MethodPricing::Flat { price },
            free_from: None,
            countries: Vec::new(),
            max_weight_grams: None,
        }
    }

    /// Makes it free from `subtotal`.
    pub fn free_from(mut self, subtotal: Money) -> Self {
        self.free_from = Some(subtotal);
        self
    }

    /// Limits it to these countries (ISO codes).
    ///
    /// # Errors
    /// [`Error::Invalid`] for a code that is not ISO 3166-1 alpha-2.
    pub fn countries(mut self, codes: &[&str]) -> Result<Self> {
        self.countries = codes
            .iter()
            .map(|c| Country::new(c))
            .collect::<Result<_>>()?;
        Ok(self)
    }

    fn validate(&self) -> Result<()> {
        required_text(
            "shipping method code",
            &self.code,
            crate::cart::MAX_METHOD_CODE_LEN,
        )?;
        required_text("shipping method name", &self.name, 200)?;
        let check = |m: &Money| -> Result<()> {
            if m.currency() != self.currency {
                return Err(Error::CurrencyMismatch {
                    left: self.currency,
                    right: m.currency(),
                });
            }
            m.entered()?;
            if m.is_negative() {
                return Err(Error::invalid("shipping price", "must not be negative"));
            }
            Ok(())
        };
        match &self.pricing {
            MethodPricing::Flat { price } => check(price)?,
            MethodPricing::WeightTiers { tiers } => {
                if tiers.is_empty()
                    || tiers.len() > MAX_SHIPPING_METHODS
                    || !tiers.iter().any(|t| t.0 == 0)
                {
                    return Err(Error::invalid(
                        "weight tiers",
                        "need 1 to 100 tiers, one from 0 g",
                    ));
                }
                tiers.iter().try_for_each(|t| check(&t.1))?;
            }
            MethodPricing::SubtotalTiers { tiers } => {
                if tiers.is_empty()
                    || tiers.len() > MAX_SHIPPING_METHODS
                    || !tiers.iter().any(|t| t.0.is_zero())
                {
                    return Err(Error::invalid(
                        "subtotal tiers",
                        "need 1 to 100 tiers, one from zero",
                    ));
                }
                for (from, price) in tiers {
                    check(from)?;
                    check(price)?;
                }
            }
        }
        if let Some(f) = &self.free_from {
            check(f)?;
        }
        Ok(())
    }

    fn price(&self, input: &ShippingInput<'_>) -> Option<Money> {
        if input.currency != self.currency {
            return None;
        }
        if self
            .max_weight_grams
            .is_some_and(|max| input.weight_grams > max)
        {
            return None;
        }
        if !self.countries.is_empty() {
            let country = input.destination.map(|a| a.country)?;
            if !self.countries.contains(&country) {
                return None;
            }
        }
        if let Some(free) = &self.free_from
            && input.subtotal.amount() >= free.amount()
        {
            return Some(Money::zero(self.currency));
        }
        match &self.pricing {
            MethodPricing::Flat { price } => Some(*price),
            MethodPricing::WeightTiers { tiers } => tiers
                .iter()
                .filter(|(from, _)| *from <= input.weight_grams)
                .max_by_key(|(from, _)| *from)
                .map(|(_, p)| *p),
            MethodPricing::SubtotalTiers { tiers } => tiers
                .iter()
                .filter(|(from, _)| from.amount() <= input.subtotal.amount())
                .max_by(|a, b| a.0.amount().cmp(&b.0.amount()))
                .map(|(_, p)| *p),
        }
    }
}

/// Shipping methods priced flat, by weight or by subtotal, optionally free
/// above a subtotal and limited to countries or a weight.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShippingTable {
    methods: Vec<ShippingMethod>,
}

impl ShippingTable {
    /// No methods.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a method (validated).
    ///
    /// # Errors
    /// [`Error::Invalid`] or [`Error::LimitExceeded`] for input that does not
    /// validate, naming the field.
    pub fn with_method(mut self, method: ShippingMethod) -> Result<Self> {
        method.validate()?;
        if self.methods.len() >= MAX_SHIPPING_METHODS {
            return Err(Error::LimitExceeded {
                what: "shipping methods",
                max: MAX_SHIPPING_METHODS as u64,
            });
        }
        self.methods.push(method);
        Ok(self)
    }
}

impl ShippingRates for ShippingTable {
    fn rates(&self, input: &ShippingInput<'_>) -> Result<Vec<ShippingRate>> {
        Ok(self
            .methods
            .iter()
            .filter_map(|m| {
                m.price(input).map(|price| ShippingRate {
                    code: m.code.clone(),
                    name: m.name.clone(),
                    price,
                    free_from: m.free_from,
                })
            })
            .collect())
    }
}
