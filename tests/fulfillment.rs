//! Shipments, returns and exact refunds, on both stores.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use cartwright::fulfillment::{ReturnRequest, ShipmentRequest};
use cartwright::id::IdempotencyKey;
use cartwright::order::{FulfillmentStatus, LineQuantity, Order, OrderStatus, ShippingRefund};
use cartwright::prelude::*;
use common::{Backend, Shop, usd};

fn staff() -> Actor {
    Actor::Staff("wes".into())
}

fn units(order: &Order, line: usize, quantity: u32) -> Vec<LineQuantity> {
    vec![LineQuantity {
        line_id: order.pricing().lines[line].line_id,
        quantity,
    }]
}

fn ship(items: Vec<LineQuantity>) -> ShipmentRequest {
    ShipmentRequest::new(items)
        .carrier("UPS")
        .tracking_number("1Z999")
        .location(None)
}

fn ret(items: Vec<LineQuantity>, key: &str, shipping: ShippingRefund) -> ReturnRequest {
    ReturnRequest::new(items, IdempotencyKey::new(key).unwrap())
        .restock(true)
        .shipping(shipping)
}

/// A captured order: 3 × A at 3.33 and 1 × B at 10.00, tax 10 %, shipping 5.00.
async fn placed(shop: &Shop) -> (Order, cartwright::id::VariantId) {
    let a = shop.product("A", "3.33", 10).await;
    let b = shop.product("B", "10.00", 10).await;
    let cart = shop.ready_cart(&[(a, 3), (b, 1)]).await;
    (shop.place(cart.id(), "k").await, a)
}

async fn shipments_take_units_out_of_stock(backend: Backend) {
    let shop = Shop::new(backend).await;
    let (order, a) = placed(&shop).await;
    assert_eq!(order.fulfillment(), FulfillmentStatus::Unfulfilled);
    let stock = shop.engine.stock(a).await.unwrap();
    assert_eq!((stock.on_hand, stock.reserved), (10, 3));

    let o = shop
        .engine
        .ship(&staff(), order.id(), ship(units(&order, 0, 2)))
        .await
        .unwrap();
    assert_eq!(o.fulfillment(), FulfillmentStatus::PartiallyFulfilled);
    assert_eq!(o.shipments()[0].tracking_number, "1Z999");
    let stock = shop.engine.stock(a).await.unwrap();
    assert_eq!(
        (stock.on_hand, stock.reserved),
        (8, 1),
        "two units left the building"
    );

    // More than is left to ship is refused and changes nothing.
    let before = shop.snapshot().await;
    assert!(
        shop.engine
            .ship(&staff(), order.id(), ship(units(&order, 0, 2)))
            .await
            .is_err()
    );
    assert!(
        shop.engine
            .ship(&staff(), order.id(), ship(vec![]))
            .await
            .is_err()
    );
    assert!(
        shop.engine
            .ship(&Actor::Guest, order.id(), ship(units(&order, 0, 1)))
            .await
            .is_err()
    );
    assert_eq!(shop.snapshot().await, before);
    // A shipped order can no longer be cancelled.
    assert!(matches!(
        shop.engine.cancel(&staff(), order.id(), "").await,
        Err(Error::IllegalTransition { .. })
    ));

    let mut rest = units(&order, 0, 1);
    rest.extend(units(&order, 1, 1));
    let o = shop
        .engine
        .ship(&staff(), order.id(), ship(rest))
        .await
        .unwrap();
    assert_eq!(o.fulfillment(), FulfillmentStatus::Fulfilled);
    assert_eq!(
        o.status(),
        OrderStatus::Completed,
        "every unit shipped and paid"
    );
    let stock = shop.engine.stock(a).await.unwrap();
    assert_eq!((stock.on_hand, stock.reserved), (7, 0));
    let r = shop
        .engine
        .store()
        .reservation(order.reservation_id())
        .await
        .unwrap();
    assert_eq!(r.state, cartwright::inventory::ReservationState::Committed);
}

async fn returns_refund_exactly_what_the_units_paid(backend: Backend) {
    let shop = Shop::new(backend).await;
    let (order, a) = placed(&shop).await;
    // Line A: 3 × 3.33 = 9.99, tax 1.00 (9.99 × 10 % rounded) → 10.99 over 3 units: 3.67, 3.66, 3.66.
    assert_eq!(order.pricing().lines[0].total, usd("10.99"));
    let mut all = units(&order, 0, 3);
    all.extend(units(&order, 1, 1));
    shop.engine
        .ship(&staff(), order.id(), ship(all))
        .await
        .unwrap();

    let o = shop
        .engine
        .return_items(
            &staff(),
            order.id(),
            ret(units(&order, 0, 1), "r1", ShippingRefund::WhenAllReturned),
        )
        .await
        .unwrap();
    assert_eq!(o.returns()[0].refund, usd("3.67"));
    assert_eq!(o.fulfillment(), FulfillmentStatus::PartiallyReturned);
    assert_eq!(shop.engine.stock(a).await.unwrap().on_hand, 8, "restocked");
    // The same key again refunds nothing more.
    let again = shop
        .engine
        .return_items(
            &staff(),
            order.id(),
            ret(units(&order, 0, 1), "r1", ShippingRefund::WhenAllReturned),
        )
        .await
        .unwrap();
    assert_eq!(again, o);

    // Returning more than shipped-and-not-returned is refused, unchanged.
    let before = shop.snapshot().await;
    assert!(
        shop.engine
            .return_items(
                &staff(),
                order.id(),
                ret(units(&order, 0, 3), "r2", ShippingRefund::Never)
            )
            .await
            .is_err()
    );
    assert_eq!(shop.snapshot().await, before);

    // Everything else comes back: the refunds add up to exactly what was captured.
    let mut rest = units(&order, 0, 2);
    rest.extend(units(&order, 1, 1));
    let o = shop
        .engine
        .return_items(
            &staff(),
            order.id(),
            ret(rest, "r3", ShippingRefund::WhenAllReturned),
        )
        .await
        .unwrap();
    assert_eq!(o.returns()[1].shipping_refund, usd("5.50"));
    assert_eq!(o.payment().refunded(), order.payment().captured());
    assert_eq!(o.payment().refunded(), usd("27.49"));
    assert_eq!(o.fulfillment(), FulfillmentStatus::Returned);
    assert_eq!(shop.payments.authorizations()[0].refunded, usd("27.49"));
    // Nothing more can be refunded.
    assert!(
        shop.engine
            .return_items(
                &staff(),
                order.id(),
                ret(units(&order, 0, 1), "r4", ShippingRefund::Never)
            )
            .await
            .is_err()
    );
}

async fn refunds_never_exceed_what_was_captured(backend: Backend) {
    let shop = Shop::with(
        backend,
        common::ShopOptions {
            capture: CaptureMode::Manual,
            ..Default::default()
        },
    )
    .await;
    let (order, _) = placed(&shop).await;
    let all = {
        let mut v = units(&order, 0, 3);
        v.extend(units(&order, 1, 1));
        v
    };
    shop.engine
        .ship(&staff(), order.id(), ship(all))
        .await
        .unwrap();
    // Nothing captured yet: a return with a refund is refused.
    let before = shop.snapshot().await;
    assert!(
        shop.engine
            .return_items(
                &staff(),
                order.id(),
                ret(units(&order, 1, 1), "r", ShippingRefund::Never)
            )
            .await
            .is_err()
    );
    assert_eq!(shop.snapshot().await, before);
}

async fn delivery_and_completion(backend: Backend) {
    let shop = Shop::with(
        backend,
        common::ShopOptions {
            capture: CaptureMode::Manual,
            ..Default::default()
        },
    )
    .await;
    let (order, _) = placed(&shop).await;
    let mut all = units(&order, 0, 3);
    all.extend(units(&order, 1, 1));
    let o = shop
        .engine
        .ship(&staff(), order.id(), ship(all))
        .await
        .unwrap();
    assert_eq!(
        o.status(),
        OrderStatus::Processing,
        "shipped but not yet paid"
    );
    let shipment = o.shipments()[0].id;
    let o = shop
        .engine
        .mark_delivered(&staff(), order.id(), shipment)
        .await
        .unwrap();
    assert_eq!(o.fulfillment(), FulfillmentStatus::Delivered);
    assert_eq!(
        shop.engine
            .mark_delivered(&staff(), order.id(), shipment)
            .await
            .unwrap(),
        o
    );
    assert!(
        shop.engine
            .mark_delivered(&staff(), order.id(), cartwright::id::ShipmentId::new())
            .await
            .is_err()
    );
    let o = shop.engine.capture(&staff(), order.id()).await.unwrap();
    assert_eq!(o.status(), OrderStatus::Completed);
}

async fn a_cancelled_order_cannot_ship(backend: Backend) {
    let shop = Shop::new(backend).await;
    let (order, _) = placed(&shop).await;
    shop.engine.cancel(&staff(), order.id(), "").await.unwrap();
    let before = shop.snapshot().await;
    let err = shop
        .engine
        .ship(&staff(), order.id(), ship(units(&order, 0, 1)))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::IllegalTransition { .. }), "{err}");
    assert_eq!(shop.snapshot().await, before);
}

async fn shipping_from_a_named_location(backend: Backend) {
    let shop = Shop::new(backend).await;
    let (order, a) = placed(&shop).await;
    let elsewhere = shop
        .engine
        .create_location(&Actor::System, "Store", 9)
        .await
        .unwrap();
    shop.engine
        .set_stock(&Actor::System, a, elsewhere.id(), 50)
        .await
        .unwrap();
    let before = shop.snapshot().await;
    let wrong = ship(units(&order, 0, 1)).location(Some(elsewhere.id()));
    assert!(
        shop.engine.ship(&staff(), order.id(), wrong).await.is_err(),
        "its units are held in the warehouse"
    );
    assert_eq!(shop.snapshot().await, before);
    let right = ship(units(&order, 0, 1)).location(Some(shop.warehouse));
    let o = shop.engine.ship(&staff(), order.id(), right).await.unwrap();
    assert_eq!(o.shipments()[0].stock[0].location_id, shop.warehouse);
    assert_eq!(shop.engine.stock(a).await.unwrap().on_hand, 59);
}

async fn a_full_return_refunds_shipping_as_paid_never_as_listed(backend: Backend) {
    use cartwright::pricing::{Action, Promotion, Reward};
    let shop = Shop::new(backend).await;
    // Half off shipping: 5.00 listed, 2.50 paid, 0.25 tax.
    shop.engine
        .save_promotion(
            &Actor::System,
            Promotion::new(
                "half shipping",
                Action::Shipping {
                    reward: Reward::Percent {
                        percent: rust_decimal::Decimal::from(50),
                    },
                    methods: vec![],
                },
            ),
        )
        .await
        .unwrap();
    let a = shop.product("A", "10.00", 10).await;
    let b = shop.product("B", "20.00", 10).await;
    let cart = shop.ready_cart(&[(a, 1), (b, 1)]).await;
    // B ships apart, by the same method: two charges of 2.75 each.
    let line_b = cart.lines()[1].id;
    shop.engine
        .set_shipping_group(
            &Actor::Guest,
            cart.id(),
            "second",
            &[line_b],
            Some("standard"),
        )
        .await
        .unwrap();
    let order = shop.place(cart.id(), "k").await;
    let paid: Vec<_> = order
        .pricing()
        .shipping_charges()
        .map(|c| c.total)
        .collect();
    assert_eq!(paid, [usd("2.75"), usd("2.75")]);
    let mut all = units(&order, 0, 1);
    all.extend(units(&order, 1, 1));
    shop.engine
        .ship(&staff(), order.id(), ship(all.clone()))
        .await
        .unwrap();
    let o = shop
        .engine
        .return_items(
            &staff(),
            order.id(),
            ret(all, "r", ShippingRefund::WhenAllReturned),
        )
        .await
        .unwrap();
    // Both charges as paid (5.50), not as listed (11.00).
    assert_eq!(o.returns()[0].shipping_refund, usd("5.50"));
    assert_eq!(o.payment().refunded(), order.payment().captured());
    assert_eq!(shop.payments.authorizations()[0].refunded, order.total());
}

conformance!(
    a_full_return_refunds_shipping_as_paid_never_as_listed,
    shipping_from_a_named_location,
    delivery_and_completion,
    a_cancelled_order_cannot_ship,
    shipments_take_units_out_of_stock,
    returns_refund_exactly_what_the_units_paid,
    refunds_never_exceed_what_was_captured,
);
