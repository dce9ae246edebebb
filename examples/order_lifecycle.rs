//! After checkout: a partial shipment, capture, a return of one unit with
//! its exact refund, printed as the order's history.
//!
//! Run with `cargo run --example order_lifecycle`.

use std::sync::Arc;

use cartwright::fulfillment::{ReturnRequest, ShipmentRequest};
use cartwright::money_path::ManualRefund;
use cartwright::order::{LineQuantity, OrderChangeKind, ShippingRefund};
use cartwright::prelude::*;
use rust_decimal::Decimal;

#[tokio::main]
async fn main() -> Result<()> {
    let usd = |s: &str| Money::parse(s, Currency::USD);
    let engine = Engine::builder()
        .shipping(Arc::new(FlatRateShipping::new().with_method(
            "ground",
            "Ground",
            &[usd("6.00")?],
        )?))
        .tax(Arc::new(FlatRateTax::new("Tax 7%", Decimal::new(7, 2))?))
        .capture_mode(CaptureMode::Manual)
        .test_payment_provider()
        .build()?;
    // Once per process: recovery and pruning on a timer.
    tokio::spawn(
        engine
            .clone()
            .maintenance(std::time::Duration::from_secs(30)),
    );

    engine
        .create_product(
            &Actor::System,
            NewProduct::new("Candle")
                .status(Status::Active)
                .variants(vec![
                    NewVariant::shipped("CANDLE")
                        .prices(vec![usd("8.00")?])
                        .status(Status::Active),
                ]),
        )
        .await?;
    let candle = engine.variant_by_sku("CANDLE").await?.variant.id();
    let shelf = engine.create_location(&Actor::System, "Shelf", 0).await?;
    engine
        .set_stock(&Actor::System, candle, shelf.id(), 10)
        .await?;

    // Checkout: three candles, payment authorized (captured later).
    let guest = Actor::Guest;
    let cart = engine.create_cart(&guest, Currency::USD).await?;
    engine.add_item(&guest, cart.id(), candle, 3).await?;
    engine
        .set_email(&guest, cart.id(), "lu@example.com")
        .await?;
    engine
        .set_shipping_address(
            &guest,
            cart.id(),
            NewAddress::default()
                .name("Lu")
                .line1("2 Elm St")
                .city("Portland")
                .region("OR")
                .country("US"),
        )
        .await?;
    engine
        .set_shipping_method(&guest, cart.id(), "ground")
        .await?;
    let placed = engine
        .checkout(CheckoutRequest::new(
            cart.id(),
            IdempotencyKey::new("order-lifecycle-1")?,
            "tok_visa",
            guest,
        ))
        .await?;
    // The guest's proof of ownership: keep it (a link in the confirmation
    // email, a cookie); with it the guest can see and cancel the order.
    let token = placed.access_token.clone().ok_or(Error::Forbidden)?;
    let seen = engine
        .order(&Actor::GuestWithToken(token), placed.order.id())
        .await?;
    println!("Guest sees order {} ({:?})", seen.id(), placed.payment);
    let order = placed;
    let line = order
        .order
        .pricing()
        .lines
        .first()
        .map(|l| l.line_id)
        .ok_or(Error::EmptyCart)?;

    let staff = Actor::Staff("ops@shop".into());
    // Two candles ship now, one later.
    engine
        .ship(
            &staff,
            order.order.id(),
            ShipmentRequest::new(vec![LineQuantity {
                line_id: line,
                quantity: 2,
            }])
            .carrier("USPS")
            .tracking_number("9400 1000 0000 0000 0000 01")
            .location(None),
        )
        .await?;
    engine.capture(&staff, order.order.id()).await?;
    engine
        .ship(
            &staff,
            order.order.id(),
            ShipmentRequest::new(vec![LineQuantity {
                line_id: line,
                quantity: 1,
            }])
            .carrier("USPS")
            .tracking_number("9400 1000 0000 0000 0000 02")
            .location(None),
        )
        .await?;
    // One candle comes back and goes back on the shelf.
    let order = engine
        .return_items(
            &staff,
            order.order.id(),
            ReturnRequest::new(
                vec![LineQuantity {
                    line_id: line,
                    quantity: 1,
                }],
                IdempotencyKey::new("rma-1")?,
            )
            .restock(true)
            .shipping(ShippingRefund::WhenAllReturned),
        )
        .await?;
    // A goodwill refund for the late second parcel, by amount, with a reason.
    let order = engine
        .refund(
            &staff,
            order.id(),
            ManualRefund::new(
                usd("2.00")?,
                "second parcel was late",
                IdempotencyKey::new("goodwill-1")?,
            ),
        )
        .await?;

    let p = order.pricing();
    println!("Order {}  total {}", order.id(), p.total);
    println!(
        "  3 × candle {} = {} + tax {}; shipping {}",
        p.lines.first().map_or(p.total, |l| l.unit_price),
        p.subtotal,
        p.tax_total,
        p.shipping.as_ref().map_or(p.total, |s| s.amount)
    );
    println!("\nHistory:");
    for h in order.history() {
        let what = match &h.change {
            OrderChangeKind::Placed { total } => format!("placed, total {total}"),
            OrderChangeKind::PaymentCaptured { amount } => format!("captured {amount}"),
            OrderChangeKind::PaymentRefunded { amount } => format!("refunded {amount}"),
            OrderChangeKind::PaymentVoided => "payment voided".into(),
            OrderChangeKind::Shipped { shipment } => {
                let s = order.shipments().iter().find(|s| s.id == *shipment);
                let n: u32 = s.map_or(0, |s| s.items.iter().map(|i| i.quantity).sum());
                format!(
                    "shipped {n} unit(s) via {} ({})",
                    s.map_or("", |s| s.carrier.as_str()),
                    s.map_or("", |s| s.tracking_number.as_str())
                )
            }
            OrderChangeKind::Returned { refund, .. } => format!("1 unit returned, refund {refund}"),
            OrderChangeKind::StatusChanged { from, to } => format!("status {from:?} → {to:?}"),
            other => format!("{other:?}"),
        };
        println!(
            "  {}  {:<18} {what}",
            h.at.format("%H:%M:%S"),
            format!("{:?}", h.actor)
        );
    }
    println!(
        "\nPayment: captured {}, refunded {}, {:?}; fulfillment {:?}",
        order.payment().captured(),
        order.payment().refunded(),
        order.payment().status(),
        order.fulfillment()
    );
    println!(
        "Stock on the shelf: {}",
        engine.stock(candle).await?.on_hand
    );
    Ok(())
}
