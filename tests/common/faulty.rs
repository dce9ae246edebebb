//! The fault-injecting store wrapper, from the exported test kit.
#![allow(unused_imports)]

pub use cartwright::testkit::{FaultyStore, StoreCommand as Command, When};
