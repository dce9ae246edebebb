//! Order edits on both stores: priced as a difference, confirmed whole —
//! units added (priced now, stock held) and removed (their shares given
//! back or credited), the address moved within its tax jurisdiction — and
//! never racing a shipment or overselling.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use cartwright::after_sale::{ChargePayment, EditRequest};
use cartwright::customer::NewAddress;
use cartwright::fulfillment::ShipmentRequest;
use cartwright::id::VariantId;
use cartwright::order::{ChargeState, Order, OrderStatus};
use cartwright::prelude::*;
use common::{Backend, Shop, ShopOptions, key, request, units, usd};

fn staff() -> Actor {
    Actor::Staff("ed".into())
}

/// A guest order of 3 × A at 3.33 and 1 × B at 10.00 (tax 10 %, shipping
/// 5.00), nothing shipped; and C at 5.00 and D at 20.00 for sale.
async fn placed(shop: &Shop) -> (Order, Actor, VariantId, VariantId) {
    let a = shop.product("A", "3.33", 10).await;
    let b = shop.product("B", "10.00", 10).await;
    let c = shop.product("C", "5.00", 10).await;
    let d = shop.product("D", "20.00", 1).await;
    let cart = shop.ready_cart(&[(a, 3), (b, 1)]).await;
    let out = shop
        .engine
        .checkout(request(cart.id(), "order"))
        .await
        .unwrap();
    (
        out.order,
        Actor::GuestWithToken(out.access_token.unwrap()),
        c,
        d,
    )
}

async fn stock(shop: &Shop, v: VariantId) -> (i64, i64) {
    let s = shop.engine.stock(v).await.unwrap();
    (s.on_hand, s.reserved)
}

async fn a_swap_for_something_dearer_is_charged(backend: Backend) {
    let shop = Shop::new(backend).await;
    let (order, guest, _, d) = placed(&shop).await;
    let b = order.pricing().lines[1].variant_id;
    let edit = EditRequest::default()
        .add_units(vec![(d, 1)])
        .remove_units(units(&order, 1, 1))
        .reason("customer called");
    let preview = shop
        .engine
        .preview_order_edit(&staff(), order.id(), &edit)
        .await
        .unwrap();
    assert_eq!(
        (
            preview.added_value,
            preview.removed_value,
            preview.difference
        ),
        (usd("22.00"), usd("11.00"), usd("11.00"))
    );
    // A preview changes nothing.
    assert_eq!(stock(&shop, d).await, (1, 0));
    let o = shop
        .engine
        .confirm_order_edit(
            &staff(),
            order.id(),
            edit.clone(),
            preview.difference,
            &key("e1"),
        )
        .await
        .unwrap();
    assert_eq!(o.edits().len(), 1);
    assert_eq!(o.pricing().lines.len(), 3);
    assert_eq!(o.pricing_versions().len(), 1);
    assert_eq!(o.total(), order.total().checked_add(usd("22.00")).unwrap());
    assert_eq!(o.ordered(o.pricing().lines[1].line_id), 0);
    // Nothing refunded: B's 11.00 pays for half of D.
    assert_eq!(o.payment().refunded(), usd("0.00"));
    assert_eq!(stock(&shop, d).await, (1, 1));
    assert_eq!(stock(&shop, b).await, (10, 0));
    assert_eq!(o.charges()[0].amount, usd("11.00"));
    // A retry changes nothing.
    let again = shop
        .engine
        .confirm_order_edit(&staff(), order.id(), edit, preview.difference, &key("e1"))
        .await
        .unwrap();
    assert_eq!(again.edits().len(), 1);
    // D waits for the charge; then everything ships and the order completes.
    let new_line = units(&o, 2, 1);
    let e = shop
        .engine
        .ship(
            &staff(),
            order.id(),
            ShipmentRequest::new(new_line.clone()).carrier("UPS"),
        )
        .await;
    assert!(matches!(e, Err(Error::Invalid { .. })), "{e:?}");
    let o = shop
        .engine
        .pay_charge(
            &guest,
            order.id(),
            o.charges()[0].id,
            ChargePayment::new("tok_visa"),
        )
        .await
        .unwrap();
    assert_eq!(o.charges()[0].state, ChargeState::Paid);
    let mut rest = units(&o, 0, 3);
    rest.extend(new_line);
    let o = shop
        .engine
        .ship(
            &staff(),
            order.id(),
            ShipmentRequest::new(rest).carrier("UPS"),
        )
        .await
        .unwrap();
    assert_eq!(o.status(), OrderStatus::Completed);
}

async fn a_swap_for_something_cheaper_gives_the_rest_back(backend: Backend) {
    for manual in [false, true] {
        let options = ShopOptions {
            capture: if manual {
                CaptureMode::Manual
            } else {
                CaptureMode::Immediate
            },
            ..ShopOptions::default()
        };
        let shop = Shop::with(backend, options).await;
        let (order, _, c, _) = placed(&shop).await;
        let edit = EditRequest::default()
            .add_units(vec![(c, 1)])
            .remove_units(units(&order, 1, 1));
        let o = shop
            .engine
            .confirm_order_edit(&staff(), order.id(), edit, usd("-5.50"), &key("e"))
            .await
            .unwrap();
        if manual {
            // Nothing collected yet: 5.50 of the hold is given up.
            assert_eq!(o.payment().released(), usd("5.50"));
            let o = shop.engine.capture(&staff(), order.id()).await.unwrap();
            assert_eq!(
                o.payment().captured(),
                order.total().checked_sub(usd("5.50")).unwrap()
            );
        } else {
            assert_eq!(o.payment().refunded(), usd("5.50"));
            assert_eq!(shop.payments.authorizations()[0].refunded, usd("5.50"));
        }
        assert!(o.charges().is_empty());
    }
}

async fn the_address_moves_within_its_tax_jurisdiction(backend: Backend) {
    let shop = Shop::new(backend).await;
    let (order, _, _, _) = placed(&shop).await;
    let nearby =
        NewAddress::new("Grace Hopper", "2 Navy Way", "Arlington", "22202", "US").region("VA");
    let o = shop
        .engine
        .confirm_order_edit(
            &staff(),
            order.id(),
            EditRequest::default().shipping_address(Some(nearby)),
            usd("0.00"),
            &key("addr"),
        )
        .await
        .unwrap();
    assert_eq!(o.shipping_address().unwrap().line1, "2 Navy Way");
    assert_eq!(
        o.edits()[0].address_before.as_ref().unwrap().line1,
        "1 Navy Way"
    );
    let before = shop.snapshot().await;
    let abroad = NewAddress::new("Grace Hopper", "1 Rue", "Paris", "75001", "FR");
    let e = shop
        .engine
        .confirm_order_edit(
            &staff(),
            order.id(),
            EditRequest::default().shipping_address(Some(abroad)),
            usd("0.00"),
            &key("abroad"),
        )
        .await;
    assert!(matches!(e, Err(Error::Invalid { .. })), "{e:?}");
    assert!(before == shop.snapshot().await);
}

async fn bad_edits_change_nothing(backend: Backend) {
    let shop = Shop::new(backend).await;
    let (order, guest, c, d) = placed(&shop).await;
    shop.engine
        .ship(
            &staff(),
            order.id(),
            ShipmentRequest::new(units(&order, 0, 2)).carrier("UPS"),
        )
        .await
        .unwrap();
    let before = shop.snapshot().await;
    let confirm = |edit: EditRequest, diff: &str, k: &str| {
        let engine = shop.engine.clone();
        let id = order.id();
        let diff = usd(diff);
        let k = key(k);
        async move {
            engine
                .confirm_order_edit(&staff(), id, edit, diff, &k)
                .await
        }
    };
    // Units that shipped; a difference that is not the one shown; more
    // than is in stock; nothing at all.
    for (edit, diff, why) in [
        (
            EditRequest::default().remove_units(units(&order, 0, 2)),
            "-7.33",
            "shipped",
        ),
        (
            EditRequest::default().add_units(vec![(c, 1)]),
            "1.00",
            "price changed",
        ),
        (
            EditRequest::default().add_units(vec![(d, 2)]),
            "44.00",
            "oversold",
        ),
        (EditRequest::default(), "0.00", "nothing"),
    ] {
        let e = confirm(edit, diff, why.split(' ').next().unwrap()).await;
        assert!(e.is_err(), "{why}: {e:?}");
    }
    // Customers may not edit unless the shop allows it.
    let e = shop
        .engine
        .confirm_order_edit(
            &guest,
            order.id(),
            EditRequest::default().add_units(vec![(c, 1)]),
            usd("5.50"),
            &key("guest"),
        )
        .await;
    assert!(matches!(e, Err(Error::Forbidden)), "{e:?}");
    assert!(before == shop.snapshot().await);
}

async fn customers_edit_where_the_shop_allows(backend: Backend) {
    let options = ShopOptions {
        config: Some(cartwright::EngineConfig::default().customer_order_edits(true)),
        ..ShopOptions::default()
    };
    let shop = Shop::with(backend, options).await;
    let (order, guest, _, _) = placed(&shop).await;
    let o = shop
        .engine
        .confirm_order_edit(
            &guest,
            order.id(),
            EditRequest::default().remove_units(units(&order, 0, 1)),
            usd("-3.66"),
            &key("mine"),
        )
        .await
        .unwrap();
    assert_eq!(o.payment().refunded(), usd("3.66"));
    let e = shop
        .engine
        .confirm_order_edit(
            &Actor::GuestWithToken(cartwright::actor::AccessToken::new("x")),
            order.id(),
            EditRequest::default().remove_units(units(&order, 0, 1)),
            usd("-3.66"),
            &key("theirs"),
        )
        .await;
    assert!(matches!(e, Err(Error::Forbidden)), "{e:?}");
}

async fn an_edit_racing_a_shipment_never_both_win(backend: Backend) {
    for round in 0..4 {
        let shop = Shop::new(backend).await;
        let (order, _, c, _) = placed(&shop).await;
        let other = shop.second_engine().await;
        let st = staff();
        let edit = EditRequest::default()
            .add_units(vec![(c, 1)])
            .remove_units(units(&order, 1, 1));
        let k = key(&format!("race{round}"));
        let (shipped, edited) = tokio::join!(
            other.ship(
                &st,
                order.id(),
                ShipmentRequest::new(units(&order, 1, 1)).carrier("UPS")
            ),
            shop.engine
                .confirm_order_edit(&st, order.id(), edit, usd("-5.50"), &k),
        );
        assert!(shipped.is_ok() != edited.is_ok(), "{shipped:?} {edited:?}");
        let o = shop.engine.order(&staff(), order.id()).await.unwrap();
        let b = o.pricing().lines[1].line_id;
        assert_eq!(o.shipped(b) + o.cancelled(b), 1);
        // Stock: C held only when the edit won, and nothing left over.
        let held = if edited.is_ok() { 1 } else { 0 };
        assert_eq!(stock(&shop, c).await, (10, held));
        assert_eq!(
            shop.payments.authorizations()[0].refunded,
            o.payment().refunded()
        );
    }
}

async fn an_order_is_not_cancelled_while_its_charge_is_paid(backend: Backend) {
    let shop = Shop::new(backend).await;
    let (order, guest, _, d) = placed(&shop).await;
    let o = shop
        .engine
        .confirm_order_edit(
            &staff(),
            order.id(),
            EditRequest::default().add_units(vec![(d, 1)]),
            usd("22.00"),
            &key("e"),
        )
        .await
        .unwrap();
    let charge = o.charges()[0].id;
    shop.engine
        .pay_charge(&guest, order.id(), charge, ChargePayment::new("tok_3ds"))
        .await
        .unwrap();
    let before = shop.snapshot().await;
    let e = shop
        .engine
        .cancel(&staff(), order.id(), "changed mind")
        .await;
    assert!(matches!(e, Err(Error::PaymentInProgress { .. })), "{e:?}");
    assert!(before == shop.snapshot().await);
}

conformance!(
    an_order_is_not_cancelled_while_its_charge_is_paid,
    a_swap_for_something_dearer_is_charged,
    a_swap_for_something_cheaper_gives_the_rest_back,
    the_address_moves_within_its_tax_jurisdiction,
    bad_edits_change_nothing,
    customers_edit_where_the_shop_allows,
    an_edit_racing_a_shipment_never_both_win,
);
