//! The domain: pure types and rules — money, ids, the catalog, customers,
//! carts, inventory, pricing, tax, shipping, orders, payments, events and
//! who is acting. Re-exported at the crate root (`cartwright::money`, …).
//!
//! Architecture invariant: nothing here imports the ports, the adapters or
//! the engine (`tests/layers.rs` checks it); no I/O, no clock reads.

pub mod actor;
pub mod cart;
pub mod catalog;
pub mod clock;
pub mod customer;
pub mod error;
pub mod event;
pub mod id;
pub mod inventory;
pub mod money;
pub mod note;
pub mod order;
pub mod payment;
pub mod pricing;
pub mod shipping;
pub mod tax;
pub(crate) mod validate;
