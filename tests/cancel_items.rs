//! Cancelling units of some lines before they ship, on both stores: exactly
//! the units' shares come back (released from the hold or refunded), their
//! stock goes back to sale, and a race with a shipment never lets both win.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::time::Duration as StdDuration;

use cartwright::after_sale::CancelItems;
use cartwright::event::{AfterSaleChange, EventKind};
use cartwright::fulfillment::ShipmentRequest;
use cartwright::order::{Order, OrderChangeKind, OrderStatus, ReturnState};
use cartwright::payment::PaymentStatus;
use cartwright::prelude::*;
use common::{Backend, Shop, ShopOptions, key, request, units, usd};

fn staff() -> Actor {
    Actor::Staff("cy".into())
}

/// 3 × A at 3.33 and 1 × B at 10.00 (tax 10 %, shipping 5.00) as a guest,
/// with the guest's token.
async fn placed(shop: &Shop) -> (Order, Actor) {
    let a = shop.product("A", "3.33", 10).await;
    let b = shop.product("B", "10.00", 10).await;
    let cart = shop.ready_cart(&[(a, 3), (b, 1)]).await;
    let out = shop
        .engine
        .checkout(request(cart.id(), "order"))
        .await
        .unwrap();
    (out.order, Actor::GuestWithToken(out.access_token.unwrap()))
}

async fn stock(shop: &Shop, order: &Order, line: usize) -> (i64, i64) {
    let s = shop
        .engine
        .stock(order.pricing().lines[line].variant_id)
        .await
        .unwrap();
    (s.on_hand, s.reserved)
}

async fn a_captured_order_refunds_the_units_shares(backend: Backend) {
    let shop = Shop::new(backend).await;
    let (order, guest) = placed(&shop).await;
    assert_eq!(stock(&shop, &order, 0).await, (10, 3));
    // A's line is 10.99 (3 × 3.33 + 10 % tax) in shares 3.67, 3.66, 3.66:
    // cancelling one gives back the last, 3.66.
    let o = shop
        .engine
        .cancel_items(
            &guest,
            order.id(),
            CancelItems::new(units(&order, 0, 1), key("c1")).reason("ordered one too many"),
        )
        .await
        .unwrap();
    let c = &o.line_cancellations()[0];
    assert_eq!(c.state, ReturnState::Completed);
    assert_eq!(
        (c.amount, c.refund, c.released),
        (usd("3.66"), usd("3.66"), usd("0.00"))
    );
    assert_eq!(o.payment().refunded(), usd("3.66"));
    assert_eq!(shop.payments.authorizations()[0].refunded, usd("3.66"));
    assert_eq!(o.ordered(c.items[0].line_id), 2);
    assert!(
        o.history()
            .iter()
            .any(|h| matches!(h.change, OrderChangeKind::LinesCancelled { .. }))
    );
    // The unit is back on sale; the frozen order keeps its lines and total.
    assert_eq!(stock(&shop, &order, 0).await, (10, 2));
    assert_eq!(o.total(), order.total());
    // A retry moves nothing more.
    let again = shop
        .engine
        .cancel_items(
            &guest,
            order.id(),
            CancelItems::new(units(&order, 0, 1), key("c1")),
        )
        .await
        .unwrap();
    assert_eq!(again.payment().refunded(), usd("3.66"));
    assert_eq!(again.line_cancellations().len(), 1);
    // Three units of A no longer ship; the two left and B do, and the
    // order completes.
    let e = shop
        .engine
        .ship(
            &staff(),
            order.id(),
            ShipmentRequest::new(units(&order, 0, 3)).carrier("UPS"),
        )
        .await;
    assert!(matches!(e, Err(Error::Invalid { .. })), "{e:?}");
    let mut rest = units(&order, 0, 2);
    rest.extend(units(&order, 1, 1));
    let o = shop
        .engine
        .ship(
            &staff(),
            order.id(),
            ShipmentRequest::new(rest).carrier("UPS"),
        )
        .await
        .unwrap();
    assert_eq!(o.status(), OrderStatus::Completed);
    assert_eq!(stock(&shop, &order, 0).await, (8, 0));
    let lines_cancelled =
        |events: &[cartwright::store::Event]| {
            events.iter().any(|e| matches!(
            &e.kind,
            EventKind::AfterSale { change: AfterSaleChange::LinesCancelled { amount, .. }, .. }
                if *amount == usd("3.66")
        ))
        };
    let found =
        lines_cancelled(&common::events_until(&shop.engine, "cancel-test", lines_cancelled).await);
    assert!(found, "the cancellation's event is in the outbox");
}

async fn a_held_payment_gives_up_the_share_and_captures_the_rest(backend: Backend) {
    let options = ShopOptions {
        capture: CaptureMode::Manual,
        ..ShopOptions::default()
    };
    let shop = Shop::with(backend, options).await;
    let (order, _) = placed(&shop).await;
    assert_eq!(order.payment().status(), PaymentStatus::Authorized);
    let o = shop
        .engine
        .cancel_items(
            &staff(),
            order.id(),
            CancelItems::new(units(&order, 1, 1), key("b")),
        )
        .await
        .unwrap();
    // B's 11.00 is released: nothing refunded, nothing asked of the provider.
    assert_eq!(o.payment().released(), usd("11.00"));
    assert_eq!(o.payment().refunded(), usd("0.00"));
    assert_eq!(
        o.payment().capturable().unwrap(),
        order.total().checked_sub(usd("11.00")).unwrap()
    );
    let calls = shop.payments.calls().len();
    // Capturing takes what is left, and that is the whole payment.
    let o = shop.engine.capture(&staff(), order.id()).await.unwrap();
    assert_eq!(o.payment().status(), PaymentStatus::Captured);
    assert_eq!(
        o.payment().captured(),
        order.total().checked_sub(usd("11.00")).unwrap()
    );
    assert_eq!(shop.payments.calls().len(), calls + 1);
    assert_eq!(
        shop.payments.authorizations()[0].captured,
        o.payment().captured()
    );
    let o = shop
        .engine
        .ship(
            &staff(),
            order.id(),
            ShipmentRequest::new(units(&order, 0, 3)).carrier("UPS"),
        )
        .await
        .unwrap();
    assert_eq!(o.status(), OrderStatus::Completed);
    assert_eq!(stock(&shop, &order, 1).await, (10, 0));
}

async fn bad_cancellations_change_nothing(backend: Backend) {
    let shop = Shop::new(backend).await;
    let (order, guest) = placed(&shop).await;
    // Every unit at once is the order's cancellation, not a line's.
    let before = shop.snapshot().await;
    let mut everything = units(&order, 0, 3);
    everything.extend(units(&order, 1, 1));
    let e = shop
        .engine
        .cancel_items(&guest, order.id(), CancelItems::new(everything, key("all")))
        .await;
    assert!(matches!(e, Err(Error::Invalid { .. })), "{e:?}");
    assert!(before == shop.snapshot().await);
    shop.engine
        .ship(
            &staff(),
            order.id(),
            ShipmentRequest::new(units(&order, 0, 2)).carrier("UPS"),
        )
        .await
        .unwrap();
    let before = shop.snapshot().await;
    for (items, why) in [
        (units(&order, 0, 2), "shipped"),
        (units(&order, 0, 0), "zero"),
        (vec![], "none"),
    ] {
        let e = shop
            .engine
            .cancel_items(&guest, order.id(), CancelItems::new(items, key(why)))
            .await;
        assert!(matches!(e, Err(Error::Invalid { .. })), "{why}: {e:?}");
    }
    let e = shop
        .engine
        .cancel_items(
            &guest,
            order.id(),
            CancelItems::new(units(&order, 1, 1), key("long")).reason("x".repeat(2_001)),
        )
        .await;
    assert!(matches!(e, Err(Error::LimitExceeded { .. })), "{e:?}");
    for actor in [
        Actor::Guest,
        Actor::Agent("a".into()),
        Actor::Provider("test".into()),
    ] {
        let e = shop
            .engine
            .cancel_items(
                &actor,
                order.id(),
                CancelItems::new(units(&order, 1, 1), key("who")),
            )
            .await;
        assert!(matches!(e, Err(Error::Forbidden)), "{actor:?}: {e:?}");
    }
    assert!(before == shop.snapshot().await);
    let other = shop.customer("x@example.com").await.id();
    let before_other = shop.snapshot().await;
    let e = shop
        .engine
        .cancel_items(
            &Actor::Customer(other),
            order.id(),
            CancelItems::new(units(&order, 1, 1), key("other")),
        )
        .await;
    assert!(matches!(e, Err(Error::Forbidden)), "{e:?}");
    assert!(before_other == shop.snapshot().await);
}

async fn a_refused_refund_undoes_the_cancellation(backend: Backend) {
    let (shop, slow) = Shop::slow(backend, StdDuration::ZERO, CaptureMode::Immediate).await;
    let (order, guest) = placed(&shop).await;
    slow.refuse_refunds
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let e = shop
        .engine
        .cancel_items(
            &guest,
            order.id(),
            CancelItems::new(units(&order, 1, 1), key("b")),
        )
        .await;
    assert!(e.is_err());
    let o = shop.engine.order(&staff(), order.id()).await.unwrap();
    assert_eq!(o.line_cancellations()[0].state, ReturnState::Failed);
    assert_eq!(o.ordered(o.pricing().lines[1].line_id), 1);
    assert_eq!(o.payment().refunded(), usd("0.00"));
    assert!(!o.has_pending_work());
    // Its stock stayed with the order, and it ships.
    assert_eq!(stock(&shop, &order, 1).await, (10, 1));
    shop.engine
        .ship(
            &staff(),
            order.id(),
            ShipmentRequest::new(units(&order, 1, 1)).carrier("UPS"),
        )
        .await
        .unwrap();
}

async fn a_refund_left_pending_keeps_its_stock_from_shipping(backend: Backend) {
    let shop = Shop::new(backend).await;
    let (order, guest) = placed(&shop).await;
    shop.payments.inject(
        cartwright::payment::Operation::Refund,
        cartwright::payment::Fault::Unavailable,
    );
    let e = shop
        .engine
        .cancel_items(
            &guest,
            order.id(),
            CancelItems::new(units(&order, 0, 1), key("a")),
        )
        .await;
    assert!(e.is_err());
    let o = shop.engine.order(&staff(), order.id()).await.unwrap();
    assert_eq!(o.line_cancellations()[0].state, ReturnState::Pending);
    assert!(o.has_pending_work());
    // The two other units of A ship meanwhile; the cancelled one cannot.
    shop.engine
        .ship(
            &staff(),
            order.id(),
            ShipmentRequest::new(units(&order, 0, 2)).carrier("UPS"),
        )
        .await
        .unwrap();
    let e = shop
        .engine
        .ship(
            &staff(),
            order.id(),
            ShipmentRequest::new(units(&order, 0, 1)).carrier("UPS"),
        )
        .await;
    assert!(e.is_err());
    // Recovery finishes the refund and frees the unit.
    shop.clock.advance(chrono::Duration::minutes(5));
    shop.engine.recover().await.unwrap();
    let o = shop.engine.order(&staff(), order.id()).await.unwrap();
    assert_eq!(o.line_cancellations()[0].state, ReturnState::Completed);
    assert_eq!(o.payment().refunded(), usd("3.66"));
    assert_eq!(stock(&shop, &order, 0).await, (8, 0));
}

async fn a_cancellation_racing_a_shipment_never_both_win(backend: Backend) {
    for round in 0..4 {
        let shop = Shop::new(backend).await;
        let (order, guest) = placed(&shop).await;
        let other = shop.second_engine().await;
        // Both want the three units of A.
        let st = staff();
        let k = key(&format!("c{round}"));
        let (shipped, cancelled) = tokio::join!(
            other.ship(
                &st,
                order.id(),
                ShipmentRequest::new(units(&order, 0, 3)).carrier("UPS")
            ),
            shop.engine
                .cancel_items(&guest, order.id(), CancelItems::new(units(&order, 0, 2), k)),
        );
        assert!(
            shipped.is_ok() != cancelled.is_ok(),
            "{shipped:?} {cancelled:?}"
        );
        let o = shop.engine.order(&staff(), order.id()).await.unwrap();
        let line = o.pricing().lines[0].line_id;
        assert!(o.shipped(line) + o.cancelled(line) <= 3);
        let (on_hand, reserved) = stock(&shop, &order, 0).await;
        assert_eq!(on_hand, 10 - i64::from(o.shipped(line)));
        assert_eq!(reserved, 3 - i64::from(o.shipped(line) + o.cancelled(line)));
        assert_eq!(
            shop.payments.authorizations()[0].refunded,
            o.payment().refunded()
        );
    }
}

/// `left_to_ship` is what remains after cancellations and shipments (the
/// admin's "ship everything left" and the demos use it), and
/// `shipped_from` where a line's units left from.
async fn what_is_left_to_ship_counts_cancellations_and_shipments(backend: Backend) {
    let shop = Shop::new(backend).await;
    let (order, guest) = placed(&shop).await;
    let (a, b) = (
        order.pricing().lines[0].line_id,
        order.pricing().lines[1].line_id,
    );
    let left = |o: &Order| -> Vec<(cartwright::id::LineId, u32)> {
        o.left_to_ship()
            .iter()
            .map(|i| (i.line_id, i.quantity))
            .collect()
    };
    assert_eq!(left(&order), vec![(a, 3), (b, 1)]);
    assert_eq!(order.shipped_from(a), None);
    let o = shop
        .engine
        .cancel_items(
            &guest,
            order.id(),
            CancelItems::new(units(&order, 0, 1), key("c1")),
        )
        .await
        .unwrap();
    assert_eq!(left(&o), vec![(a, 2), (b, 1)]);
    let o = shop
        .engine
        .ship(
            &staff(),
            order.id(),
            ShipmentRequest::new(units(&order, 0, 1)).carrier("UPS"),
        )
        .await
        .unwrap();
    assert_eq!(left(&o), vec![(a, 1), (b, 1)]);
    let from = o.shipments()[0].stock[0].location_id;
    assert_eq!(o.shipped_from(a), Some(from));
    assert_eq!(o.shipped_from(b), None);
    // One shipment of what is left ships the rest; nothing is left after.
    let o = shop
        .engine
        .ship(
            &staff(),
            order.id(),
            ShipmentRequest::new(o.left_to_ship()).carrier("UPS"),
        )
        .await
        .unwrap();
    assert!(o.left_to_ship().is_empty());
    assert_eq!(o.shipped(a), 2);
    assert_eq!(o.shipped(b), 1);
}

conformance!(
    what_is_left_to_ship_counts_cancellations_and_shipments,
    a_captured_order_refunds_the_units_shares,
    a_held_payment_gives_up_the_share_and_captures_the_rest,
    bad_cancellations_change_nothing,
    a_refused_refund_undoes_the_cancellation,
    a_refund_left_pending_keeps_its_stock_from_shipping,
    a_cancellation_racing_a_shipment_never_both_win,
);
