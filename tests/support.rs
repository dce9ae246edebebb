//! Support tools: notes on orders and customers, and finding orders.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use cartwright::note::Visibility;
use cartwright::order::{OrderQuery, OrderStatus};
use cartwright::prelude::*;
use chrono::Duration;
use common::{Backend, Shop, request};

fn staff() -> Actor {
    Actor::Staff("sue".into())
}

async fn customer_order(shop: &Shop, email: &str, key: &str) -> (Actor, cartwright::order::Order) {
    let a = shop.engine.variant_by_sku("A").await.unwrap().variant.id();
    let c = match shop.engine.login(email, "password1").await {
        Ok(c) => c,
        Err(_) => shop.customer(email).await,
    };
    let me = Actor::Customer(c.id());
    let cart = shop.engine.create_cart(&me, Currency::USD).await.unwrap();
    shop.engine.add_item(&me, cart.id(), a, 1).await.unwrap();
    shop.complete_details(&me, cart.id()).await;
    let mut req = request(cart.id(), key);
    req.actor = me.clone();
    (me.clone(), shop.engine.checkout(req).await.unwrap().order)
}

async fn order_notes_respect_visibility(backend: Backend) {
    let shop = Shop::new(backend).await;
    shop.product("A", "10.00", 50).await;
    let (me, order) = customer_order(&shop, "ann@x.io", "k1").await;
    let e = &shop.engine;
    e.add_order_note(
        &staff(),
        order.id(),
        "fraud check passed",
        Visibility::Internal,
    )
    .await
    .unwrap();
    e.add_order_note(
        &staff(),
        order.id(),
        "Your parcel leaves Monday",
        Visibility::Customer,
    )
    .await
    .unwrap();
    let mine = e
        .add_order_note(
            &me,
            order.id(),
            "Please leave at the door",
            Visibility::Customer,
        )
        .await
        .unwrap();
    assert_eq!(
        mine.notes().len(),
        2,
        "the customer never sees internal notes"
    );

    let before = shop.snapshot().await;
    assert!(matches!(
        e.add_order_note(&me, order.id(), "x", Visibility::Internal)
            .await,
        Err(Error::Forbidden)
    ));
    assert!(matches!(
        e.add_order_note(&Actor::Guest, order.id(), "x", Visibility::Customer)
            .await,
        Err(Error::Forbidden)
    ));
    let stranger = Actor::Customer(cartwright::id::CustomerId::new());
    assert!(matches!(
        e.add_order_note(&stranger, order.id(), "x", Visibility::Customer)
            .await,
        Err(Error::Forbidden)
    ));
    assert!(
        e.add_order_note(&staff(), order.id(), " ", Visibility::Internal)
            .await
            .is_err()
    );
    assert!(
        e.add_order_note(
            &staff(),
            order.id(),
            &"n".repeat(2_001),
            Visibility::Internal
        )
        .await
        .is_err()
    );
    assert_eq!(shop.snapshot().await, before);

    assert_eq!(
        e.order(&staff(), order.id()).await.unwrap().notes().len(),
        3
    );
    assert_eq!(e.order(&me, order.id()).await.unwrap().notes().len(), 2);
    // A change the customer makes must not lose the notes they cannot see.
    e.cancel(&me, order.id(), "").await.unwrap();
    assert_eq!(
        e.order(&staff(), order.id()).await.unwrap().notes().len(),
        3
    );
}

async fn customer_notes_are_staff_only(backend: Backend) {
    let shop = Shop::new(backend).await;
    let ann = shop.customer("ann@x.io").await;
    let me = Actor::Customer(ann.id());
    let e = &shop.engine;
    e.add_customer_note(
        &staff(),
        ann.id(),
        "VIP, always call first",
        Visibility::Internal,
    )
    .await
    .unwrap();
    e.add_customer_note(&staff(), ann.id(), "Welcome back!", Visibility::Customer)
        .await
        .unwrap();
    assert!(matches!(
        e.add_customer_note(&me, ann.id(), "x", Visibility::Customer)
            .await,
        Err(Error::Forbidden)
    ));
    assert_eq!(e.customer(&me, ann.id()).await.unwrap().notes().len(), 1);
    // The customer editing their address book keeps the internal note.
    e.add_address(&me, ann.id(), common::address())
        .await
        .unwrap();
    assert_eq!(
        e.customer(&staff(), ann.id()).await.unwrap().notes().len(),
        2
    );
}

async fn orders_can_be_found_by_customer_status_and_date(backend: Backend) {
    let shop = Shop::new(backend).await;
    shop.product("A", "10.00", 50).await;
    let mut ann_orders = Vec::new();
    for i in 0..5 {
        let (_, o) = customer_order(&shop, "ann@x.io", &format!("a{i}")).await;
        ann_orders.push(o.id());
        shop.clock.advance(Duration::days(1));
    }
    let (bob, bobs) = customer_order(&shop, "bob@x.io", "b0").await;
    let ann = shop.engine.login("ann@x.io", "password1").await.unwrap();
    let me = Actor::Customer(ann.id());
    shop.engine
        .cancel(&staff(), ann_orders[1], "")
        .await
        .unwrap();

    // Paging, newest first.
    let q = OrderQuery::default().limit(2);
    let page1 = shop.engine.find_orders(&me, &q).await.unwrap();
    assert_eq!(
        page1.orders.iter().map(|o| o.id()).collect::<Vec<_>>(),
        [ann_orders[4], ann_orders[3]]
    );
    let page2 = shop
        .engine
        .find_orders(&me, &(q.clone()).before(page1.next_before))
        .await
        .unwrap();
    assert_eq!(
        page2.orders.iter().map(|o| o.id()).collect::<Vec<_>>(),
        [ann_orders[2], ann_orders[1]]
    );
    let page3 = shop
        .engine
        .find_orders(&me, &(q.clone()).before(page2.next_before))
        .await
        .unwrap();
    assert_eq!(page3.orders.len(), 1);
    assert_eq!(page3.next_before, None);

    // By status, and by a date range (days 1 and 2 after the first order).
    let cancelled = OrderQuery::default()
        .status(Some(OrderStatus::Cancelled))
        .limit(10);
    let found = shop.engine.find_orders(&staff(), &cancelled).await.unwrap();
    assert_eq!(
        found.orders.iter().map(|o| o.id()).collect::<Vec<_>>(),
        [ann_orders[1]]
    );
    let first = shop
        .engine
        .order(&staff(), ann_orders[0])
        .await
        .unwrap()
        .placed_at();
    let range = OrderQuery::default()
        .placed_from(Some(first + Duration::days(1)))
        .placed_until(Some(first + Duration::days(3)))
        .limit(10);
    let found = shop.engine.find_orders(&staff(), &range).await.unwrap();
    assert_eq!(
        found.orders.iter().map(|o| o.id()).collect::<Vec<_>>(),
        [ann_orders[2], ann_orders[1]]
    );

    // Staff see everyone; a customer sees only their own; guests nothing.
    let all = shop
        .engine
        .find_orders(&staff(), &OrderQuery::default().limit(100))
        .await
        .unwrap();
    assert_eq!(all.orders.len(), 6);
    let mine = shop
        .engine
        .find_orders(&bob, &OrderQuery::default().limit(100))
        .await
        .unwrap();
    assert_eq!(
        mine.orders.iter().map(|o| o.id()).collect::<Vec<_>>(),
        [bobs.id()]
    );
    let theirs = OrderQuery::default().customer(Some(ann.id())).limit(10);
    assert!(matches!(
        shop.engine.find_orders(&bob, &theirs).await,
        Err(Error::Forbidden)
    ));
    assert!(matches!(
        shop.engine.find_orders(&Actor::Guest, &q).await,
        Err(Error::Forbidden)
    ));
    assert!(
        shop.engine
            .find_orders(&staff(), &OrderQuery::default().limit(0))
            .await
            .is_err()
    );
    assert!(
        shop.engine
            .find_orders(&staff(), &OrderQuery::default().limit(501))
            .await
            .is_err()
    );
}

conformance!(
    order_notes_respect_visibility,
    customer_notes_are_staff_only,
    orders_can_be_found_by_customer_status_and_date,
);
