use super::*;

#[test]
fn generated_codes_are_distinct_normalized_and_long() {
    let codes = generate_codes("spring", 2_000).unwrap();
    let unique: BTreeSet<_> = codes.iter().collect();
    assert_eq!(unique.len(), 2_000);
    for c in &codes {
        assert!(c.starts_with("SPRING-"));
        assert_eq!(normalize_code(c).unwrap(), *c);
        assert_eq!(c.len(), "SPRING-".len() + GENERATED_CODE_CHARS + 3);
    }
    assert!(generate_codes("", 0).is_err());
    assert!(generate_codes("bad code", 1).is_err());
}

#[test]
fn stacking_needs_both_sides_to_accept() {
    let a = Stacking {
        group: "items".into(),
        combines_with: Some(vec!["shipping".into()]),
        ..Stacking::default()
    };
    let b = Stacking {
        group: "shipping".into(),
        ..Stacking::default()
    };
    let c = Stacking {
        group: "items".into(),
        ..Stacking::default()
    };
    assert!(a.combines(&b));
    assert!(!a.combines(&c), "a does not accept its own group");
    assert!(b.combines(&c));
    let x = Stacking {
        exclusive: true,
        ..Stacking::default()
    };
    assert!(!x.combines(&b));
}

#[test]
fn validation_rejects_bad_promotions() {
    let ok = Promotion::new(
        "ten",
        Action::PercentOffOrder {
            percent: Decimal::TEN,
            max_discount: None,
        },
    );
    ok.validate().unwrap();
    let mut bad = ok.clone();
    bad.action = Action::PercentOffOrder {
        percent: Decimal::new(1001, 1),
        max_discount: None,
    };
    assert!(bad.validate().is_err());
    let mut bad = ok.clone();
    bad.conditions.push(Condition::Subtotal {
        op: Op::In,
        amount: Money::from_minor(100, Currency::USD),
    });
    assert!(bad.validate().is_err());
    let mut bad = ok.clone();
    bad.conditions.push(Condition::Currency {
        op: Op::Eq,
        currencies: vec![Currency::USD, Currency::EUR],
    });
    assert!(bad.validate().is_err());
    let mut bad = ok;
    bad.starts_at = Some(Utc::now());
    bad.ends_at = bad.starts_at;
    assert!(bad.validate().is_err());
}
