//! Unit tests, compiled only under #[cfg(test)].
use super::*;
use crate::pricing::fixtures::{catalog, usd};
use crate::shipping::FlatRateShipping;
use crate::tax::{FlatRateTax, TaxBreakdown};

#[test]
fn unit_prices_rank_lines_by_variant_whatever_the_cart_order() {
    let (catalog, ids) = catalog(&["2.50", "10.00", "1.00"]);
    let (shipping, tax) = (FlatRateShipping::new(), FlatRateTax::none());
    let ctx = PricingContext::new(&catalog, &shipping, &tax, Utc::now());
    let mut forward = Cart::new(Currency::USD, None, ctx.now);
    let mut backward = Cart::new(Currency::USD, None, ctx.now);
    for (q, id) in (1..).zip(&ids) {
        assert!(forward.add_line(*id, q).is_ok());
    }
    for (q, id) in (1..).zip(&ids).collect::<Vec<_>>().into_iter().rev() {
        assert!(backward.add_line(*id, q).is_ok());
    }
    let ranks = |cart: &Cart| -> Vec<(VariantId, u32, i128)> {
        let (work, _) = unit_prices(cart, &ctx)
            .map_err(|e| e.to_string())
            .unwrap_or_default();
        let mut r: Vec<_> = work
            .iter()
            .map(|w| (w.entry.variant.id(), w.rank, w.subtotal))
            .collect();
        r.sort();
        r
    };
    let got = ranks(&forward);
    assert_eq!(got, ranks(&backward));
    assert_eq!(got.len(), 3);
    // Subtotals are unit × quantity in minor units.
    let subtotals: Vec<i128> = ids
        .iter()
        .filter_map(|id| got.iter().find(|r| r.0 == *id).map(|r| r.2))
        .collect();
    assert_eq!(subtotals, vec![250, 2000, 300]);
}

#[test]
fn unit_prices_name_what_is_missing() {
    let (catalog, ids) = catalog(&["", "1.00"]);
    let (shipping, tax) = (FlatRateShipping::new(), FlatRateTax::none());
    let ctx = PricingContext::new(&catalog, &shipping, &tax, Utc::now());
    let mut cart = Cart::new(Currency::USD, None, ctx.now);
    let no_price = ids.first().copied().unwrap_or_default();
    assert!(cart.add_line(no_price, 1).is_ok());
    assert!(matches!(
        unit_prices(&cart, &ctx),
        Err(Error::NoPrice { variant_id, .. }) if variant_id == no_price
    ));
    let mut cart = Cart::new(Currency::USD, None, ctx.now);
    let unknown = VariantId::new();
    assert!(cart.add_line(unknown, 1).is_ok());
    assert!(matches!(
        unit_prices(&cart, &ctx),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn rates_and_taxes_from_plugins_are_checked() {
    let rate = |price: Money| ShippingRate {
        code: "std".into(),
        name: "Standard".into(),
        price,
        free_from: None,
    };
    assert!(check_rate(&rate(usd("4.99")), Currency::USD).is_ok());
    assert!(check_rate(&rate(usd("-1.00")), Currency::USD).is_err());
    assert!(matches!(
        check_rate(&rate(Money::zero(Currency::EUR)), Currency::USD),
        Err(Error::CurrencyMismatch { .. })
    ));
    let inexact = Money::new(rust_decimal::Decimal::new(1001, 3), Currency::USD);
    assert!(check_rate(&rate(inexact), Currency::USD).is_err());
    assert_eq!(checked_tax(usd("1.25"), Currency::USD).ok(), Some(125));
    assert!(checked_tax(usd("-0.01"), Currency::USD).is_err());
    assert!(checked_tax(Money::zero(Currency::EUR), Currency::USD).is_err());
}

#[test]
fn free_shipping_hint_says_what_is_missing_below_the_threshold_only() {
    let rates = [ShippingRate {
        code: "std".into(),
        name: "Standard".into(),
        price: usd("5.00"),
        free_from: Some(usd("50.00")),
    }];
    let hint = |subtotal: &str, chosen: Option<&str>| {
        let input = ShippingInput {
            currency: Currency::USD,
            subtotal: usd(subtotal),
            weight_grams: 0,
            items: 1,
            destination: None,
            parcel_mm: None,
            volume_cm3: 0,
            origin: None,
            ship_from: None,
        };
        let mut hints = Vec::new();
        assert!(free_shipping_hints(&rates, &input, chosen, &mut hints).is_ok());
        hints.into_iter().map(|h| h.missing).collect::<Vec<_>>()
    };
    assert_eq!(hint("42.50", None), vec![usd("7.50")]);
    assert_eq!(hint("42.50", Some("std")), vec![usd("7.50")]);
    assert!(hint("42.50", Some("express")).is_empty());
    assert!(hint("50.00", None).is_empty());
}

/// A calculator that forgets the last line.
struct Forgetful;
impl TaxCalculator for Forgetful {
    fn tax(&self, input: &TaxInput<'_>) -> Result<TaxBreakdown> {
        let mut lines: Vec<Money> = input
            .lines
            .iter()
            .map(|_| Money::zero(input.currency))
            .collect();
        lines.pop();
        Ok(TaxBreakdown {
            lines,
            shipping: Money::zero(input.currency),
            summary: Vec::new(),
            prices_include_tax: false,
        })
    }
}

#[test]
fn a_calculator_that_loses_a_line_is_refused() {
    let (catalog, ids) = catalog(&["3.00", "4.00"]);
    let shipping = FlatRateShipping::new();
    let ctx = PricingContext::new(&catalog, &shipping, &Forgetful, Utc::now());
    let mut cart = Cart::new(Currency::USD, None, ctx.now);
    for id in &ids {
        assert!(cart.add_line(*id, 1).is_ok());
    }
    assert!(matches!(
        price(&cart, &ctx),
        Err(Error::Invalid { field, .. }) if field == "tax calculator"
    ));
}
