use super::*;
static NO_METADATA: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
use crate::pricing::fixtures::catalog;
use crate::pricing::{CustomerFacts, LineFilter};

/// Runs `f` on the work lines of one line per price, each of `quantity`.
fn with_env<R>(prices: &[&str], quantity: u32, f: impl FnOnce(&Env<'_>) -> R) -> R {
    let (catalog, ids) = catalog(prices);
    let set = PromotionSet::default();
    let work: Vec<WorkLine<'_>> = ids
        .iter()
        .zip(0..)
        .filter_map(|(id, rank)| {
            let entry = catalog.get(id)?;
            let unit = entry.variant.price(Currency::USD)?.to_minor().ok()?;
            Some(WorkLine {
                id: LineId::new(),
                entry,
                quantity,
                unit,
                subtotal: unit * i128::from(quantity),
                rank,
                metadata: &NO_METADATA,
                promotable: true,
            })
        })
        .collect();
    let customer = CustomerFacts::default();
    let usage = HashMap::new();
    let env = Env {
        currency: Currency::USD,
        lines: &work,
        subtotal: work.iter().map(|l| l.subtotal).sum(),
        items: u64::from(quantity) * work.len() as u64,
        shipping_method: None,
        customer: &customer,
        channel: None,
        draft_order: false,
        now: chrono::Utc::now(),
        catalog: &catalog,
        usage: &usage,
        rounding: RoundingMode::HalfEven,
        index: set.index_cart(&work),
        shipping_groups: &[],
        shipments: Vec::new(),
        gross: None,
        allocation: Allocation::Net,
        remainder: Remainder::LargestRemainder,
        compounding: Compounding::Discounted,
    };
    f(&env)
}

#[test]
fn a_gross_split_holds_each_part_to_what_its_line_still_costs() {
    with_env(&["1.00", "1.00"], 1, |env| {
        // Line 0: 1.00 left, no tax. Line 1: 0.10 left of 1.00, with
        // 100 % tax, so it weighs 0.20 and would take more than 0.10.
        let env = Env {
            gross: Some(vec![100, 200]),
            allocation: Allocation::Gross,
            index: CartIndex::default(),
            shipping_groups: &[],
            shipments: Vec::new(),
            ..*env
        };
        for amount in [1, 50, 105, 110, 500] {
            let mut effect = Effect::default();
            split(&mut effect, amount, &[(0, 100), (1, 10)], &env).unwrap();
            let total: i128 = effect.lines.iter().map(|(_, a)| a).sum();
            assert_eq!(total, amount.min(110), "{amount}: {effect:?}");
            for (i, a) in &effect.lines {
                assert!(*a <= [100, 10][*i], "{amount}: {effect:?}");
            }
        }
        // 60 over 1.00 : 0.20 gives 50 and 10 (by net it would be 55 : 5).
        let mut effect = Effect::default();
        split(&mut effect, 60, &[(0, 100), (1, 10)], &env).unwrap();
        assert_eq!(effect.lines, [(0, 50), (1, 10)]);
    });
}

#[test]
fn the_value_of_some_units_is_floored_and_never_overflows() {
    with_env(&["3.33"], 3, |env| {
        // 9.99 left over 3 units, then 10.00 (not a multiple of 3).
        let left = Left {
            env,
            remaining: &[999],
            spent: &[],
            unit_cap: None,
        };
        assert_eq!(left.value(0, 1), 333);
        assert_eq!(left.value(0, 3), 999);
        assert_eq!(left.value(0, 7), 999, "never more units than the line has");
        let left = Left {
            env,
            remaining: &[1000],
            spent: &[],
            unit_cap: None,
        };
        assert_eq!(left.value(0, 1), 333);
        assert_eq!(left.value(0, 2), 666);
        let huge = Left {
            env,
            remaining: &[i128::MAX],
            spent: &[],
            unit_cap: None,
        };
        assert!(huge.value(0, 2) > 0);
    });
}

#[test]
fn tidy_merges_clamps_and_drops() {
    with_env(&["1.00", "2.00", "3.00"], 1, |env| {
        let left = Left {
            env,
            remaining: &[100, 200, 300],
            spent: &[],
            unit_cap: None,
        };
        let effect = Effect {
            lines: vec![(2, 250), (0, 80), (2, 100), (1, 0), (0, 50)],
            shipping: vec![(0, 900), (1, 40)],
            ..Effect::default()
        };
        let tidy = left.tidy(effect, &[500, 100]);
        assert_eq!(tidy.lines, vec![(0, 100), (2, 300)]);
        assert_eq!(tidy.shipping, vec![(0, 500), (1, 40)]);
    });
}

#[test]
fn an_amount_in_another_currency_is_a_reason_not_an_error() {
    with_env(&["10.00"], 2, |env| {
        let left = Left {
            env,
            remaining: &[2000],
            spent: &[],
            unit_cap: None,
        };
        let eur = Money::zero(Currency::EUR);
        let answer = left.amount_off_items(&LineFilter::Any, &eur, AmountPer::Unit, None);
        assert!(matches!(answer, Ok(Err(Rejection::WrongCurrency { .. }))));
        assert!(matches!(left.amount_off_order(&eur), Ok(Err(_))));
    });
}

#[test]
fn a_percent_off_some_units_takes_their_share_only() {
    with_env(&["10.00", "4.00"], 4, |env| {
        let left = Left {
            env,
            remaining: &[4000, 1600],
            spent: &[],
            unit_cap: None,
        };
        let answer = left.percent_off_items(&LineFilter::Any, Decimal::from(50), None, Some(1));
        let effect = answer.ok().and_then(|a| a.ok()).unwrap_or_default();
        assert_eq!(effect.lines, vec![(0, 500), (1, 200)]);
    });
}
