//! Draft orders and quotes on both stores: staff build a cart for a
//! customer with negotiated prices, send it with an expiry and a payment
//! link; the customer pays it through the normal checkout, only while it
//! is valid and only at the total it was sent with.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use cartwright::actor::AccessToken;
use cartwright::cart::{CustomPrice, QuoteStatus};
use cartwright::clock::Clock;
use cartwright::id::IdempotencyKey;
use cartwright::prelude::*;
use cartwright::quotes::NewDraftOrder;
use chrono::Duration;
use common::{Backend, Shop, usd};

fn staff() -> Actor {
    Actor::Staff("quinn".into())
}

fn pay(cart: cartwright::id::CartId, actor: Actor, key: &str) -> CheckoutRequest {
    CheckoutRequest::new(cart, IdempotencyKey::new(key).unwrap(), "tok_visa", actor)
}

/// A draft for `customer` (a guest when `None`): 10 × A at a negotiated
/// 2.50 (list 3.33) and 1 × B at its catalog 10.00, with an address and
/// a method, as staff would set them on the phone.
async fn draft(
    shop: &Shop,
    customer: Option<cartwright::id::CustomerId>,
) -> cartwright::cart::Cart {
    let a = shop.product("A", "3.33", 50).await;
    let b = shop.product("B", "10.00", 5).await;
    let cart = shop
        .engine
        .create_draft_order(
            &staff(),
            NewDraftOrder::new(Currency::USD)
                .customer(customer)
                .note("as agreed on the phone"),
        )
        .await
        .unwrap();
    shop.engine
        .add_custom_line(
            &staff(),
            cart.id(),
            a,
            10,
            CustomPrice::new(usd("2.50"), "volume deal"),
        )
        .await
        .unwrap();
    shop.engine
        .add_item(&staff(), cart.id(), b, 1)
        .await
        .unwrap();
    shop.complete_details(&staff(), cart.id()).await
}

async fn a_customer_pays_the_quote_they_were_sent(backend: Backend) {
    let shop = Shop::new(backend).await;
    let me = shop.customer("b2b@example.com").await.id();
    let buyer = Actor::Customer(me);
    let cart = draft(&shop, Some(me)).await;
    // A draft is staff's alone.
    let e = shop.engine.quote(&buyer, cart.id()).await;
    assert!(matches!(e, Err(Error::Forbidden)), "{e:?}");
    let sent = shop
        .engine
        .send_quote(&staff(), cart.id(), shop.clock.now() + Duration::days(7))
        .await
        .unwrap();
    // 25.00 + 10.00 + 5.00 shipping, 10 % tax.
    assert_eq!(sent.priced.total, usd("44.00"));
    let view = shop.engine.quote(&buyer, cart.id()).await.unwrap();
    assert_eq!(view.status, QuoteStatus::Sent);
    assert_eq!(view.priced.total, usd("44.00"));
    // The link works for whoever holds it; a wrong one proves nothing.
    let link = Actor::GuestWithToken(sent.token.clone());
    assert!(shop.engine.quote(&link, cart.id()).await.is_ok());
    let e = shop
        .engine
        .quote(&Actor::GuestWithToken(AccessToken::new("nope")), cart.id())
        .await;
    assert!(matches!(e, Err(Error::Forbidden)), "{e:?}");
    // Nobody changes a sent quote, staff included.
    let before = shop.snapshot().await;
    let v = cart.lines()[1].variant_id;
    let e = shop.engine.add_item(&buyer, cart.id(), v, 1).await;
    assert!(matches!(e, Err(Error::IllegalTransition { .. })), "{e:?}");
    let e = shop.engine.add_item(&staff(), cart.id(), v, 1).await;
    assert!(matches!(e, Err(Error::IllegalTransition { .. })), "{e:?}");
    assert!(before == shop.snapshot().await);
    // The customer pays it through the normal checkout.
    let out = shop
        .engine
        .checkout(pay(cart.id(), buyer.clone(), "q"))
        .await
        .unwrap();
    assert_eq!(out.order.total(), usd("44.00"));
    assert_eq!(out.order.customer_id(), Some(me));
    assert_eq!(out.order.pricing().lines[0].unit_price, usd("2.50"));
    assert_eq!(shop.payments.authorizations()[0].captured, usd("44.00"));
    let view = shop.engine.quote(&buyer, cart.id()).await.unwrap();
    assert_eq!(view.status, QuoteStatus::Accepted);
    // Paying again under the same key is the same order.
    let again = shop
        .engine
        .checkout(pay(cart.id(), buyer, "q"))
        .await
        .unwrap();
    assert_eq!(again.order.id(), out.order.id());
    assert_eq!(shop.payments.authorizations().len(), 1);
}

async fn an_expired_quote_cannot_be_paid(backend: Backend) {
    let shop = Shop::new(backend).await;
    let cart = draft(&shop, None).await;
    let sent = shop
        .engine
        .send_quote(&staff(), cart.id(), shop.clock.now() + Duration::days(2))
        .await
        .unwrap();
    let link = Actor::GuestWithToken(sent.token);
    shop.clock.advance(Duration::days(3));
    assert_eq!(
        shop.engine.quote(&link, cart.id()).await.unwrap().status,
        QuoteStatus::Expired
    );
    let before = shop.snapshot().await;
    let e = shop
        .engine
        .checkout(pay(cart.id(), link.clone(), "late"))
        .await;
    assert!(matches!(e, Err(Error::IllegalTransition { .. })), "{e:?}");
    assert!(
        before == shop.snapshot().await,
        "nothing held, nothing charged"
    );
    assert!(shop.payments.authorizations().is_empty());
    // Staff withdraw and send it again: a new link, the old one dead.
    shop.engine
        .withdraw_quote(&staff(), cart.id())
        .await
        .unwrap();
    let e = shop.engine.quote(&link, cart.id()).await;
    assert!(matches!(e, Err(Error::Forbidden)), "{e:?}");
    let again = shop
        .engine
        .send_quote(&staff(), cart.id(), shop.clock.now() + Duration::days(2))
        .await
        .unwrap();
    let link = Actor::GuestWithToken(again.token);
    let out = shop
        .engine
        .checkout(pay(cart.id(), link, "now"))
        .await
        .unwrap();
    assert_eq!(out.order.total(), usd("44.00"));
    // A guest's quote gives the guest's order its own access token.
    assert!(out.access_token.is_some());
}

async fn a_quote_is_paid_only_at_its_total(backend: Backend) {
    let shop = Shop::new(backend).await;
    let cart = draft(&shop, None).await;
    let sent = shop
        .engine
        .send_quote(&staff(), cart.id(), shop.clock.now() + Duration::days(2))
        .await
        .unwrap();
    // A sale starts after the quote was sent: B would now cost less, and
    // the quote's total no longer holds either way.
    let sale = cartwright::pricing::Promotion::new(
        "Sale",
        cartwright::pricing::Action::PercentOffItems {
            target: cartwright::pricing::LineFilter::Any,
            percent: cartwright::deps::rust_decimal::Decimal::TEN,
            max_discount: None,
            max_quantity_per_line: None,
        },
    );
    shop.engine
        .save_promotion(&Actor::System, sale)
        .await
        .unwrap();
    let link = Actor::GuestWithToken(sent.token);
    let e = shop.engine.checkout(pay(cart.id(), link, "x")).await;
    assert!(matches!(e, Err(Error::PriceChanged { .. })), "{e:?}");
    assert!(shop.payments.authorizations().is_empty());
}

async fn only_staff_make_and_send_quotes(backend: Backend) {
    let shop = Shop::new(backend).await;
    let me = shop.customer("x@example.com").await.id();
    let cart = draft(&shop, Some(me)).await;
    let before = shop.snapshot().await;
    for actor in [Actor::Customer(me), Actor::Guest, Actor::Agent("a".into())] {
        let e = shop
            .engine
            .create_draft_order(&actor, NewDraftOrder::new(Currency::USD))
            .await;
        assert!(matches!(e, Err(Error::Forbidden)), "{actor:?}: {e:?}");
        let e = shop
            .engine
            .send_quote(&actor, cart.id(), shop.clock.now() + Duration::days(1))
            .await;
        assert!(matches!(e, Err(Error::Forbidden)), "{actor:?}: {e:?}");
        let e = shop
            .engine
            .checkout(pay(cart.id(), actor.clone(), "d"))
            .await;
        assert!(
            matches!(e, Err(Error::Forbidden)),
            "a draft is not payable by {actor:?}: {e:?}"
        );
    }
    // An expiry in the past is refused.
    let e = shop
        .engine
        .send_quote(&staff(), cart.id(), shop.clock.now() - Duration::minutes(1))
        .await;
    assert!(matches!(e, Err(Error::Invalid { .. })), "{e:?}");
    assert!(before == shop.snapshot().await);
    // Staff may take payment for a draft directly (a phone order).
    let out = shop
        .engine
        .checkout(pay(cart.id(), staff(), "phone"))
        .await
        .unwrap();
    assert_eq!(out.order.customer_id(), Some(me));
}

async fn a_staff_only_discount_works_on_drafts_alone(backend: Backend) {
    let shop = Shop::new(backend).await;
    let me = shop.customer("d@example.com").await.id();
    let staff_deal = common::ten_percent_coded()
        .when(cartwright::pricing::Condition::DraftOrder { draft: true });
    let promotion = shop
        .engine
        .save_promotion(&Actor::System, staff_deal)
        .await
        .unwrap();
    shop.engine
        .create_coupon(&Actor::System, promotion.id, "STAFFDEAL", None)
        .await
        .unwrap();
    // On a draft, staff's code takes 10 % off B (A's price is negotiated
    // and left alone).
    let cart = draft(&shop, Some(me)).await;
    shop.engine
        .add_coupon_code(&staff(), cart.id(), "STAFFDEAL")
        .await
        .unwrap();
    let priced = shop.engine.price_cart(&staff(), cart.id()).await.unwrap();
    assert_eq!(priced.total, usd("42.90"));
    // In a customer's own cart the same code does nothing, and says why.
    let buyer = Actor::Customer(me);
    let own = shop
        .engine
        .create_cart(&buyer, Currency::USD)
        .await
        .unwrap();
    let b = cart.lines()[1].variant_id;
    shop.engine.add_item(&buyer, own.id(), b, 1).await.unwrap();
    shop.engine
        .add_coupon_code(&buyer, own.id(), "STAFFDEAL")
        .await
        .unwrap();
    let priced = shop.engine.price_cart(&buyer, own.id()).await.unwrap();
    assert_eq!(priced.discount_total, usd("0.00"));
    let why = format!("{:?}", priced.promotions);
    assert!(why.contains("draft order"), "{why}");
}

conformance!(
    a_staff_only_discount_works_on_drafts_alone,
    a_customer_pays_the_quote_they_were_sent,
    an_expired_quote_cannot_be_paid,
    a_quote_is_paid_only_at_its_total,
    only_staff_make_and_send_quotes,
);
