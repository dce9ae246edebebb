//! A whole shop session on the in-memory store: seed a catalog, sign a
//! customer up, log in, fill a cart, check out and print the receipt.
//!
//! Run with `cargo run --example checkout`.

use std::sync::Arc;

use cartwright::store::MemoryStore;

#[path = "shared/demo.rs"]
mod demo;

#[tokio::main]
async fn main() -> cartwright::Result<()> {
    let engine = demo::engine(Arc::new(MemoryStore::new()))?;
    demo::run(&engine).await
}
