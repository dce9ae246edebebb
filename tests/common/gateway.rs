//! The slow gateway, from the exported test kit.

pub use cartwright::testkit::SlowProvider as SlowGateway;
