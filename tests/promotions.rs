//! Promotions, coupons and price lists through the engine, on both stores:
//! checkout uses the pricing engine, limits are held atomically with the
//! stock, and orders keep the priced snapshot.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use cartwright::prelude::*;
use cartwright::pricing::{
    Action, AmountPer, AutomaticPromotions, Condition, Limits, LineFilter, Op, Outcome, PriceList,
    PriceListKind, Promotion, Rejection,
};
use common::{Backend, Shop, request, usd};
use rust_decimal::Decimal;

fn ten_percent() -> Action {
    Action::PercentOffItems {
        target: LineFilter::Any,
        percent: Decimal::TEN,
        max_discount: None,
        max_quantity_per_line: None,
    }
}

/// Saves `promotion` as coded, with one coupon `code` of `max_uses`.
async fn with_code(
    shop: &Shop,
    promotion: Promotion,
    code: &str,
    max_uses: Option<u64>,
) -> Promotion {
    let promo = shop
        .engine
        .save_promotion(&Actor::System, promotion.coded())
        .await
        .unwrap();
    shop.engine
        .create_coupon(&Actor::System, promo.id, code, max_uses)
        .await
        .unwrap();
    promo
}

async fn coded_cart(
    shop: &Shop,
    variant: cartwright::id::VariantId,
    code: &str,
) -> cartwright::cart::Cart {
    let cart = shop.ready_cart(&[(variant, 1)]).await;
    shop.engine
        .add_coupon_code(&Actor::Guest, cart.id(), code)
        .await
        .unwrap()
}

async fn a_coupon_discounts_the_order_and_counts_a_use(backend: Backend) {
    let shop = Shop::new(backend).await;
    let v = shop.product("TEE", "20.00", 10).await;
    let limits = Limits::default().total_uses(Some(5));
    let promo = with_code(
        &shop,
        Promotion::new("Ten off", ten_percent()).limits(limits),
        " save10 ",
        None,
    )
    .await;
    let cart = coded_cart(&shop, v, "Save10").await;
    let priced = shop
        .engine
        .price_cart(&Actor::Guest, cart.id())
        .await
        .unwrap();
    // 20.00 − 2.00 = 18.00, tax 10 % = 1.80, shipping 5.00 + 0.50 tax.
    assert_eq!(priced.discount_total, usd("2.00"));
    assert_eq!(priced.total, usd("25.30"));
    assert!(priced.code_outcome("SAVE10").unwrap().applied());

    let order = shop.place(cart.id(), "k1").await;
    let frozen = order.pricing();
    assert_eq!(frozen.total, usd("25.30"));
    let adj = &frozen.lines[0].adjustments[0];
    assert_eq!(
        (adj.code.as_deref(), adj.promotion_id),
        (Some("SAVE10"), Some(promo.id))
    );
    let counter = format!("promotion:{}:uses", promo.id);
    assert_eq!(shop.engine.store().usage(&counter).await.unwrap(), 1);
    assert_eq!(shop.payments.authorizations()[0].amount, usd("25.30"));
}

async fn a_single_use_code_fails_the_second_checkout_without_charging(backend: Backend) {
    let shop = Shop::new(backend).await;
    let v = shop.product("TEE", "20.00", 10).await;
    with_code(
        &shop,
        Promotion::new("Once", ten_percent()),
        "ONCE",
        Some(1),
    )
    .await;
    let first = coded_cart(&shop, v, "once").await;
    let second = coded_cart(&shop, v, "once").await;
    shop.engine
        .checkout(request(first.id(), "k1"))
        .await
        .unwrap();

    let priced = shop
        .engine
        .price_cart(&Actor::Guest, second.id())
        .await
        .unwrap();
    assert!(matches!(
        priced.code_outcome("ONCE").unwrap().rejection(),
        Some(Rejection::UsedUp {
            limit: 1,
            used: 1,
            ..
        })
    ));
    let err = shop
        .engine
        .checkout(request(second.id(), "k2"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::UsageLimitReached { limit: 1, .. }),
        "{err:?}"
    );
    assert_eq!(
        shop.payments.authorizations().len(),
        1,
        "the second checkout charged nothing"
    );
    assert_eq!(shop.engine.stock(v).await.unwrap().available(), 9);
}

async fn a_failed_checkout_gives_its_code_use_back(backend: Backend) {
    let shop = Shop::new(backend).await;
    let v = shop.product("TEE", "20.00", 10).await;
    with_code(
        &shop,
        Promotion::new("Once", ten_percent()),
        "ONCE",
        Some(1),
    )
    .await;
    let declined = coded_cart(&shop, v, "ONCE").await;
    let mut req = request(declined.id(), "k1");
    req.payment_token = "tok_decline".into();
    let err = shop.engine.checkout(req).await.unwrap_err();
    assert!(matches!(err, Error::PaymentDeclined { .. }), "{err:?}");
    // The decline released the stock and the code's use together.
    assert_eq!(
        shop.engine.store().usage("coupon:ONCE:uses").await.unwrap(),
        0
    );
    assert_eq!(shop.engine.stock(v).await.unwrap().available(), 10);
    let again = coded_cart(&shop, v, "ONCE").await;
    let order = shop.place(again.id(), "k2").await;
    assert_eq!(order.pricing().discount_total, usd("2.00"));
    assert_eq!(
        shop.engine.store().usage("coupon:ONCE:uses").await.unwrap(),
        1
    );
}

async fn an_expected_total_guards_against_a_changed_price(backend: Backend) {
    let shop = Shop::new(backend).await;
    let v = shop.product("TEE", "20.00", 10).await;
    let cart = shop.ready_cart(&[(v, 1)]).await;
    let seen = shop
        .engine
        .price_cart(&Actor::Guest, cart.id())
        .await
        .unwrap()
        .total;
    // A sale starts after the customer looked.
    shop.engine
        .save_promotion(&Actor::System, Promotion::new("Flash", ten_percent()))
        .await
        .unwrap();
    let before = shop.snapshot().await;
    let mut req = request(cart.id(), "k1");
    req.expected_total = Some(seen);
    let err = shop.engine.checkout(req.clone()).await.unwrap_err();
    assert!(
        matches!(err, Error::PriceChanged { expected, actual } if expected == seen && actual == usd("25.30")),
        "{err:?}"
    );
    assert!(shop.payments.calls().is_empty());
    assert!(
        shop.snapshot().await == before,
        "a refused checkout changed the store"
    );
    // Confirmed at the new price, the same key goes through.
    req.expected_total = Some(usd("25.30"));
    let order = shop.engine.checkout(req).await.unwrap().order;
    assert_eq!(order.pricing().total, usd("25.30"));
}

async fn a_gift_line_is_reserved_with_the_order(backend: Backend) {
    let shop = Shop::new(backend).await;
    let v = shop.product("TEE", "20.00", 10).await;
    let gift = shop.product("STICKER", "1.50", 1).await;
    let promo = shop
        .engine
        .save_promotion(
            &Actor::System,
            Promotion::new(
                "Free sticker",
                Action::Gift {
                    variant_id: gift,
                    quantity: 1,
                },
            ),
        )
        .await
        .unwrap();
    let cart = shop.ready_cart(&[(v, 1)]).await;
    let order = shop.place(cart.id(), "k1").await;
    let lines = &order.pricing().lines;
    assert_eq!(lines.len(), 2);
    assert_eq!(
        (lines[1].variant_id, lines[1].gift_of, lines[1].total),
        (gift, Some(promo.id), usd("0.00"))
    );
    assert_eq!(shop.engine.stock(gift).await.unwrap().available(), 0);
    // No stickers left: the gift cannot be held, so the checkout fails
    // whole and reserves nothing.
    let cart = shop.ready_cart(&[(v, 1)]).await;
    let err = shop
        .engine
        .checkout(request(cart.id(), "k2"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::OutOfStock { variant_id, .. } if variant_id == gift),
        "{err:?}"
    );
    assert_eq!(shop.engine.stock(v).await.unwrap().available(), 9);
}

async fn another_engine_sees_promotion_changes(backend: Backend) {
    let shop = Shop::new(backend).await;
    let other = shop.second_engine().await;
    let v = shop.product("TEE", "20.00", 10).await;
    let cart = shop.ready_cart(&[(v, 1)]).await;
    let before = other.price_cart(&Actor::Guest, cart.id()).await.unwrap();
    assert_eq!(before.discount_total, usd("0.00"));
    let promo = shop
        .engine
        .save_promotion(&Actor::System, Promotion::new("Sale", ten_percent()))
        .await
        .unwrap();
    let after = other.price_cart(&Actor::Guest, cart.id()).await.unwrap();
    assert_eq!(after.discount_total, usd("2.00"));
    shop.engine
        .set_promotion_enabled(&Actor::System, promo.id, false)
        .await
        .unwrap();
    let off = other.price_cart(&Actor::Guest, cart.id()).await.unwrap();
    assert_eq!(off.discount_total, usd("0.00"));
    assert_eq!(
        off.outcome(promo.id).unwrap().rejection(),
        Some(&Rejection::Disabled)
    );
    // Price lists too.
    let list = PriceList::new("Sale list", PriceListKind::Sale, 0, Currency::USD).with_price(
        v,
        1,
        usd("15.00"),
    );
    shop.engine
        .save_price_list(&Actor::System, list)
        .await
        .unwrap();
    let listed = other.price_cart(&Actor::Guest, cart.id()).await.unwrap();
    assert_eq!(listed.lines[0].unit_price, usd("15.00"));
    // Both engines list the same data, round-tripped through the store.
    assert_eq!(
        other.promotions(&Actor::System).await.unwrap(),
        shop.engine.promotions(&Actor::System).await.unwrap()
    );
    assert!(
        !other
            .promotion(&Actor::System, promo.id)
            .await
            .unwrap()
            .enabled
    );
    assert_eq!(other.price_lists(&Actor::System).await.unwrap().len(), 1);
}

async fn a_per_customer_limit_counts_each_account(backend: Backend) {
    let shop = Shop::new(backend).await;
    let v = shop.product("TEE", "20.00", 10).await;
    let promo = shop
        .engine
        .save_promotion(
            &Actor::System,
            Promotion::new("Welcome", ten_percent())
                .limits(Limits::default().per_customer(Some(1))),
        )
        .await
        .unwrap();
    let who = shop.customer("ada@example.com").await;
    let me = Actor::Customer(who.id());
    let mut orders = Vec::new();
    for key in ["k1", "k2"] {
        let cart = shop.engine.create_cart(&me, Currency::USD).await.unwrap();
        shop.engine.add_item(&me, cart.id(), v, 1).await.unwrap();
        shop.complete_details(&me, cart.id()).await;
        let mut req = request(cart.id(), key);
        req.actor = me.clone();
        orders.push(shop.engine.checkout(req).await.unwrap().order);
    }
    assert_eq!(orders[0].pricing().discount_total, usd("2.00"));
    // An automatic promotion that ran out simply does not apply.
    assert_eq!(orders[1].pricing().discount_total, usd("0.00"));
    assert!(matches!(
        orders[1].pricing().outcome(promo.id).unwrap().rejection(),
        Some(Rejection::UsedUp { .. })
    ));
    // A guest with an email is counted by that email.
    let guest = shop.ready_cart(&[(v, 1)]).await;
    let g = shop.place(guest.id(), "k3").await;
    assert_eq!(g.pricing().discount_total, usd("2.00"));
}

async fn a_first_order_offer_counts_earlier_orders_by_email_too(backend: Backend) {
    let shop = Shop::new(backend).await;
    let v = shop.product("TEE", "20.00", 10).await;
    let welcome = shop
        .engine
        .save_promotion(
            &Actor::System,
            Promotion::new("Welcome", ten_percent()).when(Condition::OrderNumber {
                op: Op::Eq,
                number: 1,
            }),
        )
        .await
        .unwrap();
    let not_first = |o: &cartwright::order::Order| {
        matches!(
            o.pricing().outcome(welcome.id).unwrap().rejection(),
            Some(Rejection::ConditionsNotMet { .. })
        )
    };
    // A guest's first order gets it ...
    let first = shop
        .place(shop.ready_cart(&[(v, 1)]).await.id(), "g1")
        .await;
    assert_eq!(first.pricing().discount_total, usd("2.00"));
    // ... and the same guest email again (any case) does not.
    let again = shop.ready_cart(&[(v, 1)]).await;
    shop.engine
        .set_email(&Actor::Guest, again.id(), "  BUYER@example.com ")
        .await
        .unwrap();
    let priced = shop
        .engine
        .price_cart(&Actor::Guest, again.id())
        .await
        .unwrap();
    assert_eq!(priced.discount_total, usd("0.00"));
    let second = shop.place(again.id(), "g2").await;
    assert!(not_first(&second), "{:?}", second.pricing().promotions);
    // An account opened with that email is not new either: its guest
    // orders count.
    let who = shop.customer("buyer@example.com").await;
    let me = Actor::Customer(who.id());
    let cart = shop.engine.create_cart(&me, Currency::USD).await.unwrap();
    shop.engine.add_item(&me, cart.id(), v, 1).await.unwrap();
    shop.complete_details(&me, cart.id()).await;
    let mut req = request(cart.id(), "a1");
    req.actor = me.clone();
    let order = shop.engine.checkout(req).await.unwrap().order;
    assert!(not_first(&order));
    // Another email is new.
    let fresh = shop.customer("new@example.com").await;
    let them = Actor::Customer(fresh.id());
    let cart = shop.engine.create_cart(&them, Currency::USD).await.unwrap();
    shop.engine.add_item(&them, cart.id(), v, 1).await.unwrap();
    let priced = shop.engine.price_cart(&them, cart.id()).await.unwrap();
    assert_eq!(priced.discount_total, usd("2.00"));
}

async fn a_request_can_leave_out_automatic_promotions_and_ask_what_qualifies(backend: Backend) {
    let shop = Shop::new(backend).await;
    let v = shop.product("TEE", "20.00", 10).await;
    let save = |p: Promotion| {
        let engine = shop.engine.clone();
        async move { engine.save_promotion(&Actor::System, p).await.unwrap() }
    };
    let tenth = save(Promotion::new("Ten off", ten_percent()).priority(1)).await;
    let big_spender = save(
        Promotion::new("Big spender", ten_percent())
            .priority(2)
            .when(Condition::Subtotal {
                op: Op::Gte,
                amount: usd("100.00"),
            }),
    )
    .await;
    let coded = with_code(
        &shop,
        Promotion::new(
            "Five off",
            Action::AmountOffOrder {
                amount: usd("5.00"),
            },
        )
        .priority(3),
        "FIVE",
        None,
    )
    .await;
    let cart = coded_cart(&shop, v, "five").await;
    let g = Actor::Guest;
    let all = shop.engine.price_cart(&g, cart.id()).await.unwrap();
    assert_eq!(all.discount_total, usd("7.00"));
    // Codes only.
    let codes = shop
        .engine
        .price_cart_with(&g, cart.id(), &AutomaticPromotions::None)
        .await
        .unwrap();
    assert_eq!(codes.discount_total, usd("5.00"));
    assert!(codes.outcome(tenth.id).is_none());
    assert!(codes.outcome(coded.id).unwrap().applied());
    // Only a listed automatic promotion (and the code).
    let only = shop
        .engine
        .price_cart_with(
            &g,
            cart.id(),
            &AutomaticPromotions::Only {
                ids: vec![big_spender.id],
            },
        )
        .await
        .unwrap();
    assert_eq!(only.discount_total, usd("5.00"));
    assert!(only.outcome(tenth.id).is_none());
    // A list beyond the limit is refused, naming the count.
    let too_many = AutomaticPromotions::Only {
        ids: (0..=cartwright::pricing::MAX_VALUES)
            .map(|_| cartwright::id::PromotionId::new())
            .collect(),
    };
    let err = shop
        .engine
        .price_cart_with(&g, cart.id(), &too_many)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }), "{err:?}");
    // What qualifies, with reasons, and no amounts.
    let eligible = shop
        .engine
        .eligible_promotions(&g, cart.id())
        .await
        .unwrap();
    let by_id = |id| {
        eligible
            .iter()
            .find(|e| e.promotion_id == Some(id))
            .unwrap()
    };
    assert!(by_id(tenth.id).eligible());
    assert!(by_id(coded.id).eligible());
    assert_eq!(by_id(coded.id).code.as_deref(), Some("FIVE"));
    assert!(matches!(
        by_id(big_spender.id).reason,
        Some(Rejection::ConditionsNotMet { .. })
    ));
    // A customer's cart is not another customer's to ask about.
    let owner = shop.customer("owner@example.com").await;
    let other = shop.customer("other@example.com").await;
    let mine = Actor::Customer(owner.id());
    let theirs = shop.engine.create_cart(&mine, Currency::USD).await.unwrap();
    for result in [
        shop.engine
            .eligible_promotions(&Actor::Customer(other.id()), theirs.id())
            .await
            .map(drop),
        shop.engine
            .price_cart_with(
                &Actor::Customer(other.id()),
                theirs.id(),
                &AutomaticPromotions::None,
            )
            .await
            .map(drop),
    ] {
        assert!(
            matches!(result, Err(Error::NotFound { .. } | Error::Forbidden)),
            "{result:?}"
        );
    }
}

async fn coupon_codes_follow_the_engines_code_policy(backend: Backend) {
    use cartwright::cart::{CodeCharacters, CodePolicy};
    use cartwright::pricing::PromotionSettings;
    let exact_unicode = CodePolicy::default()
        .case_sensitive(true)
        .characters(CodeCharacters::Unicode);
    let shop = Shop::with(
        backend,
        common::ShopOptions {
            promotion_settings: Some(PromotionSettings::default().codes(exact_unicode)),
            ..common::ShopOptions::default()
        },
    )
    .await;
    let v = shop.product("TEE", "20.00", 10).await;
    let promo = with_code(
        &shop,
        Promotion::new("Summer", ten_percent()),
        " Été ",
        None,
    )
    .await;
    let priced = |code: &'static str| {
        let shop = &shop;
        async move {
            let cart = coded_cart(shop, v, code).await;
            shop.engine
                .price_cart(&Actor::Guest, cart.id())
                .await
                .unwrap()
        }
    };
    // The same letters, composed or not, find the coupon ...
    assert!(
        priced("E\u{301}t\u{e9}")
            .await
            .outcome(promo.id)
            .unwrap()
            .applied()
    );
    // ... another case does not (case-sensitive), and says so.
    let other_case = priced("été").await;
    assert!(other_case.outcome(promo.id).is_none());
    assert_eq!(
        other_case.code_outcome("été").unwrap().rejection(),
        Some(&Rejection::UnknownCode)
    );
    // Control characters are refused with the code given, changing nothing.
    let cart = shop.ready_cart(&[(v, 1)]).await;
    let err = shop
        .engine
        .add_coupon_code(&Actor::Guest, cart.id(), "Été\u{7}")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }), "{err:?}");
    let again = shop.engine.cart(&Actor::Guest, cart.id()).await.unwrap();
    assert!(again.coupon_codes().is_empty());
}

async fn custom_priced_lines_keep_their_price_unless_promotions_are_allowed(backend: Backend) {
    use cartwright::cart::CustomPrice;
    use cartwright::pricing::PriceSource;
    let shop = Shop::new(backend).await;
    let mug = shop.product("MUG", "12.00", 10).await;
    shop.engine
        .save_promotion(&Actor::System, Promotion::new("Ten off", ten_percent()))
        .await
        .unwrap();
    let staff = Actor::Staff("ann".into());
    let cart = shop.ready_cart(&[(mug, 1)]).await;
    let quote = CustomPrice::new(usd("7.50"), "quote Q-17");
    shop.engine
        .add_custom_line(&staff, cart.id(), mug, 2, quote.clone())
        .await
        .unwrap();
    let allowed = quote.clone().promotions(true);
    shop.engine
        .add_custom_line(&staff, cart.id(), mug, 1, allowed)
        .await
        .unwrap();
    let priced = shop
        .engine
        .price_cart(&Actor::Guest, cart.id())
        .await
        .unwrap();
    let seen: Vec<(String, String, String)> = priced
        .lines
        .iter()
        .map(|l| {
            (
                l.unit_price.to_string(),
                l.discount.to_string(),
                format!("{:?}", l.price_source),
            )
        })
        .collect();
    assert_eq!(seen[0].0, "12.00 USD");
    assert_eq!(seen[0].1, "1.20 USD");
    // The custom line keeps its price; the one allowing promotions gets 10 %.
    assert_eq!(
        (seen[1].0.as_str(), seen[1].1.as_str()),
        ("7.50 USD", "0.00 USD")
    );
    assert_eq!(
        (seen[2].0.as_str(), seen[2].1.as_str()),
        ("7.50 USD", "0.75 USD")
    );
    assert_eq!(
        priced.lines[1].price_source,
        PriceSource::Custom {
            reason: "quote Q-17".into()
        }
    );
    assert_eq!(priced.lines[1].list_price, usd("12.00"));
    // Checked out at those prices, and the order says why.
    let order = shop.place(cart.id(), "custom").await;
    assert_eq!(order.pricing().lines[1].unit_price, usd("7.50"));
    assert!(matches!(
        order.pricing().lines[1].price_source,
        PriceSource::Custom { .. }
    ));

    // Only staff or the system sets a price.
    let other = shop.ready_cart(&[(mug, 1)]).await;
    let err = shop
        .engine
        .add_custom_line(&Actor::Guest, other.id(), mug, 1, quote.clone())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Forbidden), "{err:?}");
    // A price in another currency, a negative one, an empty reason: refused,
    // nothing changed.
    let euros = CustomPrice::new(Money::parse("7.50", Currency::EUR).unwrap(), "quote");
    let negative = CustomPrice::new(usd("-1.00"), "quote");
    let no_reason = CustomPrice::new(usd("1.00"), "  ");
    for bad in [euros, negative, no_reason] {
        let err = shop
            .engine
            .add_custom_line(&staff, other.id(), mug, 1, bad)
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::Invalid { .. } | Error::CurrencyMismatch { .. }),
            "{err:?}"
        );
    }
    let unchanged = shop.engine.cart(&staff, other.id()).await.unwrap();
    assert_eq!(unchanged.lines().len(), 1);
}

async fn a_budget_gives_what_is_left_then_stops(backend: Backend) {
    let shop = Shop::new(backend).await;
    let v = shop.product("TEE", "20.00", 10).await;
    shop.engine
        .save_promotion(
            &Actor::System,
            Promotion::new(
                "Five off",
                Action::AmountOffItems {
                    target: LineFilter::Any,
                    amount: usd("5.00"),
                    per: AmountPer::Line,
                    max_quantity_per_line: None,
                },
            )
            .limits(Limits::default().budget(Some(usd("12.00")))),
        )
        .await
        .unwrap();
    let mut discounts = Vec::new();
    for i in 0..4 {
        let cart = shop.ready_cart(&[(v, 1)]).await;
        let order = shop
            .engine
            .checkout(request(cart.id(), &format!("k{i}")))
            .await
            .unwrap()
            .order;
        discounts.push(order.pricing().discount_total);
    }
    assert_eq!(
        discounts,
        [usd("5.00"), usd("5.00"), usd("2.00"), usd("0.00")]
    );
}

async fn cancelling_an_order_gives_its_use_back(backend: Backend) {
    let shop = Shop::new(backend).await;
    let v = shop.product("TEE", "20.00", 10).await;
    with_code(
        &shop,
        Promotion::new("Once", ten_percent()),
        "ONCE",
        Some(1),
    )
    .await;
    let cart = coded_cart(&shop, v, "ONCE").await;
    let order = shop.place(cart.id(), "k1").await;
    assert_eq!(
        shop.engine.store().usage("coupon:ONCE:uses").await.unwrap(),
        1
    );
    shop.engine
        .cancel(&Actor::Staff("ops".into()), order.id(), "customer asked")
        .await
        .unwrap();
    assert_eq!(
        shop.engine.store().usage("coupon:ONCE:uses").await.unwrap(),
        0
    );
    let again = coded_cart(&shop, v, "ONCE").await;
    let order = shop.place(again.id(), "k2").await;
    assert_eq!(order.pricing().discount_total, usd("2.00"));
}

async fn bulk_codes_are_unique_and_each_works_once(backend: Backend) {
    let shop = Shop::new(backend).await;
    let v = shop.product("TEE", "20.00", 10).await;
    let promo = shop
        .engine
        .save_promotion(
            &Actor::System,
            Promotion::new("Mailing", ten_percent()).coded(),
        )
        .await
        .unwrap();
    let coupons = shop
        .engine
        .generate_coupons(&Actor::System, promo.id, "mail", 500, Some(1))
        .await
        .unwrap();
    let mut codes: Vec<&str> = coupons.iter().map(|c| c.code.as_str()).collect();
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), 500);
    assert!(codes.iter().all(|c| c.starts_with("MAIL-")));
    // A duplicate is refused, and an automatic promotion takes no codes.
    let dup = shop
        .engine
        .create_coupon(&Actor::System, promo.id, &coupons[0].code, None)
        .await
        .unwrap_err();
    assert!(matches!(dup, Error::AlreadyExists { .. }), "{dup:?}");
    let auto = shop
        .engine
        .save_promotion(&Actor::System, Promotion::new("Auto", ten_percent()))
        .await
        .unwrap();
    assert!(
        shop.engine
            .create_coupon(&Actor::System, auto.id, "AUTO", None)
            .await
            .is_err()
    );

    let cart = coded_cart(&shop, v, &coupons[7].code.to_lowercase()).await;
    let priced = shop
        .engine
        .price_cart(&Actor::Guest, cart.id())
        .await
        .unwrap();
    assert!(priced.code_outcome(&coupons[7].code).unwrap().applied());
    let wrong = coded_cart(&shop, v, "MAIL-0000-0000-0000-0000").await;
    let priced = shop
        .engine
        .price_cart(&Actor::Guest, wrong.id())
        .await
        .unwrap();
    assert_eq!(
        priced
            .code_outcome("MAIL-0000-0000-0000-0000")
            .unwrap()
            .rejection(),
        Some(&Rejection::UnknownCode)
    );
}

async fn a_code_limited_to_100_uses_is_on_exactly_100_orders_of_1000(backend: Backend) {
    let shop = Shop::new(backend).await;
    let engines = [shop.engine.clone(), shop.second_engine().await];
    let v = shop.product("TEE", "20.00", 5_000).await;
    let limits = Limits::default().total_uses(Some(100));
    let promo = with_code(
        &shop,
        Promotion::new("Hundred", ten_percent()).limits(limits),
        "HUNDRED",
        None,
    )
    .await;
    let mut carts = Vec::new();
    for chunk in 0..10 {
        let mut tasks = Vec::new();
        for _ in 0..100 {
            let engine = engines[chunk % 2].clone();
            tasks.push(tokio::spawn(async move {
                let guest = Actor::Guest;
                let cart = engine.create_cart(&guest, Currency::USD).await.unwrap();
                engine.add_item(&guest, cart.id(), v, 1).await.unwrap();
                engine
                    .set_email(&guest, cart.id(), "buyer@example.com")
                    .await
                    .unwrap();
                engine
                    .set_shipping_address(&guest, cart.id(), common::address())
                    .await
                    .unwrap();
                engine
                    .set_shipping_method(&guest, cart.id(), "standard")
                    .await
                    .unwrap();
                engine
                    .add_coupon_code(&guest, cart.id(), "hundred")
                    .await
                    .unwrap()
                    .id()
            }));
        }
        for t in tasks {
            carts.push(t.await.unwrap());
        }
    }
    let mut tasks = Vec::new();
    for (i, cart) in carts.into_iter().enumerate() {
        let engine = engines[i % 2].clone();
        tasks.push(tokio::spawn(async move {
            engine.checkout(request(cart, &format!("k{i}"))).await
        }));
    }
    let mut with_code = 0;
    let mut refused = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(order) => {
                let applied = matches!(
                    order
                        .order
                        .pricing()
                        .code_outcome("HUNDRED")
                        .map(|o| &o.outcome),
                    Some(Outcome::Applied { .. })
                );
                assert!(applied, "an order went through without its code");
                with_code += 1;
            }
            Err(Error::UsageLimitReached { .. }) => refused += 1,
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!((with_code, refused), (100, 900));
    let counter = format!("promotion:{}:uses", promo.id);
    assert_eq!(shop.engine.store().usage(&counter).await.unwrap(), 100);
    assert_eq!(shop.payments.authorizations().len(), 100);
    assert_eq!(shop.engine.stock(v).await.unwrap().available(), 4_900);
}

async fn a_category_filter_matches_products_in_its_subcategories(backend: Backend) {
    let shop = Shop::new(backend).await;
    let apparel = shop
        .engine
        .create_category(&Actor::System, "Apparel", None)
        .await
        .unwrap();
    let shirts = shop
        .engine
        .create_category(&Actor::System, "Shirts", Some(apparel.id()))
        .await
        .unwrap();
    let shirt = shop
        .engine
        .create_product(
            &Actor::System,
            NewProduct::new("Shirt")
                .status(Status::Active)
                .categories(vec![shirts.id()])
                .variants(vec![
                    NewVariant::shipped("SHIRT")
                        .prices(vec![usd("30.00")])
                        .status(Status::Active),
                ]),
        )
        .await
        .unwrap();
    let v = shirt.variants()[0].id();
    shop.engine
        .set_stock(&Actor::System, v, shop.warehouse, 5)
        .await
        .unwrap();
    let mug = shop.product("MUG", "10.00", 5).await;
    shop.engine
        .save_promotion(
            &Actor::System,
            Promotion::new(
                "Apparel 20%",
                Action::PercentOffItems {
                    target: LineFilter::Category {
                        op: cartwright::pricing::Op::In,
                        ids: vec![apparel.id()],
                    },
                    percent: 20.into(),
                    max_discount: None,
                    max_quantity_per_line: None,
                },
            ),
        )
        .await
        .unwrap();
    let cart = shop.ready_cart(&[(v, 1), (mug, 1)]).await;
    let priced = shop
        .engine
        .price_cart(&Actor::Guest, cart.id())
        .await
        .unwrap();
    assert_eq!(priced.lines[0].discount, usd("6.00"));
    assert_eq!(priced.lines[1].discount, usd("0.00"));
}

async fn the_promotion_store_port(backend: Backend) {
    use cartwright::pricing::Coupon;
    let shop = Shop::new(backend).await;
    let store = shop.engine.store().clone();
    let v = shop.product("TEE", "20.00", 10).await;
    let start = store.pricing_inputs(&[], &[]).await.unwrap().version;

    // Saving a promotion or a price list bumps the version.
    let promo = Promotion::new("Ten", ten_percent()).coded();
    store.save_promotion(promo.clone()).await.unwrap();
    let list = PriceList::new("List", PriceListKind::Standard, 0, Currency::USD);
    store.save_price_list(list).await.unwrap();
    let after = store.pricing_inputs(&[], &[]).await.unwrap().version;
    assert_eq!(after, start + 2);

    // Coupons go in all or none.
    let ok = Coupon::new("A1", promo.id, Some(1)).unwrap();
    store
        .insert_coupons(std::slice::from_ref(&ok))
        .await
        .unwrap();
    let before = shop.snapshot().await;
    let dup = store
        .insert_coupons(&[Coupon::new("B1", promo.id, None).unwrap(), ok.clone()])
        .await
        .unwrap_err();
    assert!(matches!(dup, Error::AlreadyExists { .. }), "{dup:?}");
    let orphan = Coupon::new("C1", cartwright::id::PromotionId::new(), None).unwrap();
    let missing = store.insert_coupons(&[orphan]).await.unwrap_err();
    assert!(matches!(missing, Error::NotFound { .. }), "{missing:?}");
    assert!(
        shop.snapshot().await == before,
        "a refused batch inserted something"
    );

    // One call reads entries, coupons and the version; unknowns are left out.
    let ghost = cartwright::id::VariantId::new();
    let inputs = store
        .pricing_inputs(&[v, ghost], &["A1".into(), "NOPE".into()])
        .await
        .unwrap();
    assert_eq!(inputs.entries.len(), 1);
    assert_eq!(inputs.entries[&v].variant.id(), v);
    assert_eq!(inputs.coupons, [ok]);
    assert_eq!(inputs.version, after);
}

struct Rule(&'static str, bool);

impl cartwright::pricing::PricingRule for Rule {
    fn name(&self) -> &str {
        self.0
    }
    fn action(
        &self,
        _settings: &serde_json::Value,
        _cart: &cartwright::pricing::RuleCart<'_>,
    ) -> cartwright::Result<Vec<(cartwright::id::LineId, Money)>> {
        if self.1 {
            Err(Error::invalid("rule", "boom"))
        } else {
            Ok(Vec::new())
        }
    }
}

fn custom(name: &str, rule: &str) -> Promotion {
    Promotion::new(
        name,
        Action::Custom {
            rule: rule.into(),
            settings: serde_json::json!({}),
        },
    )
}

async fn a_promotion_that_cannot_be_evaluated_never_fails_pricing(backend: Backend) {
    let shop = Shop::new(backend).await;
    let v = shop.product("TEE", "20.00", 10).await;
    // Another instance knows two custom rules; this one knows none.
    let shipping = FlatRateShipping::new()
        .with_method("standard", "Standard", &[usd("5.00")])
        .unwrap();
    let with_rules = Engine::builder()
        .store(shop.engine.store().clone())
        .shipping(std::sync::Arc::new(shipping))
        .pricing_rule(std::sync::Arc::new(Rule("known", false)))
        .pricing_rule(std::sync::Arc::new(Rule("failing", true)))
        .test_payment_provider()
        .no_tax()
        .build()
        .unwrap();
    let system = Actor::System;
    // Saving a promotion that names a rule this engine does not know is refused.
    assert!(matches!(
        shop.engine
            .save_promotion(&system, custom("Known", "known"))
            .await,
        Err(Error::NotFound { .. })
    ));
    let known = with_rules
        .save_promotion(&system, custom("Known", "known"))
        .await
        .unwrap();
    let failing = with_rules
        .save_promotion(&system, custom("Boom", "failing"))
        .await
        .unwrap();
    let cart = shop.ready_cart(&[(v, 1)]).await;

    // Here the stored promotion names an unknown rule: left out, explained.
    let priced = shop
        .engine
        .price_cart(&Actor::Guest, cart.id())
        .await
        .unwrap();
    let outcome = |id| {
        priced
            .promotions
            .iter()
            .find(|o| o.promotion_id == Some(id))
            .and_then(|o| o.rejection().cloned())
    };
    assert!(matches!(
        outcome(known.id),
        Some(Rejection::Unevaluable { .. })
    ));
    assert_eq!(priced.subtotal, usd("20.00"));
    // The rule that fails is skipped with its reason where it is known.
    let priced = with_rules
        .price_cart(&Actor::Guest, cart.id())
        .await
        .unwrap();
    let boom = priced
        .promotions
        .iter()
        .find(|o| o.promotion_id == Some(failing.id))
        .and_then(|o| o.rejection().cloned());
    assert!(
        matches!(&boom, Some(Rejection::Unevaluable { problem }) if problem.contains("boom")),
        "{boom:?}"
    );
    // And checkout goes through at the price shown.
    let order = shop.place(cart.id(), "k").await;
    assert_eq!(order.pricing().subtotal, usd("20.00"));
}

async fn one_code_unlocks_several_promotions_and_is_used_once(backend: Backend) {
    let shop = Shop::new(backend).await;
    let v = shop.product("TEE", "20.00", 10).await;
    let save = |p: Promotion| {
        let engine = shop.engine.clone();
        async move { engine.save_promotion(&Actor::System, p).await.unwrap() }
    };
    let items = save(Promotion::new("Ten off", ten_percent()).coded()).await;
    let ship = save(
        Promotion::new(
            "Free shipping",
            Action::Shipping {
                reward: cartwright::pricing::Reward::Percent {
                    percent: Decimal::ONE_HUNDRED,
                },
                methods: vec![],
            },
        )
        .coded(),
    )
    .await;
    let big = save(Promotion::new("Big spender", ten_percent()).coded().when(
        Condition::Subtotal {
            op: Op::Gte,
            amount: usd("100.00"),
        },
    ))
    .await;
    let auto = save(Promotion::new("Automatic", ten_percent())).await;

    // Refused whole, naming the problem; nothing is stored.
    let ids = [items.id, ship.id, big.id];
    let refused = [
        (vec![items.id, auto.id], "automatic"),
        (vec![items.id, items.id], "twice"),
        (vec![], "at least one"),
    ];
    for (list, why) in refused {
        let err = shop
            .engine
            .create_coupon_for(&Actor::System, &list, "WELCOME", Some(1))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Invalid { reason, .. } if reason.contains(why)),
            "{err:?}"
        );
    }
    let unknown = cartwright::id::PromotionId::new();
    let err = shop
        .engine
        .create_coupon_for(&Actor::System, &[items.id, unknown], "WELCOME", Some(1))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    let too_many = vec![items.id; cartwright::pricing::MAX_PROMOTIONS_PER_CODE + 1];
    let err = shop
        .engine
        .create_coupon_for(&Actor::System, &too_many, "WELCOME", Some(1))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::LimitExceeded { .. }), "{err:?}");
    let err = shop
        .engine
        .create_coupon_for(&Actor::Guest, &ids, "WELCOME", Some(1))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Forbidden), "{err:?}");

    let coupon = shop
        .engine
        .create_coupon_for(&Actor::System, &ids, "welcome", Some(1))
        .await
        .unwrap();
    assert_eq!(coupon.promotions().collect::<Vec<_>>(), ids);
    // Each promotion is considered with the code, applied or not on its own.
    let cart = coded_cart(&shop, v, "WELCOME").await;
    let priced = shop
        .engine
        .price_cart(&Actor::Guest, cart.id())
        .await
        .unwrap();
    let outcomes: Vec<_> = priced.code_outcomes("WELCOME").collect();
    assert_eq!(outcomes.len(), 3, "{outcomes:?}");
    let applied = |id| {
        outcomes
            .iter()
            .find(|o| o.promotion_id == Some(id))
            .map(|o| o.applied())
    };
    assert_eq!(applied(items.id), Some(true));
    assert_eq!(applied(ship.id), Some(true));
    assert_eq!(applied(big.id), Some(false));
    assert!(matches!(
        priced.outcome(big.id).unwrap().rejection(),
        Some(Rejection::ConditionsNotMet { .. })
    ));
    // 10 % (automatic) then 10 % (code) of 20.00, and shipping 5.00 free.
    assert_eq!(priced.discount_total, usd("8.80"));

    // One order uses the single-use code once, though it unlocked two.
    shop.place(cart.id(), "k1").await;
    let counter = format!("coupon:{}:uses", coupon.code);
    assert_eq!(shop.engine.store().usage(&counter).await.unwrap(), 1);
    let again = coded_cart(&shop, v, "WELCOME").await;
    let priced = shop
        .engine
        .price_cart(&Actor::Guest, again.id())
        .await
        .unwrap();
    assert!(
        priced
            .code_outcomes("WELCOME")
            .all(|o| matches!(o.rejection(), Some(Rejection::UsedUp { limit: 1, .. }))),
        "{:?}",
        priced.promotions
    );
}

async fn currency_terms_are_stored_and_priced(backend: Backend) {
    use cartwright::pricing::CurrencyTerms;
    let shop = Shop::new(backend).await;
    let v = shop.product("TEE", "60.00", 10).await;
    let eur = |a: &str| Money::parse(a, Currency::EUR).unwrap();
    let promo = Promotion::new(
        "5 off 50",
        Action::AmountOffOrder {
            amount: usd("5.00"),
        },
    )
    .when(Condition::Subtotal {
        op: Op::Gte,
        amount: usd("50.00"),
    })
    .in_currency(
        CurrencyTerms::new(Currency::EUR)
            .action(Action::AmountOffOrder {
                amount: eur("4.50"),
            })
            .conditions(vec![Condition::Subtotal {
                op: Op::Gte,
                amount: eur("45.00"),
            }]),
    );
    let saved = shop
        .engine
        .save_promotion(&Actor::System, promo.clone())
        .await
        .unwrap();
    // Read back whole, by this engine and a fresh one.
    assert_eq!(
        shop.engine
            .promotion(&Actor::System, saved.id)
            .await
            .unwrap(),
        promo
    );
    let cart = shop.ready_cart(&[(v, 1)]).await;
    let priced = shop
        .engine
        .price_cart(&Actor::Guest, cart.id())
        .await
        .unwrap();
    assert_eq!(priced.discount_total, usd("5.00"));
    // Terms that leave an amount in another currency are refused whole.
    let bad = promo.in_currency(CurrencyTerms::new(Currency::GBP));
    let err = shop
        .engine
        .save_promotion(&Actor::System, bad)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }), "{err:?}");
}

conformance!(
    currency_terms_are_stored_and_priced,
    one_code_unlocks_several_promotions_and_is_used_once,
    a_promotion_that_cannot_be_evaluated_never_fails_pricing,
    the_promotion_store_port,
    a_failed_checkout_gives_its_code_use_back,
    a_category_filter_matches_products_in_its_subcategories,
    a_coupon_discounts_the_order_and_counts_a_use,
    a_single_use_code_fails_the_second_checkout_without_charging,
    an_expected_total_guards_against_a_changed_price,
    a_gift_line_is_reserved_with_the_order,
    another_engine_sees_promotion_changes,
    a_per_customer_limit_counts_each_account,
    a_first_order_offer_counts_earlier_orders_by_email_too,
    a_request_can_leave_out_automatic_promotions_and_ask_what_qualifies,
    coupon_codes_follow_the_engines_code_policy,
    custom_priced_lines_keep_their_price_unless_promotions_are_allowed,
    a_budget_gives_what_is_left_then_stops,
    cancelling_an_order_gives_its_use_back,
    bulk_codes_are_unique_and_each_works_once,
    a_code_limited_to_100_uses_is_on_exactly_100_orders_of_1000,
);
