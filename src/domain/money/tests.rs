use super::*;

fn usd(s: &str) -> Money {
    Money::parse(s, Currency::USD).unwrap()
}

#[test]
fn minor_units_follow_iso_4217() {
    assert_eq!(Currency::USD.minor_units(), 2);
    assert_eq!(Currency::JPY.minor_units(), 0);
    assert_eq!(Currency::BHD.minor_units(), 3);
    assert_eq!(Currency::from_code(" usd ").unwrap(), Currency::USD);
    assert!(
        Currency::from_code("XAU").is_err(),
        "gold has no minor unit"
    );
    assert!(Currency::from_code("ZZZ").is_err());
}

#[test]
fn parse_rejects_sub_minor_amounts() {
    assert!(Money::parse("1.999", Currency::USD).is_err());
    assert!(Money::parse("1.5", Currency::JPY).is_err());
    assert_eq!(
        Money::parse("1.999", Currency::BHD)
            .unwrap()
            .to_minor()
            .unwrap(),
        1999
    );
    assert!(Money::parse("1e3", Currency::USD).is_err());
}

#[test]
fn rounding_modes() {
    let cases = [
        ("2.345", RoundingMode::HalfUp, "2.35"),
        ("2.345", RoundingMode::HalfEven, "2.34"),
        ("2.355", RoundingMode::HalfEven, "2.36"),
        ("2.345", RoundingMode::HalfDown, "2.34"),
        ("2.349", RoundingMode::TowardZero, "2.34"),
        ("2.341", RoundingMode::AwayFromZero, "2.35"),
        ("-2.345", RoundingMode::HalfUp, "-2.35"),
        ("-2.341", RoundingMode::Floor, "-2.35"),
        ("-2.349", RoundingMode::Ceiling, "-2.34"),
    ];
    for (input, mode, want) in cases {
        let m = Money::new(Decimal::from_str_exact(input).unwrap(), Currency::USD);
        assert_eq!(
            m.round(mode).amount(),
            Decimal::from_str_exact(want).unwrap(),
            "{input} {mode:?}"
        );
    }
}

#[test]
fn mixing_currencies_is_an_error() {
    let eur = Money::parse("1.00", Currency::EUR).unwrap();
    assert!(matches!(
        usd("1.00").checked_add(eur),
        Err(MoneyError::CurrencyMismatch { .. })
    ));
    assert!(matches!(
        usd("1.00").checked_sub(eur),
        Err(MoneyError::CurrencyMismatch { .. })
    ));
}

#[test]
fn overflow_is_an_error() {
    let huge = Money::new(Decimal::MAX, Currency::USD);
    assert!(matches!(
        huge.checked_add(usd("1.00")),
        Err(MoneyError::Overflow(_))
    ));
    assert!(matches!(
        huge.checked_mul_qty(2),
        Err(MoneyError::Overflow(_))
    ));
}

#[test]
fn a_result_that_would_round_is_an_error_never_a_silent_loss() {
    let max = Money::new(Decimal::MAX, Currency::USD);
    // rust_decimal answers MAX for MAX + 0.01: the cent would be lost.
    assert!(matches!(
        max.checked_add(usd("0.01")),
        Err(MoneyError::Overflow(_))
    ));
    assert!(matches!(
        Money::new(Decimal::MIN, Currency::USD).checked_sub(usd("0.01")),
        Err(MoneyError::Overflow(_))
    ));
    // Adding zero, at any scale, is exact.
    assert_eq!(max.checked_add(usd("0.00")).unwrap(), max);
    // Large, exact results still work.
    let big = Money::new(Decimal::from(MAX_AMOUNT_UNITS), Currency::USD);
    assert_eq!(
        big.checked_add(usd("0.01")).unwrap().to_string(),
        "1000000000000.01 USD"
    );
    let precise = Money::new(Decimal::new(1, 27), Currency::USD);
    assert!(matches!(
        precise.checked_mul_decimal(Decimal::new(1, 2)),
        Err(MoneyError::Overflow(_))
    ));
    assert_eq!(
        usd("10.00")
            .checked_mul_decimal(Decimal::new(75, 3))
            .unwrap(),
        Money::new(Decimal::new(75, 2), Currency::USD)
    );
    let fine = Money::new(
        Decimal::from_i128_with_scale(79_228_162_514_264_337_593_543_950_335, 1),
        Currency::USD,
    );
    assert!(matches!(
        fine.checked_mul_qty(2),
        Err(MoneyError::Overflow(_))
    ));
}

#[test]
fn entered_amounts_are_exact_and_bounded() {
    let bound = Money::new(Decimal::from(MAX_AMOUNT_UNITS), Currency::USD);
    assert_eq!(bound.entered().unwrap(), bound);
    let above = bound.checked_add(usd("0.01")).unwrap();
    match above.entered() {
        Err(MoneyError::Invalid { field, reason }) => {
            assert_eq!(field, "amount");
            assert!(reason.contains("1000000000000.01"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        Money::new(Decimal::new(1, 3), Currency::USD).entered(),
        Err(MoneyError::NotMinorUnits { .. })
    ));
}

#[test]
fn common_currencies_answer_their_iso_minor_units() {
    for code in [
        "USD", "EUR", "GBP", "CAD", "AUD", "CHF", "CNY", "SEK", "NOK", "DKK", "PLN", "NZD", "SGD",
        "HKD", "MXN", "BRL", "INR", "ZAR", "JPY", "KRW", "BHD", "KWD", "CLP",
    ] {
        let c = Currency::from_code(code).unwrap();
        assert_eq!(
            c.minor_units(),
            u32::from(c.0.exponent().unwrap()),
            "{code}"
        );
    }
}

#[test]
fn the_narrow_allocation_matches_the_wide_one() {
    use proptest::prelude::*;
    let mut runner = proptest::test_runner::TestRunner::default();
    let strategy = (
        -1_000_000_i64..1_000_000,
        prop::collection::vec(0_u64..5_000, 1..60),
        prop::collection::vec(0_u64..8, 60),
    );
    runner
        .run(&strategy, |(total, weights, ranks)| {
            let total = i128::from(total);
            let sum: i128 = weights.iter().map(|w| i128::from(*w)).sum();
            prop_assume!(sum > 0);
            // Ranks with ties (ties go to the earlier index), and beyond u32.
            let rank = |i: usize| match ranks.get(i) {
                Some(7) => u64::MAX,
                Some(r) => *r,
                None => 0,
            };
            let fast = allocate_minor_ranked(total, &weights, rank).unwrap();
            let wide = allocate_wide(total, &weights, sum, u64::try_from(sum).ok(), &rank).unwrap();
            prop_assert_eq!(fast, wide);
            Ok(())
        })
        .unwrap();
}

#[test]
fn allocation_largest_remainder() {
    // 1.5 and 3.5 cents: equal remainders, so the earlier part gets the extra cent.
    let parts = usd("0.05").allocate(&[3, 7]).unwrap();
    assert_eq!(parts, vec![usd("0.02"), usd("0.03")]);
    // 0.7 and 0.3 of a cent... scaled: 10 cents over 1:2 = 3.33 and 6.67 → 3 and 7.
    let parts = usd("0.10").allocate(&[1, 2]).unwrap();
    assert_eq!(parts, vec![usd("0.03"), usd("0.07")]);
    let parts = usd("-10.00").allocate(&[1, 1, 1]).unwrap();
    assert_eq!(parts, vec![usd("-3.34"), usd("-3.33"), usd("-3.33")]);
    assert!(usd("1.00").allocate(&[]).is_err());
    assert!(usd("1.00").allocate(&[0, 0]).is_err());
}

#[test]
fn display_pads_to_minor_units() {
    assert_eq!(usd("5").to_string(), "5.00 USD");
    assert_eq!(
        Money::from_minor(1500, Currency::JPY).to_string(),
        "1500 JPY"
    );
}

#[test]
fn serde_writes_amount_as_string() {
    let json = serde_json::to_string(&usd("12.50")).unwrap();
    assert_eq!(json, r#"{"amount":"12.50","currency":"USD"}"#);
    let back: Money = serde_json::from_str(&json).unwrap();
    assert_eq!(back, usd("12.50"));
}
