//! The event relay and a consumer: orders are placed, a relay delivers the
//! outbox to an in-process sink (as it would to a webhook or a broker), and
//! the consumer — the warehouse, say — handles each event once through its
//! inbox, however often it is delivered.
//!
//! `cargo run --example event_consumer`

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use cartwright::event::{Event, EventKind};
use cartwright::prelude::*;
use cartwright::relay::{Inbox, Relay, Sink, SinkError};

/// The warehouse system: it hears of placed orders, once each.
struct Warehouse {
    inbox: Inbox,
    picked: Mutex<Vec<String>>,
}

#[async_trait]
impl Sink for Warehouse {
    fn name(&self) -> &str {
        "warehouse"
    }

    fn accepts(&self, event: &Event) -> bool {
        matches!(event.kind, EventKind::OrderPlaced { .. })
    }

    async fn deliver(&self, event: &Event, envelope: &serde_json::Value) -> Result<(), SinkError> {
        let ticket = format!("{} {}", envelope["type"], envelope["subject"]);
        self.inbox
            .handle(event.id, async {
                self.picked.lock().map_err(|_| "poisoned")?.push(ticket);
                Ok::<_, &str>(())
            })
            .await
            .map_err(|e| SinkError::transient(e.to_string()))?
            .transpose()
            .map_err(SinkError::transient)?;
        Ok(())
    }
}

#[tokio::main]
async fn main() -> cartwright::Result<()> {
    let shop = Engine::builder()
        .test_payment_provider()
        .no_tax()
        .shipping(Arc::new(FlatRateShipping::new().with_method(
            "standard",
            "Standard",
            &[Money::parse("5.00", Currency::USD)?],
        )?))
        .build()?;
    let staff = Actor::System;
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
    for i in 0..3 {
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
        shop.checkout(CheckoutRequest::new(
            cart.id(),
            IdempotencyKey::new(format!("order-{i}"))?,
            "tok_visa",
            Actor::Guest,
        ))
        .await?;
    }

    let sink = Arc::new(Warehouse {
        inbox: Inbox::new(shop.clone(), "warehouse")?,
        picked: Mutex::new(Vec::new()),
    });
    let relay = Relay::new(shop.clone(), vec![sink.clone() as Arc<dyn Sink>])?;
    // In a service: tokio::spawn(relay.run(Duration::from_secs(1))).
    let report = relay.run_once().await?;
    println!(
        "relayed: {} delivered, {} not wanted by the warehouse",
        report.delivered, report.skipped
    );
    // A broker may deliver an event again: the inbox handles it once.
    for event in shop.pending_events(&staff, "replay-demo", 100).await? {
        if sink.accepts(&event) {
            sink.deliver(&event, &event.cloud_event("cartwright"))
                .await
                .ok();
        }
    }
    let picked = sink.picked.lock().map(|p| p.clone()).unwrap_or_default();
    for ticket in &picked {
        println!("pick: {ticket}");
    }
    println!("{} orders picked, each once", picked.len());
    Ok(())
}
