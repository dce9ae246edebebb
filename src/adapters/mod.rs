//! The adapters: the in-memory store (the default) and the PostgreSQL store
//! (feature `postgres`), both re-exported from `cartwright::store`, and the
//! test payment gateway, re-exported from `cartwright::payment`.
//!
//! Architecture invariant: adapters implement ports and know nothing of the
//! engine, pricing or providers.

pub mod media;
pub mod memory;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod test_carrier;
pub mod test_payment;
pub mod test_tax;
