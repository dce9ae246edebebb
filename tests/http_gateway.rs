//! The HTTP adapter example (`examples/http_gateway/`) against its mock
//! gateway, started by the test on a local port: the provider conformance
//! suites, a 3-D Secure checkout completed by a signed webhook, webhook
//! signatures, and gateway outages and lost answers that never charge twice.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../examples/http_gateway/adapter.rs"]
mod adapter;
#[path = "../examples/http_gateway/mock.rs"]
mod mock;

use std::sync::Arc;
use std::time::Duration;

use adapter::HttpGateway;
use cartwright::cart::Cart;
use cartwright::checkout::CheckoutStep;
use cartwright::money::{Currency, Money};
use cartwright::payment::PaymentStatus;
use cartwright::prelude::*;
use cartwright::shipping::FlatRateShipping;
use cartwright::testkit::{provider_conformance, session_conformance};

const SECRET: &[u8] = b"whsec_test";

fn usd(s: &str) -> Money {
    Money::parse(s, Currency::USD).unwrap()
}

async fn gateway() -> (mock::MockGateway, Arc<HttpGateway>) {
    let mock = mock::MockGateway::start("sk_test", SECRET, None)
        .await
        .unwrap();
    let adapter = HttpGateway::new(
        "httpgw",
        &mock.base_url,
        "sk_test",
        Duration::from_millis(500),
    )
    .unwrap();
    (mock, Arc::new(adapter))
}

/// The customer at the bank: the event and signature the gateway sends.
async fn authenticate(
    mock: &mock::MockGateway,
    reference: &str,
    succeed: bool,
) -> (String, String) {
    let answer: serde_json::Value = reqwest::Client::new()
        .post(format!(
            "{}/test/payments/{reference}/authenticate",
            mock.base_url
        ))
        .json(&serde_json::json!({ "succeed": succeed }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (
        answer["event"].as_str().unwrap().to_owned(),
        answer["signature"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn the_http_adapter_passes_the_provider_suites() {
    let (mock, adapter) = gateway().await;
    let report = provider_conformance(adapter.clone(), "tok_visa", "tok_decline")
        .await
        .unwrap();
    assert!(report.checks >= 6);
    let base = mock.base_url.clone();
    session_conformance(adapter, "tok_3ds", |reference| {
        let base = base.clone();
        async move {
            let answer = reqwest::Client::new()
                .post(format!("{base}/test/payments/{reference}/authenticate"))
                .json(&serde_json::json!({ "succeed": true }))
                .send()
                .await
                .map_err(|e| e.to_string())?;
            if answer.status().is_success() {
                Ok(())
            } else {
                Err(answer.status().to_string())
            }
        }
    })
    .await
    .unwrap();
}

async fn shop(adapter: Arc<HttpGateway>) -> (Engine, Cart) {
    let engine = Engine::builder()
        .payment_provider(adapter)
        .shipping(Arc::new(
            FlatRateShipping::new()
                .with_method("standard", "Standard", &[usd("5.00")])
                .unwrap(),
        ))
        .no_tax()
        .build()
        .unwrap();
    let location = engine
        .create_location(&Actor::System, "W", 0)
        .await
        .unwrap();
    let product = engine
        .create_product(
            &Actor::System,
            NewProduct::new("Mug")
                .status(cartwright::catalog::Status::Active)
                .variants(vec![
                    NewVariant::shipped("MUG")
                        .prices(vec![usd("12.00")])
                        .status(cartwright::catalog::Status::Active),
                ]),
        )
        .await
        .unwrap();
    let mug = product.variants()[0].id();
    engine
        .set_stock(&Actor::System, mug, location.id(), 5)
        .await
        .unwrap();
    let cart = engine
        .create_cart(&Actor::Guest, Currency::USD)
        .await
        .unwrap();
    engine
        .add_item(&Actor::Guest, cart.id(), mug, 1)
        .await
        .unwrap();
    engine
        .set_email(&Actor::Guest, cart.id(), "a@example.com")
        .await
        .unwrap();
    engine
        .set_shipping_address(
            &Actor::Guest,
            cart.id(),
            NewAddress::new("Ada", "1 Way", "London", "N1", "gb"),
        )
        .await
        .unwrap();
    let cart = engine
        .set_shipping_method(&Actor::Guest, cart.id(), "standard")
        .await
        .unwrap();
    (engine, cart)
}

fn request(cart: &Cart, key: &str, token: &str) -> CheckoutRequest {
    CheckoutRequest::new(
        cart.id(),
        IdempotencyKey::new(key).unwrap(),
        token,
        Actor::Guest,
    )
}

#[tokio::test]
async fn a_3ds_checkout_completes_by_a_signed_webhook() {
    let (mock, adapter) = gateway().await;
    let (engine, cart) = shop(adapter).await;
    let step = engine
        .start_checkout(request(&cart, "k", "tok_3ds"))
        .await
        .unwrap();
    let CheckoutStep::AwaitingPayment(session) = step else {
        panic!("expected a waiting payment");
    };
    let (event, signature) = authenticate(&mock, &session.reference, true).await;

    // Tampered, unsigned or badly signed deliveries are refused before
    // they reach the engine.
    let now = chrono::Utc::now();
    let tampered = event.replace("payment.authorized", "payment.refunded");
    assert!(HttpGateway::parse_webhook(SECRET, &signature, tampered.as_bytes(), now).is_err());
    assert!(HttpGateway::parse_webhook(b"other", &signature, event.as_bytes(), now).is_err());
    assert!(HttpGateway::parse_webhook(SECRET, "", event.as_bytes(), now).is_err());
    let later = now + chrono::Duration::minutes(10);
    assert!(
        HttpGateway::parse_webhook(SECRET, &signature, event.as_bytes(), later).is_err(),
        "a replay ten minutes later is refused"
    );

    let parsed = HttpGateway::parse_webhook(SECRET, &signature, event.as_bytes(), now).unwrap();
    let provider = Actor::Provider("httpgw".into());
    let order = engine
        .apply_provider_event(&provider, &parsed)
        .await
        .unwrap()
        .into_order()
        .unwrap();
    // Delivered again (gateways retry): nothing more happens.
    engine
        .apply_provider_event(&provider, &parsed)
        .await
        .unwrap();
    assert_eq!(order.id(), session.order_id);
    assert_eq!(order.payment().status(), PaymentStatus::Captured);
    let back = engine
        .complete_checkout(&Actor::Guest, cart.id(), &IdempotencyKey::new("k").unwrap())
        .await
        .unwrap()
        .placed()
        .unwrap();
    assert_eq!(back.order.id(), order.id());
    let payments = mock.payments();
    assert_eq!(payments.len(), 1);
    assert_eq!(payments[0].captured, 1700, "captured once, over HTTP");
}

#[tokio::test]
async fn outages_and_lost_answers_never_charge_twice() {
    let (mock, adapter) = gateway().await;
    let (engine, cart) = shop(adapter).await;
    // The gateway is down: nothing is reserved, the key can run again.
    mock.fail_next(1);
    let down = engine.checkout(request(&cart, "k", "tok_visa")).await;
    assert!(
        matches!(down, Err(Error::PaymentUnavailable(_))),
        "{down:?}"
    );
    // The authorization happens but its answer is lost (a timeout): the
    // engine finds it by its key and gives it back; the retry pays once.
    mock.stall_next(Duration::from_secs(2));
    let lost = engine.checkout(request(&cart, "k", "tok_visa")).await;
    assert!(lost.is_err(), "{lost:?}");
    let order = engine
        .checkout(request(&cart, "k", "tok_visa"))
        .await
        .unwrap()
        .order;
    assert_eq!(order.payment().captured(), usd("17.00"));
    let payments = mock.payments();
    let captured: i64 = payments.iter().map(|p| p.captured).sum();
    assert_eq!(captured, 1700, "one charge: {payments:?}");
    assert!(
        payments
            .iter()
            .filter(|p| p.id != order.payment().reference())
            .all(|p| p.status == "canceled"),
        "every other authorization was given back: {payments:?}"
    );
}
