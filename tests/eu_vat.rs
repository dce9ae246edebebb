//! EU VAT by destination through the engine, on both stores: the
//! destination's rate and categories (OSS), the same gross price in every
//! country, reverse charge for a valid-format VAT number of another member
//! state (and the shop's check), exports free of VAT, home rates under the
//! threshold.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::Arc;

use cartwright::id::VariantId;
use cartwright::prelude::*;
use cartwright::pricing::PricedCart;
use cartwright::tax::{EuVat, TaxCalculator, VatNumberCheck};
use common::{Backend, ManyMethods, Shop, ShopOptions};
use rust_decimal::Decimal;

fn eur(s: &str) -> Money {
    Money::parse(s, Currency::EUR).unwrap()
}

async fn shop(backend: Backend, vat: EuVat) -> Shop {
    let options = ShopOptions {
        tax: Some(Arc::new(vat) as Arc<dyn TaxCalculator>),
        shipping: Some(Arc::new(ManyMethods)),
        ..ShopOptions::default()
    };
    Shop::with(backend, options).await
}

async fn item(shop: &Shop, sku: &str, price: &str, class: &str) -> VariantId {
    let product = shop
        .product_with(
            sku,
            NewVariant::shipped("")
                .prices(vec![eur(price)])
                .tax_class(class)
                .status(Status::Active),
        )
        .await;
    let v = product.variants()[0].id();
    shop.engine
        .set_stock(&Actor::System, v, shop.warehouse, 10)
        .await
        .unwrap();
    v
}

/// Prices `lines` shipped (standard, 5.00) to `country`, for `buyer` (a
/// guest when `None`).
async fn priced(
    shop: &Shop,
    lines: &[(VariantId, u32)],
    country: &str,
    buyer: Option<cartwright::id::CustomerId>,
) -> PricedCart {
    let actor = buyer.map_or(Actor::Guest, Actor::Customer);
    let cart = shop
        .engine
        .create_cart(&actor, Currency::EUR)
        .await
        .unwrap();
    for (v, q) in lines {
        shop.engine
            .add_item(&actor, cart.id(), *v, *q)
            .await
            .unwrap();
    }
    shop.engine
        .set_shipping_address(
            &actor,
            cart.id(),
            NewAddress::new("Ada", "1 Rue", "City", "10000", country),
        )
        .await
        .unwrap();
    shop.engine
        .set_shipping_method(&actor, cart.id(), "standard")
        .await
        .unwrap();
    shop.engine.price_cart(&actor, cart.id()).await.unwrap()
}

async fn consumers_pay_the_destination_rate(backend: Backend) {
    let vat = EuVat::new("DE")
        .unwrap()
        .rate("FR", "reduced", Decimal::new(55, 3))
        .unwrap();
    let shop = shop(backend, vat).await;
    let a = item(&shop, "A", "100.00", "standard").await;
    let book = item(&shop, "B", "10.00", "reduced").await;
    // Germany: 19 % on the item and the shipping.
    let de = priced(&shop, &[(a, 1)], "DE", None).await;
    assert_eq!(de.tax_total, eur("19.95"));
    assert_eq!(de.tax_lines[0].name, "VAT DE 19%");
    // France: 20 %, the book at its reduced 5.5 %.
    let fr = priced(&shop, &[(a, 1), (book, 1)], "FR", None).await;
    assert_eq!(fr.lines[0].tax, eur("20.00"));
    assert_eq!(fr.lines[1].tax, eur("0.55"));
    assert_eq!(fr.shipping.as_ref().unwrap().tax, eur("1.00"));
    let names: Vec<&str> = fr.tax_lines.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, vec!["VAT FR 20%", "VAT FR 5.5%"]);
    // Austria has no "reduced" rate set here: its standard 20 %.
    let at = priced(&shop, &[(book, 1)], "AT", None).await;
    assert_eq!(at.lines[0].tax, eur("2.00"));
    // Outside the EU: an export, no VAT.
    let us = priced(&shop, &[(a, 1)], "US", None).await;
    assert_eq!(us.tax_total, eur("0.00"));
    assert_eq!(us.total, eur("105.00"));
}

async fn the_same_gross_price_everywhere(backend: Backend) {
    let shop = shop(backend, EuVat::new("DE").unwrap().prices_include_vat(true)).await;
    let a = item(&shop, "A", "119.00", "standard").await;
    let de = priced(&shop, &[(a, 1)], "DE", None).await;
    let fr = priced(&shop, &[(a, 1)], "FR", None).await;
    let hu = priced(&shop, &[(a, 1)], "HU", None).await;
    assert_eq!(
        (de.total, fr.total, hu.total),
        (eur("124.00"), eur("124.00"), eur("124.00"))
    );
    assert_eq!(de.lines[0].tax, eur("19.00"));
    assert_eq!(fr.lines[0].tax, eur("19.83"));
    assert_eq!(hu.lines[0].tax, eur("25.30"));
    assert!(de.prices_include_tax && fr.prices_include_tax);
}

/// A check that knows one number only.
struct Known(&'static str);

impl VatNumberCheck for Known {
    fn is_valid(&self, number: &str) -> bool {
        number == self.0
    }
}

async fn businesses_of_another_state_are_reverse_charged(backend: Backend) {
    let shop = shop(
        backend,
        EuVat::new("DE")
            .unwrap()
            .vat_number_check(Arc::new(Known("FRXX123456789"))),
    )
    .await;
    let a = item(&shop, "A", "100.00", "standard").await;
    let buyer = |email: &'static str, vat: &'static str| {
        let shop = &shop;
        async move {
            let c = shop.customer(email).await;
            shop.engine
                .set_tax_details(&Actor::Customer(c.id()), c.id(), Some(vat), None)
                .await
                .unwrap();
            c.id()
        }
    };
    // A French business with a number the check knows: no VAT, and why.
    let fr = buyer("fr@example.com", "FR XX 123456789").await;
    let p = priced(&shop, &[(a, 1)], "FR", Some(fr)).await;
    assert_eq!(p.tax_total, eur("0.00"));
    assert_eq!(p.tax_lines[0].name, "VAT reverse charge");
    assert_eq!(p.total, eur("105.00"));
    // A well-formed number the check does not know: VAT.
    let other = buyer("fr2@example.com", "FRYY123456789").await;
    let p = priced(&shop, &[(a, 1)], "FR", Some(other)).await;
    assert_eq!(p.tax_total, eur("21.00"));
    // A German business buying from a German shop pays German VAT.
    let de = buyer("de@example.com", "DE123456789").await;
    let p = priced(&shop, &[(a, 1)], "DE", Some(de)).await;
    assert_eq!(p.tax_total, eur("19.95"));
    // A number of the wrong shape is no reason for reverse charge.
    let bad = buyer("bad@example.com", "FR123").await;
    let p = priced(&shop, &[(a, 1)], "FR", Some(bad)).await;
    assert_eq!(p.tax_total, eur("21.00"));
}

async fn under_the_threshold_home_rates_apply(backend: Backend) {
    let shop = shop(backend, EuVat::new("DE").unwrap().home_rates(true)).await;
    let a = item(&shop, "A", "100.00", "standard").await;
    let fr = priced(&shop, &[(a, 1)], "FR", None).await;
    assert_eq!(fr.tax_total, eur("19.95"));
    assert_eq!(fr.tax_lines[0].name, "VAT DE 19%");
}

conformance!(
    consumers_pay_the_destination_rate,
    the_same_gross_price_everywhere,
    businesses_of_another_state_are_reverse_charged,
    under_the_threshold_home_rates_apply,
);
