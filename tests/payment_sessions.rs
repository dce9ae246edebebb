//! Payments that wait for the customer (3-D Secure, redirects) or the
//! provider: the checkout parks with its stock reserved, and the payment
//! completes exactly once — by the buyer's return or the provider's event,
//! in any order, any number of times — or fails, is cancelled or expires
//! and gives everything back. On both stores.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::Arc;

use cartwright::cart::Cart;
use cartwright::checkout::{CheckoutStep, EventOutcome};
use cartwright::id::{CartId, VariantId};
use cartwright::payment::{
    CustomerAction, PaymentSession, PaymentStatus, ProviderEvent, ProviderEventKind,
    ProviderStatus, TestPaymentProvider,
};
use cartwright::prelude::*;
use common::{Backend, Shop, ShopOptions, usd};

fn request(cart: CartId, key: &str, token: &str) -> CheckoutRequest {
    CheckoutRequest::new(cart, IdempotencyKey::new(key).unwrap(), token, Actor::Guest)
}

fn key(k: &str) -> IdempotencyKey {
    IdempotencyKey::new(k).unwrap()
}

fn provider() -> Actor {
    Actor::Provider("test".into())
}

/// A shop with one product (3 in stock) and a guest cart for one unit,
/// checked out with `token` under key "k": the session it waits on.
async fn waiting(shop: &Shop, token: &str) -> (Cart, VariantId, PaymentSession) {
    let a = shop.product("A", "10.00", 3).await;
    let cart = shop.ready_cart(&[(a, 1)]).await;
    let step = shop
        .engine
        .start_checkout(request(cart.id(), "k", token))
        .await
        .unwrap();
    let CheckoutStep::AwaitingPayment(session) = step else {
        panic!("expected a waiting payment, got {step:?}");
    };
    (cart, a, session)
}

async fn reserved(shop: &Shop, variant: VariantId) -> i64 {
    shop.engine.stock(variant).await.unwrap().reserved
}

fn placed(step: CheckoutStep) -> cartwright::checkout::CheckoutOutcome {
    step.placed().expect("the order is placed")
}

async fn the_return_places_the_order_once(backend: Backend) {
    let shop = Shop::new(backend).await;
    let (cart, a, session) = waiting(&shop, "tok_3ds").await;
    assert_eq!(session.status, ProviderStatus::RequiresAction);
    assert_eq!(session.amount, usd("16.50"));
    assert_eq!(session.checkout_key, key("k"));
    let Some(CustomerAction::Redirect { url }) = &session.action else {
        panic!("a redirect is asked for: {:?}", session.action);
    };
    assert!(url.starts_with("https://"));
    assert_eq!(
        reserved(&shop, a).await,
        1,
        "the stock waits with the payment"
    );
    assert!(shop.payments.open_holds().is_empty(), "nothing is held yet");

    // The plain checkout says so as an error carrying the same session.
    match shop
        .engine
        .checkout(request(cart.id(), "k", "tok_3ds"))
        .await
    {
        Err(Error::PaymentPending(s)) => assert_eq!(*s, session),
        other => panic!("expected PaymentPending, got {other:?}"),
    }
    // Back before acting: still waiting, nothing placed.
    let step = shop
        .engine
        .complete_checkout(&Actor::Guest, cart.id(), &key("k"))
        .await
        .unwrap();
    assert!(
        matches!(step, CheckoutStep::AwaitingPayment(ref s) if s.reference == session.reference)
    );

    // The customer passes the challenge, then comes back — twice.
    let event = shop.payments.complete_action(&session.reference).unwrap();
    let first = placed(
        shop.engine
            .complete_checkout(&Actor::Guest, cart.id(), &key("k"))
            .await
            .unwrap(),
    );
    assert_eq!(
        first.order.id(),
        session.order_id,
        "the id the session named"
    );
    assert_eq!(first.payment, PaymentOutcome::Paid);
    assert_eq!(first.order.payment().captured(), usd("16.50"));
    let token = first.access_token.clone().expect("a guest gets a token");
    let again = placed(
        shop.engine
            .complete_checkout(&Actor::Guest, cart.id(), &key("k"))
            .await
            .unwrap(),
    );
    assert_eq!(again.order.id(), first.order.id());
    assert_eq!(again.access_token, Some(token.clone()));
    // A retry of the checkout itself answers the same.
    let retry = shop
        .engine
        .checkout(request(cart.id(), "k", "tok_3ds"))
        .await
        .unwrap();
    assert_eq!(retry.order.id(), first.order.id());
    // The event arriving late is applied to the order, once.
    for _ in 0..3 {
        let outcome = shop
            .engine
            .apply_provider_event(&provider(), &event)
            .await
            .unwrap();
        assert_eq!(outcome.order().map(|o| o.id()), Some(first.order.id()));
    }
    // The guest reaches the order with the token.
    let guest = Actor::GuestWithToken(token);
    assert!(shop.engine.order(&guest, first.order.id()).await.is_ok());
    // One authorization, captured once; the stock is the order's.
    let auths = shop.payments.authorizations();
    assert_eq!(auths.len(), 1);
    assert_eq!(auths[0].captured, usd("16.50"));
    let stock = shop.engine.stock(a).await.unwrap();
    assert_eq!((stock.on_hand, stock.reserved), (3, 1));
    let cart = shop.engine.cart(&Actor::Guest, cart.id()).await.unwrap();
    assert!(cart.ensure_active().is_err(), "the cart is completed");
}

async fn the_event_first_then_the_return(backend: Backend) {
    let shop = Shop::new(backend).await;
    let (cart, _, session) = waiting(&shop, "tok_3ds_sdk").await;
    assert!(matches!(
        session.action,
        Some(CustomerAction::ClientData { .. })
    ));
    let event = shop.payments.complete_action(&session.reference).unwrap();
    let by_event = shop
        .engine
        .apply_provider_event(&provider(), &event)
        .await
        .unwrap()
        .into_order()
        .expect("the event placed the order");
    assert_eq!(by_event.id(), session.order_id);
    // The provider's view carries no guest token or personal data beyond
    // what it may see; the buyer's return gets the order and its token.
    let back = placed(
        shop.engine
            .complete_checkout(&Actor::Guest, cart.id(), &key("k"))
            .await
            .unwrap(),
    );
    assert_eq!(back.order.id(), by_event.id());
    let token = back.access_token.unwrap();
    assert!(
        shop.engine
            .order(&Actor::GuestWithToken(token), by_event.id())
            .await
            .is_ok()
    );
    assert_eq!(shop.payments.authorizations().len(), 1);
    assert_eq!(shop.payments.authorizations()[0].captured, usd("16.50"));
}

/// The event that completed a waiting payment is recorded as applied in
/// the command that placed the order: replaying its id — with the same
/// content or another (a capture the gateway never made) — changes nothing.
async fn a_replayed_event_that_placed_the_order_changes_nothing(backend: Backend) {
    let shop = Shop::with(
        backend,
        ShopOptions {
            capture: CaptureMode::Manual,
            ..ShopOptions::default()
        },
    )
    .await;
    let (_, _, session) = waiting(&shop, "tok_3ds").await;
    let event = shop.payments.complete_action(&session.reference).unwrap();
    let order = shop
        .engine
        .apply_provider_event(&provider(), &event)
        .await
        .unwrap()
        .into_order()
        .expect("the event placed the order");
    assert_eq!(order.payment().status(), PaymentStatus::Authorized);
    let before = shop.snapshot().await;
    let forged = TestPaymentProvider::event(
        &session.reference,
        &event.id,
        ProviderEventKind::Captured {
            captured_total: usd("15.50"),
        },
    );
    for replay in [&event, &forged] {
        shop.engine
            .apply_provider_event(&provider(), replay)
            .await
            .unwrap();
    }
    assert_eq!(shop.snapshot().await, before, "a replay changes nothing");
    let order = shop.engine.order(&Actor::System, order.id()).await.unwrap();
    assert!(order.payment().captured().is_zero());
    assert!(shop.payments.authorizations()[0].captured.is_zero());
    // A replay while the payment still waits changes nothing either.
    let (cart2, session2) = {
        let a = shop.product("B", "10.00", 3).await;
        let cart = shop.ready_cart(&[(a, 1)]).await;
        let CheckoutStep::AwaitingPayment(session) = shop
            .engine
            .start_checkout(request(cart.id(), "k2", "tok_event_only"))
            .await
            .unwrap()
        else {
            panic!("expected a waiting payment");
        };
        (cart, session)
    };
    let waiting_event = TestPaymentProvider::event(
        &session2.reference,
        "evt-still-processing",
        ProviderEventKind::Disputed {
            amount: usd("1.00"),
            reason: "test".into(),
        },
    );
    let _ = shop
        .engine
        .apply_provider_event(&provider(), &waiting_event)
        .await;
    let confirmed = shop.payments.confirm(&session2.reference).unwrap();
    let placed = shop
        .engine
        .apply_provider_event(&provider(), &confirmed)
        .await
        .unwrap()
        .into_order()
        .unwrap();
    let replayed = TestPaymentProvider::event(
        &session2.reference,
        &confirmed.id,
        ProviderEventKind::Failed {
            reason: "forged".into(),
        },
    );
    shop.engine
        .apply_provider_event(&provider(), &replayed)
        .await
        .unwrap();
    let placed = shop
        .engine
        .order(&Actor::System, placed.id())
        .await
        .unwrap();
    assert_eq!(placed.payment().status(), PaymentStatus::Authorized);
    let _ = cart2;
}

/// Many returns and many deliveries of the event, over two engines, all at
/// once: one order, one capture.
async fn returns_and_events_racing_place_one_order(backend: Backend) {
    let shop = Shop::new(backend).await;
    let (cart, a, session) = waiting(&shop, "tok_3ds").await;
    let event = shop.payments.complete_action(&session.reference).unwrap();
    let engines = [shop.engine.clone(), shop.second_engine().await];
    let mut tasks = Vec::new();
    for i in 0..16 {
        let engine = engines[i % 2].clone();
        let event = event.clone();
        let cart = cart.id();
        tasks.push(tokio::spawn(async move {
            if i % 3 == 0 {
                engine
                    .apply_provider_event(&Actor::Provider("test".into()), &event)
                    .await
                    .map(|o| o.order().map(|o| o.id()))
            } else {
                engine
                    .complete_checkout(&Actor::Guest, cart, &key("k"))
                    .await
                    .map(|s| s.placed().map(|o| o.order.id()))
            }
        }));
    }
    for task in tasks {
        match task.await.unwrap() {
            Ok(id) => assert_eq!(id, Some(session.order_id)),
            Err(e) => assert!(
                matches!(e, Error::CheckoutInProgress(_)),
                "only a busy answer may differ: {e:?}"
            ),
        }
    }
    let done = placed(
        shop.engine
            .complete_checkout(&Actor::Guest, cart.id(), &key("k"))
            .await
            .unwrap(),
    );
    assert_eq!(done.order.id(), session.order_id);
    let auths = shop.payments.authorizations();
    assert_eq!(auths.len(), 1);
    assert_eq!(auths[0].captured, usd("16.50"), "captured once");
    let captures = shop
        .payments
        .calls()
        .iter()
        .filter(|c| c.operation == cartwright::payment::Operation::Capture && c.took_effect)
        .count();
    assert_eq!(captures, 1);
    let stock = shop.engine.stock(a).await.unwrap();
    assert_eq!(stock.reserved, 1, "one unit, allocated to the one order");
}

async fn a_failed_challenge_gives_everything_back(backend: Backend) {
    let shop = Shop::new(backend).await;
    let promotion = shop
        .engine
        .save_promotion(&Actor::System, common::ten_percent_coded())
        .await
        .unwrap();
    let a = shop.product("A", "10.00", 1).await;
    let cart = shop.ready_cart(&[(a, 1)]).await;
    shop.engine
        .create_coupon(&Actor::System, promotion.id, "ONCE", Some(1))
        .await
        .unwrap();
    shop.engine
        .add_coupon_code(&Actor::Guest, cart.id(), "ONCE")
        .await
        .unwrap();
    let step = shop
        .engine
        .start_checkout(request(cart.id(), "k", "tok_3ds_fail"))
        .await
        .unwrap();
    let CheckoutStep::AwaitingPayment(session) = step else {
        panic!("expected a waiting payment");
    };
    assert_eq!(reserved(&shop, a).await, 1);
    let event = shop.payments.complete_action(&session.reference).unwrap();
    assert!(matches!(event.kind, ProviderEventKind::Failed { .. }));
    let outcome = shop
        .engine
        .apply_provider_event(&provider(), &event)
        .await
        .unwrap();
    let EventOutcome::CheckoutFailed {
        checkout_key,
        failure,
    } = outcome
    else {
        panic!("the event ends the checkout: {outcome:?}");
    };
    assert_eq!(checkout_key, key("k"));
    assert!(matches!(
        failure,
        cartwright::store::CheckoutFailure::PaymentDeclined { ref code, .. } if code == "payment_failed"
    ));
    // The same event again answers the same and changes nothing.
    let before = shop.snapshot().await;
    let again = shop
        .engine
        .apply_provider_event(&provider(), &event)
        .await
        .unwrap();
    assert!(matches!(again, EventOutcome::CheckoutFailed { .. }));
    assert_eq!(shop.snapshot().await, before);
    // Stock and the coupon's use are back; the key keeps its answer.
    assert_eq!(reserved(&shop, a).await, 0);
    assert_eq!(
        shop.engine
            .usage(&Actor::System, "coupon:ONCE:uses")
            .await
            .unwrap(),
        0
    );
    let back = shop
        .engine
        .complete_checkout(&Actor::Guest, cart.id(), &key("k"))
        .await;
    assert!(
        matches!(back, Err(Error::PaymentDeclined { .. })),
        "{back:?}"
    );
    // The cart is still usable: another key with a card that works.
    let order = shop
        .engine
        .checkout(request(cart.id(), "k2", "tok_visa"))
        .await
        .unwrap()
        .order;
    assert_eq!(order.total(), usd("15.40"), "the coupon still applies");
}

async fn an_expired_session_is_cancelled_and_its_stock_released(backend: Backend) {
    let shop = Shop::new(backend).await;
    let (cart, a, session) = waiting(&shop, "tok_3ds").await;
    // Not yet expired: recovery leaves it alone.
    shop.clock.advance(chrono::Duration::minutes(10));
    let report = shop.engine.recover().await.unwrap();
    assert_eq!((report.completed_sessions, report.ended_sessions), (0, 0));
    assert_eq!(reserved(&shop, a).await, 1);
    // Past the session's life (30 minutes by default).
    shop.clock.advance(chrono::Duration::minutes(21));
    let report = shop.engine.recover().await.unwrap();
    assert_eq!(report.ended_sessions, 1);
    assert_eq!(reserved(&shop, a).await, 0);
    let auth = &shop.payments.authorizations()[0];
    assert!(auth.voided, "cancelled at the provider");
    // The customer acting now cannot complete it.
    assert!(shop.payments.complete_action(&session.reference).is_err());
    let back = shop
        .engine
        .complete_checkout(&Actor::Guest, cart.id(), &key("k"))
        .await;
    assert!(
        matches!(back, Err(Error::PaymentDeclined { ref code, .. }) if code == "payment_session_expired"),
        "{back:?}"
    );
    // A second recovery has nothing to do.
    let report = shop.engine.recover().await.unwrap();
    assert_eq!(report.ended_sessions, 0);
    assert!(
        shop.engine
            .cart(&Actor::Guest, cart.id())
            .await
            .unwrap()
            .ensure_active()
            .is_ok()
    );
}

async fn a_payment_completed_but_never_reported_is_placed_by_recovery(backend: Backend) {
    let shop = Shop::new(backend).await;
    let (_, a, session) = waiting(&shop, "tok_3ds").await;
    // The customer passed the challenge, closed the tab, and the event was lost.
    shop.payments.complete_action(&session.reference).unwrap();
    shop.clock.advance(chrono::Duration::minutes(31));
    let report = shop.engine.recover().await.unwrap();
    assert_eq!(report.completed_sessions, 1);
    let order = shop
        .engine
        .order(&Actor::System, session.order_id)
        .await
        .unwrap();
    assert_eq!(order.payment().status(), PaymentStatus::Captured);
    assert_eq!(reserved(&shop, a).await, 1, "allocated to the order");
}

async fn a_payment_confirmed_only_by_event(backend: Backend) {
    let shop = Shop::new(backend).await;
    let (cart, _, session) = waiting(&shop, "tok_event_only").await;
    assert_eq!(session.status, ProviderStatus::Processing);
    assert_eq!(session.action, None, "nothing for the customer to do");
    // The buyer's return finds it still processing.
    for _ in 0..2 {
        let step = shop
            .engine
            .complete_checkout(&Actor::Guest, cart.id(), &key("k"))
            .await
            .unwrap();
        assert!(
            matches!(step, CheckoutStep::AwaitingPayment(ref s) if s.status == ProviderStatus::Processing)
        );
    }
    let event = shop.payments.confirm(&session.reference).unwrap();
    let order = shop
        .engine
        .apply_provider_event(&provider(), &event)
        .await
        .unwrap()
        .into_order()
        .unwrap();
    assert_eq!(order.id(), session.order_id);
}

async fn the_buyer_cancels_a_waiting_payment(backend: Backend) {
    let shop = Shop::new(backend).await;
    let (cart, a, session) = waiting(&shop, "tok_3ds").await;
    shop.engine
        .cancel_checkout(&Actor::Guest, cart.id(), &key("k"))
        .await
        .unwrap();
    assert_eq!(reserved(&shop, a).await, 0);
    assert!(shop.payments.authorizations()[0].voided);
    assert!(shop.payments.complete_action(&session.reference).is_err());
    // Cancelling again is refused: nothing waits.
    assert!(matches!(
        shop.engine
            .cancel_checkout(&Actor::Guest, cart.id(), &key("k"))
            .await,
        Err(Error::Invalid { .. })
    ));
    // Pay another way, with a new key.
    let order = shop
        .engine
        .checkout(request(cart.id(), "k2", "tok_visa"))
        .await
        .unwrap()
        .order;
    assert_eq!(order.payment().captured(), usd("16.50"));
}

async fn a_sale_completes_as_collected(backend: Backend) {
    let shop = Shop::new(backend).await;
    shop.payments.allow_sales(true);
    let (_, _, session) = waiting(&shop, "tok_3ds").await;
    let event = shop.payments.complete_action(&session.reference).unwrap();
    assert!(matches!(event.kind, ProviderEventKind::Captured { .. }));
    let order = shop
        .engine
        .apply_provider_event(&provider(), &event)
        .await
        .unwrap()
        .into_order()
        .unwrap();
    assert_eq!(order.payment().status(), PaymentStatus::Captured);
    assert_eq!(order.payment().captured(), usd("16.50"));
    let captures = shop
        .payments
        .calls()
        .iter()
        .filter(|c| c.operation == cartwright::payment::Operation::Capture)
        .count();
    assert_eq!(captures, 0, "collected by the authorization itself");
}

/// A store failure while placing a completed payment keeps it waiting (the
/// money stays held); the next return places it.
async fn a_store_failure_while_placing_keeps_the_payment_waiting(backend: Backend) {
    let shop = Shop::with(
        backend,
        ShopOptions {
            faulty: true,
            ..ShopOptions::default()
        },
    )
    .await;
    let (cart, _, session) = waiting(&shop, "tok_3ds").await;
    shop.payments.complete_action(&session.reference).unwrap();
    let faults = shop.faults.clone().unwrap();
    faults.inject(
        common::faulty::Command::PlaceOrder,
        common::faulty::When::Before,
    );
    let failed = shop
        .engine
        .complete_checkout(&Actor::Guest, cart.id(), &key("k"))
        .await;
    assert!(matches!(failed, Err(Error::Storage { .. })), "{failed:?}");
    assert!(
        !shop.payments.authorizations()[0].voided,
        "the hold is kept"
    );
    // The commit happens but its answer is lost: the order is found.
    faults.inject(
        common::faulty::Command::PlaceOrder,
        common::faulty::When::After,
    );
    let done = placed(
        shop.engine
            .complete_checkout(&Actor::Guest, cart.id(), &key("k"))
            .await
            .unwrap(),
    );
    assert_eq!(done.order.id(), session.order_id);
    assert_eq!(done.order.payment().captured(), usd("16.50"));
}

/// What a provider sends is checked: an event's captured total must be the
/// session's amount, and a provider may report only on its own payments.
async fn hostile_events_change_nothing(backend: Backend) {
    let shop = Shop::new(backend).await;
    let (_, a, session) = waiting(&shop, "tok_3ds").await;
    let before = shop.snapshot().await;
    let wrong_total = ProviderEvent::new(
        "evt_x",
        &session.reference,
        ProviderEventKind::Captured {
            captured_total: usd("1.00"),
        },
    );
    assert!(matches!(
        shop.engine
            .apply_provider_event(&provider(), &wrong_total)
            .await,
        Err(Error::Invalid { .. })
    ));
    let other_provider =
        ProviderEvent::new("evt_y", &session.reference, ProviderEventKind::Authorized);
    assert!(matches!(
        shop.engine
            .apply_provider_event(&Actor::Provider("elsewhere".into()), &other_provider)
            .await,
        Err(Error::Forbidden)
    ));
    assert!(matches!(
        shop.engine
            .apply_provider_event(&Actor::Guest, &other_provider)
            .await,
        Err(Error::Forbidden)
    ));
    let unknown = ProviderEvent::new("evt_z", "no_such_ref", ProviderEventKind::Authorized);
    assert!(matches!(
        shop.engine
            .apply_provider_event(&provider(), &unknown)
            .await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(shop.snapshot().await, before);
    assert_eq!(reserved(&shop, a).await, 1);
}

/// The buyer's proof is the cart: another customer cannot complete a
/// waiting checkout, nor learn of it with a key for another cart.
async fn only_the_buyer_completes(backend: Backend) {
    let shop = Shop::new(backend).await;
    let buyer = shop.customer("buyer@example.com").await;
    let me = Actor::Customer(buyer.id());
    let a = shop.product("A", "10.00", 3).await;
    let cart = shop.engine.create_cart(&me, Currency::USD).await.unwrap();
    shop.engine.add_item(&me, cart.id(), a, 1).await.unwrap();
    shop.complete_details(&me, cart.id()).await;
    let step = shop
        .engine
        .start_checkout(CheckoutRequest::new(
            cart.id(),
            key("k"),
            "tok_3ds",
            me.clone(),
        ))
        .await
        .unwrap();
    assert!(matches!(step, CheckoutStep::AwaitingPayment(_)));
    let other = shop.customer("other@example.com").await;
    let stranger = Actor::Customer(other.id());
    assert!(matches!(
        shop.engine
            .complete_checkout(&stranger, cart.id(), &key("k"))
            .await,
        Err(Error::Forbidden | Error::NotFound { .. })
    ));
    let theirs = shop
        .engine
        .create_cart(&stranger, Currency::USD)
        .await
        .unwrap();
    assert!(matches!(
        shop.engine
            .complete_checkout(&stranger, theirs.id(), &key("k"))
            .await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        shop.engine
            .complete_checkout(&Actor::Provider("test".into()), cart.id(), &key("k"))
            .await,
        Err(Error::Forbidden)
    ));
    assert!(matches!(
        shop.engine
            .cancel_checkout(&stranger, cart.id(), &key("k"))
            .await,
        Err(Error::Forbidden | Error::NotFound { .. })
    ));
    // The buyer still can.
    let step = shop
        .engine
        .complete_checkout(&me, cart.id(), &key("k"))
        .await
        .unwrap();
    assert!(matches!(step, CheckoutStep::AwaitingPayment(_)));
}

conformance!(
    the_return_places_the_order_once,
    a_replayed_event_that_placed_the_order_changes_nothing,
    the_event_first_then_the_return,
    returns_and_events_racing_place_one_order,
    a_failed_challenge_gives_everything_back,
    an_expired_session_is_cancelled_and_its_stock_released,
    a_payment_completed_but_never_reported_is_placed_by_recovery,
    a_payment_confirmed_only_by_event,
    the_buyer_cancels_a_waiting_payment,
    a_sale_completes_as_collected,
    a_store_failure_while_placing_keeps_the_payment_waiting,
    hostile_events_change_nothing,
    only_the_buyer_completes,
);

/// A provider whose answers a test rewrites (a misbehaving gateway).
struct Rewriting {
    inner: Arc<TestPaymentProvider>,
    action: CustomerAction,
}

#[async_trait::async_trait]
impl cartwright::payment::PaymentProvider for Rewriting {
    fn name(&self) -> &str {
        "test"
    }
    async fn authorize(
        &self,
        r: cartwright::payment::AuthorizeRequest,
    ) -> Result<cartwright::payment::ProviderResponse, cartwright::payment::PaymentError> {
        let mut answer = self.inner.authorize(r).await?;
        answer.action = Some(self.action.clone());
        Ok(answer)
    }
    async fn capture(
        &self,
        r: cartwright::payment::CaptureRequest,
    ) -> Result<cartwright::payment::ProviderResponse, cartwright::payment::PaymentError> {
        self.inner.capture(r).await
    }
    async fn void(
        &self,
        r: cartwright::payment::VoidRequest,
    ) -> Result<cartwright::payment::ProviderResponse, cartwright::payment::PaymentError> {
        self.inner.void(r).await
    }
    async fn refund(
        &self,
        r: cartwright::payment::RefundRequest,
    ) -> Result<cartwright::payment::ProviderResponse, cartwright::payment::PaymentError> {
        self.inner.refund(r).await
    }
    async fn find_authorization(
        &self,
        k: &str,
    ) -> Result<Option<cartwright::payment::ProviderResponse>, cartwright::payment::PaymentError>
    {
        self.inner.find_authorization(k).await
    }
}

/// A provider asking the customer to go somewhere that is not a web page is
/// not believed: the payment is cancelled and nothing stays reserved.
#[tokio::test]
async fn a_malformed_customer_action_is_refused() {
    for url in [
        "javascript:alert(1)".to_owned(),
        format!("https://{}", "a".repeat(3_000)),
        "https://bad url".to_owned(),
    ] {
        let inner = Arc::new(TestPaymentProvider::new());
        let shop = Shop::with(
            Backend::Memory,
            ShopOptions {
                provider: Some(Arc::new(Rewriting {
                    inner: inner.clone(),
                    action: CustomerAction::Redirect { url: url.clone() },
                })),
                ..ShopOptions::default()
            },
        )
        .await;
        let a = shop.product("A", "10.00", 3).await;
        let cart = shop.ready_cart(&[(a, 1)]).await;
        let result = shop
            .engine
            .start_checkout(request(cart.id(), "k", "tok_3ds"))
            .await;
        assert!(
            matches!(result, Err(Error::Invalid { .. })),
            "{url}: {result:?}"
        );
        assert_eq!(reserved(&shop, a).await, 0, "{url}");
        assert!(
            inner.authorizations()[0].voided,
            "{url}: cancelled at the provider"
        );
    }
}

/// Several providers in one engine: the checkout names one; each says which
/// currencies it takes; every later operation goes to the one that took
/// the payment.
#[tokio::test]
async fn several_providers_in_one_engine() {
    let cards = Arc::new(TestPaymentProvider::named("cards"));
    let wallet = Arc::new(TestPaymentProvider::named("wallet"));
    wallet.accept_only(&[Currency::EUR]);
    let engine = Engine::builder()
        .payment_provider(cards.clone())
        .payment_provider(wallet.clone())
        .shipping(Arc::new(
            cartwright::shipping::FlatRateShipping::new()
                .with_method("standard", "Standard", &[usd("5.00")])
                .unwrap(),
        ))
        .no_tax()
        .build()
        .unwrap();
    assert_eq!(engine.payment_providers(), vec!["cards", "wallet"]);
    let location = engine
        .create_location(&Actor::System, "W", 0)
        .await
        .unwrap()
        .id();
    let product = engine
        .create_product(
            &Actor::System,
            NewProduct::new("Mug")
                .status(cartwright::catalog::Status::Active)
                .variants(vec![
                    NewVariant::shipped("MUG")
                        .prices(vec![usd("10.00")])
                        .status(cartwright::catalog::Status::Active),
                ]),
        )
        .await
        .unwrap();
    let mug = product.variants()[0].id();
    engine
        .set_stock(&Actor::System, mug, location, 5)
        .await
        .unwrap();
    let cart = engine
        .create_cart(&Actor::Guest, Currency::USD)
        .await
        .unwrap();
    engine
        .add_item(&Actor::Guest, cart.id(), mug, 1)
        .await
        .unwrap();
    engine
        .set_email(&Actor::Guest, cart.id(), "a@example.com")
        .await
        .unwrap();
    engine
        .set_shipping_address(&Actor::Guest, cart.id(), common::address())
        .await
        .unwrap();
    engine
        .set_shipping_method(&Actor::Guest, cart.id(), "standard")
        .await
        .unwrap();

    // The wallet takes no dollars; an unknown provider is refused; neither
    // reserves anything or reaches a gateway.
    for name in ["wallet", "nope"] {
        let result = engine
            .checkout(request(cart.id(), "k", "tok_visa").provider(name))
            .await;
        assert!(
            matches!(result, Err(Error::Invalid { .. })),
            "{name}: {result:?}"
        );
    }
    assert_eq!(engine.stock(mug).await.unwrap().reserved, 0);
    assert!(cards.calls().is_empty() && wallet.calls().is_empty());

    let bad_method = engine
        .checkout(
            request(cart.id(), "k", "tok_visa")
                .provider("cards")
                .payment_method("no spaces"),
        )
        .await;
    assert!(
        matches!(bad_method, Err(Error::Invalid { .. })),
        "{bad_method:?}"
    );
    let order = engine
        .checkout(
            request(cart.id(), "k", "tok_visa")
                .provider("cards")
                .payment_method("card"),
        )
        .await
        .unwrap()
        .order;
    assert_eq!(order.payment().provider(), "cards");
    assert_eq!(order.payment().method(), Some("card"));
    assert!(order.payment().reference().starts_with("cards_"));
    let order = engine
        .refund(
            &Actor::Staff("ann".into()),
            order.id(),
            cartwright::money_path::ManualRefund::new(usd("4.00"), "goodwill", key("refund-1")),
        )
        .await
        .unwrap();
    assert_eq!(order.payment().refunded(), usd("4.00"));
    assert_eq!(cards.authorizations()[0].refunded, usd("4.00"));
    assert!(
        wallet.calls().is_empty(),
        "the other provider is never asked"
    );
    // The other provider may not report on this payment.
    let event = ProviderEvent::new(
        "evt_1",
        order.payment().reference(),
        ProviderEventKind::Refunded {
            refunded_total: usd("10.00"),
        },
    );
    assert!(matches!(
        engine
            .apply_provider_event(&Actor::Provider("wallet".into()), &event)
            .await,
        Err(Error::Forbidden)
    ));

    // Names are checked when the engine is built.
    let bad = Engine::builder()
        .payment_provider(Arc::new(TestPaymentProvider::named("none")))
        .no_tax()
        .build();
    assert!(matches!(bad, Err(Error::Invalid { .. })));
    let bad = Engine::builder()
        .payment_provider(cards.clone())
        .default_payment_provider("wallet")
        .no_tax()
        .build();
    assert!(matches!(bad, Err(Error::Invalid { .. })));
    let chosen = Engine::builder()
        .payment_provider(cards)
        .payment_provider(wallet)
        .default_payment_provider("wallet")
        .no_tax()
        .build()
        .unwrap();
    assert_eq!(chosen.payment_providers(), vec!["wallet", "cards"]);
}

/// The test provider's slow and timing-out tokens, through a checkout: a
/// slow gateway still charges once; an answer lost after the gateway acted
/// is found by its key and given back, nothing stays reserved.
#[tokio::test]
async fn slow_and_lost_answers_from_the_test_provider() {
    let shop = Shop::new(Backend::Memory).await;
    shop.payments
        .set_slow_delay(std::time::Duration::from_millis(30));
    let a = shop.product("A", "10.00", 3).await;
    let cart = shop.ready_cart(&[(a, 1)]).await;
    let order = shop
        .engine
        .checkout(request(cart.id(), "slow", "tok_slow"))
        .await
        .unwrap()
        .order;
    assert_eq!(order.payment().captured(), usd("16.50"));

    let cart = shop.ready_cart(&[(a, 1)]).await;
    let lost = shop
        .engine
        .checkout(request(cart.id(), "lost", "tok_timeout"))
        .await;
    assert!(
        matches!(lost, Err(Error::PaymentUnavailable(_))),
        "{lost:?}"
    );
    let auths = shop.payments.authorizations();
    assert_eq!(auths.len(), 2);
    assert!(
        auths[1].voided,
        "the hold made before the answer was lost is voided"
    );
    assert_eq!(reserved(&shop, a).await, 1, "only the first order's unit");
}
