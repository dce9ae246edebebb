//! Sales channels: a cart in a channel sees only the channel's products,
//! currencies, price lists and promotions, and takes stock only from its
//! locations; a cart in no channel behaves as before. On both stores.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::BTreeSet;

use cartwright::channel::SalesChannel;
use cartwright::id::{CartId, LocationId, ProductId, VariantId};
use cartwright::prelude::*;
use cartwright::pricing::{Action, Condition, LineFilter, Op, PriceList, PriceListKind, Promotion};
use common::{Backend, Shop, usd};
use rust_decimal::Decimal;

struct World {
    shop: Shop,
    app: SalesChannel,
    web: SalesChannel,
    a: VariantId,
    a_product: ProductId,
    b: VariantId,
    app_store: LocationId,
}

async fn world(backend: Backend) -> World {
    let shop = Shop::new(backend).await;
    let a = shop.product("A", "10.00", 5).await;
    let b = shop.product("B", "10.00", 5).await;
    let a_product = shop
        .engine
        .variant_by_sku("A")
        .await
        .unwrap()
        .variant
        .product_id();
    let app_store = shop
        .engine
        .create_location(&Actor::System, "App store room", 1)
        .await
        .unwrap()
        .id();
    shop.engine
        .set_stock(&Actor::System, a, app_store, 1)
        .await
        .unwrap();
    let list = shop
        .engine
        .save_price_list(
            &Actor::System,
            PriceList::new("App prices", PriceListKind::Sale, 0, Currency::USD).with_price(
                a,
                1,
                usd("8.00"),
            ),
        )
        .await
        .unwrap();
    let now = chrono::Utc::now();
    let mut app = SalesChannel::new("App", &[Currency::USD], now);
    app.products = Some(BTreeSet::from([a_product]));
    app.price_lists = Some(BTreeSet::from([list.id]));
    app.locations = Some(BTreeSet::from([app_store]));
    let app = shop.engine.save_channel(&Actor::System, app).await.unwrap();
    let mut web = SalesChannel::new("Web", &[Currency::USD, Currency::EUR], now);
    web.price_lists = Some(BTreeSet::new());
    let web = shop.engine.save_channel(&Actor::System, web).await.unwrap();
    World {
        shop,
        app,
        web,
        a,
        a_product,
        b,
        app_store,
    }
}

async fn cart_in(w: &World, channel: Option<&SalesChannel>, lines: &[(VariantId, u32)]) -> CartId {
    let e = &w.shop.engine;
    let cart = match channel {
        Some(c) => e
            .create_cart_in(&Actor::Guest, c.id, Currency::USD)
            .await
            .unwrap(),
        None => e.create_cart(&Actor::Guest, Currency::USD).await.unwrap(),
    };
    for (v, q) in lines {
        e.add_item(&Actor::Guest, cart.id(), *v, *q).await.unwrap();
    }
    w.shop.complete_details(&Actor::Guest, cart.id()).await.id()
}

async fn a_channel_sells_only_its_products_in_its_currencies(backend: Backend) {
    let w = world(backend).await;
    let e = &w.shop.engine;
    let eur = e
        .create_cart_in(&Actor::Guest, w.app.id, Currency::EUR)
        .await;
    assert!(matches!(eur, Err(Error::Invalid { .. })), "{eur:?}");
    let cart = e
        .create_cart_in(&Actor::Guest, w.app.id, Currency::USD)
        .await
        .unwrap();
    assert_eq!(cart.channel_id(), Some(w.app.id));
    let before = w.shop.snapshot().await;
    let b = e.add_item(&Actor::Guest, cart.id(), w.b, 1).await;
    assert!(
        matches!(b, Err(Error::NotInChannel { channel_id, .. }) if channel_id == w.app.id),
        "{b:?}"
    );
    assert_eq!(w.shop.snapshot().await, before, "refused, nothing changed");
    // Staff adding a custom-priced line go through the same check.
    let custom = e
        .add_custom_line(
            &Actor::Staff("wes".into()),
            cart.id(),
            w.b,
            1,
            cartwright::cart::CustomPrice::new(usd("5.00"), "quote 7"),
        )
        .await;
    assert!(
        matches!(custom, Err(Error::NotInChannel { channel_id, .. }) if channel_id == w.app.id),
        "{custom:?}"
    );
    assert_eq!(w.shop.snapshot().await, before, "refused, nothing changed");
    e.add_custom_line(
        &Actor::Staff("wes".into()),
        cart.id(),
        w.a,
        1,
        cartwright::cart::CustomPrice::new(usd("5.00"), "quote 7"),
    )
    .await
    .unwrap();
    e.remove_line(
        &Actor::Guest,
        cart.id(),
        e.cart(&Actor::Guest, cart.id()).await.unwrap().lines()[0].id,
    )
    .await
    .unwrap();
    e.add_item(&Actor::Guest, cart.id(), w.a, 1).await.unwrap();
    // The product leaves the channel: the cart can no longer be priced or
    // checked out there.
    let mut app = e.channel(w.app.id).await.unwrap();
    app.products = Some(BTreeSet::new());
    e.save_channel(&Actor::System, app).await.unwrap();
    let priced = e.price_cart(&Actor::Guest, cart.id()).await;
    assert!(
        matches!(priced, Err(Error::NotInChannel { product_id, .. }) if product_id == w.a_product)
    );
    w.shop.complete_details(&Actor::Guest, cart.id()).await;
    let checkout = e.checkout(common::request(cart.id(), "k")).await;
    assert!(
        matches!(checkout, Err(Error::NotInChannel { .. })),
        "{checkout:?}"
    );
    assert!(w.shop.payments.calls().is_empty());
    // Inactive channels take no new carts; names are unique; versions guard updates.
    let mut web = e.channel(w.web.id).await.unwrap();
    web.active = false;
    let web = e.save_channel(&Actor::System, web).await.unwrap();
    assert!(matches!(
        e.create_cart_in(&Actor::Guest, web.id, Currency::USD).await,
        Err(Error::Invalid { .. })
    ));
    let dup = SalesChannel::new("app", &[Currency::USD], chrono::Utc::now());
    assert!(matches!(
        e.save_channel(&Actor::System, dup).await,
        Err(Error::AlreadyExists { .. })
    ));
    let mut stale = web.clone();
    stale.version -= 1;
    assert!(matches!(
        e.save_channel(&Actor::System, stale).await,
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        e.save_channel(&Actor::Guest, web).await,
        Err(Error::Forbidden)
    ));
    let names: Vec<String> = e
        .channels()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, vec!["App", "Web"]);
}

async fn prices_and_promotions_follow_the_channel(backend: Backend) {
    let w = world(backend).await;
    let e = &w.shop.engine;
    let mut promo = Promotion::new(
        "App ten",
        Action::PercentOffItems {
            target: LineFilter::Any,
            percent: Decimal::TEN,
            max_discount: None,
            max_quantity_per_line: None,
        },
    );
    promo.conditions = vec![Condition::SalesChannel {
        op: Op::In,
        channels: vec![w.app.id],
    }];
    e.save_promotion(&Actor::System, promo).await.unwrap();
    let unit = |p: &cartwright::pricing::PricedCart| p.lines[0].unit_price;
    let app = cart_in(&w, Some(&w.app), &[(w.a, 1)]).await;
    let priced = e.price_cart(&Actor::Guest, app).await.unwrap();
    assert_eq!(unit(&priced), usd("8.00"), "the app's price list");
    assert_eq!(priced.lines[0].discount, usd("0.80"), "the app's promotion");
    let web = cart_in(&w, Some(&w.web), &[(w.a, 1)]).await;
    let priced = e.price_cart(&Actor::Guest, web).await.unwrap();
    assert_eq!(unit(&priced), usd("10.00"), "the web uses no price list");
    assert!(priced.lines[0].discount.is_zero());
    let reason = format!("{:?}", priced.promotions[0].rejection());
    assert!(reason.contains("sales channel"), "{reason}");
    let none = cart_in(&w, None, &[(w.a, 1)]).await;
    let priced = e.price_cart(&Actor::Guest, none).await.unwrap();
    assert_eq!(
        unit(&priced),
        usd("8.00"),
        "no channel: every list, as before"
    );
    assert!(
        priced.lines[0].discount.is_zero(),
        "no channel: not the app's"
    );
}

async fn stock_comes_from_the_channels_locations(backend: Backend) {
    let w = world(backend).await;
    let e = &w.shop.engine;
    let first = cart_in(&w, Some(&w.app), &[(w.a, 1)]).await;
    let order = e
        .checkout(common::request(first, "app-1"))
        .await
        .unwrap()
        .order;
    assert_eq!(order.channel_id(), Some(w.app.id));
    let stock = e.stock(w.a).await.unwrap();
    let at = |loc: LocationId| {
        stock
            .levels
            .iter()
            .find(|l| l.location_id == loc)
            .map_or(0, |l| l.reserved)
    };
    assert_eq!(at(w.app_store), 1, "held at the app's location");
    assert_eq!(at(w.shop.warehouse), 0);
    // The app's room is empty; the warehouse still has 5, which the app
    // does not sell from.
    let second = cart_in(&w, Some(&w.app), &[(w.a, 1)]).await;
    let out = e.checkout(common::request(second, "app-2")).await;
    assert!(matches!(out, Err(Error::OutOfStock { .. })), "{out:?}");
    // A cart in no channel sells from every location.
    let plain = cart_in(&w, None, &[(w.a, 2)]).await;
    let order = e
        .checkout(common::request(plain, "plain"))
        .await
        .unwrap()
        .order;
    assert_eq!(order.channel_id(), None);
    assert_eq!(e.stock(w.a).await.unwrap().reserved, 3);
}

conformance!(
    a_channel_sells_only_its_products_in_its_currencies,
    prices_and_promotions_follow_the_channel,
    stock_comes_from_the_channels_locations,
);

#[tokio::test]
async fn channel_limits_are_checked() {
    let shop = Shop::new(Backend::Memory).await;
    let e = &shop.engine;
    for bad in [
        SalesChannel::new("", &[Currency::USD], chrono::Utc::now()),
        SalesChannel::new("x".repeat(101), &[Currency::USD], chrono::Utc::now()),
        SalesChannel::new("No money", &[], chrono::Utc::now()),
    ] {
        let r = e.save_channel(&Actor::System, bad).await;
        assert!(matches!(r, Err(Error::Invalid { .. })), "{r:?}");
    }
    let unknown = e
        .create_cart_in(
            &Actor::Guest,
            cartwright::id::ChannelId::new(),
            Currency::USD,
        )
        .await;
    assert!(matches!(unknown, Err(Error::NotFound { .. })));
}
