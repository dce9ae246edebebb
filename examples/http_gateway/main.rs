//! A payment adapter that talks HTTP to a gateway, end to end: a local mock
//! gateway (`mock.rs`), the adapter a real integration copies
//! (`adapter.rs`), and the shop's webhook endpoint that checks signatures
//! before it applies an event.
//!
//! 1. a card payment: authorized and captured over HTTP, with idempotency keys;
//! 2. a 3-D Secure payment: the checkout waits, the customer authenticates
//!    at the "bank", the gateway's signed webhook places the order, and the
//!    customer's return finds it placed;
//! 3. a partial refund over HTTP;
//! 4. a forged webhook, refused.
//!
//! Run with `cargo run --example http_gateway`.

mod adapter;
mod mock;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use cartwright::checkout::CheckoutStep;
use cartwright::money_path::ManualRefund;
use cartwright::payment::CustomerAction;
use cartwright::prelude::*;
use cartwright::shipping::FlatRateShipping;

use adapter::HttpGateway;

const GATEWAY: &str = "httpgw";
const WEBHOOK_SECRET: &[u8] = b"whsec_example";

/// The shop's webhook endpoint: verify, then apply.
async fn webhook(State(engine): State<Engine>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let signature = headers
        .get("gateway-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let event =
        match HttpGateway::parse_webhook(WEBHOOK_SECRET, signature, &body, chrono::Utc::now()) {
            Ok(event) => event,
            Err(e) => {
                println!("   webhook refused: {e}");
                return StatusCode::BAD_REQUEST;
            }
        };
    match engine
        .apply_provider_event(&Actor::Provider(GATEWAY.into()), &event)
        .await
    {
        Ok(_) => StatusCode::OK,
        // Not a payment of this shop's (or an abandoned attempt's): acknowledge.
        Err(Error::NotFound { .. }) => StatusCode::OK,
        // The gateway retries later.
        Err(e) if e.is_retryable() => StatusCode::SERVICE_UNAVAILABLE,
        Err(_) => StatusCode::BAD_REQUEST,
    }
}

fn usd(s: &str) -> cartwright::Result<Money> {
    Ok(Money::parse(s, Currency::USD)?)
}

#[tokio::main]
async fn main() -> cartwright::Result<()> {
    // The shop's endpoint is bound first, so the gateway knows where to post.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| Error::invalid("listener", e.to_string()))?;
    let shop_addr = listener
        .local_addr()
        .map_err(|e| Error::invalid("listener", e.to_string()))?;
    let gateway = mock::MockGateway::start(
        "sk_test_123",
        WEBHOOK_SECRET,
        Some(format!("http://{shop_addr}/webhooks/gateway")),
    )
    .await
    .map_err(|e| Error::invalid("mock gateway", e.to_string()))?;
    println!("mock gateway at {}", gateway.base_url);

    let adapter = HttpGateway::new(
        GATEWAY,
        &gateway.base_url,
        "sk_test_123",
        Duration::from_secs(5),
    )
    .map_err(Error::from)?;
    let engine = Engine::builder()
        .payment_provider(Arc::new(adapter))
        .shipping(Arc::new(FlatRateShipping::new().with_method(
            "standard",
            "Standard",
            &[usd("5.00")?],
        )?))
        .no_tax()
        .build()?;
    let app = axum::Router::new()
        .route("/webhooks/gateway", axum::routing::post(webhook))
        .with_state(engine.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let warehouse = engine
        .create_location(&Actor::System, "Warehouse", 0)
        .await?;
    let mug = engine
        .create_product(
            &Actor::System,
            NewProduct::new("Mug")
                .status(cartwright::catalog::Status::Active)
                .variants(vec![
                    NewVariant::shipped("MUG")
                        .prices(vec![usd("12.00")?])
                        .status(cartwright::catalog::Status::Active),
                ]),
        )
        .await?;
    let mug = mug
        .variants()
        .first()
        .map(|v| v.id())
        .ok_or(Error::EmptyCart)?;
    engine
        .set_stock(&Actor::System, mug, warehouse.id(), 10)
        .await?;

    let cart_for = |email: &'static str| {
        let engine = engine.clone();
        async move {
            let cart = engine.create_cart(&Actor::Guest, Currency::USD).await?;
            engine.add_item(&Actor::Guest, cart.id(), mug, 1).await?;
            engine.set_email(&Actor::Guest, cart.id(), email).await?;
            engine
                .set_shipping_address(
                    &Actor::Guest,
                    cart.id(),
                    NewAddress::new("Ada Lovelace", "1 Analytical Way", "London", "N1", "gb"),
                )
                .await?;
            engine
                .set_shipping_method(&Actor::Guest, cart.id(), "standard")
                .await
        }
    };

    // 1. A card payment.
    let cart = cart_for("ada@example.com").await?;
    let paid = engine
        .checkout(CheckoutRequest::new(
            cart.id(),
            IdempotencyKey::new("order-1")?,
            "tok_visa",
            Actor::Guest,
        ))
        .await?;
    println!(
        "1. card payment: order {} paid {} (gateway payment {})",
        paid.order.id(),
        paid.order.payment().captured(),
        paid.order.payment().reference()
    );

    // 2. A 3-D Secure payment.
    let cart = cart_for("grace@example.com").await?;
    let key = IdempotencyKey::new("order-2")?;
    let step = engine
        .start_checkout(CheckoutRequest::new(
            cart.id(),
            key.clone(),
            "tok_3ds",
            Actor::Guest,
        ))
        .await?;
    let CheckoutStep::AwaitingPayment(session) = step else {
        return Err(Error::invalid(
            "example",
            "the 3-D Secure card did not wait",
        ));
    };
    if let Some(CustomerAction::Redirect { url }) = &session.action {
        println!("2. the checkout waits; send the customer to {url}");
    }
    // The customer authenticates at the bank; the gateway posts its signed
    // webhook to the shop, which places the order.
    reqwest::Client::new()
        .post(format!(
            "{}/test/payments/{}/authenticate",
            gateway.base_url, session.reference
        ))
        .json(&serde_json::json!({ "succeed": true }))
        .send()
        .await
        .map_err(|e| Error::PaymentUnavailable(e.to_string()))?;
    let back = engine
        .complete_checkout(&Actor::Guest, cart.id(), &key)
        .await?;
    let placed = back
        .placed()
        .ok_or_else(|| Error::invalid("example", "the order was not placed"))?;
    println!(
        "   the webhook placed order {}; the customer's return finds it ({})",
        placed.order.id(),
        placed.order.payment().captured()
    );

    // 3. A partial refund.
    let refunded = engine
        .refund(
            &Actor::Staff("sam".into()),
            paid.order.id(),
            ManualRefund::new(usd("4.00")?, "chipped", IdempotencyKey::new("refund-1")?),
        )
        .await?;
    println!("3. refunded {} over HTTP", refunded.payment().refunded());

    // 4. A forged webhook.
    let forged = reqwest::Client::new()
        .post(format!("http://{shop_addr}/webhooks/gateway"))
        .header(
            "gateway-signature",
            format!("t={},v1=00", chrono::Utc::now().timestamp()),
        )
        .body(r#"{"id":"evt_forged","type":"payment.refunded","payment":{}}"#)
        .send()
        .await
        .map_err(|e| Error::PaymentUnavailable(e.to_string()))?;
    println!("4. a forged webhook is answered {}", forged.status());
    println!(
        "gateway holds {} payments: {}",
        gateway.payments().len(),
        gateway
            .payments()
            .iter()
            .map(|p| format!("{} captured {} refunded {}", p.id, p.captured, p.refunded))
            .collect::<Vec<_>>()
            .join("; ")
    );
    Ok(())
}
