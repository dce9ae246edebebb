//! Payment provider events (webhooks): applied once per event id, in any
//! order, and never counting a capture twice — also when an event races the
//! shop's own capture call. On both stores.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use cartwright::order::OrderChangeKind;
use cartwright::payment::{Operation, PaymentStatus, ProviderEvent, ProviderEventKind};
use cartwright::prelude::*;
use common::{Backend, Shop, ShopOptions, usd};

fn event(id: &str, reference: &str, kind: ProviderEventKind) -> ProviderEvent {
    ProviderEvent::new(id, reference, kind)
}

async fn manual(backend: Backend) -> Shop {
    Shop::with(
        backend,
        ShopOptions {
            capture: CaptureMode::Manual,
            ..ShopOptions::default()
        },
    )
    .await
}

async fn placed(shop: &Shop) -> cartwright::order::Order {
    let a = shop.product("A", "10.00", 5).await;
    let cart = shop.ready_cart(&[(a, 1)]).await;
    shop.place(cart.id(), "k").await
}

async fn events_apply_once_and_in_any_order(backend: Backend) {
    let shop = manual(backend).await;
    let order = placed(&shop).await;
    let reference = order.payment().reference().to_owned();
    let e = &shop.engine;

    // The later event (everything captured) arrives first.
    let all = event(
        "evt_2",
        &reference,
        ProviderEventKind::Captured {
            captured_total: usd("16.50"),
        },
    );
    let part = event(
        "evt_1",
        &reference,
        ProviderEventKind::Captured {
            captured_total: usd("6.00"),
        },
    );
    let o = e
        .apply_provider_event(&Actor::Provider("test".into()), &all)
        .await
        .unwrap()
        .into_order()
        .unwrap();
    assert_eq!(o.payment().captured(), usd("16.50"));
    let o2 = e
        .apply_provider_event(&Actor::Provider("test".into()), &part)
        .await
        .unwrap()
        .into_order()
        .unwrap();
    assert_eq!(
        o2.payment().captured(),
        usd("16.50"),
        "an older total changes nothing"
    );
    // The same event again changes nothing at all.
    let before = shop.snapshot().await;
    let o3 = e
        .apply_provider_event(&Actor::Provider("test".into()), &all)
        .await
        .unwrap()
        .into_order()
        .unwrap();
    assert_eq!(o3, o2);
    assert_eq!(shop.snapshot().await, before);

    // A refund made in the gateway's dashboard, then a dispute.
    let o = e
        .apply_provider_event(
            &Actor::Provider("test".into()),
            &event(
                "evt_3",
                &reference,
                ProviderEventKind::Refunded {
                    refunded_total: usd("5.00"),
                },
            ),
        )
        .await
        .unwrap()
        .into_order()
        .unwrap();
    assert_eq!(o.payment().refunded(), usd("5.00"));
    assert_eq!(o.payment().status(), PaymentStatus::PartiallyRefunded);
    let o = e
        .apply_provider_event(
            &Actor::Provider("test".into()),
            &event(
                "evt_4",
                &reference,
                ProviderEventKind::Disputed {
                    amount: usd("11.50"),
                    reason: "fraudulent".into(),
                },
            ),
        )
        .await
        .unwrap()
        .into_order()
        .unwrap();
    let last = o.history().last().unwrap();
    assert!(
        matches!(last.change, OrderChangeKind::PaymentDisputed { amount } if amount == usd("11.50"))
    );
    assert_eq!(last.actor, Actor::Provider("test".into()));
    assert_eq!(last.cause, "fraudulent");
}

async fn unknown_or_malformed_events_change_nothing(backend: Backend) {
    let shop = manual(backend).await;
    let order = placed(&shop).await;
    let before = shop.snapshot().await;
    let e = &shop.engine;
    let err = e
        .apply_provider_event(
            &Actor::Provider("test".into()),
            &event("evt_x", "no_such_auth", ProviderEventKind::Authorized),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }));
    assert!(
        e.apply_provider_event(
            &Actor::Provider("test".into()),
            &event(
                "",
                order.payment().reference(),
                ProviderEventKind::Authorized
            )
        )
        .await
        .is_err()
    );
    // More than was authorized cannot have been captured.
    let err = e
        .apply_provider_event(
            &Actor::Provider("test".into()),
            &event(
                "evt_y",
                order.payment().reference(),
                ProviderEventKind::Captured {
                    captured_total: usd("99.00"),
                },
            ),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }), "{err}");
    assert_eq!(shop.snapshot().await, before);
}

async fn a_failed_authorization_is_recorded(backend: Backend) {
    let shop = manual(backend).await;
    let order = placed(&shop).await;
    let o = shop
        .engine
        .apply_provider_event(
            &Actor::Provider("test".into()),
            &event(
                "evt_f",
                order.payment().reference(),
                ProviderEventKind::Failed {
                    reason: "expired".into(),
                },
            ),
        )
        .await
        .unwrap()
        .into_order()
        .unwrap();
    assert_eq!(o.payment().status(), PaymentStatus::Failed);
    assert!(
        shop.engine
            .capture(&Actor::System, order.id())
            .await
            .is_err()
    );
}

async fn a_webhook_racing_the_shops_capture_ends_in_one_capture(backend: Backend) {
    // The gateway captures, then the engine waits for its answer while the
    // test delivers a webhook.
    let (shop, racing) = Shop::pausing(backend, Operation::Capture, CaptureMode::Manual).await;
    let order = placed(&shop).await;
    let reference = order.payment().reference().to_owned();

    let engine = shop.engine.clone();
    let id = order.id();
    let capture = tokio::spawn(async move { engine.capture(&Actor::System, id).await });
    racing.reached.notified().await;
    // Another provider cannot report on this payment.
    assert!(matches!(
        shop.engine
            .apply_provider_event(
                &Actor::Provider("test".into()),
                &event("evt_x", &reference, ProviderEventKind::Authorized)
            )
            .await,
        Err(Error::Forbidden)
    ));
    // The gateway's webhook lands before the shop records its own capture.
    let hooked = shop
        .engine
        .apply_provider_event(
            &Actor::Provider("pausing".into()),
            &event(
                "evt_c",
                &reference,
                ProviderEventKind::Captured {
                    captured_total: usd("16.50"),
                },
            ),
        )
        .await
        .unwrap()
        .into_order()
        .unwrap();
    assert_eq!(hooked.payment().captured(), usd("16.50"));
    racing.resume.notify_one();
    let o = capture.await.unwrap().unwrap();

    assert_eq!(o.payment().captured(), usd("16.50"), "counted once");
    assert_eq!(o.payment().status(), PaymentStatus::Captured);
    assert_eq!(
        shop.payments.authorizations()[0].captured,
        usd("16.50"),
        "captured once at the gateway"
    );
    let captures = o
        .history()
        .iter()
        .filter(|h| matches!(h.change, OrderChangeKind::PaymentCaptured { .. }))
        .count();
    assert_eq!(captures, 1);
    // Capturing again is still a no-op.
    assert_eq!(shop.engine.capture(&Actor::System, id).await.unwrap(), o);
}

conformance!(
    events_apply_once_and_in_any_order,
    unknown_or_malformed_events_change_nothing,
    a_failed_authorization_is_recorded,
    a_webhook_racing_the_shops_capture_ends_in_one_capture,
);
