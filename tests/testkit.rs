//! The exported conformance suites (`cartwright::testkit`, feature
//! `test-util`) run against this crate's adapters and against a store and a
//! provider written outside the crate: `FaultyStore` in `tests/common` is a
//! third-party store (a thin wrapper around `MemoryStore`, implementing every
//! port by hand), `SlowGateway` a third-party provider.
#![cfg(feature = "test-util")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use cartwright::payment::TestPaymentProvider;
use cartwright::store::{MemoryStore, Store};
use cartwright::testkit::{provider_conformance, store_conformance};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_memory_store_conforms() {
    let report = store_conformance(|| async { Arc::new(MemoryStore::new()) as Arc<dyn Store> })
        .await
        .unwrap();
    assert_eq!(report.checks, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_third_party_store_conforms() {
    store_conformance(|| async {
        let inner: Arc<dyn Store> = Arc::new(MemoryStore::new());
        Arc::new(common::faulty::FaultyStore::new(inner)) as Arc<dyn Store>
    })
    .await
    .unwrap();
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_postgres_store_conforms() {
    store_conformance(|| async {
        let schema = common::pg::fresh_schema().await;
        Arc::new(common::pg::store(&schema, 8).await) as Arc<dyn Store>
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn the_test_provider_and_a_third_party_provider_conform() {
    let test = Arc::new(TestPaymentProvider::new());
    provider_conformance(test.clone(), "tok_visa", "tok_decline")
        .await
        .unwrap();
    let slow = common::gateway::SlowGateway::new(test, std::time::Duration::ZERO);
    provider_conformance(slow, "tok_visa", "tok_decline")
        .await
        .unwrap();
    // A gateway that sells (collects in the authorize call) runs one check more.
    let selling = Arc::new(TestPaymentProvider::new());
    selling.allow_sales(true);
    let plain = provider_conformance(
        Arc::new(TestPaymentProvider::new()),
        "tok_visa",
        "tok_decline",
    )
    .await
    .unwrap();
    let sells = provider_conformance(selling, "tok_visa", "tok_decline")
        .await
        .unwrap();
    assert_eq!(sells.checks, plain.checks + 1);
}

/// The suite catches a store that breaks its promises: this one forgets
/// nothing when asked to prune.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_suite_fails_a_store_that_breaks_a_promise() {
    let failure = store_conformance(|| async {
        let inner: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let store = common::faulty::FaultyStore::new(inner);
        store.never_prune();
        Arc::new(store) as Arc<dyn Store>
    })
    .await
    .unwrap_err();
    assert_eq!(failure.check, "checkout and orders");
}

#[tokio::test]
async fn the_test_provider_asks_for_customer_actions_as_the_engine_expects() {
    let test = Arc::new(TestPaymentProvider::new());
    let gateway = test.clone();
    let report = cartwright::testkit::session_conformance(test, "tok_3ds", |reference| {
        let gateway = gateway.clone();
        async move {
            gateway
                .complete_action(&reference)
                .map(drop)
                .map_err(|e| e.to_string())
        }
    })
    .await
    .unwrap();
    assert_eq!(report.checks, 3);
}

/// A tax service or carrier that forgets its idempotency keys: each call
/// acts anew (the kind of bug the suites are there to catch).
struct Forgetful<T>(T, std::sync::atomic::AtomicU64);

impl<T> Forgetful<T> {
    fn fresh(&self, key: &str) -> String {
        let n = self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        format!("{key}-{n}")
    }
}

#[async_trait::async_trait]
impl cartwright::tax::TaxProvider for Forgetful<cartwright::tax::TestTaxProvider> {
    fn name(&self) -> &str {
        "forgetful"
    }
    async fn quote(
        &self,
        r: &cartwright::tax::TaxQuoteRequest,
    ) -> cartwright::Result<cartwright::tax::TaxBreakdown> {
        self.0.quote(r).await
    }
    async fn commit(
        &self,
        r: &cartwright::tax::TaxCommitRequest,
    ) -> cartwright::Result<cartwright::tax::TaxCommitted> {
        let mut r = r.clone();
        r.key = self.fresh(&r.key);
        self.0.commit(&r).await
    }
    async fn void(&self, key: &str, reference: &str) -> cartwright::Result<()> {
        self.0.void(key, reference).await
    }
    async fn adjust(&self, r: &cartwright::tax::TaxAdjustmentRequest) -> cartwright::Result<()> {
        self.0.adjust(r).await
    }
}

#[async_trait::async_trait]
impl cartwright::shipping::Carrier for Forgetful<cartwright::shipping::TestCarrier> {
    fn name(&self) -> &str {
        "forgetful"
    }
    async fn rates(
        &self,
        r: &cartwright::shipping::RateRequest,
    ) -> cartwright::Result<Vec<cartwright::shipping::ShippingRate>> {
        self.0.rates(r).await
    }
    async fn purchase_label(
        &self,
        r: &cartwright::shipping::LabelRequest,
    ) -> cartwright::Result<cartwright::shipping::Label> {
        let mut r = r.clone();
        r.key = self.fresh(&r.key);
        self.0.purchase_label(&r).await
    }
    async fn void_label(&self, key: &str, label: &str) -> cartwright::Result<()> {
        self.0.void_label(key, label).await
    }
}

fn us_place() -> cartwright::tax::TaxAddress {
    let address = us_address();
    cartwright::tax::TaxAddress::from(&address)
}

fn us_address() -> cartwright::customer::Address {
    cartwright::customer::Address::new(cartwright::customer::NewAddress::new(
        "Grace Hopper",
        "1 Navy Way",
        "Arlington",
        "22202",
        "US",
    ))
    .unwrap()
}

#[tokio::test]
async fn the_test_tax_service_conforms_and_a_forgetful_one_does_not() {
    use cartwright::money::Currency;
    use cartwright::tax::{FlatRateTax, TestTaxProvider};
    let table = || {
        Arc::new(FlatRateTax::new("Tax", rust_decimal::Decimal::new(8, 2)).unwrap())
            as Arc<dyn cartwright::tax::TaxCalculator>
    };
    let report = cartwright::testkit::tax_provider_conformance(
        Arc::new(TestTaxProvider::new(table())),
        us_place(),
        Currency::USD,
    )
    .await
    .unwrap();
    assert_eq!(report.checks, 4);
    let forgetful = Forgetful(TestTaxProvider::new(table()), Default::default());
    let failure = cartwright::testkit::tax_provider_conformance(
        Arc::new(forgetful),
        us_place(),
        Currency::USD,
    )
    .await
    .unwrap_err();
    assert_eq!(failure.check, "commit replay");
}

#[tokio::test]
async fn the_test_carrier_conforms_and_a_forgetful_one_does_not() {
    use cartwright::money::Currency;
    use cartwright::shipping::TestCarrier;
    let report = cartwright::testkit::carrier_conformance(
        Arc::new(TestCarrier::new()),
        None,
        us_address(),
        Currency::USD,
    )
    .await
    .unwrap();
    assert_eq!(report.checks, 3);
    let forgetful = Forgetful(TestCarrier::new(), Default::default());
    let failure = cartwright::testkit::carrier_conformance(
        Arc::new(forgetful),
        None,
        us_address(),
        Currency::USD,
    )
    .await
    .unwrap_err();
    assert_eq!(failure.check, "purchase replay");
}
