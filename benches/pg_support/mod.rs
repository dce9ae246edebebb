//! What the PostgreSQL benches share: the connection options and the
//! median of repeated reads.

use std::str::FromStr;
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

/// The database from `DATABASE_URL` (default: the local server).
pub fn opts() -> PgConnectOptions {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    PgConnectOptions::from_str(&url).unwrap()
}

/// The median of 200 runs of `read`, each of which must return a non-empty
/// page (its length).
pub async fn median<F, Fut>(read: F) -> Duration
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = usize>,
{
    let mut times = Vec::with_capacity(200);
    for _ in 0..200 {
        let started = Instant::now();
        let n = read().await;
        times.push(started.elapsed());
        assert!(n > 0, "an empty page measures nothing");
    }
    times.sort();
    times[times.len() / 2]
}

/// Drops and recreates `schema`, runs `setup` (SQL, may name the schema) in
/// it, and returns a pool of `connections` whose search path is that schema.
pub async fn fresh_schema(schema: &str, setup: &[String], connections: u32) -> PgPool {
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(opts())
        .await
        .unwrap();
    let mut statements = vec![
        format!("DROP SCHEMA IF EXISTS {schema} CASCADE"),
        format!("CREATE SCHEMA {schema}"),
    ];
    statements.extend(setup.iter().cloned());
    for statement in statements {
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(&admin)
            .await
            .unwrap();
    }
    admin.close().await;
    PgPoolOptions::new()
        .max_connections(connections)
        .connect_with(opts().options([("search_path", schema)]))
        .await
        .unwrap()
}
