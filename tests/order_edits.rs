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
use common::{Backend, ManyMethods, Shop, ShopOptions, key, request, units, usd};

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

/// A shop offering `standard` 5.00, `express` 12.00, `economy` 3.00 and
/// `per_item` 1.00 a unit, shipping taxed 10 %.
fn methods(capture: CaptureMode) -> ShopOptions {
    ShopOptions {
        capture,
        shipping: Some(std::sync::Arc::new(ManyMethods)),
        ..ShopOptions::default()
    }
}

/// The frozen pricing adds up: lines and shipping make the total and the
/// tax, and the tax lines make the tax.
fn adds_up(o: &Order) {
    let p = o.pricing();
    let ship = p.shipping.as_ref().unwrap();
    let lines = p
        .lines
        .iter()
        .fold(usd("0.00"), |a, l| a.checked_add(l.total).unwrap());
    let tax = p
        .lines
        .iter()
        .fold(ship.tax, |a, l| a.checked_add(l.tax).unwrap());
    assert_eq!(p.total, lines.checked_add(ship.total).unwrap());
    assert_eq!(p.tax_total, tax);
    let named = p
        .tax_lines
        .iter()
        .fold(usd("0.00"), |a, t| a.checked_add(t.amount).unwrap());
    assert_eq!(named, p.tax_total);
}

async fn a_dearer_method_is_charged(backend: Backend) {
    let shop = Shop::with(backend, methods(CaptureMode::Immediate)).await;
    let (order, guest, _, _) = placed(&shop).await;
    assert_eq!(order.total(), usd("27.49"));
    let edit = EditRequest::default()
        .shipping_method(Some("express".into()))
        .reason("wants it tomorrow");
    let preview = shop
        .engine
        .preview_order_edit(&staff(), order.id(), &edit)
        .await
        .unwrap();
    let change = preview.shipping.clone().unwrap();
    assert_eq!(change.before.code, "standard");
    assert_eq!(change.before.total, usd("5.50"));
    assert_eq!(
        (
            change.after.code.as_str(),
            change.after.tax,
            change.after.total
        ),
        ("express", usd("1.20"), usd("13.20"))
    );
    assert_eq!(preview.difference, usd("7.70"));
    let o = shop
        .engine
        .confirm_order_edit(&staff(), order.id(), edit.clone(), usd("7.70"), &key("x"))
        .await
        .unwrap();
    assert_eq!(o.pricing().shipping.as_ref().unwrap().code, "express");
    assert_eq!(o.total(), usd("35.19"));
    assert_eq!(o.pricing().tax_total, usd("3.20"));
    adds_up(&o);
    // The pricing before is kept.
    assert_eq!(o.pricing_versions().len(), 1);
    assert_eq!(
        o.pricing_versions()[0]
            .pricing
            .shipping
            .as_ref()
            .unwrap()
            .code,
        "standard"
    );
    assert_eq!(
        o.edits()[0].shipping.as_ref().unwrap().after.code,
        "express"
    );
    assert_eq!(o.edits()[0].difference().unwrap(), usd("7.70"));
    // A charge for the difference, holding no line back.
    let charge = &o.charges()[0];
    assert_eq!((charge.amount, charge.lines.len()), (usd("7.70"), 0));
    // A retry changes nothing.
    let again = shop
        .engine
        .confirm_order_edit(&staff(), order.id(), edit, usd("7.70"), &key("x"))
        .await
        .unwrap();
    assert_eq!((again.total(), again.charges().len()), (usd("35.19"), 1));
    // The buyer pays it; the books equal the gateway and the new total.
    let o = shop
        .engine
        .pay_charge(
            &guest,
            order.id(),
            charge.id,
            ChargePayment::new("tok_visa"),
        )
        .await
        .unwrap();
    assert_eq!(o.charges()[0].state, ChargeState::Paid);
    let taken = shop
        .payments
        .authorizations()
        .iter()
        .fold(usd("0.00"), |a, x| {
            a.checked_add(x.captured)
                .unwrap()
                .checked_sub(x.refunded)
                .unwrap()
        });
    assert_eq!(taken, o.total());
    // The method cannot change again once units have shipped.
    shop.engine
        .ship(
            &staff(),
            order.id(),
            ShipmentRequest::new(units(&o, 0, 1)).carrier("UPS"),
        )
        .await
        .unwrap();
    let e = shop
        .engine
        .preview_order_edit(
            &staff(),
            order.id(),
            &EditRequest::default().shipping_method(Some("standard".into())),
        )
        .await;
    assert!(matches!(e, Err(Error::Invalid { .. })), "{e:?}");
}

async fn a_cheaper_method_gives_the_difference_back(backend: Backend) {
    for capture in [CaptureMode::Immediate, CaptureMode::Manual] {
        let shop = Shop::with(backend, methods(capture)).await;
        let (order, _, _, _) = placed(&shop).await;
        let o = shop
            .engine
            .confirm_order_edit(
                &staff(),
                order.id(),
                EditRequest::default().shipping_method(Some("economy".into())),
                usd("-2.20"),
                &key("e"),
            )
            .await
            .unwrap();
        assert_eq!(o.total(), usd("25.29"));
        adds_up(&o);
        assert!(o.charges().is_empty());
        let c = &o.line_cancellations()[0];
        assert!(c.items.is_empty());
        assert_eq!((c.amount, c.shipping), (usd("0.00"), Some(usd("2.20"))));
        if capture == CaptureMode::Manual {
            // Nothing collected yet: 2.20 of the hold is given up, and
            // the capture takes the new total.
            assert_eq!(o.payment().released(), usd("2.20"));
            let o = shop.engine.capture(&staff(), order.id()).await.unwrap();
            assert_eq!(o.payment().captured(), usd("25.29"));
        } else {
            assert_eq!(o.payment().refunded(), usd("2.20"));
            assert_eq!(shop.payments.authorizations()[0].refunded, usd("2.20"));
        }
    }
}

async fn the_method_is_priced_for_the_order_the_edit_leaves(backend: Backend) {
    let shop = Shop::with(backend, methods(CaptureMode::Immediate)).await;
    let (order, _, c, d) = placed(&shop).await;
    // One unit of A goes: three units left at 1.00 each (+ 10 %), 2.20
    // less than standard; with A's last share of 3.66, 5.86 back.
    let edit = EditRequest::default()
        .remove_units(units(&order, 0, 1))
        .shipping_method(Some("per_item".into()));
    let preview = shop
        .engine
        .preview_order_edit(&staff(), order.id(), &edit)
        .await
        .unwrap();
    assert_eq!(preview.shipping.as_ref().unwrap().after.total, usd("3.30"));
    assert_eq!(preview.difference, usd("-5.86"));
    let o = shop
        .engine
        .confirm_order_edit(&staff(), order.id(), edit, usd("-5.86"), &key("a"))
        .await
        .unwrap();
    assert_eq!(o.payment().refunded(), usd("5.86"));
    adds_up(&o);
    // B swapped for D on express: D's 22.00 and express's 9.90 more than
    // per-item, less B's 11.00: 20.90 to pay. Then C added on economy:
    // what economy saves against express (9.90) pays for C (5.50); 4.40
    // back.
    let edit = EditRequest::default()
        .remove_units(units(&o, 1, 1))
        .add_units(vec![(d, 1)])
        .shipping_method(Some("express".into()));
    let preview = shop
        .engine
        .preview_order_edit(&staff(), order.id(), &edit)
        .await
        .unwrap();
    assert_eq!(preview.difference, usd("20.90"));
    let o = shop
        .engine
        .confirm_order_edit(&staff(), order.id(), edit, usd("20.90"), &key("b"))
        .await
        .unwrap();
    assert_eq!(o.charges()[0].amount, usd("20.90"));
    assert_eq!(o.charges()[0].lines, vec![o.pricing().lines[2].line_id]);
    assert_eq!(o.payment().refunded(), usd("5.86"));
    adds_up(&o);
    let o = shop
        .engine
        .confirm_order_edit(
            &staff(),
            order.id(),
            EditRequest::default()
                .add_units(vec![(c, 1)])
                .shipping_method(Some("economy".into())),
            usd("-4.40"),
            &key("c"),
        )
        .await
        .unwrap();
    assert_eq!(o.payment().refunded(), usd("10.26"));
    assert_eq!(o.charges().len(), 1);
    assert_eq!(o.pricing_versions().len(), 5);
    adds_up(&o);
}

async fn a_method_change_that_cannot_be_made_changes_nothing(backend: Backend) {
    let shop = Shop::with(backend, methods(CaptureMode::Immediate)).await;
    let (order, guest, _, _) = placed(&shop).await;
    let before = shop.snapshot().await;
    let preview = |actor: Actor, code: &str| {
        let engine = shop.engine.clone();
        let id = order.id();
        let edit = EditRequest::default().shipping_method(Some(code.into()));
        async move { engine.preview_order_edit(&actor, id, &edit).await }
    };
    let e = preview(staff(), "standard").await;
    assert!(matches!(e, Err(Error::Invalid { .. })), "{e:?}");
    let e = preview(staff(), "teleport").await;
    assert!(
        matches!(&e, Err(Error::ShippingUnavailable(m)) if m == "teleport"),
        "{e:?}"
    );
    let e = preview(staff(), "").await;
    assert!(matches!(e, Err(Error::Invalid { .. })), "{e:?}");
    let e = preview(staff(), &"x".repeat(10_000)).await;
    assert!(
        matches!(
            e,
            Err(Error::LimitExceeded {
                what: "shipping method",
                ..
            })
        ),
        "{e:?}"
    );
    let e = preview(guest.clone(), "express").await;
    assert!(matches!(e, Err(Error::Forbidden)), "{e:?}");
    // A difference other than the one shown.
    let e = shop
        .engine
        .confirm_order_edit(
            &staff(),
            order.id(),
            EditRequest::default().shipping_method(Some("express".into())),
            usd("5.00"),
            &key("stale"),
        )
        .await;
    assert!(matches!(e, Err(Error::PriceChanged { .. })), "{e:?}");
    assert!(before == shop.snapshot().await);

    // An order shipped in groups has a method per group: refused.
    let a = order.pricing().lines[0].variant_id;
    let b = order.pricing().lines[1].variant_id;
    let cart = shop.ready_cart(&[(a, 1), (b, 1)]).await;
    let line_b = cart.lines()[1].id;
    shop.engine
        .set_shipping_group(&Actor::Guest, cart.id(), "w2", &[line_b], Some("standard"))
        .await
        .unwrap();
    let grouped = shop.place(cart.id(), "grouped").await;
    let e = shop
        .engine
        .preview_order_edit(
            &staff(),
            grouped.id(),
            &EditRequest::default().shipping_method(Some("express".into())),
        )
        .await;
    assert!(matches!(e, Err(Error::Invalid { .. })), "{e:?}");
}

async fn a_refused_refund_puts_the_method_back(backend: Backend) {
    let inner = std::sync::Arc::new(cartwright::payment::TestPaymentProvider::new());
    let slow = common::gateway::SlowGateway::new(inner.clone(), std::time::Duration::ZERO);
    let options = ShopOptions {
        provider: Some(slow.clone()),
        ..methods(CaptureMode::Immediate)
    };
    let shop = Shop::with(backend, options).await;
    let (order, _, _, _) = placed(&shop).await;
    slow.refuse_refunds
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let e = shop
        .engine
        .confirm_order_edit(
            &staff(),
            order.id(),
            EditRequest::default().shipping_method(Some("economy".into())),
            usd("-2.20"),
            &key("e"),
        )
        .await;
    assert!(e.is_err(), "{e:?}");
    let o = shop.engine.order(&staff(), order.id()).await.unwrap();
    assert_eq!(o.pricing().shipping.as_ref().unwrap().code, "standard");
    assert_eq!(o.total(), order.total());
    assert_eq!(o.pricing().tax_lines, order.pricing().tax_lines);
    assert_eq!(o.payment().refunded(), usd("0.00"));
    assert!(!o.has_pending_work());
    // Both changes are kept in its history.
    assert_eq!(o.pricing_versions().len(), 2);
    adds_up(&o);
}

conformance!(
    a_dearer_method_is_charged,
    a_cheaper_method_gives_the_difference_back,
    the_method_is_priced_for_the_order_the_edit_leaves,
    a_method_change_that_cannot_be_made_changes_nothing,
    a_refused_refund_puts_the_method_back,
    an_order_is_not_cancelled_while_its_charge_is_paid,
    a_swap_for_something_dearer_is_charged,
    a_swap_for_something_cheaper_gives_the_rest_back,
    the_address_moves_within_its_tax_jurisdiction,
    bad_edits_change_nothing,
    customers_edit_where_the_shop_allows,
    an_edit_racing_a_shipment_never_both_win,
);
