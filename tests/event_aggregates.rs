//! Every event names its aggregate and its place among that aggregate's
//! events (1, 2, 3, … with no gap, however many commands race), the same
//! on both stores; and reads as a CloudEvents 1.0 envelope.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::HashMap;

use cartwright::event::{DEFAULT_EVENT_SOURCE, EventKind, every_kind};
use cartwright::prelude::*;
use common::{Backend, Shop};

/// At least `n` events for `consumer` (PostgreSQL hands out an event once
/// every transaction older than it has ended, which other tests running on
/// the same server can delay a moment).
async fn all_events(shop: &Shop, consumer: &str, n: usize) -> Vec<cartwright::store::Event> {
    let mut out = Vec::new();
    for _ in 0..400 {
        let page = shop
            .engine
            .pending_events(&Actor::System, consumer, 500)
            .await
            .unwrap();
        if let Some(last) = page.last().map(|e| e.id) {
            out.extend(page);
            shop.engine
                .ack_events(&Actor::System, consumer, last)
                .await
                .unwrap();
        } else if out.len() >= n {
            return out;
        } else {
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    }
    panic!("only {} of {n} events arrived", out.len());
}

/// Each event names the aggregate its kind names, and each aggregate's
/// versions are exactly 1..=n. (Delivery follows commit order by the
/// writing transaction's id; a consumer that keeps order per aggregate
/// follows `version`, which is the order the aggregate's writers
/// committed in.)
fn versions_are_gapless(events: &[cartwright::store::Event]) {
    let mut seen: HashMap<&str, Vec<u64>> = HashMap::new();
    for e in events {
        assert_eq!(e.aggregate, e.kind.aggregate(), "{e:?}");
        seen.entry(e.aggregate.as_str())
            .or_default()
            .push(e.version);
    }
    for (aggregate, mut versions) in seen {
        versions.sort_unstable();
        let expected: Vec<u64> = (1..=versions.len() as u64).collect();
        assert_eq!(versions, expected, "{aggregate}");
    }
}

async fn every_kind_names_its_aggregate_on_both_stores(backend: Backend) {
    let shop = Shop::new(backend).await;
    let store = shop.engine.store().clone();
    let kinds = every_kind();
    store
        .record_events(kinds.clone(), chrono::Utc::now())
        .await
        .unwrap();
    // Twice: the second round numbers every aggregate on.
    store
        .record_events(kinds.clone(), chrono::Utc::now())
        .await
        .unwrap();
    let events = all_events(&shop, "aggregates", kinds.len() * 2).await;
    let ours: Vec<_> = events
        .iter()
        .filter(|e| kinds.contains(&e.kind))
        .cloned()
        .collect();
    assert_eq!(ours.len(), kinds.len() * 2);
    versions_are_gapless(&events);
    let mut order = ours
        .iter()
        .filter(|e| {
            matches!(
                e.kind,
                EventKind::OrderPlaced { .. } | EventKind::OrderCancelled { .. }
            )
        })
        .map(|e| e.version)
        .collect::<Vec<_>>();
    order.sort_unstable();
    // The order's kinds, twice: placed is first and cancelled last of each
    // round.
    let placed = kinds
        .iter()
        .find(|k| matches!(k, EventKind::OrderPlaced { .. }))
        .unwrap()
        .aggregate();
    let n = kinds.iter().filter(|k| k.aggregate() == placed).count() as u64;
    assert!(n >= 11, "every order kind is in the sample");
    assert_eq!(order, [1, n, n + 1, 2 * n]);
}

async fn racing_commands_number_one_aggregate_without_gaps(backend: Backend) {
    let shop = Shop::new(backend).await;
    let order_id = cartwright::id::OrderId::new();
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let store = shop.engine.store().clone();
            tokio::spawn(async move {
                let kind = if i % 2 == 0 {
                    EventKind::PaymentVoided { order_id }
                } else {
                    EventKind::OrderCancelled { order_id }
                };
                store.record_events(vec![kind], chrono::Utc::now()).await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let events = all_events(&shop, "race", 24).await;
    versions_are_gapless(&events);
    let mut versions: Vec<u64> = events
        .iter()
        .filter(|e| e.aggregate == format!("order:{order_id}"))
        .map(|e| e.version)
        .collect();
    versions.sort_unstable();
    assert_eq!(versions, (1..=24).collect::<Vec<u64>>());
}

async fn a_checkouts_events_are_its_orders_in_order(backend: Backend) {
    let shop = Shop::new(backend).await;
    let v = shop.product("EV-1", "10.00", 5).await;
    let cart = shop.ready_cart(&[(v, 1)]).await;
    let order = shop.place(cart.id(), "k").await;
    shop.engine
        .cancel(&Actor::Staff("wes".into()), order.id(), "changed mind")
        .await
        .unwrap();
    // Placed, captured, cancelled (and the void or refund): wait for them.
    let mut events = Vec::new();
    let subject = format!("order:{}", order.id());
    for _ in 0..200 {
        events.extend(all_events(&shop, "orders", 0).await);
        if events.iter().filter(|e| e.aggregate == subject).count() >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    versions_are_gapless(&events);
    let mut of_order: Vec<(u64, &str)> = events
        .iter()
        .filter(|e| e.aggregate == format!("order:{}", order.id()))
        .map(|e| (e.version, e.kind.type_name()))
        .collect();
    of_order.sort_unstable();
    assert_eq!(of_order.first(), Some(&(1, "cartwright.order.placed.v1")));
    assert!(of_order.len() >= 3, "{of_order:?}");
    // As a CloudEvents 1.0 envelope.
    let placed = events
        .iter()
        .find(|e| matches!(e.kind, EventKind::OrderPlaced { .. }))
        .unwrap();
    let ce = placed.cloud_event(DEFAULT_EVENT_SOURCE);
    assert_eq!(ce["specversion"], "1.0");
    assert_eq!(ce["id"], placed.id.to_string());
    assert_eq!(ce["source"], "cartwright");
    assert_eq!(ce["type"], "cartwright.order.placed.v1");
    assert_eq!(ce["subject"], format!("order:{}", order.id()));
    assert_eq!(ce["aggregateversion"], 1);
    assert_eq!(ce["datacontenttype"], "application/json");
    assert_eq!(ce["data"]["order_id"], order.id().to_string());
    assert!(
        chrono::DateTime::parse_from_rfc3339(ce["time"].as_str().unwrap()).is_ok(),
        "{ce}"
    );
}

/// Payments and balances are events written with the change: an order's
/// authorization right after its placing (with the channel in the
/// envelope), a waiting 3-D Secure payment on its cart, a failure the
/// provider reports, each gift card entry with the balance after it.
async fn payments_and_balances_are_events(backend: Backend) {
    use cartwright::payment::{ProviderEvent, ProviderEventKind};
    let shop = Shop::with(
        backend,
        common::ShopOptions {
            capture: CaptureMode::Manual,
            ..common::ShopOptions::default()
        },
    )
    .await;
    let staff = Actor::Staff("wes".into());
    let v = shop.product("EV-2", "10.00", 5).await;
    let cart = shop.ready_cart(&[(v, 1)]).await;
    let order = shop.place(cart.id(), "paid").await;
    let waiting = shop.ready_cart(&[(v, 1)]).await;
    let step = shop
        .engine
        .start_checkout(cartwright::CheckoutRequest::new(
            waiting.id(),
            IdempotencyKey::new("waits").unwrap(),
            "tok_3ds",
            Actor::Guest,
        ))
        .await
        .unwrap();
    assert!(matches!(
        step,
        cartwright::checkout::CheckoutStep::AwaitingPayment(_)
    ));
    let failed = ProviderEvent::new(
        "evt_failed",
        order.payment().reference().to_owned(),
        ProviderEventKind::Failed {
            reason: "the hold expired".into(),
        },
    );
    shop.engine
        .apply_provider_event(&Actor::Provider("test".into()), &failed)
        .await
        .unwrap();
    let card = shop
        .engine
        .issue_gift_card(
            &staff,
            cartwright::giftcards::NewGiftCard::new(common::usd("25.00")),
            &IdempotencyKey::new("card").unwrap(),
        )
        .await
        .unwrap()
        .card;
    // The last command's event, the card's, may show a moment late on
    // PostgreSQL (an older transaction elsewhere still running).
    let mut events = Vec::new();
    let card_aggregate = format!("gift_card:{}", card.id());
    for _ in 0..400 {
        events.extend(all_events(&shop, "payments", 0).await);
        if events.iter().any(|e| e.aggregate == card_aggregate) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    versions_are_gapless(&events);
    let of = |aggregate: String| -> Vec<&EventKind> {
        let mut mine: Vec<&cartwright::store::Event> =
            events.iter().filter(|e| e.aggregate == aggregate).collect();
        mine.sort_by_key(|e| e.version);
        mine.into_iter().map(|e| &e.kind).collect()
    };
    let of_order = of(format!("order:{}", order.id()));
    assert!(
        matches!(of_order[..], [
            EventKind::OrderPlaced { .. },
            EventKind::PaymentAuthorized { amount, .. },
            EventKind::PaymentFailed { reason, .. },
        ] if *amount == order.total() && reason == "the hold expired"),
        "{of_order:?}"
    );
    assert!(
        matches!(
            of(format!("cart:{}", waiting.id()))[..],
            [EventKind::PaymentActionRequired { amount, .. }] if *amount == order.total()
        ),
        "{events:?}"
    );
    assert!(
        matches!(
            of(format!("gift_card:{}", card.id()))[..],
            [EventKind::BalanceChanged { amount, balance, entry: cartwright::giftcard::EntryKind::Issue, .. }]
                if *amount == common::usd("25.00") && *balance == common::usd("25.00")
        ),
        "{events:?}"
    );
}

/// An order placed in a sales channel names it in its envelope.
#[test]
fn an_event_that_names_a_channel_carries_it_in_the_envelope() {
    let channel = cartwright::id::ChannelId::new();
    let event = cartwright::event::Event::new(
        cartwright::id::EventId::new(),
        1,
        chrono::Utc::now(),
        EventKind::OrderPlaced {
            order_id: cartwright::id::OrderId::new(),
            total: common::usd("1.00"),
            channel_id: Some(channel),
        },
        1,
    );
    assert_eq!(
        event.cloud_event(DEFAULT_EVENT_SOURCE)["channel"],
        channel.to_string()
    );
}

conformance!(
    payments_and_balances_are_events,
    every_kind_names_its_aggregate_on_both_stores,
    racing_commands_number_one_aggregate_without_gaps,
    a_checkouts_events_are_its_orders_in_order,
);

/// The published list of type names is exactly the names the kinds give,
/// so a webhook subscription can name every type and nothing else.
#[test]
fn the_published_type_names_are_every_kinds_names() {
    let mut given: Vec<&str> = every_kind().iter().map(EventKind::type_name).collect();
    given.sort_unstable();
    given.dedup();
    let mut published = EventKind::TYPE_NAMES.to_vec();
    published.sort_unstable();
    assert_eq!(given, published);
}
