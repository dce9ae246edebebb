//! The ports: the traits adapters implement. The store ports are
//! re-exported at the crate root as `cartwright::store`, with the adapters;
//! the payment port lives with the payment types
//! ([`PaymentProvider`](crate::payment::PaymentProvider)), and the tax,
//! shipping and pricing-rule ports with theirs.
//!
//! Architecture invariant: the ports speak domain types only; they know
//! nothing of the engine or of any adapter.

pub mod media;
pub mod store;
