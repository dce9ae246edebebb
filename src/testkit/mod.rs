//! A test kit for plugin authors (feature `test-util`): conformance suites
//! that a store, a payment provider, a tax service, a carrier or a relay
//! sink of your own must pass, written once
//! and run by this crate against its own adapters too; and the wrappers
//! its own tests use to break things on purpose — [`FaultyStore`] (a store
//! command fails before or after it takes effect, is delayed, or is held at
//! a [`Gate`] until the test opens it), [`SlowProvider`] (a gateway that
//! answers late, or refuses refunds) and [`GatedProvider`] (a gateway call
//! held at a gate, before or after the gateway acted). Gates let a test
//! stall a settler, a compensation or a recovery past its lease and let
//! another engine take over meanwhile.
//!
//! ```no_run
//! # async fn run() -> Result<(), cartwright::testkit::Failure> {
//! use std::sync::Arc;
//! use cartwright::store::{MemoryStore, Store};
//!
//! // Every call gets a fresh, empty store (a new schema, a new database…).
//! let report = cartwright::testkit::store_conformance(|| async {
//!     Arc::new(MemoryStore::new()) as Arc<dyn Store>
//! })
//! .await?;
//! assert!(report.checks > 0);
//!
//! let provider = Arc::new(cartwright::payment::TestPaymentProvider::new());
//! cartwright::testkit::provider_conformance(provider, "tok_visa", "tok_decline").await?;
//! # Ok(())
//! # }
//! ```
//!
//! Architecture invariant: the kit uses only the public API (the engine and
//! the port traits), so it checks what users rely on, not internals.
//!
//! Does not know: the adapter it checks beyond the port it implements.

mod faults;
mod gateway;
mod provider;
mod services;
mod sink;
mod store;

pub use faults::{FaultyStore, Gate, StoreCommand, When};
pub use gateway::{GatedProvider, ProviderMethod, SlowProvider};
pub use provider::{provider_conformance, session_conformance};
pub use services::{carrier_conformance, tax_provider_conformance};
pub use sink::{SinkProbe, sink_conformance};
pub use store::store_conformance;

/// A conformance check that did not hold: which one, and what was seen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("conformance check `{check}` failed: {detail}")]
#[non_exhaustive]
pub struct Failure {
    /// The check's name.
    pub check: &'static str,
    /// What was expected and what happened.
    pub detail: String,
}

/// What a suite ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Report {
    /// How many checks passed.
    pub checks: u32,
}

/// Fails `check` unless `ok`.
pub(crate) fn ensure(
    ok: bool,
    check: &'static str,
    detail: impl FnOnce() -> String,
) -> Result<(), Failure> {
    if ok {
        Ok(())
    } else {
        Err(Failure {
            check,
            detail: detail(),
        })
    }
}

/// Turns an unexpected error into a failure of `check`.
pub(crate) fn step<T, E: std::fmt::Debug>(
    check: &'static str,
    result: Result<T, E>,
) -> Result<T, Failure> {
    result.map_err(|e| Failure {
        check,
        detail: format!("unexpected error: {e:?}"),
    })
}
