//! Unit tests of the catalog types, compiled only under #[cfg(test)].
use super::*;

fn variant(sku: &str) -> NewVariant {
    NewVariant::digital(sku).prices(vec![Money::parse("10.00", Currency::USD).unwrap()])
}

#[test]
#[allow(deprecated)]
fn shipping_is_explicit_and_the_old_constructor_keeps_its_meaning() {
    assert!(NewVariant::shipped("A").requires_shipping);
    assert!(!NewVariant::digital("B").requires_shipping);
    assert!(!NewVariant::new("C").requires_shipping);
    assert!(
        NewVariant::new("D")
            .requires_shipping(true)
            .requires_shipping
    );
}

#[test]
fn duplicate_skus_in_one_product_are_rejected() {
    let err = Product::new(NewProduct {
        title: "Tee".into(),
        variants: vec![variant("tee-s"), variant("TEE-S")],
        ..NewProduct::default()
    })
    .unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { what: "sku", .. }));
}

#[test]
fn prices_must_be_exact_and_not_negative() {
    let mut v = variant("a");
    v.prices = vec![Money::new(
        rust_decimal::Decimal::new(1999, 3),
        Currency::USD,
    )];
    assert!(matches!(
        Product::new(NewProduct {
            title: "x".into(),
            variants: vec![v],
            ..Default::default()
        }),
        Err(Error::NotMinorUnits { .. })
    ));
    let mut v = variant("a");
    v.prices = vec![Money::from_minor(-1, Currency::USD)];
    assert!(
        Product::new(NewProduct {
            title: "x".into(),
            variants: vec![v],
            ..Default::default()
        })
        .is_err()
    );
}

#[test]
fn only_active_on_active_is_purchasable() {
    let mut p = Product::new(NewProduct {
        title: "Tee".into(),
        status: Status::Active,
        variants: vec![NewVariant {
            status: Status::Active,
            ..variant("a")
        }],
        ..NewProduct::default()
    })
    .unwrap();
    let v = p.variants()[0].clone();
    assert!(p.purchasable(&v).is_ok());
    p.set_status(Status::Archived);
    assert!(matches!(
        p.purchasable(&v),
        Err(Error::NotPurchasable { .. })
    ));
}
