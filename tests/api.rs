//! Promises of the public API that the compiler can check: thread-safety of
//! the types users share, and plugin traits that stay object-safe.
#![allow(dead_code)]

use std::sync::Arc;

use cartwright::clock::Clock;
use cartwright::payment::PaymentProvider;
use cartwright::shipping::ShippingRates;
use cartwright::store::Store;
use cartwright::tax::TaxCalculator;

fn send_sync<T: Send + Sync>() {}
fn send_sync_static<T: Send + Sync + 'static>() {}

#[test]
fn shared_types_are_send_and_sync() {
    send_sync::<cartwright::Engine>();
    send_sync_static::<cartwright::Error>();
    send_sync_static::<cartwright::payment::PaymentError>();
    send_sync::<cartwright::store::MemoryStore>();
    send_sync::<cartwright::payment::TestPaymentProvider>();
    send_sync::<cartwright::order::Order>();
    send_sync::<cartwright::cart::Cart>();
    send_sync::<cartwright::pricing::PricedCart>();
    send_sync::<cartwright::catalog::Product>();
    send_sync::<cartwright::customer::Customer>();
    send_sync::<cartwright::money::Money>();
}

#[test]
fn errors_are_std_errors() {
    fn is_error<E: std::error::Error + Send + Sync + 'static>() {}
    is_error::<cartwright::Error>();
    is_error::<cartwright::payment::PaymentError>();
}

#[test]
fn plugin_traits_are_object_safe() {
    let _store: Option<Arc<dyn Store>> = None;
    let _payments: Option<Arc<dyn PaymentProvider>> = None;
    let _tax: Option<Arc<dyn TaxCalculator>> = None;
    let _shipping: Option<Arc<dyn ShippingRates>> = None;
    let _clock: Option<Arc<dyn Clock>> = None;
}

#[tokio::test]
async fn engine_futures_are_send() {
    fn is_send<T: Send>(_: &T) {}
    let engine = cartwright::Engine::builder()
        .test_payment_provider()
        .no_tax()
        .build()
        .unwrap_or_else(|e| unreachable!("{e}"));
    let cart = cartwright::id::CartId::new();
    is_send(&engine.cart(&cartwright::Actor::Guest, cart));
    is_send(&engine.recover());
    is_send(&engine.checkout(cartwright::CheckoutRequest::new(
        cart,
        cartwright::id::IdempotencyKey::random(),
        "tok_visa",
        cartwright::Actor::Guest,
    )));
}

/// No silent test gateway and no silent zero tax: both are explicit choices.
#[test]
fn the_builder_requires_a_payment_provider_and_a_tax_choice() {
    let no_provider = cartwright::Engine::builder().no_tax().build();
    assert!(
        matches!(&no_provider, Err(cartwright::Error::Invalid { reason, .. }) if reason.contains("payment provider"))
    );
    let no_tax = cartwright::Engine::builder()
        .test_payment_provider()
        .build();
    assert!(
        matches!(&no_tax, Err(cartwright::Error::Invalid { reason, .. }) if reason.contains("tax"))
    );
    assert!(
        cartwright::Engine::builder()
            .test_payment_provider()
            .no_tax()
            .build()
            .is_ok()
    );
}
