//! Carts through the public API.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use cartwright::cart::{
    CartStatus, LineItem, MAX_CODES_PER_CART, MAX_LINES_PER_CART, MAX_QUANTITY_PER_LINE,
};
use cartwright::id::{CustomerId, LineId, VariantId};
use cartwright::prelude::*;
use common::{Backend, Shop, usd};

async fn add_change_remove_and_price(backend: Backend) {
    let shop = Shop::new(backend).await;
    let a = shop.product("A", "3.00", 10).await;
    let b = shop.product("B", "1.25", 10).await;
    let g = Actor::Guest;
    let cart = shop.engine.create_cart(&g, Currency::USD).await.unwrap();
    let cart = shop.engine.add_item(&g, cart.id(), a, 2).await.unwrap();
    let cart = shop.engine.add_item(&g, cart.id(), b, 1).await.unwrap();
    let cart = shop.engine.add_item(&g, cart.id(), a, 1).await.unwrap();
    assert_eq!(cart.lines().len(), 2);
    assert_eq!(cart.lines()[0].quantity, 3);
    let line_b = cart.lines()[1].id;
    let cart = shop
        .engine
        .set_quantity(&g, cart.id(), line_b, 4)
        .await
        .unwrap();
    let priced = shop.engine.price_cart(&g, cart.id()).await.unwrap();
    assert_eq!(priced.subtotal, usd("14.00"));
    assert_eq!(priced.lines[1].unit_price, usd("1.25"));
    assert!(priced.shipping.is_none(), "no method chosen yet");
    assert_eq!(priced.shipping_options.len(), 1);
    let cart = shop
        .engine
        .remove_line(&g, cart.id(), line_b)
        .await
        .unwrap();
    assert_eq!(cart.item_count(), 3);
    // Cart versions move with every save.
    assert!(cart.version() >= 5);
}

async fn bad_input_is_refused_and_changes_nothing(backend: Backend) {
    let shop = Shop::new(backend).await;
    let a = shop.product("A", "3.00", 10).await;
    let draft = shop
        .product_with(
            "D",
            NewVariant::digital("")
                .prices(vec![usd("1.00")])
                .status(Status::Draft),
        )
        .await
        .variants()[0]
        .id();
    let g = Actor::Guest;
    let cart = shop.engine.create_cart(&g, Currency::USD).await.unwrap();
    shop.engine.add_item(&g, cart.id(), a, 1).await.unwrap();
    let yen = shop.engine.create_cart(&g, Currency::JPY).await.unwrap();
    let before = shop.snapshot().await;

    let e = &shop.engine;
    let id = cart.id();
    assert!(matches!(
        e.add_item(&g, id, a, 0).await,
        Err(Error::Invalid { .. })
    ));
    assert!(matches!(
        e.add_item(&g, id, a, MAX_QUANTITY_PER_LINE).await,
        Err(Error::LimitExceeded { .. })
    ));
    assert!(e.add_item(&g, id, a, u32::MAX).await.is_err());
    assert!(matches!(
        e.add_item(&g, id, VariantId::new(), 1).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        e.add_item(&g, id, draft, 1).await,
        Err(Error::NotPurchasable { .. })
    ));
    assert!(matches!(
        e.add_item(&g, yen.id(), a, 1).await,
        Err(Error::NoPrice {
            currency: Currency::JPY,
            ..
        })
    ));
    assert!(e.set_quantity(&g, id, LineId::new(), 2).await.is_err());
    assert!(
        e.set_quantity(
            &g,
            id,
            cart.lines().first().map_or(LineId::new(), |l| l.id),
            0
        )
        .await
        .is_err()
    );
    assert!(e.remove_line(&g, id, LineId::new()).await.is_err());
    assert!(e.add_coupon_code(&g, id, &"A".repeat(65)).await.is_err());
    assert!(e.add_coupon_code(&g, id, "no spaces").await.is_err());
    assert!(
        e.set_shipping_method(&g, id, &"m".repeat(65))
            .await
            .is_err()
    );
    assert!(e.set_shipping_method(&g, id, "  ").await.is_err());
    assert!(e.set_email(&g, id, "nope").await.is_err());
    assert!(
        e.set_shipping_address(&g, id, common::address().line1("x".repeat(201)))
            .await
            .is_err()
    );
    assert!(e.cart(&g, cartwright::id::CartId::new()).await.is_err());
    assert_eq!(shop.snapshot().await, before);
}

#[test]
fn a_price_smuggled_into_a_line_is_rejected() {
    let line = format!(
        r#"{{"id":"{}","variant_id":"{}","quantity":1,"unit_price":{{"amount":"0.01","currency":"USD"}}}}"#,
        LineId::new(),
        VariantId::new()
    );
    assert!(serde_json::from_str::<LineItem>(&line).is_err());
}

async fn an_unknown_shipping_method_cannot_be_priced(backend: Backend) {
    let shop = Shop::new(backend).await;
    let a = shop.product("A", "3.00", 10).await;
    let g = Actor::Guest;
    let cart = shop.engine.create_cart(&g, Currency::USD).await.unwrap();
    shop.engine.add_item(&g, cart.id(), a, 1).await.unwrap();
    shop.engine
        .set_shipping_method(&g, cart.id(), "teleport")
        .await
        .unwrap();
    assert!(matches!(
        shop.engine.price_cart(&g, cart.id()).await,
        Err(Error::ShippingUnavailable(_))
    ));
}

async fn limits_on_lines_and_codes(backend: Backend) {
    let shop = Shop::new(backend).await;
    let g = Actor::Guest;
    let cart = shop.engine.create_cart(&g, Currency::USD).await.unwrap();
    for i in 0..MAX_CODES_PER_CART {
        shop.engine
            .add_coupon_code(&g, cart.id(), &format!("code{i}"))
            .await
            .unwrap();
    }
    assert!(matches!(
        shop.engine.add_coupon_code(&g, cart.id(), "one-more").await,
        Err(Error::LimitExceeded { .. })
    ));
    // Entering a code twice is a no-op; removing works on the normalized form.
    shop.engine
        .add_coupon_code(&g, cart.id(), " CODE0 ")
        .await
        .unwrap();
    let c = shop
        .engine
        .remove_coupon_code(&g, cart.id(), "code0")
        .await
        .unwrap();
    assert_eq!(c.coupon_codes().len(), MAX_CODES_PER_CART - 1);

    // Lines: fill a pure cart to the limit (the engine applies the same rule).
    let mut pure = cartwright::cart::Cart::new(Currency::USD, None, chrono::Utc::now());
    for _ in 0..MAX_LINES_PER_CART {
        pure.add_line(VariantId::new(), 1).unwrap();
    }
    assert!(matches!(
        pure.add_line(VariantId::new(), 1),
        Err(Error::LimitExceeded { .. })
    ));
}

async fn customer_carts_are_private(backend: Backend) {
    let shop = Shop::new(backend).await;
    let a = shop.product("A", "3.00", 10).await;
    let ann = shop.customer("ann@x.io").await;
    let me = Actor::Customer(ann.id());
    let cart = shop.engine.create_cart(&me, Currency::USD).await.unwrap();
    assert_eq!(cart.customer_id(), Some(ann.id()));
    let before = shop.snapshot().await;
    let other = Actor::Customer(CustomerId::new());
    assert!(matches!(
        shop.engine.cart(&other, cart.id()).await,
        Err(Error::Forbidden)
    ));
    assert!(matches!(
        shop.engine.add_item(&other, cart.id(), a, 1).await,
        Err(Error::Forbidden)
    ));
    assert!(matches!(
        shop.engine.add_item(&Actor::Guest, cart.id(), a, 1).await,
        Err(Error::Forbidden)
    ));
    assert!(matches!(
        shop.engine.price_cart(&Actor::Guest, cart.id()).await,
        Err(Error::Forbidden)
    ));
    assert_eq!(shop.snapshot().await, before);
    shop.engine.add_item(&me, cart.id(), a, 1).await.unwrap();
    shop.engine
        .cart(&Actor::Staff("sam".into()), cart.id())
        .await
        .unwrap();
    // A cart for an unknown customer cannot be created.
    assert!(
        shop.engine
            .create_cart(&other, Currency::USD)
            .await
            .is_err()
    );
}

async fn guest_cart_merges_into_the_customers_cart_at_login(backend: Backend) {
    let shop = Shop::new(backend).await;
    let a = shop.product("A", "3.00", 10).await;
    let b = shop.product("B", "1.00", 10).await;
    let ann = shop.customer("ann@x.io").await;
    let me = Actor::Customer(ann.id());
    let mine = shop.engine.create_cart(&me, Currency::USD).await.unwrap();
    shop.engine.add_item(&me, mine.id(), a, 1).await.unwrap();
    let g = Actor::Guest;
    let guest = shop.engine.create_cart(&g, Currency::USD).await.unwrap();
    shop.engine.add_item(&g, guest.id(), a, 2).await.unwrap();
    shop.engine.add_item(&g, guest.id(), b, 1).await.unwrap();
    shop.engine
        .add_coupon_code(&g, guest.id(), "welcome")
        .await
        .unwrap();

    shop.engine.login("ann@x.io", "password1").await.unwrap();
    let merged = shop
        .engine
        .merge_guest_cart(&Actor::Customer(ann.id()), guest.id())
        .await
        .unwrap();
    assert_eq!(merged.id(), mine.id());
    assert_eq!(merged.item_count(), 4);
    assert_eq!(merged.coupon_codes(), ["WELCOME"]);
    let guest_after = shop.engine.cart(&g, guest.id()).await.unwrap();
    assert_eq!(guest_after.status(), CartStatus::Merged { into: mine.id() });
    assert!(
        shop.engine.add_item(&g, guest.id(), a, 1).await.is_err(),
        "a merged cart is closed"
    );

    // With no cart of their own, the guest cart simply becomes theirs.
    let bob = shop.customer("bob@x.io").await;
    let guest2 = shop.engine.create_cart(&g, Currency::USD).await.unwrap();
    shop.engine.add_item(&g, guest2.id(), b, 1).await.unwrap();
    let taken = shop
        .engine
        .merge_guest_cart(&Actor::Customer(bob.id()), guest2.id())
        .await
        .unwrap();
    assert_eq!(taken.id(), guest2.id());
    assert_eq!(taken.customer_id(), Some(bob.id()));
    assert!(
        shop.engine.cart(&g, guest2.id()).await.is_err(),
        "no longer a guest cart"
    );
}

async fn a_merge_that_would_break_a_limit_changes_neither_cart(backend: Backend) {
    let shop = Shop::new(backend).await;
    let a = shop.product("A", "3.00", 100_000).await;
    let ann = shop.customer("ann@x.io").await;
    let me = Actor::Customer(ann.id());
    let mine = shop.engine.create_cart(&me, Currency::USD).await.unwrap();
    shop.engine
        .add_item(&me, mine.id(), a, MAX_QUANTITY_PER_LINE)
        .await
        .unwrap();
    let guest = shop
        .engine
        .create_cart(&Actor::Guest, Currency::USD)
        .await
        .unwrap();
    shop.engine
        .add_item(&Actor::Guest, guest.id(), a, 1)
        .await
        .unwrap();
    let before = shop.snapshot().await;
    assert!(matches!(
        shop.engine
            .merge_guest_cart(&Actor::Customer(ann.id()), guest.id())
            .await,
        Err(Error::LimitExceeded { .. })
    ));
    assert_eq!(shop.snapshot().await, before);
}

async fn concurrent_additions_are_never_lost(backend: Backend) {
    let shop = Shop::new(backend).await;
    let a = shop.product("A", "3.00", 10).await;
    let cart = shop
        .engine
        .create_cart(&Actor::Guest, Currency::USD)
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let engine = shop.engine.clone();
        let id = cart.id();
        tasks.push(tokio::spawn(async move {
            engine.add_item(&Actor::Guest, id, a, 1).await
        }));
    }
    let mut ok = 0u64;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(Error::Conflict(_)) => {}
            Err(e) => panic!("{e}"),
        }
    }
    let cart = shop.engine.cart(&Actor::Guest, cart.id()).await.unwrap();
    assert_eq!(
        cart.item_count(),
        ok,
        "every acknowledged addition is in the cart"
    );
    assert!(ok > 0);
}

async fn a_keyed_addition_is_applied_once_however_often_retried(backend: Backend) {
    let shop = Shop::new(backend).await;
    let a = shop.product("A", "10.00", 100).await;
    let second = shop.second_engine().await;
    let cart = shop
        .engine
        .create_cart(&Actor::Guest, Currency::USD)
        .await
        .unwrap();
    let key = IdempotencyKey::new("add-1").unwrap();
    // A client retries the same addition ten times at once over two instances.
    let mut tasks = Vec::new();
    for i in 0..10 {
        let engine = if i % 2 == 0 {
            shop.engine.clone()
        } else {
            second.clone()
        };
        let (id, key) = (cart.id(), key.clone());
        tasks.push(tokio::spawn(async move {
            engine.add_item_once(&Actor::Guest, id, a, 2, &key).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let c = shop.engine.cart(&Actor::Guest, cart.id()).await.unwrap();
    assert_eq!(c.item_count(), 2, "added once");
    // Another key adds again; a plain add always adds.
    let other = IdempotencyKey::new("add-2").unwrap();
    let c = shop
        .engine
        .add_item_once(&Actor::Guest, cart.id(), a, 1, &other)
        .await
        .unwrap();
    assert_eq!(c.item_count(), 3);
    let c = shop
        .engine
        .add_item_once(&Actor::Guest, cart.id(), a, 1, &other)
        .await
        .unwrap();
    assert_eq!(c.item_count(), 3);
    // A refused keyed addition is not remembered: fixed and retried, it applies.
    let bad = IdempotencyKey::new("add-3").unwrap();
    assert!(
        shop.engine
            .add_item_once(&Actor::Guest, cart.id(), a, 0, &bad)
            .await
            .is_err()
    );
    let c = shop
        .engine
        .add_item_once(&Actor::Guest, cart.id(), a, 1, &bad)
        .await
        .unwrap();
    assert_eq!(c.item_count(), 4);
}

async fn lines_carry_metadata_into_the_order(backend: Backend) {
    let shop = Shop::new(backend).await;
    let mug = shop.product("MUG", "12.00", 10).await;
    let g = Actor::Guest;
    let cart = shop.engine.create_cart(&g, Currency::USD).await.unwrap();
    let engraved: std::collections::BTreeMap<String, String> =
        [("engraving".to_owned(), "Ada ✿".to_owned())].into();
    shop.engine.add_item(&g, cart.id(), mug, 1).await.unwrap();
    shop.engine
        .add_item_with(&g, cart.id(), mug, 1, engraved.clone())
        .await
        .unwrap();
    let cart = shop.engine.add_item(&g, cart.id(), mug, 1).await.unwrap();
    // Same variant, other metadata: two lines; the plain one grew.
    let lines: Vec<(u32, bool)> = cart
        .lines()
        .iter()
        .map(|l| (l.quantity, l.metadata.is_empty()))
        .collect();
    assert_eq!(lines, [(2, true), (1, false)]);
    shop.complete_details(&g, cart.id()).await;
    let order = shop.place(cart.id(), "meta").await;
    let kept: Vec<_> = order
        .pricing()
        .lines
        .iter()
        .map(|l| (l.quantity, l.metadata.clone()))
        .collect();
    assert_eq!(kept, [(2, Default::default()), (1, engraved)]);
    // The stored order keeps it too.
    let stored = shop.engine.order(&Actor::System, order.id()).await.unwrap();
    assert_eq!(stored.pricing().lines[1].metadata["engraving"], "Ada ✿");

    // Hostile metadata is refused, naming it, and changes nothing.
    let other = shop.engine.create_cart(&g, Currency::USD).await.unwrap();
    let too_many: std::collections::BTreeMap<String, String> = (0
        ..=cartwright::cart::MAX_LINE_METADATA)
        .map(|i| (format!("k{i}"), "v".to_owned()))
        .collect();
    let bell: std::collections::BTreeMap<String, String> =
        [("note".to_owned(), "hi\u{7}".to_owned())].into();
    let long_key: std::collections::BTreeMap<String, String> = [(
        "k".repeat(cartwright::cart::MAX_METADATA_KEY_LEN + 1),
        "v".to_owned(),
    )]
    .into();
    let empty_key: std::collections::BTreeMap<String, String> =
        [(" ".to_owned(), "v".to_owned())].into();
    for bad in [too_many, bell, long_key, empty_key] {
        let err = shop
            .engine
            .add_item_with(&g, other.id(), mug, 1, bad)
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::Invalid { .. } | Error::LimitExceeded { .. }),
            "{err:?}"
        );
    }
    let unchanged = shop.engine.cart(&g, other.id()).await.unwrap();
    assert!(unchanged.lines().is_empty());
}

conformance!(
    lines_carry_metadata_into_the_order,
    a_keyed_addition_is_applied_once_however_often_retried,
    add_change_remove_and_price,
    bad_input_is_refused_and_changes_nothing,
    an_unknown_shipping_method_cannot_be_priced,
    limits_on_lines_and_codes,
    customer_carts_are_private,
    guest_cart_merges_into_the_customers_cart_at_login,
    a_merge_that_would_break_a_limit_changes_neither_cart,
    concurrent_additions_are_never_lost,
);
