//! Carriers, on both stores: live rates offered beside the table rates and
//! cached (an unchanged cart asks nothing), a carrier that is down refused
//! or fallen back from; labels bought exactly once by the money-path
//! protocol (lost answers, refusals, two engines), voided; tracking
//! reports verified, applied once, a delivery recorded.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::Arc;

use cartwright::clock::Clock;
use cartwright::fulfillment::ShipmentRequest;
use cartwright::order::{LabelState, Order};
use cartwright::prelude::*;
use cartwright::shipping::{
    CarrierCall, CarrierFault, TestCarrier, TrackingEvent, TrackingStatus, verify_tracking,
};
use cartwright::webhook::WebhookSecret;
use common::{Backend, Shop, ShopOptions, request, units, usd};

fn staff() -> Actor {
    Actor::Staff("ship".into())
}

async fn shop(backend: Backend, fallback: bool) -> (Shop, Arc<TestCarrier>) {
    let carrier = Arc::new(TestCarrier::new());
    let options = ShopOptions {
        carriers: vec![carrier.clone()],
        carrier_fallback: fallback,
        config: Some(
            cartwright::EngineConfig::default()
                .carrier_timeout(std::time::Duration::from_millis(100)),
        ),
        ..ShopOptions::default()
    };
    (Shop::with(backend, options).await, carrier)
}

/// A guest cart of `qty` × a 100 g product at 10.00, shipped by `method`.
async fn cart(shop: &Shop, qty: u32, method: &str) -> cartwright::id::CartId {
    let a = shop.product("A", "10.00", 50).await;
    let cart = shop.ready_cart(&[(a, qty)]).await;
    shop.engine
        .set_shipping_method(&Actor::Guest, cart.id(), method)
        .await
        .unwrap();
    cart.id()
}

async fn live_rates_are_offered_and_cached(backend: Backend) {
    let (shop, carrier) = shop(backend, false).await;
    let id = cart(&shop, 12, "test:ground").await;
    let p = shop.engine.price_cart(&Actor::Guest, id).await.unwrap();
    let codes: Vec<&str> = p.shipping_options.iter().map(|r| r.code.as_str()).collect();
    assert_eq!(codes, vec!["standard", "test:ground", "test:express"]);
    // 1.2 kg: 4.00 + 2 × 1.00, taxed 10 %.
    assert_eq!(p.shipping.as_ref().unwrap().total, usd("6.60"));
    assert_eq!(carrier.rate_calls(), 1);
    shop.engine.price_cart(&Actor::Guest, id).await.unwrap();
    assert_eq!(carrier.rate_calls(), 1, "an unchanged cart asks nothing");
    // More weight is a new parcel: asked once more.
    let line = p.lines[0].line_id;
    shop.engine
        .set_quantity(&Actor::Guest, id, line, 25)
        .await
        .unwrap();
    let p = shop.engine.price_cart(&Actor::Guest, id).await.unwrap();
    assert_eq!(p.shipping.as_ref().unwrap().amount, usd("7.00"));
    assert_eq!(carrier.rate_calls(), 2);
    let order = shop.engine.checkout(request(id, "k")).await.unwrap().order;
    assert_eq!(
        order.pricing().shipping.as_ref().unwrap().code,
        "test:ground"
    );
    assert_eq!(carrier.rate_calls(), 2, "checkout priced from the cache");
}

async fn rates_follow_the_parcel_size_and_sizes_are_checked(backend: Backend) {
    let (shop, _) = shop(backend, false).await;
    let pole = shop
        .product_with(
            "POLE",
            NewVariant::shipped("")
                .prices(vec![usd("30.00")])
                .weight_grams(900)
                .dimensions_mm(Some([80, 1_200, 80]))
                .status(Status::Active),
        )
        .await;
    let stored = shop.engine.product(pole.id()).await.unwrap();
    assert_eq!(stored.variants()[0].dimensions_mm(), Some([80, 1_200, 80]));
    let pole = pole.variants()[0].id();
    shop.engine
        .set_stock(&Actor::System, pole, shop.warehouse, 5)
        .await
        .unwrap();
    let cart = shop.ready_cart(&[(pole, 1)]).await;
    shop.engine
        .set_shipping_method(&Actor::Guest, cart.id(), "test:ground")
        .await
        .unwrap();
    let p = shop
        .engine
        .price_cart(&Actor::Guest, cart.id())
        .await
        .unwrap();
    // 4.00 + 1.00 for the kilogram begun + 10.00 for a side over a metre.
    assert_eq!(p.shipping.as_ref().unwrap().amount, usd("15.00"));
    // Sizes and weights out of bounds are refused, naming the field.
    let before = shop.snapshot().await;
    for (variant, what) in [
        (
            NewVariant::shipped("Z1").dimensions_mm(Some([0, 10, 10])),
            "zero",
        ),
        (
            NewVariant::shipped("Z2").dimensions_mm(Some([10, 10_001, 10])),
            "long",
        ),
        (NewVariant::shipped("Z3").weight_grams(1_000_001), "heavy"),
    ] {
        let e = shop
            .engine
            .create_product(
                &Actor::System,
                NewProduct::new("Odd").variants(vec![variant]),
            )
            .await;
        assert!(
            matches!(e, Err(Error::Invalid { .. } | Error::LimitExceeded { .. })),
            "{what}: {e:?}"
        );
    }
    assert!(before == shop.snapshot().await);
}

async fn a_carrier_down_refuses_or_falls_back(backend: Backend) {
    for fallback in [false, true] {
        let (shop, carrier) = shop(backend, fallback).await;
        let live = cart(&shop, 1, "test:ground").await;
        let table = shop
            .ready_cart(&[(shop.product("B", "5.00", 5).await, 1)])
            .await;
        carrier.set_latency(std::time::Duration::from_millis(500));
        let before = shop.snapshot().await;
        let e = shop.engine.checkout(request(live, "live")).await;
        if fallback {
            // Only table rates: the carrier's method is not offered.
            assert!(matches!(e, Err(Error::ShippingUnavailable(_))), "{e:?}");
            let order = shop
                .engine
                .checkout(request(table.id(), "table"))
                .await
                .unwrap()
                .order;
            assert!(order.pricing().shipping_fallback.is_some());
        } else {
            assert!(
                matches!(
                    &e,
                    Err(Error::ServiceUnavailable {
                        service: "carrier",
                        ..
                    })
                ),
                "{e:?}"
            );
            assert!(
                before == shop.snapshot().await,
                "nothing reserved or charged"
            );
            let e = shop.engine.checkout(request(table.id(), "table")).await;
            assert!(matches!(e, Err(Error::ServiceUnavailable { .. })), "{e:?}");
        }
    }
}

async fn shipped(shop: &Shop) -> (Order, cartwright::id::ShipmentId) {
    let id = cart(shop, 2, "test:ground").await;
    let order = shop.place(id, "k").await;
    let o = shop
        .engine
        .ship(
            &staff(),
            order.id(),
            ShipmentRequest::new(units(&order, 0, 2)).carrier("test"),
        )
        .await
        .unwrap();
    let shipment = o.shipments()[0].id;
    (o, shipment)
}

async fn a_label_is_bought_once(backend: Backend) {
    let (shop, carrier) = shop(backend, false).await;
    let (order, shipment) = shipped(&shop).await;
    let o = shop
        .engine
        .purchase_label(&staff(), order.id(), shipment, "test", "test:ground")
        .await
        .unwrap();
    let s = &o.shipments()[0];
    let label = s.label.as_ref().unwrap();
    assert_eq!(label.state, LabelState::Purchased);
    let bought = label.label.as_ref().unwrap();
    assert_eq!(s.tracking_number, bought.tracking_number);
    assert_eq!(s.carrier, "test");
    assert_eq!(bought.cost, usd("5.00"));
    // Again: nothing more bought.
    shop.engine
        .purchase_label(&staff(), order.id(), shipment, "test", "test:ground")
        .await
        .unwrap();
    assert_eq!(carrier.labels().len(), 1);
    let sold = carrier.labels().into_values().next().unwrap();
    assert_eq!(
        sold.request.reference,
        format!("{}:{}", order.id(), shipment)
    );
    assert_eq!(sold.request.weight_grams, 200);
    // Customers may not buy labels; unknown carriers are refused.
    let e = shop
        .engine
        .purchase_label(&Actor::Guest, order.id(), shipment, "test", "test:ground")
        .await;
    assert!(matches!(e, Err(Error::Forbidden)), "{e:?}");
    let e = shop
        .engine
        .purchase_label(&staff(), order.id(), shipment, "nope", "x")
        .await;
    assert!(matches!(e, Err(Error::Invalid { .. })), "{e:?}");
    // Voided: the tracking number goes; a new label may be bought.
    let o = shop
        .engine
        .void_label(&staff(), order.id(), shipment)
        .await
        .unwrap();
    assert_eq!(
        o.shipments()[0].label.as_ref().unwrap().state,
        LabelState::Voided
    );
    assert!(o.shipments()[0].tracking_number.is_empty());
    assert!(carrier.labels().values().all(|l| l.voided));
    let o = shop
        .engine
        .purchase_label(&staff(), order.id(), shipment, "test", "test:express")
        .await
        .unwrap();
    let label = o.shipments()[0].label.as_ref().unwrap();
    assert_eq!((label.state, label.attempt), (LabelState::Purchased, 2));
    assert_eq!(carrier.labels().len(), 2);
}

async fn a_lost_label_answer_is_finished_once(backend: Backend) {
    let (shop, carrier) = shop(backend, false).await;
    let (order, shipment) = shipped(&shop).await;
    for _ in 0..3 {
        carrier.inject(CarrierCall::PurchaseLabel, CarrierFault::LostAnswer);
    }
    let e = shop
        .engine
        .purchase_label(&staff(), order.id(), shipment, "test", "test:ground")
        .await;
    assert!(matches!(e, Err(Error::ServiceUnavailable { .. })), "{e:?}");
    let o = shop.engine.order(&staff(), order.id()).await.unwrap();
    assert_eq!(
        o.shipments()[0].label.as_ref().unwrap().state,
        LabelState::Purchasing
    );
    assert!(o.has_pending_work());
    assert_eq!(carrier.labels().len(), 1, "the carrier sold it");
    carrier.clear_faults();
    let second = shop.second_engine().await;
    let (a, b) = tokio::join!(shop.engine.recover(), second.recover());
    a.unwrap();
    b.unwrap();
    let o = shop.engine.order(&staff(), order.id()).await.unwrap();
    let label = o.shipments()[0].label.as_ref().unwrap();
    assert_eq!(label.state, LabelState::Purchased);
    assert_eq!(carrier.labels().len(), 1, "one label, however often asked");
    assert_eq!(
        label.label.as_ref().unwrap().id,
        carrier.labels().into_values().next().unwrap().label.id
    );
    assert!(!o.has_pending_work());
}

async fn a_refused_label_is_recorded_and_may_be_bought_again(backend: Backend) {
    let (shop, carrier) = shop(backend, false).await;
    let (order, shipment) = shipped(&shop).await;
    carrier.inject(
        CarrierCall::PurchaseLabel,
        CarrierFault::Refuse("address not found".into()),
    );
    let e = shop
        .engine
        .purchase_label(&staff(), order.id(), shipment, "test", "test:ground")
        .await;
    assert!(matches!(e, Err(Error::Invalid { .. })), "{e:?}");
    let o = shop.engine.order(&staff(), order.id()).await.unwrap();
    let label = o.shipments()[0].label.as_ref().unwrap();
    assert_eq!(label.state, LabelState::Refused);
    assert!(label.error.contains("address not found"), "{}", label.error);
    assert!(!o.has_pending_work());
    let o = shop
        .engine
        .purchase_label(&staff(), order.id(), shipment, "test", "test:ground")
        .await
        .unwrap();
    assert_eq!(
        o.shipments()[0].label.as_ref().unwrap().state,
        LabelState::Purchased
    );
}

async fn tracking_reports_are_applied_once(backend: Backend) {
    let (shop, _) = shop(backend, false).await;
    let (order, shipment) = shipped(&shop).await;
    shop.engine
        .purchase_label(&staff(), order.id(), shipment, "test", "test:ground")
        .await
        .unwrap();
    let carrier = Actor::Provider("test".into());
    let at = shop.clock.now();
    let report = |status, minutes: i64| {
        TrackingEvent::new(
            format!("{}:{}", order.id(), shipment),
            status,
            at + chrono::Duration::minutes(minutes),
        )
        .detail("Memphis hub")
    };
    // Signed by the carrier, checked, applied.
    let secret = WebhookSecret::new("whsec_carrier_secret_0123456789abcd").unwrap();
    let body = serde_json::to_vec(&report(TrackingStatus::InTransit, 1)).unwrap();
    let header = cartwright::webhook::sign(&secret, at.timestamp(), &body);
    let event = verify_tracking(&secret, &header, &body, at, chrono::Duration::minutes(5)).unwrap();
    let o = shop
        .engine
        .apply_tracking_event(&carrier, &event)
        .await
        .unwrap();
    assert_eq!(o.shipments()[0].tracking.len(), 1);
    // A forged body is refused before it is read.
    let forged = serde_json::to_vec(&report(TrackingStatus::Delivered, 1)).unwrap();
    assert!(verify_tracking(&secret, &header, &forged, at, chrono::Duration::minutes(5)).is_err());
    // The same report again changes nothing; a delivery is recorded once.
    let again = shop
        .engine
        .apply_tracking_event(&carrier, &event)
        .await
        .unwrap();
    assert_eq!(again.version(), o.version());
    let o = shop
        .engine
        .apply_tracking_event(&carrier, &report(TrackingStatus::Delivered, 60))
        .await
        .unwrap();
    assert!(o.shipments()[0].delivered_at.is_some());
    assert_eq!(o.shipments()[0].tracking.len(), 2);
    // Customers, guests and staff do not report for carriers; references
    // must name an order and a shipment of it.
    for who in [Actor::Guest, staff()] {
        let e = shop.engine.apply_tracking_event(&who, &event).await;
        assert!(matches!(e, Err(Error::Forbidden)), "{e:?}");
    }
    // A carrier reports on its own labels only.
    let e = shop
        .engine
        .apply_tracking_event(
            &Actor::Provider("other".into()),
            &report(TrackingStatus::Exception, 90),
        )
        .await;
    assert!(matches!(e, Err(Error::Forbidden)), "{e:?}");
    let mut bad = report(TrackingStatus::InTransit, 2);
    bad.reference = "not-a-reference".into();
    let e = shop.engine.apply_tracking_event(&carrier, &bad).await;
    assert!(matches!(e, Err(Error::Invalid { .. })), "{e:?}");
    let mut other = report(TrackingStatus::InTransit, 2);
    other.reference = format!("{}:{}", order.id(), cartwright::id::ShipmentId::new());
    let e = shop.engine.apply_tracking_event(&carrier, &other).await;
    assert!(matches!(e, Err(Error::NotFound { .. })), "{e:?}");
}

/// A carrier whose code clashes with the shop's own `standard`, or that
/// answers one code twice.
struct Clashing(bool);

#[async_trait::async_trait]
impl cartwright::shipping::Carrier for Clashing {
    fn name(&self) -> &str {
        "clash"
    }
    async fn rates(
        &self,
        r: &cartwright::shipping::RateRequest,
    ) -> cartwright::Result<Vec<cartwright::shipping::ShippingRate>> {
        let rate = |code: &str| {
            cartwright::shipping::ShippingRate::new(
                code,
                "Clash",
                Money::from_minor(100, r.currency),
            )
        };
        Ok(if self.0 {
            vec![rate("standard")]
        } else {
            vec![rate("clash:x"), rate("clash:x")]
        })
    }
    async fn purchase_label(
        &self,
        _: &cartwright::shipping::LabelRequest,
    ) -> cartwright::Result<cartwright::shipping::Label> {
        Err(Error::invalid("carrier", "no labels"))
    }
    async fn void_label(&self, _: &str, _: &str) -> cartwright::Result<()> {
        Ok(())
    }
}

async fn ambiguous_rate_codes_are_refused(backend: Backend) {
    for with_table in [true, false] {
        let options = ShopOptions {
            carriers: vec![Arc::new(Clashing(with_table))],
            ..ShopOptions::default()
        };
        let shop = Shop::with(backend, options).await;
        let a = shop.product("A", "10.00", 5).await;
        let cart = shop.ready_cart(&[(a, 1)]).await;
        let e = shop.engine.price_cart(&Actor::Guest, cart.id()).await;
        assert!(
            matches!(
                &e,
                Err(Error::Invalid {
                    field: "carrier",
                    ..
                })
            ),
            "{with_table}: {e:?}"
        );
    }
}

conformance!(
    ambiguous_rate_codes_are_refused,
    live_rates_are_offered_and_cached,
    rates_follow_the_parcel_size_and_sizes_are_checked,
    a_carrier_down_refuses_or_falls_back,
    a_label_is_bought_once,
    a_lost_label_answer_is_finished_once,
    a_refused_label_is_recorded_and_may_be_bought_again,
    tracking_reports_are_applied_once,
);
