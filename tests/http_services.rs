//! The HTTP templates for a tax service and a carrier
//! (`examples/http_services/`) against their mocks: each passes the
//! conformance suite its port has, and a service that is down is
//! `ServiceUnavailable`, never a refusal.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../examples/http_services/carrier_adapter.rs"]
mod carrier_adapter;
#[path = "../examples/http_services/client.rs"]
mod client;
#[path = "../examples/http_services/mock.rs"]
mod mock;
#[path = "../examples/http_services/tax_adapter.rs"]
mod tax_adapter;

use std::sync::Arc;
use std::time::Duration;

use cartwright::customer::{Address, NewAddress};
use cartwright::money::Currency;
use cartwright::shipping::{Carrier, RateRequest};
use cartwright::tax::{TaxAddress, TaxProvider};

fn new_york() -> Address {
    Address::new(
        NewAddress::new("Ada Lovelace", "1 Broadway", "New York", "10001", "US").region("NY"),
    )
    .unwrap()
}

#[tokio::test]
async fn the_http_tax_template_conforms() {
    let (url, key, books) = mock::start().await.unwrap();
    let tax = Arc::new(tax_adapter::HttpTax::new(&url, key, Duration::from_secs(2)).unwrap());
    let report = cartwright::testkit::tax_provider_conformance(
        tax.clone(),
        TaxAddress::from(&new_york()),
        Currency::USD,
    )
    .await
    .unwrap();
    assert_eq!(report.checks, 4);
    assert_eq!(
        books.lock().documents.len(),
        1,
        "one document for a replayed commit"
    );
    // Down: unavailable, so the engine retries or falls back.
    books.lock().down = true;
    let e = tax.void("k", "tx_1").await.unwrap_err();
    assert!(
        matches!(e, cartwright::Error::ServiceUnavailable { .. }),
        "{e:?}"
    );
    // A wrong key is a refusal.
    books.lock().down = false;
    let wrong = tax_adapter::HttpTax::new(&url, "sk_wrong", Duration::from_secs(2)).unwrap();
    let e = wrong.void("k", "tx_1").await.unwrap_err();
    assert!(matches!(e, cartwright::Error::Invalid { .. }), "{e:?}");
}

#[tokio::test]
async fn the_http_carrier_template_conforms() {
    let (url, key, books) = mock::start().await.unwrap();
    let carrier =
        Arc::new(carrier_adapter::HttpCarrier::new(&url, key, Duration::from_secs(2)).unwrap());
    let report =
        cartwright::testkit::carrier_conformance(carrier.clone(), None, new_york(), Currency::USD)
            .await
            .unwrap();
    assert_eq!(report.checks, 3);
    assert_eq!(
        books.lock().labels.len(),
        1,
        "one label for a replayed purchase"
    );
    // An unreachable carrier is unavailable.
    let gone =
        carrier_adapter::HttpCarrier::new("http://127.0.0.1:9", key, Duration::from_millis(200))
            .unwrap();
    let request: RateRequest = serde_json::from_value(serde_json::json!({
        "currency": "USD",
        "value": {"amount": "10.00", "currency": "USD"},
        "weight_grams": 100,
        "items": 1,
        "origin": null,
        "destination": null
    }))
    .unwrap();
    let e = gone.rates(&request).await.unwrap_err();
    assert!(
        matches!(e, cartwright::Error::ServiceUnavailable { .. }),
        "{e:?}"
    );
}
