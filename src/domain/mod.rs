//! The domain: pure types and rules — money, ids, the catalog, customers,
//! carts, inventory, pricing, tax, shipping, orders, payments, events and
//! who is acting. Re-exported at the crate root (`cartwright::money`, …).
//!
//! Architecture invariant: nothing here imports the ports, the adapters or
//! the engine (`tests/layers.rs` checks it); no I/O, no clock reads.

/// Chainable setters for a record's public fields, so records can be
/// `#[non_exhaustive]` (growing without breaking) and still be built in one
/// expression: `NewVariant::shipped("MUG").prices(vec![price]).status(Active)`.
/// Fields listed after `into:` take anything that converts (`&str` for a
/// `String`, a value for an `Option`).
macro_rules! setters {
    ($ty:ty { $($field:ident: $fty:ty),* $(,)? } into { $($ifield:ident: $ifty:ty),* $(,)? }) => {
        impl $ty {
            $(
                #[doc = concat!("Sets `", stringify!($field), "`.")]
                #[must_use]
                pub fn $field(mut self, value: $fty) -> Self {
                    self.$field = value;
                    self
                }
            )*
            $(
                #[doc = concat!("Sets `", stringify!($ifield), "`.")]
                #[must_use]
                pub fn $ifield(mut self, value: impl Into<$ifty>) -> Self {
                    self.$ifield = value.into();
                    self
                }
            )*
        }
    };
}
pub(crate) use setters;

pub mod actor;
pub(crate) mod after_sale;
pub mod agent;
pub mod cart;
pub mod catalog;
pub mod channel;
pub mod clock;
pub mod customer;
pub mod error;
pub mod event;
pub mod giftcard;
pub mod id;
pub mod inventory;
pub(crate) mod media;
pub mod money;
pub mod note;
pub mod order;
pub mod payment;
pub mod pricing;
mod session;
pub mod shipping;
pub mod staff;
pub mod tax;
pub(crate) mod validate;
pub mod webhook;
