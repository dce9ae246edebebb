//! Payments as real shops take them, with the built-in test gateway:
//!
//! 1. a 3-D Secure card: the checkout waits, the customer authenticates,
//!    and the customer's return places the order;
//! 2. the same, but the gateway's event arrives first and places it; the
//!    late return and a repeated event change nothing;
//! 3. a failed challenge: the stock and the gift card come back;
//! 4. one order paid by a gift card, store credit and a card, then a
//!    refund spread over them: the card first.
//!
//! Run with `cargo run --example payment_sessions`.

use std::sync::Arc;

use cartwright::checkout::{CheckoutStep, EventOutcome};
use cartwright::giftcards::NewGiftCard;
use cartwright::money_path::ManualRefund;
use cartwright::payment::{CustomerAction, TestPaymentProvider};
use cartwright::prelude::*;

fn usd(s: &str) -> Result<Money> {
    Ok(Money::parse(s, Currency::USD)?)
}

fn key(k: &str) -> Result<IdempotencyKey> {
    IdempotencyKey::new(k).map_err(Error::from)
}

struct Shop {
    engine: Engine,
    gateway: Arc<TestPaymentProvider>,
    mug: cartwright::id::VariantId,
}

impl Shop {
    async fn new() -> Result<Self> {
        let gateway = Arc::new(TestPaymentProvider::new());
        let engine = Engine::builder()
            .payment_provider(gateway.clone())
            .shipping(Arc::new(FlatRateShipping::new().with_method(
                "standard",
                "Standard",
                &[usd("5.00")?],
            )?))
            .no_tax()
            .build()?;
        let warehouse = engine
            .create_location(&Actor::System, "Warehouse", 0)
            .await?;
        let product = engine
            .create_product(
                &Actor::System,
                NewProduct::new("Mug").status(Status::Active).variants(vec![
                    NewVariant::shipped("MUG")
                        .prices(vec![usd("20.00")?])
                        .status(Status::Active),
                ]),
            )
            .await?;
        let mug = product
            .variants()
            .first()
            .map(|v| v.id())
            .ok_or(Error::EmptyCart)?;
        engine
            .set_stock(&Actor::System, mug, warehouse.id(), 3)
            .await?;
        Ok(Self {
            engine,
            gateway,
            mug,
        })
    }

    async fn cart(&self, actor: &Actor) -> Result<cartwright::cart::Cart> {
        let e = &self.engine;
        let cart = e.create_cart(actor, Currency::USD).await?;
        e.add_item(actor, cart.id(), self.mug, 1).await?;
        e.set_email(actor, cart.id(), "ada@example.com").await?;
        e.set_shipping_address(
            actor,
            cart.id(),
            NewAddress::new("Ada Lovelace", "1 Analytical Way", "London", "N1", "gb"),
        )
        .await?;
        e.set_shipping_method(actor, cart.id(), "standard").await
    }

    async fn reserved(&self) -> Result<i64> {
        Ok(self.engine.stock(self.mug).await?.reserved)
    }
}

fn waiting(step: CheckoutStep) -> Result<cartwright::payment::PaymentSession> {
    match step {
        CheckoutStep::AwaitingPayment(session) => Ok(session),
        _ => Err(Error::invalid("example", "expected a waiting payment")),
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let shop = Shop::new().await?;
    let guest = Actor::Guest;

    // 1. Completed by the customer's return.
    let cart = shop.cart(&guest).await?;
    let request = CheckoutRequest::new(cart.id(), key("order-1")?, "tok_3ds", guest.clone());
    let session = waiting(shop.engine.start_checkout(request).await?)?;
    if let Some(CustomerAction::Redirect { url }) = &session.action {
        println!(
            "1. the payment of {} waits: send the customer to {url}",
            session.amount
        );
    }
    println!("   {} unit reserved while it waits", shop.reserved().await?);
    shop.gateway.complete_action(&session.reference)?;
    let placed = shop
        .engine
        .complete_checkout(&guest, cart.id(), &key("order-1")?)
        .await?
        .placed()
        .ok_or_else(|| Error::invalid("example", "not placed"))?;
    println!(
        "   the customer is back: order {} placed, {} captured",
        placed.order.id(),
        placed.order.payment().captured()
    );

    // 2. Completed by the gateway's event, then the return.
    let cart = shop.cart(&guest).await?;
    let request = CheckoutRequest::new(cart.id(), key("order-2")?, "tok_3ds", guest.clone());
    let session = waiting(shop.engine.start_checkout(request).await?)?;
    let event = shop.gateway.complete_action(&session.reference)?;
    let provider = Actor::Provider("test".into());
    if let EventOutcome::Order(order) = shop.engine.apply_provider_event(&provider, &event).await? {
        println!("2. the gateway's event placed order {}", order.id());
    }
    shop.engine.apply_provider_event(&provider, &event).await?;
    let back = shop
        .engine
        .complete_checkout(&guest, cart.id(), &key("order-2")?)
        .await?
        .placed()
        .ok_or_else(|| Error::invalid("example", "not placed"))?;
    println!(
        "   the event again and the late return find the same order {} ({} authorization(s) at the gateway for it)",
        back.order.id(),
        shop.gateway
            .authorizations()
            .iter()
            .filter(|a| a.reference == session.reference)
            .count()
    );

    // 3. A failed challenge with a gift card: everything comes back.
    let gift = shop
        .engine
        .issue_gift_card(
            &Actor::System,
            NewGiftCard::new(usd("10.00")?),
            &key("gift-1")?,
        )
        .await?;
    println!(
        "3. gift card …{} issued for 10.00 (its code is shown once)",
        gift.card.last4()
    );
    let cart = shop.cart(&guest).await?;
    let request = CheckoutRequest::new(cart.id(), key("order-3")?, "tok_3ds_fail", guest.clone())
        .gift_card(&gift.code);
    let session = waiting(shop.engine.start_checkout(request).await?)?;
    println!(
        "   the gift card pays 10.00 and the card {}; gift card balance while waiting: {}",
        session.amount,
        shop.engine
            .gift_card_balance(&guest, &gift.code)
            .await?
            .balance
    );
    let event = shop.gateway.complete_action(&session.reference)?;
    if let EventOutcome::CheckoutFailed { failure, .. } =
        shop.engine.apply_provider_event(&provider, &event).await?
    {
        println!("   the challenge failed ({failure:?})");
    }
    println!(
        "   units held (for the two orders placed): {}, gift card balance: {}",
        shop.reserved().await?,
        shop.engine
            .gift_card_balance(&guest, &gift.code)
            .await?
            .balance
    );

    // 4. Gift card + store credit + card, then a refund over them.
    let ada = shop
        .engine
        .register(NewCustomer::new(
            "ada@example.com",
            "correct horse battery staple",
        ))
        .await?;
    let me = Actor::Customer(ada.id());
    shop.engine
        .grant_store_credit(
            &Actor::System,
            ada.id(),
            usd("4.00")?,
            "late delivery",
            &key("credit-1")?,
        )
        .await?;
    let cart = shop.cart(&me).await?;
    let order = shop
        .engine
        .checkout(
            CheckoutRequest::new(cart.id(), key("order-4")?, "tok_visa", me.clone())
                .gift_card(&gift.code)
                .store_credit(true),
        )
        .await?
        .order;
    println!("4. order {} of {}, paid by:", order.id(), order.total());
    for p in order.payments() {
        println!("   - {:<12} {}", p.provider(), p.captured());
    }
    let refunded = shop
        .engine
        .refund(
            &Actor::Staff("sam".into()),
            order.id(),
            ManualRefund::new(usd("14.00")?, "damaged", key("refund-1")?),
        )
        .await?;
    println!("   refund of 14.00, the card first:");
    for p in refunded.payments() {
        println!("   - {:<12} refunded {}", p.provider(), p.refunded());
    }
    println!(
        "   store credit now {}, gift card now {}",
        shop.engine
            .store_credit(&me, ada.id(), Currency::USD)
            .await?,
        shop.engine
            .gift_card_balance(&guest, &gift.code)
            .await?
            .balance
    );
    Ok(())
}
