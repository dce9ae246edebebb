//! Random sequences of after-sale operations on one order — shipments,
//! deliveries, return requests and their steps, staff returns, claims,
//! line cancellations, captures, refunds and the order's cancellation —
//! raced from two engines on one store, on both stores. After each
//! sequence, with nothing left in flight:
//! - the books equal the gateway (captured and refunded);
//! - no unit is refunded beyond its frozen share, and every refund is
//!   accounted for by a return, a line cancellation, a manual refund or the
//!   order's cancellation;
//! - no line ships, returns or cancels more units than it has;
//! - the frozen pricing adds up, however often an edit changed its
//!   shipping method;
//! - stock on hand is what arrived less what shipped plus what was
//!   restocked, and stock reserved is exactly the order's units not yet
//!   shipped nor cancelled (none once the order is cancelled).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use cartwright::after_sale::{
    CancelItems, ChargePayment, EditRequest, NewClaim, NewExchange, RefundReturn,
};
use cartwright::fulfillment::{ReturnRequest, ShipmentRequest};
use cartwright::id::{IdempotencyKey, OrderId, VariantId};
use cartwright::money_path::ManualRefund;
use cartwright::order::{
    ChargeState, ClaimReason, ClaimResolution, ItemCondition, LineQuantity, NewReturnCase, Order,
    OrderStatus, ReceivedUnits, ReturnReason, ReturnState,
};
use cartwright::prelude::*;
use common::{Backend, Shop, ShopOptions, request, usd};
use proptest::prelude::*;

/// One operation, on engine `engine` (0 or 1).
#[derive(Debug, Clone)]
enum Op {
    Ship {
        line: usize,
        qty: u32,
    },
    Deliver,
    RequestReturn {
        line: usize,
        qty: u32,
    },
    Approve {
        case: usize,
    },
    Reject {
        case: usize,
    },
    Receive {
        case: usize,
        restock: bool,
    },
    RefundCase {
        case: usize,
    },
    StaffReturn {
        line: usize,
        qty: u32,
        restock: bool,
    },
    Claim {
        line: usize,
        qty: u32,
        replace: bool,
    },
    CancelItems {
        line: usize,
        qty: u32,
    },
    CancelOrder,
    Capture,
    Refund {
        cents: i64,
    },
    Exchange {
        line: usize,
        qty: u32,
        variant: usize,
    },
    PayCharge {
        charge: usize,
        decline: bool,
    },
    CancelExchange {
        exchange: usize,
    },
    Edit {
        add: Option<usize>,
        remove: Option<(usize, u32)>,
        method: Option<usize>,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let line = 0usize..3;
    let qty = 1u32..3;
    prop_oneof![
        3 => (line.clone(), qty.clone()).prop_map(|(line, qty)| Op::Ship { line, qty }),
        1 => Just(Op::Deliver),
        2 => (line.clone(), qty.clone()).prop_map(|(line, qty)| Op::RequestReturn { line, qty }),
        2 => (0usize..3).prop_map(|case| Op::Approve { case }),
        1 => (0usize..3).prop_map(|case| Op::Reject { case }),
        2 => (0usize..3, any::<bool>()).prop_map(|(case, restock)| Op::Receive { case, restock }),
        2 => (0usize..3).prop_map(|case| Op::RefundCase { case }),
        2 => (line.clone(), qty.clone(), any::<bool>())
            .prop_map(|(line, qty, restock)| Op::StaffReturn { line, qty, restock }),
        2 => (line.clone(), qty.clone(), any::<bool>())
            .prop_map(|(line, qty, replace)| Op::Claim { line, qty, replace }),
        2 => (line.clone(), qty.clone()).prop_map(|(line, qty)| Op::CancelItems { line, qty }),
        1 => Just(Op::CancelOrder),
        1 => Just(Op::Capture),
        1 => (1i64..500).prop_map(|cents| Op::Refund { cents }),
        3 => (line.clone(), qty.clone(), 0usize..3)
            .prop_map(|(line, qty, variant)| Op::Exchange { line, qty, variant }),
        4 => (0usize..3, any::<bool>()).prop_map(|(charge, decline)| Op::PayCharge { charge, decline }),
        1 => (0usize..3).prop_map(|exchange| Op::CancelExchange { exchange }),
        3 => (
            proptest::option::of(0usize..3),
            proptest::option::of((line.clone(), qty.clone())),
            proptest::option::of(0usize..4),
        )
            .prop_map(|(add, remove, method)| Op::Edit { add, remove, method }),
    ]
}

fn staff() -> Actor {
    Actor::Staff("prop".into())
}

fn key(k: String) -> IdempotencyKey {
    IdempotencyKey::new(k).unwrap()
}

fn items(order: &Order, line: usize, qty: u32) -> Vec<LineQuantity> {
    let lines = &order.pricing().lines;
    vec![LineQuantity {
        line_id: lines[line % lines.len()].line_id,
        quantity: qty,
    }]
}

/// Errors an operation may answer: refusals, never a fault.
fn acceptable(e: &Error) -> bool {
    !matches!(
        e,
        Error::Storage { .. } | Error::CorruptData { .. } | Error::Overflow(_) | Error::Forbidden
    )
}

async fn run(
    engine: Engine,
    id: OrderId,
    warehouse: cartwright::id::LocationId,
    variants: [VariantId; 3],
    op: Op,
    n: usize,
) {
    let st = staff();
    let Ok(order) = engine.order(&st, id).await else {
        return;
    };
    let case = |i: usize| {
        let cases = order.return_cases();
        (!cases.is_empty()).then(|| cases[i % cases.len()].id)
    };
    let result: Result<()> = match op {
        Op::Ship { line, qty } => engine
            .ship(
                &st,
                id,
                ShipmentRequest::new(items(&order, line, qty)).carrier("UPS"),
            )
            .await
            .map(drop),
        Op::Deliver => match order.shipments().last() {
            Some(s) => engine.mark_delivered(&st, id, s.id).await.map(drop),
            None => Ok(()),
        },
        Op::RequestReturn { line, qty } => engine
            .request_return(
                &st,
                id,
                NewReturnCase::new(
                    items(&order, line, qty),
                    ReturnReason::Other,
                    key(format!("rq{n}")),
                ),
            )
            .await
            .map(drop),
        Op::Approve { case: c } => match case(c) {
            Some(c) => engine.approve_return(&st, id, c, "").await.map(drop),
            None => Ok(()),
        },
        Op::Reject { case: c } => match case(c) {
            Some(c) => engine.reject_return(&st, id, c, "no").await.map(drop),
            None => Ok(()),
        },
        Op::Receive { case: c, restock } => match case(c) {
            Some(c) => {
                let asked = order.return_case(c).unwrap().items.clone();
                let received = asked
                    .iter()
                    .map(|i| {
                        let r =
                            ReceivedUnits::new(i.line_id, i.quantity, ItemCondition::Resellable);
                        if restock { r.restock_at(warehouse) } else { r }
                    })
                    .collect();
                engine.receive_return(&st, id, c, received).await.map(drop)
            }
            None => Ok(()),
        },
        Op::RefundCase { case: c } => match case(c) {
            Some(c) => engine
                .refund_return(&st, id, c, RefundReturn::new(key(format!("rf{n}"))))
                .await
                .map(drop),
            None => Ok(()),
        },
        Op::StaffReturn { line, qty, restock } => engine
            .return_items(
                &st,
                id,
                ReturnRequest::new(items(&order, line, qty), key(format!("sr{n}")))
                    .restock(restock),
            )
            .await
            .map(drop),
        Op::Claim { line, qty, replace } => {
            let resolution = if replace {
                ClaimResolution::Replace
            } else {
                ClaimResolution::Refund
            };
            engine
                .create_claim(
                    &st,
                    id,
                    NewClaim::new(
                        items(&order, line, qty),
                        ClaimReason::Damaged,
                        resolution,
                        key(format!("cl{n}")),
                    ),
                )
                .await
                .map(drop)
        }
        Op::CancelItems { line, qty } => engine
            .cancel_items(
                &st,
                id,
                CancelItems::new(items(&order, line, qty), key(format!("ci{n}"))),
            )
            .await
            .map(drop),
        Op::CancelOrder => engine.cancel(&st, id, "changed mind").await.map(drop),
        Op::Capture => engine.capture(&st, id).await.map(drop),
        Op::Exchange { line, qty, variant } => engine
            .create_exchange(
                &st,
                id,
                NewExchange::new(
                    items(&order, line, qty),
                    vec![(variants[variant % 3], 1)],
                    ReturnReason::SizeOrFit,
                    key(format!("ex{n}")),
                ),
            )
            .await
            .map(drop),
        Op::PayCharge { charge, decline } => {
            let charges = order.charges();
            if charges.is_empty() {
                Ok(())
            } else {
                let token = if decline { "tok_decline" } else { "tok_visa" };
                engine
                    .pay_charge(
                        &st,
                        id,
                        charges[charge % charges.len()].id,
                        ChargePayment::new(token),
                    )
                    .await
                    .map(drop)
            }
        }
        Op::CancelExchange { exchange } => {
            let exchanges = order.exchanges();
            if exchanges.is_empty() {
                Ok(())
            } else {
                engine
                    .cancel_exchange(&st, id, exchanges[exchange % exchanges.len()].id)
                    .await
                    .map(drop)
            }
        }
        Op::Edit {
            add,
            remove,
            method,
        } => {
            let mut edit = EditRequest::default();
            if let Some(m) = method {
                let code = ["standard", "express", "economy", "per_item"][m % 4];
                edit = edit.shipping_method(Some(code.into()));
            }
            if let Some(v) = add {
                edit = edit.add_units(vec![(variants[v % 3], 1)]);
            }
            if let Some((line, qty)) = remove {
                edit = edit.remove_units(items(&order, line, qty));
            }
            match engine.preview_order_edit(&st, id, &edit).await {
                Ok(preview) => engine
                    .confirm_order_edit(&st, id, edit, preview.difference, &key(format!("ed{n}")))
                    .await
                    .map(drop),
                Err(e) => Err(e),
            }
        }
        Op::Refund { cents } => engine
            .refund(
                &st,
                id,
                ManualRefund::new(
                    Money::from_minor(cents, Currency::USD),
                    "goodwill",
                    key(format!("r{n}")),
                ),
            )
            .await
            .map(drop),
    };
    if let Err(e) = result {
        assert!(acceptable(&e), "{e:?}");
    }
}

async fn random_after_sale_keeps_the_books(
    backend: Backend,
    manual: bool,
    rounds: Vec<Vec<(Op, usize)>>,
) {
    // Tax from a service (the same 10 %): its document follows the money.
    let service = std::sync::Arc::new(cartwright::tax::TestTaxProvider::new(std::sync::Arc::new(
        FlatRateTax::new("Tax 10%", rust_decimal::Decimal::new(10, 2)).unwrap(),
    )));
    let options = ShopOptions {
        capture: if manual {
            CaptureMode::Manual
        } else {
            CaptureMode::Immediate
        },
        shipping: Some(std::sync::Arc::new(common::ManyMethods)),
        tax_provider: Some((service.clone(), None)),
        ..ShopOptions::default()
    };
    let shop = Shop::with(backend, options).await;
    let a = shop.product("A", "3.33", 20).await;
    let b = shop.product("B", "10.00", 6).await;
    let c = shop.product("C", "0.99", 9).await;
    let stocked: [(VariantId, i64); 3] = [(a, 20), (b, 6), (c, 9)];
    let cart = shop.ready_cart(&[(a, 3), (b, 2), (c, 2)]).await;
    let order = shop
        .engine
        .checkout(request(cart.id(), "order"))
        .await
        .unwrap()
        .order;
    let id = order.id();
    let engines = [shop.engine.clone(), shop.second_engine().await];
    let mut n = 0;
    for round in rounds {
        let mut racing = Vec::new();
        for (op, engine) in round {
            n += 1;
            let e = engines[engine % 2].clone();
            let warehouse = shop.warehouse;
            racing.push(tokio::spawn(run(e, id, warehouse, [a, b, c], op, n)));
        }
        for r in racing {
            r.await.unwrap();
        }
    }
    // Finish whatever is in flight (a retry or recovery does).
    shop.clock.advance(chrono::Duration::minutes(10));
    shop.engine.recover().await.unwrap();
    let o = shop.engine.order(&staff(), id).await.unwrap();
    assert!(!o.has_pending_work(), "{o:?}");

    // The books equal the gateway, payment by payment (the order's and
    // every paid charge's), and the gateway holds nothing else collected.
    let gateway = shop.payments.authorizations();
    let mut refunded = usd("0.00");
    for p in o.payments() {
        let auth = gateway
            .iter()
            .find(|x| x.reference == p.reference())
            .unwrap();
        assert_eq!(auth.captured, p.captured(), "captured");
        assert_eq!(auth.refunded, p.refunded(), "refunded");
        assert!(p.refunded().checked_cmp(&p.captured()).unwrap().is_le());
        refunded = refunded.checked_add(p.refunded()).unwrap();
    }
    // Every hold the gateway granted (not declined, voided or still
    // waiting) is one of the order's payments: nothing taken off the books.
    for auth in gateway
        .iter()
        .filter(|a| !a.failed && !a.voided && a.waiting.is_none())
    {
        assert!(
            o.payments().any(|p| p.reference() == auth.reference),
            "an untracked hold at the gateway: {auth:?}"
        );
    }
    let charged = o
        .charges()
        .iter()
        .filter(|c| c.state == ChargeState::Paid)
        .count();
    CHARGES_PAID.fetch_add(charged, std::sync::atomic::Ordering::Relaxed);
    let changed = o.edits().iter().filter(|e| e.shipping.is_some()).count();
    METHODS_CHANGED.fetch_add(changed, std::sync::atomic::Ordering::Relaxed);

    // The tax document: committed once, the service's books equal the
    // order's, every adjustment sent once, voided with the order.
    let doc = o.tax_document().unwrap();
    let docs = service.documents();
    assert_eq!(docs.len(), 1, "one document per order");
    let record = &docs[&doc.key];
    if o.status() == OrderStatus::Cancelled {
        assert!(record.voided, "a cancelled order's document is voided");
    } else {
        assert_eq!(
            doc.state,
            cartwright::order::TaxDocumentState::Committed,
            "{doc:?}"
        );
        assert_eq!(record.tax().unwrap(), doc.tax_now, "the service's books");
        let sent = doc
            .adjustments
            .iter()
            .filter(|a| a.state == cartwright::order::TaxAdjustmentState::Done)
            .count();
        assert_eq!(record.adjustments.len(), sent, "each adjustment sent once");
        assert!(
            !doc.tax_now.is_negative() && !doc.gross_now.is_negative(),
            "{doc:?}"
        );
        // Tax never reverses past what the document holds, nor grows
        // past what the order's pricing says.
        assert!(
            doc.tax_now
                .checked_cmp(&o.pricing().tax_total)
                .unwrap()
                .is_le(),
            "{} > {}",
            doc.tax_now,
            o.pricing().tax_total
        );
    }

    // The frozen pricing adds up however often its method changed: lines
    // and shipping make the total and the tax, the tax lines the tax.
    let p = o.pricing();
    let ship = p.shipping.as_ref().unwrap();
    let lines_total = p
        .lines
        .iter()
        .fold(usd("0.00"), |a, l| a.checked_add(l.total).unwrap());
    assert_eq!(p.total, lines_total.checked_add(ship.total).unwrap());
    let tax = p
        .lines
        .iter()
        .fold(ship.tax, |a, l| a.checked_add(l.tax).unwrap());
    assert_eq!(p.tax_total, tax);
    let named = p
        .tax_lines
        .iter()
        .fold(usd("0.00"), |a, t| a.checked_add(t.amount).unwrap());
    assert_eq!(named, p.tax_total, "{:?}", p.tax_lines);

    // Units: never more shipped, returned or cancelled than a line has.
    for line in &o.pricing().lines {
        let l = line.line_id;
        assert!(o.shipped(l) + o.cancelled(l) <= line.quantity, "{line:?}");
        assert!(o.returned(l) + o.replaced(l) <= o.shipped(l), "{line:?}");
    }

    // Every refund is accounted for, and none beyond the units' shares.
    let usd0 = usd("0.00");
    let mut accounted = usd0;
    for r in o
        .returns()
        .iter()
        .filter(|r| r.state == ReturnState::Completed)
    {
        let mut shares = usd0;
        for item in &r.items {
            let line = o.line(item.line_id).unwrap();
            let all = cartwright::order::unit_shares(line.total, line.quantity).unwrap();
            // Any `quantity` of a line's shares is at most its largest ones.
            let mut sorted = all.clone();
            sorted.sort_by(|x, y| y.checked_cmp(x).unwrap());
            for s in sorted.iter().take(item.quantity as usize) {
                shares = shares.checked_add(*s).unwrap();
            }
        }
        assert!(
            r.refund.checked_cmp(&shares).unwrap().is_le(),
            "a return refunded {} for units worth {shares}",
            r.refund
        );
        accounted = accounted.checked_add(r.refund).unwrap();
    }
    for c in o
        .line_cancellations()
        .iter()
        .filter(|c| c.state == ReturnState::Completed)
    {
        accounted = accounted.checked_add(c.refund).unwrap();
    }
    let manual_or_cancel = o
        .payments()
        .flat_map(|p| p.operations())
        .filter(|op| {
            op.kind == cartwright::payment::OperationKind::Refund
                && op.state == cartwright::payment::OperationState::Succeeded
                && matches!(
                    op.purpose,
                    cartwright::payment::OperationPurpose::Direct
                        | cartwright::payment::OperationPurpose::Cancel
                )
        })
        .fold(usd0, |acc, op| acc.checked_add(op.amount).unwrap());
    assert_eq!(
        accounted.checked_add(manual_or_cancel).unwrap(),
        refunded,
        "every refund is accounted for"
    );

    // Stock: on hand and reserved follow the order exactly.
    for (variant, start) in stocked {
        let lines: Vec<_> = o
            .pricing()
            .lines
            .iter()
            .filter(|l| l.variant_id == variant)
            .collect();
        let shipped: i64 = lines.iter().map(|l| i64::from(o.shipped(l.line_id))).sum();
        let restocked: i64 = o
            .returns()
            .iter()
            .filter(|r| r.state == ReturnState::Completed)
            .flat_map(|r| &r.restocked)
            .filter(|l| l.variant_id == variant)
            .map(|l| i64::from(l.quantity))
            .sum();
        let open: i64 = if o.status() == OrderStatus::Cancelled {
            0
        } else {
            lines
                .iter()
                .map(|l| i64::from(l.quantity - o.shipped(l.line_id) - o.cancelled(l.line_id)))
                .sum()
        };
        let stock = shop.engine.stock(variant).await.unwrap();
        assert_eq!(
            stock.on_hand,
            start - shipped + restocked,
            "on hand of {variant}"
        );
        assert_eq!(stock.reserved, open, "reserved of {variant}");
        assert!(stock.available() >= 0, "oversold {variant}: {stock:?}");
    }
}

/// How many charges the runs paid, to tell that the property test reaches
/// them.
static CHARGES_PAID: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// How many shipping methods edits changed, likewise.
static METHODS_CHANGED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn rounds() -> impl Strategy<Value = Vec<Vec<(Op, usize)>>> {
    proptest::collection::vec(proptest::collection::vec((op(), 0usize..2), 1..4), 1..14)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn random_after_sale_keeps_the_books_in_memory(manual in any::<bool>(), rounds in rounds()) {
        runtime().block_on(random_after_sale_keeps_the_books(Backend::Memory, manual, rounds));
    }
}

/// Charges are reached: the sequences above pay some (run after them in
/// the same binary is not guaranteed, so this runs its own sequence).
#[test]
fn the_sequences_reach_paid_charges() {
    use Op::*;
    let rounds = vec![
        vec![(Ship { line: 2, qty: 2 }, 0)],
        vec![(
            Exchange {
                line: 2,
                qty: 1,
                variant: 1,
            },
            1,
        )],
        vec![
            (
                PayCharge {
                    charge: 0,
                    decline: false,
                },
                0,
            ),
            (
                PayCharge {
                    charge: 0,
                    decline: false,
                },
                1,
            ),
        ],
    ];
    let before = CHARGES_PAID.load(std::sync::atomic::Ordering::Relaxed);
    runtime().block_on(random_after_sale_keeps_the_books(
        Backend::Memory,
        false,
        rounds,
    ));
    assert!(CHARGES_PAID.load(std::sync::atomic::Ordering::Relaxed) > before);
}

#[cfg(feature = "postgres")]
proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]
    #[test]
    fn random_after_sale_keeps_the_books_on_postgres(manual in any::<bool>(), rounds in rounds()) {
        runtime().block_on(random_after_sale_keeps_the_books(Backend::Postgres, manual, rounds));
    }
}

/// Method changes are reached, racing each other, a cancellation and a
/// charge's payment from two engines.
#[test]
fn the_sequences_reach_method_changes() {
    use Op::*;
    let edit = |method: usize, add: Option<usize>| Edit {
        add,
        remove: None,
        method: Some(method),
    };
    let rounds = vec![
        vec![(edit(2, None), 0), (edit(1, None), 1)],
        vec![(edit(1, Some(0)), 1), (CancelItems { line: 0, qty: 1 }, 0)],
        vec![
            (
                PayCharge {
                    charge: 0,
                    decline: false,
                },
                0,
            ),
            (edit(3, None), 1),
        ],
    ];
    for manual in [false, true] {
        let before = METHODS_CHANGED.load(std::sync::atomic::Ordering::Relaxed);
        runtime().block_on(random_after_sale_keeps_the_books(
            Backend::Memory,
            manual,
            rounds.clone(),
        ));
        assert!(METHODS_CHANGED.load(std::sync::atomic::Ordering::Relaxed) > before);
    }
}
