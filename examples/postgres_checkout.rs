//! The checkout example on PostgreSQL.
//!
//! The database comes from `DATABASE_URL` (default: the local server,
//! `postgres://postgres@127.0.0.1:5432/postgres`). The example works in its
//! own schema, `cartwright_example`, which it drops and recreates on every
//! run so it can be run again and again.
//!
//! Run with `cargo run --features postgres --example postgres_checkout`.

use std::str::FromStr;
use std::sync::Arc;

use cartwright::store::PgStore;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

#[path = "shared/demo.rs"]
mod demo;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let options = PgConnectOptions::from_str(&url)?;

    // A schema of the example's own, fresh each run.
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options.clone())
        .await?;
    sqlx::query("DROP SCHEMA IF EXISTS cartwright_example CASCADE")
        .execute(&admin)
        .await?;
    sqlx::query("CREATE SCHEMA cartwright_example")
        .execute(&admin)
        .await?;
    admin.close().await;

    let pool = PgPoolOptions::new()
        .max_connections(10)
        .connect_with(options.options([("search_path", "cartwright_example")]))
        .await?;
    let store = PgStore::from_pool(pool).await?;
    let engine = demo::engine(Arc::new(store))?;
    demo::run(&engine).await?;
    println!("(stored in PostgreSQL, schema cartwright_example)");
    Ok(())
}
