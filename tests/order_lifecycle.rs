//! After checkout: partial captures, cancellation, history and events, on
//! both stores.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use cartwright::id::IdempotencyKey;
use cartwright::order::{OrderChangeKind, OrderStatus};
use cartwright::payment::{Operation, PaymentStatus};
use cartwright::prelude::*;
use cartwright::store::EventKind;
use common::{Backend, Shop, ShopOptions, request, usd};

fn staff() -> Actor {
    Actor::Staff("sam".into())
}

fn key(k: &str) -> IdempotencyKey {
    IdempotencyKey::new(k).unwrap()
}

async fn manual_shop(backend: Backend) -> Shop {
    Shop::with(
        backend,
        ShopOptions {
            capture: CaptureMode::Manual,
            ..ShopOptions::default()
        },
    )
    .await
}

fn captures_at_provider(shop: &Shop) -> usize {
    shop.payments
        .calls()
        .iter()
        .filter(|c| c.operation == Operation::Capture && c.took_effect)
        .count()
}

async fn partial_captures_add_up_to_the_authorization(backend: Backend) {
    let shop = manual_shop(backend).await;
    let a = shop.product("A", "10.00", 5).await;
    let cart = shop.ready_cart(&[(a, 1)]).await;
    let order = shop.place(cart.id(), "k").await;
    assert_eq!(order.total(), usd("16.50"));
    let e = &shop.engine;

    let o = e
        .capture_partial(&staff(), order.id(), Some(usd("10.00")), &key("c1"))
        .await
        .unwrap();
    assert_eq!(o.payment().status(), PaymentStatus::PartiallyCaptured);
    assert_eq!(o.payment().captured(), usd("10.00"));
    assert_eq!(o.status(), OrderStatus::Processing);

    // The same key again captures nothing more.
    let again = e
        .capture_partial(&staff(), order.id(), Some(usd("10.00")), &key("c1"))
        .await
        .unwrap();
    assert_eq!(again, o);
    assert_eq!(captures_at_provider(&shop), 1);

    // More than is left is refused, and nothing changes.
    let before = shop.snapshot().await;
    let err = e
        .capture_partial(&staff(), order.id(), Some(usd("6.51")), &key("c2"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }), "{err}");
    for bad in [
        usd("0.00"),
        usd("-1.00"),
        Money::parse("1.00", Currency::EUR).unwrap(),
    ] {
        assert!(
            e.capture_partial(&staff(), order.id(), Some(bad), &key("c3"))
                .await
                .is_err()
        );
    }
    assert_eq!(shop.snapshot().await, before);

    // The rest.
    let o = e
        .capture_partial(&staff(), order.id(), None, &key("c4"))
        .await
        .unwrap();
    assert_eq!(o.payment().status(), PaymentStatus::Captured);
    assert_eq!(o.payment().captured(), usd("16.50"));
    assert_eq!(shop.payments.authorizations()[0].captured, usd("16.50"));
    let changes: Vec<&OrderChangeKind> = o.history().iter().map(|h| &h.change).collect();
    assert!(matches!(changes[0], OrderChangeKind::Placed { .. }));
    assert!(
        matches!(changes[1], OrderChangeKind::PaymentCaptured { amount } if *amount == usd("10.00"))
    );
    assert!(matches!(
        changes[2],
        OrderChangeKind::StatusChanged {
            from: OrderStatus::Placed,
            to: OrderStatus::Processing
        }
    ));
    assert!(
        matches!(changes[3], OrderChangeKind::PaymentCaptured { amount } if *amount == usd("6.50"))
    );
    assert_eq!(o.history()[1].actor, staff());
}

async fn cancelling_an_authorized_order_voids_and_restocks(backend: Backend) {
    let shop = manual_shop(backend).await;
    let a = shop.product("A", "10.00", 5).await;
    let cart = shop.ready_cart(&[(a, 2)]).await;
    let order = shop.place(cart.id(), "k").await;
    assert_eq!(shop.engine.stock(a).await.unwrap().available(), 3);

    let o = shop
        .engine
        .cancel(&staff(), order.id(), "customer called")
        .await
        .unwrap();
    assert_eq!(o.status(), OrderStatus::Cancelled);
    assert_eq!(o.payment().status(), PaymentStatus::Voided);
    assert!(shop.payments.authorizations()[0].voided);
    assert_eq!(shop.engine.stock(a).await.unwrap().available(), 5);
    assert_eq!(o.history().last().unwrap().cause, "customer called");

    // Cancelling again changes nothing; nothing else can happen to it.
    assert_eq!(
        shop.engine
            .cancel(&staff(), order.id(), "again")
            .await
            .unwrap(),
        o
    );
    assert!(matches!(
        shop.engine
            .capture_partial(&staff(), order.id(), None, &key("late"))
            .await,
        Err(Error::IllegalTransition { .. })
    ));
    // Waits for the events it looks for: a count can be reached by the
    // setup's events before a later commit's become visible.
    let cancelled = EventKind::OrderCancelled {
        order_id: order.id(),
    };
    let kinds: Vec<EventKind> = common::events_until(&shop.engine, "t", |events| {
        events.iter().any(|e| e.kind == cancelled)
    })
    .await
    .into_iter()
    .map(|e| e.kind)
    .collect();
    assert!(kinds.contains(&EventKind::OrderCancelled {
        order_id: order.id()
    }));
    assert!(kinds.contains(&EventKind::PaymentVoided {
        order_id: order.id()
    }));
}

async fn cancelling_a_captured_order_refunds_what_was_paid(backend: Backend) {
    let shop = Shop::new(backend).await;
    let a = shop.product("A", "10.00", 5).await;
    let cart = shop.ready_cart(&[(a, 1)]).await;
    let order = shop.place(cart.id(), "k").await;
    assert_eq!(order.payment().status(), PaymentStatus::Captured);
    let o = shop.engine.cancel(&staff(), order.id(), "").await.unwrap();
    assert_eq!(o.payment().status(), PaymentStatus::Refunded);
    assert_eq!(o.payment().refunded(), usd("16.50"));
    assert_eq!(shop.payments.authorizations()[0].refunded, usd("16.50"));
    assert_eq!(shop.engine.stock(a).await.unwrap().available(), 5);
}

async fn cancelling_a_partly_captured_order_refunds_the_captured_part(backend: Backend) {
    let shop = manual_shop(backend).await;
    let a = shop.product("A", "10.00", 5).await;
    let cart = shop.ready_cart(&[(a, 1)]).await;
    let order = shop.place(cart.id(), "k").await;
    shop.engine
        .capture_partial(&staff(), order.id(), Some(usd("4.00")), &key("c1"))
        .await
        .unwrap();
    let o = shop.engine.cancel(&staff(), order.id(), "").await.unwrap();
    assert_eq!(o.payment().refunded(), usd("4.00"));
    assert_eq!(o.payment().status(), PaymentStatus::Refunded);
    let auth = &shop.payments.authorizations()[0];
    assert_eq!((auth.captured, auth.refunded), (usd("4.00"), usd("4.00")));
}

async fn who_may_capture_and_cancel(backend: Backend) {
    let shop = manual_shop(backend).await;
    let a = shop.product("A", "10.00", 5).await;
    let ann = shop.customer("ann@example.com").await;
    let me = Actor::Customer(ann.id());
    let cart = shop.engine.create_cart(&me, Currency::USD).await.unwrap();
    shop.engine.add_item(&me, cart.id(), a, 1).await.unwrap();
    shop.complete_details(&me, cart.id()).await;
    let mut req = request(cart.id(), "k");
    req.actor = me.clone();
    let order = shop.engine.checkout(req).await.unwrap().order;

    let before = shop.snapshot().await;
    let stranger = Actor::Customer(cartwright::id::CustomerId::new());
    assert!(matches!(
        shop.engine.cancel(&stranger, order.id(), "").await,
        Err(Error::Forbidden)
    ));
    assert!(matches!(
        shop.engine.capture(&me, order.id()).await,
        Err(Error::Forbidden)
    ));
    assert!(matches!(
        shop.engine
            .cancel(&me, order.id(), &"x".repeat(2_001))
            .await,
        Err(Error::LimitExceeded { .. })
    ));
    assert_eq!(shop.snapshot().await, before);
    // The customer may cancel their own order.
    let o = shop
        .engine
        .cancel(&me, order.id(), "changed my mind")
        .await
        .unwrap();
    assert_eq!(o.status(), OrderStatus::Cancelled);
    assert_eq!(o.history().last().unwrap().actor, me);
}

async fn concurrent_captures_with_one_key_capture_once(backend: Backend) {
    let shop = manual_shop(backend).await;
    let a = shop.product("A", "10.00", 5).await;
    let cart = shop.ready_cart(&[(a, 1)]).await;
    let order = shop.place(cart.id(), "k").await;
    let engines = [shop.engine.clone(), shop.second_engine().await];
    let mut tasks = Vec::new();
    for i in 0..20 {
        let engine = engines[i % 2].clone();
        let id = order.id();
        tasks.push(tokio::spawn(async move {
            engine
                .capture_partial(&Actor::System, id, Some(usd("5.00")), &key("once"))
                .await
        }));
    }
    for t in tasks {
        let o = t.await.unwrap().unwrap();
        assert_eq!(o.payment().captured(), usd("5.00"));
    }
    assert_eq!(shop.payments.authorizations()[0].captured, usd("5.00"));
    let stored = shop.engine.order(&Actor::System, order.id()).await.unwrap();
    assert_eq!(stored.payment().operations().len(), 1);
}

async fn the_default_order_query_finds_every_order(backend: Backend) {
    let shop = Shop::new(backend).await;
    let a = shop.product("A", "10.00", 5).await;
    let cart = shop.ready_cart(&[(a, 1)]).await;
    let order = shop.place(cart.id(), "k").await;
    let page = shop
        .engine
        .find_orders(&Actor::System, &cartwright::order::OrderQuery::default())
        .await
        .unwrap();
    assert_eq!(page.orders.len(), 1);
    assert_eq!(page.orders[0].id(), order.id());
    assert_eq!(page.next_before, None);
}

conformance!(
    the_default_order_query_finds_every_order,
    partial_captures_add_up_to_the_authorization,
    cancelling_an_authorized_order_voids_and_restocks,
    cancelling_a_captured_order_refunds_what_was_paid,
    cancelling_a_partly_captured_order_refunds_the_captured_part,
    who_may_capture_and_cancel,
    concurrent_captures_with_one_key_capture_once,
);
