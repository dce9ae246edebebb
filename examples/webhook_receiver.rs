//! Signed webhooks end to end: staff subscribe an address to order events,
//! the relay posts each one signed, and the receiving service — here an
//! axum handler on loopback — checks the signature with
//! `cartwright::webhook::verify` and handles each event once through its
//! inbox, answering 2xx only once it is handled (anything else, and the
//! relay tries again later).
//!
//! `cargo run --features webhooks --example webhook_receiver`

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use cartwright::catalog::Status;
use cartwright::prelude::*;
use cartwright::relay::Inbox;
use cartwright::relay::webhook::{WebhookDelivery, WebhookSender};
use cartwright::webhook::{NewWebhook, SIGNATURE_HEADER, WebhookPolicy, WebhookSecret, verify};

/// The receiving service: its secret (shown once, when the subscription
/// was made), its inbox and what it did.
struct Receiver {
    secret: Mutex<Option<WebhookSecret>>,
    inbox: Inbox,
    handled: Mutex<Vec<String>>,
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let Some(secret) = receiver.secret.lock().ok().and_then(|s| s.clone()) else {
        return StatusCode::SERVICE_UNAVAILABLE;
    };
    let signature = headers
        .get(SIGNATURE_HEADER)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    // The raw body, before parsing; five minutes of clock skew at most.
    if verify(
        &secret,
        signature,
        &body,
        chrono::Utc::now(),
        chrono::Duration::minutes(5),
    )
    .is_err()
    {
        return StatusCode::UNAUTHORIZED;
    }
    let Ok(envelope) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let field = |name: &str| envelope.get(name).cloned().unwrap_or_default();
    let Some(id) = field("id")
        .as_str()
        .and_then(|id| id.parse::<cartwright::id::EventId>().ok())
    else {
        return StatusCode::BAD_REQUEST;
    };
    let line = format!("{} {}", field("type"), field("subject"));
    let handled = receiver
        .inbox
        .handle(id, async {
            receiver.handled.lock().map_err(|_| "poisoned")?.push(line);
            Ok::<_, &str>(())
        })
        .await;
    match handled {
        // Handled now, or before (a redelivery): either way, done.
        Ok(Some(Ok(())) | None) => StatusCode::NO_CONTENT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

#[tokio::main]
async fn main() -> cartwright::Result<()> {
    // The receiver runs on loopback, so this shop allows it; a real shop
    // keeps the default policy (HTTPS to public addresses only).
    let policy = WebhookPolicy::default()
        .allow_http(true)
        .allowed_networks(vec![
            "127.0.0.0/8"
                .parse()
                .map_err(|_| cartwright::Error::invalid("network", "127.0.0.0/8"))?,
        ]);
    let shop = Engine::builder()
        .test_payment_provider()
        .no_tax()
        .shipping(Arc::new(FlatRateShipping::new().with_method(
            "standard",
            "Standard",
            &[Money::parse("5.00", Currency::USD)?],
        )?))
        .config(cartwright::EngineConfig::default().webhook_policy(policy))
        .build()?;
    let staff = Actor::Staff("owner".into());

    let receiver = Arc::new(Receiver {
        secret: Mutex::new(None),
        inbox: Inbox::new(shop.clone(), "fulfilment-service")?,
        handled: Mutex::new(Vec::new()),
    });
    let app = axum::Router::new()
        .route("/hooks/cartwright", axum::routing::post(receive))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| cartwright::Error::invalid("listener", e.to_string()))?;
    let url = format!(
        "http://{}/hooks/cartwright",
        listener
            .local_addr()
            .map_err(|e| cartwright::Error::invalid("listener", e.to_string()))?
    );
    tokio::spawn(async move { axum::serve(listener, app).await });

    // Staff subscribe the service to order events; it keeps the secret.
    let subscription = shop
        .create_webhook(&staff, NewWebhook::new(url, ["cartwright.order.*"]))
        .await?;
    if let Ok(mut secret) = receiver.secret.lock() {
        *secret = Some(subscription.secret.clone());
    }

    // An order is placed.
    let product = shop
        .create_product(
            &staff,
            NewProduct::new("Mug").status(Status::Active).variants(vec![
                NewVariant::shipped("MUG")
                    .prices(vec![Money::parse("12.00", Currency::USD)?])
                    .status(Status::Active),
            ]),
        )
        .await?;
    let mug = product
        .variants()
        .first()
        .map(|v| v.id())
        .ok_or_else(|| cartwright::Error::invalid("product", "has no variant"))?;
    let warehouse = shop.create_location(&staff, "Warehouse", 0).await?;
    shop.set_stock(&staff, mug, warehouse.id(), 10).await?;
    let cart = shop.create_cart(&Actor::Guest, Currency::USD).await?;
    shop.add_item(&Actor::Guest, cart.id(), mug, 1).await?;
    shop.set_email(&Actor::Guest, cart.id(), "buyer@example.com")
        .await?;
    shop.set_shipping_address(
        &Actor::Guest,
        cart.id(),
        NewAddress::new("Ada", "1 Main St", "Springfield", "12345", "us"),
    )
    .await?;
    shop.set_shipping_method(&Actor::Guest, cart.id(), "standard")
        .await?;
    let order = shop
        .checkout(CheckoutRequest::new(
            cart.id(),
            IdempotencyKey::new("webhook-example")?,
            "tok_visa",
            Actor::Guest,
        ))
        .await?
        .order;

    // The relay (spawned once per instance in a real program) posts it.
    let relay = cartwright::relay::Relay::for_webhooks(
        shop.clone(),
        WebhookSender::new(&shop, WebhookDelivery::default())?,
    );
    for _ in 0..50 {
        relay.run_once().await?;
        let got = receiver.handled.lock().map(|h| h.len()).unwrap_or(0);
        if got >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    println!(
        "order {} placed; the fulfilment service handled:",
        order.id()
    );
    for line in receiver
        .handled
        .lock()
        .map(|h| h.clone())
        .unwrap_or_default()
    {
        println!("  {line}");
    }
    Ok(())
}
