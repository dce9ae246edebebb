//! Property tests for the invariants of money and pricing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::HashMap;

use cartwright::cart::Cart;
use cartwright::catalog::{CatalogEntry, NewProduct, NewVariant, Product, Status};
use cartwright::money::{Currency, Money, RoundingMode};
use cartwright::pricing::{PricingContext, price};
use cartwright::shipping::FlatRateShipping;
use cartwright::tax::FlatRateTax;
use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use rust_decimal::Decimal;

fn currency() -> impl Strategy<Value = Currency> {
    prop_oneof![
        Just(Currency::USD),
        Just(Currency::JPY),
        Just(Currency::BHD),
        Just(Currency::EUR)
    ]
}

fn mode() -> impl Strategy<Value = RoundingMode> {
    prop_oneof![
        Just(RoundingMode::HalfUp),
        Just(RoundingMode::HalfEven),
        Just(RoundingMode::HalfDown),
        Just(RoundingMode::TowardZero),
        Just(RoundingMode::AwayFromZero),
        Just(RoundingMode::Floor),
        Just(RoundingMode::Ceiling),
    ]
}

/// Rounds `mantissa / 10^scale` to `exp` decimals with integer arithmetic only.
fn reference_round(mantissa: i64, scale: u32, exp: u32, mode: RoundingMode) -> Decimal {
    if scale <= exp {
        return Decimal::new(mantissa, scale);
    }
    let m = i128::from(mantissa);
    let d = 10i128.pow(scale - exp);
    let (q, r) = (m / d, m % d);
    let sign = if m < 0 { -1 } else { 1 };
    let twice = 2 * r.abs();
    let away = match mode {
        RoundingMode::HalfUp => twice >= d,
        RoundingMode::HalfDown => twice > d,
        RoundingMode::HalfEven => twice > d || (twice == d && q % 2 != 0),
        RoundingMode::TowardZero => false,
        RoundingMode::AwayFromZero => r != 0,
        RoundingMode::Floor => r != 0 && sign < 0,
        RoundingMode::Ceiling => r != 0 && sign > 0,
        _ => unreachable!(),
    };
    let q = if away { q + sign } else { q };
    Decimal::from_i128_with_scale(q, exp)
}

/// `PROPTEST_CASES` overrides the number of cases (for example 100000 on demand).
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #[test]
    fn allocation_sums_exactly_and_is_fair(
        total_minor in -10_000_000i64..10_000_000,
        weights in prop::collection::vec(0u64..1_000_000, 1..40),
        c in currency(),
    ) {
        prop_assume!(weights.iter().any(|w| *w > 0));
        let total = Money::from_minor(total_minor, c);
        let parts = total.allocate(&weights).unwrap();
        prop_assert_eq!(parts.len(), weights.len());
        prop_assert_eq!(Money::sum(c, &parts).unwrap(), total);
        let wsum: i128 = weights.iter().map(|w| i128::from(*w)).sum();
        for (part, w) in parts.iter().zip(&weights) {
            prop_assert!(part.is_exact());
            // Same sign as the whole, never more than one minor unit from the exact share.
            if total_minor >= 0 { prop_assert!(!part.is_negative()); } else { prop_assert!(part.amount() <= Decimal::ZERO); }
            let exact = i128::from(total_minor) * i128::from(*w);
            let got = part.to_minor().unwrap() * wsum;
            prop_assert!((got - exact).abs() < wsum, "part {} too far from its share", part);
        }
    }

    #[test]
    fn allocation_is_deterministic(total in 0i64..1_000_000, weights in prop::collection::vec(0u64..100, 1..20)) {
        prop_assume!(weights.iter().any(|w| *w > 0));
        let m = Money::from_minor(total, Currency::USD);
        prop_assert_eq!(m.allocate(&weights).unwrap(), m.allocate(&weights).unwrap());
    }

    #[test]
    fn rounding_agrees_with_integer_reference(mantissa in any::<i64>(), scale in 0u32..8, c in currency(), mode in mode()) {
        let m = Money::new(Decimal::new(mantissa, scale), c);
        let got = m.round(mode);
        let want = reference_round(mantissa, scale, c.minor_units(), mode);
        prop_assert_eq!(got.amount(), want);
        prop_assert!(got.is_exact());
    }

    #[test]
    fn mixed_currencies_always_error(a in any::<i64>(), b in any::<i64>(), c1 in currency(), c2 in currency()) {
        prop_assume!(c1 != c2);
        let x = Money::from_minor(a, c1);
        let y = Money::from_minor(b, c2);
        prop_assert!(x.checked_add(y).is_err());
        prop_assert!(x.checked_sub(y).is_err());
        prop_assert!(x.checked_cmp(&y).is_err());
        prop_assert!(x.allocate_by(&[y]).is_err());
    }

    #[test]
    fn arithmetic_never_panics(a in any::<i64>(), sa in 0u32..28, b in any::<i64>(), sb in 0u32..28, q in any::<u32>()) {
        let x = Money::new(Decimal::new(a, sa), Currency::USD);
        let y = Money::new(Decimal::new(b, sb), Currency::USD);
        let _ = x.checked_add(y);
        let _ = x.checked_sub(y);
        let _ = x.checked_mul_qty(q);
        let _ = x.checked_mul_decimal(y.amount());
        let _ = x.to_minor();
        let _ = x.round(RoundingMode::HalfEven).allocate(&[1, 2, 3]);
    }

    #[test]
    fn serde_round_trips(a in any::<i64>(), c in currency()) {
        let m = Money::from_minor(a, c);
        let json = serde_json::to_string(&m).unwrap();
        prop_assert_eq!(serde_json::from_str::<Money>(&json).unwrap(), m);
    }
}

struct Fixture {
    catalog: HashMap<cartwright::id::VariantId, CatalogEntry>,
    ids: Vec<cartwright::id::VariantId>,
}

fn fixture(prices_minor: &[i64]) -> Fixture {
    let product = Product::new(
        NewProduct::new("P").status(Status::Active).variants(
            prices_minor
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    NewVariant::shipped(format!("V{i}"))
                        .prices(vec![Money::from_minor(*p, Currency::USD)])
                        .requires_shipping(i % 2 == 0)
                        .weight_grams(10)
                        .tax_class(String::new())
                        .status(Status::Active)
                })
                .collect(),
        ),
    )
    .unwrap();
    let mut catalog = HashMap::new();
    let mut ids = Vec::new();
    for v in product.variants() {
        ids.push(v.id());
        catalog.insert(v.id(), CatalogEntry::of(&product, v.id()).unwrap());
    }
    Fixture { catalog, ids }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(64)))]

    #[test]
    fn pricing_invariants(
        prices in prop::collection::vec(0i64..1_000_000, 1..30),
        quantities in prop::collection::vec(1u32..50, 30),
        rate_bps in 0i64..3000,
        ship in 0i64..5000,
    ) {
        let f = fixture(&prices);
        let shipping = FlatRateShipping::new()
            .with_method("std", "Standard", &[Money::from_minor(ship, Currency::USD)]).unwrap();
        let tax = FlatRateTax::new("T", Decimal::new(rate_bps, 4)).unwrap();
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let ctx = PricingContext::new(&f.catalog, &shipping, &tax, now);

        let mut cart = Cart::new(Currency::USD, None, now);
        for (id, q) in f.ids.iter().zip(&quantities) {
            cart.add_line(*id, *q).unwrap();
        }
        cart.set_shipping_method("std").unwrap();
        let priced = price(&cart, &ctx).unwrap();
        common::world::explanations_agree_with_amounts(&priced);

        // Totals are the sums of their parts, exact, and never negative.
        let c = Currency::USD;
        prop_assert_eq!(priced.subtotal, Money::sum(c, priced.lines.iter().map(|l| &l.subtotal)).unwrap());
        let line_totals = Money::sum(c, priced.lines.iter().map(|l| &l.total)).unwrap();
        let shipping_total = priced.shipping.as_ref().map_or(Money::zero(c), |s| s.amount.checked_add(s.tax).unwrap());
        prop_assert_eq!(priced.total, line_totals.checked_add(shipping_total).unwrap());
        prop_assert!(!priced.total.is_negative());
        for l in &priced.lines {
            prop_assert!(l.total.is_exact() && l.tax.is_exact());
            prop_assert!(!l.discount.is_negative());
            prop_assert!(l.discount.checked_cmp(&l.subtotal).unwrap().is_le());
        }

        // Deterministic, and the order of lines does not change the totals.
        prop_assert_eq!(&price(&cart, &ctx).unwrap(), &priced);
        let mut reversed = Cart::new(Currency::USD, None, now);
        for (id, q) in f.ids.iter().zip(&quantities).rev() {
            reversed.add_line(*id, *q).unwrap();
        }
        reversed.set_shipping_method("std").unwrap();
        let r = price(&reversed, &ctx).unwrap();
        prop_assert_eq!(r.total, priced.total);
        prop_assert_eq!(r.tax_total, priced.tax_total);
        prop_assert_eq!(r.subtotal, priced.subtotal);
    }
}

proptest! {
    /// However a line's units come back, one return at a time, the refunds
    /// add up to exactly the line total and no unit gets more than a cent
    /// more than another.
    #[test]
    fn unit_shares_sum_to_the_line_in_any_return_sequence(
        total_minor in 0i64..10_000_000,
        quantity in 1u32..60,
        cuts in prop::collection::vec(1u32..10, 1..20),
    ) {
        let total = Money::from_minor(total_minor, Currency::USD);
        let shares = cartwright::order::unit_shares(total, quantity).unwrap();
        prop_assert_eq!(shares.len(), quantity as usize);
        let min = shares.iter().map(|s| s.to_minor().unwrap()).min().unwrap();
        let max = shares.iter().map(|s| s.to_minor().unwrap()).max().unwrap();
        prop_assert!(max - min <= 1);
        // Return in batches given by `cuts`, taking shares in unit order.
        let mut refunded = Money::zero(Currency::USD);
        let mut next = 0usize;
        for cut in cuts.iter().cycle() {
            if next >= shares.len() { break; }
            let take = (*cut as usize).min(shares.len() - next);
            for s in &shares[next..next + take] { refunded = refunded.checked_add(*s).unwrap(); }
            next += take;
        }
        prop_assert_eq!(refunded, total);
    }
}
