//! Tax from a service, on both stores: quotes fetched before pricing and
//! cached (an unchanged cart asks nothing), a document committed exactly
//! once per placed order (retries, lost answers, two engines), adjusted as
//! money is given back or added, voided on cancellation; a service that is
//! down refuses checkout or, where the shop chose it, falls back to tables
//! (recorded on the order); bad answers are typed errors.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use cartwright::after_sale::CancelItems;
use cartwright::money_path::ManualRefund;
use cartwright::order::{TaxAdjustmentState, TaxDocumentState};
use cartwright::prelude::*;
use cartwright::tax::{
    TaxAdjustmentRequest, TaxBreakdown, TaxCalculator, TaxCall, TaxCommitRequest, TaxCommitted,
    TaxFault, TaxProvider, TaxQuoteRequest, TestTaxProvider,
};
use common::{Backend, Shop, ShopOptions, key, request, units, usd};
use rust_decimal::Decimal;

fn staff() -> Actor {
    Actor::Staff("tax".into())
}

fn ten_percent() -> Arc<dyn TaxCalculator> {
    Arc::new(FlatRateTax::new("Tax 10%", Decimal::new(10, 2)).unwrap())
}

/// A shop taxed by a test service (10 %), with `fallback` tables if any.
async fn shop(
    backend: Backend,
    fallback: Option<Arc<dyn TaxCalculator>>,
    config: Option<cartwright::EngineConfig>,
) -> (Shop, Arc<TestTaxProvider>) {
    let service = Arc::new(TestTaxProvider::new(ten_percent()));
    let options = ShopOptions {
        tax_provider: Some((service.clone(), fallback)),
        config,
        ..ShopOptions::default()
    };
    (Shop::with(backend, options).await, service)
}

async fn a_cart_priced_twice_asks_the_service_once(backend: Backend) {
    let (shop, service) = shop(backend, None, None).await;
    let a = shop.product("A", "10.00", 10).await;
    let b = shop.product("B", "5.00", 10).await;
    let cart = shop.ready_cart(&[(a, 1)]).await;
    let guest = Actor::Guest;
    let first = shop.engine.price_cart(&guest, cart.id()).await.unwrap();
    assert_eq!(
        first.tax_total,
        usd("1.50"),
        "10 % of 10.00 and 5.00 shipping"
    );
    let asked = service.quote_calls();
    assert!(asked >= 1);
    let again = shop.engine.price_cart(&guest, cart.id()).await.unwrap();
    assert_eq!(again, first);
    assert_eq!(
        service.quote_calls(),
        asked,
        "an unchanged cart asks nothing"
    );
    // A change of lines, then of address, asks again (once each).
    shop.engine.add_item(&guest, cart.id(), b, 1).await.unwrap();
    let more = shop.engine.price_cart(&guest, cart.id()).await.unwrap();
    assert_eq!(more.tax_total, usd("2.00"));
    assert_eq!(service.quote_calls(), asked + 1);
    shop.engine
        .set_shipping_address(
            &guest,
            cart.id(),
            NewAddress::new("Grace Hopper", "9 Other St", "Arlington", "22203", "us").region("va"),
        )
        .await
        .unwrap();
    shop.engine.price_cart(&guest, cart.id()).await.unwrap();
    assert_eq!(service.quote_calls(), asked + 2);
    shop.engine.price_cart(&guest, cart.id()).await.unwrap();
    assert_eq!(service.quote_calls(), asked + 2);
}

async fn a_customer_tax_id_reaches_the_service(backend: Backend) {
    let (shop, service) = shop(backend, None, None).await;
    let a = shop.product("A", "10.00", 10).await;
    let c = shop.customer("vat@example.com").await;
    let me = Actor::Customer(c.id());
    // Tax ids are normalized; a customer may not claim an exemption.
    let c = shop
        .engine
        .set_tax_details(&me, c.id(), Some("de 123.456-789"), None)
        .await
        .unwrap();
    assert_eq!(c.tax_id(), "DE123456789");
    let before = shop.snapshot().await;
    let e = shop
        .engine
        .set_tax_details(&me, c.id(), None, Some("EX-1"))
        .await;
    assert!(matches!(e, Err(Error::Forbidden)), "{e:?}");
    let e = shop
        .engine
        .set_tax_details(&me, c.id(), Some("DE<script>"), None)
        .await;
    assert!(matches!(e, Err(Error::Invalid { .. })), "{e:?}");
    let e = shop
        .engine
        .set_tax_details(&me, c.id(), Some(&"9".repeat(21)), None)
        .await;
    assert!(matches!(e, Err(Error::LimitExceeded { .. })), "{e:?}");
    assert!(before == shop.snapshot().await);
    shop.engine
        .set_tax_details(&staff(), c.id(), None, Some("EX-1"))
        .await
        .unwrap();
    let cart = shop.engine.create_cart(&me, Currency::USD).await.unwrap();
    shop.engine.add_item(&me, cart.id(), a, 1).await.unwrap();
    shop.complete_details(&me, cart.id()).await;
    let asked = service.quote_calls();
    shop.engine.price_cart(&me, cart.id()).await.unwrap();
    assert_eq!(service.quote_calls(), asked + 1);
    let order = shop
        .engine
        .checkout(CheckoutRequest::new(
            cart.id(),
            key("vat"),
            "tok_visa",
            me.clone(),
        ))
        .await
        .unwrap()
        .order;
    let customer = &order.tax_document().unwrap().request.customer;
    assert_eq!(customer.tax_id.as_deref(), Some("DE123456789"));
    assert_eq!(customer.exemption.as_deref(), Some("EX-1"));
    // The request carries the place, not the person.
    let sent = serde_json::to_string(&order.tax_document().unwrap().request).unwrap();
    assert!(!sent.contains("Grace Hopper"), "{sent}");
}

async fn checkout_commits_one_document(backend: Backend) {
    let (shop, service) = shop(backend, None, None).await;
    let a = shop.product("A", "10.00", 10).await;
    let cart = shop.ready_cart(&[(a, 2)]).await;
    let order = shop.place(cart.id(), "k").await;
    let doc = order.tax_document().unwrap();
    assert_eq!(doc.state, TaxDocumentState::Committed);
    assert_eq!((doc.gross, doc.tax), (usd("27.50"), usd("2.50")));
    assert!(!order.has_pending_work());
    let docs = service.documents();
    assert_eq!(docs.len(), 1);
    let record = &docs[&doc.key];
    assert_eq!(Some(record.reference.clone()), doc.reference);
    assert_eq!(record.commit.tax_total, usd("2.50"));
    assert_eq!(record.commit.line_tax, vec![usd("2.00")]);
    assert_eq!(record.commit.shipping_tax, usd("0.50"));
    // The same checkout again, and recovery from a second engine: still one.
    let again = shop.place(cart.id(), "k").await;
    assert_eq!(again.id(), order.id());
    shop.clock.advance(chrono::Duration::minutes(10));
    let second = shop.second_engine().await;
    second.recover().await.unwrap();
    shop.engine.recover().await.unwrap();
    assert_eq!(service.documents().len(), 1);
}

async fn a_lost_commit_is_finished_by_recovery(backend: Backend) {
    let (shop, service) = shop(backend, None, None).await;
    let a = shop.product("A", "10.00", 10).await;
    let cart = shop.ready_cart(&[(a, 1)]).await;
    // The service commits, and every answer is lost: the order is placed
    // with its commit in flight (the service holds the document).
    for _ in 0..5 {
        service.inject(TaxCall::Commit, TaxFault::LostAnswer);
    }
    let order = shop.place(cart.id(), "k").await;
    assert_eq!(
        order.tax_document().unwrap().state,
        TaxDocumentState::Committing
    );
    assert!(order.has_pending_work());
    assert_eq!(service.documents().len(), 1);
    service.clear_faults();
    // Two engines recover at once: one document, recorded.
    let second = shop.second_engine().await;
    let (r1, r2) = tokio::join!(shop.engine.recover(), second.recover());
    r1.unwrap();
    r2.unwrap();
    let o = shop.engine.order(&staff(), order.id()).await.unwrap();
    let doc = o.tax_document().unwrap();
    assert_eq!(doc.state, TaxDocumentState::Committed);
    assert_eq!(service.documents().len(), 1);
    assert_eq!(
        doc.reference.as_deref(),
        Some(service.documents()[&doc.key].reference.as_str())
    );
    assert!(!o.has_pending_work());
}

async fn a_refused_commit_is_recorded(backend: Backend) {
    let (shop, service) = shop(backend, None, None).await;
    let a = shop.product("A", "10.00", 10).await;
    let cart = shop.ready_cart(&[(a, 1)]).await;
    service.inject(TaxCall::Commit, TaxFault::Refuse("bad nexus".into()));
    let order = shop.place(cart.id(), "k").await;
    let doc = order.tax_document().unwrap();
    assert_eq!(doc.state, TaxDocumentState::Refused);
    assert!(doc.last_error.contains("bad nexus"), "{}", doc.last_error);
    assert!(!order.has_pending_work());
    assert!(service.documents().is_empty());
}

async fn money_given_back_adjusts_and_cancelling_voids(backend: Backend) {
    let (shop, service) = shop(backend, None, None).await;
    let a = shop.product("A", "10.00", 10).await;
    let b = shop.product("B", "20.00", 10).await;
    let cart = shop.ready_cart(&[(a, 2), (b, 1)]).await;
    let order = shop.place(cart.id(), "k").await;
    // 40.00 + 4.00 tax + 5.50 shipping = 49.50, of which 4.50 tax.
    assert_eq!(order.total(), usd("49.50"));
    let guest = Actor::GuestWithToken(
        shop.engine
            .checkout(request(cart.id(), "k"))
            .await
            .unwrap()
            .access_token
            .unwrap(),
    );
    // One A cancelled: 11.00 back; 11.00 × 4.50 / 49.50 = 1.00 of tax.
    let o = shop
        .engine
        .cancel_items(
            &guest,
            order.id(),
            CancelItems::new(units(&order, 0, 1), key("c")),
        )
        .await
        .unwrap();
    let doc = o.tax_document().unwrap();
    assert_eq!(doc.adjustments.len(), 1);
    let adj = &doc.adjustments[0];
    assert_eq!((adj.amount, adj.tax), (usd("-11.00"), usd("-1.00")));
    assert_eq!(adj.state, TaxAdjustmentState::Done);
    assert_eq!((doc.gross_now, doc.tax_now), (usd("38.50"), usd("3.50")));
    // A refund by amount: 3.85 × 3.50 / 38.50 = 0.35.
    let o = shop
        .engine
        .refund(
            &staff(),
            order.id(),
            ManualRefund::new(usd("3.85"), "goodwill", key("r")),
        )
        .await
        .unwrap();
    let doc = o.tax_document().unwrap();
    assert_eq!(doc.adjustments[1].tax, usd("-0.35"));
    let record = &service.documents()[&doc.key];
    assert_eq!(record.tax().unwrap(), doc.tax_now);
    assert_eq!(record.tax().unwrap(), usd("3.15"));
    // Cancelling the order voids the document.
    let o = shop
        .engine
        .cancel(&staff(), order.id(), "changed mind")
        .await
        .unwrap();
    assert_eq!(o.tax_document().unwrap().state, TaxDocumentState::Voided);
    assert!(service.documents()[&doc.key].voided);
    assert!(!o.has_pending_work());
}

async fn lines_added_after_the_sale_add_their_tax_exactly(backend: Backend) {
    let (shop, service) = shop(backend, None, None).await;
    let a = shop.product("A", "10.00", 10).await;
    let c = shop.product("C", "3.33", 10).await;
    let cart = shop.ready_cart(&[(a, 2)]).await;
    let order = shop.place(cart.id(), "k").await;
    // An edit swaps one A (11.00) for three C (3 × 3.33 + 1.00 tax):
    // the C line adds 10.99 with 1.00 of tax, the A unit comes off in
    // proportion (11.00 × 3.50 / 38.49 → 1.00).
    let edit = cartwright::after_sale::EditRequest::default()
        .add_units(vec![(c, 3)])
        .remove_units(units(&order, 0, 1));
    let preview = shop
        .engine
        .preview_order_edit(&staff(), order.id(), &edit)
        .await
        .unwrap();
    let o = shop
        .engine
        .confirm_order_edit(&staff(), order.id(), edit, preview.difference, &key("e"))
        .await
        .unwrap();
    let doc = o.tax_document().unwrap();
    let amounts: Vec<_> = doc.adjustments.iter().map(|a| (a.amount, a.tax)).collect();
    assert_eq!(
        amounts,
        vec![(usd("10.99"), usd("1.00")), (usd("-11.00"), usd("-1.00"))]
    );
    assert!(
        doc.adjustments
            .iter()
            .all(|a| a.state == TaxAdjustmentState::Done)
    );
    assert_eq!(service.documents()[&doc.key].tax().unwrap(), doc.tax_now);
    assert_eq!(doc.tax_now, usd("2.50"));
}

async fn an_adjustment_in_flight_is_sent_by_recovery(backend: Backend) {
    let (shop, service) = shop(backend, None, None).await;
    let a = shop.product("A", "10.00", 10).await;
    let cart = shop.ready_cart(&[(a, 2)]).await;
    let order = shop.place(cart.id(), "k").await;
    service.inject(TaxCall::Adjust, TaxFault::Unavailable);
    let o = shop
        .engine
        .refund(
            &staff(),
            order.id(),
            ManualRefund::new(usd("5.50"), "goodwill", key("r")),
        )
        .await
        .unwrap();
    let doc = o.tax_document().unwrap();
    assert_eq!(doc.adjustments[0].state, TaxAdjustmentState::Pending);
    assert!(o.has_pending_work());
    let report = shop.engine.recover().await.unwrap();
    assert_eq!(report.tax_calls, 1);
    let o = shop.engine.order(&staff(), order.id()).await.unwrap();
    let doc = o.tax_document().unwrap();
    assert_eq!(doc.adjustments[0].state, TaxAdjustmentState::Done);
    assert_eq!(service.documents()[&doc.key].adjustments.len(), 1);
    assert_eq!(service.documents()[&doc.key].tax().unwrap(), doc.tax_now);
}

async fn a_service_down_refuses_checkout_or_falls_back(backend: Backend) {
    let config =
        cartwright::EngineConfig::default().tax_timeout(std::time::Duration::from_millis(50));
    for fallback in [None, Some(ten_percent())] {
        let (shop, service) = shop(backend, fallback.clone(), Some(config.clone())).await;
        let a = shop.product("A", "10.00", 10).await;
        let cart = shop.ready_cart(&[(a, 1)]).await;
        service.set_latency(std::time::Duration::from_millis(500));
        let before = shop.snapshot().await;
        let out = shop.engine.checkout(request(cart.id(), "k")).await;
        match fallback {
            None => {
                assert!(
                    matches!(
                        &out,
                        Err(Error::ServiceUnavailable {
                            service: "tax provider",
                            ..
                        })
                    ),
                    "{out:?}"
                );
                assert!(out.as_ref().unwrap_err().is_retryable());
                assert!(
                    before == shop.snapshot().await,
                    "nothing reserved or charged"
                );
                assert!(shop.payments.authorizations().is_empty());
            }
            Some(_) => {
                let order = out.unwrap().order;
                assert!(order.pricing().tax_fallback.is_some());
                assert_eq!(order.pricing().tax_total, usd("1.50"));
                // The commit waits for the service; recovery sends it.
                service.set_latency(std::time::Duration::ZERO);
                shop.engine.recover().await.unwrap();
                let o = shop.engine.order(&staff(), order.id()).await.unwrap();
                assert_eq!(o.tax_document().unwrap().state, TaxDocumentState::Committed);
                assert_eq!(service.documents().len(), 1);
            }
        }
    }
}

/// A service that answers nonsense.
struct Nonsense(&'static str);

#[async_trait]
impl TaxProvider for Nonsense {
    fn name(&self) -> &str {
        "nonsense"
    }
    async fn quote(&self, request: &TaxQuoteRequest) -> cartwright::Result<TaxBreakdown> {
        let n = request.lines.len();
        Ok(match self.0 {
            "negative" => TaxBreakdown::new(vec![usd("-1.00"); n], usd("0.00")),
            "lines" => TaxBreakdown::new(vec![usd("1.00"); n + 1], usd("0.00")),
            _ => TaxBreakdown::new(
                vec![Money::parse("1", Currency::EUR).unwrap(); n],
                usd("0.00"),
            ),
        })
    }
    async fn commit(&self, _: &TaxCommitRequest) -> cartwright::Result<TaxCommitted> {
        Ok(TaxCommitted::new("x"))
    }
    async fn void(&self, _: &str, _: &str) -> cartwright::Result<()> {
        Ok(())
    }
    async fn adjust(&self, _: &TaxAdjustmentRequest) -> cartwright::Result<()> {
        Ok(())
    }
}

async fn bad_answers_are_typed_errors(backend: Backend) {
    for what in ["negative", "lines", "currency"] {
        let options = ShopOptions {
            tax_provider: Some((Arc::new(Nonsense(what)), None)),
            ..ShopOptions::default()
        };
        let shop = Shop::with(backend, options).await;
        let a = shop.product("A", "10.00", 10).await;
        let cart = shop.ready_cart(&[(a, 1)]).await;
        let before = shop.snapshot().await;
        let e = shop.engine.checkout(request(cart.id(), "k")).await;
        match what {
            "currency" => assert!(matches!(e, Err(Error::CurrencyMismatch { .. })), "{e:?}"),
            _ => assert!(
                matches!(
                    &e,
                    Err(Error::Invalid {
                        field: "tax provider",
                        ..
                    })
                ),
                "{what}: {e:?}"
            ),
        }
        assert!(before == shop.snapshot().await);
    }
}

conformance!(
    a_cart_priced_twice_asks_the_service_once,
    a_customer_tax_id_reaches_the_service,
    checkout_commits_one_document,
    a_lost_commit_is_finished_by_recovery,
    a_refused_commit_is_recorded,
    money_given_back_adjusts_and_cancelling_voids,
    an_adjustment_in_flight_is_sent_by_recovery,
    lines_added_after_the_sale_add_their_tax_exactly,
    a_service_down_refuses_checkout_or_falls_back,
    bad_answers_are_typed_errors,
);
