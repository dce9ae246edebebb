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
