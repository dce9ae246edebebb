//! Exchanges on both stores: units back and new units out in one
//! operation, priced now, the difference charged through the provider
//! (3-D Secure included) or refunded when the units arrive; never charged
//! twice, stock held exactly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use cartwright::after_sale::{ChargePayment, NewExchange, RefundReturn};
use cartwright::fulfillment::ShipmentRequest;
use cartwright::id::VariantId;
use cartwright::order::{
    ChargeState, ItemCondition, Order, OrderStatus, ReceivedUnits, ReturnCaseState, ReturnReason,
};
use cartwright::prelude::*;
use common::{Backend, Shop, key, request, units, usd};

fn staff() -> Actor {
    Actor::Staff("eve".into())
}

/// A guest order of 1 × M (a medium shirt, 10.00; tax 10 %, shipping 5.00)
/// shipped; with the guest's token and three other sizes: L at the same
/// price, S at 5.00, XL at 20.00.
struct Setup {
    order: Order,
    guest: Actor,
    large: VariantId,
    small: VariantId,
    xl: VariantId,
}

async fn shipped(shop: &Shop) -> Setup {
    let medium = shop.product("M", "10.00", 5).await;
    let large = shop.product("L", "10.00", 5).await;
    let small = shop.product("S", "5.00", 5).await;
    let xl = shop.product("XL", "20.00", 5).await;
    let cart = shop.ready_cart(&[(medium, 1)]).await;
    let out = shop
        .engine
        .checkout(request(cart.id(), "order"))
        .await
        .unwrap();
    let order = shop
        .engine
        .ship(
            &staff(),
            out.order.id(),
            ShipmentRequest::new(units(&out.order, 0, 1)).carrier("UPS"),
        )
        .await
        .unwrap();
    Setup {
        order,
        guest: Actor::GuestWithToken(out.access_token.unwrap()),
        large,
        small,
        xl,
    }
}

async fn stock(shop: &Shop, v: VariantId) -> (i64, i64) {
    let s = shop.engine.stock(v).await.unwrap();
    (s.on_hand, s.reserved)
}

/// Receives the exchange's returned unit and refunds it.
async fn bring_back(shop: &Shop, order: &Order) -> Order {
    let case = order.exchanges()[0].return_case;
    let line = order.pricing().lines[0].line_id;
    shop.engine
        .receive_return(
            &staff(),
            order.id(),
            case,
            vec![ReceivedUnits::new(line, 1, ItemCondition::Resellable).restock_at(shop.warehouse)],
        )
        .await
        .unwrap();
    shop.engine
        .refund_return(&staff(), order.id(), case, RefundReturn::new(key("back")))
        .await
        .unwrap()
}

async fn a_size_swap_moves_no_money(backend: Backend) {
    let shop = Shop::new(backend).await;
    let s = shipped(&shop).await;
    let order = s.order;
    let o = shop
        .engine
        .create_exchange(
            &staff(),
            order.id(),
            NewExchange::new(
                units(&order, 0, 1),
                vec![(s.large, 1)],
                ReturnReason::SizeOrFit,
                key("x"),
            ),
        )
        .await
        .unwrap();
    let e = &o.exchanges()[0];
    assert_eq!(
        (e.returned_value, e.new_value),
        (usd("11.00"), usd("11.00"))
    );
    assert!(e.charge.is_none());
    // The new line is added, the totals grow by it, the old pricing kept.
    assert_eq!(o.pricing().lines.len(), 2);
    assert_eq!(o.total(), order.total().checked_add(usd("11.00")).unwrap());
    assert_eq!(o.pricing_versions()[0].pricing, *order.pricing());
    assert_eq!(
        o.status(),
        OrderStatus::Processing,
        "reopened to ship the new unit"
    );
    assert_eq!(stock(&shop, s.large).await, (5, 1));
    assert_eq!(
        o.return_case(e.return_case).unwrap().state,
        ReturnCaseState::Approved
    );
    // A retry changes nothing.
    let again = shop
        .engine
        .create_exchange(
            &staff(),
            order.id(),
            NewExchange::new(
                units(&order, 0, 1),
                vec![(s.large, 1)],
                ReturnReason::SizeOrFit,
                key("x"),
            ),
        )
        .await
        .unwrap();
    assert_eq!(again.exchanges().len(), 1);
    assert_eq!(stock(&shop, s.large).await, (5, 1));
    // The new unit ships at once; the old one comes back; nothing moves.
    let o = shop
        .engine
        .ship(
            &staff(),
            order.id(),
            ShipmentRequest::new(units(&o, 1, 1)).carrier("UPS"),
        )
        .await
        .unwrap();
    assert_eq!(o.status(), OrderStatus::Completed);
    let o = bring_back(&shop, &o).await;
    assert_eq!(o.payment().refunded(), usd("0.00"));
    assert_eq!(shop.payments.authorizations().len(), 1);
    assert_eq!(shop.payments.authorizations()[0].refunded, usd("0.00"));
}

async fn a_cheaper_item_refunds_the_difference_when_the_unit_arrives(backend: Backend) {
    let shop = Shop::new(backend).await;
    let s = shipped(&shop).await;
    let order = s.order;
    let o = shop
        .engine
        .create_exchange(
            &staff(),
            order.id(),
            NewExchange::new(
                units(&order, 0, 1),
                vec![(s.small, 1)],
                ReturnReason::SizeOrFit,
                key("x"),
            ),
        )
        .await
        .unwrap();
    assert_eq!(o.exchanges()[0].difference().unwrap(), usd("-5.50"));
    let o = bring_back(&shop, &o).await;
    assert_eq!(o.payment().refunded(), usd("5.50"));
    assert_eq!(shop.payments.authorizations()[0].refunded, usd("5.50"));
}

async fn a_dearer_item_is_paid_before_it_ships(backend: Backend) {
    let shop = Shop::new(backend).await;
    let s = shipped(&shop).await;
    let order = s.order;
    let o = shop
        .engine
        .create_exchange(
            &staff(),
            order.id(),
            NewExchange::new(
                units(&order, 0, 1),
                vec![(s.xl, 1)],
                ReturnReason::SizeOrFit,
                key("x"),
            ),
        )
        .await
        .unwrap();
    let charge = o.charges()[0].clone();
    assert_eq!(
        (charge.amount, charge.state),
        (usd("11.00"), ChargeState::Due)
    );
    // The new unit waits for the money.
    let e = shop
        .engine
        .ship(
            &staff(),
            order.id(),
            ShipmentRequest::new(units(&o, 1, 1)).carrier("UPS"),
        )
        .await;
    assert!(matches!(e, Err(Error::Invalid { .. })), "{e:?}");
    // A declined card leaves it due; the buyer pays with another.
    let e = shop
        .engine
        .pay_charge(
            &s.guest,
            order.id(),
            charge.id,
            ChargePayment::new("tok_decline"),
        )
        .await;
    assert!(matches!(e, Err(Error::PaymentDeclined { .. })), "{e:?}");
    let o = shop.engine.order(&staff(), order.id()).await.unwrap();
    assert_eq!(o.charges()[0].state, ChargeState::Due);
    let o = shop
        .engine
        .pay_charge(
            &s.guest,
            order.id(),
            charge.id,
            ChargePayment::new("tok_visa"),
        )
        .await
        .unwrap();
    assert_eq!(o.charges()[0].state, ChargeState::Paid);
    let paid = o
        .payments()
        .find(|p| Some(p.id()) == o.charges()[0].payment)
        .unwrap();
    assert_eq!(paid.captured(), usd("11.00"));
    let gateway = shop
        .payments
        .authorizations()
        .into_iter()
        .find(|a| a.reference == paid.reference())
        .unwrap();
    assert_eq!(gateway.captured, usd("11.00"));
    // Paying again moves nothing.
    shop.engine
        .pay_charge(
            &s.guest,
            order.id(),
            charge.id,
            ChargePayment::new("tok_visa"),
        )
        .await
        .unwrap();
    assert_eq!(
        shop.payments
            .authorizations()
            .iter()
            .filter(|a| !a.captured.is_zero())
            .count(),
        2
    );
    shop.engine
        .ship(
            &staff(),
            order.id(),
            ShipmentRequest::new(units(&o, 1, 1)).carrier("UPS"),
        )
        .await
        .unwrap();
    let o = bring_back(&shop, &o).await;
    assert_eq!(
        o.payment().refunded(),
        usd("0.00"),
        "the credit paid for the new unit"
    );
    // Returning the new unit later refunds all it cost, over both payments.
    let o = shop
        .engine
        .return_items(
            &staff(),
            order.id(),
            cartwright::fulfillment::ReturnRequest::new(units(&o, 1, 1), key("later")),
        )
        .await
        .unwrap();
    let refunded = o
        .payments()
        .fold(usd("0.00"), |acc, p| acc.checked_add(p.refunded()).unwrap());
    assert_eq!(refunded, usd("22.00"));
}

async fn a_charge_waits_for_3ds(backend: Backend) {
    let shop = Shop::new(backend).await;
    let s = shipped(&shop).await;
    let order = s.order;
    let o = shop
        .engine
        .create_exchange(
            &staff(),
            order.id(),
            NewExchange::new(
                units(&order, 0, 1),
                vec![(s.xl, 1)],
                ReturnReason::SizeOrFit,
                key("x"),
            ),
        )
        .await
        .unwrap();
    let charge = o.charges()[0].id;
    let o = shop
        .engine
        .pay_charge(&s.guest, order.id(), charge, ChargePayment::new("tok_3ds"))
        .await
        .unwrap();
    let c = o.charge(charge).unwrap();
    assert_eq!(c.state, ChargeState::AwaitingCustomer);
    assert!(c.action.is_some());
    // The buyer passes the bank's check; calling again finishes it.
    let reference = shop
        .payments
        .authorizations()
        .last()
        .unwrap()
        .reference
        .clone();
    shop.payments.complete_action(&reference).unwrap();
    let o = shop
        .engine
        .pay_charge(&s.guest, order.id(), charge, ChargePayment::new("tok_3ds"))
        .await
        .unwrap();
    assert_eq!(o.charge(charge).unwrap().state, ChargeState::Paid);
    let gateway = shop.payments.authorizations().last().unwrap().clone();
    assert_eq!(gateway.captured, usd("11.00"));
}

async fn two_engines_pay_a_charge_once(backend: Backend) {
    let shop = Shop::new(backend).await;
    let s = shipped(&shop).await;
    let order = s.order;
    let o = shop
        .engine
        .create_exchange(
            &staff(),
            order.id(),
            NewExchange::new(
                units(&order, 0, 1),
                vec![(s.xl, 1)],
                ReturnReason::SizeOrFit,
                key("x"),
            ),
        )
        .await
        .unwrap();
    let charge = o.charges()[0].id;
    let other = shop.second_engine().await;
    let (a, b) = tokio::join!(
        shop.engine
            .pay_charge(&s.guest, order.id(), charge, ChargePayment::new("tok_visa")),
        other.pay_charge(&s.guest, order.id(), charge, ChargePayment::new("tok_visa")),
    );
    assert!(a.is_ok() || b.is_ok(), "{a:?} {b:?}");
    // Whoever lost finishes it on a retry.
    shop.engine
        .pay_charge(&s.guest, order.id(), charge, ChargePayment::new("tok_visa"))
        .await
        .unwrap();
    let o = shop.engine.order(&staff(), order.id()).await.unwrap();
    assert_eq!(o.charge(charge).unwrap().state, ChargeState::Paid);
    let collected: Vec<_> = shop
        .payments
        .authorizations()
        .into_iter()
        .filter(|a| !a.captured.is_zero())
        .collect();
    assert_eq!(collected.len(), 2, "the order and the charge, once each");
    assert_eq!(o.payments().count(), 2);
}

async fn an_unpaid_exchange_is_called_off(backend: Backend) {
    let shop = Shop::new(backend).await;
    let s = shipped(&shop).await;
    let order = s.order;
    let o = shop
        .engine
        .create_exchange(
            &staff(),
            order.id(),
            NewExchange::new(
                units(&order, 0, 1),
                vec![(s.xl, 1)],
                ReturnReason::SizeOrFit,
                key("x"),
            ),
        )
        .await
        .unwrap();
    assert_eq!(stock(&shop, s.xl).await, (5, 1));
    // Cancelling its units one by one is refused: they wait for the charge.
    let e = shop
        .engine
        .cancel_items(
            &staff(),
            order.id(),
            cartwright::after_sale::CancelItems::new(units(&o, 1, 1), key("c")),
        )
        .await;
    assert!(matches!(e, Err(Error::Invalid { .. })), "{e:?}");
    let id = o.exchanges()[0].id;
    let o = shop
        .engine
        .cancel_exchange(&staff(), order.id(), id)
        .await
        .unwrap();
    assert_eq!(o.charges()[0].state, ChargeState::Canceled);
    assert_eq!(
        o.return_case(o.exchanges()[0].return_case).unwrap().state,
        ReturnCaseState::Canceled
    );
    assert_eq!(stock(&shop, s.xl).await, (5, 0));
    assert_eq!(o.payment().refunded(), usd("0.00"));
    // The original unit may still come back for its full price.
    let o = shop
        .engine
        .return_items(
            &staff(),
            order.id(),
            cartwright::fulfillment::ReturnRequest::new(units(&o, 0, 1), key("r")),
        )
        .await
        .unwrap();
    assert_eq!(o.payment().refunded(), usd("11.00"));
    let e = shop
        .engine
        .pay_charge(
            &s.guest,
            order.id(),
            o.charges()[0].id,
            ChargePayment::new("tok_visa"),
        )
        .await;
    assert!(matches!(e, Err(Error::IllegalTransition { .. })), "{e:?}");
}

async fn bad_exchanges_change_nothing(backend: Backend) {
    let shop = Shop::new(backend).await;
    let s = shipped(&shop).await;
    let order = s.order;
    shop.engine
        .set_stock(&Actor::System, s.xl, shop.warehouse, 0)
        .await
        .unwrap();
    let before = shop.snapshot().await;
    let ask = |returned, new: Vec<(VariantId, u32)>, k: &str| {
        NewExchange::new(returned, new, ReturnReason::SizeOrFit, key(k))
    };
    for (request, why) in [
        (
            ask(units(&order, 0, 1), vec![(s.xl, 1)], "oos"),
            "out of stock",
        ),
        (
            ask(units(&order, 0, 2), vec![(s.large, 1)], "many"),
            "too many back",
        ),
        (ask(units(&order, 0, 1), vec![], "none"), "nothing new"),
        (
            ask(units(&order, 0, 1), vec![(VariantId::new(), 1)], "unknown"),
            "unknown variant",
        ),
        (
            ask(units(&order, 0, 1), vec![(s.large, 0)], "zero"),
            "zero units",
        ),
    ] {
        let e = shop
            .engine
            .create_exchange(&staff(), order.id(), request)
            .await;
        assert!(e.is_err(), "{why}: {e:?}");
    }
    for actor in [s.guest.clone(), Actor::Guest, Actor::Agent("a".into())] {
        let e = shop
            .engine
            .create_exchange(
                &actor,
                order.id(),
                ask(units(&order, 0, 1), vec![(s.large, 1)], "who"),
            )
            .await;
        assert!(matches!(e, Err(Error::Forbidden)), "{actor:?}: {e:?}");
    }
    assert!(before == shop.snapshot().await);
}

async fn a_buyers_return_request_is_settled_as_an_exchange(backend: Backend) {
    let shop = Shop::new(backend).await;
    let s = shipped(&shop).await;
    let order = s.order;
    let (_, case) = shop
        .engine
        .request_return(
            &s.guest,
            order.id(),
            cartwright::order::NewReturnCase::new(
                units(&order, 0, 1),
                ReturnReason::SizeOrFit,
                key("rq"),
            ),
        )
        .await
        .unwrap();
    // Staff answer it with the large size instead of a refund.
    let o = shop
        .engine
        .create_exchange(
            &staff(),
            order.id(),
            NewExchange::for_request(case, vec![(s.large, 1)], key("x")),
        )
        .await
        .unwrap();
    assert_eq!(o.exchanges()[0].return_case, case);
    assert_eq!(o.return_cases().len(), 1);
    assert_eq!(
        o.return_case(case).unwrap().state,
        ReturnCaseState::Approved
    );
    assert!(o.charges().is_empty());
    // The unit comes back; nothing is refunded: it paid for the new one.
    let o = bring_back(&shop, &o).await;
    assert_eq!(o.payment().refunded(), usd("0.00"));
    // A request can be an exchange once.
    let e = shop
        .engine
        .create_exchange(
            &staff(),
            order.id(),
            NewExchange::for_request(case, vec![(s.small, 1)], key("y")),
        )
        .await;
    assert!(e.is_err(), "{e:?}");
}

async fn a_lost_answer_is_one_hold_after_recovery(backend: Backend) {
    let shop = Shop::new(backend).await;
    let s = shipped(&shop).await;
    let order = s.order;
    let o = shop
        .engine
        .create_exchange(
            &staff(),
            order.id(),
            NewExchange::new(
                units(&order, 0, 1),
                vec![(s.xl, 1)],
                ReturnReason::SizeOrFit,
                key("x"),
            ),
        )
        .await
        .unwrap();
    let charge = o.charges()[0].id;
    // The gateway holds the money but the answer is lost; the caller stops.
    let e = shop
        .engine
        .pay_charge(
            &s.guest,
            order.id(),
            charge,
            ChargePayment::new("tok_timeout"),
        )
        .await;
    assert!(matches!(e, Err(Error::PaymentUnavailable(_))), "{e:?}");
    let o = shop.engine.order(&staff(), order.id()).await.unwrap();
    assert_eq!(o.charge(charge).unwrap().state, ChargeState::Authorizing);
    assert!(o.has_pending_work());
    // Recovery leaves a fresh try to its caller, then finishes it.
    assert_eq!(shop.engine.recover().await.unwrap().settled_charges, 0);
    shop.clock.advance(chrono::Duration::minutes(5));
    assert_eq!(shop.engine.recover().await.unwrap().settled_charges, 1);
    let o = shop.engine.order(&staff(), order.id()).await.unwrap();
    assert_eq!(o.charge(charge).unwrap().state, ChargeState::Paid);
    assert!(!o.has_pending_work());
    let holds: Vec<_> = shop
        .payments
        .authorizations()
        .into_iter()
        .filter(|a| a.amount == usd("11.00") && !a.failed)
        .collect();
    assert_eq!(holds.len(), 1, "{holds:?}");
    assert_eq!(holds[0].captured, usd("11.00"));
}

async fn a_try_that_never_reached_the_provider_is_retried_under_its_key(backend: Backend) {
    let shop = Shop::new(backend).await;
    let s = shipped(&shop).await;
    let order = s.order;
    let o = shop
        .engine
        .create_exchange(
            &staff(),
            order.id(),
            NewExchange::new(
                units(&order, 0, 1),
                vec![(s.xl, 1)],
                ReturnReason::SizeOrFit,
                key("x"),
            ),
        )
        .await
        .unwrap();
    let charge = o.charges()[0].id;
    shop.payments.inject(
        cartwright::payment::Operation::Authorize,
        cartwright::payment::Fault::Unavailable,
    );
    let e = shop
        .engine
        .pay_charge(&s.guest, order.id(), charge, ChargePayment::new("tok_visa"))
        .await;
    assert!(matches!(e, Err(Error::PaymentUnavailable(_))), "{e:?}");
    shop.clock.advance(chrono::Duration::minutes(5));
    shop.engine.recover().await.unwrap();
    let o = shop.engine.order(&staff(), order.id()).await.unwrap();
    let c = o.charge(charge).unwrap();
    assert_eq!(c.state, ChargeState::Due);
    let first_key = c.provider_key(order.id());
    // The buyer pays again: the same try's key, one hold.
    let o = shop
        .engine
        .pay_charge(&s.guest, order.id(), charge, ChargePayment::new("tok_visa"))
        .await
        .unwrap();
    let c = o.charge(charge).unwrap();
    assert_eq!(c.state, ChargeState::Paid);
    assert_eq!(c.provider_key(order.id()), first_key);
    let paid = o.payments().find(|p| Some(p.id()) == c.payment).unwrap();
    assert_eq!(paid.authorize_key(), first_key);
}

async fn a_charge_being_paid_blocks_calling_things_off(backend: Backend) {
    let shop = Shop::new(backend).await;
    let s = shipped(&shop).await;
    let order = s.order;
    let o = shop
        .engine
        .create_exchange(
            &staff(),
            order.id(),
            NewExchange::new(
                units(&order, 0, 1),
                vec![(s.xl, 1)],
                ReturnReason::SizeOrFit,
                key("x"),
            ),
        )
        .await
        .unwrap();
    let charge = o.charges()[0].id;
    // The buyer is at the bank's 3-D Secure page.
    shop.engine
        .pay_charge(&s.guest, order.id(), charge, ChargePayment::new("tok_3ds"))
        .await
        .unwrap();
    let before = shop.snapshot().await;
    let e = shop
        .engine
        .cancel_exchange(&staff(), order.id(), o.exchanges()[0].id)
        .await;
    assert!(matches!(e, Err(Error::IllegalTransition { .. })), "{e:?}");
    assert!(before == shop.snapshot().await);
    // The buyer never comes back: staff stop the try (the waiting payment
    // is cancelled at the provider), then call the exchange off.
    let o = shop
        .engine
        .stop_charge(&staff(), order.id(), charge)
        .await
        .unwrap();
    assert_eq!(o.charge(charge).unwrap().state, ChargeState::Due);
    let waiting = shop.payments.authorizations().last().unwrap().clone();
    assert!(waiting.voided, "{waiting:?}");
    let o = shop
        .engine
        .cancel_exchange(&staff(), order.id(), o.exchanges()[0].id)
        .await
        .unwrap();
    assert_eq!(o.charge(charge).unwrap().state, ChargeState::Canceled);
    let e = shop.engine.stop_charge(&s.guest, order.id(), charge).await;
    assert!(matches!(e, Err(Error::Forbidden)), "{e:?}");
}

conformance!(
    a_charge_being_paid_blocks_calling_things_off,
    a_lost_answer_is_one_hold_after_recovery,
    a_try_that_never_reached_the_provider_is_retried_under_its_key,
    a_buyers_return_request_is_settled_as_an_exchange,
    a_size_swap_moves_no_money,
    a_cheaper_item_refunds_the_difference_when_the_unit_arrives,
    a_dearer_item_is_paid_before_it_ships,
    a_charge_waits_for_3ds,
    two_engines_pay_a_charge_once,
    an_unpaid_exchange_is_called_off,
    bad_exchanges_change_nothing,
);
