//! The reference embedding: a small web shop on axum built on cartwright.
//!
//! Run with `cargo run --example storefront` (in memory), or with
//! `DATABASE_URL=postgres://… cargo run --features postgres --example
//! storefront` on PostgreSQL (several instances may share the database;
//! give them one `COOKIE_KEY`, 64 hex characters, so each honours the
//! others' sessions). Behind HTTPS set `SECURE_COOKIES=1` so the session
//! cookie is `Secure` as well as `HttpOnly` and `SameSite=Lax`.
//! With the `admin` feature it mounts the back office (`cartwright::admin`)
//! at `/admin`, with an owner account whose password it prints
//! (`STAFF_PASSWORD`, or a random one). It prints its address; Ctrl-C stops it
//! gracefully. With `STOREFRONT_SMOKE=1` it starts, answers one request
//! and stops (what CI runs).

#![allow(dead_code)] // the modules are shared with tests/storefront.rs

mod session;
mod shop;
mod start;
mod templates;
mod tracking;

#[tokio::main]
async fn main() -> cartwright::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let database = std::env::var("DATABASE_URL").ok();
    let store = start::store(database.as_deref()).await?;
    let password = std::env::var("STAFF_PASSWORD")
        .unwrap_or_else(|_| uuid::Uuid::new_v4().simple().to_string());
    // Instances behind one address share the key that signs sessions.
    let cookie_key = std::env::var("COOKIE_KEY")
        .ok()
        .and_then(|k| hex::decode(k).ok());
    let running = start::start_with(store, &password, cookie_key.as_deref()).await?;
    println!("storefront listening at {}", running.url);
    #[cfg(feature = "admin")]
    println!(
        "staff: the back office is at {}/admin; sign in as {} with password {password}",
        running.url,
        start::OWNER_EMAIL
    );
    #[cfg(not(feature = "admin"))]
    println!("(no back office: run with --features admin to have one; password {password} unused)");
    if std::env::var("STOREFRONT_SMOKE").is_ok() {
        let page = reqwest::get(format!("{}/", running.url))
            .await
            .map_err(|e| cartwright::Error::PaymentUnavailable(e.to_string()))?;
        println!("GET / answered {}", page.status());
    } else {
        let _ = tokio::signal::ctrl_c().await;
    }
    let _ = running.stop.send(());
    let _ = running.task.await;
    Ok(())
}
