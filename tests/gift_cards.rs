//! Gift cards and store credit, and orders paid by several payments: codes
//! kept secret and guess-limited, balances that are their ledgers and never
//! overdraw under concurrency, redemptions given back when a checkout does
//! not complete, and refunds and cancellations spread over the payments by
//! the documented policy. On both stores.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use cartwright::cart::Cart;
use cartwright::giftcards::NewGiftCard;
use cartwright::id::{CartId, CustomerId, VariantId};
use cartwright::money_path::ManualRefund;
use cartwright::order::OrderStatus;
use cartwright::payment::{Fault, Operation, PaymentStatus};
use cartwright::prelude::*;
use common::{Backend, Shop, usd};

fn key(k: &str) -> IdempotencyKey {
    IdempotencyKey::new(k).unwrap()
}

fn staff() -> Actor {
    Actor::Staff("sam".into())
}

async fn issue(shop: &Shop, amount: &str, k: &str) -> String {
    shop.engine
        .issue_gift_card(&staff(), NewGiftCard::new(usd(amount)), &key(k))
        .await
        .unwrap()
        .code
}

async fn balance(shop: &Shop, code: &str) -> Money {
    shop.engine
        .gift_card_balance(&Actor::System, code)
        .await
        .unwrap()
        .balance
}

/// A signed-in customer's cart for `qty` of a 10.00 item: 10.00 × qty +
/// 5.00 shipping, plus 10 % tax.
async fn customer_cart(shop: &Shop, v: VariantId, qty: u32) -> (CustomerId, Cart) {
    let c = shop.customer("buyer@example.com").await;
    let me = Actor::Customer(c.id());
    let cart = shop.engine.create_cart(&me, Currency::USD).await.unwrap();
    shop.engine.add_item(&me, cart.id(), v, qty).await.unwrap();
    let cart = shop.complete_details(&me, cart.id()).await;
    (c.id(), cart)
}

fn request(actor: &Actor, cart: CartId, k: &str, token: &str) -> CheckoutRequest {
    CheckoutRequest::new(cart, key(k), token, actor.clone())
}

async fn codes_are_secret_and_guessing_is_limited(backend: Backend) {
    let shop = Shop::new(backend).await;
    let code = issue(&shop, "50.00", "gc-1").await;
    let shown = shop
        .engine
        .gift_card_balance(&Actor::Guest, &code.to_lowercase())
        .await
        .unwrap();
    assert_eq!(shown.balance, usd("50.00"));
    assert_eq!(shown.last4, code.replace('-', "")[12..]);
    // The same key never issues twice.
    let again = shop
        .engine
        .issue_gift_card(&staff(), NewGiftCard::new(usd("50.00")), &key("gc-1"))
        .await;
    assert!(
        matches!(again, Err(Error::AlreadyExists { .. })),
        "{again:?}"
    );
    // Only staff issue.
    let guest = shop
        .engine
        .issue_gift_card(&Actor::Guest, NewGiftCard::new(usd("50.00")), &key("gc-2"))
        .await;
    assert!(matches!(guest, Err(Error::Forbidden)));
    // The store keeps no code.
    let dump = format!("{:?}", shop.snapshot().await);
    assert!(!dump.contains(&code.replace('-', "")) && !dump.contains(&code));
    // Ten wrong guesses from one customer, then even the right code waits.
    let c = shop.customer("guesser@example.com").await;
    let guesser = Actor::Customer(c.id());
    for i in 0..10 {
        let wrong = format!("AAAA-BBBB-CCCC-{i:04}");
        let r = shop.engine.gift_card_balance(&guesser, &wrong).await;
        assert!(matches!(r, Err(Error::NotFound { .. })), "{r:?}");
    }
    let blocked = shop.engine.gift_card_balance(&guesser, &code).await;
    assert!(
        matches!(blocked, Err(Error::TooManyAttempts { .. })),
        "{blocked:?}"
    );
    // Others are not blocked by it.
    assert!(
        shop.engine
            .gift_card_balance(&Actor::Guest, &code)
            .await
            .is_ok()
    );
    // Hostile input: a malformed code answers a typed error naming no code.
    let weird = shop
        .engine
        .gift_card_balance(&Actor::Guest, "'; DROP TABLE --")
        .await;
    assert!(matches!(weird, Err(Error::Invalid { .. })), "{weird:?}");
}

async fn one_order_paid_by_gift_card_store_credit_and_card(backend: Backend) {
    let shop = Shop::new(backend).await;
    let v = shop.product("A", "10.00", 5).await;
    let (customer, cart) = customer_cart(&shop, v, 1).await;
    let me = Actor::Customer(customer);
    let code = issue(&shop, "5.00", "gc").await;
    shop.engine
        .grant_store_credit(&staff(), customer, usd("3.00"), "late delivery", &key("sc"))
        .await
        .unwrap();
    // Granting again with the same key grants once.
    shop.engine
        .grant_store_credit(&staff(), customer, usd("3.00"), "late delivery", &key("sc"))
        .await
        .unwrap();
    assert_eq!(
        shop.engine
            .store_credit(&me, customer, Currency::USD)
            .await
            .unwrap(),
        usd("3.00")
    );
    let outcome = shop
        .engine
        .checkout(
            request(&me, cart.id(), "k", "tok_visa")
                .gift_card(&code)
                .store_credit(true),
        )
        .await
        .unwrap();
    let order = outcome.order;
    assert_eq!(order.total(), usd("16.50"));
    let tenders: Vec<_> = order
        .tenders()
        .iter()
        .map(|t| (t.provider().to_owned(), t.captured()))
        .collect();
    assert_eq!(
        tenders,
        vec![
            ("gift_card".to_owned(), usd("5.00")),
            ("store_credit".to_owned(), usd("3.00"))
        ]
    );
    assert_eq!(order.payment().authorized(), usd("8.50"));
    assert_eq!(order.payment().captured(), usd("8.50"));
    assert_eq!(shop.payments.authorizations()[0].amount, usd("8.50"));
    assert_eq!(balance(&shop, &code).await, usd("0.00"));
    assert_eq!(
        shop.engine
            .store_credit(&me, customer, Currency::USD)
            .await
            .unwrap(),
        usd("0.00")
    );

    // Refunds: the card first, then the tenders in reverse (store credit,
    // then the gift card).
    let refund = |amount: &str, k: &str| ManualRefund::new(usd(amount), "goodwill", key(k));
    let o = shop
        .engine
        .refund(&staff(), order.id(), refund("10.00", "r1"))
        .await
        .unwrap();
    assert_eq!(o.payment().refunded(), usd("8.50"));
    assert_eq!(o.tenders()[1].refunded(), usd("1.50"));
    assert_eq!(o.tenders()[0].refunded(), usd("0.00"));
    assert_eq!(
        shop.engine
            .store_credit(&me, customer, Currency::USD)
            .await
            .unwrap(),
        usd("1.50")
    );
    // The same key refunds once.
    let o = shop
        .engine
        .refund(&staff(), order.id(), refund("10.00", "r1"))
        .await
        .unwrap();
    assert_eq!(o.payment().refunded(), usd("8.50"));
    let o = shop
        .engine
        .refund(&staff(), order.id(), refund("6.50", "r2"))
        .await
        .unwrap();
    assert_eq!(o.tenders()[1].refunded(), usd("3.00"));
    assert_eq!(o.tenders()[0].refunded(), usd("5.00"));
    assert_eq!(balance(&shop, &code).await, usd("5.00"));
    let beyond = shop
        .engine
        .refund(&staff(), order.id(), refund("0.01", "r3"))
        .await;
    assert!(matches!(beyond, Err(Error::Invalid { .. })), "{beyond:?}");
    assert_eq!(shop.payments.authorizations()[0].refunded, usd("8.50"));
    assert!(!o.has_pending_work());
}

async fn a_cancelled_order_gives_every_payment_back(backend: Backend) {
    let shop = Shop::new(backend).await;
    let v = shop.product("A", "10.00", 5).await;
    let (customer, cart) = customer_cart(&shop, v, 1).await;
    let me = Actor::Customer(customer);
    let code = issue(&shop, "4.00", "gc").await;
    let order = shop
        .engine
        .checkout(request(&me, cart.id(), "k", "tok_visa").gift_card(&code))
        .await
        .unwrap()
        .order;
    assert_eq!(balance(&shop, &code).await, usd("0.00"));
    let o = shop
        .engine
        .cancel(&me, order.id(), "changed my mind")
        .await
        .unwrap();
    assert_eq!(o.status(), OrderStatus::Cancelled);
    assert_eq!(o.payment().refunded(), usd("12.50"));
    assert_eq!(o.tenders()[0].refunded(), usd("4.00"));
    assert_eq!(o.tenders()[0].status(), PaymentStatus::Refunded);
    assert_eq!(balance(&shop, &code).await, usd("4.00"));
    assert_eq!(shop.engine.stock(v).await.unwrap().reserved, 0);
}

async fn a_declined_card_gives_the_gift_card_back(backend: Backend) {
    let shop = Shop::new(backend).await;
    let v = shop.product("A", "10.00", 5).await;
    let cart = shop.ready_cart(&[(v, 1)]).await;
    let code = issue(&shop, "5.00", "gc").await;
    let declined = shop
        .engine
        .checkout(request(&Actor::Guest, cart.id(), "k", "tok_decline").gift_card(&code))
        .await;
    assert!(
        matches!(declined, Err(Error::PaymentDeclined { .. })),
        "{declined:?}"
    );
    assert_eq!(balance(&shop, &code).await, usd("5.00"));
    assert_eq!(shop.engine.stock(v).await.unwrap().reserved, 0);
    // The ledger shows both entries; nothing was rewritten.
    let card = shop
        .engine
        .gift_card(&Actor::System, {
            let found = shop
                .engine
                .gift_card_balance(&Actor::System, &code)
                .await
                .unwrap();
            assert!(found.spendable);
            ledger_id(&shop, &code).await
        })
        .await
        .unwrap();
    let kinds: Vec<_> = card.entries().iter().map(|e| e.kind).collect();
    use cartwright::giftcard::EntryKind::*;
    assert_eq!(kinds, vec![Issue, Redeem, Release]);
    // A guest cart cannot use store credit; an order paid wholly by a gift
    // card needs no card token.
    let no_credit = shop
        .engine
        .checkout(request(&Actor::Guest, cart.id(), "k2", "tok_visa").store_credit(true))
        .await;
    assert!(
        matches!(no_credit, Err(Error::Invalid { .. })),
        "{no_credit:?}"
    );
    let big = issue(&shop, "100.00", "gc-big").await;
    let order = shop
        .engine
        .checkout(request(&Actor::Guest, cart.id(), "k3", "").gift_card(&big))
        .await
        .unwrap()
        .order;
    assert_eq!(order.payment().authorized(), usd("0.00"));
    assert_eq!(order.tenders()[0].captured(), usd("16.50"));
    assert_eq!(balance(&shop, &big).await, usd("83.50"));
}

/// The card's id, found through an order-less route: the ledger of the
/// card the code names (staff look it up by id).
async fn ledger_id(shop: &Shop, code: &str) -> cartwright::giftcard::GiftCardId {
    let normalized = cartwright::giftcard::normalize_code(code).unwrap();
    shop.engine
        .store()
        .gift_card_by_code(&cartwright::giftcard::hash_code(&normalized))
        .await
        .unwrap()
        .unwrap()
        .id()
}

async fn a_waiting_payment_keeps_then_gives_back_its_gift_card(backend: Backend) {
    let shop = Shop::new(backend).await;
    let v = shop.product("A", "10.00", 5).await;
    let cart = shop.ready_cart(&[(v, 1)]).await;
    let code = issue(&shop, "5.00", "gc").await;
    let step = shop
        .engine
        .start_checkout(request(&Actor::Guest, cart.id(), "k", "tok_3ds").gift_card(&code))
        .await
        .unwrap();
    let cartwright::checkout::CheckoutStep::AwaitingPayment(session) = step else {
        panic!("expected a waiting payment");
    };
    assert_eq!(
        session.amount,
        usd("11.50"),
        "the card pays what the gift card does not"
    );
    assert_eq!(
        balance(&shop, &code).await,
        usd("0.00"),
        "held while waiting"
    );
    shop.clock.advance(chrono::Duration::minutes(31));
    let report = shop.engine.recover().await.unwrap();
    assert_eq!(report.ended_sessions, 1);
    assert_eq!(balance(&shop, &code).await, usd("5.00"));
}

async fn a_stuck_attempt_is_given_back_by_recovery(backend: Backend) {
    let shop = Shop::new(backend).await;
    let v = shop.product("A", "10.00", 5).await;
    let cart = shop.ready_cart(&[(v, 1)]).await;
    let code = issue(&shop, "5.00", "gc").await;
    // The authorization's answer is lost and the gateway is then down: the
    // attempt cannot give anything back now.
    shop.payments
        .inject(Operation::Authorize, Fault::TimeoutAfterProcessing);
    shop.payments.inject(Operation::Void, Fault::Unavailable);
    let stuck = shop
        .engine
        .checkout(request(&Actor::Guest, cart.id(), "k", "tok_visa").gift_card(&code))
        .await;
    assert!(stuck.is_err());
    assert_eq!(balance(&shop, &code).await, usd("0.00"));
    shop.clock.advance(chrono::Duration::minutes(5));
    let report = shop.engine.recover().await.unwrap();
    assert_eq!(report.reset_checkouts, 1);
    assert_eq!(balance(&shop, &code).await, usd("5.00"));
    assert!(shop.payments.open_holds().is_empty());
    // And the retry pays once.
    let order = shop
        .engine
        .checkout(request(&Actor::Guest, cart.id(), "k", "tok_visa").gift_card(&code))
        .await
        .unwrap()
        .order;
    assert_eq!(order.tenders()[0].captured(), usd("5.00"));
    assert_eq!(balance(&shop, &code).await, usd("0.00"));
}

/// Many checkouts over two engines race for one card: it is never
/// overdrawn, and what the orders took plus what is left is what it held.
async fn concurrent_redemptions_never_overdraw(backend: Backend) {
    let shop = Shop::new(backend).await;
    let v = shop.product("A", "10.00", 100).await;
    let code = issue(&shop, "40.00", "gc").await;
    let engines = [shop.engine.clone(), shop.second_engine().await];
    let mut carts = Vec::new();
    for _ in 0..12 {
        carts.push(shop.ready_cart(&[(v, 1)]).await.id());
    }
    let mut tasks = Vec::new();
    for (i, cart) in carts.into_iter().enumerate() {
        let engine = engines[i % 2].clone();
        let code = code.clone();
        tasks.push(tokio::spawn(async move {
            engine
                .checkout(
                    CheckoutRequest::new(
                        cart,
                        IdempotencyKey::new(format!("race-{i}")).unwrap(),
                        "tok_visa",
                        Actor::Guest,
                    )
                    .gift_card(code),
                )
                .await
        }));
    }
    let mut taken = usd("0.00");
    for task in tasks {
        match task.await.unwrap() {
            Ok(outcome) => {
                for t in outcome.order.tenders() {
                    taken = taken.checked_add(t.captured()).unwrap();
                }
                let paid = outcome
                    .order
                    .payments()
                    .try_fold(usd("0.00"), |s, p| s.checked_add(p.captured()))
                    .unwrap();
                assert_eq!(
                    paid,
                    outcome.order.total(),
                    "the payments add up to the total"
                );
            }
            Err(e) => assert!(
                matches!(
                    e,
                    Error::InsufficientBalance { .. } | Error::NotFound { .. }
                ),
                "{e:?}"
            ),
        }
    }
    let left = balance(&shop, &code).await;
    assert!(!left.is_negative());
    assert_eq!(taken.checked_add(left).unwrap(), usd("40.00"));
    // Twelve buyers wanted 198.00 of a 40.00 card: a checkout that lost the
    // race for the balance plans again (taking what is left), so no buyer
    // is refused while the card still has money.
    assert_eq!(
        left,
        usd("0.00"),
        "buyers were refused while the card had money"
    );
}

/// A checkout that redeems a gift card parks a waiting payment for the
/// shorter gift-card hold, so an abandoned 3-D Secure payment gives the
/// balance back sooner.
async fn a_waiting_payment_holds_a_gift_card_only_as_long_as_the_shop_allows(backend: Backend) {
    let config = cartwright::EngineConfig::default().gift_card_hold(chrono::Duration::minutes(5));
    let shop = Shop::with(
        backend,
        common::ShopOptions {
            config: Some(config),
            ..common::ShopOptions::default()
        },
    )
    .await;
    let v = shop.product("A", "10.00", 5).await;
    let code = issue(&shop, "5.00", "gc").await;
    let cart = shop.ready_cart(&[(v, 1)]).await;
    let step = shop
        .engine
        .start_checkout(
            CheckoutRequest::new(cart.id(), key("k"), "tok_3ds", Actor::Guest).gift_card(&code),
        )
        .await
        .unwrap();
    let cartwright::checkout::CheckoutStep::AwaitingPayment(session) = step else {
        panic!("expected a waiting payment, got {step:?}");
    };
    assert_eq!(
        session.expires_at,
        cartwright::clock::Clock::now(shop.clock.as_ref()) + chrono::Duration::minutes(5)
    );
    assert_eq!(
        balance(&shop, &code).await,
        usd("0.00"),
        "held while it waits"
    );
    // Abandoned: once the hold is over, recovery gives the balance back.
    shop.clock.advance(chrono::Duration::minutes(6));
    shop.engine.recover().await.unwrap();
    assert_eq!(balance(&shop, &code).await, usd("5.00"));
    // Without gift cards a session keeps its full time.
    let cart = shop.ready_cart(&[(v, 1)]).await;
    let step = shop
        .engine
        .start_checkout(CheckoutRequest::new(
            cart.id(),
            key("k2"),
            "tok_3ds",
            Actor::Guest,
        ))
        .await
        .unwrap();
    let cartwright::checkout::CheckoutStep::AwaitingPayment(session) = step else {
        panic!("expected a waiting payment, got {step:?}");
    };
    assert_eq!(
        session.expires_at,
        cartwright::clock::Clock::now(shop.clock.as_ref()) + chrono::Duration::minutes(30)
    );
}

conformance!(
    a_waiting_payment_holds_a_gift_card_only_as_long_as_the_shop_allows,
    codes_are_secret_and_guessing_is_limited,
    one_order_paid_by_gift_card_store_credit_and_card,
    a_cancelled_order_gives_every_payment_back,
    a_declined_card_gives_the_gift_card_back,
    a_waiting_payment_keeps_then_gives_back_its_gift_card,
    a_stuck_attempt_is_given_back_by_recovery,
    concurrent_redemptions_never_overdraw,
    a_return_is_refunded_over_the_payments,
);

mod split_refunds {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]
        /// Whatever the split and the refunds asked for, the books stay
        /// exact: every cent refunded is counted once on one payment,
        /// never beyond what it collected; the provider's payment is
        /// refunded first; the ledger and the gateway agree with the order.
        #[test]
        fn refunds_spread_over_the_payments_to_the_cent(
            gift in 1i64..=1650,
            refunds in prop::collection::vec(1i64..900, 1..8),
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let shop = Shop::new(Backend::Memory).await;
                let v = shop.product("A", "10.00", 5).await;
                let cart = shop.ready_cart(&[(v, 1)]).await;
                let code = shop
                    .engine
                    .issue_gift_card(&staff(), NewGiftCard::new(Money::from_minor(gift, Currency::USD)), &key("gc"))
                    .await
                    .unwrap()
                    .code;
                let order = shop
                    .engine
                    .checkout(request(&Actor::Guest, cart.id(), "k", "tok_visa").gift_card(&code))
                    .await
                    .unwrap()
                    .order;
                let mut asked = 0i64;
                for (i, minor) in refunds.into_iter().enumerate() {
                    let r = shop
                        .engine
                        .refund(
                            &staff(),
                            order.id(),
                            ManualRefund::new(Money::from_minor(minor, Currency::USD), "x", key(&format!("r{i}"))),
                        )
                        .await;
                    if r.is_ok() {
                        asked += minor;
                    }
                }
                let o = shop.engine.order(&Actor::System, order.id()).await.unwrap();
                let refunded: i64 = o
                    .payments()
                    .map(|p| i64::try_from(p.refunded().to_minor().unwrap()).unwrap())
                    .sum();
                assert_eq!(refunded, asked);
                assert!(asked <= 1650);
                for p in o.payments() {
                    assert!(p.refunded().amount() <= p.captured().amount());
                }
                let card_first = o.payment().refunded() == o.payment().captured()
                    || o.tenders().iter().all(|t| t.refunded().is_zero());
                assert!(card_first, "the provider's payment is refunded first");
                assert_eq!(shop.payments.authorizations().first().map(|a| a.refunded).unwrap_or(usd("0.00")), o.payment().refunded());
                let left = shop.engine.gift_card_balance(&Actor::System, &code).await.unwrap().balance;
                assert_eq!(left, o.tenders()[0].refunded());
            });
        }
    }
}

/// A return of an order paid by a gift card and a card is refunded to the
/// card first, then to the gift card, and completes once both are done.
async fn a_return_is_refunded_over_the_payments(backend: Backend) {
    use cartwright::fulfillment::{ReturnRequest, ShipmentRequest};
    use cartwright::order::{LineQuantity, ReturnState, ShippingRefund};
    let shop = Shop::new(backend).await;
    let v = shop.product("A", "10.00", 5).await;
    let cart = shop.ready_cart(&[(v, 1)]).await;
    let code = issue(&shop, "12.00", "gc").await;
    let order = shop
        .engine
        .checkout(request(&Actor::Guest, cart.id(), "k", "tok_visa").gift_card(&code))
        .await
        .unwrap()
        .order;
    assert_eq!(order.payment().captured(), usd("4.50"));
    let items = vec![LineQuantity {
        line_id: order.pricing().lines[0].line_id,
        quantity: 1,
    }];
    shop.engine
        .ship(
            &staff(),
            order.id(),
            ShipmentRequest::new(items.clone()).carrier("UPS"),
        )
        .await
        .unwrap();
    let o = shop
        .engine
        .return_items(
            &staff(),
            order.id(),
            ReturnRequest::new(items, key("ret"))
                .restock(true)
                .shipping(ShippingRefund::Never),
        )
        .await
        .unwrap();
    assert_eq!(o.returns()[0].refund, usd("11.00"));
    assert_eq!(o.returns()[0].state, ReturnState::Completed);
    assert_eq!(o.payment().refunded(), usd("4.50"));
    assert_eq!(o.tenders()[0].refunded(), usd("6.50"));
    assert_eq!(balance(&shop, &code).await, usd("6.50"));
    assert!(!o.has_pending_work());
    assert_eq!(shop.engine.stock(v).await.unwrap().on_hand, 5, "restocked");
}
