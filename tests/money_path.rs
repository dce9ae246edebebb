//! The money-path protocol from the outside: intent before money moves, one
//! operation in flight per payment, recovery finishes what a crash or an
//! outage left, provider events settle pending operations. Both stores.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::time::Duration;

use cartwright::fulfillment::{ReturnRequest, ShipmentRequest};
use cartwright::id::IdempotencyKey;
use cartwright::money_path::ManualRefund;
use cartwright::order::{LineQuantity, Order, OrderStatus, ReturnState, ShippingRefund};
use cartwright::payment::{
    Fault, Operation, OperationState, PaymentStatus, ProviderEvent, ProviderEventKind,
};
use cartwright::prelude::*;
use common::{Backend, Shop, request, usd};

fn staff() -> Actor {
    Actor::Staff("wes".into())
}

fn key(k: &str) -> IdempotencyKey {
    IdempotencyKey::new(k).unwrap()
}

fn one_unit(order: &Order) -> Vec<LineQuantity> {
    vec![LineQuantity {
        line_id: order.pricing().lines[0].line_id,
        quantity: 1,
    }]
}

fn ret(order: &Order, k: &str) -> ReturnRequest {
    ReturnRequest::new(one_unit(order), key(k))
        .restock(true)
        .shipping(ShippingRefund::Never)
}

/// A captured order of 2 × A at 10.00 whose units have shipped.
async fn shipped(shop: &Shop, engine: &Engine) -> Order {
    let a = shop.product("A", "10.00", 10).await;
    let cart = shop.ready_cart(&[(a, 2)]).await;
    let order = engine
        .checkout(request(cart.id(), "k"))
        .await
        .unwrap()
        .order;
    assert_eq!(order.payment().status(), PaymentStatus::Captured);
    engine
        .ship(
            &staff(),
            order.id(),
            ShipmentRequest::new(vec![LineQuantity {
                line_id: order.pricing().lines[0].line_id,
                quantity: 2,
            }])
            .carrier("UPS")
            .tracking_number(String::new())
            .location(None),
        )
        .await
        .unwrap()
}

/// The gateway's books for the one authorization equal the order's.
fn books_match(shop: &Shop, order: &Order) {
    let auth = shop
        .payments
        .authorizations()
        .into_iter()
        .find(|a| a.reference == order.payment().reference())
        .unwrap();
    assert_eq!(auth.captured, order.payment().captured(), "captured");
    assert_eq!(auth.refunded, order.payment().refunded(), "refunded");
}

async fn concurrent_returns_of_one_unit_refund_once(backend: Backend) {
    let (shop, _slow) =
        Shop::slow(backend, Duration::from_millis(20), CaptureMode::Immediate).await;
    let second = shop.second_engine().await;
    let order = shipped(&shop, &shop.engine).await;
    let line = &order.pricing().lines[0];
    // Eight agents return a unit at once, each with its own key, over two
    // application instances: the line has two, each refunded once.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let engine = if i % 2 == 0 {
            shop.engine.clone()
        } else {
            second.clone()
        };
        let request = ret(&order, &format!("agent-{i}"));
        let id = order.id();
        tasks.push(tokio::spawn(async move {
            engine.return_items(&staff(), id, request).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(Error::Invalid { .. } | Error::PaymentInProgress { .. }) => {}
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }
    assert_eq!(ok, 2, "one return per unit");
    let o = shop.engine.order(&staff(), order.id()).await.unwrap();
    assert_eq!(o.returns().len(), 2);
    assert!(
        o.returns()
            .iter()
            .all(|r| r.state == ReturnState::Completed)
    );
    assert_eq!(o.payment().refunded(), line.total, "each unit's share once");
    books_match(&shop, &o);
}

async fn concurrent_refunds_never_exceed_what_was_captured(backend: Backend) {
    let (shop, _slow) =
        Shop::slow(backend, Duration::from_millis(10), CaptureMode::Immediate).await;
    let second = shop.second_engine().await;
    let order = shipped(&shop, &shop.engine).await;
    let captured = order.payment().captured();
    let mut tasks = Vec::new();
    for i in 0..10 {
        let engine = if i % 2 == 0 {
            shop.engine.clone()
        } else {
            second.clone()
        };
        let id = order.id();
        tasks.push(tokio::spawn(async move {
            // Retry while another refund is in flight, as a client would
            // (bounded: 20 s at most, even on a loaded machine).
            for _ in 0..4_000 {
                let refund = ManualRefund::new(usd("5.00"), "goodwill", key(&format!("r{i}")));
                match engine.refund(&staff(), id, refund).await {
                    Err(Error::PaymentInProgress { .. }) => {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    other => return other,
                }
            }
            panic!("never got a turn");
        }));
    }
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap().is_ok() {
            ok += 1;
        }
    }
    let o = shop.engine.order(&staff(), order.id()).await.unwrap();
    let expected = captured.amount() / usd("5.00").amount();
    assert_eq!(ok, expected.trunc().to_string().parse::<usize>().unwrap());
    assert!(o.payment().refunded().amount() <= captured.amount());
    assert!(o.payment().pending().is_none());
    books_match(&shop, &o);
}

async fn refund_by_amount_is_validated_and_recorded(backend: Backend) {
    let shop = Shop::new(backend).await;
    let order = shipped(&shop, &shop.engine).await;
    let before = shop.snapshot().await;
    for (amount, what) in [
        ("0.00", "zero"),
        ("-1.00", "negative"),
        ("1000.00", "too much"),
    ] {
        let refund = ManualRefund::new(usd(amount), "x", key("bad"));
        let e = shop.engine.refund(&staff(), order.id(), refund).await;
        assert!(matches!(e, Err(Error::Invalid { .. })), "{what}: {e:?}");
    }
    let eur = ManualRefund::new(
        Money::parse("1.00", Currency::EUR).unwrap(),
        "x",
        key("eur"),
    );
    assert!(matches!(
        shop.engine.refund(&staff(), order.id(), eur).await,
        Err(Error::CurrencyMismatch { .. })
    ));
    let long = ManualRefund::new(usd("1.00"), "x".repeat(2_001), key("long"));
    assert!(matches!(
        shop.engine.refund(&staff(), order.id(), long).await,
        Err(Error::LimitExceeded { .. })
    ));
    for actor in [
        Actor::Guest,
        Actor::System,
        Actor::Provider("test".into()),
        Actor::Customer(cartwright::id::CustomerId::new()),
    ] {
        let refund = ManualRefund::new(usd("1.00"), "x", key("who"));
        assert!(matches!(
            shop.engine.refund(&actor, order.id(), refund).await,
            Err(Error::Forbidden)
        ));
    }
    assert_eq!(
        shop.snapshot().await,
        before,
        "refused refunds change nothing"
    );

    let refund = ManualRefund::new(usd("3.50"), "late delivery", key("goodwill"));
    let o = shop
        .engine
        .refund(&staff(), order.id(), refund.clone())
        .await
        .unwrap();
    assert_eq!(o.payment().refunded(), usd("3.50"));
    assert_eq!(o.payment().status(), PaymentStatus::PartiallyRefunded);
    let op = o.payment().operations().last().unwrap();
    assert_eq!(op.reason, "late delivery");
    assert_eq!(op.requested_by, Some(staff()));
    assert!(op.key.len() <= 255 && op.key.is_ascii());
    assert!(
        !op.key.contains("goodwill"),
        "the provider key is the operation's own"
    );
    // The same key again refunds nothing more.
    let again = shop
        .engine
        .refund(&staff(), order.id(), refund)
        .await
        .unwrap();
    assert_eq!(again.payment().refunded(), usd("3.50"));
    books_match(&shop, &again);
}

async fn a_refund_without_an_answer_is_finished_by_retry_or_recovery(backend: Backend) {
    let shop = Shop::new(backend).await;
    let order = shipped(&shop, &shop.engine).await;
    // The gateway refunds but the answer is lost.
    shop.payments
        .inject(Operation::Refund, Fault::TimeoutAfterProcessing);
    let e = shop
        .engine
        .return_items(&staff(), order.id(), ret(&order, "r1"))
        .await;
    assert!(matches!(e, Err(Error::PaymentUnavailable(_))), "{e:?}");
    let o = shop.engine.order(&staff(), order.id()).await.unwrap();
    assert!(o.has_pending_work());
    assert_eq!(o.returns()[0].state, ReturnState::Pending);
    // The pending unit cannot be returned again under another key: two
    // units are more than the one left.
    let mut both = ret(&order, "r2");
    both.items[0].quantity = 2;
    let e = shop.engine.return_items(&staff(), order.id(), both).await;
    assert!(matches!(e, Err(Error::Invalid { .. })), "{e:?}");
    // Recovery leaves a fresh operation to its caller...
    let report = shop.engine.recover().await.unwrap();
    assert_eq!(report.settled_operations, 0);
    // ...and finishes it once it is stale, with the same provider key.
    shop.clock.advance(chrono::Duration::minutes(5));
    let report = shop.engine.recover().await.unwrap();
    assert_eq!(report.settled_operations, 1);
    let o = shop.engine.order(&staff(), order.id()).await.unwrap();
    assert!(!o.has_pending_work());
    assert_eq!(o.returns()[0].state, ReturnState::Completed);
    assert_eq!(o.returns().len(), 1);
    books_match(&shop, &o);
    // The unit went back on hand once the refund was through.
    let a = o.pricing().lines[0].variant_id;
    assert_eq!(shop.engine.stock(a).await.unwrap().on_hand, 9);
    // The caller's retry with the same key finds the finished return.
    let again = shop
        .engine
        .return_items(&staff(), order.id(), ret(&order, "r1"))
        .await
        .unwrap();
    assert_eq!(again.returns().len(), 1);
    books_match(&shop, &again);
}

async fn a_refused_refund_leaves_the_units_returnable(backend: Backend) {
    let (shop, slow) = Shop::slow(backend, Duration::ZERO, CaptureMode::Immediate).await;
    let order = shipped(&shop, &shop.engine).await;
    slow.refuse_refunds
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let e = shop
        .engine
        .return_items(&staff(), order.id(), ret(&order, "r1"))
        .await;
    assert!(matches!(e, Err(Error::Invalid { .. })), "{e:?}");
    let o = shop.engine.order(&staff(), order.id()).await.unwrap();
    assert_eq!(o.returns()[0].state, ReturnState::Failed);
    assert_eq!(
        o.payment().operations().last().unwrap().state,
        OperationState::Failed
    );
    assert_eq!(o.returned(o.pricing().lines[0].line_id), 0);
    assert!(!o.has_pending_work());
    slow.refuse_refunds
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let o = shop
        .engine
        .return_items(&staff(), order.id(), ret(&order, "r2"))
        .await
        .unwrap();
    assert_eq!(o.returned(o.pricing().lines[0].line_id), 1);
    books_match(&shop, &o);
}

async fn a_provider_event_settles_a_pending_refund_once(backend: Backend) {
    let shop = Shop::new(backend).await;
    let order = shipped(&shop, &shop.engine).await;
    shop.payments
        .inject(Operation::Refund, Fault::TimeoutAfterProcessing);
    let _ = shop
        .engine
        .return_items(&staff(), order.id(), ret(&order, "r1"))
        .await;
    let auth = shop.payments.authorizations()[0].clone();
    let event = ProviderEvent::new(
        "evt_1",
        auth.reference.clone(),
        ProviderEventKind::Refunded {
            refunded_total: auth.refunded,
        },
    );
    let o = shop
        .engine
        .apply_provider_event(&Actor::Provider("test".into()), &event)
        .await
        .unwrap()
        .into_order()
        .unwrap();
    assert!(!o.has_pending_work(), "the event covers the pending refund");
    assert_eq!(o.returns()[0].state, ReturnState::Completed);
    assert_eq!(o.payment().refunded(), auth.refunded);
    // Recovery and a retry have nothing left to do.
    shop.clock.advance(chrono::Duration::minutes(5));
    assert_eq!(shop.engine.recover().await.unwrap().settled_operations, 0);
    let again = shop
        .engine
        .return_items(&staff(), order.id(), ret(&order, "r1"))
        .await
        .unwrap();
    books_match(&shop, &again);
    let refunds = shop
        .payments
        .calls()
        .iter()
        .filter(|c| c.operation == Operation::Refund && c.took_effect)
        .count();
    assert_eq!(refunds, 1);
}

async fn a_cancellation_interrupted_by_an_outage_is_finished_by_recovery(backend: Backend) {
    let shop = Shop::with(
        backend,
        common::ShopOptions {
            capture: CaptureMode::Manual,
            ..common::ShopOptions::default()
        },
    )
    .await;
    let a = shop.product("A", "10.00", 10).await;
    let cart = shop.ready_cart(&[(a, 2)]).await;
    let order = shop.place(cart.id(), "k").await;
    shop.payments.inject(Operation::Void, Fault::Unavailable);
    let e = shop
        .engine
        .cancel(&staff(), order.id(), "customer asked")
        .await;
    assert!(matches!(e, Err(Error::PaymentUnavailable(_))), "{e:?}");
    let o = shop.engine.order(&staff(), order.id()).await.unwrap();
    assert!(o.cancellation().is_some());
    assert_eq!(o.status(), OrderStatus::Placed);
    // Nothing ships and nothing is captured while the cancellation is in flight.
    let shipment = ShipmentRequest::new(one_unit(&o))
        .carrier("UPS")
        .tracking_number(String::new())
        .location(None);
    assert!(
        shop.engine
            .ship(&staff(), order.id(), shipment)
            .await
            .is_err()
    );
    assert!(shop.engine.capture(&staff(), order.id()).await.is_err());
    assert_eq!(shop.engine.stock(a).await.unwrap().reserved, 2);

    shop.clock.advance(chrono::Duration::minutes(5));
    let report = shop.engine.recover().await.unwrap();
    assert_eq!(report.settled_operations, 1);
    let o = shop.engine.order(&staff(), order.id()).await.unwrap();
    assert_eq!(o.status(), OrderStatus::Cancelled);
    assert_eq!(o.payment().status(), PaymentStatus::Voided);
    assert_eq!(shop.engine.stock(a).await.unwrap().reserved, 0);
    assert!(shop.payments.open_holds().is_empty());
}

async fn a_failed_immediate_capture_is_reported_and_retried_by_the_same_checkout(backend: Backend) {
    let shop = Shop::new(backend).await;
    let a = shop.product("A", "10.00", 5).await;
    let cart = shop.ready_cart(&[(a, 1)]).await;
    shop.payments.inject(Operation::Capture, Fault::Unavailable);
    let order = shop.place(cart.id(), "k").await;
    assert_eq!(order.payment().status(), PaymentStatus::Authorized);
    assert!(
        order.payment().pending().is_some(),
        "the capture is pending"
    );
    // The same checkout again retries the capture.
    let again = shop.place(cart.id(), "k").await;
    assert_eq!(again.id(), order.id());
    assert_eq!(again.payment().status(), PaymentStatus::Captured);
    books_match(&shop, &again);
}

async fn a_failed_authorization_settles_a_pending_capture(backend: Backend) {
    let shop = Shop::with(
        backend,
        common::ShopOptions {
            capture: CaptureMode::Manual,
            ..common::ShopOptions::default()
        },
    )
    .await;
    let a = shop.product("A", "10.00", 10).await;
    let cart = shop.ready_cart(&[(a, 1)]).await;
    let order = shop.place(cart.id(), "k").await;
    shop.payments.inject(Operation::Capture, Fault::Unavailable);
    assert!(shop.engine.capture(&staff(), order.id()).await.is_err());
    let o = shop.engine.order(&staff(), order.id()).await.unwrap();
    assert!(o.has_pending_work());
    // The gateway reports the hold failed: the capture can never happen.
    let event = ProviderEvent::new(
        "evt_failed",
        o.payment().reference().to_owned(),
        ProviderEventKind::Failed {
            reason: "expired".into(),
        },
    );
    let o = shop
        .engine
        .apply_provider_event(&Actor::Provider("test".into()), &event)
        .await
        .unwrap()
        .into_order()
        .unwrap();
    assert!(!o.has_pending_work());
    assert_eq!(o.payment().status(), PaymentStatus::Failed);
    assert_eq!(
        o.payment().operations().last().unwrap().state,
        OperationState::Failed
    );
    // Recovery has nothing left to send.
    shop.clock.advance(chrono::Duration::minutes(5));
    assert_eq!(shop.engine.recover().await.unwrap().settled_operations, 0);
}

conformance!(
    a_failed_authorization_settles_a_pending_capture,
    concurrent_returns_of_one_unit_refund_once,
    concurrent_refunds_never_exceed_what_was_captured,
    refund_by_amount_is_validated_and_recorded,
    a_refund_without_an_answer_is_finished_by_retry_or_recovery,
    a_refused_refund_leaves_the_units_returnable,
    a_provider_event_settles_a_pending_refund_once,
    a_cancellation_interrupted_by_an_outage_is_finished_by_recovery,
    a_failed_immediate_capture_is_reported_and_retried_by_the_same_checkout,
);
