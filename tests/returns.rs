//! Return requests (RMA) on both stores: asked for by the buyer, answered
//! by the policy, approved, received and refunded exactly, with events at
//! each step; units spoken for never returned twice, from two engines too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::Arc;
use std::time::Duration as StdDuration;

use cartwright::actor::AccessToken;
use cartwright::after_sale::RefundReturn;
use cartwright::event::{AfterSaleChange, EventKind};
use cartwright::fulfillment::{ReturnRequest, ShipmentRequest};
use cartwright::id::{OrderId, ReturnCaseId, VariantId};
use cartwright::order::{
    Eligibility, ItemCondition, LineQuantity, NewReturnCase, Order, ReceivedUnits, ReturnCaseState,
    ReturnFees, ReturnPolicy, ReturnReason, ReturnShipping, ReturnState, ShippingRefund,
    StandardReturnPolicy,
};
use cartwright::prelude::*;
use cartwright::pricing::PricedLine;
use chrono::Duration;
use chrono::{DateTime, Utc};
use common::{Backend, Shop, ShopOptions, key, request, units, usd};

fn staff() -> Actor {
    Actor::Staff("rita".into())
}

/// A policy set once the shop's products exist (a custom policy: the
/// engine takes any).
#[derive(Debug, Default)]
struct Later(std::sync::Mutex<StandardReturnPolicy>);

impl ReturnPolicy for Later {
    fn eligibility(&self, order: &Order, line: &PricedLine, now: DateTime<Utc>) -> Eligibility {
        self.0.lock().unwrap().eligibility(order, line, now)
    }
    fn fees(&self, order: &Order, goods: Money, reason: ReturnReason) -> Result<ReturnFees> {
        self.0.lock().unwrap().fees(order, goods, reason)
    }
    fn shipping(&self) -> ShippingRefund {
        self.0.lock().unwrap().shipping()
    }
}

/// A shop whose policy keeps 10 % for restocking and 4.00 for the label
/// when the buyer changes their mind, takes nothing back after 14 days,
/// and never takes back the variant it returns (final sale).
async fn shop_with_fees(backend: Backend) -> (Shop, VariantId) {
    let later = Arc::new(Later::default());
    let options = ShopOptions {
        return_policy: Some(later.clone()),
        ..ShopOptions::default()
    };
    let shop = Shop::with(backend, options).await;
    let final_sale = shop.product("FINAL", "7.00", 10).await;
    *later.0.lock().unwrap() = StandardReturnPolicy::default()
        .window_days(14)
        .unwrap()
        .not_returnable([final_sale])
        .restocking_fee_bps(1_000)
        .unwrap()
        .return_shipping(ReturnShipping::Buyer(vec![usd("4.00")]))
        .unwrap();
    (shop, final_sale)
}

/// A guest order of 3 × A at 3.33 and 1 × B at 10.00 (tax 10 %, shipping
/// 5.00), captured, every unit shipped and delivered; with the guest's
/// token.
async fn delivered(shop: &Shop, extra: &[(VariantId, u32)]) -> (Order, Actor) {
    let a = shop.product("A", "3.33", 10).await;
    let b = shop.product("B", "10.00", 10).await;
    let mut lines = vec![(a, 3), (b, 1)];
    lines.extend_from_slice(extra);
    let cart = shop.ready_cart(&lines).await;
    let placed = shop
        .engine
        .checkout(request(cart.id(), "order"))
        .await
        .unwrap();
    let order = placed.order;
    let guest = Actor::GuestWithToken(placed.access_token.unwrap());
    let items: Vec<LineQuantity> = order
        .pricing()
        .lines
        .iter()
        .map(|l| LineQuantity {
            line_id: l.line_id,
            quantity: l.quantity,
        })
        .collect();
    let o = shop
        .engine
        .ship(
            &staff(),
            order.id(),
            ShipmentRequest::new(items).carrier("UPS"),
        )
        .await
        .unwrap();
    let shipment = o.shipments()[0].id;
    let o = shop
        .engine
        .mark_delivered(&staff(), order.id(), shipment)
        .await
        .unwrap();
    (o, guest)
}

fn case_events(events: &[cartwright::store::Event], id: ReturnCaseId) -> Vec<ReturnCaseState> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::AfterSale {
                change:
                    AfterSaleChange::ReturnRequest {
                        return_case_id,
                        state,
                    },
                ..
            } if *return_case_id == id => Some(*state),
            _ => None,
        })
        .collect()
}

async fn refunded_total(shop: &Shop, order: OrderId) -> Money {
    let o = shop.engine.order(&staff(), order).await.unwrap();
    o.payment().refunded()
}

async fn a_request_goes_from_the_buyer_to_a_refund(backend: Backend) {
    let shop = Shop::new(backend).await;
    let (order, guest) = delivered(&shop, &[]).await;
    let a = order.pricing().lines[0].variant_id;
    let on_hand = shop.engine.stock(a).await.unwrap().on_hand;
    // The buyer asks what two units of A would bring back: their frozen
    // shares (3.33 + 10 % tax = 3.663 a unit, split exactly: 3.67 + 3.66).
    let items = units(&order, 0, 2);
    let quote = shop
        .engine
        .return_quote(&guest, order.id(), &items, ReturnReason::SizeOrFit)
        .await
        .unwrap();
    assert_eq!(quote.goods, usd("7.33"));
    assert_eq!(quote.refund, usd("7.33"));
    assert!(quote.deadline.is_some());
    let (o, case) = shop
        .engine
        .request_return(
            &guest,
            order.id(),
            NewReturnCase::new(items.clone(), ReturnReason::SizeOrFit, key("rq-1"))
                .note("too small"),
        )
        .await
        .unwrap();
    assert_eq!(
        o.return_case(case).unwrap().state,
        ReturnCaseState::Requested
    );
    assert_eq!(o.return_case(case).unwrap().quote, quote);
    // Asking again under the same key finds the same request.
    let (_, again) = shop
        .engine
        .request_return(
            &guest,
            order.id(),
            NewReturnCase::new(items.clone(), ReturnReason::SizeOrFit, key("rq-1")),
        )
        .await
        .unwrap();
    assert_eq!(again, case);
    // Nothing moved yet.
    assert_eq!(refunded_total(&shop, order.id()).await, usd("0.00"));

    shop.engine
        .approve_return(&staff(), order.id(), case, "send them back")
        .await
        .unwrap();
    // One unit arrives as new and goes back on the shelf; the other is
    // broken and stays off it.
    let line = items[0].line_id;
    let o = shop
        .engine
        .receive_return(
            &staff(),
            order.id(),
            case,
            vec![
                ReceivedUnits::new(line, 1, ItemCondition::Resellable).restock_at(shop.warehouse),
                ReceivedUnits::new(line, 1, ItemCondition::Damaged),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        o.return_case(case).unwrap().state,
        ReturnCaseState::Received
    );
    assert_eq!(
        shop.engine.stock(a).await.unwrap().on_hand,
        on_hand,
        "not before the refund"
    );
    let o = shop
        .engine
        .refund_return(&staff(), order.id(), case, RefundReturn::new(key("rf-1")))
        .await
        .unwrap();
    let c = o.return_case(case).unwrap();
    assert_eq!(c.state, ReturnCaseState::Refunded);
    let ret = o
        .returns()
        .iter()
        .find(|r| Some(r.id) == c.return_id)
        .unwrap();
    assert_eq!(ret.state, ReturnState::Completed);
    assert_eq!(ret.refund, usd("7.33"));
    assert_eq!(o.payment().refunded(), usd("7.33"));
    assert_eq!(shop.payments.authorizations()[0].refunded, usd("7.33"));
    assert_eq!(o.returned(line), 2);
    assert_eq!(shop.engine.stock(a).await.unwrap().on_hand, on_hand + 1);
    // A retry of the refund moves nothing more.
    let o = shop
        .engine
        .refund_return(&staff(), order.id(), case, RefundReturn::new(key("rf-1")))
        .await
        .unwrap();
    assert_eq!(o.payment().refunded(), usd("7.33"));
    // Every step is in the request's history and the outbox.
    let steps: Vec<ReturnCaseState> = c.history.iter().map(|h| h.state).collect();
    use ReturnCaseState::*;
    assert_eq!(steps, [Requested, Approved, Received, Refunded]);
    let returned = |events: &[cartwright::store::Event]| {
        events.iter().any(
            |e| matches!(e.kind, EventKind::ItemsReturned { refund, .. } if refund == usd("7.33")),
        )
    };
    // The relay sees an event once no earlier transaction may still
    // commit: wait for all of them.
    let events = common::events_until(&shop.engine, "returns-test", |events| {
        case_events(events, case).len() == 4 && returned(events)
    })
    .await;
    assert_eq!(
        case_events(&events, case),
        [Requested, Approved, Received, Refunded]
    );
    assert!(returned(&events));
}

async fn the_policy_answers_at_once(backend: Backend) {
    let (shop, final_sale) = shop_with_fees(backend).await;
    let (order, guest) = delivered(&shop, &[(final_sale, 1)]).await;
    let b = units(&order, 1, 1);
    // Changed mind: 10 % of 11.00 and the 4.00 label are kept.
    let quote = shop
        .engine
        .return_quote(&guest, order.id(), &b, ReturnReason::NoLongerNeeded)
        .await
        .unwrap();
    assert_eq!(
        (
            quote.goods,
            quote.restocking_fee,
            quote.return_shipping_fee,
            quote.refund
        ),
        (usd("11.00"), usd("1.10"), usd("4.00"), usd("5.90"))
    );
    // Broken on arrival: the shop pays.
    let quote = shop
        .engine
        .return_quote(&guest, order.id(), &b, ReturnReason::Damaged)
        .await
        .unwrap();
    assert_eq!(quote.refund, usd("11.00"));
    // Fees never take a refund below zero: one unit of A is 3.66 or 3.67.
    let quote = shop
        .engine
        .return_quote(
            &guest,
            order.id(),
            &units(&order, 0, 1),
            ReturnReason::Other,
        )
        .await
        .unwrap();
    assert_eq!(quote.refund, usd("0.00"));
    // Final sale is said as such.
    let e = shop
        .engine
        .return_quote(
            &guest,
            order.id(),
            &units(&order, 2, 1),
            ReturnReason::Other,
        )
        .await;
    assert!(
        matches!(&e, Err(Error::Invalid { reason, .. }) if reason.contains("final sale")),
        "{e:?}"
    );
    // After the window nothing comes back, and a request changes nothing.
    shop.clock.advance(Duration::days(15));
    let before = shop.snapshot().await;
    let e = shop
        .engine
        .request_return(
            &guest,
            order.id(),
            NewReturnCase::new(b.clone(), ReturnReason::Damaged, key("late")),
        )
        .await;
    assert!(
        matches!(&e, Err(Error::Invalid { reason, .. }) if reason.contains("window")),
        "{e:?}"
    );
    assert!(before == shop.snapshot().await);
    // Staff may still take them back directly.
    shop.engine
        .return_items(&staff(), order.id(), ReturnRequest::new(b, key("staff")))
        .await
        .unwrap();
}

async fn a_refund_keeps_the_fees_of_the_reason_given(backend: Backend) {
    let (shop, _) = shop_with_fees(backend).await;
    let (order, guest) = delivered(&shop, &[]).await;
    let b = units(&order, 1, 1);
    let (_, case) = shop
        .engine
        .request_return(
            &guest,
            order.id(),
            NewReturnCase::new(b.clone(), ReturnReason::NoLongerNeeded, key("rq")),
        )
        .await
        .unwrap();
    shop.engine
        .approve_return(&staff(), order.id(), case, "")
        .await
        .unwrap();
    let received = vec![ReceivedUnits::new(b[0].line_id, 1, ItemCondition::Opened)];
    shop.engine
        .receive_return(&staff(), order.id(), case, received)
        .await
        .unwrap();
    let o = shop
        .engine
        .refund_return(&staff(), order.id(), case, RefundReturn::new(key("rf")))
        .await
        .unwrap();
    assert_eq!(o.payment().refunded(), usd("5.90"));
    assert_eq!(shop.payments.authorizations()[0].refunded, usd("5.90"));
    // The unit is returned; nothing more can be refunded for it.
    assert_eq!(o.returnable(b[0].line_id), 0);
}

async fn units_are_spoken_for_until_the_request_closes(backend: Backend) {
    let shop = Shop::new(backend).await;
    let (order, guest) = delivered(&shop, &[]).await;
    let a = units(&order, 0, 2);
    let (_, first) = shop
        .engine
        .request_return(
            &guest,
            order.id(),
            NewReturnCase::new(a.clone(), ReturnReason::Other, key("one")),
        )
        .await
        .unwrap();
    // Two of the three units are spoken for: a second request for two,
    // and a staff return of two, are refused and change nothing.
    let before = shop.snapshot().await;
    let e = shop
        .engine
        .request_return(
            &guest,
            order.id(),
            NewReturnCase::new(a.clone(), ReturnReason::Other, key("two")),
        )
        .await;
    assert!(matches!(e, Err(Error::Invalid { .. })), "{e:?}");
    let e = shop
        .engine
        .return_items(
            &staff(),
            order.id(),
            ReturnRequest::new(a.clone(), key("s")),
        )
        .await;
    assert!(matches!(e, Err(Error::Invalid { .. })), "{e:?}");
    assert!(before == shop.snapshot().await);
    // Rejected, they are free again.
    let e = shop
        .engine
        .reject_return(&staff(), order.id(), first, " ")
        .await;
    assert!(
        matches!(e, Err(Error::Invalid { .. })),
        "a reason is required: {e:?}"
    );
    shop.engine
        .reject_return(&staff(), order.id(), first, "worn")
        .await
        .unwrap();
    let (_, second) = shop
        .engine
        .request_return(
            &guest,
            order.id(),
            NewReturnCase::new(a.clone(), ReturnReason::Other, key("two")),
        )
        .await
        .unwrap();
    // The buyer calls it off; a rejected request cannot be approved.
    let e = shop
        .engine
        .approve_return(&staff(), order.id(), first, "")
        .await;
    assert!(matches!(e, Err(Error::IllegalTransition { .. })), "{e:?}");
    shop.engine
        .cancel_return_request(&guest, order.id(), second)
        .await
        .unwrap();
    assert_eq!(
        shop.engine
            .order(&guest, order.id())
            .await
            .unwrap()
            .returnable(a[0].line_id),
        3
    );
}

async fn bad_input_is_refused_and_changes_nothing(backend: Backend) {
    let shop = Shop::new(backend).await;
    let (order, guest) = delivered(&shop, &[]).await;
    let line = order.pricing().lines[0].line_id;
    let refused = |e: Result<_>| assert!(e.is_err());
    let before = shop.snapshot().await;
    let ask = |items: Vec<LineQuantity>, k: &str| {
        NewReturnCase::new(items, ReturnReason::Other, key(&k.replace(" ", "-")))
    };
    // More units than shipped, none, zero, a line twice, a line not in
    // the order, a note too long, someone else.
    for (items, why) in [
        (units(&order, 0, 4), "too many"),
        (vec![], "none"),
        (units(&order, 0, 0), "zero"),
        ([units(&order, 0, 1), units(&order, 0, 1)].concat(), "twice"),
        (
            vec![LineQuantity {
                line_id: cartwright::id::LineId::new(),
                quantity: 1,
            }],
            "unknown line",
        ),
    ] {
        let e = shop
            .engine
            .request_return(&guest, order.id(), ask(items, why))
            .await;
        assert!(e.is_err(), "{why}: {e:?}");
    }
    refused(
        shop.engine
            .request_return(
                &guest,
                order.id(),
                ask(units(&order, 0, 1), "long").note("x".repeat(2_001)),
            )
            .await,
    );
    for actor in [
        Actor::Guest,
        Actor::GuestWithToken(AccessToken::new("wrong")),
        Actor::Agent("a".into()),
        Actor::Provider("test".into()),
    ] {
        let e = shop
            .engine
            .request_return(&actor, order.id(), ask(units(&order, 0, 1), "who"))
            .await;
        assert!(matches!(e, Err(Error::Forbidden)), "{actor:?}: {e:?}");
    }
    assert!(before == shop.snapshot().await);

    let (_, case) = shop
        .engine
        .request_return(&guest, order.id(), ask(units(&order, 0, 2), "ok"))
        .await
        .unwrap();
    // The buyer cannot approve, receive or refund.
    let e = shop
        .engine
        .approve_return(&guest, order.id(), case, "")
        .await;
    assert!(matches!(e, Err(Error::Forbidden)), "{e:?}");
    // Receiving before approval, more than asked, a line not asked for,
    // a location without stock of the variant: refused.
    let before = shop.snapshot().await;
    let got = |n| vec![ReceivedUnits::new(line, n, ItemCondition::Resellable)];
    let e = shop
        .engine
        .receive_return(&staff(), order.id(), case, got(1))
        .await;
    assert!(matches!(e, Err(Error::IllegalTransition { .. })), "{e:?}");
    assert!(before == shop.snapshot().await);
    shop.engine
        .approve_return(&staff(), order.id(), case, "")
        .await
        .unwrap();
    let before = shop.snapshot().await;
    for received in [
        got(3),
        got(0),
        vec![],
        vec![ReceivedUnits::new(
            order.pricing().lines[1].line_id,
            1,
            ItemCondition::Resellable,
        )],
        vec![
            ReceivedUnits::new(line, 1, ItemCondition::Resellable)
                .restock_at(cartwright::id::LocationId::new()),
        ],
    ] {
        let e = shop
            .engine
            .receive_return(&staff(), order.id(), case, received.clone())
            .await;
        assert!(e.is_err(), "{received:?}: {e:?}");
    }
    // Refunding before the units arrived is refused.
    let e = shop
        .engine
        .refund_return(&staff(), order.id(), case, RefundReturn::new(key("early")))
        .await;
    assert!(matches!(e, Err(Error::IllegalTransition { .. })), "{e:?}");
    assert!(before == shop.snapshot().await);
}

async fn a_refused_refund_sends_the_request_back(backend: Backend) {
    let (shop, slow) = Shop::slow(backend, StdDuration::ZERO, CaptureMode::Immediate).await;
    let (order, guest) = delivered(&shop, &[]).await;
    let b = units(&order, 1, 1);
    let (_, case) = shop
        .engine
        .request_return(
            &guest,
            order.id(),
            NewReturnCase::new(b.clone(), ReturnReason::Defective, key("rq")),
        )
        .await
        .unwrap();
    shop.engine
        .approve_return(&staff(), order.id(), case, "")
        .await
        .unwrap();
    let received = vec![ReceivedUnits::new(b[0].line_id, 1, ItemCondition::Damaged)];
    shop.engine
        .receive_return(&staff(), order.id(), case, received)
        .await
        .unwrap();
    slow.refuse_refunds
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let e = shop
        .engine
        .refund_return(&staff(), order.id(), case, RefundReturn::new(key("rf-1")))
        .await;
    assert!(e.is_err());
    let o = shop.engine.order(&staff(), order.id()).await.unwrap();
    assert_eq!(
        o.return_case(case).unwrap().state,
        ReturnCaseState::Received
    );
    assert_eq!(o.returned(b[0].line_id), 0);
    assert_eq!(o.payment().refunded(), usd("0.00"));
    // Still spoken for: nobody else can take the unit meanwhile.
    assert_eq!(o.returnable(b[0].line_id), 0);
    slow.refuse_refunds
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let o = shop
        .engine
        .refund_return(&staff(), order.id(), case, RefundReturn::new(key("rf-2")))
        .await
        .unwrap();
    assert_eq!(
        o.return_case(case).unwrap().state,
        ReturnCaseState::Refunded
    );
    assert_eq!(o.payment().refunded(), usd("11.00"));
    assert_eq!(shop.payments.authorizations()[0].refunded, usd("11.00"));
}

async fn two_engines_never_return_a_unit_twice(backend: Backend) {
    let shop = Shop::new(backend).await;
    let (order, guest) = delivered(&shop, &[]).await;
    let other = shop.second_engine().await;
    let b = units(&order, 1, 1);
    // Two requests for the last unit of B, from two instances.
    let ask = |k: &str| NewReturnCase::new(b.clone(), ReturnReason::Other, key(k));
    let (x, y) = tokio::join!(
        shop.engine.request_return(&guest, order.id(), ask("x")),
        other.request_return(&guest, order.id(), ask("y")),
    );
    assert_eq!(u8::from(x.is_ok()) + u8::from(y.is_ok()), 1, "{x:?} {y:?}");
    let case = x.or(y).unwrap().1;
    shop.engine
        .approve_return(&staff(), order.id(), case, "")
        .await
        .unwrap();
    shop.engine
        .receive_return(
            &staff(),
            order.id(),
            case,
            vec![ReceivedUnits::new(
                b[0].line_id,
                1,
                ItemCondition::Resellable,
            )],
        )
        .await
        .unwrap();
    // Two refunds under different keys, and a staff return of the same
    // unit, at once: one refund.
    let st = staff();
    let (r1, r2, r3) = tokio::join!(
        shop.engine
            .refund_return(&st, order.id(), case, RefundReturn::new(key("p"))),
        other.refund_return(&st, order.id(), case, RefundReturn::new(key("q"))),
        other.return_items(&st, order.id(), ReturnRequest::new(b.clone(), key("s"))),
    );
    assert!(r1.is_ok() || r2.is_ok(), "{r1:?} {r2:?}");
    assert!(r3.is_err(), "{r3:?}");
    let o = shop.engine.order(&staff(), order.id()).await.unwrap();
    assert_eq!(o.payment().refunded(), usd("11.00"));
    assert_eq!(shop.payments.authorizations()[0].refunded, usd("11.00"));
    assert_eq!(o.returns().len(), 1);
}

async fn a_customer_returns_from_their_account(backend: Backend) {
    let shop = Shop::new(backend).await;
    let v = shop.product("A", "20.00", 5).await;
    let me = shop.customer("me@example.com").await.id();
    let other = shop.customer("other@example.com").await.id();
    let actor = Actor::Customer(me);
    let cart = shop
        .engine
        .create_cart(&actor, Currency::USD)
        .await
        .unwrap();
    shop.engine.add_item(&actor, cart.id(), v, 1).await.unwrap();
    shop.complete_details(&actor, cart.id()).await;
    let mut req = request(cart.id(), "mine");
    req.actor = actor.clone();
    let order = shop.engine.checkout(req).await.unwrap().order;
    shop.engine
        .ship(
            &staff(),
            order.id(),
            ShipmentRequest::new(units(&order, 0, 1)).carrier("UPS"),
        )
        .await
        .unwrap();
    let ask = NewReturnCase::new(units(&order, 0, 1), ReturnReason::WrongItem, key("k"));
    let e = shop
        .engine
        .request_return(&Actor::Customer(other), order.id(), ask.clone())
        .await;
    assert!(matches!(e, Err(Error::Forbidden)), "{e:?}");
    let (o, case) = shop
        .engine
        .request_return(&actor, order.id(), ask)
        .await
        .unwrap();
    assert_eq!(o.return_case(case).unwrap().requested_by, actor);
    // The undelivered shipment's window runs from its shipping.
    assert!(o.return_case(case).unwrap().quote.deadline.is_some());
}

conformance!(
    a_request_goes_from_the_buyer_to_a_refund,
    the_policy_answers_at_once,
    a_refund_keeps_the_fees_of_the_reason_given,
    units_are_spoken_for_until_the_request_closes,
    bad_input_is_refused_and_changes_nothing,
    a_refused_refund_sends_the_request_back,
    two_engines_never_return_a_unit_twice,
    a_customer_returns_from_their_account,
);
