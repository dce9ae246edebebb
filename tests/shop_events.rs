//! Events for the back office: catalog, promotion and stock changes, and a
//! low-stock threshold per variant announced once per crossing — also when
//! many checkouts on two engines cross it at once. On both stores.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use cartwright::event::{CatalogChange, EventKind, PromotionChange};
use cartwright::id::VariantId;
use cartwright::prelude::*;
use common::{Backend, Shop, usd};

/// Every event kind relayed to `consumer` so far (waiting until there are
/// at least `n`).
async fn kinds(shop: &Shop, consumer: &str, n: usize) -> Vec<EventKind> {
    common::pending(&shop.engine, consumer, n)
        .await
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

/// The events relayed to `consumer` once `ready` holds for them (the
/// PostgreSQL relay may show an event a moment after its commit), or as
/// they are after a bounded wait.
async fn until(
    shop: &Shop,
    consumer: &str,
    ready: impl Fn(&[EventKind]) -> bool,
) -> Vec<EventKind> {
    let mut events = Vec::new();
    for _ in 0..100 {
        events = kinds(shop, consumer, 0).await;
        if ready(&events) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    events
}

async fn product_with_threshold(shop: &Shop, stock: i64, threshold: u32) -> VariantId {
    let product = shop
        .product_with(
            "LOW",
            NewVariant::shipped("")
                .prices(vec![usd("10.00")])
                .status(Status::Active)
                .low_stock_threshold(threshold),
        )
        .await;
    let v = product.variants()[0].id();
    shop.engine
        .set_stock(&Actor::System, v, shop.warehouse, stock)
        .await
        .unwrap();
    v
}

fn low(events: &[EventKind], v: VariantId) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, EventKind::LowStock { variant_id, .. } if *variant_id == v))
        .count()
}

fn replenished(events: &[EventKind], v: VariantId) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, EventKind::StockReplenished { variant_id, .. } if *variant_id == v))
        .count()
}

async fn catalog_promotion_and_stock_changes_are_events(backend: Backend) {
    let shop = Shop::new(backend).await;
    let staff = Actor::Staff("ann".into());
    let product = shop
        .engine
        .create_product(
            &staff,
            NewProduct::new("Mug")
                .variants(vec![NewVariant::shipped("MUG").prices(vec![usd("5.00")])]),
        )
        .await
        .unwrap();
    shop.engine
        .set_product_status(&staff, product.id(), Status::Active)
        .await
        .unwrap();
    let v = product.variants()[0].id();
    shop.engine
        .set_stock(&staff, v, shop.warehouse, 7)
        .await
        .unwrap();
    let promo = shop
        .engine
        .save_promotion(&staff, common::ten_percent_coded())
        .await
        .unwrap();
    shop.engine
        .generate_coupons(&staff, promo.id, "SPRING", 3, Some(1))
        .await
        .unwrap();
    let events = until(&shop, "crm", |e| {
        e.iter().any(|k| {
            matches!(
                k,
                EventKind::PromotionChanged {
                    change: PromotionChange::CouponsCreated { .. }
                }
            )
        })
    })
    .await;
    let has = |want: &dyn Fn(&EventKind) -> bool| events.iter().any(want);
    assert!(has(
        &|e| matches!(e, EventKind::CatalogChanged { change: CatalogChange::ProductCreated { product_id } } if *product_id == product.id())
    ));
    assert!(has(&|e| matches!(
        e,
        EventKind::CatalogChanged {
            change: CatalogChange::ProductStatusChanged {
                status: Status::Active,
                ..
            }
        }
    )));
    assert!(has(
        &|e| matches!(e, EventKind::StockChanged { variant_id, on_hand: 7, .. } if *variant_id == v)
    ));
    assert!(has(
        &|e| matches!(e, EventKind::PromotionChanged { change: PromotionChange::Saved { promotion_id, enabled: true } } if *promotion_id == promo.id)
    ));
    assert!(has(&|e| matches!(
        e,
        EventKind::PromotionChanged {
            change: PromotionChange::CouponsCreated { count: 3, .. }
        }
    )));
    // Each is beside the audit record naming who did it.
    assert!(has(
        &|e| matches!(e, EventKind::AdminChange { actor: Actor::Staff(who), action, .. } if who == "ann" && action == "create_product")
    ));
}

async fn low_stock_is_announced_once_per_crossing(backend: Backend) {
    let shop = Shop::new(backend).await;
    let v = product_with_threshold(&shop, 5, 3).await;
    let buy = |qty: u32, key: &'static str| {
        let shop = &shop;
        async move {
            let cart = shop.ready_cart(&[(v, qty)]).await;
            shop.engine
                .checkout(common::request(cart.id(), key))
                .await
                .unwrap();
        }
    };
    buy(2, "k1").await; // 3 available: not below 3
    let events = kinds(&shop, "ops", 1).await;
    assert_eq!(low(&events, v), 0);
    buy(1, "k2").await; // 2 available: below
    buy(1, "k3").await; // 1 available: still below, no second event
    // Every order is relayed, so the low-stock event before them is too.
    let orders = |e: &[EventKind]| {
        e.iter()
            .filter(|k| matches!(k, EventKind::OrderPlaced { .. }))
            .count()
    };
    let events = until(&shop, "ops", |e| orders(e) == 3 && low(e, v) >= 1).await;
    assert_eq!(low(&events, v), 1, "{events:?}");
    let Some(EventKind::LowStock {
        available,
        threshold,
        ..
    }) = events
        .iter()
        .find(|e| matches!(e, EventKind::LowStock { .. }))
    else {
        panic!("no low-stock event");
    };
    assert_eq!((*available, *threshold), (2, 3));
    shop.engine
        .adjust_stock(&Actor::System, v, shop.warehouse, 10)
        .await
        .unwrap();
    let events = until(&shop, "ops", |e| replenished(e, v) >= 1).await;
    assert_eq!(replenished(&events, v), 1);
    // A variant without a threshold never sends either.
    let plain = shop.product("PLAIN", "1.00", 1).await;
    let cart = shop.ready_cart(&[(plain, 1)]).await;
    shop.engine
        .checkout(common::request(cart.id(), "plain"))
        .await
        .unwrap();
    let events = until(&shop, "ops", |e| orders(e) == 4).await;
    assert_eq!(orders(&events), 4);
    assert_eq!(low(&events, plain) + replenished(&events, plain), 0);
}

/// Many checkouts over two engines cross the threshold together: one event.
async fn a_crossing_raced_by_many_checkouts_is_announced_once(backend: Backend) {
    let shop = Shop::new(backend).await;
    let v = product_with_threshold(&shop, 20, 15).await;
    let engines = [shop.engine.clone(), shop.second_engine().await];
    let mut carts = Vec::new();
    for _ in 0..10 {
        carts.push(shop.ready_cart(&[(v, 1)]).await.id());
    }
    let mut tasks = Vec::new();
    for (i, cart) in carts.into_iter().enumerate() {
        let engine = engines[i % 2].clone();
        tasks.push(tokio::spawn(async move {
            engine
                .checkout(CheckoutRequest::new(
                    cart,
                    IdempotencyKey::new(format!("race-{i}")).unwrap(),
                    "tok_visa",
                    Actor::Guest,
                ))
                .await
                .unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let events = until(&shop, "ops", |e| {
        e.iter()
            .filter(|k| matches!(k, EventKind::OrderPlaced { .. }))
            .count()
            == 10
            && low(e, v) >= 1
    })
    .await;
    assert_eq!(low(&events, v), 1, "{events:?}");
}

conformance!(
    catalog_promotion_and_stock_changes_are_events,
    low_stock_is_announced_once_per_crossing,
    a_crossing_raced_by_many_checkouts_is_announced_once,
);
