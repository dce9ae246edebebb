//! Shipping rates: the [`ShippingRates`] trait and a flat-rate built-in.
//!
//! Architecture invariant: a rate source is a pure function of its input
//! (called inside the pure pricing core), so it does no I/O. Rates that come
//! from a carrier's API are fetched before pricing and passed in as data.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::customer::Address;
use crate::error::Result;
use crate::money::{Currency, Money};
use crate::validate::required_text;

/// What a rate source may look at.
#[derive(Debug, Clone)]
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
}

/// One way to ship and its price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShippingRate {
    /// The method's code, as chosen on the cart.
    pub code: String,
    /// Shown to the customer.
    pub name: String,
    /// The price, in the cart's currency.
    pub price: Money,
}

/// A source of shipping rates.
pub trait ShippingRates: Send + Sync {
    /// The methods offered for this input, with their prices.
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
    pub fn with_method(mut self, code: &str, name: &str, prices: &[Money]) -> Result<Self> {
        let mut by_currency = BTreeMap::new();
        for p in prices {
            let p = p.exact()?;
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
                })
            })
            .collect())
    }
}
