//! Claims on both stores: damaged, missing or wrong units refunded or
//! replaced without a return, never twice, never charged to the buyer, with
//! the replacement's stock held exactly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use cartwright::after_sale::NewClaim;
use cartwright::fulfillment::{ReturnRequest, ShipmentRequest};
use cartwright::order::{ClaimReason, ClaimResolution, Order, OrderStatus};
use cartwright::prelude::*;
use common::{Backend, Shop, key, request, units, usd};

fn staff() -> Actor {
    Actor::Staff("kim".into())
}

/// 3 × A at 3.33 and 1 × B at 10.00 (tax 10 %, shipping 5.00), captured,
/// all shipped: a completed order.
async fn completed(shop: &Shop) -> Order {
    let a = shop.product("A", "3.33", 10).await;
    let b = shop.product("B", "10.00", 5).await;
    let cart = shop.ready_cart(&[(a, 3), (b, 1)]).await;
    let order = shop
        .engine
        .checkout(request(cart.id(), "order"))
        .await
        .unwrap()
        .order;
    let mut all = units(&order, 0, 3);
    all.extend(units(&order, 1, 1));
    let o = shop
        .engine
        .ship(
            &staff(),
            order.id(),
            ShipmentRequest::new(all).carrier("UPS"),
        )
        .await
        .unwrap();
    assert_eq!(o.status(), OrderStatus::Completed);
    o
}

async fn stock(shop: &Shop, order: &Order, line: usize) -> (i64, i64) {
    let s = shop
        .engine
        .stock(order.pricing().lines[line].variant_id)
        .await
        .unwrap();
    (s.on_hand, s.reserved)
}

async fn a_damaged_unit_is_refunded_once_without_a_return(backend: Backend) {
    let shop = Shop::new(backend).await;
    let order = completed(&shop).await;
    let claim = NewClaim::new(
        units(&order, 1, 1),
        ClaimReason::Damaged,
        ClaimResolution::Refund,
        key("c1"),
    )
    .note("box crushed");
    let o = shop
        .engine
        .create_claim(&staff(), order.id(), claim.clone())
        .await
        .unwrap();
    assert_eq!(o.payment().refunded(), usd("11.00"));
    assert_eq!(shop.payments.authorizations()[0].refunded, usd("11.00"));
    assert_eq!(o.claims().len(), 1);
    assert_eq!(o.returnable(o.pricing().lines[1].line_id), 0);
    // Nothing came back to the shelf.
    assert_eq!(stock(&shop, &order, 1).await, (4, 0));
    // The same claim again refunds nothing more; another on the same unit,
    // or a return of it, is refused.
    let again = shop
        .engine
        .create_claim(&staff(), order.id(), claim)
        .await
        .unwrap();
    assert_eq!(again.payment().refunded(), usd("11.00"));
    let before = shop.snapshot().await;
    let e = shop
        .engine
        .create_claim(
            &staff(),
            order.id(),
            NewClaim::new(
                units(&order, 1, 1),
                ClaimReason::Missing,
                ClaimResolution::Refund,
                key("c2"),
            ),
        )
        .await;
    assert!(matches!(e, Err(Error::Invalid { .. })), "{e:?}");
    let e = shop
        .engine
        .return_items(
            &staff(),
            order.id(),
            ReturnRequest::new(units(&order, 1, 1), key("r")),
        )
        .await;
    assert!(matches!(e, Err(Error::Invalid { .. })), "{e:?}");
    assert!(before == shop.snapshot().await);
}

async fn a_missing_unit_is_replaced_at_no_charge(backend: Backend) {
    let shop = Shop::new(backend).await;
    let order = completed(&shop).await;
    assert_eq!(stock(&shop, &order, 0).await, (7, 0));
    let o = shop
        .engine
        .create_claim(
            &staff(),
            order.id(),
            NewClaim::new(
                units(&order, 0, 1),
                ClaimReason::Missing,
                ClaimResolution::Replace,
                key("c"),
            ),
        )
        .await
        .unwrap();
    // A zero-priced line of the same variant, its unit held; the order
    // reopens to ship it; nothing is charged or refunded.
    assert_eq!(o.pricing().lines.len(), 3);
    let replacement = &o.pricing().lines[2];
    assert_eq!(replacement.variant_id, order.pricing().lines[0].variant_id);
    assert_eq!((replacement.quantity, replacement.total), (1, usd("0.00")));
    assert_eq!(
        replacement.metadata.get("replacement_for"),
        Some(&order.pricing().lines[0].line_id.to_string())
    );
    assert_eq!(o.total(), order.total());
    assert_eq!(o.status(), OrderStatus::Processing);
    assert_eq!(stock(&shop, &order, 0).await, (7, 1));
    assert_eq!(o.payment().refunded(), usd("0.00"));
    assert_eq!(shop.payments.authorizations()[0].captured, order.total());
    // The replaced unit cannot be returned for money too.
    let e = shop
        .engine
        .return_items(
            &staff(),
            order.id(),
            ReturnRequest::new(units(&order, 0, 3), key("r3")),
        )
        .await;
    assert!(matches!(e, Err(Error::Invalid { .. })), "{e:?}");
    // It ships, and the order completes again.
    let o = shop
        .engine
        .ship(
            &staff(),
            order.id(),
            ShipmentRequest::new(units(&o, 2, 1)).carrier("UPS"),
        )
        .await
        .unwrap();
    assert_eq!(o.status(), OrderStatus::Completed);
    assert_eq!(stock(&shop, &order, 0).await, (6, 0));
    // Returning the replacement refunds what it cost: nothing.
    let o = shop
        .engine
        .return_items(
            &staff(),
            order.id(),
            ReturnRequest::new(units(&o, 2, 1), key("rr")),
        )
        .await
        .unwrap();
    assert_eq!(o.returns()[0].refund, usd("0.00"));
}

async fn a_replacement_out_of_stock_holds_nothing(backend: Backend) {
    let shop = Shop::new(backend).await;
    let order = completed(&shop).await;
    let b = order.pricing().lines[1].variant_id;
    shop.engine
        .set_stock(&Actor::System, b, shop.warehouse, 0)
        .await
        .unwrap();
    let before = shop.snapshot().await;
    let e = shop
        .engine
        .create_claim(
            &staff(),
            order.id(),
            NewClaim::new(
                units(&order, 1, 1),
                ClaimReason::Damaged,
                ClaimResolution::Replace,
                key("c"),
            ),
        )
        .await;
    assert!(matches!(e, Err(Error::OutOfStock { .. })), "{e:?}");
    assert!(before == shop.snapshot().await);
    // Bad input and other actors are refused too, changing nothing.
    for (items, why) in [
        (units(&order, 0, 4), "too-many"),
        (vec![], "none"),
        (units(&order, 0, 0), "zero"),
    ] {
        let e = shop
            .engine
            .create_claim(
                &staff(),
                order.id(),
                NewClaim::new(items, ClaimReason::Other, ClaimResolution::Refund, key(why)),
            )
            .await;
        assert!(matches!(e, Err(Error::Invalid { .. })), "{why}: {e:?}");
    }
    let me = shop.customer("c@example.com").await.id();
    let before = shop.snapshot().await;
    for actor in [Actor::Customer(me), Actor::Guest, Actor::Agent("x".into())] {
        let e = shop
            .engine
            .create_claim(
                &actor,
                order.id(),
                NewClaim::new(
                    units(&order, 0, 1),
                    ClaimReason::Other,
                    ClaimResolution::Refund,
                    key("who"),
                ),
            )
            .await;
        assert!(matches!(e, Err(Error::Forbidden)), "{actor:?}: {e:?}");
    }
    assert!(before == shop.snapshot().await);
}

async fn two_engines_claim_a_unit_once(backend: Backend) {
    let shop = Shop::new(backend).await;
    let order = completed(&shop).await;
    let other = shop.second_engine().await;
    let claim = |k: &str, resolution| {
        NewClaim::new(
            units(&order, 1, 1),
            ClaimReason::Missing,
            resolution,
            key(k),
        )
    };
    let st = staff();
    let (x, y) = tokio::join!(
        shop.engine
            .create_claim(&st, order.id(), claim("x", ClaimResolution::Replace)),
        other.create_claim(&st, order.id(), claim("y", ClaimResolution::Replace)),
    );
    assert_eq!(u8::from(x.is_ok()) + u8::from(y.is_ok()), 1, "{x:?} {y:?}");
    // One replacement held; the loser's hold was given back.
    assert_eq!(stock(&shop, &order, 1).await, (4, 1));
    let o = shop.engine.order(&staff(), order.id()).await.unwrap();
    assert_eq!(o.claims().len(), 1);
    assert_eq!(o.pricing().lines.len(), 3);
}

conformance!(
    a_damaged_unit_is_refunded_once_without_a_return,
    a_missing_unit_is_replaced_at_no_charge,
    a_replacement_out_of_stock_holds_nothing,
    two_engines_claim_a_unit_once,
);
