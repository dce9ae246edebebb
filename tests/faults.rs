//! Faults at every step boundary: the store fails before a command or after
//! it took effect (its answer lost), the provider answers twice, a retry
//! arrives twice. Each ends with exactly one charge, capture or refund per
//! request and a consistent order — on both stores.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use cartwright::fulfillment::{ReturnRequest, ShipmentRequest};
use cartwright::id::IdempotencyKey;
use cartwright::order::{LineQuantity, ShippingRefund};
use cartwright::payment::{Fault, Operation, PaymentStatus};
use cartwright::prelude::*;
use common::faulty::{Command, When};
use common::{Backend, Shop, ShopOptions, request, usd};

async fn shop(backend: Backend, capture: CaptureMode) -> Shop {
    Shop::with(
        backend,
        ShopOptions {
            capture,
            faulty: true,
            ..ShopOptions::default()
        },
    )
    .await
}

fn faults(shop: &Shop) -> &common::faulty::FaultyStore {
    shop.faults.as_deref().unwrap()
}

fn effective(shop: &Shop, op: Operation) -> usize {
    shop.payments
        .calls()
        .iter()
        .filter(|c| c.operation == op && c.took_effect)
        .count()
}

async fn store_down_when_placing_voids_and_the_retry_charges_once(backend: Backend) {
    let shop = shop(backend, CaptureMode::Immediate).await;
    let a = shop.product("A", "10.00", 5).await;
    let cart = shop.ready_cart(&[(a, 1)]).await;
    faults(&shop).inject(Command::PlaceOrder, When::Before);
    let err = shop
        .engine
        .checkout(request(cart.id(), "k"))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(
        shop.payments.authorizations()[0].voided,
        "the hold was released"
    );
    assert_eq!(shop.engine.stock(a).await.unwrap().available(), 5);

    let order = shop.place(cart.id(), "k").await;
    assert_eq!(order.payment().status(), PaymentStatus::Captured);
    assert_eq!(effective(&shop, Operation::Capture), 1);
    assert!(shop.payments.open_holds().is_empty());
}

async fn a_lost_answer_after_placing_never_voids_the_order(backend: Backend) {
    let shop = shop(backend, CaptureMode::Immediate).await;
    let a = shop.product("A", "10.00", 5).await;
    let cart = shop.ready_cart(&[(a, 1)]).await;
    // The order is placed, but the engine hears a failure.
    faults(&shop).inject(Command::PlaceOrder, When::After);
    let order = shop.place(cart.id(), "k").await;
    assert_eq!(order.payment().status(), PaymentStatus::Captured);
    let auth = &shop.payments.authorizations()[0];
    assert!(!auth.voided, "a placed order's payment is never voided");
    assert_eq!(auth.captured, usd("16.50"));
    assert_eq!(shop.payments.authorizations().len(), 1);
    let again = shop.place(cart.id(), "k").await;
    assert_eq!(again.id(), order.id());
}

async fn capture_survives_store_faults_on_either_side(backend: Backend) {
    for when in [When::Before, When::After] {
        let shop = shop(backend, CaptureMode::Manual).await;
        let a = shop.product("A", "10.00", 5).await;
        let cart = shop.ready_cart(&[(a, 1)]).await;
        let order = shop.place(cart.id(), "k").await;
        faults(&shop).inject(Command::SaveOrder, when);
        assert!(
            shop.engine
                .capture(&Actor::System, order.id())
                .await
                .is_err()
        );
        // The retry (same derived key) records the capture exactly once.
        let o = shop
            .engine
            .capture(&Actor::System, order.id())
            .await
            .unwrap();
        assert_eq!(o.payment().captured(), usd("16.50"), "{when:?}");
        assert_eq!(
            shop.payments.authorizations()[0].captured,
            usd("16.50"),
            "{when:?}"
        );
        assert_eq!(o.payment().operations().len(), 1, "{when:?}");
    }
}

async fn a_provider_timeout_after_refunding_is_not_refunded_twice(backend: Backend) {
    let shop = shop(backend, CaptureMode::Immediate).await;
    let a = shop.product("A", "10.00", 5).await;
    let cart = shop.ready_cart(&[(a, 2)]).await;
    let order = shop.place(cart.id(), "k").await;
    let line = order.pricing().lines[0].line_id;
    let staff = Actor::Staff("x".into());
    shop.engine
        .ship(
            &staff,
            order.id(),
            ShipmentRequest::new(vec![LineQuantity {
                line_id: line,
                quantity: 2,
            }])
            .carrier("UPS")
            .tracking_number(String::new())
            .location(None),
        )
        .await
        .unwrap();
    let ret = ReturnRequest::new(
        vec![LineQuantity {
            line_id: line,
            quantity: 1,
        }],
        IdempotencyKey::new("rma").unwrap(),
    )
    .restock(false)
    .shipping(ShippingRefund::Never);
    // The gateway refunds, then the answer is lost; next the store fails.
    shop.payments
        .inject(Operation::Refund, Fault::TimeoutAfterProcessing);
    assert!(
        shop.engine
            .return_items(&staff, order.id(), ret.clone())
            .await
            .is_err()
    );
    faults(&shop).inject(Command::SaveOrder, When::Before);
    assert!(
        shop.engine
            .return_items(&staff, order.id(), ret.clone())
            .await
            .is_err()
    );
    // Twice more, as an impatient client would.
    let o = shop
        .engine
        .return_items(&staff, order.id(), ret.clone())
        .await
        .unwrap();
    let o2 = shop
        .engine
        .return_items(&staff, order.id(), ret)
        .await
        .unwrap();
    assert_eq!(o, o2);
    assert_eq!(o.payment().refunded(), usd("11.00"));
    assert_eq!(
        shop.payments.authorizations()[0].refunded,
        usd("11.00"),
        "refunded once at the gateway"
    );
    assert_eq!(o.returns().len(), 1);
}

async fn a_store_fault_after_a_decline_is_cleaned_up_by_recovery(backend: Backend) {
    let shop = shop(backend, CaptureMode::Immediate).await;
    let a = shop.product("A", "10.00", 5).await;
    let cart = shop.ready_cart(&[(a, 2)]).await;
    let mut req = request(cart.id(), "k");
    req.payment_token = "tok_decline".into();
    faults(&shop).inject(Command::EndCheckout, When::Before);
    let err = shop.engine.checkout(req.clone()).await.unwrap_err();
    assert!(matches!(err, Error::PaymentDeclined { .. }));
    // The attempt could not be closed: its stock stays held until recovery.
    assert_eq!(shop.engine.stock(a).await.unwrap().available(), 3);
    shop.clock.advance(chrono::Duration::minutes(3));
    let report = shop.engine.recover().await.unwrap();
    assert_eq!(report.reset_checkouts, 1);
    assert_eq!(shop.engine.stock(a).await.unwrap().available(), 5);
    assert!(shop.payments.open_holds().is_empty());
    // The same request is declined again; nothing was ever charged.
    assert!(matches!(
        shop.engine.checkout(req).await,
        Err(Error::PaymentDeclined { .. })
    ));
    assert_eq!(effective(&shop, Operation::Capture), 0);
}

/// The first commit (claim the key, hold the stock) took effect but its
/// answer was lost: the engine finds the key in progress and says so,
/// nothing is charged, recovery releases the stock once the lease ends, and
/// the retry charges once.
async fn a_lost_answer_to_the_first_commit_is_recovered(backend: Backend) {
    let config =
        cartwright::EngineConfig::default().checkout_wait(std::time::Duration::from_millis(50));
    let shop = Shop::with(
        backend,
        ShopOptions {
            capture: CaptureMode::Immediate,
            faulty: true,
            config: Some(config),
            ..ShopOptions::default()
        },
    )
    .await;
    let a = shop.product("A", "10.00", 5).await;
    let cart = shop.ready_cart(&[(a, 2)]).await;
    faults(&shop).inject(Command::BeginAndReserve, When::After);
    let err = shop
        .engine
        .checkout(request(cart.id(), "k"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::CheckoutInProgress(_)), "{err}");
    assert_eq!(shop.engine.stock(a).await.unwrap().available(), 3, "held");
    assert!(shop.payments.authorizations().is_empty(), "nothing charged");

    shop.clock.advance(chrono::Duration::minutes(3));
    let report = shop.engine.recover().await.unwrap();
    assert_eq!(report.reset_checkouts, 1);
    assert_eq!(shop.engine.stock(a).await.unwrap().available(), 5);

    let order = shop.place(cart.id(), "k").await;
    assert_eq!(order.payment().status(), PaymentStatus::Captured);
    assert_eq!(shop.payments.authorizations().len(), 1);
    assert_eq!(effective(&shop, Operation::Capture), 1);
    assert_eq!(shop.engine.stock(a).await.unwrap().available(), 3);
}

/// The first commit fails before taking effect: the engine takes the
/// general path and the checkout goes through, charged once.
async fn a_failed_first_commit_falls_back_to_the_general_path(backend: Backend) {
    let shop = shop(backend, CaptureMode::Immediate).await;
    let a = shop.product("A", "10.00", 5).await;
    let cart = shop.ready_cart(&[(a, 2)]).await;
    faults(&shop).inject(Command::BeginAndReserve, When::Before);
    let order = shop.place(cart.id(), "k").await;
    assert_eq!(order.payment().status(), PaymentStatus::Captured);
    assert_eq!(shop.payments.authorizations().len(), 1);
    assert_eq!(shop.engine.stock(a).await.unwrap().available(), 3);
}

/// A gateway that collects in the authorize call (a sale): the checkout
/// makes one provider call, and the books show the capture.
async fn a_sale_charges_once_in_one_call(backend: Backend) {
    let shop = shop(backend, CaptureMode::Immediate).await;
    shop.payments.allow_sales(true);
    let a = shop.product("A", "10.00", 5).await;
    let cart = shop.ready_cart(&[(a, 1)]).await;
    let order = shop.place(cart.id(), "k").await;
    assert_eq!(order.payment().status(), PaymentStatus::Captured);
    assert_eq!(order.payment().captured(), order.total());
    assert_eq!(effective(&shop, Operation::Authorize), 1);
    assert_eq!(
        effective(&shop, Operation::Capture),
        0,
        "collected by the authorize call"
    );
    let auth = &shop.payments.authorizations()[0];
    assert_eq!(auth.captured, order.total());
    // The same key again: the same order, nothing more collected.
    let again = shop.place(cart.id(), "k").await;
    assert_eq!(again.id(), order.id());
    assert_eq!(shop.payments.authorizations().len(), 1);
}

/// A sale whose order cannot be placed is refunded in full (a hold would be
/// voided), and the retry charges once.
async fn a_sale_whose_order_is_not_placed_is_refunded(backend: Backend) {
    let shop = shop(backend, CaptureMode::Immediate).await;
    shop.payments.allow_sales(true);
    let a = shop.product("A", "10.00", 5).await;
    let cart = shop.ready_cart(&[(a, 1)]).await;
    faults(&shop).inject(Command::PlaceOrder, When::Before);
    let err = shop
        .engine
        .checkout(request(cart.id(), "k"))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    let first = shop.payments.authorizations()[0].clone();
    assert!(!first.captured.is_zero());
    assert_eq!(first.refunded, first.captured, "the sale was given back");
    assert_eq!(shop.engine.stock(a).await.unwrap().available(), 5);

    let order = shop.place(cart.id(), "k").await;
    assert_eq!(order.payment().status(), PaymentStatus::Captured);
    let auths = shop.payments.authorizations();
    assert_eq!(auths.len(), 2);
    assert_eq!(auths[1].captured, order.total());
    assert_eq!(auths[1].refunded, usd("0.00"));
}

conformance!(
    a_sale_charges_once_in_one_call,
    a_sale_whose_order_is_not_placed_is_refunded,
    a_lost_answer_to_the_first_commit_is_recovered,
    a_failed_first_commit_falls_back_to_the_general_path,
    store_down_when_placing_voids_and_the_retry_charges_once,
    a_lost_answer_after_placing_never_voids_the_order,
    capture_survives_store_faults_on_either_side,
    a_provider_timeout_after_refunding_is_not_refunded_twice,
    a_store_fault_after_a_decline_is_cleaned_up_by_recovery,
);
