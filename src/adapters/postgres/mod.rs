//! The PostgreSQL store (feature `postgres`): every port on one database,
//! safe for many application instances at once.
//!
//! - Each atomic command is one transaction (often one statement): conditional
//!   updates with CHECK constraints as a backstop, rows locked in a fixed order
//!   (checkout → reservation → stock rows sorted by variant and location), and
//!   bounded retries on serialization failures and deadlocks (SQLSTATE 40001,
//!   40P01).
//! - Queries are checked at run time, so building needs no database.
//! - Migrations in `migrations/` are embedded and applied by
//!   [`PgStore::connect`] and [`PgStore::migrate`].
//! - Stored data that cannot be read back (edited by hand, out of range) is
//!   [`Error::CorruptData`], never a panic.
//!
//! Tables are prefixed `cw_`; point the pool's `search_path` at a schema of
//! your own to keep them apart.
//!
//! Does not know: pricing, payments or the engine: it maps the store ports to
//! SQL, one transaction per command.

use crate::channel::{ChannelId, SalesChannel};
use crate::store::ChannelStore;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::types::Json;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use crate::cart::{Cart, CartStatus};
use crate::catalog::{CatalogEntry, Category, Collection, Product, Sku};
use crate::customer::{
    AccountChange, AccountToken, Customer, CustomerGroup, Email, PasswordHash, TokenHolder,
};
use crate::error::{Error, Result};
use crate::giftcard::{GiftCard, GiftCardId, LedgerEntry, NewEntry};
use crate::id::{
    CartId, CategoryId, CustomerId, EventId, IdempotencyKey, LocationId, OrderId, ProductId,
    PromotionId, ReservationId, VariantId,
};
use crate::inventory::{
    Location, MAX_ON_HAND, Reservation, ReservationLine, ReservationState, StockLevel,
    StockRequest, StockSummary, UsageClaim, apply_claim, merge_claims, merge_requests,
    needs_fallback,
};
use crate::money::Currency;
use crate::order::{Order, OrderChange, OrderQuery, OrderStatus};
use crate::pricing::{Coupon, PriceList, Promotion};
use crate::store::{
    AwaitingPayment, BeginCheckout, CartStore, CatalogStore, CheckoutClaim, CheckoutEnd,
    CheckoutFailure, CheckoutRecord, CheckoutState, CheckoutStore, CustomerStore, DeliveryOutcome,
    Event, EventKind, EventStore, FailedDelivery, GiftCardStore, InboxClaim, InventoryStore, Lease,
    OrderStore, PricingInputs, PromotionStore, check_consumer, check_limit,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Checkout's read, in its own file so the checkout bench sends the very
/// same statement.
const CHECKOUT_READ: &str = include_str!("sql/checkout_read.sql");

/// The PostgreSQL store. Clone it freely: clones share one connection pool
/// (and, with several hosts, follow the same primary).
#[derive(Debug, Clone)]
pub struct PgStore {
    db: Arc<connection::Db>,
    retries: u32,
    /// Permits to take stock (`PgOptions::max_concurrent_reservations`),
    /// shared by the store's clones.
    reservations: Arc<tokio::sync::Semaphore>,
}

/// Why a command attempt failed: the domain said no, or the database failed.
enum Fail {
    Domain(Error),
    Db(sqlx::Error),
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        Self::Domain(e)
    }
}

impl From<sqlx::Error> for Fail {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(e)
    }
}

impl From<Fail> for Error {
    fn from(f: Fail) -> Self {
        match f {
            Fail::Domain(e) => e,
            Fail::Db(e) => storage(e),
        }
    }
}

type Try<T> = std::result::Result<T, Fail>;

/// The database's own text stays in the source (for logs, through the
/// error chain), never in the message a caller may show.
fn storage(e: sqlx::Error) -> Error {
    let message = match &e {
        sqlx::Error::PoolTimedOut => "no database connection available in time",
        sqlx::Error::PoolClosed => "the connection pool is closed",
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) => "the database connection failed",
        sqlx::Error::Database(_) => "the database refused the statement",
        _ => "database error",
    };
    Error::Storage {
        message: message.into(),
        source: Some(Arc::new(e)),
    }
}

fn sqlstate(f: &Fail) -> Option<String> {
    match f {
        Fail::Db(sqlx::Error::Database(d)) => d.code().map(|c| c.into_owned()),
        _ => None,
    }
}

fn constraint(f: &Fail) -> Option<String> {
    match f {
        Fail::Db(sqlx::Error::Database(d)) => d.constraint().map(str::to_owned),
        _ => None,
    }
}

/// Runs one attempt of a command, again on serialization failures and
/// deadlocks, after a pause that grows with each try (full jitter); warns
/// when the retries run out.
///
/// A failure that says the server is no longer the primary — a read-only
/// transaction (25006), a lost or refused connection, a server shutting
/// down — makes the store look for the primary among its hosts and move
/// its pool there ([`PgStore::fail_over`]). The command is tried again
/// only when it cannot have taken effect (refused as read-only, or no
/// connection was had); otherwise its error goes back to the caller, as
/// retryable, and the next command goes to the new primary.
macro_rules! retry {
    ($store:expr, $attempt:expr) => {{
        let mut tries = 0u32;
        let mut moves = 0u32;
        loop {
            let generation = $store.db.generation();
            match $attempt.await {
                Err(f) if matches!(sqlstate(&f).as_deref(), Some("40001" | "40P01")) => {
                    if tries >= $store.retries {
                        tracing::warn!(tries, "serialization failures kept winning; giving up");
                        break Err(Error::from(f));
                    }
                    tries += 1;
                    tracing::debug!(tries, "serialization failure or deadlock; retrying");
                    contention_pause(tries).await;
                }
                Err(f) if connection::primary_lost(&f) => {
                    $store.fail_over(generation).await;
                    if $store.db.can_move()
                        && connection::took_no_effect(&f)
                        && moves < connection::MAX_FAILOVER_RETRIES
                    {
                        moves += 1;
                        tracing::debug!(moves, "the primary moved; retrying there");
                        contention_pause(moves).await;
                        continue;
                    }
                    break Err(Error::from(f));
                }
                other => break other.map_err(Error::from),
            }
        }
    }};
}

/// A random pause of up to 1, 2, 4 … 16 ms before try `tries`, so
/// transactions that lost a race do not collide again in step.
async fn contention_pause(tries: u32) {
    tokio::time::sleep(crate::clock::retry_backoff(tries, 4)).await;
}

/// A unique violation becomes [`Error::AlreadyExists`]; anything else passes through.
fn already_exists(f: Fail, what: &'static str, value: impl std::fmt::Display) -> Fail {
    if sqlstate(&f).as_deref() == Some("23505") {
        Error::AlreadyExists {
            what,
            value: value.to_string(),
        }
        .into()
    } else {
        f
    }
}

fn corrupt(entity: &'static str, reason: impl std::fmt::Display) -> Fail {
    Fail::Domain(Error::CorruptData {
        entity,
        reason: reason.to_string(),
    })
}

/// Reads a column, turning a decoding failure into [`Error::CorruptData`].
fn col<'r, T>(row: &'r PgRow, name: &str, entity: &'static str) -> Try<T>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(name)
        .map_err(|e| corrupt(entity, format!("column {name}: {e}")))
}

/// Reads a JSONB document column into a domain type, straight from the
/// column's text (no intermediate `serde_json::Value`).
fn doc<T: DeserializeOwned>(row: &PgRow, name: &str, entity: &'static str) -> Try<T> {
    let Json(value): Json<T> = col(row, name, entity)?;
    Ok(value)
}

/// A value as JSON text, to bind as `text` and cast in SQL (`$n::json`):
/// for a `json` column, which keeps the text as written (an order's
/// document, migration 0017).
fn json_text<T: Serialize>(value: &T) -> Try<String> {
    serde_json::to_string(value).map_err(cannot_serialize)
}

/// A value as JSON text, ready to bind as JSONB (no intermediate
/// `serde_json::Value`: an order's document is serialized once).
fn to_json<T: Serialize>(value: &T) -> Try<Box<serde_json::value::RawValue>> {
    serde_json::value::to_raw_value(value).map_err(cannot_serialize)
}

fn cannot_serialize(e: serde_json::Error) -> Fail {
    Fail::Domain(Error::Storage {
        message: format!("cannot serialize: {e}"),
        source: None,
    })
}

fn uuids<T>(items: impl IntoIterator<Item = T>, f: impl Fn(T) -> Uuid) -> Vec<Uuid> {
    items.into_iter().map(f).collect()
}

fn limit_i64(limit: usize) -> Result<i64> {
    i64::try_from(check_limit(limit)?).map_err(|_| Error::Overflow("page size"))
}

impl PgStore {
    /// Every document a query returns (a static `SELECT doc ...`).
    async fn all_docs<T: DeserializeOwned>(
        &self,
        sql: &'static str,
        entity: &'static str,
    ) -> Try<Vec<T>> {
        let rows = sqlx::query(sql).fetch_all(&self.pool()).await?;
        rows.iter().map(|r| doc(r, "doc", entity)).collect()
    }

    /// Every table's rows as JSON (an object keyed by table name, every
    /// table of the store's schema, found in the catalog), in a stable
    /// order: a snapshot to compare before and after an operation, or to
    /// search for data that must be gone, in tests (feature `test-util`).
    ///
    /// # Errors
    /// [`Error::Storage`] when the server fails.
    #[cfg(any(test, feature = "test-util"))]
    pub async fn dump(&self) -> Result<serde_json::Value> {
        // Every table of the store's schema, found in the catalog — not a
        // list kept by hand, so a table added later is in every snapshot
        // (and in the erasure test that searches them all).
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT tablename::text FROM pg_tables
             WHERE schemaname = current_schema() ORDER BY tablename",
        )
        .fetch_all(&self.pool())
        .await
        .map_err(storage)?;
        let mut dump = serde_json::Map::new();
        for table in tables {
            // Rows in the order of their text, so equal tables dump equal.
            let sql = format!(
                "SELECT coalesce(jsonb_agg(to_jsonb(t) ORDER BY to_jsonb(t)::text), '[]')
                 FROM {} t",
                quote_ident(&table)
            );
            let Json(rows): Json<serde_json::Value> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .fetch_one(&self.pool())
                .await
                .map_err(storage)?;
            dump.insert(table, rows);
        }
        Ok(serde_json::Value::Object(dump))
    }
}

/// `name` as a quoted SQL identifier.
#[cfg(any(test, feature = "test-util"))]
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

mod agents;
mod carts;
mod catalog;
mod channels;
mod checkout;
mod connection;
mod customers;
mod events;
use events::insert_events;
mod giftcards;
mod inventory;
mod orders;
mod promotions;
mod staff;
mod webhooks;

use carts::*;
use catalog::*;
pub use connection::{DEFAULT_CONCURRENT_RESERVATIONS, MAX_HOSTS, MAX_TX_RETRIES, PgOptions};
use customers::*;
use inventory::*;
use orders::*;
use promotions::*;
