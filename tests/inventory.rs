//! Inventory through the public API.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use cartwright::id::{LocationId, VariantId};
use cartwright::inventory::{MAX_ON_HAND, ReservationState};
use cartwright::prelude::*;
use common::{Backend, Shop, usd};

async fn reserve_release_commit(backend: Backend) {
    let shop = Shop::new(backend).await;
    let a = shop.product("A", "1.00", 10).await;
    let r = shop
        .engine
        .reserve_stock(&Actor::System, &[(a, 4)])
        .await
        .unwrap();
    let s = shop.engine.stock(a).await.unwrap();
    assert_eq!((s.on_hand, s.reserved, s.available()), (10, 4, 6));
    shop.engine
        .release_reservation(&Actor::System, r.id)
        .await
        .unwrap();
    assert_eq!(shop.engine.stock(a).await.unwrap().available(), 10);
    // Releasing twice is a no-op.
    let again = shop
        .engine
        .release_reservation(&Actor::System, r.id)
        .await
        .unwrap();
    assert_eq!(again.state, ReservationState::Released);
    assert_eq!(shop.engine.stock(a).await.unwrap().available(), 10);

    let r = shop
        .engine
        .reserve_stock(&Actor::System, &[(a, 3)])
        .await
        .unwrap();
    let committed = shop
        .engine
        .commit_reservation(&Actor::System, r.id)
        .await
        .unwrap();
    assert_eq!(committed.state, ReservationState::Committed);
    let s = shop.engine.stock(a).await.unwrap();
    assert_eq!((s.on_hand, s.reserved), (7, 0));
    assert!(
        shop.engine
            .release_reservation(&Actor::System, r.id)
            .await
            .is_ok(),
        "no-op on committed"
    );
    assert_eq!(shop.engine.stock(a).await.unwrap().on_hand, 7);
}

async fn a_placed_order_keeps_its_units_until_committed(backend: Backend) {
    let shop = Shop::new(backend).await;
    let a = shop.product("A", "1.00", 10).await;
    let cart = shop.ready_cart(&[(a, 2)]).await;
    let order = shop.place(cart.id(), "k").await;
    // Allocated holds never expire.
    shop.clock.advance(chrono::Duration::days(30));
    shop.engine.recover().await.unwrap();
    assert_eq!(shop.engine.stock(a).await.unwrap().available(), 8);
    shop.engine
        .commit_reservation(&Actor::System, order.reservation_id())
        .await
        .unwrap();
    let s = shop.engine.stock(a).await.unwrap();
    assert_eq!((s.on_hand, s.reserved), (8, 0));
}

async fn reservations_split_over_locations_by_priority(backend: Backend) {
    let shop = Shop::new(backend).await;
    let a = shop.product("A", "1.00", 2).await; // 2 in the warehouse (priority 0)
    let store = shop
        .engine
        .create_location(&Actor::System, "Store", 5)
        .await
        .unwrap();
    shop.engine
        .set_stock(&Actor::System, a, store.id(), 10)
        .await
        .unwrap();
    let r = shop
        .engine
        .reserve_stock(&Actor::System, &[(a, 5)])
        .await
        .unwrap();
    let split: Vec<(LocationId, u32)> = r
        .lines
        .iter()
        .map(|l| (l.location_id, l.quantity))
        .collect();
    assert_eq!(split, vec![(shop.warehouse, 2), (store.id(), 3)]);
}

async fn all_or_nothing(backend: Backend) {
    let shop = Shop::new(backend).await;
    let a = shop.product("A", "1.00", 10).await;
    let b = shop.product("B", "1.00", 1).await;
    let before = shop.snapshot().await;
    let err = shop
        .engine
        .reserve_stock(&Actor::System, &[(a, 5), (b, 2)])
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::OutOfStock {
            requested: 2,
            available: 1,
            ..
        }
    ));
    assert_eq!(shop.snapshot().await, before);
    // Two requests for one variant are added up.
    let err = shop
        .engine
        .reserve_stock(&Actor::System, &[(b, 1), (b, 1)])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::OutOfStock { requested: 2, .. }));
    assert!(
        shop.engine
            .reserve_stock(&Actor::System, &[(a, 0)])
            .await
            .is_err()
    );
    assert!(matches!(
        shop.engine
            .reserve_stock(&Actor::System, &[(a, 600_000), (a, 600_000)])
            .await,
        Err(Error::LimitExceeded { .. })
    ));
    assert!(
        shop.engine
            .reserve_stock(&Actor::System, &[(VariantId::new(), 1)])
            .await
            .is_err()
    );
    assert_eq!(shop.snapshot().await, before);
}

async fn backorders_and_untracked_variants(backend: Backend) {
    let shop = Shop::new(backend).await;
    let back = shop
        .product_with(
            "BACK",
            NewVariant::digital("")
                .prices(vec![usd("1.00")])
                .status(Status::Active)
                .inventory(InventoryPolicy::Tracked {
                    allow_backorder: true,
                }),
        )
        .await
        .variants()[0]
        .id();
    shop.engine
        .set_stock(&Actor::System, back, shop.warehouse, 2)
        .await
        .unwrap();
    shop.engine
        .reserve_stock(&Actor::System, &[(back, 5)])
        .await
        .unwrap();
    assert_eq!(shop.engine.stock(back).await.unwrap().available(), -3);

    let digital = shop
        .product_with(
            "EBOOK",
            NewVariant::digital("")
                .prices(vec![usd("1.00")])
                .status(Status::Active)
                .inventory(InventoryPolicy::Untracked),
        )
        .await
        .variants()[0]
        .id();
    let r = shop
        .engine
        .reserve_stock(&Actor::System, &[(digital, 1_000)])
        .await
        .unwrap();
    assert!(r.lines.is_empty());
    assert!(shop.engine.stock(digital).await.unwrap().levels.is_empty());
}

async fn stock_levels_are_bounded(backend: Backend) {
    let shop = Shop::new(backend).await;
    let a = shop.product("A", "1.00", 10).await;
    let before = shop.snapshot().await;
    assert!(
        shop.engine
            .set_stock(&Actor::System, a, shop.warehouse, -1)
            .await
            .is_err()
    );
    assert!(
        shop.engine
            .set_stock(&Actor::System, a, shop.warehouse, MAX_ON_HAND + 1)
            .await
            .is_err()
    );
    assert!(
        shop.engine
            .adjust_stock(&Actor::System, a, shop.warehouse, -11)
            .await
            .is_err()
    );
    assert!(
        shop.engine
            .adjust_stock(&Actor::System, a, shop.warehouse, i64::MAX)
            .await
            .is_err()
    );
    assert!(
        shop.engine
            .adjust_stock(&Actor::System, a, shop.warehouse, i64::MIN)
            .await
            .is_err()
    );
    assert!(
        shop.engine
            .set_stock(&Actor::System, a, LocationId::new(), 1)
            .await
            .is_err()
    );
    assert!(
        shop.engine
            .set_stock(&Actor::System, VariantId::new(), shop.warehouse, 1)
            .await
            .is_err()
    );
    assert_eq!(shop.snapshot().await, before);
    assert_eq!(
        shop.engine
            .adjust_stock(&Actor::System, a, shop.warehouse, -4)
            .await
            .unwrap()
            .on_hand,
        6
    );
}

async fn concurrent_reservations_never_oversell(backend: Backend) {
    let shop = Shop::new(backend).await;
    let a = shop.product("A", "1.00", 50).await;
    let mut tasks = Vec::new();
    for i in 0..200u32 {
        let engine = shop.engine.clone();
        tasks.push(tokio::spawn(async move {
            engine
                .reserve_stock(&Actor::System, &[(a, 1 + i % 3)])
                .await
        }));
    }
    let mut held = 0i64;
    for t in tasks {
        if let Ok(r) = t.await.unwrap() {
            held += r.lines.iter().map(|l| i64::from(l.quantity)).sum::<i64>();
        }
    }
    let s = shop.engine.stock(a).await.unwrap();
    assert_eq!(s.reserved, held);
    assert!(s.available() >= 0);
    assert!(
        (48..=50).contains(&held),
        "sold out to within one order: {held}"
    );
}

conformance!(
    reserve_release_commit,
    a_placed_order_keeps_its_units_until_committed,
    reservations_split_over_locations_by_priority,
    all_or_nothing,
    backorders_and_untracked_variants,
    stock_levels_are_bounded,
    concurrent_reservations_never_oversell,
);
