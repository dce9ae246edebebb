//! The checkout saga through the public API: outcomes, idempotency, failures,
//! recovery and concurrency.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::Arc;

use cartwright::payment::{Fault, Operation, PaymentStatus};
use cartwright::prelude::*;
use cartwright::store::EventKind;
use common::{Backend, Shop, ShopOptions, request, usd};

fn authorizations_taking_effect(shop: &Shop) -> usize {
    shop.payments
        .calls()
        .iter()
        .filter(|c| c.operation == Operation::Authorize && c.took_effect)
        .count()
}

async fn happy_path_places_a_frozen_order_and_captures(backend: Backend) {
    let shop = Shop::new(backend).await;
    let a = shop.product("A", "10.00", 5).await;
    let b = shop.product("B", "2.50", 5).await;
    let cart = shop.ready_cart(&[(a, 2), (b, 3)]).await;
    // Setting up the shop recorded who did it (and, typed, what changed);
    // consumers take those first.
    // A location; two products and their stock, each an audit record and
    // a typed event: nine.
    let setup = common::pending(&shop.engine, "mailer", 9).await;
    assert_eq!(setup.len(), 9);
    assert!(setup.iter().all(|e| matches!(
        &e.kind,
        EventKind::AdminChange {
            actor: Actor::System,
            ..
        } | EventKind::CatalogChanged { .. }
            | EventKind::StockChanged { .. }
    )));
    assert!(setup.iter().any(|e| matches!(
        &e.kind,
        EventKind::AdminChange { action, .. } if action == "set_stock"
    )));
    for consumer in ["mailer", "warehouse"] {
        shop.engine
            .ack_events(&Actor::System, consumer, setup.last().unwrap().id)
            .await
            .unwrap();
    }

    let outcome = shop
        .engine
        .checkout(request(cart.id(), "k1"))
        .await
        .unwrap();
    assert_eq!(outcome.payment, PaymentOutcome::Paid);
    let token = outcome
        .access_token
        .clone()
        .expect("a guest order has a token");
    let order = outcome.order;

    // 20.00 + 7.50 = 27.50; shipping 5.00; tax 10% of each line and shipping.
    let p = order.pricing();
    assert_eq!(p.subtotal, usd("27.50"));
    assert_eq!(p.shipping.as_ref().unwrap().amount, usd("5.00"));
    assert_eq!(p.lines[0].tax, usd("2.00"));
    assert_eq!(p.lines[1].tax, usd("0.75"));
    assert_eq!(p.tax_total, usd("3.25"));
    assert_eq!(order.total(), usd("35.75"));
    assert_eq!(order.payment().status(), PaymentStatus::Captured);
    assert_eq!(order.payment().captured(), usd("35.75"));
    assert_eq!(order.email().unwrap().as_str(), "buyer@example.com");

    // Stock is allocated to the order; the cart is completed.
    assert_eq!(shop.engine.stock(a).await.unwrap().available(), 3);
    assert_eq!(shop.engine.stock(b).await.unwrap().available(), 2);
    let cart = shop.engine.cart(&Actor::Guest, cart.id()).await.unwrap();
    assert!(cart.ensure_active().is_err());

    // Events were recorded with the changes, and the relay delivers them
    // until they are acknowledged.
    let events = common::pending(&shop.engine, "mailer", 2).await;
    assert_eq!(events.len(), 2);
    assert!(
        matches!(events[0].kind, EventKind::OrderPlaced { order_id, .. } if order_id == order.id())
    );
    assert!(
        matches!(events[1].kind, EventKind::PaymentCaptured { amount, .. } if amount == usd("35.75"))
    );
    assert_eq!(
        shop.engine
            .pending_events(&Actor::System, "mailer", 10)
            .await
            .unwrap(),
        events,
        "redelivered until acked"
    );
    shop.engine
        .ack_events(&Actor::System, "mailer", events[0].id)
        .await
        .unwrap();
    assert_eq!(
        shop.engine
            .pending_events(&Actor::System, "mailer", 10)
            .await
            .unwrap(),
        events[1..]
    );
    shop.engine
        .ack_events(&Actor::System, "mailer", events[1].id)
        .await
        .unwrap();
    shop.engine
        .ack_events(&Actor::System, "mailer", events[0].id)
        .await
        .unwrap(); // older: no-op
    assert!(
        shop.engine
            .pending_events(&Actor::System, "mailer", 10)
            .await
            .unwrap()
            .is_empty()
    );
    // Consumers are independent.
    assert_eq!(
        shop.engine
            .pending_events(&Actor::System, "warehouse", 10)
            .await
            .unwrap()
            .len(),
        2
    );
    // Changing the catalog later does not change the order.
    let mut product = shop
        .engine
        .product(
            shop.engine
                .variant_by_sku("A")
                .await
                .unwrap()
                .variant
                .product_id(),
        )
        .await
        .unwrap();
    product.set_variant_price(a, usd("99.00")).unwrap();
    shop.engine
        .update_product(&Actor::System, product)
        .await
        .unwrap();
    let again = shop
        .engine
        .order(&Actor::GuestWithToken(token.clone()), order.id())
        .await
        .unwrap();
    assert_eq!(again.pricing(), order.pricing());
    // Without the token a guest cannot reach it; a retry gets the same token.
    assert!(matches!(
        shop.engine.order(&Actor::Guest, order.id()).await,
        Err(Error::Forbidden)
    ));
    let retry = shop
        .engine
        .checkout(request(cart.id(), "k1"))
        .await
        .unwrap();
    assert_eq!(retry.access_token, Some(token));
    assert_eq!(retry.order.id(), order.id());

    assert!(
        shop.engine
            .ack_events(&Actor::System, "mailer", cartwright::id::EventId::new())
            .await
            .is_err()
    );
    assert!(
        shop.engine
            .pending_events(&Actor::System, "", 10)
            .await
            .is_err()
    );
}

async fn same_key_same_order_and_one_charge(backend: Backend) {
    let shop = Shop::new(backend).await;
    let a = shop.product("A", "10.00", 5).await;
    let cart = shop.ready_cart(&[(a, 1)]).await;
    let first = shop.place(cart.id(), "k").await;
    let second = shop.place(cart.id(), "k").await;
    assert_eq!(first.id(), second.id());
    assert_eq!(shop.payments.authorizations().len(), 1);
    assert_eq!(authorizations_taking_effect(&shop), 1);
    assert_eq!(shop.engine.stock(a).await.unwrap().available(), 4);
}

async fn same_key_with_another_cart_or_token_is_a_conflict(backend: Backend) {
    let shop = Shop::new(backend).await;
    let a = shop.product("A", "10.00", 5).await;
    let one = shop.ready_cart(&[(a, 1)]).await;
    let two = shop.ready_cart(&[(a, 1)]).await;
    shop.engine.checkout(request(one.id(), "k")).await.unwrap();
    let before = shop.snapshot().await;
    let err = shop
        .engine
        .checkout(request(two.id(), "k"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::IdempotencyConflict(_)));
    let mut other_token = request(one.id(), "k");
    other_token.payment_token = "tok_other".into();
    assert!(matches!(
        shop.engine.checkout(other_token).await,
        Err(Error::IdempotencyConflict(_))
    ));
    assert_eq!(shop.snapshot().await, before);
}

async fn decline_releases_stock_keeps_cart_and_is_replayed(backend: Backend) {
    let shop = Shop::new(backend).await;
    let a = shop.product("A", "10.00", 5).await;
    let cart = shop.ready_cart(&[(a, 2)]).await;
    let mut req = request(cart.id(), "k");
    req.payment_token = "tok_decline".into();

    let err = shop.engine.checkout(req.clone()).await.unwrap_err();
    assert!(matches!(&err, Error::PaymentDeclined { code, .. } if code == "card_declined"));
    assert_eq!(shop.engine.stock(a).await.unwrap().available(), 5);
    let after = shop.engine.cart(&Actor::Guest, cart.id()).await.unwrap();
    assert_eq!(after, cart, "the cart is exactly as it was");

    // The same key gets the same outcome without calling the provider again.
    let calls = shop.payments.calls().len();
    let again = shop.engine.checkout(req).await.unwrap_err();
    assert!(matches!(again, Error::PaymentDeclined { .. }));
    assert_eq!(shop.payments.calls().len(), calls);

    // A new key (another card) succeeds.
    let order = shop.place(cart.id(), "k2").await;
    assert_eq!(order.total(), usd("27.50"));
}

async fn declined_by_amount(backend: Backend) {
    let shop = Shop::new(backend).await;
    let a = shop.product("A", "10.00", 5).await;
    let cart = shop.ready_cart(&[(a, 1)]).await;
    shop.payments.decline_amount(usd("16.50"));
    let err = shop
        .engine
        .checkout(request(cart.id(), "k"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::PaymentDeclined { .. }));
}

async fn out_of_stock_reserves_nothing(backend: Backend) {
    let shop = Shop::new(backend).await;
    let a = shop.product("A", "10.00", 5).await;
    let b = shop.product("B", "1.00", 1).await;
    let cart = shop.ready_cart(&[(a, 2), (b, 2)]).await;
    let before = shop.engine.stock(a).await.unwrap();
    let err = shop
        .engine
        .checkout(request(cart.id(), "k"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::OutOfStock { variant_id, requested: 2, available: 1 } if variant_id == b)
    );
    assert_eq!(
        shop.engine.stock(a).await.unwrap(),
        before,
        "A was not held"
    );
    assert!(shop.payments.calls().is_empty(), "no payment attempted");
}

async fn unavailable_provider_leaves_the_key_retryable(backend: Backend) {
    let shop = Shop::new(backend).await;
    let a = shop.product("A", "10.00", 5).await;
    let cart = shop.ready_cart(&[(a, 1)]).await;
    shop.payments
        .inject(Operation::Authorize, Fault::Unavailable);
    let err = shop
        .engine
        .checkout(request(cart.id(), "k"))
        .await
        .unwrap_err();
    assert!(err.is_retryable());
    assert_eq!(shop.engine.stock(a).await.unwrap().available(), 5);
    // The retry with the same key succeeds and charges once.
    let order = shop.place(cart.id(), "k").await;
    assert_eq!(order.payment().status(), PaymentStatus::Captured);
    assert_eq!(shop.payments.authorizations().len(), 1);
}

async fn timeout_after_authorizing_voids_the_hidden_hold(backend: Backend) {
    let shop = Shop::new(backend).await;
    let a = shop.product("A", "10.00", 5).await;
    let cart = shop.ready_cart(&[(a, 1)]).await;
    shop.payments
        .inject(Operation::Authorize, Fault::TimeoutAfterProcessing);
    let err = shop
        .engine
        .checkout(request(cart.id(), "k"))
        .await
        .unwrap_err();
    assert!(err.is_retryable());
    let auths = shop.payments.authorizations();
    assert_eq!(auths.len(), 1);
    assert!(
        auths[0].voided,
        "the hold the shop never heard about was voided"
    );
    assert_eq!(shop.engine.stock(a).await.unwrap().available(), 5);

    let order = shop.place(cart.id(), "k").await;
    assert_eq!(order.payment().captured(), usd("16.50"));
    assert!(shop.payments.open_holds().is_empty());
    let captured: Vec<_> = shop
        .payments
        .authorizations()
        .into_iter()
        .filter(|a| !a.captured.is_zero())
        .collect();
    assert_eq!(captured.len(), 1, "charged exactly once");
}

async fn failed_capture_leaves_order_authorized_and_capture_can_be_retried(backend: Backend) {
    let shop = Shop::new(backend).await;
    let a = shop.product("A", "10.00", 5).await;
    let cart = shop.ready_cart(&[(a, 1)]).await;
    shop.payments
        .inject(Operation::Capture, Fault::TimeoutAfterProcessing);
    let order = shop.place(cart.id(), "k").await;
    assert_eq!(order.payment().status(), PaymentStatus::Authorized);

    let captured = shop
        .engine
        .capture(&Actor::Staff("ops".into()), order.id())
        .await
        .unwrap();
    assert_eq!(captured.payment().status(), PaymentStatus::Captured);
    // Both capture calls used one key, so the gateway captured once.
    let auth = &shop.payments.authorizations()[0];
    assert_eq!(auth.captured, usd("16.50"));
    // Capturing again is a no-op.
    let again = shop
        .engine
        .capture(&Actor::System, order.id())
        .await
        .unwrap();
    assert_eq!(again, captured);
    assert_eq!(shop.payments.authorizations()[0].captured, usd("16.50"));
}

async fn manual_capture_mode(backend: Backend) {
    let shop = Shop::with(
        backend,
        ShopOptions {
            capture: CaptureMode::Manual,
            ..ShopOptions::default()
        },
    )
    .await;
    let a = shop.product("A", "10.00", 5).await;
    let cart = shop.ready_cart(&[(a, 1)]).await;
    let order = shop.place(cart.id(), "k").await;
    assert_eq!(order.payment().status(), PaymentStatus::Authorized);
    assert!(shop.payments.authorizations()[0].captured.is_zero());
    let order = shop
        .engine
        .capture(&Actor::System, order.id())
        .await
        .unwrap();
    assert_eq!(order.payment().captured(), usd("16.50"));
}

async fn free_orders_need_no_payment(backend: Backend) {
    let shop = Shop::new(backend).await;
    let product = shop
        .product_with(
            "FREE",
            NewVariant::digital("")
                .prices(vec![usd("0.00")])
                .status(Status::Active),
        )
        .await;
    let v = product.variants()[0].id();
    shop.engine
        .set_stock(&Actor::System, v, shop.warehouse, 3)
        .await
        .unwrap();
    let guest = Actor::Guest;
    let cart = shop
        .engine
        .create_cart(&guest, Currency::USD)
        .await
        .unwrap();
    shop.engine.add_item(&guest, cart.id(), v, 1).await.unwrap();
    shop.engine
        .set_email(&guest, cart.id(), "a@b.co")
        .await
        .unwrap();
    let order = shop.place(cart.id(), "k").await;
    assert!(order.total().is_zero());
    assert!(shop.payments.calls().is_empty());
}

async fn validation_errors_change_nothing_and_do_not_burn_the_key(backend: Backend) {
    let shop = Shop::new(backend).await;
    let a = shop.product("A", "10.00", 5).await;
    let guest = Actor::Guest;

    // Empty cart.
    let empty = shop
        .engine
        .create_cart(&guest, Currency::USD)
        .await
        .unwrap();
    let before = shop.snapshot().await;
    assert!(matches!(
        shop.engine.checkout(request(empty.id(), "e")).await,
        Err(Error::EmptyCart)
    ));
    assert_eq!(shop.snapshot().await, before);
    // Missing address, then method, then email: each refused, nothing held.
    let cart = shop
        .engine
        .create_cart(&guest, Currency::USD)
        .await
        .unwrap();
    shop.engine.add_item(&guest, cart.id(), a, 1).await.unwrap();
    let before = shop.snapshot().await;
    let err = shop
        .engine
        .checkout(request(cart.id(), "m"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Incomplete("shipping address")));
    assert_eq!(shop.snapshot().await, before);
    shop.engine
        .set_shipping_address(&guest, cart.id(), common::address())
        .await
        .unwrap();
    let err = shop
        .engine
        .checkout(request(cart.id(), "m"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Incomplete("shipping method")));
    shop.engine
        .set_shipping_method(&guest, cart.id(), "standard")
        .await
        .unwrap();
    let before = shop.snapshot().await;
    let err = shop
        .engine
        .checkout(request(cart.id(), "m"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Incomplete("email")));
    assert_eq!(shop.snapshot().await, before);
    assert!(shop.payments.calls().is_empty());
    // Fix the cart; the same key now succeeds.
    shop.engine
        .set_email(&guest, cart.id(), "x@y.io")
        .await
        .unwrap();
    shop.engine.checkout(request(cart.id(), "m")).await.unwrap();
}

async fn bad_requests_leave_the_store_unchanged(backend: Backend) {
    let shop = Shop::new(backend).await;
    let a = shop.product("A", "10.00", 5).await;
    let cart = shop.ready_cart(&[(a, 1)]).await;
    let before = shop.snapshot().await;
    let mut bad_token = request(cart.id(), "k");
    bad_token.payment_token = " ".into();
    // No card token and nothing else to pay with.
    assert!(matches!(
        shop.engine.checkout(bad_token).await,
        Err(Error::Incomplete("payment token"))
    ));
    let mut long_token = request(cart.id(), "k");
    long_token.payment_token = "t".repeat(300);
    assert!(shop.engine.checkout(long_token).await.is_err());
    let unknown = request(cartwright::id::CartId::new(), "k2");
    assert!(matches!(
        shop.engine.checkout(unknown).await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(shop.snapshot().await, before);
    assert!(shop.payments.calls().is_empty());
}

async fn another_customers_cart_cannot_be_checked_out(backend: Backend) {
    let shop = Shop::new(backend).await;
    let a = shop.product("A", "10.00", 5).await;
    let owner = shop.customer("o@x.io").await;
    let me = Actor::Customer(owner.id());
    let cart = shop.engine.create_cart(&me, Currency::USD).await.unwrap();
    shop.engine.add_item(&me, cart.id(), a, 1).await.unwrap();
    shop.complete_details(&me, cart.id()).await;
    let mut req = request(cart.id(), "k");
    req.actor = Actor::Guest;
    let before = shop.snapshot().await;
    assert!(matches!(
        shop.engine.checkout(req).await,
        Err(Error::Forbidden)
    ));
    assert_eq!(shop.snapshot().await, before);
    let mut req = request(cart.id(), "k");
    req.actor = me;
    let order = shop.engine.checkout(req).await.unwrap().order;
    assert_eq!(order.customer_id(), Some(owner.id()));
    // Orders are private to their customer.
    let stranger = Actor::Customer(cartwright::id::CustomerId::new());
    assert!(matches!(
        shop.engine.order(&stranger, order.id()).await,
        Err(Error::Forbidden)
    ));
    let mine = shop
        .engine
        .orders_for_customer(&Actor::Customer(owner.id()), owner.id(), None, 10)
        .await
        .unwrap();
    assert_eq!(mine.len(), 1);
    assert!(
        shop.engine
            .orders_for_customer(&stranger, owner.id(), None, 10)
            .await
            .is_err()
    );
    assert_eq!(
        shop.engine
            .customer(&Actor::System, owner.id())
            .await
            .unwrap()
            .orders_placed(),
        1
    );
}

async fn pausing_shop(backend: Backend) -> (Shop, Arc<common::pausing::PausingProvider>) {
    Shop::pausing(backend, Operation::Authorize, CaptureMode::Immediate).await
}

async fn a_cart_changed_after_authorization_voids_the_hold(backend: Backend) {
    let (shop, pausing) = pausing_shop(backend).await;
    let a = shop.product("A", "10.00", 5).await;
    let cart = shop.ready_cart(&[(a, 1)]).await;
    let engine = shop.engine.clone();
    let id = cart.id();
    let task = tokio::spawn(async move { engine.checkout(request(id, "k")).await });
    pausing.reached.notified().await;
    // The shopper adds an item while the payment is being authorized.
    shop.engine
        .add_item(&Actor::Guest, cart.id(), a, 1)
        .await
        .unwrap();
    pausing.resume.notify_one();
    let err = task.await.unwrap().unwrap_err();
    assert!(matches!(err, Error::Conflict("cart")));
    assert!(shop.payments.authorizations()[0].voided);
    assert_eq!(shop.engine.stock(a).await.unwrap().available(), 5);
    // Retrying with the same key prices the new cart and charges it once.
    let engine = shop.engine.clone();
    let task = tokio::spawn(async move { engine.checkout(request(id, "k")).await });
    pausing.reached.notified().await;
    pausing.resume.notify_one();
    let order = task.await.unwrap().unwrap();
    assert_eq!(order.order.pricing().lines[0].quantity, 2);
    assert_eq!(shop.payments.open_holds().len(), 0);
}

async fn a_crash_after_authorization_is_recovered(backend: Backend) {
    let (shop, pausing) = pausing_shop(backend).await;
    let a = shop.product("A", "10.00", 5).await;
    let cart = shop.ready_cart(&[(a, 2)]).await;
    let engine = shop.engine.clone();
    let id = cart.id();
    let task = tokio::spawn(async move { engine.checkout(request(id, "k")).await });
    pausing.reached.notified().await;
    task.abort(); // the process "dies" holding funds and stock
    assert!(task.await.unwrap_err().is_cancelled());
    assert_eq!(shop.engine.stock(a).await.unwrap().available(), 3);
    assert_eq!(shop.payments.open_holds().len(), 1);

    // Recovery leaves a live attempt alone...
    let report = shop.engine.recover().await.unwrap();
    assert_eq!(report.reset_checkouts, 0);
    // ...and cleans up once its lease has ended.
    shop.clock.advance(chrono::Duration::minutes(3));
    let report = shop.engine.recover().await.unwrap();
    assert_eq!(report.reset_checkouts, 1);
    assert_eq!(report.voided_authorizations, 1);
    assert!(shop.payments.open_holds().is_empty());
    assert_eq!(shop.engine.stock(a).await.unwrap().available(), 5);
    assert!(
        shop.engine
            .cart(&Actor::Guest, id)
            .await
            .unwrap()
            .ensure_active()
            .is_ok()
    );

    // The customer's retry with the same key runs a new attempt and charges once.
    let engine = shop.engine.clone();
    let task = tokio::spawn(async move { engine.checkout(request(id, "k")).await });
    pausing.reached.notified().await;
    pausing.resume.notify_one();
    let order = task.await.unwrap().unwrap();
    assert_eq!(order.order.payment().status(), PaymentStatus::Captured);
    let auths = shop.payments.authorizations();
    assert_eq!(auths.len(), 2);
    assert_eq!(auths.iter().filter(|a| !a.captured.is_zero()).count(), 1);
    assert_eq!(auths.iter().filter(|a| a.voided).count(), 1);
}

/// An attempt so slow that recovery took its checkout over: when its
/// authorization finally returns, its second commit finds the lease gone,
/// places nothing, and gives the hold back; the key's retry charges once.
async fn a_slow_attempt_that_lost_its_lease_places_nothing(backend: Backend) {
    let (shop, pausing) = pausing_shop(backend).await;
    let a = shop.product("A", "10.00", 5).await;
    let cart = shop.ready_cart(&[(a, 2)]).await;
    let engine = shop.engine.clone();
    let id = cart.id();
    let slow = tokio::spawn(async move { engine.checkout(request(id, "k")).await });
    pausing.reached.notified().await;
    // The attempt's lease ends while its provider call hangs: recovery
    // resets the checkout and releases its stock.
    shop.clock.advance(chrono::Duration::minutes(3));
    let report = shop.engine.recover().await.unwrap();
    assert_eq!(report.reset_checkouts, 1);
    assert_eq!(shop.engine.stock(a).await.unwrap().available(), 5);
    // The provider answers at last.
    pausing.resume.notify_one();
    let err = slow.await.unwrap().unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert!(
        shop.engine
            .find_orders(&Actor::System, &cartwright::order::OrderQuery::default())
            .await
            .unwrap()
            .orders
            .is_empty(),
        "an order was placed by an attempt without its lease"
    );
    assert!(shop.payments.open_holds().is_empty());
    assert_eq!(shop.engine.stock(a).await.unwrap().available(), 5);

    // The customer's retry with the same key places one order, charged once.
    let engine = shop.engine.clone();
    let retry = tokio::spawn(async move { engine.checkout(request(id, "k")).await });
    pausing.reached.notified().await;
    pausing.resume.notify_one();
    let order = retry.await.unwrap().unwrap();
    assert_eq!(order.order.payment().status(), PaymentStatus::Captured);
    let captured: Vec<_> = shop
        .payments
        .authorizations()
        .into_iter()
        .filter(|a| !a.captured.is_zero())
        .collect();
    assert_eq!(captured.len(), 1);
    assert!(shop.payments.open_holds().is_empty());
    assert_eq!(shop.engine.stock(a).await.unwrap().available(), 3);
}

async fn a_retry_after_a_crash_cleans_up_by_itself(backend: Backend) {
    let (shop, pausing) = pausing_shop(backend).await;
    let a = shop.product("A", "10.00", 5).await;
    let cart = shop.ready_cart(&[(a, 1)]).await;
    let engine = shop.engine.clone();
    let id = cart.id();
    let task = tokio::spawn(async move { engine.checkout(request(id, "k")).await });
    pausing.reached.notified().await;
    task.abort();
    let _ = task.await;
    shop.clock.advance(chrono::Duration::minutes(3));
    // No explicit recover(): the retry notices the dead attempt.
    let engine = shop.engine.clone();
    let task = tokio::spawn(async move { engine.checkout(request(id, "k")).await });
    pausing.reached.notified().await;
    pausing.resume.notify_one();
    task.await.unwrap().unwrap();
    assert!(shop.payments.open_holds().is_empty());
    assert_eq!(
        shop.payments
            .authorizations()
            .iter()
            .filter(|a| a.voided)
            .count(),
        1
    );
    assert_eq!(shop.engine.stock(a).await.unwrap().available(), 4);
}

async fn expired_reservations_are_released(backend: Backend) {
    let shop = Shop::new(backend).await;
    let a = shop.product("A", "10.00", 5).await;
    let held = shop
        .engine
        .reserve_stock(&Actor::System, &[(a, 4)])
        .await
        .unwrap();
    assert_eq!(shop.engine.stock(a).await.unwrap().available(), 1);
    shop.clock.advance(chrono::Duration::minutes(11));
    let report = shop.engine.recover().await.unwrap();
    assert_eq!(report.released_reservations, 1);
    assert_eq!(shop.engine.stock(a).await.unwrap().available(), 5);
    assert!(
        shop.engine
            .commit_reservation(&Actor::System, held.id)
            .await
            .is_err()
    );
}

async fn hundred_buyers_for_the_last_ten_units(backend: Backend) {
    let shop = Shop::new(backend).await;
    let a = shop.product("A", "10.00", 10).await;
    let mut carts = Vec::new();
    for _ in 0..100 {
        carts.push(shop.ready_cart(&[(a, 1)]).await.id());
    }
    let mut tasks = Vec::new();
    for (i, cart) in carts.into_iter().enumerate() {
        let engine = shop.engine.clone();
        tasks.push(tokio::spawn(async move {
            engine.checkout(request(cart, &format!("k{i}"))).await
        }));
    }
    let mut placed = 0;
    let mut sold_out = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => placed += 1,
            Err(Error::OutOfStock { .. }) => sold_out += 1,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!((placed, sold_out), (10, 90));
    let stock = shop.engine.stock(a).await.unwrap();
    assert_eq!(stock.available(), 0);
    assert_eq!(stock.reserved, 10);
    assert_eq!(shop.payments.authorizations().len(), 10);
    assert!(shop.payments.open_holds().is_empty());
}

async fn fifty_calls_with_one_key_run_once(backend: Backend) {
    let shop = Shop::new(backend).await;
    let a = shop.product("A", "10.00", 100).await;
    let cart = shop.ready_cart(&[(a, 1)]).await;
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let engine = shop.engine.clone();
        let id = cart.id();
        tasks.push(tokio::spawn(async move {
            engine.checkout(request(id, "same-key")).await
        }));
    }
    let mut ids = std::collections::BTreeSet::new();
    for t in tasks {
        ids.insert(t.await.unwrap().unwrap().order.id());
    }
    assert_eq!(ids.len(), 1, "one order");
    assert_eq!(shop.payments.authorizations().len(), 1, "one authorization");
    assert_eq!(authorizations_taking_effect(&shop), 1);
    assert_eq!(shop.engine.stock(a).await.unwrap().available(), 99);
}

async fn recovery_captures_orders_left_authorized(backend: Backend) {
    let shop = Shop::new(backend).await;
    let a = shop.product("A", "10.00", 5).await;
    let cart = shop.ready_cart(&[(a, 1)]).await;
    // The capture right after placing fails (as if the process had stopped).
    shop.payments.inject(Operation::Capture, Fault::Unavailable);
    let order = shop.place(cart.id(), "k").await;
    assert_eq!(order.payment().status(), PaymentStatus::Authorized);
    // A live checkout's order is left alone...
    assert_eq!(shop.engine.recover().await.unwrap().captured_orders, 0);
    // ...and captured once its lease is long over.
    shop.clock.advance(chrono::Duration::minutes(3));
    assert_eq!(shop.engine.recover().await.unwrap().captured_orders, 1);
    let o = shop.engine.order(&Actor::System, order.id()).await.unwrap();
    assert_eq!(o.payment().status(), PaymentStatus::Captured);
    assert_eq!(shop.payments.authorizations()[0].captured, usd("16.50"));
    assert_eq!(shop.engine.recover().await.unwrap().captured_orders, 0);
}

async fn a_cart_shipped_in_two_groups_pays_both_charges(backend: Backend) {
    let shop = Shop::new(backend).await;
    let a = shop.product("A", "20.00", 5).await;
    let b = shop.product("B", "10.00", 5).await;
    let cart = shop.ready_cart(&[(a, 1), (b, 1)]).await;
    let line_b = cart.lines()[1].id;
    // B ships from another warehouse, with no method chosen yet: refused,
    // nothing charged or reserved.
    let cart = shop
        .engine
        .set_shipping_group(&Actor::Guest, cart.id(), "warehouse-2", &[line_b], None)
        .await
        .unwrap();
    assert_eq!(cart.shipping_groups().len(), 1);
    let err = shop
        .engine
        .checkout(request(cart.id(), "k0"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Incomplete("shipping method")),
        "{err:?}"
    );
    assert!(shop.payments.authorizations().is_empty());
    assert_eq!(shop.engine.stock(b).await.unwrap().available(), 5);
    shop.engine
        .set_shipping_group(
            &Actor::Guest,
            cart.id(),
            "warehouse-2",
            &[line_b],
            Some("standard"),
        )
        .await
        .unwrap();
    let order = shop.place(cart.id(), "k1").await;
    let frozen = order.pricing();
    // 30.00 + 3.00 tax; two shipments of 5.00 + 0.50 tax each.
    assert_eq!(frozen.shipping.as_ref().unwrap().total, usd("5.50"));
    let group = &frozen.shipping_groups[0];
    assert_eq!(group.group, "warehouse-2");
    assert_eq!(group.charge.as_ref().unwrap().total, usd("5.50"));
    assert_eq!(frozen.total, usd("44.00"));
    assert_eq!(order.total(), usd("44.00"));
    assert_eq!(shop.payments.authorizations()[0].amount, usd("44.00"));

    // Removing a group puts its lines back with the cart's own method.
    let other = shop.ready_cart(&[(a, 1), (b, 1)]).await;
    let line = other.lines()[0].id;
    shop.engine
        .set_shipping_group(&Actor::Guest, other.id(), "g", &[line], Some("standard"))
        .await
        .unwrap();
    let back = shop
        .engine
        .remove_shipping_group(&Actor::Guest, other.id(), "g")
        .await
        .unwrap();
    assert!(back.shipping_groups().is_empty());
    let err = shop
        .engine
        .remove_shipping_group(&Actor::Guest, other.id(), "g")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
}

conformance!(
    a_cart_shipped_in_two_groups_pays_both_charges,
    recovery_captures_orders_left_authorized,
    happy_path_places_a_frozen_order_and_captures,
    same_key_same_order_and_one_charge,
    same_key_with_another_cart_or_token_is_a_conflict,
    decline_releases_stock_keeps_cart_and_is_replayed,
    declined_by_amount,
    out_of_stock_reserves_nothing,
    unavailable_provider_leaves_the_key_retryable,
    timeout_after_authorizing_voids_the_hidden_hold,
    failed_capture_leaves_order_authorized_and_capture_can_be_retried,
    manual_capture_mode,
    free_orders_need_no_payment,
    validation_errors_change_nothing_and_do_not_burn_the_key,
    bad_requests_leave_the_store_unchanged,
    another_customers_cart_cannot_be_checked_out,
    a_cart_changed_after_authorization_voids_the_hold,
    a_crash_after_authorization_is_recovered,
    a_slow_attempt_that_lost_its_lease_places_nothing,
    a_retry_after_a_crash_cleans_up_by_itself,
    expired_reservations_are_released,
    hundred_buyers_for_the_last_ten_units,
    fifty_calls_with_one_key_run_once,
);
