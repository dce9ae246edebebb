//! Every engine call that takes an actor, with every kind of actor, against
//! the access table documented in `cartwright::actor`: allowed calls are not
//! refused, refused calls are `Error::Forbidden` and change nothing. On both
//! stores.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::future::Future;
use std::pin::Pin;

use cartwright::after_sale::{CancelItems, NewClaim, RefundReturn};
use cartwright::engine::staff::NewStaff;
use cartwright::fulfillment::{ReturnRequest, ShipmentRequest};
use cartwright::id::ReturnCaseId;
use cartwright::id::{CartId, CustomerId, IdempotencyKey, OrderId, VariantId};
use cartwright::money_path::ManualRefund;
use cartwright::note::Visibility;
use cartwright::order::{
    ClaimReason, ClaimResolution, LineQuantity, NewReturnCase, OrderQuery, ReturnReason,
    ShippingRefund,
};
use cartwright::payment::{ProviderEvent, ProviderEventKind};
use cartwright::prelude::*;
use cartwright::pricing::{PriceList, PriceListKind};
use cartwright::staff::{Permission, Role};
use common::{Backend, Shop, address, request, usd};

type Fut = Pin<Box<dyn Future<Output = Result<()>> + Send>>;
type Call = Box<dyn Fn(Engine, Actor) -> Fut + Send + Sync>;

/// Who calls, in the table's column order.
const ACTORS: [&str; 8] = [
    "guest",
    "guest with token",
    "owner",
    "another customer",
    "staff",
    "system",
    "provider",
    "agent",
];

// The rows of the documented table.
const ANYONE_BUT_PROVIDER: [bool; 8] = [true, true, true, true, true, true, false, true];
const OWNER_OR_PRIVILEGED: [bool; 8] = [false, false, true, false, true, true, false, false];
const TOKEN_OR_PRIVILEGED: [bool; 8] = [false, true, false, false, true, true, false, false];
const PRIVILEGED: [bool; 8] = [false, false, false, false, true, true, false, false];
const STAFF_ONLY: [bool; 8] = [false, false, false, false, true, false, false, false];
const CUSTOMERS: [bool; 8] = [false, false, true, true, false, false, false, false];
const PROVIDER_OR_SYSTEM: [bool; 8] = [false, false, false, false, false, true, true, false];
const OWNER_ONLY: [bool; 8] = [false, false, true, false, false, false, false, false];
const EVERYONE: [bool; 8] = [true; 8];
const AGENT_ONLY: [bool; 8] = [false, false, false, false, false, false, false, true];

macro_rules! row {
    ($name:expr, $allow:expr, |$e:ident, $a:ident| $body:expr) => {
        (
            $name,
            $allow,
            Box::new(move |$e: Engine, $a: Actor| -> Fut {
                Box::pin(async move {
                    let out = $body.await;
                    out.map(|_| ())
                })
            }) as Call,
        )
    };
}

struct World {
    shop: Shop,
    actors: Vec<Actor>,
    owner: CustomerId,
    owner_cart: CartId,
    guest_cart: CartId,
    owner_order: OrderId,
    guest_order: OrderId,
    variant: VariantId,
    coded: cartwright::id::PromotionId,
    channel: cartwright::id::ChannelId,
    credit: cartwright::id::GiftCardId,
}

async fn world(backend: Backend) -> World {
    let shop = Shop::new(backend).await;
    let variant = shop.product("A", "10.00", 100).await;
    let owner = shop.customer("owner@example.com").await.id();
    let other = shop.customer("other@example.com").await.id();
    let me = Actor::Customer(owner);
    // A placed order of the owner's and a guest's, and a cart of each.
    let cart = shop.engine.create_cart(&me, Currency::USD).await.unwrap();
    shop.engine
        .add_item(&me, cart.id(), variant, 2)
        .await
        .unwrap();
    shop.complete_details(&me, cart.id()).await;
    let mut req = request(cart.id(), "owner-order");
    req.actor = me.clone();
    let owner_order = shop.engine.checkout(req).await.unwrap().order.id();
    let guest = shop.ready_cart(&[(variant, 2)]).await;
    let placed = shop
        .engine
        .checkout(request(guest.id(), "guest-order"))
        .await
        .unwrap();
    let token = placed.access_token.unwrap();
    let owner_cart = shop
        .engine
        .create_cart(&me, Currency::USD)
        .await
        .unwrap()
        .id();
    let guest_cart = shop
        .engine
        .create_cart(&Actor::Guest, Currency::USD)
        .await
        .unwrap()
        .id();
    let coded = shop
        .engine
        .save_promotion(&Actor::System, common::ten_percent_coded())
        .await
        .unwrap()
        .id;
    let channel = shop
        .engine
        .save_channel(
            &Actor::System,
            cartwright::channel::SalesChannel::new("App", &[Currency::USD], chrono::Utc::now()),
        )
        .await
        .unwrap()
        .id;
    let credit = shop
        .engine
        .grant_store_credit(
            &Actor::System,
            owner,
            usd("3.00"),
            "sorry",
            &key("credit-setup"),
        )
        .await
        .unwrap()
        .id();
    let actors = vec![
        Actor::Guest,
        Actor::GuestWithToken(token),
        me,
        Actor::Customer(other),
        Actor::Staff("amy".into()),
        Actor::System,
        Actor::Provider("test".into()),
        Actor::Agent("agent-x".into()),
    ];
    World {
        shop,
        actors,
        owner,
        owner_cart,
        guest_cart,
        owner_order,
        guest_order: placed.order.id(),
        variant,
        coded,
        channel,
        credit,
    }
}

fn key(k: &str) -> IdempotencyKey {
    IdempotencyKey::new(k).unwrap()
}

fn rows(w: &World) -> Vec<(&'static str, [bool; 8], Call)> {
    let (owner, oc, gc, oo, go, v) = (
        w.owner,
        w.owner_cart,
        w.guest_cart,
        w.owner_order,
        w.guest_order,
        w.variant,
    );
    let (warehouse, coded, channel, credit) = (w.shop.warehouse, w.coded, w.channel, w.credit);
    vec![
        // Carts.
        row!("create_cart", ANYONE_BUT_PROVIDER, |e, a| e
            .create_cart(&a, Currency::USD)),
        row!("cart (guest's)", ANYONE_BUT_PROVIDER, |e, a| e.cart(&a, gc)),
        row!("add_item (guest's)", ANYONE_BUT_PROVIDER, |e, a| e
            .add_item(&a, gc, v, 1)),
        row!("add_item_with (guest's)", ANYONE_BUT_PROVIDER, |e, a| e
            .add_item_with(
                &a,
                gc,
                v,
                1,
                [("note".into(), "hi".into())].into()
            )),
        row!("add_item_once (guest's)", ANYONE_BUT_PROVIDER, |e, a| {
            async move { e.add_item_once(&a, gc, v, 1, &key("add")).await }
        }),
        row!("set_email (guest's)", ANYONE_BUT_PROVIDER, |e, a| {
            e.set_email(&a, gc, "x@example.com")
        }),
        row!("price_cart (guest's)", ANYONE_BUT_PROVIDER, |e, a| e
            .price_cart(&a, gc)),
        row!("cart (customer's)", OWNER_OR_PRIVILEGED, |e, a| e
            .cart(&a, oc)),
        row!("add_item (customer's)", OWNER_OR_PRIVILEGED, |e, a| e
            .add_item(&a, oc, v, 1)),
        row!("add_item_with (customer's)", OWNER_OR_PRIVILEGED, |e, a| e
            .add_item_with(
                &a,
                oc,
                v,
                1,
                [("note".into(), "hi".into())].into()
            )),
        row!(
            "set_shipping_address (customer's)",
            OWNER_OR_PRIVILEGED,
            |e, a| { e.set_shipping_address(&a, oc, address()) }
        ),
        row!(
            "add_coupon_code (customer's)",
            OWNER_OR_PRIVILEGED,
            |e, a| { e.add_coupon_code(&a, oc, "NOPE") }
        ),
        row!("price_cart (customer's)", OWNER_OR_PRIVILEGED, |e, a| e
            .price_cart(&a, oc)),
        row!("price_cart_with (guest's)", ANYONE_BUT_PROVIDER, |e, a| {
            async move {
                e.price_cart_with(&a, gc, &cartwright::pricing::AutomaticPromotions::None)
                    .await
            }
        }),
        row!(
            "price_cart_with (customer's)",
            OWNER_OR_PRIVILEGED,
            |e, a| {
                async move {
                    e.price_cart_with(&a, oc, &cartwright::pricing::AutomaticPromotions::None)
                        .await
                }
            }
        ),
        row!(
            "eligible_promotions (guest's)",
            ANYONE_BUT_PROVIDER,
            |e, a| e.eligible_promotions(&a, gc)
        ),
        row!(
            "eligible_promotions (customer's)",
            OWNER_OR_PRIVILEGED,
            |e, a| e.eligible_promotions(&a, oc)
        ),
        row!("add_custom_line (guest's cart)", PRIVILEGED, |e, a| {
            let price = cartwright::cart::CustomPrice::new(usd("1.00"), "quote");
            async move { e.add_custom_line(&a, gc, v, 1, price).await }
        }),
        row!("add_custom_line (customer's cart)", PRIVILEGED, |e, a| {
            let price = cartwright::cart::CustomPrice::new(usd("1.00"), "quote");
            async move { e.add_custom_line(&a, oc, v, 1, price).await }
        }),
        row!("checkout (customer's cart)", OWNER_OR_PRIVILEGED, |e, a| {
            let mut r = request(oc, "access-checkout");
            r.actor = a.clone();
            e.checkout(r)
        }),
        row!(
            "start_checkout (customer's cart)",
            OWNER_OR_PRIVILEGED,
            |e, a| {
                let mut r = request(oc, "access-start");
                r.actor = a.clone();
                e.start_checkout(r)
            }
        ),
        row!(
            "complete_checkout (customer's cart)",
            OWNER_OR_PRIVILEGED,
            |e, a| async move { e.complete_checkout(&a, oc, &key("access-wait")).await }
        ),
        row!(
            "cancel_checkout (customer's cart)",
            OWNER_OR_PRIVILEGED,
            |e, a| async move { e.cancel_checkout(&a, oc, &key("access-wait")).await }
        ),
        row!("issue_gift_card", PRIVILEGED, |e, a| async move {
            e.issue_gift_card(
                &a,
                cartwright::giftcards::NewGiftCard::new(usd("5.00")),
                &key(&format!("gc-{}", cartwright::deps::uuid::Uuid::new_v4())),
            )
            .await
        }),
        row!("grant_store_credit", PRIVILEGED, |e, a| async move {
            e.grant_store_credit(&a, owner, usd("1.00"), "sorry", &key("credit"))
                .await
        }),
        row!(
            "gift_card_balance",
            ANYONE_BUT_PROVIDER,
            |e, a| async move { e.gift_card_balance(&a, "AAAA-BBBB-CCCC-DDDD").await }
        ),
        row!(
            "gift_card (the owner's store credit)",
            OWNER_OR_PRIVILEGED,
            |e, a| e.gift_card(&a, credit)
        ),
        row!("store_credit", OWNER_OR_PRIVILEGED, |e, a| e.store_credit(
            &a,
            owner,
            Currency::USD
        )),
        row!("merge_guest_cart", CUSTOMERS, |e, a| e
            .merge_guest_cart(&a, gc)),
        // Customers.
        row!("customer", OWNER_OR_PRIVILEGED, |e, a| e
            .customer(&a, owner)),
        row!("add_address", OWNER_OR_PRIVILEGED, |e, a| {
            e.add_address(&a, owner, address())
        }),
        row!("add_customer_note", PRIVILEGED, |e, a| {
            e.add_customer_note(&a, owner, "vip", Visibility::Internal)
        }),
        row!("create_group", PRIVILEGED, |e, a| e.create_group(&a, "VIP")),
        row!("customer_groups", PRIVILEGED, |e, a| e.customer_groups(&a)),
        // Orders.
        row!("order (customer's)", OWNER_OR_PRIVILEGED, |e, a| e
            .order(&a, oo)),
        row!("order (guest's)", TOKEN_OR_PRIVILEGED, |e, a| e
            .order(&a, go)),
        row!(
            "add_order_note (customer's)",
            OWNER_OR_PRIVILEGED,
            |e, a| { e.add_order_note(&a, oo, "hello", Visibility::Customer) }
        ),
        row!(
            "orders_for_customer (owner's)",
            OWNER_OR_PRIVILEGED,
            |e, a| { e.orders_for_customer(&a, owner, None, 10) }
        ),
        row!(
            "find_orders (owner's)",
            OWNER_OR_PRIVILEGED,
            |e, a| async move {
                let query = OrderQuery::default().customer(Some(owner)).limit(10);
                e.find_orders(&a, &query).await
            }
        ),
        row!("capture", PRIVILEGED, |e, a| e.capture(&a, oo)),
        row!("capture_partial", PRIVILEGED, |e, a| {
            async move { e.capture_partial(&a, oo, None, &key("cap")).await }
        }),
        row!("ship", PRIVILEGED, |e, a| async move {
            let o = e.order(&Actor::System, oo).await?;
            let items = vec![LineQuantity {
                line_id: o.pricing().lines[0].line_id,
                quantity: 1,
            }];
            e.ship(
                &a,
                oo,
                ShipmentRequest::new(items)
                    .carrier("UPS")
                    .tracking_number(String::new())
                    .location(None),
            )
            .await
        }),
        row!("return_items", PRIVILEGED, |e, a| async move {
            let o = e.order(&Actor::System, oo).await?;
            let items = vec![LineQuantity {
                line_id: o.pricing().lines[0].line_id,
                quantity: 1,
            }];
            e.return_items(
                &a,
                oo,
                ReturnRequest::new(items, key("ret"))
                    .restock(true)
                    .shipping(ShippingRefund::Never),
            )
            .await
        }),
        row!(
            "return_quote (owner's)",
            OWNER_OR_PRIVILEGED,
            |e, a| async move {
                let o = e.order(&Actor::System, oo).await?;
                let items = vec![LineQuantity {
                    line_id: o.pricing().lines[0].line_id,
                    quantity: 1,
                }];
                e.return_quote(&a, oo, &items, ReturnReason::Other).await
            }
        ),
        row!(
            "request_return (guest's)",
            TOKEN_OR_PRIVILEGED,
            |e, a| async move {
                let o = e.order(&Actor::System, go).await?;
                let items = vec![LineQuantity {
                    line_id: o.pricing().lines[0].line_id,
                    quantity: 1,
                }];
                let ask = NewReturnCase::new(items, ReturnReason::Other, key("rq"));
                e.request_return(&a, go, ask).await
            }
        ),
        row!(
            "cancel_return_request (owner's)",
            OWNER_OR_PRIVILEGED,
            |e, a| e.cancel_return_request(&a, oo, ReturnCaseId::new())
        ),
        row!(
            "cancel_items (guest's)",
            TOKEN_OR_PRIVILEGED,
            |e, a| async move {
                let o = e.order(&Actor::System, go).await?;
                let items = vec![LineQuantity {
                    line_id: o.pricing().lines[0].line_id,
                    quantity: 1,
                }];
                e.cancel_items(&a, go, CancelItems::new(items, key("ci")))
                    .await
            }
        ),
        row!("create_claim", PRIVILEGED, |e, a| async move {
            let o = e.order(&Actor::System, oo).await?;
            let items = vec![LineQuantity {
                line_id: o.pricing().lines[0].line_id,
                quantity: 1,
            }];
            let claim = NewClaim::new(
                items,
                ClaimReason::Missing,
                ClaimResolution::Refund,
                key("claim"),
            );
            e.create_claim(&a, oo, claim).await
        }),
        row!("create_draft_order", PRIVILEGED, |e, a| e
            .create_draft_order(
                &a,
                cartwright::quotes::NewDraftOrder::new(Currency::USD)
            )),
        row!("send_quote (unknown cart)", PRIVILEGED, |e, a| e
            .send_quote(
                &a,
                CartId::new(),
                chrono::Utc::now() + chrono::Duration::days(400)
            )),
        row!("withdraw_quote (unknown cart)", PRIVILEGED, |e, a| e
            .withdraw_quote(&a, CartId::new())),
        row!("create_exchange", PRIVILEGED, |e, a| async move {
            let o = e.order(&Actor::System, oo).await?;
            let items = vec![LineQuantity {
                line_id: o.pricing().lines[0].line_id,
                quantity: 1,
            }];
            let exchange = cartwright::after_sale::NewExchange::new(
                items,
                vec![(v, 1)],
                ReturnReason::SizeOrFit,
                key("exchange"),
            );
            e.create_exchange(&a, oo, exchange).await
        }),
        row!("cancel_exchange (unknown)", PRIVILEGED, |e, a| e
            .cancel_exchange(&a, oo, cartwright::id::ExchangeId::new())),
        row!(
            "pay_charge (owner's, unknown)",
            OWNER_OR_PRIVILEGED,
            |e, a| e.pay_charge(
                &a,
                oo,
                cartwright::id::ChargeId::new(),
                cartwright::after_sale::ChargePayment::new("tok_visa")
            )
        ),
        row!("preview_order_edit", PRIVILEGED, |e, a| async move {
            let edit = cartwright::after_sale::EditRequest::default().add_units(vec![(v, 1)]);
            e.preview_order_edit(&a, oo, &edit).await
        }),
        row!("confirm_order_edit", PRIVILEGED, |e, a| async move {
            let edit = cartwright::after_sale::EditRequest::default().add_units(vec![(v, 1)]);
            e.confirm_order_edit(&a, oo, edit, usd("1.00"), &key("edit"))
                .await
        }),
        row!("stop_charge (unknown)", PRIVILEGED, |e, a| e.stop_charge(
            &a,
            oo,
            cartwright::id::ChargeId::new()
        )),
        row!("approve_return", PRIVILEGED, |e, a| e.approve_return(
            &a,
            oo,
            ReturnCaseId::new(),
            ""
        )),
        row!("reject_return", PRIVILEGED, |e, a| e.reject_return(
            &a,
            oo,
            ReturnCaseId::new(),
            "no"
        )),
        row!("receive_return", PRIVILEGED, |e, a| e.receive_return(
            &a,
            oo,
            ReturnCaseId::new(),
            vec![]
        )),
        row!("refund_return", PRIVILEGED, |e, a| e.refund_return(
            &a,
            oo,
            ReturnCaseId::new(),
            RefundReturn::new(key("rr"))
        )),
        row!("refund", STAFF_ONLY, |e, a| {
            e.refund(&a, oo, ManualRefund::new(usd("0.01"), "goodwill", key("r")))
        }),
        row!("settle_order", PRIVILEGED, |e, a| e.settle_order(&a, oo)),
        row!(
            "apply_provider_event",
            PROVIDER_OR_SYSTEM,
            |e, a| async move {
                let o = e.order(&Actor::System, oo).await?;
                let event = ProviderEvent::new(
                    "evt_access",
                    o.payment().reference().to_owned(),
                    ProviderEventKind::Authorized,
                );
                e.apply_provider_event(&a, &event).await
            }
        ),
        row!("cancel (guest's)", TOKEN_OR_PRIVILEGED, |e, a| e.cancel(
            &a,
            go,
            "changed mind"
        )),
        // Catalog, stock, promotions: staff and the system.
        row!("create_category", PRIVILEGED, |e, a| e
            .create_category(&a, "Mugs", None)),
        row!("create_collection", PRIVILEGED, |e, a| e
            .create_collection(&a, "Summer")),
        row!("rename_category (unknown)", PRIVILEGED, |e, a| e
            .rename_category(&a, cartwright::id::CategoryId::new(), "X")),
        row!("move_category (unknown)", PRIVILEGED, |e, a| e
            .move_category(&a, cartwright::id::CategoryId::new(), None)),
        row!("delete_category (unknown)", PRIVILEGED, |e, a| e
            .delete_category(&a, cartwright::id::CategoryId::new())),
        row!("rename_collection (unknown)", PRIVILEGED, |e, a| e
            .rename_collection(
                &a,
                cartwright::id::CollectionId::new(),
                "X"
            )),
        row!("delete_collection (unknown)", PRIVILEGED, |e, a| e
            .delete_collection(&a, cartwright::id::CollectionId::new())),
        row!("delete_product (unknown)", PRIVILEGED, |e, a| e
            .delete_product(&a, cartwright::id::ProductId::new())),
        row!("create_product", PRIVILEGED, |e, a| {
            e.create_product(&a, NewProduct::new("New"))
        }),
        row!("set_product_status", PRIVILEGED, |e, a| async move {
            let p = e.variant_by_sku("A").await?.variant.product_id();
            e.set_product_status(&a, p, Status::Active).await
        }),
        row!("update_product", PRIVILEGED, |e, a| async move {
            let p = e.variant_by_sku("A").await?.variant.product_id();
            let product = e.product(p).await?;
            e.update_product(&a, product).await
        }),
        row!("upload_image", PRIVILEGED, |e, a| async move {
            let p = e.variant_by_sku("A").await?.variant.product_id();
            let png = [
                0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, 0x49, 0x48, 0x44,
                0x52, 0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0, 0x1f, 0x15, 0xc4, 0x89, 0, 0, 0, 0x0d,
                0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0x63, 0xf8, 0xcf, 0xc0, 0xf0, 0x1f, 0, 5, 0, 1,
                0xff, 0x56, 0xc7, 0x2f, 0x0d, 0, 0, 0, 0, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60,
                0x82,
            ];
            e.upload_image(&a, p, cartwright::media::ImageUpload::new(png.to_vec()))
                .await
        }),
        row!("remove_image (unknown)", PRIVILEGED, |e, a| async move {
            let p = e.variant_by_sku("A").await?.variant.product_id();
            e.remove_image(&a, p, "/media/none.png").await
        }),
        row!("create_location", PRIVILEGED, |e, a| e
            .create_location(&a, "Shop", 1)),
        row!("add_location", PRIVILEGED, |e, a| e.add_location(
            &a,
            cartwright::inventory::Location::new("Shop", 1).unwrap()
        )),
        row!("set_stock", PRIVILEGED, |e, a| e
            .set_stock(&a, v, warehouse, 100)),
        row!("adjust_stock", PRIVILEGED, |e, a| e
            .adjust_stock(&a, v, warehouse, 1)),
        row!("adjust_stock_for", PRIVILEGED, |e, a| e.adjust_stock_for(
            &a,
            v,
            warehouse,
            1,
            "stock count"
        )),
        row!("set_low_stock_threshold", PRIVILEGED, |e, a| e
            .set_low_stock_threshold(&a, v, Some(2))),
        row!("reserve_stock", PRIVILEGED, |e, a| e
            .reserve_stock(&a, &[(v, 1)])),
        row!("usage", PRIVILEGED, |e, a| e.usage(&a, "coupon:X:uses")),
        row!("save_promotion", PRIVILEGED, |e, a| e
            .save_promotion(&a, common::ten_percent_coded())),
        row!("promotions", PRIVILEGED, |e, a| e.promotions(&a)),
        row!("price_lists", PRIVILEGED, |e, a| e.price_lists(&a)),
        row!("save_price_list", PRIVILEGED, |e, a| {
            e.save_price_list(
                &a,
                PriceList::new("Sale", PriceListKind::Sale, 0, Currency::USD),
            )
        }),
        row!("create_coupon", PRIVILEGED, |e, a| async move {
            e.create_coupon(&a, coded, "ACCESS", None).await
        }),
        row!("create_coupon_for", PRIVILEGED, |e, a| async move {
            e.create_coupon_for(&a, &[coded], "ACCESS-MANY", None).await
        }),
        row!("generate_coupons", PRIVILEGED, |e, a| e
            .generate_coupons(&a, coded, "G", 2, None)),
        row!("set_promotion_enabled", PRIVILEGED, |e, a| {
            e.set_promotion_enabled(&a, coded, true)
        }),
        row!("promotion", PRIVILEGED, |e, a| e.promotion(&a, coded)),
        row!("pending_events", PRIVILEGED, |e, a| e
            .pending_events(&a, "mailer", 10)),
        row!("run_maintenance", PRIVILEGED, |e, a| e.run_maintenance(&a)),
        row!("release_reservation", PRIVILEGED, |e, a| {
            e.release_reservation(&a, cartwright::id::ReservationId::new())
        }),
        row!("commit_reservation", PRIVILEGED, |e, a| {
            e.commit_reservation(&a, cartwright::id::ReservationId::new())
        }),
        row!("ack_events", PRIVILEGED, |e, a| {
            e.ack_events(&a, "mailer", cartwright::id::EventId::new())
        }),
        row!("failed_deliveries", PRIVILEGED, |e, a| e
            .failed_deliveries(&a, None, 10)),
        row!("replay_delivery", PRIVILEGED, |e, a| e.replay_delivery(
            &a,
            "mailer",
            "order:none"
        )),
        row!("create_webhook", PRIVILEGED, |e, a| e.create_webhook(
            &a,
            cartwright::webhook::NewWebhook::new("https://hooks.example.com/x", ["*"])
        )),
        row!("webhooks", PRIVILEGED, |e, a| e.webhooks(&a)),
        row!("webhook (an unknown one)", PRIVILEGED, |e, a| async move {
            e.webhook(&a, cartwright::webhook::WebhookId::new()).await
        }),
        row!(
            "pause_webhook (an unknown one)",
            PRIVILEGED,
            |e, a| async move {
                e.pause_webhook(&a, cartwright::webhook::WebhookId::new())
                    .await
            }
        ),
        row!(
            "resume_webhook (an unknown one)",
            PRIVILEGED,
            |e, a| async move {
                e.resume_webhook(&a, cartwright::webhook::WebhookId::new())
                    .await
            }
        ),
        row!(
            "delete_webhook (an unknown one)",
            PRIVILEGED,
            |e, a| async move {
                e.delete_webhook(&a, cartwright::webhook::WebhookId::new())
                    .await
            }
        ),
        row!("mark_delivered", PRIVILEGED, |e, a| {
            e.mark_delivered(&a, oo, cartwright::id::ShipmentId::new())
        }),
        row!("purchase_label", PRIVILEGED, |e, a| async move {
            e.purchase_label(&a, oo, cartwright::id::ShipmentId::new(), "test", "ground")
                .await
        }),
        row!("void_label", PRIVILEGED, |e, a| {
            e.void_label(&a, oo, cartwright::id::ShipmentId::new())
        }),
        row!(
            "apply_tracking_event",
            PROVIDER_OR_SYSTEM,
            |e, a| async move {
                let event = cartwright::shipping::TrackingEvent::new(
                    format!("{oo}:{}", cartwright::id::ShipmentId::new()),
                    cartwright::shipping::TrackingStatus::InTransit,
                    chrono::Utc::now(),
                );
                e.apply_tracking_event(&a, &event).await
            }
        ),
        row!("remove_address", OWNER_OR_PRIVILEGED, |e, a| {
            e.remove_address(&a, owner, cartwright::id::AddressId::new())
        }),
        row!("add_to_group", PRIVILEGED, |e, a| {
            e.add_to_group(&a, owner, cartwright::id::CustomerGroupId::new())
        }),
        row!("set_quantity (customer's)", OWNER_OR_PRIVILEGED, |e, a| {
            e.set_quantity(&a, oc, cartwright::id::LineId::new(), 2)
        }),
        row!("remove_line (customer's)", OWNER_OR_PRIVILEGED, |e, a| {
            e.remove_line(&a, oc, cartwright::id::LineId::new())
        }),
        row!(
            "set_billing_address (customer's)",
            OWNER_OR_PRIVILEGED,
            |e, a| { e.set_billing_address(&a, oc, address()) }
        ),
        row!(
            "set_shipping_method (customer's)",
            OWNER_OR_PRIVILEGED,
            |e, a| { e.set_shipping_method(&a, oc, "standard") }
        ),
        row!("export_customer", OWNER_OR_PRIVILEGED, |e, a| async move {
            e.export_customer(&a, owner).await
        }),
        row!(
            "erase_customer (an unknown one)",
            PRIVILEGED,
            |e, a| async move { e.erase_customer(&a, CustomerId::new()).await }
        ),
        row!(
            "find_products (shoppers see active ones)",
            EVERYONE,
            |e, a| async move {
                e.find_products(&a, &cartwright::catalog::ProductQuery::new(5))
                    .await
            }
        ),
        row!("update_profile", OWNER_OR_PRIVILEGED, |e, a| async move {
            e.update_profile(&a, owner, Some("Owner"), None).await
        }),
        row!(
            "set_tax_details (tax id)",
            OWNER_OR_PRIVILEGED,
            |e, a| async move {
                e.set_tax_details(&a, owner, Some("DE123456789"), None)
                    .await
            }
        ),
        row!(
            "set_tax_details (exemption)",
            PRIVILEGED,
            |e, a| async move { e.set_tax_details(&a, owner, None, Some("EX-1")).await }
        ),
        row!(
            "request_email_change",
            OWNER_OR_PRIVILEGED,
            |e, a| async move {
                e.request_email_change(&a, owner, "owner.new@example.com")
                    .await
            }
        ),
        row!("find_customers", PRIVILEGED, |e, a| async move {
            e.find_customers(&a, &cartwright::customer::CustomerQuery::new(5))
                .await
        }),
        row!("remove_from_group", PRIVILEGED, |e, a| {
            e.remove_from_group(&a, owner, cartwright::id::CustomerGroupId::new())
        }),
        row!("change_password", OWNER_ONLY, |e, a| async move {
            e.change_password(&a, owner, "not-the-password", "another-password")
                .await
        }),
        row!("request_email_verification", OWNER_OR_PRIVILEGED, |e, a| {
            e.request_email_verification(&a, owner)
        }),
        row!(
            "set_shipping_group (customer's)",
            OWNER_OR_PRIVILEGED,
            |e, a| async move {
                e.set_shipping_group(&a, oc, "g", &[cartwright::id::LineId::new()], None)
                    .await
            }
        ),
        row!(
            "remove_shipping_group (customer's)",
            OWNER_OR_PRIVILEGED,
            |e, a| { e.remove_shipping_group(&a, oc, "g") }
        ),
        row!(
            "remove_coupon_code (customer's)",
            OWNER_OR_PRIVILEGED,
            |e, a| { e.remove_coupon_code(&a, oc, "NOPE") }
        ),
        row!("cancel (customer's)", OWNER_OR_PRIVILEGED, |e, a| e.cancel(
            &a,
            oo,
            "no longer needed"
        )),
        // Last: carts in channels change which cart a merge finds.
        row!("save_channel", PRIVILEGED, |e, a| async move {
            let channel = cartwright::channel::SalesChannel::new(
                format!("Channel {}", cartwright::deps::uuid::Uuid::new_v4()),
                &[Currency::USD],
                chrono::Utc::now(),
            );
            e.save_channel(&a, channel).await
        }),
        row!("create_cart_in", ANYONE_BUT_PROVIDER, |e, a| e
            .create_cart_in(&a, channel, Currency::USD)),
        // Staff accounts and roles.
        row!("install_builtin_roles", PRIVILEGED, |e, a| e
            .install_builtin_roles(&a, &[usd("1000.00")])),
        row!("roles", PRIVILEGED, |e, a| e.roles(&a)),
        row!("save_role", PRIVILEGED, |e, a| async move {
            let name = format!("r-{}", cartwright::deps::uuid::Uuid::new_v4().simple());
            e.save_role(&a, Role::new(&name, [Permission::Orders])?)
                .await
        }),
        row!("delete_role (unknown)", PRIVILEGED, |e, a| async move {
            e.delete_role(&a, "no-such-role").await
        }),
        row!("create_staff", PRIVILEGED, |e, a| async move {
            let email = format!(
                "{}@shop.test",
                cartwright::deps::uuid::Uuid::new_v4().simple()
            );
            e.create_staff(&a, NewStaff::new(&email, "New", "password1", &["support"]))
                .await
        }),
        row!("list_staff", PRIVILEGED, |e, a| e.list_staff(&a)),
        row!("audit_log", PRIVILEGED, |e, a| e.audit_log(&a, None, 50)),
        row!("staff_member (unknown)", PRIVILEGED, |e, a| e
            .staff_member(&a, cartwright::id::StaffId::new())),
        row!("set_staff_roles (unknown)", PRIVILEGED, |e, a| e
            .set_staff_roles(
                &a,
                cartwright::id::StaffId::new(),
                vec!["support".into()]
            )),
        row!("set_staff_active (unknown)", PRIVILEGED, |e, a| e
            .set_staff_active(&a, cartwright::id::StaffId::new(), false)),
        row!("reset_totp (unknown)", PRIVILEGED, |e, a| e
            .reset_totp(&a, cartwright::id::StaffId::new())),
        row!("open_agent_session", AGENT_ONLY, |e, a| e
            .open_agent_session(
                &a,
                cartwright::agent::AgentProtocol::Ucp,
                Currency::USD
            )),
    ]
}

async fn every_call_checks_its_actor_against_the_table(backend: Backend) {
    let w = world(backend).await;
    let mut wrong = Vec::new();
    for (name, allow, call) in rows(&w) {
        for (i, actor) in w.actors.iter().enumerate() {
            let before = w.shop.snapshot().await;
            let result = call(w.shop.engine.clone(), actor.clone()).await;
            let refused = matches!(result, Err(Error::Forbidden));
            if refused == allow[i] {
                wrong.push(format!(
                    "{name} by {}: expected {}, got {result:?}",
                    ACTORS[i],
                    if allow[i] { "allowed" } else { "Forbidden" }
                ));
            }
            if refused && w.shop.snapshot().await != before {
                wrong.push(format!(
                    "{name} by {}: refused but changed the store",
                    ACTORS[i]
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// What a signed-in member of staff needs for each row the staff column
/// allows: every permission of one of the alternatives (`&[]`: none).
fn needs(name: &str) -> &'static [&'static [Permission]] {
    use Permission::*;
    const NONE: &[&[Permission]] = &[&[]];
    const CART: &[&[Permission]] = &[&[Orders], &[Customers]];
    const ORDERS: &[&[Permission]] = &[&[Orders]];
    const REFUNDING: &[&[Permission]] = &[&[Orders, Refunds]];
    const CUSTOMERS: &[&[Permission]] = &[&[Customers]];
    const CATALOG: &[&[Permission]] = &[&[Catalog]];
    const INVENTORY: &[&[Permission]] = &[&[Inventory]];
    const PROMOTIONS: &[&[Permission]] = &[&[Promotions]];
    const GIFT_CARDS: &[&[Permission]] = &[&[GiftCards]];
    const SETTINGS: &[&[Permission]] = &[&[Settings]];
    const REFUNDS: &[&[Permission]] = &[&[Refunds]];
    const STAFF: &[&[Permission]] = &[&[Staff]];
    match name {
        n if n.contains("(guest's)")
            && !n.starts_with("order")
            && !n.starts_with("cancel")
            && !n.starts_with("request_return") =>
        {
            NONE
        }
        "create_cart"
        | "create_cart_in"
        | "gift_card_balance"
        | "find_products (shoppers see active ones)" => NONE,
        n if n.ends_with("(customer's)")
            && !n.starts_with("order")
            && !n.starts_with("add_order_note")
            && !n.starts_with("cancel") =>
        {
            CART
        }
        n if n.ends_with("(customer's cart)") => CART,
        "gift_card (the owner's store credit)" | "store_credit" => GIFT_CARDS,
        "customer"
        | "add_address"
        | "remove_address"
        | "export_customer"
        | "update_profile"
        | "set_tax_details (tax id)"
        | "request_email_change"
        | "request_email_verification"
        | "add_customer_note"
        | "create_group"
        | "customer_groups"
        | "add_to_group"
        | "remove_from_group"
        | "erase_customer (an unknown one)"
        | "set_tax_details (exemption)"
        | "find_customers" => CUSTOMERS,
        "order (customer's)"
        | "add_order_note (customer's)"
        | "orders_for_customer (owner's)"
        | "find_orders (owner's)"
        | "return_quote (owner's)"
        | "cancel_return_request (owner's)"
        | "pay_charge (owner's, unknown)"
        | "order (guest's)"
        | "request_return (guest's)"
        | "add_custom_line (guest's cart)"
        | "add_custom_line (customer's cart)"
        | "capture"
        | "capture_partial"
        | "ship"
        | "create_claim"
        | "create_draft_order"
        | "send_quote (unknown cart)"
        | "withdraw_quote (unknown cart)"
        | "create_exchange"
        | "cancel_exchange (unknown)"
        | "preview_order_edit"
        | "confirm_order_edit"
        | "stop_charge (unknown)"
        | "approve_return"
        | "reject_return"
        | "receive_return"
        | "settle_order"
        | "mark_delivered"
        | "purchase_label"
        | "void_label" => ORDERS,
        "cancel (customer's)" | "cancel (guest's)" | "cancel_items (guest's)" | "return_items" => {
            REFUNDING
        }
        // An unknown return request: nothing is refunded, so only the
        // door's permission is asked (a refund checks its own).
        "refund_return" => ORDERS,
        "refund" => REFUNDS,
        n if n.starts_with("create_category")
            || n.starts_with("create_collection")
            || n.starts_with("rename_")
            || n.starts_with("move_category")
            || n.starts_with("delete_category")
            || n.starts_with("delete_collection")
            || n.starts_with("delete_product")
            || n == "create_product"
            || n == "set_product_status"
            || n == "update_product"
            || n == "upload_image"
            || n.starts_with("remove_image") =>
        {
            CATALOG
        }
        "create_location"
        | "add_location"
        | "set_stock"
        | "adjust_stock"
        | "adjust_stock_for"
        | "set_low_stock_threshold"
        | "reserve_stock"
        | "release_reservation"
        | "commit_reservation" => INVENTORY,
        "usage"
        | "save_promotion"
        | "promotions"
        | "price_lists"
        | "save_price_list"
        | "create_coupon"
        | "create_coupon_for"
        | "generate_coupons"
        | "set_promotion_enabled"
        | "promotion" => PROMOTIONS,
        "issue_gift_card" | "grant_store_credit" => GIFT_CARDS,
        n if n.contains("webhook")
            || n == "pending_events"
            || n == "run_maintenance"
            || n == "ack_events"
            || n == "failed_deliveries"
            || n == "replay_delivery"
            || n == "save_channel" =>
        {
            SETTINGS
        }
        "install_builtin_roles"
        | "roles"
        | "save_role"
        | "delete_role (unknown)"
        | "create_staff"
        | "list_staff"
        | "audit_log"
        | "staff_member (unknown)"
        | "set_staff_roles (unknown)"
        | "set_staff_active (unknown)"
        | "reset_totp (unknown)" => STAFF,
        other => panic!("the table gives no permission for {other}"),
    }
}

/// Every call the staff column allows, by a signed-in member of each
/// built-in role: allowed exactly when the role has what [`needs`] says
/// (the permission column of the table); refused calls change nothing.
async fn every_role_gets_what_its_permissions_allow(backend: Backend) {
    let w = world(backend).await;
    let e = &w.shop.engine;
    let roles = e
        .install_builtin_roles(&Actor::System, &[usd("1000.00")])
        .await
        .unwrap();
    let mut members = Vec::new();
    for role in &roles {
        let email = format!("{}@shop.test", role.name);
        e.create_staff(
            &Actor::System,
            NewStaff::new(&email, &role.name, "password1", &[role.name.as_str()]),
        )
        .await
        .unwrap();
        let login = e.staff_login(&email, "password1", None).await.unwrap();
        let actor = e.staff_actor(&login.token).await.unwrap();
        members.push((role.clone(), actor));
    }
    let mut wrong = Vec::new();
    for (name, allow, call) in rows(&w) {
        let expected = |role: &Role| {
            allow[4]
                && needs(name)
                    .iter()
                    .any(|alt| alt.iter().all(|p| role.permissions.contains(p)))
        };
        // Those to be refused first: one allowed may change what the
        // others find (a cancelled order).
        let mut order: Vec<&(Role, Actor)> = members.iter().collect();
        order.sort_by_key(|(role, _)| expected(role));
        for (role, actor) in order {
            let before = w.shop.snapshot().await;
            let result = call(e.clone(), actor.clone()).await;
            let refused = matches!(result, Err(Error::Forbidden));
            if refused == expected(role) {
                wrong.push(format!(
                    "{name} by {}: expected {}, got {result:?}",
                    role.name,
                    if expected(role) {
                        "allowed"
                    } else {
                        "Forbidden"
                    }
                ));
            }
            if refused && w.shop.snapshot().await != before {
                wrong.push(format!(
                    "{name} by {}: refused but changed the store",
                    role.name
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

conformance!(
    every_call_checks_its_actor_against_the_table,
    every_role_gets_what_its_permissions_allow,
);
