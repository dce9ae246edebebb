//! The shop session both checkout examples run: seed a catalog, sign a
//! customer up, log in, fill a cart, check out and print the receipt.

use std::sync::Arc;

use cartwright::order::Order;
use cartwright::prelude::*;
use cartwright::pricing::{Action, Condition, Limits, LineFilter, Op, Promotion, Reward};
use cartwright::store::Store;
use rust_decimal::Decimal;

/// An engine on `store` with flat-rate shipping and an 8% sales tax.
pub fn engine(store: Arc<dyn Store>) -> Result<Engine> {
    let usd = |s: &str| Money::parse(s, Currency::USD);
    let shipping = FlatRateShipping::new()
        .with_method("standard", "Standard (3-5 days)", &[usd("5.00")?])?
        .with_method("express", "Express (next day)", &[usd("15.00")?])?;
    let tax = FlatRateTax::new("Sales tax 8%", Decimal::new(8, 2))?;
    Engine::builder()
        .store(store)
        .shipping(Arc::new(shipping))
        .tax(Arc::new(tax))
        // A demo: the built-in test gateway, which moves no real money.
        .test_payment_provider()
        .build()
}

/// Runs the session and prints the receipt.
pub async fn run(engine: &Engine) -> Result<()> {
    // Once per process: recovery of anything a crash left half done, and
    // pruning, every 30 seconds (it stops when the program ends).
    tokio::spawn(
        engine
            .clone()
            .maintenance(std::time::Duration::from_secs(30)),
    );
    // Admin changes record who made them.
    let admin = Actor::Staff("shop-admin".into());
    let usd = |s: &str| Money::parse(s, Currency::USD);
    // --- the catalog -------------------------------------------------------
    let apparel = engine.create_category(&admin, "Apparel", None).await?;
    let shirts = engine
        .create_category(&admin, "Shirts", Some(apparel.id()))
        .await?;
    let summer = engine.create_collection(&admin, "Summer").await?;
    let warehouse = engine.create_location(&admin, "Main warehouse", 0).await?;

    let tee = engine
        .create_product(
            &admin,
            NewProduct::new("Organic tee")
                .description("Soft, heavy cotton.")
                .status(Status::Active)
                .categories(vec![shirts.id()])
                .collections(vec![summer.id()])
                .tags(vec!["cotton".into(), "basics".into()])
                .variants(
                    ["S", "M", "L"]
                        .iter()
                        .map(|size| -> Result<NewVariant> {
                            Ok(NewVariant::shipped(format!("TEE-{size}"))
                                .title(format!("Size {size}"))
                                .options([("size".to_string(), size.to_string())].into())
                                .weight_grams(180)
                                .prices(vec![usd("25.00")?, Money::parse("23.00", Currency::EUR)?])
                                .status(Status::Active))
                        })
                        .collect::<Result<_>>()?,
                ),
        )
        .await?;
    engine
        .create_product(
            &admin,
            NewProduct::new("Care guide (ebook)")
                .status(Status::Active)
                .variants(vec![
                    NewVariant::digital("GUIDE-PDF")
                        .prices(vec![usd("4.99")?])
                        .inventory(InventoryPolicy::Untracked)
                        .status(Status::Active),
                ]),
        )
        .await?;
    for variant in tee.variants() {
        engine
            .set_stock(&admin, variant.id(), warehouse.id(), 20)
            .await?;
    }
    let medium = engine.variant_by_sku("tee-m").await?.variant.id();
    let guide = engine.variant_by_sku("guide-pdf").await?.variant.id();

    // --- promotions ----------------------------------------------------------
    // 10 % off the summer collection, for everyone, automatically.
    engine
        .save_promotion(
            &admin,
            Promotion::new(
                "Summer 10% off",
                Action::PercentOffItems {
                    target: LineFilter::Collection {
                        op: Op::In,
                        ids: vec![summer.id()],
                    },
                    percent: Decimal::TEN,
                    max_discount: None,
                    max_quantity_per_line: None,
                },
            ),
        )
        .await?;
    // Free standard shipping from 40.00, stated as a condition so the
    // explanation can say how much is missing.
    engine
        .save_promotion(
            &admin,
            Promotion::new(
                "Free shipping over 40",
                Action::Shipping {
                    reward: Reward::Percent {
                        percent: Decimal::ONE_HUNDRED,
                    },
                    methods: vec!["standard".into()],
                },
            )
            .when(Condition::Subtotal {
                op: Op::Gte,
                amount: usd("40.00")?,
            }),
        )
        .await?;
    // A welcome code: 5.00 off, once per customer.
    let welcome = engine
        .save_promotion(
            &admin,
            Promotion::new(
                "Welcome 5 off",
                Action::AmountOffOrder {
                    amount: usd("5.00")?,
                },
            )
            .coded()
            .limits(Limits::default().per_customer(Some(1))),
        )
        .await?;
    engine
        .create_coupon(&admin, welcome.id, "WELCOME5", None)
        .await?;

    // --- a customer --------------------------------------------------------
    engine
        .register(
            NewCustomer::new("Ada@Example.com", "correct horse battery staple")
                .name("Ada Lovelace"),
        )
        .await?;
    let ada = engine
        .login("ada@example.com", "correct horse battery staple")
        .await?;
    let me = Actor::Customer(ada.id());
    let address = NewAddress::new(
        "Ada Lovelace",
        "12 St James's Square",
        "London",
        "SW1Y 4JH",
        "GB",
    );
    engine.add_address(&me, ada.id(), address.clone()).await?;

    // --- the cart ----------------------------------------------------------
    let cart = engine.create_cart(&me, Currency::USD).await?;
    engine.add_item(&me, cart.id(), medium, 2).await?;
    engine.add_item(&me, cart.id(), guide, 1).await?;
    engine.set_shipping_address(&me, cart.id(), address).await?;
    engine
        .set_shipping_method(&me, cart.id(), "standard")
        .await?;
    engine.add_coupon_code(&me, cart.id(), " welcome5 ").await?;

    // What the customer sees before paying: every promotion considered.
    let priced = engine.price_cart(&me, cart.id()).await?;
    println!("PROMOTIONS");
    for p in &priced.promotions {
        match p.rejection() {
            None => println!("  applied      {}", p.name),
            Some(reason) => println!("  not applied  {}: {reason}", p.name),
        }
    }
    for hint in &priced.hints {
        println!("  hint         {}", hint.message);
    }
    println!();

    let order = engine
        .checkout(
            CheckoutRequest::new(
                cart.id(),
                IdempotencyKey::new(format!("checkout-{}", cart.id()))?,
                "tok_visa",
                me.clone(),
            )
            // Refuse to charge anything but what the customer was shown.
            .expected_total(priced.total),
        )
        .await?;

    print_receipt(&order.order);
    println!(
        "\nStock of TEE-M left: {}",
        engine.stock(medium).await?.available()
    );
    let history = engine.orders_for_customer(&me, ada.id(), None, 10).await?;
    println!("Orders on Ada's account: {}", history.len());
    Ok(())
}

pub fn print_receipt(order: &Order) {
    let p = order.pricing();
    println!("RECEIPT  order {}", order.id());
    if let Some(email) = order.email() {
        println!("for      {email}");
    }
    println!("{}", "-".repeat(60));
    for line in &p.lines {
        println!(
            "{:>3} × {:<32} {:>10} {:>12}",
            line.quantity,
            line.name,
            line.unit_price.amount(),
            line.subtotal.to_string()
        );
        for a in &line.adjustments {
            println!("      {:<41} {:>12}", a.label, format!("-{}", a.amount));
        }
    }
    println!("{}", "-".repeat(60));
    println!("{:<47} {:>12}", "Subtotal", p.subtotal.to_string());
    if let Some(s) = &p.shipping {
        println!(
            "{:<47} {:>12}",
            format!("Shipping: {}", s.name),
            s.amount.to_string()
        );
        for a in &s.adjustments {
            println!("      {:<41} {:>12}", a.label, format!("-{}", a.amount));
        }
    }
    println!(
        "{:<47} {:>12}",
        "Discounts",
        format!("-{}", p.discount_total)
    );
    for t in &p.tax_lines {
        println!("{:<47} {:>12}", t.name, t.amount.to_string());
    }
    println!("{:<47} {:>12}", "TOTAL", p.total.to_string());
    println!(
        "Payment: {:?} via {} ({})",
        order.payment().status(),
        order.payment().provider(),
        order.payment().reference()
    );
}
