//! Worked examples: one or more per action, condition and stacking mode,
//! each with its expected amounts computed by hand in the comments.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::world::{Extra, World, discounts, money, usd};

use cartwright::catalog::{NewProduct, NewVariant, Product};
use cartwright::id::{CustomerGroupId, CustomerId, VariantId};
use cartwright::money::{Currency, RoundingMode};
use cartwright::pricing::{
    Action, AmountPer, BudgetPolicy, BundleItem, Comparison, Condition, Coupon, GroupPrice, Limits,
    LineFilter, Op, Outcome, PriceBook, PriceList, PriceListKind, PriceSource, Promotion,
    PromotionSettings, QuantityTier, Rejection, Reward, RewardUnits, Stacking, StackingPolicy,
    SubtotalTier, Tiers,
};
use cartwright::shipping::{MethodPricing, ShippingMethod, ShippingTable};
use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;

/// A $10.00 (summer, tag "sale"), B $25.00 (summer, kitchen),
/// C $3.33 (kitchen), D $100.00 (tag "premium").
struct Shop {
    w: World,
    a: VariantId,
    b: VariantId,
    c: VariantId,
    d: VariantId,
}

fn shop() -> Shop {
    let mut w = World::new();
    let (summer, kitchen) = (w.summer, w.kitchen);
    let a = w.item(
        "A",
        &[usd("10.00"), money("9.00", Currency::EUR)],
        &[summer],
        &[],
        &["Sale"],
    );
    let b = w.item("B", &[usd("25.00")], &[summer], &[kitchen], &[]);
    let c = w.item("C", &[usd("3.33")], &[], &[kitchen], &[]);
    let d = w.item("D", &[usd("100.00")], &[], &[], &["premium"]);
    w.shipping = Box::new(
        ShippingTable::new()
            .with_method(ShippingMethod::flat("std", "Standard", usd("5.99")))
            .unwrap(),
    );
    Shop { w, a, b, c, d }
}

fn pct(p: i64) -> Decimal {
    Decimal::from(p)
}

fn percent_items(target: LineFilter, percent: i64) -> Action {
    Action::PercentOffItems {
        target,
        percent: pct(percent),
        max_discount: None,
        max_quantity_per_line: None,
    }
}

fn summer(s: &Shop) -> LineFilter {
    LineFilter::Collection {
        op: Op::In,
        ids: vec![s.w.summer],
    }
}

fn kitchen(s: &Shop) -> LineFilter {
    LineFilter::Category {
        op: Op::In,
        ids: vec![s.w.kitchen],
    }
}

fn applied_amount(p: &cartwright::pricing::PricedCart, promo: &Promotion) -> String {
    match &p.outcome(promo.id).unwrap().outcome {
        Outcome::Applied { amount, .. } => amount.amount().to_string(),
        other => panic!("{} did not apply: {other:?}", promo.name),
    }
}

fn rejection(p: &cartwright::pricing::PricedCart, promo: &Promotion) -> Rejection {
    p.outcome(promo.id)
        .unwrap_or_else(|| panic!("{} not considered", promo.name))
        .rejection()
        .cloned()
        .unwrap_or_else(|| panic!("{} applied", promo.name))
}

// ----- percent and fixed off items --------------------------------------

#[test]
fn percent_off_a_collection() {
    let s = shop();
    // A: 3 × 10.00 = 30.00 → 10 % = 3.00; B: 25.00 → 2.50; D not in summer.
    let p = Promotion::new("10% summer", percent_items(summer(&s), 10));
    let cart = s.w.cart(&[(s.a, 3), (s.b, 1), (s.d, 1)]);
    let priced = s.w.price(&cart, vec![p.clone()]);
    assert_eq!(discounts(&priced), ["3.00", "2.50", "0.00"]);
    assert_eq!(priced.discount_total, usd("5.50"));
    assert_eq!(priced.total, usd("149.50"));
    assert_eq!(applied_amount(&priced, &p), "5.50");
    let adj = &priced.lines[0].adjustments[0];
    assert_eq!((adj.promotion_id, &*adj.label), (Some(p.id), "10% summer"));
}

#[test]
fn percent_off_limited_units_per_line() {
    let s = shop();
    // 20 % of 2 of the 3 units of A: 20.00 × 20 % = 4.00.
    let p = Promotion::new(
        "20% on two",
        Action::PercentOffItems {
            target: LineFilter::Any,
            percent: pct(20),
            max_discount: None,
            max_quantity_per_line: Some(2),
        },
    );
    let priced = s.w.price(&s.w.cart(&[(s.a, 3)]), vec![p]);
    assert_eq!(discounts(&priced), ["4.00"]);
}

#[test]
fn percent_with_a_cap_is_split_by_largest_remainder() {
    let s = shop();
    // 50 % of A×3 (30.00) and B (25.00) would be 27.50; the cap is 10.00.
    // Split 1000 cents by weights 1500 : 1250 → 545.45 and 454.54; the
    // spare cent goes to the larger remainder (B: .54 vs A: .45).
    let p = Promotion::new(
        "half, at most 10",
        Action::PercentOffItems {
            target: LineFilter::Any,
            percent: pct(50),
            max_discount: Some(usd("10.00")),
            max_quantity_per_line: None,
        },
    );
    let priced = s.w.price(&s.w.cart(&[(s.a, 3), (s.b, 1)]), vec![p]);
    assert_eq!(discounts(&priced), ["5.45", "4.55"]);
}

#[test]
fn fixed_amount_per_unit_per_line_and_split() {
    let s = shop();
    let cart = s.w.cart(&[(s.b, 2), (s.c, 3)]);
    let off = |per| {
        Promotion::new(
            "1 off",
            Action::AmountOffItems {
                target: kitchen(&s),
                amount: usd("1.00"),
                per,
                max_quantity_per_line: None,
            },
        )
    };
    // Per unit: 2 × 1.00 and 3 × 1.00.
    assert_eq!(
        discounts(&s.w.price(&cart, vec![off(AmountPer::Unit)])),
        ["2.00", "3.00"]
    );
    // Per line: 1.00 each.
    assert_eq!(
        discounts(&s.w.price(&cart, vec![off(AmountPer::Line)])),
        ["1.00", "1.00"]
    );
    // Split 5.00 over B 50.00 and C 9.99: 500 × 5000/5999 = 416.74,
    // 500 × 999/5999 = 83.26 → 416 + 83 = 499; the spare cent to B (.74).
    let split = Promotion::new(
        "5 off kitchen",
        Action::AmountOffItems {
            target: kitchen(&s),
            amount: usd("5.00"),
            per: AmountPer::Split,
            max_quantity_per_line: None,
        },
    );
    assert_eq!(discounts(&s.w.price(&cart, vec![split])), ["4.17", "0.83"]);
    // 5.00 per unit on a 3.33 item takes 3.33 per unit, never more.
    let big = Promotion::new(
        "5 off each",
        Action::AmountOffItems {
            target: kitchen(&s),
            amount: usd("5.00"),
            per: AmountPer::Unit,
            max_quantity_per_line: None,
        },
    );
    let priced = s.w.price(&s.w.cart(&[(s.c, 3)]), vec![big]);
    assert_eq!(discounts(&priced), ["9.99"]);
    assert_eq!(priced.total, usd("0.00"));
}

// ----- order-level -----------------------------------------------------

#[test]
fn percent_off_the_order_rounds_once_then_splits() {
    let s = shop();
    // 10 % of 13.33 = 1.333 → 1.33 (half up), split 1000 : 333 →
    // 99.77 and 33.22 → 99 + 33 = 132; the spare cent to A (.77).
    let p = Promotion::new(
        "10% order",
        Action::PercentOffOrder {
            percent: pct(10),
            max_discount: None,
        },
    );
    let priced = s.w.price(&s.w.cart(&[(s.a, 1), (s.c, 1)]), vec![p]);
    assert_eq!(discounts(&priced), ["1.00", "0.33"]);
    assert_eq!(priced.discount_total, usd("1.33"));
}

#[test]
fn rounding_mode_is_configurable() {
    let s = shop();
    // 10 % of 13.33 = 1.333: floor and ceiling give 1.33 and 1.34.
    let p = Promotion::new(
        "10% order",
        Action::PercentOffOrder {
            percent: pct(10),
            max_discount: None,
        },
    );
    let cart = s.w.cart(&[(s.a, 1), (s.c, 1)]);
    for (mode, want) in [
        (RoundingMode::Floor, "1.33"),
        (RoundingMode::Ceiling, "1.34"),
    ] {
        let extra = Extra {
            settings: PromotionSettings::default().rounding(mode),
            ..Extra::default()
        };
        let priced = s.w.price_with(&cart, vec![p.clone()], &extra);
        assert_eq!(priced.discount_total.amount().to_string(), want, "{mode:?}");
    }
}

#[test]
fn fixed_off_the_order_never_goes_below_zero() {
    let s = shop();
    // 20.00 off 13.33 takes 13.33.
    let p = Promotion::new(
        "20 off",
        Action::AmountOffOrder {
            amount: usd("20.00"),
        },
    );
    let priced = s.w.price(&s.w.cart(&[(s.a, 1), (s.c, 1)]), vec![p]);
    assert_eq!(discounts(&priced), ["10.00", "3.33"]);
    assert_eq!(priced.total, usd("0.00"));
}

// ----- fixed price and bundles -----------------------------------------

#[test]
fn fixed_price_never_raises_a_price() {
    let s = shop();
    let p = Promotion::new(
        "all at 8",
        Action::FixedPrice {
            target: LineFilter::Any,
            price: usd("8.00"),
            max_quantity_per_line: None,
        },
    );
    // A: 3 × (10.00 − 8.00) = 6.00; C at 3.33 stays 3.33.
    let priced = s.w.price(&s.w.cart(&[(s.a, 3), (s.c, 1)]), vec![p.clone()]);
    assert_eq!(discounts(&priced), ["6.00", "0.00"]);
    let only_c = s.w.price(&s.w.cart(&[(s.c, 1)]), vec![p.clone()]);
    assert_eq!(rejection(&only_c, &p), Rejection::NothingToDiscount);
}

#[test]
fn bundle_price() {
    let s = shop();
    // One A (10.00) and one B (25.00) together for 30.00: 5.00 off, split
    // 1000 : 2500 → 142.86 and 357.14 → 142 + 357; the spare cent to A (.86).
    let p = Promotion::new(
        "A+B for 30",
        Action::Bundle {
            items: vec![
                BundleItem {
                    filter: LineFilter::Variant {
                        op: Op::In,
                        ids: vec![s.a],
                    },
                    quantity: 1,
                },
                BundleItem {
                    filter: LineFilter::Variant {
                        op: Op::In,
                        ids: vec![s.b],
                    },
                    quantity: 1,
                },
            ],
            price: usd("30.00"),
            max_bundles: None,
        },
    );
    let priced = s.w.price(&s.w.cart(&[(s.a, 2), (s.b, 1)]), vec![p.clone()]);
    assert_eq!(discounts(&priced), ["1.43", "3.57"]);
    // Two of each: two bundles, 10.00 off.
    let two = s.w.price(&s.w.cart(&[(s.a, 2), (s.b, 2)]), vec![p]);
    assert_eq!(two.discount_total, usd("10.00"));
}

// ----- buy X get Y ------------------------------------------------------

fn b2g1(percent: i64, max: Option<u32>) -> Promotion {
    Promotion::new(
        "buy 2 get 1",
        Action::BuyXGetY {
            buy: LineFilter::Any,
            buy_quantity: 2,
            get: LineFilter::Any,
            get_quantity: 1,
            percent: pct(percent),
            max_applications: max,
        },
    )
}

#[test]
fn buy_two_get_the_cheapest_free() {
    let s = shop();
    // Units: C C A A (3.33, 3.33, 10, 10). First: C free, paid by A A.
    // Second: the other C, but no units left to pay for it → stops.
    let priced =
        s.w.price(&s.w.cart(&[(s.a, 2), (s.c, 2)]), vec![b2g1(100, None)]);
    assert_eq!(discounts(&priced), ["0.00", "3.33"]);
    // C C C A A A: C free (A A), C free (A C) → 6.66.
    let priced =
        s.w.price(&s.w.cart(&[(s.a, 3), (s.c, 3)]), vec![b2g1(100, None)]);
    assert_eq!(discounts(&priced), ["0.00", "6.66"]);
    // At most once, at 50 %: half of one C on a 3-unit line:
    // 9.99 × 1/3 × 50 % = 1.665 → 1.67.
    let priced =
        s.w.price(&s.w.cart(&[(s.a, 3), (s.c, 3)]), vec![b2g1(50, Some(1))]);
    assert_eq!(discounts(&priced), ["0.00", "1.67"]);
}

/// The outcome of promotion `p` in `priced`.
fn outcome_of<'a>(priced: &'a cartwright::pricing::PricedCart, p: &Promotion) -> &'a Outcome {
    &priced.outcome(p.id).unwrap().outcome
}

#[test]
fn the_reward_can_be_the_dearest_unit() {
    let s = shop();
    // Buy 1, get 1 at half price, the dearer one rewarded: B (25.00) half
    // price, paid for by A (10.00) → 12.50. With the default (cheapest):
    // A half price (5.00), paid for by B.
    let bogo = |reward_units| {
        Promotion::new(
            "second at half price",
            Action::BuyXGetY {
                buy: LineFilter::Any,
                buy_quantity: 1,
                get: LineFilter::Any,
                get_quantity: 1,
                percent: pct(50),
                max_applications: None,
            },
        )
        .reward_units(reward_units)
    };
    let cart = s.w.cart(&[(s.a, 1), (s.b, 1)]);
    let dearest = s.w.price(&cart, vec![bogo(RewardUnits::Dearest)]);
    assert_eq!(discounts(&dearest), ["0.00", "12.50"]);
    let cheapest = s.w.price(&cart, vec![bogo(RewardUnits::Cheapest)]);
    assert_eq!(discounts(&cheapest), ["5.00", "0.00"]);
    // In JSON the choice is optional; "cheapest" when absent.
    let dearest = bogo(RewardUnits::Dearest);
    let json = serde_json::to_value(&dearest).unwrap();
    assert_eq!(json["reward_units"], "dearest");
    let mut without = json.clone();
    without.as_object_mut().unwrap().remove("reward_units");
    let back: Promotion = serde_json::from_value(without).unwrap();
    assert_eq!(back.reward_units, RewardUnits::Cheapest);
}

#[test]
fn a_later_buy_x_get_y_sees_only_units_no_reward_has_spent() {
    let s = shop();
    let first = b2g1(100, None).priority(1);
    let second = b2g1(100, None).priority(2);
    // A × 3: the first makes one A free (10.00). Two unspent units are left,
    // too few for 2 + 1, so the second discounts nothing. (It used to count
    // the free unit as bought and take 20.00 × 1/3 = 6.67 more.)
    let priced =
        s.w.price(&s.w.cart(&[(s.a, 3)]), vec![first.clone(), second.clone()]);
    assert_eq!(discounts(&priced), ["10.00"]);
    assert!(matches!(
        outcome_of(&priced, &second),
        Outcome::NotApplied {
            reason: Rejection::NothingToDiscount
        }
    ));
    // A × 6: the first frees two (20.00); four unspent units (40.00) hold
    // one more group: one A free, 10.00. Five units free would need the
    // second to reward spent units.
    let priced =
        s.w.price(&s.w.cart(&[(s.a, 6)]), vec![first.clone(), second.clone()]);
    assert_eq!(discounts(&priced), ["30.00"]);
    // A reward at 50 % spends its unit too: A × 3, one A at half price
    // (5.00); the second finds two unspent units and stops.
    let half = b2g1(50, None).priority(1);
    let priced =
        s.w.price(&s.w.cart(&[(s.a, 3)]), vec![half, second.clone()]);
    assert_eq!(discounts(&priced), ["5.00"]);
    // A percent off the whole line in between shrinks spent and unspent
    // units alike: A × 6, first two free (20.00 of 60.00), then 10 % off
    // the 40.00 left (4.00), then one unspent A (9.00 after the 10 %) free.
    let tenth = Promotion::new("10%", percent_items(LineFilter::Any, 10)).priority(2);
    let priced = s.w.price(
        &s.w.cart(&[(s.a, 6)]),
        vec![first, tenth, second.priority(3)],
    );
    assert_eq!(discounts(&priced), ["33.00"]);
}

#[test]
fn buy_from_one_set_get_from_another() {
    let s = shop();
    // Buy 1 D, get 2 kitchen items free: the cheapest two kitchen units
    // are C and C (3.33 each) → 6.66; B stays.
    let p = Promotion::new(
        "premium gets kitchen",
        Action::BuyXGetY {
            buy: LineFilter::Tag {
                op: Op::Eq,
                tags: vec!["PREMIUM".into()],
            },
            buy_quantity: 1,
            get: kitchen(&s),
            get_quantity: 2,
            percent: pct(100),
            max_applications: None,
        },
    );
    let priced =
        s.w.price(&s.w.cart(&[(s.d, 1), (s.b, 1), (s.c, 2)]), vec![p.clone()]);
    assert_eq!(discounts(&priced), ["0.00", "0.00", "6.66"]);
    // Without D, nothing to discount.
    let none = s.w.price(&s.w.cart(&[(s.b, 1), (s.c, 2)]), vec![p.clone()]);
    assert_eq!(none.discount_total, usd("0.00"));
}

// ----- fixed totals, quantity groups, first and additional units ---------

#[test]
fn these_items_for_a_fixed_total() {
    let s = shop();
    let p = |price: &str| {
        Promotion::new(
            "for 40",
            Action::FixedTotal {
                target: LineFilter::Any,
                price: usd(price),
            },
        )
    };
    // A A B = 45.00 for 40.00: 5.00 off split 20 : 25 → 2.22, 2.78 (the
    // leftover cent to the larger remainder).
    let cart = s.w.cart(&[(s.a, 2), (s.b, 1)]);
    let priced = s.w.price(&cart, vec![p("40.00")]);
    assert_eq!(discounts(&priced), ["2.22", "2.78"]);
    assert_eq!(
        priced.subtotal.checked_sub(priced.discount_total).unwrap(),
        usd("40.00")
    );
    // A fixed total above what the items cost never raises the price.
    let dear = p("50.00");
    let priced = s.w.price(&cart, vec![dear.clone()]);
    assert_eq!(priced.discount_total, usd("0.00"));
    assert!(matches!(
        outcome_of(&priced, &dear),
        Outcome::NotApplied {
            reason: Rejection::NothingToDiscount
        }
    ));
    // Only the selected items: the kitchen ones (B, C C = 31.66) for 30.00.
    let kitchen_for_30 = Promotion::new(
        "kitchen for 30",
        Action::FixedTotal {
            target: kitchen(&s),
            price: usd("30.00"),
        },
    );
    let priced = s.w.price(
        &s.w.cart(&[(s.a, 1), (s.b, 1), (s.c, 2)]),
        vec![kitchen_for_30],
    );
    // 1.66 off split 25.00 : 6.66 → 1.31 and 0.35.
    assert_eq!(discounts(&priced), ["0.00", "1.31", "0.35"]);
}

#[test]
fn quantity_groups_at_a_price_or_pay_for_fewer() {
    let s = shop();
    let three_for_two = |max: Option<u32>| {
        Promotion::new(
            "3 for 2",
            Action::QuantityGroup {
                target: LineFilter::Any,
                size: 3,
                price: GroupPrice::PayFor { units: 2 },
                max_groups: max,
            },
        )
    };
    // Units B 25, A 10, A 10, C 3.33, C 3.33, dearest first: the group
    // B A A frees one A (10.00); C C are left over and pay.
    let cart = s.w.cart(&[(s.a, 2), (s.b, 1), (s.c, 2)]);
    let priced = s.w.price(&cart, vec![three_for_two(None)]);
    assert_eq!(discounts(&priced), ["10.00", "0.00", "0.00"]);
    // Six units: B A A | C C C → one A and one C free.
    let six = s.w.cart(&[(s.a, 2), (s.b, 1), (s.c, 3)]);
    let priced = s.w.price(&six, vec![three_for_two(None)]);
    assert_eq!(discounts(&priced), ["10.00", "0.00", "3.33"]);
    // At most one group.
    let priced = s.w.price(&six, vec![three_for_two(Some(1))]);
    assert_eq!(discounts(&priced), ["10.00", "0.00", "0.00"]);
    // Every 3 for 25.00: seven A (70.00) make two groups (60.00 → 50.00),
    // the seventh pays; at most one group: 5.00.
    let every = |max: Option<u32>| {
        Promotion::new(
            "3 for 25",
            Action::QuantityGroup {
                target: LineFilter::Any,
                size: 3,
                price: GroupPrice::Fixed {
                    amount: usd("25.00"),
                },
                max_groups: max,
            },
        )
    };
    let sevens = s.w.cart(&[(s.a, 7)]);
    assert_eq!(discounts(&s.w.price(&sevens, vec![every(None)])), ["10.00"]);
    assert_eq!(
        discounts(&s.w.price(&sevens, vec![every(Some(1))])),
        ["5.00"]
    );
    // A group price above what the units cost gives nothing.
    let cheap = s.w.cart(&[(s.c, 6)]);
    assert_eq!(
        s.w.price(&cheap, vec![every(None)]).discount_total,
        usd("0.00")
    );
    // Paying for as many units as the group holds is refused at save.
    let wrong = Promotion::new(
        "3 for 3",
        Action::QuantityGroup {
            target: LineFilter::Any,
            size: 3,
            price: GroupPrice::PayFor { units: 3 },
            max_groups: None,
        },
    );
    assert!(
        wrong
            .validate()
            .unwrap_err()
            .to_string()
            .contains("pay_for units")
    );
}

#[test]
fn the_first_unit_at_one_discount_each_additional_at_another() {
    let s = shop();
    let p = Promotion::new(
        "first half off, then 2 off",
        Action::FirstAndAdditional {
            target: LineFilter::Any,
            first: Reward::Percent { percent: pct(50) },
            additional: Reward::Amount {
                amount: usd("2.00"),
            },
            max_units: Some(3),
        },
    );
    // A × 4: 5.00 + 2.00 + 2.00; the fourth pays in full. C × 2 (3.33):
    // 1.67 (half, rounded) + 2.00.
    let priced = s.w.price(&s.w.cart(&[(s.a, 4), (s.c, 2)]), vec![p.clone()]);
    assert_eq!(discounts(&priced), ["9.00", "3.67"]);
    // An amount never takes a unit below zero: 5.00 off each additional
    // unit of C costs only what is left of it.
    let big = Promotion::new(
        "first free, then 5 off",
        Action::FirstAndAdditional {
            target: LineFilter::Any,
            first: Reward::Percent { percent: pct(100) },
            additional: Reward::Amount {
                amount: usd("5.00"),
            },
            max_units: None,
        },
    );
    let priced = s.w.price(&s.w.cart(&[(s.c, 3)]), vec![big]);
    assert_eq!(discounts(&priced), ["9.99"]);
    assert!(!priced.total.is_negative());
}

// ----- discounts larger than their target ---------------------------------

#[test]
fn a_percent_above_100_is_refused_and_an_amount_above_the_price_is_capped() {
    let s = shop();
    let err = Promotion::new("150 %", percent_items(LineFilter::Any, 150))
        .validate()
        .unwrap_err()
        .to_string();
    assert!(err.contains("150"), "{err}");
    // 50.00 off each unit of A (10.00): capped at 10.00 a unit.
    let big = Promotion::new(
        "50 off",
        Action::AmountOffItems {
            target: LineFilter::Any,
            amount: usd("50.00"),
            per: AmountPer::Unit,
            max_quantity_per_line: None,
        },
    );
    let priced =
        s.w.price(&s.w.cart(&[(s.a, 2), (s.b, 1)]), vec![big.clone()]);
    assert_eq!(discounts(&priced), ["20.00", "25.00"]);
    assert_eq!(applied_amount(&priced, &big), "45.00");
    assert!(!priced.total.is_negative());
}

// ----- explanations never go silent -----------------------------------------

#[test]
fn promotions_past_the_candidate_limit_are_reported_not_dropped() {
    let s = shop();
    let max = cartwright::pricing::MAX_CANDIDATES;
    // One more automatic promotion than a pricing considers, each with a
    // condition the cart fails (cheap to check).
    let promos: Vec<Promotion> = (0..=max)
        .map(|i| {
            Promotion::new(&format!("p{i}"), percent_items(LineFilter::Any, 1))
                .priority(u32::try_from(i).unwrap())
                .when(Condition::ItemCount {
                    op: Op::Gte,
                    count: 1_000,
                })
        })
        .collect();
    let last = promos.last().unwrap().clone();
    let priced = s.w.price(&s.w.cart(&[(s.a, 1)]), promos);
    assert_eq!(priced.promotions.len(), max + 1);
    assert_eq!(
        rejection(&priced, &last),
        Rejection::TooManyCandidates { max: max as u64 }
    );
}

// ----- tiered shipping ------------------------------------------------------

#[test]
fn shipping_discounts_by_tiers() {
    let s = shop();
    let p = Promotion::new(
        "ship cheaper",
        Action::TieredShipping {
            target: LineFilter::Any,
            tiers: Tiers::Subtotal {
                tiers: vec![
                    SubtotalTier {
                        min: usd("100.00"),
                        reward: Reward::Percent { percent: pct(100) },
                    },
                    SubtotalTier {
                        min: usd("50.00"),
                        reward: Reward::Percent { percent: pct(50) },
                    },
                ],
            },
            methods: vec![],
        },
    );
    let shipped = |lines: &[(VariantId, u32)]| {
        let mut cart = s.w.cart(lines);
        cart.set_shipping_method("std").unwrap();
        s.w.price(&cart, vec![p.clone()])
    };
    // 50.00 reaches the first tier: half of 5.99, rounded → 3.00.
    let half = shipped(&[(s.b, 2)]);
    assert_eq!(half.shipping.as_ref().unwrap().discount, usd("3.00"));
    assert_eq!(half.discount_total, usd("3.00"));
    // 100.00: the highest tier reached, free.
    let free = shipped(&[(s.d, 1)]);
    assert_eq!(free.shipping.as_ref().unwrap().discount, usd("5.99"));
    // 10.00: no tier.
    let none = shipped(&[(s.a, 1)]);
    assert_eq!(none.shipping.as_ref().unwrap().discount, usd("0.00"));
    assert!(matches!(rejection(&none, &p), Rejection::NothingToDiscount));
    // By units, limited to a method the cart did not choose: nothing.
    let express_only = Promotion::new(
        "express by units",
        Action::TieredShipping {
            target: LineFilter::Any,
            tiers: Tiers::Quantity {
                tiers: vec![QuantityTier {
                    min: 2,
                    reward: Reward::Amount {
                        amount: usd("2.00"),
                    },
                }],
            },
            methods: vec!["express".into()],
        },
    );
    let mut cart = s.w.cart(&[(s.a, 3)]);
    cart.set_shipping_method("std").unwrap();
    let priced = s.w.price(&cart, vec![express_only]);
    assert_eq!(priced.shipping.as_ref().unwrap().discount, usd("0.00"));
}

// ----- negation and hints in units -----------------------------------------

#[test]
fn a_condition_can_be_negated() {
    let s = shop();
    // 10 % off when the cart holds no sale item (A is tagged "Sale").
    let p = Promotion::new("full price only", percent_items(LineFilter::Any, 10)).when(
        Condition::Not {
            condition: Box::new(Condition::Lines {
                filter: LineFilter::Tag {
                    op: Op::ContainsAny,
                    tags: vec!["sale".into()],
                },
                min_quantity: 1,
            }),
        },
    );
    let priced = s.w.price(&s.w.cart(&[(s.b, 1)]), vec![p.clone()]);
    assert_eq!(discounts(&priced), ["2.50"]);
    let priced = s.w.price(&s.w.cart(&[(s.a, 1), (s.b, 1)]), vec![p.clone()]);
    assert_eq!(priced.discount_total, usd("0.00"));
    let Rejection::ConditionsNotMet { comparisons } = rejection(&priced, &p) else {
        panic!("wrong reason");
    };
    assert_eq!(comparisons[0].subject, "lines condition");
    assert_eq!(
        comparisons[0].to_string(),
        "lines condition met is not = not met"
    );
    // Not of not holds where the inner holds.
    let twice =
        Promotion::new("sale only", percent_items(LineFilter::Any, 10)).when(Condition::Not {
            condition: Box::new(p.conditions[0].clone()),
        });
    let priced = s.w.price(&s.w.cart(&[(s.a, 1)]), vec![twice.clone()]);
    assert_eq!(discounts(&priced), ["1.00"]);
    // JSON: {"type": "not", "condition": {...}}.
    let json = serde_json::to_value(&twice.conditions[0]).unwrap();
    assert_eq!(json["type"], "not");
    assert_eq!(json["condition"]["type"], "not");
}

#[test]
fn hints_cover_counts_of_items_as_well_as_amounts() {
    let s = shop();
    let five_items = Promotion::new("five or more", percent_items(LineFilter::Any, 10)).when(
        Condition::ItemCount {
            op: Op::Gte,
            count: 5,
        },
    );
    let priced =
        s.w.price(&s.w.cart(&[(s.a, 2), (s.c, 1)]), vec![five_items.clone()]);
    assert_eq!(priced.hints.len(), 1);
    assert_eq!(priced.hints[0].missing, usd("0.00"));
    assert_eq!(priced.hints[0].missing_units, Some(2));
    assert_eq!(priced.hints[0].message, "add 2 more items for five or more");
    let Rejection::ConditionsNotMet { comparisons } = rejection(&priced, &five_items) else {
        panic!("wrong reason");
    };
    assert_eq!(comparisons[0].missing_units, Some(2));
    // "More than 3": one more than 3 − 3.
    let more_than = Promotion::new("more than three", percent_items(LineFilter::Any, 10)).when(
        Condition::ItemCount {
            op: Op::Gt,
            count: 3,
        },
    );
    let priced = s.w.price(&s.w.cart(&[(s.a, 3)]), vec![more_than]);
    assert_eq!(priced.hints[0].missing_units, Some(1));
    assert_eq!(
        priced.hints[0].message,
        "add 1 more item for more than three"
    );
    // Units of matching items: 2 kitchen units of 3.
    let kitchen_three =
        Promotion::new("three kitchen", percent_items(kitchen(&s), 10)).when(Condition::Lines {
            filter: kitchen(&s),
            min_quantity: 3,
        });
    let priced =
        s.w.price(&s.w.cart(&[(s.a, 1), (s.c, 2)]), vec![kitchen_three]);
    assert_eq!(priced.hints[0].missing_units, Some(1));
    // A maximum exceeded is no hint: nothing to add would help.
    let at_most = Promotion::new("small carts", percent_items(LineFilter::Any, 10)).when(
        Condition::ItemCount {
            op: Op::Lte,
            count: 1,
        },
    );
    let priced = s.w.price(&s.w.cart(&[(s.a, 2)]), vec![at_most]);
    assert!(priced.hints.is_empty());
}

// ----- tiers ------------------------------------------------------------

#[test]
fn tiered_by_subtotal_and_by_quantity() {
    let s = shop();
    let by_subtotal = Promotion::new(
        "spend more",
        Action::Tiered {
            target: LineFilter::Any,
            tiers: Tiers::Subtotal {
                tiers: vec![
                    SubtotalTier {
                        min: usd("100.00"),
                        reward: Reward::Percent { percent: pct(10) },
                    },
                    SubtotalTier {
                        min: usd("50.00"),
                        reward: Reward::Percent { percent: pct(5) },
                    },
                ],
            },
        },
    );
    // 100.00 reaches the 10 % tier; 50.00 the 5 % tier; 10.00 none.
    let p = s.w.price(&s.w.cart(&[(s.d, 1)]), vec![by_subtotal.clone()]);
    assert_eq!(p.discount_total, usd("10.00"));
    let p = s.w.price(&s.w.cart(&[(s.b, 2)]), vec![by_subtotal.clone()]);
    assert_eq!(p.discount_total, usd("2.50"));
    let p = s.w.price(&s.w.cart(&[(s.a, 1)]), vec![by_subtotal.clone()]);
    assert_eq!(rejection(&p, &by_subtotal), Rejection::NothingToDiscount);

    let by_quantity = Promotion::new(
        "more units",
        Action::Tiered {
            target: LineFilter::Any,
            tiers: Tiers::Quantity {
                tiers: vec![
                    QuantityTier {
                        min: 3,
                        reward: Reward::Amount {
                            amount: usd("5.00"),
                        },
                    },
                    QuantityTier {
                        min: 6,
                        reward: Reward::Amount {
                            amount: usd("12.00"),
                        },
                    },
                ],
            },
        },
    );
    // 6 units of A (60.00): the 12.00 tier.
    let p = s.w.price(&s.w.cart(&[(s.a, 6)]), vec![by_quantity.clone()]);
    assert_eq!(p.discount_total, usd("12.00"));
    // 3 units: 5.00.
    let p = s.w.price(&s.w.cart(&[(s.a, 3)]), vec![by_quantity]);
    assert_eq!(p.discount_total, usd("5.00"));
}

// ----- shipping and gifts -----------------------------------------------

fn free_shipping_over_50() -> Promotion {
    Promotion::new(
        "Free shipping",
        Action::Shipping {
            reward: Reward::Percent { percent: pct(100) },
            methods: vec![],
        },
    )
    .when(Condition::Subtotal {
        op: Op::Gte,
        amount: usd("50.00"),
    })
}

#[test]
fn free_shipping_and_a_hint_when_short() {
    let s = shop();
    let p = free_shipping_over_50();
    let mut cart = s.w.cart(&[(s.b, 2)]);
    cart.set_shipping_method("std").unwrap();
    let priced = s.w.price(&cart, vec![p.clone()]);
    let ship = priced.shipping.as_ref().unwrap();
    assert_eq!(
        (ship.amount, ship.discount, ship.total),
        (usd("5.99"), usd("5.99"), usd("0.00"))
    );
    assert_eq!(priced.total, usd("50.00"));
    assert_eq!(priced.discount_total, usd("5.99"));

    // 45.00: not met; the comparison and a hint say 5.00 is missing.
    let mut short = s.w.cart(&[(s.b, 1), (s.a, 2)]);
    short.set_shipping_method("std").unwrap();
    let priced = s.w.price(&short, vec![p.clone()]);
    let Rejection::ConditionsNotMet { comparisons } = rejection(&priced, &p) else {
        panic!("wrong reason");
    };
    assert_eq!(
        comparisons,
        [Comparison::new("subtotal", Op::Gte, "50.00 USD", "45.00 USD").missing(usd("5.00"))]
    );
    assert_eq!(priced.hints[0].missing, usd("5.00"));
    assert_eq!(
        priced.hints[0].message,
        "add 5.00 USD more for Free shipping"
    );
    assert_eq!(priced.total, usd("50.99"));
}

#[test]
fn shipping_methods_tiers_thresholds_and_countries() {
    let mut s = shop();
    s.w.shipping = Box::new(
        ShippingTable::new()
            .with_method(
                ShippingMethod::flat("weight", "By weight", usd("0.00")).pricing(
                    MethodPricing::WeightTiers {
                        tiers: vec![(0, usd("4.00")), (1_000, usd("7.00"))],
                    },
                ),
            )
            .unwrap()
            .with_method(
                ShippingMethod::flat("value", "By value", usd("0.00")).pricing(
                    MethodPricing::SubtotalTiers {
                        tiers: vec![(usd("0.00"), usd("9.00")), (usd("30.00"), usd("6.00"))],
                    },
                ),
            )
            .unwrap()
            .with_method(
                ShippingMethod::flat("std", "Standard", usd("5.99")).free_from(usd("100.00")),
            )
            .unwrap()
            .with_method(
                ShippingMethod::flat("eu", "EU only", usd("1.00"))
                    .countries(&["FR", "DE"])
                    .unwrap(),
            )
            .unwrap(),
    );
    // Two items of 500 g = 1,000 g → 7.00; 20.00 → 9.00; std 5.99 with a
    // hint (80.00 more to 100.00); "eu" needs an address in FR or DE.
    let priced = s.w.price(&s.w.cart(&[(s.a, 2)]), vec![]);
    let rates: Vec<(String, String)> = priced
        .shipping_options
        .iter()
        .map(|r| (r.code.clone(), r.price.amount().to_string()))
        .collect();
    assert_eq!(
        rates,
        [
            ("weight".to_owned(), "7.00".to_owned()),
            ("value".to_owned(), "9.00".to_owned()),
            ("std".to_owned(), "5.99".to_owned())
        ]
    );
    assert_eq!(priced.hints[0].missing, usd("80.00"));
    assert_eq!(
        priced.hints[0].message,
        "add 80.00 USD more for free Standard"
    );
    // With an address in France, the EU-only method is offered too.
    let mut fr = s.w.cart(&[(s.a, 2)]);
    fr.set_shipping_address(
        cartwright::customer::Address::new(
            cartwright::customer::NewAddress::default()
                .name("N")
                .line1("1 rue")
                .city("Paris")
                .country("fr"),
        )
        .unwrap(),
    )
    .unwrap();
    let priced = s.w.price(&fr, vec![]);
    assert!(priced.shipping_options.iter().any(|r| r.code == "eu"));
    // 100.00 of merchandise: std is free.
    let priced = s.w.price(&s.w.cart(&[(s.d, 1)]), vec![]);
    let std = priced
        .shipping_options
        .iter()
        .find(|r| r.code == "std")
        .unwrap();
    assert!(std.price.is_zero());
}

#[test]
fn a_free_gift_line() {
    let s = shop();
    let p = Promotion::new(
        "free C over 100",
        Action::Gift {
            variant_id: s.c,
            quantity: 1,
        },
    )
    .when(Condition::Subtotal {
        op: Op::Gte,
        amount: usd("100.00"),
    });
    let priced = s.w.price(&s.w.cart(&[(s.d, 1)]), vec![p.clone()]);
    assert_eq!(priced.lines.len(), 2);
    let gift = &priced.lines[1];
    assert_eq!(
        (gift.variant_id, gift.quantity, gift.gift_of),
        (s.c, 1, Some(p.id))
    );
    assert_eq!(
        (gift.subtotal, gift.discount, gift.total),
        (usd("3.33"), usd("3.33"), usd("0.00"))
    );
    // The gift's value is in the subtotal and again in the discount total:
    // the totals are the sums of the lines, and the gift costs nothing.
    assert_eq!(priced.subtotal, usd("103.33"));
    assert_eq!(priced.discount_total, usd("3.33"));
    assert_eq!(priced.total, usd("100.00"));
    let Outcome::Applied { gift: Some(id), .. } = &priced.outcome(p.id).unwrap().outcome else {
        panic!("gift not applied");
    };
    assert_eq!(*id, gift.line_id);
}

// ----- conditions ---------------------------------------------------------

#[test]
fn cart_and_line_conditions_with_operators() {
    let s = shop();
    let vip = CustomerGroupId::new();
    let ten = |c: Condition| Promotion::new("ten", percent_items(LineFilter::Any, 10)).when(c);
    let cart = s.w.cart(&[(s.a, 2), (s.c, 1)]); // 23.33, 3 units, USD
    let member = Extra {
        customer: cartwright::pricing::CustomerFacts::default()
            .id(Some(CustomerId::new()))
            .groups([vip].into())
            .orders_placed(2),
        ..Extra::default()
    };
    let cases: Vec<(Condition, bool, bool)> = vec![
        // (condition, applies to a guest, applies to the VIP member)
        (
            Condition::ItemCount {
                op: Op::Gte,
                count: 3,
            },
            true,
            true,
        ),
        (
            Condition::ItemCount {
                op: Op::Gt,
                count: 3,
            },
            false,
            false,
        ),
        (
            Condition::Subtotal {
                op: Op::Lt,
                amount: usd("23.34"),
            },
            true,
            true,
        ),
        (
            Condition::Subtotal {
                op: Op::Lte,
                amount: usd("23.32"),
            },
            false,
            false,
        ),
        (
            Condition::Subtotal {
                op: Op::Eq,
                amount: usd("23.33"),
            },
            true,
            true,
        ),
        (
            Condition::Subtotal {
                op: Op::Ne,
                amount: usd("23.33"),
            },
            false,
            false,
        ),
        (
            Condition::Currency {
                op: Op::In,
                currencies: vec![Currency::USD, Currency::EUR],
            },
            true,
            true,
        ),
        (
            Condition::Currency {
                op: Op::NotIn,
                currencies: vec![Currency::USD],
            },
            false,
            false,
        ),
        (
            Condition::CustomerGroup {
                op: Op::ContainsAny,
                groups: vec![vip],
            },
            false,
            true,
        ),
        (
            Condition::CustomerGroup {
                op: Op::NotIn,
                groups: vec![vip],
            },
            true,
            false,
        ),
        (
            Condition::OrderNumber {
                op: Op::Eq,
                number: 1,
            },
            true,
            false,
        ),
        (
            Condition::OrderNumber {
                op: Op::Eq,
                number: 3,
            },
            false,
            true,
        ),
        (
            Condition::Lines {
                filter: LineFilter::Tag {
                    op: Op::ContainsAny,
                    tags: vec!["sale".into()],
                },
                min_quantity: 2,
            },
            true,
            true,
        ),
        (
            Condition::Lines {
                filter: LineFilter::AllOf {
                    filters: vec![
                        kitchen(&s),
                        LineFilter::UnitPrice {
                            op: Op::Gt,
                            amount: usd("5.00"),
                        },
                    ],
                },
                min_quantity: 1,
            },
            false,
            false,
        ),
        (
            Condition::AnyOf {
                conditions: vec![
                    Condition::ItemCount {
                        op: Op::Gte,
                        count: 10,
                    },
                    Condition::Lines {
                        filter: LineFilter::Product {
                            op: Op::NotIn,
                            ids: vec![],
                        },
                        min_quantity: 1,
                    },
                ],
            },
            false,
            false,
        ),
        (
            Condition::AllOf {
                conditions: vec![
                    Condition::ItemCount {
                        op: Op::Gte,
                        count: 1,
                    },
                    Condition::ShippingOption {
                        op: Op::In,
                        codes: vec!["std".into()],
                    },
                ],
            },
            false,
            false,
        ),
    ];
    for (i, (condition, guest, vip_member)) in cases.into_iter().enumerate() {
        let p = ten(condition.clone());
        if p.validate().is_err() {
            // An empty list is refused when saved; pricing never sees it.
            assert!(
                !guest && !vip_member,
                "case {i} is invalid but expected to apply"
            );
            continue;
        }
        let g = s.w.price(&cart, vec![p.clone()]);
        assert_eq!(
            g.outcome(p.id).unwrap().applied(),
            guest,
            "case {i} guest: {condition:?}"
        );
        let m = s.w.price_with(&cart, vec![p.clone()], &member);
        assert_eq!(
            m.outcome(p.id).unwrap().applied(),
            vip_member,
            "case {i} member: {condition:?}"
        );
    }
}

#[test]
fn product_attribute_line_metadata_quantity_and_customer_conditions() {
    use cartwright::catalog::{CatalogEntry, NewProduct, NewVariant, Product, Status};
    use std::collections::BTreeMap;
    let mut s = shop();
    // A wool jumper in size XL at 40.00, a line of 2 engraved ones.
    let product = Product::new(
        NewProduct::new("Jumper")
            .status(Status::Active)
            .variants(vec![
                NewVariant::shipped("JUMPER-XL")
                    .price(usd("40.00"))
                    .option("size", "XL")
                    .option("material", "wool")
                    .status(Status::Active),
            ]),
    )
    .unwrap();
    let jumper = product.variants()[0].id();
    s.w.catalog
        .insert(jumper, CatalogEntry::of(&product, jumper).unwrap());
    let mut cart = s.w.cart(&[(s.a, 1)]);
    let engraved = BTreeMap::from([("engraving".to_owned(), "yes".to_owned())]);
    cart.add_line_with(jumper, 2, engraved).unwrap();

    let option = |op, values: &[&str]| LineFilter::Option {
        name: "material".into(),
        op,
        values: values.iter().map(|v| (*v).to_owned()).collect(),
    };
    // 10 % off wool: 80.00 → 8.00; off not-wool: A 10.00 → 1.00 (A has
    // no material option, so only not_in matches it).
    let wool = Promotion::new("wool", percent_items(option(Op::In, &["wool"]), 10));
    let not_wool = Promotion::new("not wool", percent_items(option(Op::NotIn, &["wool"]), 10));
    let silk = Promotion::new("silk", percent_items(option(Op::Eq, &["silk"]), 10));
    let engraved_lines = Promotion::new(
        "engraved",
        percent_items(
            LineFilter::Metadata {
                key: "engraving".into(),
                op: Op::Eq,
                values: vec!["yes".into()],
            },
            5,
        ),
    );
    let priced = s.w.price(
        &cart,
        vec![
            wool.clone(),
            not_wool.clone(),
            silk.clone(),
            engraved_lines.clone(),
        ],
    );
    assert_eq!(applied_amount(&priced, &wool), "8.00");
    assert_eq!(applied_amount(&priced, &not_wool), "1.00");
    assert!(matches!(
        rejection(&priced, &silk),
        Rejection::NothingToDiscount
    ));
    // 5 % of what wool left on the jumper line: 72.00 → 3.60.
    assert_eq!(applied_amount(&priced, &engraved_lines), "3.60");

    // A line of at least 3 units: the jumper line has 2, so 1 is missing.
    let three = Promotion::new("three of a kind", percent_items(LineFilter::Any, 10)).when(
        Condition::LineQuantity {
            filter: LineFilter::Any,
            op: Op::Gte,
            quantity: 3,
        },
    );
    let priced = s.w.price(&cart, vec![three.clone()]);
    match rejection(&priced, &three) {
        Rejection::ConditionsNotMet { comparisons } => {
            assert_eq!(comparisons[0].missing_units, Some(1), "{comparisons:?}");
        }
        other => panic!("{other:?}"),
    }
    let hint = priced
        .hints
        .iter()
        .find(|h| h.promotion_id == Some(three.id));
    assert_eq!(
        hint.map(|h| h.missing_units),
        Some(Some(1)),
        "{:?}",
        priced.hints
    );
    let mut bigger = cart.clone();
    bigger.add_line(s.a, 2).unwrap(); // A now 3 units
    let priced = s.w.price(&bigger, vec![three.clone()]);
    assert!(priced.outcome(three.id).unwrap().applied());

    // The buyer: signed in or not, and the email's domain.
    let signed_in = |v| {
        Promotion::new("members", percent_items(LineFilter::Any, 10))
            .when(Condition::SignedIn { signed_in: v })
    };
    let staff =
        Promotion::new("staff", percent_items(LineFilter::Any, 10)).when(Condition::EmailDomain {
            op: Op::In,
            domains: vec!["@Example.COM".into()],
        });
    let guest = Extra {
        customer: cartwright::pricing::CustomerFacts::default()
            .email(Some("Ann@EXAMPLE.com".into())),
        ..Extra::default()
    };
    let member = Extra {
        customer: cartwright::pricing::CustomerFacts::default()
            .id(Some(CustomerId::new()))
            .email(Some("bob@elsewhere.org".into())),
        ..Extra::default()
    };
    let nobody = Extra::default();
    for (who, extra, is_member, is_staff) in [
        ("guest", &guest, false, true),
        ("member", &member, true, false),
        ("no email", &nobody, false, false),
    ] {
        let (yes, no) = (signed_in(true), signed_in(false));
        let p =
            s.w.price_with(&cart, vec![yes.clone(), no.clone(), staff.clone()], extra);
        assert_eq!(p.outcome(yes.id).unwrap().applied(), is_member, "{who}");
        assert_eq!(p.outcome(no.id).unwrap().applied(), !is_member, "{who}");
        assert_eq!(p.outcome(staff.id).unwrap().applied(), is_staff, "{who}");
    }

    // Bounded like every value list: too long a value is refused.
    let long = Promotion::new(
        "long",
        percent_items(option(Op::Eq, &["x".repeat(201).as_str()]), 10),
    );
    assert!(matches!(
        long.validate(),
        Err(cartwright::Error::Invalid { .. })
    ));
}

#[test]
fn compounding_decides_what_later_promotions_see() {
    use cartwright::pricing::Compounding;
    let s = shop();
    let cart = s.w.cart(&[(s.a, 3), (s.b, 1)]); // 55.00
    let ten = |name: &str, priority| {
        Promotion::new(name, percent_items(LineFilter::Any, 10)).priority(priority)
    };
    let five_off_fifty = Promotion::new(
        "5 off 50",
        Action::AmountOffOrder {
            amount: usd("5.00"),
        },
    )
    .priority(1)
    .when(Condition::Subtotal {
        op: Op::Gte,
        amount: usd("50.00"),
    });
    let with = |c| Extra {
        settings: PromotionSettings::default().compounding(c),
        ..Extra::default()
    };
    let total = |c, promos: Vec<Promotion>| {
        s.w.price_with(&cart, promos, &with(c))
            .discount_total
            .amount()
            .to_string()
    };
    let first = ten("10 %", 0);
    let pair = vec![first.clone(), five_off_fifty.clone()];
    // 5.50, then 5.00 (55.00 met the condition before promotions).
    assert_eq!(total(Compounding::Discounted, pair.clone()), "10.50");
    assert_eq!(total(Compounding::Original, pair.clone()), "10.50");
    // Checked again after the 5.50: 49.50 < 50.00, so only 5.50.
    assert_eq!(total(Compounding::DiscountedRecheck, pair.clone()), "5.50");
    let priced =
        s.w.price_with(&cart, pair, &with(Compounding::DiscountedRecheck));
    match rejection(&priced, &five_off_fifty) {
        Rejection::ConditionsNotMet { comparisons } => {
            assert_eq!(comparisons[0].actual, "49.50 USD", "{comparisons:?}");
            assert_eq!(comparisons[0].missing, Some(usd("0.50")));
        }
        other => panic!("{other:?}"),
    }
    // Two 10 % promotions: on what is left 5.50 + 4.95; on the original
    // amounts 5.50 + 5.50.
    let two = vec![first.clone(), ten("another 10 %", 1)];
    assert_eq!(total(Compounding::Discounted, two.clone()), "10.45");
    assert_eq!(total(Compounding::Original, two.clone()), "11.00");
    assert_eq!(total(Compounding::DiscountedRecheck, two), "10.45");
    // Computed on the original amounts, a promotion still never takes more
    // than is left: 60 % then 60 % of 55.00 takes 55.00, not 66.00.
    let big = |name: &str, priority| {
        Promotion::new(name, percent_items(LineFilter::Any, 60)).priority(priority)
    };
    let priced = s.w.price_with(
        &cart,
        vec![big("60 %", 0), big("another 60 %", 1)],
        &with(Compounding::Original),
    );
    assert_eq!(priced.discount_total, usd("55.00"));
    assert_eq!(priced.subtotal, usd("55.00"));
    assert!(priced.lines.iter().all(|l| !l.total.is_negative()));
}

#[test]
fn a_condition_on_the_subtotal_after_earlier_discounts() {
    let s = shop();
    let first = Promotion::new("10 %", percent_items(LineFilter::Any, 10));
    let still_fifty = Promotion::new(
        "5 off if still 50",
        Action::AmountOffOrder {
            amount: usd("5.00"),
        },
    )
    .priority(1)
    .when(Condition::DiscountedSubtotal {
        op: Op::Gte,
        amount: usd("50.00"),
    });
    // 55.00 − 5.50 = 49.50: 0.50 short, and a hint says so.
    let cart = s.w.cart(&[(s.a, 3), (s.b, 1)]);
    let priced = s.w.price(&cart, vec![first.clone(), still_fifty.clone()]);
    match rejection(&priced, &still_fifty) {
        Rejection::ConditionsNotMet { comparisons } => {
            assert_eq!(comparisons[0].subject, "subtotal after earlier discounts");
            assert_eq!(comparisons[0].missing, Some(usd("0.50")));
        }
        other => panic!("{other:?}"),
    }
    let hint = priced
        .hints
        .iter()
        .find(|h| h.promotion_id == Some(still_fifty.id));
    assert_eq!(hint.map(|h| h.missing), Some(usd("0.50")));
    // 65.00 − 6.50 = 58.50: it applies.
    let cart = s.w.cart(&[(s.a, 4), (s.b, 1)]);
    let priced = s.w.price(&cart, vec![first.clone(), still_fifty.clone()]);
    assert_eq!(applied_amount(&priced, &still_fifty), "5.00");
    assert_eq!(priced.discount_total, usd("11.50"));
    // Alone, it reads the plain subtotal.
    let cart = s.w.cart(&[(s.a, 3), (s.b, 1)]);
    let priced = s.w.price(&cart, vec![still_fifty.clone()]);
    assert_eq!(applied_amount(&priced, &still_fifty), "5.00");
}

#[test]
fn split_amounts_by_net_or_gross_and_where_the_leftover_cent_goes() {
    use cartwright::catalog::{CatalogEntry, NewProduct, NewVariant, Product, Status};
    use cartwright::customer::{Address, NewAddress};
    use cartwright::pricing::{Allocation, Remainder};
    use cartwright::tax::TaxTable;
    let mut s = shop();
    let mut add = |name: &str, class: &str| {
        let product = Product::new(NewProduct::new(name).status(Status::Active).variants(vec![
            NewVariant::shipped(format!("SKU-{name}"))
                .price(usd("50.00"))
                .tax_class(class)
                .status(Status::Active),
        ]))
        .unwrap();
        let v = product.variants()[0].id();
        s.w.catalog
            .insert(v, CatalogEntry::of(&product, v).unwrap());
        v
    };
    let (book, lamp) = (add("Book", "books"), add("Lamp", "standard"));
    s.w.tax = Box::new(
        TaxTable::new()
            .with_rate("Zero", "GB", None, "books", Decimal::ZERO)
            .unwrap()
            .with_rate("VAT 25%", "GB", None, "standard", Decimal::new(25, 2))
            .unwrap(),
    );
    let mut cart = s.w.cart(&[(book, 1), (lamp, 1)]);
    cart.set_shipping_address(
        Address::new(
            NewAddress::default()
                .name("N")
                .line1("1 Road")
                .city("Town")
                .country("GB"),
        )
        .unwrap(),
    )
    .unwrap();
    let ten_off = Promotion::new(
        "10 off",
        Action::AmountOffOrder {
            amount: usd("10.00"),
        },
    );
    let with = |allocation| Extra {
        settings: PromotionSettings::default().allocation(allocation),
        ..Extra::default()
    };
    // By net: 50.00 : 50.00. By gross: 50.00 : 62.50, so 4.44 and 5.56.
    let net =
        s.w.price_with(&cart, vec![ten_off.clone()], &with(Allocation::Net));
    assert_eq!(discounts(&net), ["5.00", "5.00"]);
    let gross =
        s.w.price_with(&cart, vec![ten_off.clone()], &with(Allocation::Gross));
    assert_eq!(discounts(&gross), ["4.44", "5.56"]);
    assert_eq!(gross.discount_total, usd("10.00"));
    // Tax follows the discounted amounts: 25 % of 44.44 = 11.11.
    assert_eq!(gross.tax_total, usd("11.11"));

    // The subtotal with tax, before promotions: 112.50.
    let over = |amount: &str| {
        Promotion::new("big basket", percent_items(LineFilter::Any, 10)).when(
            Condition::SubtotalWithTax {
                op: Op::Gte,
                amount: usd(amount),
            },
        )
    };
    let (met, short) = (over("112.50"), over("112.51"));
    let p = s.w.price(&cart, vec![met.clone()]);
    assert!(p.outcome(met.id).unwrap().applied());
    let p = s.w.price(&cart, vec![short.clone()]);
    match rejection(&p, &short) {
        Rejection::ConditionsNotMet { comparisons } => {
            assert_eq!(comparisons[0].subject, "subtotal with tax");
            assert_eq!(comparisons[0].missing, Some(usd("0.01")));
        }
        other => panic!("{other:?}"),
    }

    // 0.10 over three lines of 1.00: 0.03 each and one cent left over.
    let t: Vec<VariantId> = (1..=3)
        .map(|n| s.w.item(&format!("T{n}"), &[usd("1.00")], &[], &[], &[]))
        .collect();
    let dime = Promotion::new(
        "dime",
        Action::AmountOffOrder {
            amount: usd("0.10"),
        },
    );
    let remainder = |r| Extra {
        settings: PromotionSettings::default().remainder(r),
        ..Extra::default()
    };
    let forward = s.w.cart(&[(t[0], 1), (t[1], 1), (t[2], 1)]);
    let backward = s.w.cart(&[(t[2], 1), (t[1], 1), (t[0], 1)]);
    // First lines in cart order get the cent, whichever they are.
    for cart in [&forward, &backward] {
        let p =
            s.w.price_with(cart, vec![dime.clone()], &remainder(Remainder::FirstLines));
        assert_eq!(discounts(&p), ["0.04", "0.03", "0.03"]);
    }
    // Largest remainder (all equal): the canonical first line, wherever it
    // is in the cart — the same line both ways.
    let cent_line = |cart: &cartwright::cart::Cart| {
        let p = s.w.price_with(
            cart,
            vec![dime.clone()],
            &remainder(Remainder::LargestRemainder),
        );
        let mut d = discounts(&p);
        let at = d.iter().position(|x| x == "0.04").unwrap();
        d.sort();
        assert_eq!(d, ["0.03", "0.03", "0.04"]);
        p.lines[at].variant_id
    };
    assert_eq!(cent_line(&forward), cent_line(&backward));
}

#[test]
fn a_unit_cap_discounts_at_most_n_units_in_the_order_chosen() {
    use cartwright::pricing::{UnitCap, UnitOrder};
    let mut s = shop();
    let e = s.w.item("E", &[usd("30.00")], &[], &[], &[]);
    let capped = |order, per_line: Option<u32>| {
        Promotion::new(
            "20 % off 3 units",
            Action::PercentOffItems {
                target: LineFilter::Any,
                percent: pct(20),
                max_discount: None,
                max_quantity_per_line: per_line,
            },
        )
        .unit_cap(UnitCap::new(3, order))
    };
    let tens_first = s.w.cart(&[(s.a, 3), (e, 2)]);
    let thirties_first = s.w.cart(&[(e, 2), (s.a, 3)]);
    let off = |cart, p: Promotion| s.w.price(cart, vec![p]).discount_total.amount().to_string();
    // Cheapest: the three 10.00 units, 6.00. Dearest: 30, 30, 10 → 14.00.
    for cart in [&tens_first, &thirties_first] {
        assert_eq!(off(cart, capped(UnitOrder::CheapestFirst, None)), "6.00");
        assert_eq!(off(cart, capped(UnitOrder::DearestFirst, None)), "14.00");
    }
    // Cart order: whichever line comes first.
    assert_eq!(off(&tens_first, capped(UnitOrder::CartOrder, None)), "6.00");
    assert_eq!(
        off(&thirties_first, capped(UnitOrder::CartOrder, None)),
        "14.00"
    );
    // With one unit per line as well: 30 and 10 → 8.00.
    assert_eq!(
        off(&tens_first, capped(UnitOrder::DearestFirst, Some(1))),
        "8.00"
    );
    // The default order is cheapest first, and the JSON form names it.
    let p = capped(UnitOrder::default(), None);
    let json = serde_json::to_value(&p).unwrap();
    assert_eq!(json["unit_cap"]["order"], "cheapest_first");
    assert_eq!(off(&thirties_first, p), "6.00");

    // Amount per unit, fixed price and first-and-additional honour it too.
    let amount = Promotion::new(
        "2 off each",
        Action::AmountOffItems {
            target: LineFilter::Any,
            amount: usd("2.00"),
            per: AmountPer::Unit,
            max_quantity_per_line: None,
        },
    )
    .unit_cap(UnitCap::new(4, UnitOrder::DearestFirst));
    assert_eq!(off(&tens_first, amount), "8.00");
    let fixed = Promotion::new(
        "at 5.00",
        Action::FixedPrice {
            target: LineFilter::Any,
            price: usd("5.00"),
            max_quantity_per_line: None,
        },
    )
    .unit_cap(UnitCap::new(1, UnitOrder::DearestFirst));
    assert_eq!(off(&tens_first, fixed), "25.00");
    let first_more = Promotion::new(
        "first half, then 1.00",
        Action::FirstAndAdditional {
            target: LineFilter::Any,
            first: Reward::Percent { percent: pct(50) },
            additional: Reward::Amount {
                amount: usd("1.00"),
            },
            max_units: None,
        },
    )
    .unit_cap(UnitCap::new(2, UnitOrder::CheapestFirst));
    // Two 10.00 units of line A: 5.00 + 1.00.
    assert_eq!(off(&tens_first, first_more), "6.00");

    // Refused where units are not what the action counts, and at zero.
    let bxgy = Promotion::new(
        "b1g1",
        Action::BuyXGetY {
            buy: LineFilter::Any,
            buy_quantity: 1,
            get: LineFilter::Any,
            get_quantity: 1,
            percent: pct(100),
            max_applications: None,
        },
    )
    .unit_cap(UnitCap::new(2, UnitOrder::CheapestFirst));
    assert!(matches!(
        bxgy.validate(),
        Err(cartwright::Error::Invalid { .. })
    ));
    let zero =
        capped(UnitOrder::CheapestFirst, None).unit_cap(UnitCap::new(0, UnitOrder::CartOrder));
    assert!(matches!(
        zero.validate(),
        Err(cartwright::Error::Invalid { .. })
    ));
}

#[test]
fn one_promotion_with_amounts_per_currency() {
    use cartwright::pricing::CurrencyTerms;
    let s = shop();
    let eur = |a: &str| money(a, Currency::EUR);
    let five_off = Promotion::new(
        "5 off 50",
        Action::AmountOffOrder {
            amount: usd("5.00"),
        },
    )
    .when(Condition::Subtotal {
        op: Op::Gte,
        amount: usd("50.00"),
    })
    .limits(Limits::default().budget(Some(usd("100.00"))))
    .in_currency(
        CurrencyTerms::new(Currency::EUR)
            .action(Action::AmountOffOrder {
                amount: eur("4.50"),
            })
            .conditions(vec![Condition::Subtotal {
                op: Op::Gte,
                amount: eur("45.00"),
            }])
            .budget(eur("90.00")),
    );
    five_off.validate().unwrap();
    assert_eq!(
        five_off.currencies().into_iter().collect::<Vec<_>>(),
        [Currency::EUR, Currency::USD]
    );
    // A is 10.00 USD and 9.00 EUR. Six of them: 60.00 USD, 54.00 EUR.
    let usd_cart = s.w.cart(&[(s.a, 6)]);
    let p = s.w.price(&usd_cart, vec![five_off.clone()]);
    assert_eq!(applied_amount(&p, &five_off), "5.00");
    let budget = |p: &cartwright::pricing::PricedCart| {
        p.usage_claims
            .iter()
            .find(|c| c.counter.contains("budget"))
            .map(|c| (c.counter.clone(), c.amount, c.limit))
    };
    let id = five_off.id;
    assert_eq!(
        budget(&p),
        Some((format!("promotion:{id}:budget"), 500, 10_000))
    );
    let eur_cart = s.w.cart_in(Currency::EUR, &[(s.a, 6)]);
    let p = s.w.price(&eur_cart, vec![five_off.clone()]);
    assert_eq!(applied_amount(&p, &five_off), "4.50");
    assert_eq!(p.discount_total, eur("4.50"));
    // The budget is counted per currency.
    assert_eq!(
        budget(&p),
        Some((format!("promotion:{id}:budget:EUR"), 450, 9_000))
    );
    // Below the EUR threshold: one outcome, in EUR, with a EUR hint.
    let small = s.w.cart_in(Currency::EUR, &[(s.a, 4)]);
    let p = s.w.price(&small, vec![five_off.clone()]);
    assert_eq!(p.promotions.len(), 1, "{:?}", p.promotions);
    match rejection(&p, &five_off) {
        Rejection::ConditionsNotMet { comparisons } => {
            assert_eq!(comparisons[0].missing, Some(eur("9.00")));
        }
        other => panic!("{other:?}"),
    }
    // A coded promotion found through its coupon uses the cart's terms too.
    let coded = five_off.clone().coded();
    let extra = Extra {
        coupons: vec![Coupon::new("FIVE", coded.id, None).unwrap()],
        ..Extra::default()
    };
    let mut coded_cart = eur_cart.clone();
    coded_cart.add_coupon_code("five").unwrap();
    let p = s.w.price_with(&coded_cart, vec![coded.clone()], &extra);
    assert_eq!(applied_amount(&p, &coded), "4.50");
    assert_eq!(p.code_outcomes("FIVE").count(), 1);

    // The JSON form round-trips.
    let json = serde_json::to_string(&five_off).unwrap();
    let back: Promotion = serde_json::from_str(&json).unwrap();
    assert_eq!(back, five_off);

    // Refused: terms that leave an amount in another currency, terms for
    // the promotion's own currency, and the same currency twice.
    let leaves_usd = five_off
        .clone()
        .in_currency(
            CurrencyTerms::new(Currency::GBP).conditions(vec![Condition::Subtotal {
                op: Op::Gte,
                amount: money("40.00", Currency::GBP),
            }]),
        );
    let err = leaves_usd.validate().unwrap_err();
    assert!(err.to_string().contains("USD"), "{err}");
    let own = Promotion::new("own", percent_items(LineFilter::Any, 5))
        .when(Condition::Subtotal {
            op: Op::Gte,
            amount: usd("1.00"),
        })
        .in_currency(CurrencyTerms::new(Currency::USD));
    assert!(own.validate().is_err());
    let twice = five_off
        .clone()
        .in_currency(
            CurrencyTerms::new(Currency::EUR).action(Action::AmountOffOrder {
                amount: eur("1.00"),
            }),
        );
    assert!(twice.validate().is_err());
}

#[test]
fn several_shipments_each_priced_and_discounted_by_method() {
    let mut s = shop();
    s.w.shipping = Box::new(
        ShippingTable::new()
            .with_method(ShippingMethod::flat("std", "Standard", usd("5.99")))
            .unwrap()
            .with_method(ShippingMethod::flat("express", "Express", usd("12.00")))
            .unwrap(),
    );
    let mut cart = s.w.cart(&[(s.a, 1), (s.b, 1), (s.c, 1)]); // 38.33
    cart.set_shipping_method("std").unwrap();
    let flowers = cart.lines()[1].id;
    cart.set_shipping_group("flowers", &[flowers], Some("express"))
        .unwrap();

    // Two charges: 5.99 for A and C, 12.00 for B; the total has both.
    let p = s.w.price(&cart, vec![]);
    assert_eq!(p.shipping.as_ref().unwrap().amount, usd("5.99"));
    let group = &p.shipping_groups[0];
    assert_eq!(
        (group.group.as_str(), group.lines.as_slice()),
        ("flowers", &[flowers][..])
    );
    assert_eq!(group.charge.as_ref().unwrap().amount, usd("12.00"));
    assert_eq!(group.options.len(), 2);
    assert_eq!(p.shipping_charges().count(), 2);
    assert_eq!(p.total, usd("56.32"));

    // Free standard shipping discounts the standard charge only.
    let free_std = Promotion::new(
        "free std",
        Action::Shipping {
            reward: Reward::Percent { percent: pct(100) },
            methods: vec!["std".into()],
        },
    );
    let p = s.w.price(&cart, vec![free_std.clone()]);
    assert_eq!(p.shipping.as_ref().unwrap().total, usd("0.00"));
    assert_eq!(p.shipping.as_ref().unwrap().adjustments.len(), 1);
    let express = p.shipping_groups[0].charge.as_ref().unwrap();
    assert_eq!(
        (express.total, express.adjustments.len()),
        (usd("12.00"), 0)
    );
    assert_eq!(p.discount_total, usd("5.99"));
    assert_eq!(p.total, usd("50.33"));

    // Half off every method: 3.00 (2.995 rounded) and 6.00.
    let half = Promotion::new(
        "half shipping",
        Action::Shipping {
            reward: Reward::Percent { percent: pct(50) },
            methods: vec![],
        },
    );
    let p = s.w.price(&cart, vec![half.clone()]);
    assert_eq!(applied_amount(&p, &half), "9.00");
    assert_eq!(
        p.shipping_groups[0].charge.as_ref().unwrap().discount,
        usd("6.00")
    );

    // An amount is shared by price: 6.00 over 5.99 : 12.00 → 2.00 and 4.00.
    let six = Promotion::new(
        "6 off shipping",
        Action::Shipping {
            reward: Reward::Amount {
                amount: usd("6.00"),
            },
            methods: vec![],
        },
    );
    let p = s.w.price(&cart, vec![six.clone()]);
    assert_eq!(p.shipping.as_ref().unwrap().discount, usd("2.00"));
    assert_eq!(
        p.shipping_groups[0].charge.as_ref().unwrap().discount,
        usd("4.00")
    );
    assert_eq!(applied_amount(&p, &six), "6.00");

    // A condition on the shipping option sees every method chosen.
    let express_buyers = Promotion::new("express buyers", percent_items(LineFilter::Any, 10)).when(
        Condition::ShippingOption {
            op: Op::In,
            codes: vec!["express".into()],
        },
    );
    let p = s.w.price(&cart, vec![express_buyers.clone()]);
    assert!(p.outcome(express_buyers.id).unwrap().applied());

    // A group with no method yet: offered rates, no charge.
    let mut open = cart.clone();
    open.set_shipping_group("flowers", &[flowers], None)
        .unwrap();
    let p = s.w.price(&open, vec![]);
    assert!(p.shipping_groups[0].charge.is_none());
    assert_eq!(p.shipping_groups[0].options.len(), 2);
    // A method that does not serve the group is refused like the cart's own.
    open.set_shipping_group("flowers", &[flowers], Some("pigeon"))
        .unwrap();
    let ctx = cartwright::pricing::PricingContext::new(
        &s.w.catalog,
        s.w.shipping.as_ref(),
        s.w.tax.as_ref(),
        s.w.now,
    );
    assert!(matches!(
        cartwright::pricing::price(&open, &ctx),
        Err(cartwright::Error::ShippingUnavailable(m)) if m == "pigeon"
    ));

    // Removing the group's only line removes the group.
    let mut smaller = cart.clone();
    smaller.remove_line(flowers).unwrap();
    assert!(smaller.shipping_groups().is_empty());
    let p = s.w.price(&smaller, vec![]);
    assert!(p.shipping_groups.is_empty());
    assert_eq!(p.total, usd("19.32"));

    // Bad input is refused, naming it, and changes nothing.
    let mut bad = cart.clone();
    let unknown = cartwright::id::LineId::new();
    assert!(matches!(
        bad.set_shipping_group("x", &[unknown], None),
        Err(cartwright::Error::NotFound { .. })
    ));
    assert!(bad.set_shipping_group("x", &[], None).is_err());
    assert!(bad.set_shipping_group("", &[flowers], None).is_err());
    assert!(
        bad.set_shipping_group("x", &[flowers, flowers], None)
            .is_err()
    );
    assert_eq!(bad, cart);
}

// ----- stacking -----------------------------------------------------------

#[test]
fn stacking_in_priority_order_on_what_is_left() {
    let s = shop();
    // 10 % of 30.00 = 3.00 first, then 5.00 off the 27.00 left → 22.00.
    let first = Promotion::new("10%", percent_items(LineFilter::Any, 10)).priority(1);
    let second = Promotion::new(
        "5 off",
        Action::AmountOffOrder {
            amount: usd("5.00"),
        },
    )
    .priority(2);
    let cart = s.w.cart(&[(s.a, 3)]);
    let priced = s.w.price(&cart, vec![second.clone(), first.clone()]);
    assert_eq!(priced.total, usd("22.00"));
    let labels: Vec<&str> = priced.lines[0]
        .adjustments
        .iter()
        .map(|a| &*a.label)
        .collect();
    assert_eq!(labels, ["10%", "5 off"]);
    // Reversed priorities: 5.00 off first, then 10 % of 25.00 = 2.50 → 22.50.
    let priced = s.w.price(&cart, vec![first.priority(3), second]);
    assert_eq!(priced.total, usd("22.50"));
}

#[test]
fn exclusive_and_combination_groups() {
    let s = shop();
    let cart = s.w.cart(&[(s.a, 3)]);
    let excl = Promotion::new("exclusive 10%", percent_items(LineFilter::Any, 10))
        .priority(1)
        .stacking(Stacking::default().exclusive(true));
    let other = Promotion::new(
        "5 off",
        Action::AmountOffOrder {
            amount: usd("5.00"),
        },
    )
    .priority(2);
    let priced = s.w.price(&cart, vec![excl.clone(), other.clone()]);
    assert_eq!(priced.discount_total, usd("3.00"));
    assert_eq!(
        rejection(&priced, &other),
        Rejection::NotCombinable { with: excl.id }
    );

    // "items" combines only with "shipping": the "order" promotion cannot join.
    let items = Promotion::new("items", percent_items(LineFilter::Any, 10))
        .priority(1)
        .stacking(
            Stacking::default()
                .group("items")
                .combines_with(Some(vec!["shipping".into()])),
        );
    let order = Promotion::new(
        "order",
        Action::AmountOffOrder {
            amount: usd("5.00"),
        },
    )
    .priority(2)
    .stacking(Stacking::default().group("order"));
    let mut ship_cart = s.w.cart(&[(s.a, 6)]);
    ship_cart.set_shipping_method("std").unwrap();
    let ship = free_shipping_over_50()
        .priority(3)
        .stacking(Stacking::default().group("shipping"));
    let priced =
        s.w.price(&ship_cart, vec![items.clone(), order.clone(), ship.clone()]);
    assert_eq!(
        rejection(&priced, &order),
        Rejection::NotCombinable { with: items.id }
    );
    assert!(priced.outcome(ship.id).unwrap().applied());
    // 60.00 − 6.00 = 54.00, shipping free.
    assert_eq!(priced.total, usd("54.00"));
}

#[test]
fn best_for_customer_picks_the_most_valuable_combination() {
    let s = shop();
    let cart = s.w.cart(&[(s.a, 3)]); // 30.00
    // Exclusive 10 % (3.00) has the best priority, but 2.00 + 2.00 is worth more.
    let excl = Promotion::new("exclusive 10%", percent_items(LineFilter::Any, 10))
        .priority(1)
        .stacking(Stacking::default().exclusive(true));
    let two_a = Promotion::new(
        "2 off",
        Action::AmountOffOrder {
            amount: usd("2.00"),
        },
    )
    .priority(2);
    let two_b = Promotion::new(
        "2 more off",
        Action::AmountOffOrder {
            amount: usd("2.00"),
        },
    )
    .priority(3);
    let promos = vec![excl.clone(), two_a.clone(), two_b.clone()];
    let all = s.w.price(&cart, promos.clone());
    assert_eq!(
        all.discount_total,
        usd("3.00"),
        "apply-all takes the exclusive first"
    );
    let extra = Extra {
        settings: PromotionSettings::default().policy(StackingPolicy::BestForCustomer),
        ..Extra::default()
    };
    let best = s.w.price_with(&cart, promos, &extra);
    assert_eq!(best.discount_total, usd("4.00"));
    assert_eq!(rejection(&best, &excl), Rejection::NotBest);
    // A tie goes to the combination earliest in priority order.
    let five = Promotion::new(
        "exclusive 4 off",
        Action::AmountOffOrder {
            amount: usd("4.00"),
        },
    )
    .priority(0)
    .stacking(Stacking::default().exclusive(true));
    let tie =
        s.w.price_with(&cart, vec![five.clone(), two_a, two_b], &extra);
    assert_eq!(tie.discount_total, usd("4.00"));
    assert!(tie.outcome(five.id).unwrap().applied());
}

// ----- coupon codes and rejections ------------------------------------------

#[test]
fn every_code_rejection_reason() {
    let s = shop();
    let now = s.w.now;
    let coded = |name: &str| Promotion::new(name, percent_items(LineFilter::Any, 10)).coded();
    let ok = coded("ok");
    let later = coded("later").window(Some(now + Duration::days(1)), None);
    let over = coded("over").window(None, Some(now - Duration::seconds(1)));
    let used = coded("used");
    let picky = coded("picky").when(Condition::ItemCount {
        op: Op::Gte,
        count: 5,
    });
    let dollars = Promotion::new(
        "dollars",
        Action::AmountOffOrder {
            amount: usd("1.00"),
        },
    )
    .coded();
    let coupons = vec![
        Coupon::new("ok", ok.id, None).unwrap(),
        Coupon::new("later", later.id, None).unwrap(),
        Coupon::new("over", over.id, None).unwrap(),
        Coupon::new("used", used.id, Some(1)).unwrap(),
        Coupon::new("picky", picky.id, None).unwrap(),
        Coupon::new("dollars", dollars.id, None).unwrap(),
    ];
    let mut cart = s.w.cart_in(Currency::EUR, &[(s.a, 1)]);
    for code in [" ok ", "Later", "OVER", "used", "picky", "dollars", "nope"] {
        cart.add_coupon_code(code).unwrap();
    }
    let extra = Extra {
        coupons,
        usage: [("coupon:USED:uses".to_owned(), 1)].into(),
        ..Extra::default()
    };
    let priced =
        s.w.price_with(&cart, vec![ok, later, over, used, picky, dollars], &extra);
    let reason = |code: &str| priced.code_outcome(code).unwrap().outcome.clone();
    assert!(matches!(reason("OK"), Outcome::Applied { .. }));
    let not = |code: &str| match reason(code) {
        Outcome::NotApplied { reason } => reason,
        applied => panic!("{code} applied: {applied:?}"),
    };
    assert!(matches!(not("LATER"), Rejection::NotStarted { .. }));
    assert!(matches!(not("OVER"), Rejection::Expired { .. }));
    assert_eq!(
        not("USED"),
        Rejection::UsedUp {
            counter: "coupon:USED:uses".into(),
            limit: 1,
            used: 1
        }
    );
    assert!(matches!(
        not("PICKY"),
        Rejection::ConditionsNotMet { comparisons } if comparisons[0].actual == "1"
    ));
    assert_eq!(
        not("DOLLARS"),
        Rejection::WrongCurrency {
            expected: vec![Currency::USD],
            actual: Currency::EUR
        }
    );
    assert_eq!(not("NOPE"), Rejection::UnknownCode);
    // Only "ok" applied: 10 % of 9.00 EUR.
    assert_eq!(priced.discount_total, money("0.90", Currency::EUR));
}

#[test]
fn limits_become_usage_claims_and_a_budget_caps_the_discount() {
    let s = shop();
    let budget = Promotion::new(
        "5 off",
        Action::AmountOffOrder {
            amount: usd("5.00"),
        },
    )
    .limits(
        Limits::default()
            .total_uses(Some(100))
            .per_customer(Some(1))
            .budget(Some(usd("10.00"))),
    );
    let who = CustomerId::new();
    let extra = Extra {
        customer: cartwright::pricing::CustomerFacts::default().id(Some(who)),
        usage: [(format!("promotion:{}:budget", budget.id), 700)].into(),
        ..Extra::default()
    };
    let priced =
        s.w.price_with(&s.w.cart(&[(s.a, 1)]), vec![budget.clone()], &extra);
    // 7.00 of the 10.00 budget is spent: the discount is capped at 3.00.
    assert_eq!(priced.discount_total, usd("3.00"));
    let claims: Vec<(String, u64, u64)> = priced
        .usage_claims
        .iter()
        .map(|c| (c.counter.clone(), c.amount, c.limit))
        .collect();
    assert_eq!(
        claims,
        [
            (format!("promotion:{}:uses", budget.id), 1, 100),
            (format!("promotion:{}:customer:{who}", budget.id), 1, 1),
            (format!("promotion:{}:budget", budget.id), 300, 1000),
        ]
    );
    // A per-customer limit needs someone to count.
    let guest = s.w.price(&s.w.cart(&[(s.a, 1)]), vec![budget.clone()]);
    assert_eq!(rejection(&guest, &budget), Rejection::NeedsCustomer);

    // Under `BudgetPolicy::Refuse` the 5.00 does not fit in the 3.00 left:
    // nothing, and the explanation says the budget is used up.
    let strict = budget.clone().limits(
        Limits::default()
            .budget(Some(usd("10.00")))
            .budget_policy(BudgetPolicy::Refuse),
    );
    let extra = Extra {
        usage: [(format!("promotion:{}:budget", strict.id), 700)].into(),
        ..Extra::default()
    };
    let priced =
        s.w.price_with(&s.w.cart(&[(s.a, 1)]), vec![strict.clone()], &extra);
    assert_eq!(priced.discount_total, usd("0.00"));
    assert!(matches!(
        rejection(&priced, &strict),
        Rejection::UsedUp {
            limit: 1000,
            used: 700,
            ..
        }
    ));
    // With 5.00 left it fits whole.
    let extra = Extra {
        usage: [(format!("promotion:{}:budget", strict.id), 500)].into(),
        ..Extra::default()
    };
    let priced = s.w.price_with(&s.w.cart(&[(s.a, 1)]), vec![strict], &extra);
    assert_eq!(priced.discount_total, usd("5.00"));
    // The setting is optional in JSON and reads "cap" when absent.
    let json = serde_json::to_value(Limits::default()).unwrap();
    assert_eq!(json["budget_policy"], "cap");
}

// ----- windows ------------------------------------------------------------------

#[test]
fn windows_at_their_boundaries_and_across_daylight_saving() {
    let s = shop();
    // A sale from midnight to midnight, New York time, on the day the
    // clocks go forward (8 March 2026): 00:00 EST (−05:00) to 00:00 EDT
    // (−04:00), a 23-hour day. Instants are stored in UTC.
    let start: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-03-08T00:00:00-05:00")
        .unwrap()
        .into();
    let end: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-03-09T00:00:00-04:00")
        .unwrap()
        .into();
    assert_eq!(end - start, Duration::hours(23));
    let p = Promotion::new("dst sale", percent_items(LineFilter::Any, 10))
        .window(Some(start), Some(end));
    let set = s.w.set(vec![p.clone()], &Extra::default());
    let cart = s.w.cart(&[(s.a, 1)]);
    let at = |t: DateTime<Utc>| s.w.price_set(&cart, &set, &Extra::default(), t);
    let second = Duration::seconds(1);
    assert!(
        matches!(rejection(&at(start - second), &p), Rejection::NotStarted { starts_at } if starts_at == start)
    );
    assert!(at(start).outcome(p.id).unwrap().applied());
    // 02:30 local does not exist that day; 07:30 UTC is 03:30 EDT, inside.
    let mid: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-03-08T07:30:00Z")
        .unwrap()
        .into();
    assert!(at(mid).outcome(p.id).unwrap().applied());
    assert!(at(end - second).outcome(p.id).unwrap().applied());
    assert!(matches!(rejection(&at(end), &p), Rejection::Expired { ended_at } if ended_at == end));
}

// ----- price lists ----------------------------------------------------------------

#[test]
fn price_lists_set_the_unit_price_and_say_why() {
    let s = shop();
    let vip = CustomerGroupId::new();
    let sale = PriceList::new("summer sale", PriceListKind::Sale, 2, Currency::USD).with_price(
        s.a,
        1,
        usd("8.00"),
    );
    let mut volume = PriceList::new("volume", PriceListKind::Standard, 1, Currency::USD)
        .with_price(s.a, 10, usd("7.50"));
    volume.customer_groups.insert(vip);
    let extra = |groups: Vec<CustomerGroupId>| Extra {
        book: PriceBook::new(vec![sale.clone(), volume.clone()]).unwrap(),
        customer: cartwright::pricing::CustomerFacts::default()
            .groups(groups.into_iter().collect()),
        ..Extra::default()
    };
    let p =
        s.w.price_with(&s.w.cart(&[(s.a, 10)]), vec![], &extra(vec![]));
    assert_eq!(
        (p.lines[0].unit_price, p.lines[0].list_price),
        (usd("8.00"), usd("10.00"))
    );
    assert!(
        matches!(&p.lines[0].price_source, PriceSource::PriceList { name, sale: true, .. } if name == "summer sale")
    );
    let p =
        s.w.price_with(&s.w.cart(&[(s.a, 10)]), vec![], &extra(vec![vip]));
    assert_eq!(p.lines[0].unit_price, usd("7.50"));
    assert_eq!(p.subtotal, usd("75.00"));
    // Promotions work on the list price: 10 % of 75.00.
    let ten = Promotion::new("ten", percent_items(LineFilter::Any, 10));
    let p =
        s.w.price_with(&s.w.cart(&[(s.a, 10)]), vec![ten], &extra(vec![vip]));
    assert_eq!(p.discount_total, usd("7.50"));
}

// ----- tax ---------------------------------------------------------------------------

#[test]
fn tax_table_inclusive_exclusive_and_rounding() {
    use cartwright::customer::{Address, NewAddress};
    use cartwright::tax::{TaxRounding, TaxTable};
    let mut s = shop();
    let address = |country: &str, region: &str| {
        Address::new(
            NewAddress::default()
                .name("N")
                .line1("1 Road")
                .city("Town")
                .region(region)
                .country(country),
        )
        .unwrap()
    };
    // Inclusive 20 % VAT in GB: 12.00 holds 12 × 0.2 / 1.2 = 2.00 of tax.
    let e = s.w.item("E", &[usd("12.00")], &[], &[], &[]);
    s.w.tax = Box::new(
        TaxTable::new()
            .with_rate("VAT 20%", "GB", None, "standard", Decimal::new(2, 1))
            .unwrap()
            .prices_include_tax(true),
    );
    let mut cart = s.w.cart(&[(e, 1)]);
    cart.set_shipping_address(address("GB", "")).unwrap();
    let p = s.w.price(&cart, vec![]);
    assert_eq!(
        (p.lines[0].tax, p.total, p.tax_total),
        (usd("2.00"), usd("12.00"), usd("2.00"))
    );
    assert!(p.prices_include_tax);

    // Exclusive, three lines of 0.10 at 7.5 %: per line 0.0075 → 0.01 each
    // (0.03); per total 0.0225 → 0.02, split 1 : 1 : 1 by largest remainder.
    let tiny = s.w.item("T", &[usd("0.10")], &[], &[], &[]);
    let tiny2 = s.w.item("T2", &[usd("0.10")], &[], &[], &[]);
    let tiny3 = s.w.item("T3", &[usd("0.10")], &[], &[], &[]);
    let table = |rounding| {
        TaxTable::new()
            .with_rate("State", "US", Some("CA"), "standard", Decimal::new(75, 3))
            .unwrap()
            .with_rate("Federal-ish", "US", None, "standard", Decimal::new(1, 1))
            .unwrap()
            .rounding(rounding, RoundingMode::HalfUp)
    };
    let mut cart = s.w.cart(&[(tiny, 1), (tiny2, 1), (tiny3, 1)]);
    cart.set_shipping_address(address("US", "ca")).unwrap();
    s.w.tax = Box::new(table(TaxRounding::PerLine));
    assert_eq!(s.w.price(&cart, vec![]).tax_total, usd("0.03"));
    s.w.tax = Box::new(table(TaxRounding::PerTotal));
    let p = s.w.price(&cart, vec![]);
    assert_eq!(p.tax_total, usd("0.02"));
    assert_eq!(p.tax_lines[0].name, "State", "the region's rate wins");
    // Another state falls back to the country-wide 10 %.
    cart.set_shipping_address(address("US", "NY")).unwrap();
    assert_eq!(s.w.price(&cart, vec![]).tax_total, usd("0.03"));
    // Tax is on the discounted amount: 50 % off leaves 0.15 → 0.015 → 0.02.
    let half = Promotion::new("half", percent_items(LineFilter::Any, 50));
    assert_eq!(s.w.price(&cart, vec![half]).tax_total, usd("0.02"));
}

// ----- custom rules ------------------------------------------------------------

struct BigCart;

impl cartwright::pricing::PricingRule for BigCart {
    fn name(&self) -> &str {
        "big_cart"
    }
    fn condition(
        &self,
        settings: &serde_json::Value,
        cart: &cartwright::pricing::RuleCart<'_>,
    ) -> cartwright::pricing::Verdict {
        let min = settings["lines"].as_u64().unwrap() as usize;
        if cart.lines.len() >= min {
            cartwright::pricing::Verdict::Met
        } else {
            cartwright::pricing::Verdict::NotMet(Comparison::new(
                "lines",
                Op::Gte,
                min.to_string(),
                cart.lines.len().to_string(),
            ))
        }
    }
    fn action(
        &self,
        _settings: &serde_json::Value,
        cart: &cartwright::pricing::RuleCart<'_>,
    ) -> cartwright::Result<Vec<(cartwright::id::LineId, cartwright::money::Money)>> {
        // One cent off every line, and an attempt to take more than a line holds.
        Ok(cart
            .lines
            .iter()
            .map(|l| (l.line_id, l.remaining.checked_add(usd("0.01")).unwrap()))
            .chain(cart.lines.iter().map(|l| (l.line_id, usd("0.01"))))
            .collect())
    }
}

#[test]
fn custom_rules_as_condition_and_action() {
    let s = shop();
    let mut rules = cartwright::pricing::RuleRegistry::new();
    rules.register(std::sync::Arc::new(BigCart)).unwrap();
    assert!(
        rules.register(std::sync::Arc::new(BigCart)).is_err(),
        "names are unique"
    );
    let extra = Extra {
        rules,
        ..Extra::default()
    };
    let p = Promotion::new(
        "rule",
        Action::Custom {
            rule: "big_cart".into(),
            settings: serde_json::json!({}),
        },
    )
    .when(Condition::Custom {
        rule: "big_cart".into(),
        settings: serde_json::json!({ "lines": 2 }),
    });
    // Two lines: the rule's discounts are capped at what each line holds.
    let priced =
        s.w.price_with(&s.w.cart(&[(s.a, 1), (s.c, 1)]), vec![p.clone()], &extra);
    assert_eq!(discounts(&priced), ["10.00", "3.33"]);
    // One line: not met, with the rule's own comparison.
    let priced =
        s.w.price_with(&s.w.cart(&[(s.a, 1)]), vec![p.clone()], &extra);
    assert!(matches!(
        rejection(&priced, &p),
        Rejection::ConditionsNotMet { comparisons } if comparisons[0].subject == "lines"
    ));
    // A promotion naming an unregistered rule is refused by the check that
    // saving runs, and left out of a compiled set (reported, never failing
    // pricing).
    assert!(matches!(
        cartwright::pricing::PromotionSet::check_one(&p, &cartwright::pricing::RuleRegistry::new()),
        Err(cartwright::Error::NotFound { .. })
    ));
    let unknown = cartwright::pricing::PromotionSet::new(
        vec![p.clone()],
        cartwright::pricing::RuleRegistry::new(),
        PromotionSettings::default(),
    )
    .unwrap();
    assert_eq!(unknown.unusable().len(), 1);
    assert_eq!(unknown.unusable()[0].0, p.id);
}

#[test]
fn two_codes_for_one_promotion_count_once_and_a_missing_gift_is_reported() {
    let s = shop();
    let p = Promotion::new("ten", percent_items(LineFilter::Any, 10)).coded();
    let extra = Extra {
        coupons: vec![
            Coupon::new("ONE", p.id, None).unwrap(),
            Coupon::new("TWO", p.id, None).unwrap(),
        ],
        ..Extra::default()
    };
    let mut cart = s.w.cart(&[(s.a, 1)]);
    cart.add_coupon_code("one").unwrap();
    cart.add_coupon_code("two").unwrap();
    let priced = s.w.price_with(&cart, vec![p.clone()], &extra);
    assert_eq!(priced.discount_total, usd("1.00"), "applied once");
    assert!(priced.code_outcome("ONE").unwrap().applied());
    // The second code says the promotion applied already, through ONE:
    // never a refusal while its discount is on the cart.
    assert_eq!(
        priced.code_outcome("TWO").unwrap().outcome,
        cartwright::pricing::Outcome::AlreadyApplied {
            by: Some("ONE".into())
        }
    );

    // A gift that is not in the catalog given to pricing cannot be given.
    let ghost = VariantId::new();
    let gift = Promotion::new(
        "ghost gift",
        Action::Gift {
            variant_id: ghost,
            quantity: 1,
        },
    );
    let priced = s.w.price(&s.w.cart(&[(s.a, 1)]), vec![gift.clone()]);
    assert_eq!(
        rejection(&priced, &gift),
        Rejection::GiftUnavailable { variant_id: ghost }
    );
    assert_eq!(priced.lines.len(), 1);
}

#[test]
fn shipping_option_conditions_and_method_limited_shipping_discounts() {
    let s = shop();
    let express_only = Promotion::new(
        "half off express",
        Action::Shipping {
            reward: Reward::Percent { percent: pct(50) },
            methods: vec!["express".into()],
        },
    );
    let on_std = Promotion::new(
        "std buyers 1 off",
        Action::AmountOffOrder {
            amount: usd("1.00"),
        },
    )
    .when(Condition::ShippingOption {
        op: Op::Eq,
        codes: vec!["std".into()],
    });
    let mut cart = s.w.cart(&[(s.a, 1)]);
    cart.set_shipping_method("std").unwrap();
    let priced = s.w.price(&cart, vec![express_only.clone(), on_std.clone()]);
    assert!(priced.outcome(on_std.id).unwrap().applied());
    assert_eq!(
        rejection(&priced, &express_only),
        Rejection::NothingToDiscount
    );
    assert_eq!(priced.shipping.as_ref().unwrap().total, usd("5.99"));
    assert_eq!(priced.total, usd("14.99"));
}

#[test]
fn rejections_read_as_sentences() {
    let s = shop();
    let p = free_shipping_over_50();
    let mut cart = s.w.cart(&[(s.a, 1)]);
    cart.set_shipping_method("std").unwrap();
    let priced = s.w.price(&cart, vec![p.clone()]);
    assert_eq!(
        rejection(&priced, &p).to_string(),
        "subtotal 10.00 USD is not >= 50.00 USD"
    );
    assert_eq!(
        Rejection::UsedUp {
            counter: "c".into(),
            limit: 100,
            used: 100
        }
        .to_string(),
        "used up (100 of 100)"
    );
}

#[test]
fn amounts_beyond_range_are_typed_errors_not_panics() {
    // A price past the bound every entered amount has is refused, naming it.
    let err = Product::new(NewProduct::new("HUGE").variants(vec![
        NewVariant::shipped("SKU-HUGE").prices(vec![usd("792281625142643375935439503.35")]),
    ]))
    .unwrap_err();
    match &err {
        cartwright::Error::Invalid { field, reason } => {
            assert_eq!(*field, "amount");
            assert!(
                reason.contains("792281625142643375935439503.35"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    // The largest price there is, at the largest quantities and a percentage
    // that rounds: priced exactly, no overflow.
    let mut s = shop();
    let max = usd(&format!("{}.00", cartwright::money::MAX_AMOUNT_UNITS));
    let huge = s.w.item("HUGE", &[max], &[], &[], &[]);
    let cart = s.w.cart(&[(huge, 10_000), (s.a, 1)]);
    let half = Promotion::new(
        "half",
        Action::PercentOffItems {
            target: LineFilter::Any,
            percent: Decimal::new(50_000_001, 6),
            max_discount: None,
            max_quantity_per_line: Some(9_999),
        },
    );
    let p = s.w.price(&cart, vec![half]);
    let subtotal = max
        .checked_mul_qty(10_000)
        .unwrap()
        .checked_add(usd("10.00"))
        .unwrap();
    assert_eq!(p.subtotal, subtotal);
    assert!(p.total.checked_cmp(&subtotal).unwrap().is_lt() && !p.total.is_negative());
}

#[test]
fn the_tax_table_taxes_discounted_shipping_by_its_class() {
    use cartwright::customer::{Address, NewAddress};
    use cartwright::tax::TaxTable;
    let mut s = shop();
    s.w.tax = Box::new(
        TaxTable::new()
            .with_rate("VAT 20%", "FR", None, "standard", Decimal::new(2, 1))
            .unwrap()
            .with_rate("VAT 10%", "FR", None, "shipping", Decimal::new(1, 1))
            .unwrap()
            .shipping_class("shipping"),
    );
    let mut cart = s.w.cart(&[(s.a, 1)]);
    cart.set_shipping_method("std").unwrap();
    cart.set_shipping_address(
        Address::new(
            NewAddress::default()
                .name("N")
                .line1("1 rue")
                .city("Paris")
                .country("FR"),
        )
        .unwrap(),
    )
    .unwrap();
    // Half off shipping: 5.99 − 3.00 (2.995 rounded half up) = 2.99, taxed
    // 10 % = 0.30; the line 10.00 taxed 20 % = 2.00.
    let half_ship = Promotion::new(
        "half shipping",
        Action::Shipping {
            reward: Reward::Percent { percent: pct(50) },
            methods: vec![],
        },
    );
    let p = s.w.price(&cart, vec![half_ship]);
    let ship = p.shipping.as_ref().unwrap();
    assert_eq!(
        (ship.discount, ship.tax, ship.total),
        (usd("3.00"), usd("0.30"), usd("3.29"))
    );
    assert_eq!(p.tax_total, usd("2.30"));
    assert_eq!(p.total, usd("15.29"));
    let names: Vec<&str> = p.tax_lines.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["VAT 20%", "VAT 10%"]);
}

#[test]
fn an_automatic_promotion_in_another_currency_says_so_like_its_coded_twin() {
    let s = shop();
    let eur = |a: &str| cartwright::money::Money::parse(a, Currency::EUR).unwrap();
    let five_eur = |name: &str| {
        Promotion::new(
            name,
            Action::AmountOffOrder {
                amount: eur("5.00"),
            },
        )
    };
    let automatic = five_eur("5 EUR off");
    let coded = five_eur("5 EUR off, coded").coded();
    let extra = Extra {
        coupons: vec![Coupon::new("EURO", coded.id, None).unwrap()],
        ..Extra::default()
    };
    let mut cart = s.w.cart(&[(s.a, 1)]); // USD
    cart.add_coupon_code("euro").unwrap();
    let p =
        s.w.price_with(&cart, vec![automatic.clone(), coded.clone()], &extra);
    let reason = |id| {
        p.promotions
            .iter()
            .find(|o| o.promotion_id == Some(id))
            .and_then(|o| o.rejection().cloned())
    };
    let expected = Rejection::WrongCurrency {
        expected: vec![Currency::EUR],
        actual: Currency::USD,
    };
    assert_eq!(reason(automatic.id), Some(expected.clone()));
    assert_eq!(reason(coded.id), Some(expected));
    assert!(p.discount_total.is_zero());
    // A cart in its currency gets it, and no such outcome.
    let mut eur_cart = cartwright::cart::Cart::new(Currency::EUR, None, chrono::Utc::now());
    eur_cart.add_line(s.a, 1).unwrap();
    let p =
        s.w.price_with(&eur_cart, vec![automatic.clone()], &Extra::default());
    assert!(p.promotions.iter().all(|o| {
        o.rejection()
            .is_none_or(|r| !matches!(r, Rejection::WrongCurrency { .. }))
    }));
}

#[test]
fn the_code_of_an_automatic_promotion_says_it_applied() {
    let s = shop();
    let ten = Promotion::new("ten automatic", percent_items(LineFilter::Any, 10));
    let big_spender = Promotion::new("ten over 1000", percent_items(LineFilter::Any, 10)).when(
        Condition::Subtotal {
            op: Op::Gte,
            amount: usd("1000.00"),
        },
    );
    let extra = Extra {
        coupons: vec![
            Coupon::new("TEN", ten.id, None).unwrap(),
            Coupon::new("BIG", big_spender.id, None).unwrap(),
        ],
        ..Extra::default()
    };
    let mut cart = s.w.cart(&[(s.a, 1)]);
    cart.add_coupon_code("ten").unwrap();
    cart.add_coupon_code("big").unwrap();
    let p =
        s.w.price_with(&cart, vec![ten.clone(), big_spender.clone()], &extra);
    assert_eq!(p.discount_total, usd("1.00"), "applied once");
    let code = p.code_outcome("TEN").unwrap();
    assert!(code.applied());
    assert_eq!(
        code.outcome,
        cartwright::pricing::Outcome::AlreadyApplied { by: None }
    );
    // One that does not apply: its code says the same reason, not
    // "already applied".
    let own = p
        .promotions
        .iter()
        .find(|o| o.promotion_id == Some(big_spender.id) && o.code.is_none())
        .unwrap();
    assert_eq!(p.code_outcome("BIG").unwrap().rejection(), own.rejection());
    assert!(own.rejection().is_some());
}

#[test]
fn an_amount_off_each_in_line_tiers_and_first_and_additional() {
    let s = shop();
    // A (10.00), B (25.00), C (3.33): from a 30.00 subtotal, 5.00 off each
    // line, never below what it costs — C gets 3.33.
    let cart = s.w.cart(&[(s.a, 1), (s.b, 1), (s.c, 1)]);
    let each = Promotion::new(
        "5 off each line from 30",
        Action::Tiered {
            target: LineFilter::Any,
            tiers: Tiers::Subtotal {
                tiers: vec![SubtotalTier {
                    min: usd("30.00"),
                    reward: Reward::AmountEach {
                        amount: usd("5.00"),
                    },
                }],
            },
        },
    );
    let p = s.w.price(&cart, vec![each]);
    assert_eq!(discounts(&p), ["5.00", "5.00", "3.33"]);
    // Below the tier: nothing.
    let small = s.w.cart(&[(s.a, 1)]);
    let p = s.w.price(
        &small,
        vec![Promotion::new(
            "5 off each line from 30",
            Action::Tiered {
                target: LineFilter::Any,
                tiers: Tiers::Subtotal {
                    tiers: vec![SubtotalTier {
                        min: usd("30.00"),
                        reward: Reward::AmountEach {
                            amount: usd("5.00"),
                        },
                    }],
                },
            },
        )],
    );
    assert!(p.discount_total.is_zero());
    // In first-and-additional an amount is off each unit either way.
    let three = s.w.cart(&[(s.a, 3)]);
    let flexi = |reward: Reward| {
        Promotion::new(
            "flexi",
            Action::FirstAndAdditional {
                target: LineFilter::Any,
                first: reward.clone(),
                additional: reward,
                max_units: None,
            },
        )
    };
    let amount = s.w.price(
        &three,
        vec![flexi(Reward::Amount {
            amount: usd("1.00"),
        })],
    );
    let each = s.w.price(
        &three,
        vec![flexi(Reward::AmountEach {
            amount: usd("1.00"),
        })],
    );
    assert_eq!(amount.discount_total, usd("3.00"));
    assert_eq!(each.discount_total, amount.discount_total);
}
