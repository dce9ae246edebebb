//! Hostile and malformed input, the same on both stores: a typed error that
//! names the user's value (never database text), and nothing changed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use cartwright::fulfillment::ShipmentRequest;
use cartwright::order::LineQuantity;
use cartwright::payment::{ProviderEvent, ProviderEventKind};
use cartwright::prelude::*;
use common::{Backend, Shop, address, usd};

async fn countries_are_checked_against_iso_3166(backend: Backend) {
    let shop = Shop::new(backend).await;
    let cart = shop
        .engine
        .create_cart(&Actor::Guest, Currency::USD)
        .await
        .unwrap();
    let before = shop.snapshot().await;
    for bad in ["ZZ", "usa", "ÜS", "", "U", "X1"] {
        let mut a = address();
        a.country = bad.into();
        match shop
            .engine
            .set_shipping_address(&Actor::Guest, cart.id(), a)
            .await
        {
            Err(Error::Invalid { field, reason }) => {
                assert_eq!(field, "country");
                assert!(reason.contains(&format!("{bad:?}")), "{reason}");
            }
            other => panic!("{bad}: {other:?}"),
        }
    }
    assert_eq!(shop.snapshot().await, before);
    for good in ["us", "GB", " de "] {
        let mut a = address();
        a.country = good.into();
        shop.engine
            .set_shipping_address(&Actor::Guest, cart.id(), a)
            .await
            .unwrap();
    }
}

async fn coupon_codes_are_checked_before_case_folding(backend: Backend) {
    let shop = Shop::new(backend).await;
    let system = Actor::System;
    let promo = shop
        .engine
        .save_promotion(&system, common::ten_percent_coded())
        .await
        .unwrap();
    let before = shop.snapshot().await;
    // The long s folds to S: refused, not taken for SAVE10.
    for bad in [
        "ſave10",
        "SAVE 10",
        "ＳＡＶＥ10",
        "save10\u{200b}",
        "x".repeat(65).as_str(),
    ] {
        assert!(
            matches!(
                shop.engine
                    .create_coupon(&system, promo.id, bad, None)
                    .await,
                Err(Error::Invalid {
                    field: "coupon code",
                    ..
                })
            ),
            "{bad:?}"
        );
    }
    assert_eq!(shop.snapshot().await, before);
    shop.engine
        .create_coupon(&system, promo.id, "save10", None)
        .await
        .unwrap();
    let cart = shop
        .engine
        .create_cart(&Actor::Guest, Currency::USD)
        .await
        .unwrap();
    assert!(
        shop.engine
            .add_coupon_code(&Actor::Guest, cart.id(), "ſave10")
            .await
            .is_err()
    );
    shop.engine
        .add_coupon_code(&Actor::Guest, cart.id(), " Save10 ")
        .await
        .unwrap();
}

async fn duplicates_name_the_users_value_on_every_store(backend: Backend) {
    let shop = Shop::new(backend).await;
    let system = Actor::System;
    let promo = shop
        .engine
        .save_promotion(&system, common::ten_percent_coded())
        .await
        .unwrap();
    shop.engine
        .create_coupon(&system, promo.id, "SAVE10", None)
        .await
        .unwrap();
    shop.product("MUG", "5.00", 1).await;
    let before = shop.snapshot().await;
    match shop
        .engine
        .create_coupon(&system, promo.id, "save10", None)
        .await
    {
        Err(Error::AlreadyExists { what, value }) => {
            assert_eq!((what, value.as_str()), ("coupon code", "SAVE10"));
        }
        other => panic!("{other:?}"),
    }
    let dup = shop
        .engine
        .create_product(
            &system,
            NewProduct::new("Other").variants(vec![
                NewVariant::digital("CUP").prices(vec![usd("1.00")]),
                NewVariant::digital("mug").prices(vec![usd("1.00")]),
            ]),
        )
        .await;
    match dup {
        Err(Error::AlreadyExists { what, value }) => {
            assert_eq!((what, value.as_str()), ("sku", "MUG"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        shop.snapshot().await,
        before,
        "refused duplicates change nothing"
    );
}

async fn too_many_units_to_ship_is_said_as_such(backend: Backend) {
    let shop = Shop::new(backend).await;
    let a = shop.product("A", "10.00", 10).await;
    let cart = shop.ready_cart(&[(a, 2)]).await;
    let order = shop.place(cart.id(), "k").await;
    let before = shop.snapshot().await;
    let e = shop
        .engine
        .ship(
            &Actor::Staff("wes".into()),
            order.id(),
            ShipmentRequest::new(vec![LineQuantity {
                line_id: order.pricing().lines[0].line_id,
                quantity: 5,
            }])
            .carrier("UPS")
            .tracking_number(String::new())
            .location(None),
        )
        .await;
    match e {
        Err(Error::Invalid { reason, .. }) => {
            assert!(
                reason.contains("5 unit(s)") && reason.contains("only 2"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(shop.snapshot().await, before);
}

async fn provider_events_are_validated_before_anything_changes(backend: Backend) {
    let shop = Shop::new(backend).await;
    let a = shop.product("A", "10.00", 10).await;
    let cart = shop.ready_cart(&[(a, 1)]).await;
    let order = shop.place(cart.id(), "k").await;
    let reference = order.payment().reference().to_owned();
    let provider = Actor::Provider("test".into());
    let before = shop.snapshot().await;
    let event = |id: &str, kind| ProviderEvent::new(id, reference.clone(), kind);
    let eur = |s: &str| Money::parse(s, Currency::EUR).unwrap();
    let cases: Vec<(ProviderEvent, &str)> = vec![
        (
            event(
                "e1",
                ProviderEventKind::Refunded {
                    refunded_total: usd("-5.00"),
                },
            ),
            "negative refunded total",
        ),
        (
            event(
                "e2",
                ProviderEventKind::Disputed {
                    amount: eur("5.00"),
                    reason: "fraud".into(),
                },
            ),
            "dispute in another currency",
        ),
        (
            event(
                "e3",
                ProviderEventKind::Disputed {
                    amount: usd("-5.00"),
                    reason: "fraud".into(),
                },
            ),
            "negative dispute",
        ),
        (
            event(
                "e4",
                ProviderEventKind::Disputed {
                    amount: usd("1.00"),
                    reason: "x".repeat(1 << 20),
                },
            ),
            "1 MB reason",
        ),
        (
            event(
                "e5",
                ProviderEventKind::Captured {
                    captured_total: usd("1000.00"),
                },
            ),
            "capture beyond the authorization",
        ),
        (
            event(&"e".repeat(300), ProviderEventKind::Authorized),
            "long event id",
        ),
        (
            event("e 8", ProviderEventKind::Authorized),
            "event id with a space",
        ),
        (
            event(
                "e9",
                ProviderEventKind::Failed {
                    reason: "bad\u{0}".into(),
                },
            ),
            "control character in reason",
        ),
    ];
    for (e, what) in cases {
        let result = shop.engine.apply_provider_event(&provider, &e).await;
        assert!(
            matches!(
                result,
                Err(Error::Invalid { .. }
                    | Error::CurrencyMismatch { .. }
                    | Error::LimitExceeded { .. })
            ),
            "{what}: {result:?}"
        );
    }
    assert_eq!(
        shop.snapshot().await,
        before,
        "refused events change nothing"
    );
}

/// Calls `$call` and asserts it is refused with an error matching `$err`
/// and that the whole store is as it was.
macro_rules! refused {
    ($shop:expr, $call:expr, $err:pat) => {{
        let before = $shop.snapshot().await;
        let got = $call.await;
        assert!(
            matches!(got, Err($err)),
            "{}: {:?}",
            stringify!($call),
            got.map(|_| ())
        );
        assert_eq!(
            $shop.snapshot().await,
            before,
            "{} changed the store",
            stringify!($call)
        );
    }};
}

/// The calls added with payment sessions, gift cards, store credit,
/// channels and custom prices: every refusal is typed and changes nothing.
async fn newer_calls_refuse_bad_input_and_change_nothing(backend: Backend) {
    use cartwright::cart::CustomPrice;
    use cartwright::engine::giftcards::NewGiftCard;
    use cartwright::money_path::ManualRefund;
    use rust_decimal::Decimal;

    let shop = Shop::new(backend).await;
    let staff = Actor::Staff("wes".into());
    let key = |k: &str| IdempotencyKey::new(k).unwrap();
    let a = shop.product("A", "10.00", 10).await;
    let customer = shop.customer("ann@example.com").await;
    let max = Money::new(Decimal::MAX, Currency::USD);
    let above = usd(&format!("{}.01", cartwright::money::MAX_AMOUNT_UNITS));
    let inexact = Money::new(Decimal::new(1, 3), Currency::USD);

    // Store credit for a customer who has none yet: no account appears.
    for amount in [usd("0.00"), usd("-1.00"), inexact, above, max] {
        refused!(
            shop,
            shop.engine
                .grant_store_credit(&staff, customer.id(), amount, "sorry", &key("c1")),
            Error::Invalid { .. } | Error::NotMinorUnits { .. }
        );
    }
    refused!(
        shop,
        shop.engine.grant_store_credit(
            &staff,
            customer.id(),
            usd("1.00"),
            &"r".repeat(10_000),
            &key("c2")
        ),
        Error::Invalid { .. }
    );
    refused!(
        shop,
        shop.engine.grant_store_credit(
            &staff,
            cartwright::id::CustomerId::new(),
            usd("1.00"),
            "sorry",
            &key("c3")
        ),
        Error::UnknownCustomer(_)
    );
    refused!(
        shop,
        shop.engine.grant_store_credit(
            &Actor::Customer(customer.id()),
            customer.id(),
            usd("1.00"),
            "mine",
            &key("c4")
        ),
        Error::Forbidden
    );
    // Gift cards: amounts, codes.
    for amount in [usd("0.00"), usd("-5.00"), inexact, above, max] {
        refused!(
            shop,
            shop.engine
                .issue_gift_card(&staff, NewGiftCard::new(amount), &key("g1")),
            Error::Invalid { .. } | Error::NotMinorUnits { .. }
        );
    }
    // A balance that would pass the bound is refused too.
    let bound = usd(&format!("{}.00", cartwright::money::MAX_AMOUNT_UNITS));
    shop.engine
        .grant_store_credit(&staff, customer.id(), bound, "max", &key("c5"))
        .await
        .unwrap();
    refused!(
        shop,
        shop.engine
            .grant_store_credit(&staff, customer.id(), usd("0.01"), "one more", &key("c6")),
        Error::Invalid { .. }
    );
    // Custom prices and catalog prices past the bound; another channel's product.
    let cart = shop.ready_cart(&[(a, 1)]).await;
    for price in [above, max, usd("-1.00"), inexact] {
        refused!(
            shop,
            shop.engine
                .add_custom_line(&staff, cart.id(), a, 1, CustomPrice::new(price, "quote")),
            Error::Invalid { .. } | Error::NotMinorUnits { .. }
        );
    }
    // Checkout with a hostile gift card code or an unknown provider.
    for code in ["", "x", &"y".repeat(10_000), "GIFT-\u{0}"] {
        refused!(
            shop,
            shop.engine.start_checkout(
                CheckoutRequest::new(cart.id(), key("k-hostile"), "tok_visa", Actor::Guest)
                    .gift_card(code)
            ),
            Error::Invalid { .. } | Error::LimitExceeded { .. } | Error::NotFound { .. }
        );
    }
    refused!(
        shop,
        shop.engine.start_checkout(
            CheckoutRequest::new(cart.id(), key("k-hostile"), "tok_visa", Actor::Guest)
                .provider("no-such-gateway")
        ),
        Error::Invalid { .. }
    );
    // Sessions that do not exist.
    refused!(
        shop,
        shop.engine
            .complete_checkout(&Actor::Guest, cart.id(), &key("never")),
        Error::NotFound { .. }
    );
    refused!(
        shop,
        shop.engine
            .cancel_checkout(&Actor::Guest, cart.id(), &key("never")),
        Error::NotFound { .. }
    );
    // Money after checkout: refunds and captures past the bound.
    let order = shop.place(cart.id(), "k").await;
    for amount in [above, max, usd("0.00"), inexact] {
        refused!(
            shop,
            shop.engine.refund(
                &staff,
                order.id(),
                ManualRefund::new(amount, "goodwill", key("r1"))
            ),
            Error::Invalid { .. } | Error::NotMinorUnits { .. }
        );
    }
    // A channel that does not exist.
    refused!(
        shop,
        shop.engine.create_cart_in(
            &Actor::Guest,
            cartwright::channel::ChannelId::new(),
            Currency::USD
        ),
        Error::NotFound { .. }
    );
}

conformance!(
    newer_calls_refuse_bad_input_and_change_nothing,
    countries_are_checked_against_iso_3166,
    coupon_codes_are_checked_before_case_folding,
    duplicates_name_the_users_value_on_every_store,
    too_many_units_to_ship_is_said_as_such,
    provider_events_are_validated_before_anything_changes,
);
