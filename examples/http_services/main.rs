//! A tax service and a carrier reached over HTTP, end to end: local mock
//! services (`mock.rs`), the adapters a real integration copies
//! (`tax_adapter.rs`, `carrier_adapter.rs`), and an engine using both.
//!
//! 1. a cart shipped to New York: tax quoted by the service (8.88 %),
//!    the carrier's live rates offered beside the table rate, both cached;
//! 2. checkout: the order's tax committed as a document at the service;
//! 3. shipping: a label bought from the carrier;
//! 4. a refund: the document adjusted;
//! 5. the services down: checkout refused with nothing reserved or
//!    charged, and recovery sending what waited once they are back.
//!
//! Run with `cargo run --example http_services`.

mod carrier_adapter;
mod client;
mod mock;
mod tax_adapter;

use std::sync::Arc;
use std::time::Duration;

use cartwright::fulfillment::ShipmentRequest;
use cartwright::money_path::ManualRefund;
use cartwright::order::{LineQuantity, TaxDocumentState};
use cartwright::prelude::*;

use carrier_adapter::HttpCarrier;
use tax_adapter::HttpTax;

fn check(ok: bool, what: &str) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::invalid("example", what.to_owned()))
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let (url, api_key, books) = mock::start().await.map_err(|e| Error::ServiceUnavailable {
        service: "mock services",
        reason: e.to_string(),
    })?;
    let timeout = Duration::from_secs(2);
    let engine = Engine::builder()
        .test_payment_provider()
        .tax_provider(Arc::new(HttpTax::new(&url, api_key, timeout)?))
        .carrier(Arc::new(HttpCarrier::new(&url, api_key, timeout)?))
        .shipping(Arc::new(FlatRateShipping::new().with_method(
            "standard",
            "Standard",
            &[Money::parse("5.00", Currency::USD)?],
        )?))
        .build()?;
    let staff = Actor::Staff("ops".into());
    let product = engine
        .create_product(
            &Actor::System,
            NewProduct::new("Lamp")
                .status(Status::Active)
                .variants(vec![
                    NewVariant::shipped("LAMP")
                        .prices(vec![Money::parse("40.00", Currency::USD)?])
                        .weight_grams(1_500)
                        .inventory(InventoryPolicy::Untracked)
                        .status(Status::Active),
                ]),
        )
        .await?;
    let lamp = product
        .variants()
        .first()
        .map(|v| v.id())
        .ok_or_else(|| Error::invalid("example", "no variant"))?;
    let buy = |postal: &'static str, key: &'static str| {
        let engine = engine.clone();
        async move {
            let guest = Actor::Guest;
            let cart = engine.create_cart(&guest, Currency::USD).await?;
            engine.add_item(&guest, cart.id(), lamp, 2).await?;
            engine
                .set_email(&guest, cart.id(), "ada@example.com")
                .await?;
            engine
                .set_shipping_address(
                    &guest,
                    cart.id(),
                    NewAddress::new("Ada Lovelace", "1 Broadway", "New York", postal, "US")
                        .region("NY"),
                )
                .await?;
            engine
                .set_shipping_method(&guest, cart.id(), "httpship:ground")
                .await?;
            let priced = engine.price_cart(&guest, cart.id()).await?;
            let again = engine.price_cart(&guest, cart.id()).await?;
            let order = engine
                .checkout(CheckoutRequest::new(
                    cart.id(),
                    IdempotencyKey::new(key)?,
                    "tok_visa",
                    guest,
                ))
                .await
                .map(|o| o.order);
            Ok::<_, Error>((priced, again, order))
        }
    };

    // 1 and 2: quoted, rated, cached, committed.
    let (priced, again, order) = buy("10001", "order-1").await?;
    let order = order?;
    println!(
        "priced: {} + shipping {} + tax {} = {}",
        priced.subtotal,
        priced
            .shipping
            .as_ref()
            .map_or(Money::zero(Currency::USD), |s| s.amount),
        priced.tax_total,
        priced.total
    );
    check(priced == again, "pricing twice gives the same")?;
    check(books.lock().quotes == 1, "one quote for two pricings")?;
    check(books.lock().rates == 1, "one rate request for two pricings")?;
    let doc = order
        .tax_document()
        .ok_or_else(|| Error::invalid("example", "no tax document"))?;
    println!(
        "order {}: tax document {:?} ({:?})",
        order.id(),
        doc.reference,
        doc.state
    );
    check(doc.state == TaxDocumentState::Committed, "committed")?;

    // 3: shipped, with the carrier's label.
    let items = vec![LineQuantity {
        line_id: order
            .pricing()
            .lines
            .first()
            .map(|l| l.line_id)
            .ok_or_else(|| Error::invalid("example", "no line"))?,
        quantity: 2,
    }];
    let shipped = engine
        .ship(
            &staff,
            order.id(),
            ShipmentRequest::new(items).carrier("httpship"),
        )
        .await?;
    let shipment = shipped
        .shipments()
        .first()
        .map(|s| s.id)
        .ok_or_else(|| Error::invalid("example", "no shipment"))?;
    let labelled = engine
        .purchase_label(&staff, order.id(), shipment, "httpship", "httpship:ground")
        .await?;
    let tracking = labelled
        .shipments()
        .first()
        .map(|s| s.tracking_number.clone())
        .unwrap_or_default();
    println!("label: tracking {tracking}");
    check(
        tracking.starts_with("MOCK"),
        "a tracking number from the carrier",
    )?;
    check(books.lock().labels.len() == 1, "one label")?;

    // 4: a refund adjusts the document.
    let refunded = engine
        .refund(
            &staff,
            order.id(),
            ManualRefund::new(
                Money::parse("10.00", Currency::USD)?,
                "scratched",
                IdempotencyKey::new("refund-1")?,
            ),
        )
        .await?;
    let adjustments = refunded.tax_document().map_or(0, |d| d.adjustments.len());
    println!("refund of 10.00: {adjustments} tax adjustment sent");
    check(adjustments == 1, "one adjustment")?;

    // 5: the services down, then back.
    books.lock().down = true;
    let (_, _, refused) = match buy("10002", "order-2").await {
        Ok(r) => r,
        Err(e) => (priced.clone(), priced.clone(), Err(e)),
    };
    println!("while the services are down: {:?}", refused.as_ref().err());
    check(
        matches!(refused, Err(Error::ServiceUnavailable { .. })),
        "refused while down",
    )?;
    books.lock().down = false;
    let (_, _, placed) = buy("10002", "order-2").await?;
    println!("back up: order {} placed", placed?.id());
    Ok(())
}
