//! The maintenance call: recovery and pruning on a timer, on both stores.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::time::Duration;

use cartwright::payment::{Fault, Operation, PaymentStatus};
use cartwright::prelude::*;
use common::{Backend, Shop, request};

async fn maintenance_prunes_old_records_and_delivered_events(backend: Backend) {
    let shop = Shop::new(backend).await;
    let a = shop.product("A", "10.00", 10).await;
    let cart = shop.ready_cart(&[(a, 1)]).await;
    let order = shop.place(cart.id(), "k").await;
    let system = Actor::System;
    // Three admin changes (location, product, stock) with the typed
    // events of two (product created, stock changed), the order placed
    // and its capture. On PostgreSQL the relay may show them a moment
    // late.
    let events = common::pending(&shop.engine, "mailer", 7).await;
    assert_eq!(events.len(), 7);

    // Nothing is old enough yet.
    let report = shop.engine.run_maintenance(&system).await.unwrap();
    assert_eq!((report.pruned_checkouts, report.pruned_events), (0, 0));

    shop.clock.advance(chrono::Duration::days(31));
    // A consumer that has not acknowledged keeps every event.
    let report = shop.engine.run_maintenance(&system).await.unwrap();
    assert_eq!(report.pruned_checkouts, 1);
    assert_eq!(report.pruned_events, 0);
    let last = events.last().unwrap().id;
    shop.engine
        .ack_events(&system, "mailer", last)
        .await
        .unwrap();
    let report = shop.engine.run_maintenance(&system).await.unwrap();
    assert_eq!(report.pruned_events, events.len() as u64);
    assert!(
        shop.engine
            .pending_events(&system, "mailer", 10)
            .await
            .unwrap()
            .is_empty()
    );
    // The order itself is kept.
    assert_eq!(
        shop.engine.order(&system, order.id()).await.unwrap().id(),
        order.id()
    );
    // Only staff and the system run it.
    assert!(matches!(
        shop.engine.run_maintenance(&Actor::Guest).await,
        Err(Error::Forbidden)
    ));
}

async fn the_spawned_maintenance_finishes_what_a_crash_left(backend: Backend) {
    let shop = Shop::new(backend).await;
    let a = shop.product("A", "10.00", 10).await;
    let cart = shop.ready_cart(&[(a, 1)]).await;
    shop.payments.inject(Operation::Capture, Fault::Unavailable);
    let outcome = shop.engine.checkout(request(cart.id(), "k")).await.unwrap();
    assert_eq!(outcome.payment, PaymentOutcome::CapturePending);
    shop.clock.advance(chrono::Duration::minutes(5));
    let task = tokio::spawn(shop.engine.clone().maintenance(Duration::from_millis(100)));
    let mut captured = false;
    for _ in 0..100 {
        let o = shop
            .engine
            .order(&Actor::System, outcome.order.id())
            .await
            .unwrap();
        if o.payment().status() == PaymentStatus::Captured {
            captured = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    task.abort();
    assert!(captured, "maintenance captured the order");
    assert_eq!(
        shop.payments.authorizations()[0].captured,
        outcome.order.total()
    );
}

conformance!(
    maintenance_prunes_old_records_and_delivered_events,
    the_spawned_maintenance_finishes_what_a_crash_left,
);
