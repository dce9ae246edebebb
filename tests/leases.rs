//! Whoever no longer holds a checkout's lease gives nothing back and
//! changes nothing; the lease holder owns the outcome. A settler, a
//! cancellation or a recovery stalled past its lease (held at a gate of the
//! test kit while the clock runs out) must never void, refund or release
//! what the new lease holder placed an order with. On both stores, with two
//! engines.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::Arc;

use cartwright::checkout::CheckoutStep;
use cartwright::engine::giftcards::NewGiftCard;
use cartwright::id::{CartId, VariantId};
use cartwright::payment::{PaymentProvider, TestPaymentProvider};
use cartwright::prelude::*;
use cartwright::testkit::{GatedProvider, ProviderMethod, StoreCommand, When};
use common::{Backend, Shop, ShopOptions, usd};

fn key(k: &str) -> IdempotencyKey {
    IdempotencyKey::new(k).unwrap()
}

/// Past the checkout lease (two minutes by default), within the session.
fn past_the_lease() -> chrono::Duration {
    chrono::Duration::minutes(3)
}

/// A gift card of 5.00 and a guest cart (16.50 with shipping and tax) whose
/// 3-D Secure checkout under `k` waits, the customer's challenge passed:
/// the cart, the variant, the session's reference and the card's code.
async fn paid_and_waiting(shop: &Shop, k: &str) -> (CartId, VariantId, String, String) {
    let a = shop.product(&format!("SKU-{k}"), "10.00", 3).await;
    let code = shop
        .engine
        .issue_gift_card(
            &Actor::Staff("wes".into()),
            NewGiftCard::new(usd("5.00")),
            &key(&format!("gc-{k}")),
        )
        .await
        .unwrap()
        .code;
    let cart = shop.ready_cart(&[(a, 1)]).await;
    let step = shop
        .engine
        .start_checkout(
            CheckoutRequest::new(cart.id(), key(k), "tok_3ds", Actor::Guest).gift_card(&code),
        )
        .await
        .unwrap();
    let CheckoutStep::AwaitingPayment(session) = step else {
        panic!("expected a waiting payment, got {step:?}");
    };
    shop.payments.complete_action(&session.reference).unwrap();
    (cart.id(), a, session.reference, code)
}

async fn gift_balance(shop: &Shop, code: &str) -> Money {
    shop.engine
        .gift_card_balance(&Actor::System, code)
        .await
        .unwrap()
        .balance
}

/// The books after everything settled: an order placed for `k` holds an
/// authorization the gateway still holds (never voided, captured what the
/// order says, nothing refunded) and the gift card paid its part once; no
/// order means nothing held and the gift card whole.
async fn books_equal_the_gateway(shop: &Shop, k: &str, reference: &str, code: &str) {
    let orders = shop
        .engine
        .find_orders(&Actor::System, &cartwright::order::OrderQuery::default())
        .await
        .unwrap()
        .orders;
    let placed: Vec<_> = orders
        .iter()
        .filter(|o| o.checkout_key() == &key(k))
        .collect();
    let auth = shop
        .payments
        .authorizations()
        .into_iter()
        .find(|a| a.reference == reference)
        .expect("the gateway has the authorization");
    match placed.as_slice() {
        [order] => {
            assert!(!auth.voided, "the placed order's authorization was voided");
            assert!(
                auth.refunded.is_zero(),
                "the placed order's sale was refunded"
            );
            assert_eq!(auth.captured, order.payment().captured());
            assert_eq!(order.payment().captured(), usd("11.50"));
            assert_eq!(gift_balance(shop, code).await, usd("0.00"));
        }
        [] => {
            assert!(
                auth.voided || !auth.refunded.is_zero() || auth.captured.is_zero(),
                "no order, yet the gateway holds {auth:?}"
            );
            assert_eq!(gift_balance(shop, code).await, usd("5.00"));
        }
        more => panic!("{} orders for one checkout", more.len()),
    }
}

/// The buyer's return settles on engine A and stalls before placing the
/// order; the lease runs out, and recovery on engine B claims the checkout
/// and stalls before placing it too. A goes on, loses its lease — and must
/// give nothing back: B then places the order with the authorization and
/// the gift card, both intact.
async fn a_settler_that_lost_its_lease_gives_nothing_back(backend: Backend) {
    let shop = Shop::with(
        backend,
        ShopOptions {
            faulty: true,
            ..ShopOptions::default()
        },
    )
    .await;
    let (cart, a, reference, code) = paid_and_waiting(&shop, "k").await;
    let (b, b_faults) = shop.second_engine_faulty().await;
    let a_faults = shop.faults.clone().unwrap();

    let gate_a = a_faults.stall(StoreCommand::PlaceOrder);
    let engine = shop.engine.clone();
    let settler = tokio::spawn(async move {
        engine
            .complete_checkout(&Actor::Guest, cart, &key("k"))
            .await
    });
    gate_a.arrived().await;
    shop.clock.advance(past_the_lease());
    let gate_b = b_faults.stall(StoreCommand::PlaceOrder);
    let recovery = tokio::spawn({
        let b = b.clone();
        async move { b.recover().await }
    });
    gate_b.arrived().await;

    // A goes on without its lease: an error, and nothing given back.
    gate_a.open();
    let settled = settler.await.unwrap();
    assert!(
        matches!(settled, Err(Error::LeaseLost)),
        "the stalled settler: {settled:?}"
    );
    let auth = shop.payments.authorizations()[0].clone();
    assert!(!auth.voided, "a settler without its lease voided the hold");
    assert_eq!(gift_balance(&shop, &code).await, usd("0.00"));

    // B, the lease holder, owns the outcome: the order.
    gate_b.open();
    let report = recovery.await.unwrap().unwrap();
    assert_eq!(report.completed_sessions, 1, "{report:?}");
    books_equal_the_gateway(&shop, "k", &reference, &code).await;
    // Both instances answer the buyer with that order.
    for engine in [&shop.engine, &b] {
        let step = engine
            .complete_checkout(&Actor::Guest, cart, &key("k"))
            .await
            .unwrap();
        assert!(step.placed().is_some());
    }
    let stock = shop.engine.stock(a).await.unwrap();
    assert_eq!((stock.on_hand, stock.reserved), (3, 1));
}

/// The buyer cancels a waiting payment on engine A, which stalls at the
/// gateway; the lease runs out and recovery on engine B takes the
/// checkout over. Whatever each does, the outcome is one: no order with a
/// voided authorization, no gift card spent for nothing.
async fn a_stalled_cancellation_and_recovery_agree(backend: Backend) {
    let payments = Arc::new(TestPaymentProvider::new());
    let gated = GatedProvider::new(payments.clone() as Arc<dyn PaymentProvider>);
    let mut shop = Shop::with(
        backend,
        ShopOptions {
            provider: Some(gated.clone()),
            ..ShopOptions::default()
        },
    )
    .await;
    shop.payments = payments;
    let (cart, a, reference, code) = paid_and_waiting(&shop, "k").await;
    let b = shop.second_engine().await;

    let gate = gated.stall(ProviderMethod::FindAuthorization, When::Before);
    let engine = shop.engine.clone();
    let cancel =
        tokio::spawn(async move { engine.cancel_checkout(&Actor::Guest, cart, &key("k")).await });
    gate.arrived().await;
    shop.clock.advance(past_the_lease());
    b.recover().await.unwrap();
    gate.open();
    let _ = cancel.await.unwrap();
    books_equal_the_gateway(&shop, "k", &reference, &code).await;
    shop.clock.advance(past_the_lease());
    shop.engine.recover().await.unwrap();
    books_equal_the_gateway(&shop, "k", &reference, &code).await;
    assert_eq!(shop.engine.stock(a).await.unwrap().reserved, 0);
}

/// Recovery on engine B claims a crashed settle and stalls before giving
/// anything back; the lease runs out again and recovery on A takes over.
/// Either recovery may place or give back, never both.
async fn two_recoveries_past_each_others_lease_agree(backend: Backend) {
    let shop = Shop::with(
        backend,
        ShopOptions {
            faulty: true,
            ..ShopOptions::default()
        },
    )
    .await;
    let (cart, _a, reference, code) = paid_and_waiting(&shop, "k").await;
    let (b, b_faults) = shop.second_engine_faulty().await;
    // A settler crashes after claiming (its future is dropped at the gate).
    let gate_a = shop.faults.clone().unwrap().stall(StoreCommand::PlaceOrder);
    let engine = shop.engine.clone();
    let crashed = tokio::spawn(async move {
        engine
            .complete_checkout(&Actor::Guest, cart, &key("k"))
            .await
    });
    gate_a.arrived().await;
    crashed.abort();
    shop.clock.advance(past_the_lease());
    let gate_b = b_faults.stall(StoreCommand::PlaceOrder);
    let first = tokio::spawn({
        let b = b.clone();
        async move { b.recover().await }
    });
    gate_b.arrived().await;
    shop.clock.advance(past_the_lease());
    let second = shop.engine.recover().await.unwrap();
    assert_eq!(second.completed_sessions, 1, "{second:?}");
    gate_b.open();
    let _ = first.await.unwrap();
    books_equal_the_gateway(&shop, "k", &reference, &code).await;
}

/// Without any stall: the buyer's return, the provider's event and
/// recovery (with the clock jumping past the lease at a random moment) race
/// on two engines, round after round; the books always equal the gateway.
async fn random_races_of_settlers_and_recovery_keep_the_books(backend: Backend) {
    let shop = Shop::new(backend).await;
    let b = shop.second_engine().await;
    let rounds = std::env::var("LEASE_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(12_u32);
    for round in 0..rounds {
        let k = format!("race-{round}");
        let (cart, _, reference, code) = paid_and_waiting(&shop, &k).await;
        let event = cartwright::payment::TestPaymentProvider::event(
            &reference,
            &format!("evt-{round}"),
            cartwright::payment::ProviderEventKind::Authorized,
        );
        let a = shop.engine.clone();
        let ret = tokio::spawn({
            let k = k.clone();
            async move { a.complete_checkout(&Actor::Guest, cart, &key(&k)).await }
        });
        let b1 = b.clone();
        let ev = tokio::spawn(async move {
            b1.apply_provider_event(&Actor::Provider("test".into()), &event)
                .await
        });
        let clock = shop.clock.clone();
        let b2 = b.clone();
        let rec = tokio::spawn(async move {
            for _ in 0..(round % 4) {
                tokio::task::yield_now().await;
            }
            clock.advance(past_the_lease());
            b2.recover().await
        });
        let _ = ret.await.unwrap();
        let _ = ev.await.unwrap();
        let _ = rec.await.unwrap();
        // Let every lease end and recovery finish what is left.
        shop.clock.advance(past_the_lease());
        shop.engine.recover().await.unwrap();
        books_equal_the_gateway(&shop, &k, &reference, &code).await;
    }
}

conformance!(
    a_settler_that_lost_its_lease_gives_nothing_back,
    a_stalled_cancellation_and_recovery_agree,
    two_recoveries_past_each_others_lease_agree,
    random_races_of_settlers_and_recovery_keep_the_books,
);
