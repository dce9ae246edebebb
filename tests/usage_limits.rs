//! Usage limits (coupon uses, promotion budgets) held atomically with stock,
//! on both stores and across application instances.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::Arc;

use cartwright::catalog::InventoryPolicy;
use cartwright::inventory::{StockRequest, UsageClaim};
use cartwright::prelude::*;
use cartwright::store::Store;
use chrono::Duration;
use common::{Backend, Shop};

fn code(limit: u64) -> UsageClaim {
    UsageClaim::new("code:SAVE10", 1, limit)
}

async fn hold(
    store: &Arc<dyn Store>,
    shop: &Shop,
    requests: &[StockRequest],
    claims: &[UsageClaim],
) -> Result<cartwright::inventory::Reservation> {
    let now = cartwright::clock::Clock::now(shop.clock.as_ref());
    store
        .reserve(requests, claims, now + Duration::minutes(10), now)
        .await
}

async fn a_code_limited_to_100_uses_is_used_exactly_100_times(backend: Backend) {
    let shop = Shop::new(backend).await;
    let stores = [
        shop.engine.store().clone(),
        shop.second_engine().await.store().clone(),
    ];
    let mut tasks = Vec::new();
    for i in 0..1_000 {
        let store = stores[i % 2].clone();
        let now = cartwright::clock::Clock::now(shop.clock.as_ref());
        tasks.push(tokio::spawn(async move {
            store
                .reserve(&[], &[code(100)], now + Duration::minutes(10), now)
                .await
        }));
    }
    let mut held = Vec::new();
    let mut refused = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(r) => held.push(r),
            Err(Error::UsageLimitReached { limit: 100, .. }) => refused += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!((held.len(), refused), (100, 900));
    assert_eq!(
        shop.engine
            .usage(&Actor::System, "code:SAVE10")
            .await
            .unwrap(),
        100
    );

    // Giving ten back lets exactly ten more through.
    for r in &held[..10] {
        shop.engine
            .release_reservation(&Actor::System, r.id)
            .await
            .unwrap();
    }
    assert_eq!(
        shop.engine
            .usage(&Actor::System, "code:SAVE10")
            .await
            .unwrap(),
        90
    );
    let store = shop.engine.store().clone();
    for _ in 0..10 {
        hold(&store, &shop, &[], &[code(100)]).await.unwrap();
    }
    assert!(matches!(
        hold(&store, &shop, &[], &[code(100)]).await,
        Err(Error::UsageLimitReached { used: 100, .. })
    ));
    // Committing (the order shipped) keeps the use.
    shop.engine
        .commit_reservation(&Actor::System, held[50].id)
        .await
        .unwrap();
    assert_eq!(
        shop.engine
            .usage(&Actor::System, "code:SAVE10")
            .await
            .unwrap(),
        100
    );
}

async fn stock_and_usage_are_held_all_or_nothing(backend: Backend) {
    let shop = Shop::new(backend).await;
    let a = shop.product("A", "1.00", 5).await;
    let store = shop.engine.store().clone();
    let tracked = InventoryPolicy::default();
    let before = shop.snapshot().await;

    // The claim fails: no stock is held.
    let err = hold(
        &store,
        &shop,
        &[StockRequest {
            variant_id: a,
            quantity: 2,
            policy: tracked,
            channel: None,
            location: None,
        }],
        &[code(0)],
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::UsageLimitReached { .. }));
    // The stock fails: no use is counted.
    let err = hold(
        &store,
        &shop,
        &[StockRequest {
            variant_id: a,
            quantity: 9,
            policy: tracked,
            channel: None,
            location: None,
        }],
        &[code(5)],
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::OutOfStock { .. }));
    assert_eq!(shop.snapshot().await, before);
    assert_eq!(
        shop.engine
            .usage(&Actor::System, "code:SAVE10")
            .await
            .unwrap(),
        0
    );

    // Both fit: both are held; releasing gives both back.
    let budget = UsageClaim::new("promo:7:budget", 1_250, 10_000);
    let r = hold(
        &store,
        &shop,
        &[StockRequest {
            variant_id: a,
            quantity: 2,
            policy: tracked,
            channel: None,
            location: None,
        }],
        &[code(5), budget.clone()],
    )
    .await
    .unwrap();
    assert_eq!(r.claims.len(), 2);
    assert_eq!(
        shop.engine
            .usage(&Actor::System, "promo:7:budget")
            .await
            .unwrap(),
        1_250
    );
    assert_eq!(shop.engine.stock(a).await.unwrap().available(), 3);
    shop.engine
        .release_reservation(&Actor::System, r.id)
        .await
        .unwrap();
    assert_eq!(
        shop.engine
            .usage(&Actor::System, "promo:7:budget")
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        shop.engine
            .usage(&Actor::System, "code:SAVE10")
            .await
            .unwrap(),
        0
    );
    assert_eq!(shop.engine.stock(a).await.unwrap().available(), 5);

    // Expired holds give their uses back too.
    hold(&store, &shop, &[], &[code(1)]).await.unwrap();
    assert!(hold(&store, &shop, &[], &[code(1)]).await.is_err());
    shop.clock.advance(Duration::minutes(11));
    shop.engine.recover().await.unwrap();
    hold(&store, &shop, &[], &[code(1)]).await.unwrap();
}

async fn bad_claims_are_refused_unchanged(backend: Backend) {
    let shop = Shop::new(backend).await;
    let store = shop.engine.store().clone();
    let before = shop.snapshot().await;
    let bad = [
        UsageClaim::new(String::new(), 1, 1),
        UsageClaim::new("has space", 1, 1),
        UsageClaim::new("x".repeat(cartwright::inventory::MAX_COUNTER_LEN + 1), 1, 1),
        UsageClaim::new("ok", 0, 1),
        UsageClaim::new("ok", u64::MAX, u64::MAX),
    ];
    for claim in bad {
        assert!(matches!(
            hold(&store, &shop, &[], &[claim]).await,
            Err(Error::Invalid { .. })
        ));
    }
    let many: Vec<UsageClaim> = (0..51)
        .map(|i| UsageClaim::new(format!("c{i}"), 1, 9))
        .collect();
    assert!(matches!(
        hold(&store, &shop, &[], &many).await,
        Err(Error::LimitExceeded { .. })
    ));
    // Two claims on one counter add up against the smaller limit.
    let twice = [code(3), UsageClaim::new("code:SAVE10", 2, 2)];
    assert!(matches!(
        hold(&store, &shop, &[], &twice).await,
        Err(Error::UsageLimitReached { limit: 2, .. })
    ));
    assert_eq!(shop.snapshot().await, before);
}

conformance!(
    a_code_limited_to_100_uses_is_used_exactly_100_times,
    stock_and_usage_are_held_all_or_nothing,
    bad_claims_are_refused_unchanged,
);
