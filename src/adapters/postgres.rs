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
    self, Location, MAX_ON_HAND, Reservation, ReservationLine, ReservationState, StockLevel,
    StockRequest, StockSummary, UsageClaim, apply_claim, merge_claims, merge_requests,
    needs_fallback, plan_reservation,
};
use crate::money::Currency;
use crate::order::{Order, OrderChange, OrderQuery, OrderStatus};
use crate::pricing::{Coupon, PriceList, Promotion};
use crate::store::{
    AwaitingPayment, BeginCheckout, CartStore, CatalogStore, CheckoutClaim, CheckoutEnd,
    CheckoutFailure, CheckoutRecord, CheckoutState, CheckoutStore, CustomerStore, Event, EventKind,
    EventStore, GiftCardStore, InventoryStore, Lease, OrderStore, PricingInputs, PromotionStore,
    check_consumer, check_limit,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Checkout's read, in its own file so the checkout bench sends the very
/// same statement.
const CHECKOUT_READ: &str = include_str!("sql/checkout_read.sql");

/// How often a transaction that lost a serialization race or a deadlock is
/// retried, unless [`PgOptions::max_retries`] says otherwise.
pub const MAX_TX_RETRIES: u32 = 8;

/// [`PgOptions::max_concurrent_reservations`]' default.
pub const DEFAULT_CONCURRENT_RESERVATIONS: usize = 8;

/// How [`PgStore::connect_with`] sets up the store. Every default is what
/// [`PgStore::connect`] uses.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PgOptions {
    /// Most connections in the pool (default 10). Each concurrent command
    /// holds one for a round trip or, in a transaction, for its length.
    pub max_connections: u32,
    /// How long a command waits for a free connection before failing with
    /// [`Error::Storage`] (default 30 s).
    pub acquire_timeout: std::time::Duration,
    /// The server's `statement_timeout` for the store's connections: a
    /// statement running longer is cancelled and the command fails with
    /// [`Error::Storage`], changing nothing (default: none).
    pub statement_timeout: Option<std::time::Duration>,
    /// How often a transaction that lost a serialization race or a deadlock
    /// is retried, each after a growing random pause (default
    /// [`MAX_TX_RETRIES`]).
    pub max_retries: u32,
    /// A connection idle for longer than this is checked with a round trip
    /// before the pool hands it out, and replaced when the server has gone
    /// (default 1 s; zero checks every time, as `sqlx` does by default).
    /// A connection in steady use is not checked: the check was a round
    /// trip before every statement, as many as the statements themselves
    /// (BENCHMARKS.md, session 8). A connection that died within the last
    /// second may fail one command with a retryable [`Error::Storage`],
    /// which changes nothing.
    pub ping_idle_after: std::time::Duration,
    /// How many of this store's checkouts may be taking stock at once
    /// (checkout's first commit, or the general path's reservation); the
    /// rest wait in the process, not in the database (default 8, at least
    /// 1). A reservation holds each stock row's lock until it commits; when
    /// more server processes than the machine has cores queue on a hot
    /// variant's row, the holder waits for a CPU and throughput collapses.
    /// On this project's two-core bench machine, 32 checkouts of one SKU
    /// did 70 % of the rate of 8 without the limit and 90–105 % with it
    /// (BENCHMARKS.md, session 8). Each application instance limits its own.
    pub max_concurrent_reservations: usize,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: std::time::Duration::from_secs(30),
            statement_timeout: None,
            max_retries: MAX_TX_RETRIES,
            ping_idle_after: std::time::Duration::from_secs(1),
            max_concurrent_reservations: DEFAULT_CONCURRENT_RESERVATIONS,
        }
    }
}

impl PgOptions {
    /// The pool settings [`PgStore::connect_with`] uses — size, acquire
    /// timeout and the idle check — for an application that builds its own
    /// pool and hands it to [`PgStore::from_pool`] (the statement timeout
    /// is a connection option; see [`PgStore::connect_with`]).
    pub fn pool_options(&self) -> PgPoolOptions {
        let idle = self.ping_idle_after;
        PgPoolOptions::new()
            .max_connections(self.max_connections)
            .acquire_timeout(self.acquire_timeout)
            .test_before_acquire(false)
            .before_acquire(move |conn, meta| {
                Box::pin(async move {
                    if meta.idle_for > idle {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
    }
}

crate::domain::setters!(PgOptions {
    max_connections: u32,
    acquire_timeout: std::time::Duration,
    max_retries: u32,
    ping_idle_after: std::time::Duration,
    max_concurrent_reservations: usize,
} into {
    statement_timeout: Option<std::time::Duration>,
});

/// The PostgreSQL store. Clone it freely: clones share one connection pool.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
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
macro_rules! retry {
    ($store:expr, $attempt:expr) => {{
        let mut tries = 0u32;
        loop {
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
    /// Connects with a pool of at most 10 connections and applies the migrations.
    ///
    /// # Errors
    /// [`Error::Storage`] when the server cannot be reached or a migration
    /// fails.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, &PgOptions::default()).await
    }

    /// Connects with these options and applies the migrations.
    ///
    /// ```no_run
    /// # async fn run() -> cartwright::Result<()> {
    /// use std::time::Duration;
    /// use cartwright::store::{PgOptions, PgStore};
    ///
    /// let options = PgOptions::default()
    ///     .max_connections(32)
    ///     .statement_timeout(Duration::from_secs(5));
    /// let store = PgStore::connect_with("postgres://shop@db/shop", &options).await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`Error::Storage`] when the server cannot be reached or a migration
    /// fails; [`Error::Invalid`] for a pool of no connections.
    pub async fn connect_with(url: &str, options: &PgOptions) -> Result<Self> {
        if options.max_connections == 0 {
            return Err(Error::invalid("max_connections", "must be at least 1"));
        }
        if options.max_concurrent_reservations == 0 {
            return Err(Error::invalid(
                "max_concurrent_reservations",
                "must be at least 1",
            ));
        }
        let mut connect = PgConnectOptions::from_str(url).map_err(storage)?;
        if let Some(timeout) = options.statement_timeout {
            connect = connect.options([("statement_timeout", timeout.as_millis().to_string())]);
        }
        let pool = options
            .pool_options()
            .connect_with(connect)
            .await
            .map_err(storage)?;
        let mut store = Self::from_pool(pool).await?;
        store.retries = options.max_retries;
        store.reservations = Arc::new(tokio::sync::Semaphore::new(
            options.max_concurrent_reservations,
        ));
        Ok(store)
    }

    /// Uses an existing pool and applies the migrations; the store's own
    /// settings are [`PgOptions`]' defaults.
    ///
    /// # Errors
    /// [`Error::Storage`] when a migration fails.
    pub async fn from_pool(pool: PgPool) -> Result<Self> {
        let store = Self {
            pool,
            retries: MAX_TX_RETRIES,
            reservations: Arc::new(tokio::sync::Semaphore::new(DEFAULT_CONCURRENT_RESERVATIONS)),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Applies any migrations not yet applied. Safe to run from many
    /// instances at once (the migrator takes an advisory lock).
    ///
    /// # Errors
    /// [`Error::Storage`] when a migration fails.
    pub async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await.map_err(|e| Error::Storage {
            message: "migration failed".into(),
            source: Some(Arc::new(e)),
        })
    }

    /// The connection pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Waits for one of the permits to take stock
    /// ([`PgOptions::max_concurrent_reservations`]).
    async fn reservation_permit(&self) -> Result<tokio::sync::SemaphorePermit<'_>> {
        self.reservations
            .acquire()
            .await
            .map_err(|e| Error::Storage {
                message: "the store's reservation permits are closed".into(),
                source: Some(Arc::new(e)),
            })
    }

    /// Every document a query returns (a static `SELECT doc ...`).
    async fn all_docs<T: DeserializeOwned>(
        &self,
        sql: &'static str,
        entity: &'static str,
    ) -> Try<Vec<T>> {
        let rows = sqlx::query(sql).fetch_all(&self.pool).await?;
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
        .fetch_all(&self.pool)
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
                .fetch_one(&self.pool)
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

// ----- catalog -----------------------------------------------------------

impl PgStore {
    /// [`CatalogStore::update_category`] in one transaction: the parent
    /// checked (exists, not the category or under it), the row replaced,
    /// and the pricing summary of every product under the category
    /// recomputed with its new ancestors.
    async fn update_category_try(&self, category: &Category) -> Try<()> {
        let mut tx = self.pool.begin().await?;
        let id = category.id().as_uuid();
        // Category moves are serialized, so two cannot make a cycle together.
        sqlx::query("LOCK TABLE cw_categories IN SHARE ROW EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await?;
        let found = sqlx::query("SELECT id FROM cw_categories WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        if found.is_none() {
            return Err(Error::not_found("category", category.id()).into());
        }
        if let Some(parent) = category.parent() {
            let row = sqlx::query(
                "WITH RECURSIVE below(id) AS (
                     SELECT $1::uuid
                     UNION
                     SELECT c.id FROM cw_categories c JOIN below b ON c.parent_id = b.id)
                 SELECT EXISTS (SELECT 1 FROM cw_categories WHERE id = $2) AS known,
                        EXISTS (SELECT 1 FROM below WHERE id = $2) AS cycle",
            )
            .bind(id)
            .bind(parent.as_uuid())
            .fetch_one(&mut *tx)
            .await?;
            if !col::<bool>(&row, "known", "category")? {
                return Err(Error::not_found("category", parent).into());
            }
            if col::<bool>(&row, "cycle", "category")? {
                return Err(Error::invalid(
                    "category parent",
                    format!("{parent} is {} or under it", category.id()),
                )
                .into());
            }
        }
        sqlx::query("UPDATE cw_categories SET parent_id = $2, doc = $3 WHERE id = $1")
            .bind(id)
            .bind(category.parent().map(|p| p.as_uuid()))
            .bind(Json(to_json(category)?))
            .execute(&mut *tx)
            .await?;
        // Products under the category (or below it) get their new ancestors.
        let rows = sqlx::query(
            "WITH RECURSIVE below(id) AS (
                 SELECT $1::uuid
                 UNION
                 SELECT c.id FROM cw_categories c JOIN below b ON c.parent_id = b.id)
             SELECT p.id, p.doc FROM cw_products p
             WHERE p.id IN (SELECT product_id FROM cw_product_categories
                            WHERE category_id IN (SELECT id FROM below))
             ORDER BY p.id FOR UPDATE",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        for row in rows {
            let product: Product = doc(&row, "doc", "product")?;
            let summary = to_json(&ProductSummary::of(
                &product,
                ancestry(&mut tx, product.categories()).await?,
            ))?;
            sqlx::query("UPDATE cw_products SET summary = $2 WHERE id = $1")
                .bind(product.id().as_uuid())
                .bind(Json(&summary))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn write_product(&self, product: &Product, replace: bool) -> Try<()> {
        let mut tx = self.pool.begin().await?;
        let id = product.id().as_uuid();
        let body = to_json(product)?;
        let wanted = uuids(product.categories(), |c| c.as_uuid());
        let known: Vec<Uuid> =
            sqlx::query_scalar("SELECT id FROM cw_categories WHERE id = ANY($1)")
                .bind(&wanted)
                .fetch_all(&mut *tx)
                .await?;
        if known.len() != wanted.len() {
            return Err(Error::not_found("category", "referenced by the product").into());
        }
        let summary = to_json(&ProductSummary::of(
            product,
            ancestry(&mut tx, product.categories()).await?,
        ))?;
        let search = to_json(&ProductSearch::of(product))?;
        if replace {
            let updated = sqlx::query(
                "UPDATE cw_products SET doc = $2, summary = $3, search = $4 WHERE id = $1",
            )
            .bind(id)
            .bind(Json(&body))
            .bind(Json(&summary))
            .bind(Json(&search))
            .execute(&mut *tx)
            .await?;
            if updated.rows_affected() == 0 {
                return Err(Error::not_found("product", product.id()).into());
            }
            let keep = uuids(product.variants(), |v| v.id().as_uuid());
            // A variant that was reserved or ordered is archived, never removed.
            if let Some(v) = first_sold_variant(&mut tx, id, &keep).await? {
                return Err(Error::invalid(
                    "product variants",
                    format!("variant {} was reserved or ordered: archive it instead", v),
                )
                .into());
            }
            sqlx::query("DELETE FROM cw_variants WHERE product_id = $1 AND NOT (id = ANY($2))")
                .bind(id)
                .bind(&keep)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM cw_product_categories WHERE product_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM cw_product_collections WHERE product_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        } else {
            sqlx::query(
                "INSERT INTO cw_products (id, doc, summary, search) VALUES ($1, $2, $3, $4)",
            )
            .bind(id)
            .bind(Json(&body))
            .bind(Json(&summary))
            .bind(Json(&search))
            .execute(&mut *tx)
            .await?;
        }
        let ids = uuids(product.variants(), |v| v.id().as_uuid());
        let skus: Vec<String> = product
            .variants()
            .iter()
            .map(|v| v.sku().as_str().to_owned())
            .collect();
        // Name the first SKU taken by another product, in the product's
        // variant order, as the memory store does (never the server's text).
        let taken: Vec<String> = sqlx::query_scalar(
            "SELECT sku FROM cw_variants WHERE sku = ANY($1) AND product_id <> $2",
        )
        .bind(&skus)
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        if let Some(sku) = skus.iter().find(|s| taken.contains(s)) {
            return Err(Error::AlreadyExists {
                what: "sku",
                value: sku.clone(),
            }
            .into());
        }
        sqlx::query(
            "INSERT INTO cw_variants (id, product_id, sku, doc)
             SELECT v, $1, s, d FROM unnest($2::uuid[], $3::text[], $4::jsonb[]) AS u(v, s, d)
             ON CONFLICT (id) DO UPDATE SET sku = EXCLUDED.sku, doc = EXCLUDED.doc
             WHERE cw_variants.product_id = EXCLUDED.product_id",
        )
        .bind(id)
        .bind(&ids)
        .bind(&skus)
        .bind(
            product
                .variants()
                .iter()
                .map(|v| to_json(v).map(Json))
                .collect::<Try<Vec<_>>>()?,
        )
        .execute(&mut *tx)
        .await?;
        let found: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM cw_variants WHERE product_id = $1 AND id = ANY($2)",
        )
        .bind(id)
        .bind(&ids)
        .fetch_one(&mut *tx)
        .await?;
        if usize::try_from(found).ok() != Some(ids.len()) {
            return Err(Error::AlreadyExists {
                what: "variant id",
                value: product.id().to_string(),
            }
            .into());
        }
        sqlx::query(
            "INSERT INTO cw_product_categories (product_id, category_id) SELECT $1, unnest($2::uuid[])",
        )
        .bind(id)
        .bind(uuids(product.categories(), |c| c.as_uuid()))
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO cw_product_collections (product_id, collection_id) SELECT $1, unnest($2::uuid[])",
        )
        .bind(id)
        .bind(uuids(product.collections(), |c| c.as_uuid()))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    fn product_error(f: Fail, product: &Product) -> Fail {
        match (sqlstate(&f).as_deref(), constraint(&f).as_deref()) {
            (Some("23505"), Some("cw_variants_sku_key")) => Error::AlreadyExists {
                what: "sku",
                value: product
                    .variants()
                    .iter()
                    .map(|v| v.sku().as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            }
            .into(),
            (Some("23505"), Some("cw_products_pkey")) => Error::AlreadyExists {
                what: "product",
                value: product.id().to_string(),
            }
            .into(),
            (Some("23505"), _) => Error::AlreadyExists {
                what: "variant id",
                value: product.id().to_string(),
            }
            .into(),
            (Some("23503"), Some(c)) if c.contains("category") => {
                Error::not_found("category", "referenced by the product").into()
            }
            (Some("23503"), Some(c)) if c.contains("collection") => {
                Error::not_found("collection", "referenced by the product").into()
            }
            _ => f,
        }
    }

    async fn entries_try(&self, ids: &[VariantId]) -> Try<HashMap<VariantId, CatalogEntry>> {
        let rows = sqlx::query(
            "SELECT v.doc AS variant, p.summary
             FROM cw_variants v JOIN cw_products p ON p.id = v.product_id
             WHERE v.id = ANY($1)",
        )
        .bind(uuids(ids, |v| v.as_uuid()))
        .fetch_all(&self.pool)
        .await?;
        let mut out = HashMap::with_capacity(rows.len());
        for row in rows {
            let variant: crate::catalog::Variant = doc(&row, "variant", "variant")?;
            let summary: ProductSummary = doc(&row, "summary", "product")?;
            out.insert(variant.id(), summary.entry(variant));
        }
        Ok(out)
    }
}

/// The first of `product`'s variants, other than those in `keep`, that was
/// ever reserved (reservation lines are indexed by variant) or ordered (a
/// scan of the orders' lines: deleting is a rare staff action).
async fn first_sold_variant(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    product: Uuid,
    keep: &[Uuid],
) -> Try<Option<VariantId>> {
    let used: Option<Uuid> = sqlx::query_scalar(
        "WITH gone AS (SELECT id FROM cw_variants
                       WHERE product_id = $1 AND NOT (id = ANY($2)))
         SELECT g.id FROM gone g
         WHERE EXISTS (SELECT 1 FROM cw_reservations WHERE g.id = ANY(variant_ids))
            OR EXISTS (SELECT 1 FROM cw_orders o,
                              json_array_elements(o.doc->'pricing'->'lines') l
                       WHERE (l->>'variant_id')::uuid = g.id)
         ORDER BY g.id LIMIT 1",
    )
    .bind(product)
    .bind(keep)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(used.map(VariantId::from_uuid))
}

/// `categories` and every ancestor of each, read in `tx`.
async fn ancestry(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    categories: &std::collections::BTreeSet<CategoryId>,
) -> Try<std::collections::BTreeSet<CategoryId>> {
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "WITH RECURSIVE anc(id) AS (
             SELECT unnest($1::uuid[])
             UNION
             SELECT c.parent_id FROM cw_categories c JOIN anc ON c.id = anc.id
             WHERE c.parent_id IS NOT NULL)
         SELECT id FROM anc",
    )
    .bind(uuids(categories, |c| c.as_uuid()))
    .fetch_all(&mut **tx)
    .await?;
    Ok(ids.into_iter().map(CategoryId::from_uuid).collect())
}

/// What pricing needs of a product, stored beside the full document.
#[derive(serde::Serialize, serde::Deserialize)]
struct ProductSummary {
    title: String,
    status: crate::catalog::Status,
    tags: std::collections::BTreeSet<String>,
    collections: std::collections::BTreeSet<crate::id::CollectionId>,
    /// The product's categories and all their ancestors: computed when the
    /// product is written, and again for every product under a category
    /// that moves.
    categories: std::collections::BTreeSet<CategoryId>,
}

/// What only listings read of a product, in its own column (`search`), so
/// pricing's reads of the summary stay small.
#[derive(serde::Serialize)]
struct ProductSearch {
    /// Every variant's price, by currency (a price range reads it without
    /// joining the variants).
    prices: std::collections::BTreeMap<crate::money::Currency, Vec<Decimal>>,
    /// Every variant's SKU.
    skus: Vec<String>,
}

impl ProductSearch {
    fn of(p: &Product) -> Self {
        let mut prices: std::collections::BTreeMap<_, Vec<Decimal>> =
            std::collections::BTreeMap::new();
        for v in p.variants() {
            for m in v.prices() {
                prices.entry(m.currency()).or_default().push(m.amount());
            }
        }
        Self {
            prices,
            skus: p
                .variants()
                .iter()
                .map(|v| v.sku().as_str().to_owned())
                .collect(),
        }
    }
}

impl ProductSummary {
    fn entry(self, variant: crate::catalog::Variant) -> CatalogEntry {
        CatalogEntry {
            product_title: self.title.into(),
            product_status: self.status,
            categories: self.categories,
            collections: self.collections,
            tags: self.tags,
            variant,
            stock_location: None,
        }
    }

    fn of(p: &Product, categories: std::collections::BTreeSet<CategoryId>) -> Self {
        Self {
            title: p.title().to_owned(),
            status: p.status(),
            tags: p.tags().clone(),
            collections: p.collections().clone(),
            categories,
        }
    }
}

#[async_trait]
impl CatalogStore for PgStore {
    async fn insert_product(&self, product: Product) -> Result<()> {
        retry!(self, async {
            self.write_product(&product, false)
                .await
                .map_err(|f| Self::product_error(f, &product))
        })
    }

    async fn update_product(&self, product: Product) -> Result<()> {
        retry!(self, async {
            self.write_product(&product, true)
                .await
                .map_err(|f| Self::product_error(f, &product))
        })
    }

    async fn product(&self, id: ProductId) -> Result<Product> {
        retry!(self, async {
            let row = sqlx::query("SELECT doc FROM cw_products WHERE id = $1")
                .bind(id.as_uuid())
                .fetch_optional(&self.pool)
                .await?
                .ok_or_else(|| Error::not_found("product", id))?;
            doc::<Product>(&row, "doc", "product")
        })
    }

    async fn products(&self, after: Option<ProductId>, limit: usize) -> Result<Vec<Product>> {
        let limit = limit_i64(limit)?;
        retry!(self, async {
            let rows = sqlx::query(
                "SELECT doc FROM cw_products WHERE ($1::uuid IS NULL OR id > $1) ORDER BY id LIMIT $2",
            )
            .bind(after.map(|a| a.as_uuid()))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|r| doc(r, "doc", "product"))
                .collect::<Try<Vec<Product>>>()
        })
    }

    async fn entry_by_sku(&self, sku: &Sku) -> Result<CatalogEntry> {
        let id: Option<Uuid> = sqlx::query_scalar("SELECT id FROM cw_variants WHERE sku = $1")
            .bind(sku.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(storage)?;
        let id = VariantId::from_uuid(id.ok_or_else(|| Error::not_found("sku", sku))?);
        let mut entries = self.entries(&[id]).await?;
        entries
            .remove(&id)
            .ok_or_else(|| Error::not_found("sku", sku))
    }

    async fn entries(&self, ids: &[VariantId]) -> Result<HashMap<VariantId, CatalogEntry>> {
        retry!(self, self.entries_try(ids))
    }

    async fn insert_category(&self, category: Category) -> Result<()> {
        retry!(self, async {
            let result =
                sqlx::query("INSERT INTO cw_categories (id, parent_id, doc) VALUES ($1, $2, $3)")
                    .bind(category.id().as_uuid())
                    .bind(category.parent().map(|p| p.as_uuid()))
                    .bind(Json(to_json(&category)?))
                    .execute(&self.pool)
                    .await;
            match result.map_err(Fail::from) {
                Ok(_) => Ok(()),
                Err(f) if sqlstate(&f).as_deref() == Some("23503") => Err(Error::not_found(
                    "category",
                    category
                        .parent()
                        .map_or_else(String::new, |p| p.to_string()),
                )
                .into()),
                Err(f) if sqlstate(&f).as_deref() == Some("23505") => Err(Error::AlreadyExists {
                    what: "category",
                    value: category.id().to_string(),
                }
                .into()),
                Err(f) => Err(f),
            }
        })
    }

    async fn categories(&self) -> Result<Vec<Category>> {
        retry!(
            self,
            self.all_docs("SELECT doc FROM cw_categories ORDER BY id", "category")
        )
    }

    async fn insert_collection(&self, collection: Collection) -> Result<()> {
        retry!(self, async {
            let result = sqlx::query("INSERT INTO cw_collections (id, doc) VALUES ($1, $2)")
                .bind(collection.id().as_uuid())
                .bind(Json(to_json(&collection)?))
                .execute(&self.pool)
                .await;
            result
                .map(|_| ())
                .map_err(|e| already_exists(e.into(), "collection", collection.id().to_string()))
        })
    }

    async fn collections(&self) -> Result<Vec<Collection>> {
        retry!(
            self,
            self.all_docs("SELECT doc FROM cw_collections ORDER BY id", "collection")
        )
    }

    async fn update_category(&self, category: Category) -> Result<()> {
        retry!(self, self.update_category_try(&category))
    }

    async fn find_products(&self, query: &crate::catalog::ProductQuery) -> Result<Vec<Product>> {
        use crate::catalog::ProductSort;
        // Title words as a prefix query (they hold only letters and digits,
        // so nothing in them is query syntax); the SKU prefix as a pattern.
        let words = query.words();
        let tsquery = (!words.is_empty()).then(|| {
            words
                .iter()
                .map(|w| format!("{w}:*"))
                .collect::<Vec<_>>()
                .join(" & ")
        });
        let sku = query.sku_prefix().map(|p| {
            let escaped = p
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            format!("{escaped}%")
        });
        let mut filter = serde_json::Map::new();
        if let Some(c) = query.category {
            filter.insert("categories".into(), serde_json::json!([c.as_uuid()]));
        }
        if let Some(c) = query.collection {
            filter.insert("collections".into(), serde_json::json!([c.as_uuid()]));
        }
        if let Some(t) = query.tag_key() {
            filter.insert("tags".into(), serde_json::json!([t]));
        }
        if let Some(st) = query.status {
            filter.insert(
                "status".into(),
                serde_json::to_value(st).map_err(|e| Error::invalid("status", e.to_string()))?,
            );
        }
        let filter = serde_json::Value::Object(filter);
        let price = query.price;
        let (cursor, order) = match query.sort {
            ProductSort::Title => (
                "((p.summary->>'title') COLLATE \"C\", p.id) > ($8::text COLLATE \"C\", $7::uuid)",
                "(p.summary->>'title') COLLATE \"C\", p.id",
            ),
            _ => ("p.id < $7::uuid", "p.id DESC"),
        };
        let sql = format!(
            "SELECT p.doc FROM cw_products p
             WHERE ($1::text IS NULL
                    OR ($2::text IS NOT NULL AND
                        to_tsvector('simple', regexp_replace(lower(p.summary->>'title'),
                                                             '[^[:alnum:]]+', ' ', 'g'))
                        @@ to_tsquery('simple', $2))
                    OR EXISTS (SELECT 1 FROM jsonb_array_elements_text(p.search->'skus') AS s(sku)
                               WHERE s.sku LIKE $1 ESCAPE '\\'))
               AND p.summary @> $3::jsonb
               AND ($4::text IS NULL OR EXISTS (
                    SELECT 1 FROM jsonb_array_elements_text(p.search->'prices'->$4) AS a(price)
                    WHERE ($5::numeric IS NULL OR a.price::numeric >= $5)
                      AND ($6::numeric IS NULL OR a.price::numeric <= $6)))
               AND {cursor}
             ORDER BY {order} LIMIT $9"
        );
        let limit = i64::try_from(query.limit).map_err(|_| Error::Overflow("limit"))?;
        let first_id = match query.sort {
            ProductSort::Title => Uuid::nil(),
            _ => Uuid::max(),
        };
        retry!(self, async {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(&sku)
                .bind(&tsquery)
                .bind(Json(&filter))
                .bind(price.map(|r| r.currency.code()))
                .bind(price.and_then(|r| r.min).map(|m| m.amount()))
                .bind(price.and_then(|r| r.max).map(|m| m.amount()))
                // The first page starts from a bound every product passes
                // (the same plan as every later page: no NULL branch).
                .bind(query.after.as_ref().map_or(first_id, |a| a.id.as_uuid()))
                .bind(
                    query
                        .after
                        .as_ref()
                        .map_or(String::new(), |a| a.title.clone()),
                )
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
            rows.iter()
                .map(|r| doc::<Product>(r, "doc", "product"))
                .collect()
        })
    }

    async fn delete_category(&self, id: CategoryId) -> Result<()> {
        retry!(self, async {
            let mut tx = self.pool.begin().await?;
            let found = sqlx::query("SELECT id FROM cw_categories WHERE id = $1 FOR UPDATE")
                .bind(id.as_uuid())
                .fetch_optional(&mut *tx)
                .await?;
            if found.is_none() {
                return Err(Error::not_found("category", id).into());
            }
            let row = sqlx::query(
                "SELECT (SELECT count(*) FROM cw_categories WHERE parent_id = $1) AS children,
                        (SELECT count(*) FROM cw_product_categories WHERE category_id = $1) AS products",
            )
            .bind(id.as_uuid())
            .fetch_one(&mut *tx)
            .await?;
            let children: i64 = col(&row, "children", "category")?;
            let products: i64 = col(&row, "products", "category")?;
            if children > 0 || products > 0 {
                return Err(Error::invalid(
                    "category",
                    format!("{id} has {children} subcategories and {products} products"),
                )
                .into());
            }
            sqlx::query("DELETE FROM cw_categories WHERE id = $1")
                .bind(id.as_uuid())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    async fn update_collection(&self, collection: Collection) -> Result<()> {
        retry!(self, async {
            let updated = sqlx::query("UPDATE cw_collections SET doc = $2 WHERE id = $1")
                .bind(collection.id().as_uuid())
                .bind(Json(to_json(&collection)?))
                .execute(&self.pool)
                .await?;
            if updated.rows_affected() == 0 {
                return Err(Error::not_found("collection", collection.id()).into());
            }
            Ok(())
        })
    }

    async fn delete_collection(&self, id: crate::id::CollectionId) -> Result<()> {
        retry!(self, async {
            let mut tx = self.pool.begin().await?;
            let found = sqlx::query("SELECT id FROM cw_collections WHERE id = $1 FOR UPDATE")
                .bind(id.as_uuid())
                .fetch_optional(&mut *tx)
                .await?;
            if found.is_none() {
                return Err(Error::not_found("collection", id).into());
            }
            let products: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM cw_product_collections WHERE collection_id = $1",
            )
            .bind(id.as_uuid())
            .fetch_one(&mut *tx)
            .await?;
            if products > 0 {
                return Err(
                    Error::invalid("collection", format!("{id} has {products} products")).into(),
                );
            }
            sqlx::query("DELETE FROM cw_collections WHERE id = $1")
                .bind(id.as_uuid())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    async fn delete_product(&self, id: ProductId) -> Result<()> {
        retry!(self, async {
            let mut tx = self.pool.begin().await?;
            let found = sqlx::query("SELECT id FROM cw_products WHERE id = $1 FOR UPDATE")
                .bind(id.as_uuid())
                .fetch_optional(&mut *tx)
                .await?;
            if found.is_none() {
                return Err(Error::not_found("product", id).into());
            }
            if first_sold_variant(&mut tx, id.as_uuid(), &[])
                .await?
                .is_some()
            {
                return Err(Error::invalid(
                    "product",
                    format!("{id} was reserved or ordered: archive it instead"),
                )
                .into());
            }
            // Variants, their stock rows and the product's links cascade.
            sqlx::query("DELETE FROM cw_products WHERE id = $1")
                .bind(id.as_uuid())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }
}

// ----- customers ---------------------------------------------------------

fn customer_from_row(row: &PgRow) -> Try<Customer> {
    let customer: Customer = doc(row, "doc", "customer")?;
    let version: i64 = col(row, "version", "customer")?;
    let email: String = col(row, "email", "customer")?;
    if u64::try_from(version).ok() != Some(customer.version()) || email != customer.email().as_str()
    {
        return Err(corrupt("customer", "columns disagree with the document"));
    }
    let hash: Option<String> = col(row, "password_hash", "customer")?;
    Ok(customer.with_password_hash(hash.map(PasswordHash::from_phc)))
}

/// Writes `saved` (its version already bumped) over the row at version
/// `old`: false when the row is not at `old` (or gone).
async fn update_customer(conn: &mut sqlx::PgConnection, saved: &Customer, old: i64) -> Try<bool> {
    let updated = sqlx::query(
        "UPDATE cw_customers SET version = $3, password_hash = $4, doc = $5, email = $6
         WHERE id = $1 AND version = $2",
    )
    .bind(saved.id().as_uuid())
    .bind(old)
    .bind(version_i64(saved.version())?)
    .bind(saved.password_hash().map(|h| h.as_phc().to_owned()))
    .bind(Json(to_json(saved)?))
    .bind(saved.email().as_str())
    .execute(&mut *conn)
    .await;
    match updated.map_err(Fail::from) {
        Ok(u) => Ok(u.rows_affected() == 1),
        Err(f) if constraint(&f).as_deref() == Some("cw_customers_email_key") => {
            Err(Error::AlreadyExists {
                what: "email",
                value: saved.email().to_string(),
            }
            .into())
        }
        Err(f) => Err(f),
    }
}

fn account_token_from_row(row: &PgRow) -> Try<AccountToken> {
    let purpose: String = col(row, "purpose", "account token")?;
    let purpose = crate::customer::TokenPurpose::from_name(&purpose)
        .ok_or_else(|| corrupt("account token", "unknown purpose"))?;
    let attempts: i32 = col(row, "attempts", "account token")?;
    let new_email: Option<String> = col(row, "new_email", "account token")?;
    let new_email = new_email
        .map(|e| Email::new(&e).map_err(|_| corrupt("account token", "malformed email")))
        .transpose()?;
    Ok(AccountToken::from_parts(
        purpose,
        col(row, "hash", "account token")?,
        col(row, "expires_at", "account token")?,
        u32::try_from(attempts).map_err(|_| corrupt("account token", "negative attempts"))?,
        new_email,
        col(row, "password_mark", "account token")?,
    ))
}

fn version_i64(version: u64) -> Result<i64> {
    i64::try_from(version).map_err(|_| Error::Overflow("version"))
}

#[async_trait]
impl CustomerStore for PgStore {
    async fn insert_customer(&self, customer: Customer) -> Result<()> {
        let version = version_i64(customer.version())?;
        retry!(self, async {
            let result = sqlx::query(
                "INSERT INTO cw_customers (id, email, version, password_hash, doc)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(customer.id().as_uuid())
            .bind(customer.email().as_str())
            .bind(version)
            .bind(customer.password_hash().map(|h| h.as_phc().to_owned()))
            .bind(Json(to_json(&customer)?))
            .execute(&self.pool)
            .await;
            match result.map_err(Fail::from) {
                Ok(_) => Ok(()),
                Err(f) if constraint(&f).as_deref() == Some("cw_customers_email_key") => {
                    Err(Error::AlreadyExists {
                        what: "email",
                        value: customer.email().to_string(),
                    }
                    .into())
                }
                Err(f) if sqlstate(&f).as_deref() == Some("23505") => Err(Error::AlreadyExists {
                    what: "customer",
                    value: customer.id().to_string(),
                }
                .into()),
                Err(f) => Err(f),
            }
        })
    }

    async fn save_customer(&self, customer: Customer) -> Result<Customer> {
        let old = version_i64(customer.version())?;
        let mut saved = customer.clone();
        saved.saved()?;
        retry!(self, async {
            let mut conn = self.pool.acquire().await?;
            if update_customer(&mut conn, &saved, old).await? {
                return Ok(saved.clone());
            }
            let exists = sqlx::query("SELECT 1 FROM cw_customers WHERE id = $1")
                .bind(saved.id().as_uuid())
                .fetch_optional(&mut *conn)
                .await?;
            Err(match exists {
                None => Error::not_found("customer", saved.id()),
                Some(_) => Error::Conflict("customer"),
            }
            .into())
        })
    }

    async fn issue_account_token(
        &self,
        holder: TokenHolder<'_>,
        token: AccountToken,
        now: DateTime<Utc>,
    ) -> Result<Option<CustomerId>> {
        // For an email: one statement either way — the account's id and
        // password mark if it exists, the decoy's and the empty password's
        // otherwise — and the same insert. For an account: only if it exists.
        let (sql, lookup, decoy) = match holder {
            TokenHolder::Email { email, decoy } => (
                "INSERT INTO cw_account_tokens
                    (customer_id, purpose, hash, expires_at, new_email, password_mark, issued_at)
                 SELECT coalesce(c.id, $2), $3, $4, $5, $6,
                        encode(sha256(convert_to(coalesce(c.password_hash, $8), 'UTF8')), 'hex'), $7
                 FROM (SELECT 1) AS one
                 LEFT JOIN cw_customers c ON c.email = $1 AND c.doc->>'kind' = 'registered'
                 RETURNING customer_id",
                email.as_str().to_owned(),
                decoy,
            ),
            TokenHolder::Customer(id) => (
                "INSERT INTO cw_account_tokens
                    (customer_id, purpose, hash, expires_at, new_email, password_mark, issued_at)
                 SELECT c.id, $3, $4, $5, $6,
                        encode(sha256(convert_to(coalesce(c.password_hash, $8), 'UTF8')), 'hex'), $7
                 FROM cw_customers c WHERE c.id::text = $1 AND c.id <> $2
                 RETURNING customer_id",
                id.as_uuid().to_string(),
                // No account has the nil id.
                CustomerId::from_uuid(Uuid::nil()),
            ),
        };
        let id: Option<Uuid> = retry!(self, async {
            Ok(sqlx::query_scalar(sql)
                .bind(&lookup)
                .bind(decoy.as_uuid())
                .bind(token.purpose().name())
                .bind(token.hash())
                .bind(token.expires_at())
                .bind(token.new_email().map(|e| e.as_str().to_owned()))
                .bind(now)
                .bind(crate::customer::DECOY_PHC)
                .fetch_optional(&self.pool)
                .await?)
        })?;
        match (id, holder) {
            (Some(id), _) if id != decoy.as_uuid() => Ok(Some(CustomerId::from_uuid(id))),
            (_, TokenHolder::Customer(id)) => Err(Error::not_found("customer", id)),
            _ => Ok(None),
        }
    }

    async fn use_account_token(
        &self,
        customer: CustomerId,
        presented: &str,
        change: &AccountChange,
        now: DateTime<Utc>,
    ) -> Result<Customer> {
        retry!(
            self,
            self.use_account_token_try(customer, presented, change, now)
        )
    }

    async fn prune_account_tokens(&self, now: DateTime<Utc>) -> Result<u64> {
        retry!(self, async {
            // Expired tokens, and those a newer one of the same account and
            // purpose replaced.
            let done = sqlx::query(
                "DELETE FROM cw_account_tokens t
                 WHERE t.expires_at <= $1
                    OR EXISTS (SELECT 1 FROM cw_account_tokens n
                               WHERE n.customer_id = t.customer_id AND n.purpose = t.purpose
                                 AND n.seq > t.seq)",
            )
            .bind(now)
            .execute(&self.pool)
            .await?;
            Ok(done.rows_affected())
        })
    }

    async fn customer(&self, id: CustomerId) -> Result<Customer> {
        retry!(self, async {
            let row = sqlx::query("SELECT * FROM cw_customers WHERE id = $1")
                .bind(id.as_uuid())
                .fetch_optional(&self.pool)
                .await?
                .ok_or_else(|| Error::not_found("customer", id))?;
            customer_from_row(&row)
        })
    }

    async fn customer_by_email(&self, email: &Email) -> Result<Option<Customer>> {
        retry!(self, async {
            let row = sqlx::query("SELECT * FROM cw_customers WHERE email = $1")
                .bind(email.as_str())
                .fetch_optional(&self.pool)
                .await?;
            row.as_ref().map(customer_from_row).transpose()
        })
    }

    async fn insert_group(&self, group: CustomerGroup) -> Result<()> {
        retry!(self, async {
            let result = sqlx::query(
                "INSERT INTO cw_customer_groups (id, name_key, doc) VALUES ($1, $2, $3)",
            )
            .bind(group.id().as_uuid())
            .bind(group.name().to_lowercase())
            .bind(Json(to_json(&group)?))
            .execute(&self.pool)
            .await;
            result
                .map(|_| ())
                .map_err(|e| already_exists(e.into(), "customer group", group.name().to_owned()))
        })
    }

    async fn erase_customer(
        &self,
        id: CustomerId,
        now: DateTime<Utc>,
    ) -> Result<crate::store::Erasure> {
        retry!(self, self.erase_customer_try(id, now))
    }

    async fn find_customers(
        &self,
        query: &crate::customer::CustomerQuery,
    ) -> Result<Vec<Customer>> {
        // The text as a LIKE pattern, its own wildcards escaped.
        let pattern = query.needle().map(|n| {
            let escaped = n
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            format!("%{escaped}%")
        });
        let limit = i64::try_from(query.limit).map_err(|_| Error::Overflow("limit"))?;
        retry!(self, async {
            let rows = sqlx::query(
                "SELECT * FROM cw_customers
                 WHERE ($1::uuid IS NULL OR id > $1)
                   AND ($2::text IS NULL OR email LIKE $2 ESCAPE '\\'
                        OR lower(doc->>'name') LIKE $2 ESCAPE '\\')
                   AND ($3::text IS NULL OR doc->'groups' ? $3)
                 ORDER BY id LIMIT $4",
            )
            .bind(query.after.map(|a| a.as_uuid()))
            .bind(&pattern)
            .bind(query.group.map(|g| g.as_uuid().to_string()))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(customer_from_row).collect()
        })
    }

    async fn groups(&self) -> Result<Vec<CustomerGroup>> {
        retry!(
            self,
            self.all_docs(
                "SELECT doc FROM cw_customer_groups ORDER BY id",
                "customer group"
            )
        )
    }
}

// ----- carts -------------------------------------------------------------

fn cart_from_row(row: &PgRow) -> Try<Cart> {
    let cart: Cart = doc(row, "doc", "cart")?;
    let version: i64 = col(row, "version", "cart")?;
    let active: bool = col(row, "active", "cart")?;
    if u64::try_from(version).ok() != Some(cart.version())
        || active != (cart.status() == CartStatus::Active)
    {
        return Err(corrupt("cart", "columns disagree with the document"));
    }
    Ok(cart)
}

/// Pricing inputs from rows of three kinds: 0 a variant with its
/// product's summary, 1 a coupon, 2 the pricing version.
fn pricing_inputs_from_rows(rows: Vec<PgRow>) -> Try<PricingInputs> {
    let mut out = PricingInputs::default();
    let mut version = None;
    for row in rows {
        let kind: i32 = col(&row, "kind", "pricing inputs")?;
        match kind {
            0 => {
                let variant: crate::catalog::Variant = doc(&row, "variant", "variant")?;
                let summary: ProductSummary = doc(&row, "summary", "product")?;
                let mut entry = summary.entry(variant);
                // The variant's stock locations; with exactly one, checkout
                // takes stock there without looking (with several, commit 1
                // finds the first by priority itself).
                entry.stock_location = match col::<Option<Vec<Uuid>>>(
                    &row,
                    "stock_locations",
                    "variant",
                )?
                .as_deref()
                {
                    Some([only]) => Some(LocationId::from_uuid(*only)),
                    _ => None,
                };
                out.entries.insert(entry.variant.id(), entry);
            }
            1 => out.coupons.push(coupon_from_row(&row)?),
            _ => {
                let v: i64 = col(&row, "version", "pricing version")?;
                version =
                    Some(u64::try_from(v).map_err(|_| corrupt("pricing version", "negative"))?);
            }
        }
    }
    out.version = version.ok_or_else(|| corrupt("pricing version", "missing row"))?;
    Ok(out)
}

fn cart_error(f: Fail, cart: &Cart) -> Fail {
    match sqlstate(&f).as_deref() {
        Some("23503") => match cart.customer_id() {
            Some(c) => Error::UnknownCustomer(c).into(),
            None => f,
        },
        Some("23505") => Error::AlreadyExists {
            what: "cart",
            value: cart.id().to_string(),
        }
        .into(),
        _ => f,
    }
}

impl PgStore {
    /// [`CustomerStore::erase_customer`] in one transaction: the customer's
    /// row locked, then its carts and orders (by account or by email), each
    /// rewritten through the domain's erasure.
    async fn use_account_token_try(
        &self,
        customer: CustomerId,
        presented: &str,
        change: &AccountChange,
        now: DateTime<Utc>,
    ) -> Try<Customer> {
        let mut tx = self.pool.begin().await?;
        // The customer's row lock orders every use of its tokens: racing
        // guesses are counted one after the other, a right one wins once.
        let Some(row) = sqlx::query("SELECT * FROM cw_customers WHERE id = $1 FOR UPDATE")
            .bind(customer.as_uuid())
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Err(Error::InvalidToken.into());
        };
        let stored = customer_from_row(&row)?;
        let Some(row) = sqlx::query(
            "SELECT * FROM cw_account_tokens WHERE customer_id = $1 AND purpose = $2
             ORDER BY seq DESC LIMIT 1",
        )
        .bind(customer.as_uuid())
        .bind(change.purpose().name())
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Err(Error::InvalidToken.into());
        };
        let seq: i64 = col(&row, "seq", "account token")?;
        let mut token = account_token_from_row(&row)?;
        match token.check(&stored, presented, now) {
            crate::customer::TokenCheck::Accepted => {}
            crate::customer::TokenCheck::Wrong => {
                sqlx::query("UPDATE cw_account_tokens SET attempts = $2 WHERE seq = $1")
                    .bind(seq)
                    .bind(i32::try_from(token.attempts()).unwrap_or(i32::MAX))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                return Err(Error::InvalidToken.into());
            }
            _ => return Err(Error::InvalidToken.into()),
        }
        let mut next = stored.clone();
        change.apply(&mut next, &token)?;
        next.saved()?;
        if !update_customer(&mut tx, &next, version_i64(stored.version())?).await? {
            return Err(Error::Conflict("customer").into());
        }
        sqlx::query("DELETE FROM cw_account_tokens WHERE customer_id = $1 AND purpose = $2")
            .bind(customer.as_uuid())
            .bind(change.purpose().name())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(next)
    }

    async fn erase_customer_try(
        &self,
        id: CustomerId,
        now: DateTime<Utc>,
    ) -> Try<crate::store::Erasure> {
        let mut tx = self.pool.begin().await?;
        // A payment still waiting keeps the order it will place: lock those
        // checkouts first (checkouts come first in the lock order).
        let waiting = sqlx::query(
            "SELECT key, awaiting FROM cw_checkouts
             WHERE awaiting IS NOT NULL
               AND (awaiting->'order'->>'customer_id' = $1
                    OR awaiting->'order'->>'email' = (SELECT email FROM cw_customers WHERE id = $2))
             ORDER BY key FOR UPDATE",
        )
        .bind(id.as_uuid().to_string())
        .bind(id.as_uuid())
        .fetch_all(&mut *tx)
        .await?;
        let row = sqlx::query("SELECT * FROM cw_customers WHERE id = $1 FOR UPDATE")
            .bind(id.as_uuid())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| Error::not_found("customer", id))?;
        let mut customer = customer_from_row(&row)?;
        if customer.erased() {
            return Ok(crate::store::Erasure {
                customer,
                carts: 0,
                orders: 0,
            });
        }
        let old = customer.email().as_str().to_owned();
        let erased = crate::customer::erased_email(id);
        customer.erase();
        customer.saved()?;
        sqlx::query(
            "UPDATE cw_customers SET email = $2, version = $3, password_hash = NULL, doc = $4
             WHERE id = $1",
        )
        .bind(id.as_uuid())
        .bind(customer.email().as_str())
        .bind(version_i64(customer.version())?)
        .bind(Json(to_json(&customer)?))
        .execute(&mut *tx)
        .await?;
        let rows = sqlx::query(
            "SELECT id, active, version, doc FROM cw_carts
             WHERE customer_id = $1 OR doc->>'email' = $2 ORDER BY id FOR UPDATE",
        )
        .bind(id.as_uuid())
        .bind(&old)
        .fetch_all(&mut *tx)
        .await?;
        let carts = rows.len() as u64;
        for row in rows {
            let mut cart = cart_from_row(&row)?;
            cart.erase_personal_data();
            cart.saved(now)?;
            sqlx::query(
                "UPDATE cw_carts SET version = $2, updated_at = $3, doc = $4 WHERE id = $1",
            )
            .bind(cart.id().as_uuid())
            .bind(version_i64(cart.version())?)
            .bind(now)
            .bind(Json(to_json(&cart)?))
            .execute(&mut *tx)
            .await?;
        }
        let rows = sqlx::query(
            "SELECT total, doc FROM cw_orders
             WHERE customer_id = $1 OR email = $2 ORDER BY id FOR UPDATE",
        )
        .bind(id.as_uuid())
        .bind(&old)
        .fetch_all(&mut *tx)
        .await?;
        let orders = rows.len() as u64;
        for row in rows {
            let mut order = order_from_row(&row)?;
            order.erase_personal_data(&erased);
            order.saved()?;
            sqlx::query("UPDATE cw_orders SET doc = $2::json, email = $3 WHERE id = $1")
                .bind(order.id().as_uuid())
                .bind(json_text(&order)?)
                .bind(order.email().map(|e| e.as_str().to_owned()))
                .execute(&mut *tx)
                .await?;
        }
        for row in waiting {
            let key: String = col(&row, "key", "checkout")?;
            let Json(mut awaiting): Json<AwaitingPayment> = col(&row, "awaiting", "checkout")?;
            awaiting.erase_personal_data(&erased);
            sqlx::query("UPDATE cw_checkouts SET awaiting = $2 WHERE key = $1")
                .bind(&key)
                .bind(Json(to_json(&awaiting)?))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(crate::store::Erasure {
            customer,
            carts,
            orders,
        })
    }

    async fn save_carts_try(&self, carts: &[Cart], now: DateTime<Utc>) -> Try<Vec<Cart>> {
        let mut tx = self.pool.begin().await?;
        let mut order: Vec<&Cart> = carts.iter().collect();
        order.sort_by_key(|c| c.id());
        let mut saved = Vec::with_capacity(carts.len());
        for cart in order {
            let mut next = cart.clone();
            next.saved(now)?;
            let updated = sqlx::query(
                "UPDATE cw_carts SET version = $3, customer_id = $4, active = $5, updated_at = $6, doc = $7
                 WHERE id = $1 AND version = $2 AND active",
            )
            .bind(cart.id().as_uuid())
            .bind(version_i64(cart.version())?)
            .bind(version_i64(next.version())?)
            .bind(next.customer_id().map(|c| c.as_uuid()))
            .bind(next.status() == CartStatus::Active)
            .bind(now)
            .bind(Json(to_json(&next)?))
            .execute(&mut *tx)
            .await
            .map_err(|e| cart_error(e.into(), cart))?;
            if updated.rows_affected() != 1 {
                let row = sqlx::query("SELECT active, version FROM cw_carts WHERE id = $1")
                    .bind(cart.id().as_uuid())
                    .fetch_optional(&mut *tx)
                    .await?;
                return Err(match row {
                    None => Error::not_found("cart", cart.id()),
                    Some(r) if !col::<bool>(&r, "active", "cart")? => {
                        Error::CartNotActive { cart_id: cart.id() }
                    }
                    Some(_) => Error::Conflict("cart"),
                }
                .into());
            }
            saved.push(next);
        }
        tx.commit().await?;
        // Hand them back in the order they were given.
        let mut by_id: HashMap<CartId, Cart> = saved.into_iter().map(|c| (c.id(), c)).collect();
        Ok(carts.iter().filter_map(|c| by_id.remove(&c.id())).collect())
    }
}

#[async_trait]
impl CartStore for PgStore {
    async fn insert_cart(&self, cart: Cart) -> Result<()> {
        retry!(self, async {
            sqlx::query(
                "INSERT INTO cw_carts (id, customer_id, currency, active, version, updated_at, doc)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(cart.id().as_uuid())
            .bind(cart.customer_id().map(|c| c.as_uuid()))
            .bind(cart.currency().code())
            .bind(cart.status() == CartStatus::Active)
            .bind(version_i64(cart.version())?)
            .bind(cart.updated_at())
            .bind(Json(to_json(&cart)?))
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(|e| cart_error(e.into(), &cart))
        })
    }

    async fn cart(&self, id: CartId) -> Result<Cart> {
        retry!(self, async {
            let row = sqlx::query("SELECT active, version, doc FROM cw_carts WHERE id = $1")
                .bind(id.as_uuid())
                .fetch_optional(&self.pool)
                .await?
                .ok_or_else(|| Error::not_found("cart", id))?;
            cart_from_row(&row)
        })
    }

    async fn save_carts(&self, carts: Vec<Cart>, now: DateTime<Utc>) -> Result<Vec<Cart>> {
        retry!(self, self.save_carts_try(&carts, now))
    }

    async fn active_cart_for(
        &self,
        customer: CustomerId,
        currency: Currency,
    ) -> Result<Option<Cart>> {
        retry!(self, async {
            let row = sqlx::query(
                "SELECT active, version, doc FROM cw_carts
                 WHERE customer_id = $1 AND currency = $2 AND active
                 ORDER BY updated_at DESC, id DESC LIMIT 1",
            )
            .bind(customer.as_uuid())
            .bind(currency.code())
            .fetch_optional(&self.pool)
            .await?;
            row.as_ref().map(cart_from_row).transpose()
        })
    }
}

// ----- inventory ---------------------------------------------------------

fn level_from_row(row: &PgRow) -> Try<StockLevel> {
    Ok(StockLevel {
        variant_id: VariantId::from_uuid(col(row, "variant_id", "stock")?),
        location_id: LocationId::from_uuid(col(row, "location_id", "stock")?),
        on_hand: col(row, "on_hand", "stock")?,
        reserved: col(row, "reserved", "stock")?,
    })
}

fn stock_fk_error(f: Fail, variant: VariantId, location: LocationId) -> Fail {
    match constraint(&f).as_deref() {
        Some("cw_stock_variant_id_fkey") => Error::not_found("variant", variant).into(),
        Some("cw_stock_location_id_fkey") => Error::not_found("location", location).into(),
        _ => f,
    }
}

/// Locks stock rows of `variants` (sorted by variant, then location) and
/// returns them grouped per variant in reservation order.
async fn lock_levels(
    tx: &mut PgConnection,
    variants: &[Uuid],
) -> Try<HashMap<VariantId, Vec<StockLevel>>> {
    if variants.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = sqlx::query(
        "SELECT s.variant_id, s.location_id, s.on_hand, s.reserved, l.priority
         FROM cw_stock s JOIN cw_locations l ON l.id = s.location_id
         WHERE s.variant_id = ANY($1)
         ORDER BY s.variant_id, s.location_id
         FOR UPDATE OF s",
    )
    .bind(variants)
    .fetch_all(&mut *tx)
    .await?;
    let mut grouped: HashMap<VariantId, Vec<(i32, StockLevel)>> = HashMap::new();
    for row in &rows {
        let level = level_from_row(row)?;
        let priority: i32 = col(row, "priority", "location")?;
        grouped
            .entry(level.variant_id)
            .or_default()
            .push((priority, level));
    }
    Ok(grouped
        .into_iter()
        .map(|(v, mut levels)| {
            levels.sort_by_key(|(p, l)| (*p, l.location_id));
            (v, levels.into_iter().map(|(_, l)| l).collect())
        })
        .collect())
}

/// Releases reservations (pending or allocated) and gives their units back.
/// Locks the reservations, then their stock rows in the fixed order.
async fn release_tx(tx: &mut PgConnection, ids: &[Uuid]) -> Try<u64> {
    if ids.is_empty() {
        return Ok(0);
    }
    let live: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM cw_reservations WHERE id = ANY($1) AND state IN ('pending', 'allocated')
         ORDER BY id FOR UPDATE",
    )
    .bind(ids)
    .fetch_all(&mut *tx)
    .await?;
    if live.is_empty() {
        return Ok(0);
    }
    sqlx::query(
        "SELECT 1 FROM cw_stock s
         WHERE (s.variant_id, s.location_id) IN
               (SELECT u.v, u.l FROM cw_reservations r,
                       unnest(r.variant_ids, r.location_ids) AS u(v, l)
                 WHERE r.id = ANY($1))
         ORDER BY s.variant_id, s.location_id FOR UPDATE",
    )
    .bind(&live)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "SELECT 1 FROM cw_usage_counters
         WHERE counter IN (SELECT counter FROM cw_reservation_claims WHERE reservation_id = ANY($1))
         ORDER BY counter FOR UPDATE",
    )
    .bind(&live)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "WITH r AS (
             UPDATE cw_reservations SET state = 'released', expires_at = NULL, order_id = NULL
             WHERE id = ANY($1) RETURNING id, variant_ids, location_ids, quantities),
         uc AS (
             UPDATE cw_usage_counters c SET used = c.used - q.a
             FROM (SELECT cl.counter, sum(cl.amount) AS a FROM cw_reservation_claims cl
                   JOIN r ON r.id = cl.reservation_id GROUP BY 1) q
             WHERE c.counter = q.counter),
         q AS (
             SELECT u.v, u.l, sum(u.q) AS q
             FROM r, unnest(r.variant_ids, r.location_ids, r.quantities) AS u(v, l, q) GROUP BY 1, 2)
         UPDATE cw_stock s SET reserved = s.reserved - q.q
         FROM q WHERE s.variant_id = q.v AND s.location_id = q.l",
    )
    .bind(&live)
    .execute(&mut *tx)
    .await?;
    Ok(live.len() as u64)
}

/// Releases expired pending reservations that hold any of `variants`,
/// skipping those another transaction is working on.
async fn release_expired_for(
    tx: &mut PgConnection,
    variants: &[Uuid],
    now: DateTime<Utc>,
) -> Try<u64> {
    let expired: Vec<Uuid> = sqlx::query_scalar(
        "SELECT r.id FROM cw_reservations r
         WHERE r.state = 'pending' AND r.expires_at <= $2
           AND r.variant_ids && $1
         ORDER BY r.id FOR UPDATE SKIP LOCKED",
    )
    .bind(variants)
    .bind(now)
    .fetch_all(&mut *tx)
    .await?;
    release_tx(tx, &expired).await
}

/// Plans and writes a reservation inside `tx`. With `checkout`, the
/// checkout record is pointed at it in the same statement.
async fn reserve_tx(
    tx: &mut PgConnection,
    requests: &[StockRequest],
    claims: &[UsageClaim],
    checkout: Option<&IdempotencyKey>,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Try<Reservation> {
    if expires_at <= now {
        return Err(Error::invalid("expires_at", "must be in the future").into());
    }
    let merged = merge_requests(requests)?;
    let mut tracked: Vec<Uuid> = merged
        .iter()
        .filter(|r| r.policy != crate::catalog::InventoryPolicy::Untracked)
        .map(|r| r.variant_id.as_uuid())
        .collect();
    tracked.sort();
    // A channel's requests are held only at its locations, read in this
    // transaction (a channel changed meanwhile waits for it).
    let channel = match merged.iter().find_map(|r| r.channel) {
        Some(c) => {
            let row = sqlx::query("SELECT doc FROM cw_channels WHERE id = $1 FOR SHARE")
                .bind(c.as_uuid())
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| Error::not_found("sales channel", c))?;
            Some(doc::<SalesChannel>(&row, "doc", "sales channel")?)
        }
        None => None,
    };
    let allowed = channel.as_ref().and_then(|c| c.locations.as_ref());
    let within =
        |levels: HashMap<VariantId, Vec<StockLevel>>| -> HashMap<VariantId, Vec<StockLevel>> {
            levels
                .into_iter()
                .map(|(v, l)| (v, crate::inventory::levels_within(&l, allowed)))
                .collect()
        };
    let mut levels = within(lock_levels(tx, &tracked).await?);
    let empty = Vec::new();
    let fallback = if merged
        .iter()
        .any(|r| needs_fallback(r, levels.get(&r.variant_id).unwrap_or(&empty)))
    {
        let ids: Option<Vec<Uuid>> = allowed.map(|a| a.iter().map(|l| l.as_uuid()).collect());
        sqlx::query_scalar::<_, Uuid>(
            "SELECT id FROM cw_locations WHERE ($1::uuid[] IS NULL OR id = ANY($1))
             ORDER BY priority, id LIMIT 1",
        )
        .bind(ids)
        .fetch_optional(&mut *tx)
        .await?
        .map(LocationId::from_uuid)
    } else {
        None
    };
    let plan = |levels: &HashMap<VariantId, Vec<StockLevel>>| -> Result<Vec<ReservationLine>> {
        let mut lines = Vec::new();
        for r in &merged {
            lines.extend(plan_reservation(
                r,
                levels.get(&r.variant_id).unwrap_or(&empty),
                fallback,
            )?);
        }
        Ok(lines)
    };
    let lines = match plan(&levels) {
        Ok(lines) => lines,
        Err(Error::OutOfStock { .. }) if release_expired_for(tx, &tracked, now).await? > 0 => {
            // Expired holds were in the way; count again without them.
            levels = within(lock_levels(tx, &tracked).await?);
            plan(&levels)?
        }
        Err(e) => return Err(e.into()),
    };

    let mut per_level: BTreeMap<(Uuid, Uuid), i64> = BTreeMap::new();
    for l in &lines {
        *per_level
            .entry((l.variant_id.as_uuid(), l.location_id.as_uuid()))
            .or_default() += i64::from(l.quantity);
    }
    let (sv, sl, sq): (Vec<Uuid>, Vec<Uuid>, Vec<i64>) = per_level
        .iter()
        .map(|((v, l), q)| (*v, *l, *q))
        .fold((vec![], vec![], vec![]), |mut acc, (v, l, q)| {
            acc.0.push(v);
            acc.1.push(l);
            acc.2.push(q);
            acc
        });
    let claims = merge_claims(claims)?;
    let counters: Vec<String> = claims.iter().map(|c| c.counter.clone()).collect();
    if !claims.is_empty() {
        // Make sure every counter has a row, then lock them in name order.
        sqlx::query("INSERT INTO cw_usage_counters (counter, used) SELECT unnest($1::text[]), 0 ON CONFLICT DO NOTHING")
            .bind(&counters)
            .execute(&mut *tx)
            .await?;
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT counter, used FROM cw_usage_counters WHERE counter = ANY($1) ORDER BY counter FOR UPDATE",
        )
        .bind(&counters)
        .fetch_all(&mut *tx)
        .await?;
        let used: HashMap<String, i64> = rows.into_iter().collect();
        for claim in &claims {
            let current = used.get(&claim.counter).copied().unwrap_or(0);
            let current =
                u64::try_from(current).map_err(|_| corrupt("usage counter", "negative"))?;
            apply_claim(claim, current)?;
        }
    }
    let reservation = Reservation {
        id: ReservationId::new(),
        checkout_key: checkout.cloned(),
        lines,
        claims,
        state: ReservationState::Pending { expires_at },
        created_at: now,
    };
    let amounts = reservation
        .claims
        .iter()
        .map(|c| i64::try_from(c.amount).map_err(|_| Error::Overflow("usage claim")))
        .collect::<Result<Vec<_>>>()?;
    let limits = reservation
        .claims
        .iter()
        .map(|c| i64::try_from(c.limit).map_err(|_| Error::Overflow("usage claim")))
        .collect::<Result<Vec<_>>>()?;
    sqlx::query(
        "WITH s AS (
             INSERT INTO cw_stock (variant_id, location_id, on_hand, reserved)
             SELECT v, l, 0, q FROM unnest($1::uuid[], $2::uuid[], $3::bigint[]) AS u(v, l, q)
             ON CONFLICT (variant_id, location_id) DO UPDATE SET reserved = cw_stock.reserved + EXCLUDED.reserved),
         r AS (
             INSERT INTO cw_reservations (id, checkout_key, state, expires_at, created_at,
                                          variant_ids, location_ids, quantities)
             VALUES ($4, $5, 'pending', $6, $7, $8, $9, $10)),
         cl AS (
             INSERT INTO cw_reservation_claims (reservation_id, counter, amount, limit_value)
             SELECT $4, k, a, m FROM unnest($11::text[], $12::bigint[], $13::bigint[]) AS u(k, a, m)),
         uc AS (
             UPDATE cw_usage_counters c SET used = c.used + u.a
             FROM unnest($11::text[], $12::bigint[]) AS u(k, a) WHERE c.counter = u.k)
         UPDATE cw_checkouts SET reservation_id = $4 WHERE key = $5",
    )
    .bind(&sv)
    .bind(&sl)
    .bind(&sq)
    .bind(reservation.id.as_uuid())
    .bind(checkout.map(IdempotencyKey::as_str))
    .bind(expires_at)
    .bind(now)
    .bind(uuids(&reservation.lines, |l| l.variant_id.as_uuid()))
    .bind(uuids(&reservation.lines, |l| l.location_id.as_uuid()))
    .bind(reservation.lines.iter().map(|l| i64::from(l.quantity)).collect::<Vec<_>>())
    .bind(&counters)
    .bind(&amounts)
    .bind(&limits)
    .execute(&mut *tx)
    .await?;
    Ok(reservation)
}

/// A reservation's lines, kept inline as three arrays of one length
/// (migration 0014).
fn reservation_lines(row: &PgRow) -> Try<Vec<ReservationLine>> {
    let variants: Vec<Uuid> = col(row, "variant_ids", "reservation")?;
    let locations: Vec<Uuid> = col(row, "location_ids", "reservation")?;
    let quantities: Vec<i64> = col(row, "quantities", "reservation")?;
    if variants.len() != locations.len() || variants.len() != quantities.len() {
        return Err(corrupt("reservation", "lines of unequal length"));
    }
    variants
        .into_iter()
        .zip(locations)
        .zip(quantities)
        .map(|((variant, location), quantity)| {
            Ok(ReservationLine {
                variant_id: VariantId::from_uuid(variant),
                location_id: LocationId::from_uuid(location),
                quantity: u32::try_from(quantity)
                    .map_err(|_| corrupt("reservation", "quantity out of range"))?,
            })
        })
        .collect()
}

async fn load_reservation(conn: &mut PgConnection, id: ReservationId) -> Try<Reservation> {
    let row = sqlx::query(
        "SELECT checkout_key, state, expires_at, order_id, created_at,
                variant_ids, location_ids, quantities
         FROM cw_reservations WHERE id = $1",
    )
    .bind(id.as_uuid())
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| Error::not_found("reservation", id))?;
    let lines = reservation_lines(&row)?;
    let claims = sqlx::query(
        "SELECT counter, amount, limit_value FROM cw_reservation_claims
         WHERE reservation_id = $1 ORDER BY counter",
    )
    .bind(id.as_uuid())
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| {
        let amount: i64 = col(r, "amount", "reservation")?;
        let limit: i64 = col(r, "limit_value", "reservation")?;
        Ok(UsageClaim {
            counter: col(r, "counter", "reservation")?,
            amount: u64::try_from(amount).map_err(|_| corrupt("reservation", "negative claim"))?,
            limit: u64::try_from(limit).map_err(|_| corrupt("reservation", "negative limit"))?,
        })
    })
    .collect::<Try<Vec<_>>>()?;
    let state: String = col(&row, "state", "reservation")?;
    let expires_at: Option<DateTime<Utc>> = col(&row, "expires_at", "reservation")?;
    let order_id: Option<Uuid> = col(&row, "order_id", "reservation")?;
    let state = match (state.as_str(), expires_at, order_id) {
        ("pending", Some(expires_at), _) => ReservationState::Pending { expires_at },
        ("allocated", _, Some(o)) => ReservationState::Allocated {
            order_id: OrderId::from_uuid(o),
        },
        ("committed", _, _) => ReservationState::Committed,
        ("released", _, _) => ReservationState::Released,
        (other, _, _) => return Err(corrupt("reservation", format!("impossible state {other}"))),
    };
    let key: Option<String> = col(&row, "checkout_key", "reservation")?;
    Ok(Reservation {
        id,
        checkout_key: key
            .map(IdempotencyKey::new)
            .transpose()
            .map_err(|e| corrupt("reservation", e))?,
        lines,
        claims,
        state,
        created_at: col(&row, "created_at", "reservation")?,
    })
}

impl PgStore {
    async fn stock_try(&self, variant: VariantId) -> Try<StockSummary> {
        let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM cw_variants WHERE id = $1")
            .bind(variant.as_uuid())
            .fetch_optional(&self.pool)
            .await?;
        if exists.is_none() {
            return Err(Error::not_found("variant", variant).into());
        }
        let rows = sqlx::query(
            "SELECT s.variant_id, s.location_id, s.on_hand, s.reserved
             FROM cw_stock s JOIN cw_locations l ON l.id = s.location_id
             WHERE s.variant_id = $1 ORDER BY l.priority, l.id",
        )
        .bind(variant.as_uuid())
        .fetch_all(&self.pool)
        .await?;
        let levels = rows.iter().map(level_from_row).collect::<Try<Vec<_>>>()?;
        Ok(StockSummary::new(variant, levels))
    }

    async fn adjust_try(
        &self,
        variant: VariantId,
        location: LocationId,
        delta: i64,
    ) -> Try<StockLevel> {
        let mut tx = self.pool.begin().await?;
        let current: Option<(i64, i64)> = sqlx::query_as(
            "SELECT on_hand, reserved FROM cw_stock WHERE variant_id = $1 AND location_id = $2 FOR UPDATE",
        )
        .bind(variant.as_uuid())
        .bind(location.as_uuid())
        .fetch_optional(&mut *tx)
        .await?;
        let (on_hand, reserved) = current.unwrap_or((0, 0));
        let next = inventory::check_on_hand(
            on_hand
                .checked_add(delta)
                .ok_or_else(|| Error::Overflow("stock"))?,
        )?;
        sqlx::query(
            "INSERT INTO cw_stock (variant_id, location_id, on_hand, reserved) VALUES ($1, $2, $3, 0)
             ON CONFLICT (variant_id, location_id) DO UPDATE SET on_hand = EXCLUDED.on_hand",
        )
        .bind(variant.as_uuid())
        .bind(location.as_uuid())
        .bind(next)
        .execute(&mut *tx)
        .await
        .map_err(|e| stock_fk_error(e.into(), variant, location))?;
        tx.commit().await?;
        Ok(StockLevel {
            variant_id: variant,
            location_id: location,
            on_hand: next,
            reserved,
        })
    }

    async fn release_try(&self, id: ReservationId) -> Try<Reservation> {
        let mut tx = self.pool.begin().await?;
        load_reservation(&mut tx, id).await?;
        release_tx(&mut tx, &[id.as_uuid()]).await?;
        let r = load_reservation(&mut tx, id).await?;
        tx.commit().await?;
        Ok(r)
    }

    async fn commit_try(&self, id: ReservationId, now: DateTime<Utc>) -> Try<Reservation> {
        let mut tx = self.pool.begin().await?;
        let state: Option<String> =
            sqlx::query_scalar("SELECT state FROM cw_reservations WHERE id = $1 FOR UPDATE")
                .bind(id.as_uuid())
                .fetch_optional(&mut *tx)
                .await?;
        if state.is_none() {
            return Err(Error::not_found("reservation", id).into());
        }
        let r = load_reservation(&mut tx, id).await?;
        match r.state {
            ReservationState::Committed => return Ok(r),
            ReservationState::Released => return Err(Error::ReservationExpired.into()),
            ReservationState::Pending { expires_at } if expires_at <= now => {
                release_tx(&mut tx, &[id.as_uuid()]).await?;
                tx.commit().await?;
                return Err(Error::ReservationExpired.into());
            }
            ReservationState::Pending { .. } | ReservationState::Allocated { .. } => {}
        }
        sqlx::query(
            "SELECT 1 FROM cw_stock s
             WHERE (s.variant_id, s.location_id) IN
                   (SELECT u.v, u.l FROM cw_reservations r,
                           unnest(r.variant_ids, r.location_ids) AS u(v, l)
                     WHERE r.id = $1)
             ORDER BY s.variant_id, s.location_id FOR UPDATE",
        )
        .bind(id.as_uuid())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "WITH r AS (
                 UPDATE cw_reservations SET state = 'committed', expires_at = NULL, order_id = NULL
                 WHERE id = $1 RETURNING variant_ids, location_ids, quantities),
             q AS (
                 SELECT u.v, u.l, sum(u.q) AS q
                 FROM r, unnest(r.variant_ids, r.location_ids, r.quantities) AS u(v, l, q)
                 GROUP BY 1, 2)
             UPDATE cw_stock s SET reserved = s.reserved - q.q, on_hand = s.on_hand - q.q
             FROM q WHERE s.variant_id = q.v AND s.location_id = q.l",
        )
        .bind(id.as_uuid())
        .execute(&mut *tx)
        .await?;
        let r = load_reservation(&mut tx, id).await?;
        tx.commit().await?;
        Ok(r)
    }

    async fn release_expired_batch(&self, now: DateTime<Utc>) -> Try<u64> {
        let mut tx = self.pool.begin().await?;
        let ids: Vec<Uuid> = sqlx::query_scalar(
            "SELECT id FROM cw_reservations WHERE state = 'pending' AND expires_at <= $1
             ORDER BY id LIMIT 200 FOR UPDATE SKIP LOCKED",
        )
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        let n = release_tx(&mut tx, &ids).await?;
        tx.commit().await?;
        Ok(n)
    }
}

#[async_trait]
impl InventoryStore for PgStore {
    async fn insert_location(&self, location: Location) -> Result<()> {
        let priority =
            i32::try_from(location.priority()).map_err(|_| Error::Overflow("priority"))?;
        retry!(self, async {
            let result =
                sqlx::query("INSERT INTO cw_locations (id, priority, doc) VALUES ($1, $2, $3)")
                    .bind(location.id().as_uuid())
                    .bind(priority)
                    .bind(Json(to_json(&location)?))
                    .execute(&self.pool)
                    .await;
            result
                .map(|_| ())
                .map_err(|e| already_exists(e.into(), "location", location.id().to_string()))
        })
    }

    async fn locations(&self) -> Result<Vec<Location>> {
        retry!(
            self,
            self.all_docs(
                "SELECT doc FROM cw_locations ORDER BY priority, id",
                "location"
            )
        )
    }

    async fn set_stock(
        &self,
        variant: VariantId,
        location: LocationId,
        on_hand: i64,
    ) -> Result<StockLevel> {
        let on_hand = inventory::check_on_hand(on_hand)?;
        retry!(self, async {
            let row = sqlx::query(
                "INSERT INTO cw_stock (variant_id, location_id, on_hand, reserved) VALUES ($1, $2, $3, 0)
                 ON CONFLICT (variant_id, location_id) DO UPDATE SET on_hand = EXCLUDED.on_hand
                 RETURNING variant_id, location_id, on_hand, reserved",
            )
            .bind(variant.as_uuid())
            .bind(location.as_uuid())
            .bind(on_hand)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| stock_fk_error(e.into(), variant, location))?;
            level_from_row(&row)
        })
    }

    async fn adjust_stock(
        &self,
        variant: VariantId,
        location: LocationId,
        delta: i64,
    ) -> Result<StockLevel> {
        retry!(self, self.adjust_try(variant, location, delta))
    }

    async fn stock(&self, variant: VariantId) -> Result<StockSummary> {
        retry!(self, self.stock_try(variant))
    }

    async fn reserve(
        &self,
        requests: &[StockRequest],
        claims: &[UsageClaim],
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Reservation> {
        retry!(self, async {
            let mut tx = self.pool.begin().await?;
            let r = reserve_tx(&mut tx, requests, claims, None, expires_at, now).await?;
            tx.commit().await?;
            Ok::<_, Fail>(r)
        })
    }

    async fn usage(&self, counter: &str) -> Result<u64> {
        retry!(self, async {
            let used: Option<i64> =
                sqlx::query_scalar("SELECT used FROM cw_usage_counters WHERE counter = $1")
                    .bind(counter)
                    .fetch_optional(&self.pool)
                    .await?;
            u64::try_from(used.unwrap_or(0)).map_err(|_| corrupt("usage counter", "negative"))
        })
    }

    async fn release(&self, id: ReservationId, _now: DateTime<Utc>) -> Result<Reservation> {
        retry!(self, self.release_try(id))
    }

    async fn commit(&self, id: ReservationId, now: DateTime<Utc>) -> Result<Reservation> {
        retry!(self, self.commit_try(id, now))
    }

    async fn reservation(&self, id: ReservationId) -> Result<Reservation> {
        retry!(self, async {
            let mut conn = self.pool.acquire().await?;
            load_reservation(&mut conn, id).await
        })
    }

    async fn release_expired(&self, now: DateTime<Utc>) -> Result<u64> {
        let mut total = 0;
        loop {
            let n = retry!(self, self.release_expired_batch(now))?;
            total += n;
            if n < 200 {
                return Ok(total);
            }
        }
    }

    async fn flag_low_stock(
        &self,
        variant: VariantId,
        low: bool,
        event: EventKind,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let kind = to_json(&event)?;
        let sql = if low {
            "WITH changed AS (INSERT INTO cw_low_stock (variant_id) VALUES ($1)
                              ON CONFLICT DO NOTHING RETURNING variant_id),
                  ev AS (INSERT INTO cw_events (id, occurred_at, kind)
                         SELECT $2, $3, $4 WHERE EXISTS (SELECT 1 FROM changed) RETURNING sequence)
             SELECT count(*) FROM changed"
        } else {
            "WITH changed AS (DELETE FROM cw_low_stock WHERE variant_id = $1 RETURNING variant_id),
                  ev AS (INSERT INTO cw_events (id, occurred_at, kind)
                         SELECT $2, $3, $4 WHERE EXISTS (SELECT 1 FROM changed) RETURNING sequence)
             SELECT count(*) FROM changed"
        };
        retry!(self, async {
            let n: i64 = sqlx::query_scalar(sql)
                .bind(variant.as_uuid())
                .bind(EventId::new().as_uuid())
                .bind(now)
                .bind(Json(&kind))
                .fetch_one(&self.pool)
                .await?;
            Ok(n == 1)
        })
    }
}

// ----- checkout ----------------------------------------------------------

fn checkout_from_row(row: &PgRow) -> Try<CheckoutRecord> {
    let e = "checkout";
    let state: String = col(row, "state", e)?;
    let order_id: Option<Uuid> = col(row, "order_id", e)?;
    let failure: Option<Json<CheckoutFailure>> = col(row, "failure", e)?;
    let state = match (state.as_str(), order_id, failure) {
        ("in_progress", _, _) => CheckoutState::InProgress,
        ("awaiting_payment", _, _) => CheckoutState::AwaitingPayment,
        ("retryable", _, _) => CheckoutState::Retryable,
        ("completed", Some(o), _) => CheckoutState::Completed {
            order_id: OrderId::from_uuid(o),
        },
        ("failed", _, Some(Json(f))) => CheckoutState::Failed { failure: f },
        (other, _, _) => return Err(corrupt(e, format!("impossible state {other}"))),
    };
    let key: String = col(row, "key", e)?;
    let attempt: i32 = col(row, "attempt", e)?;
    Ok(CheckoutRecord {
        key: IdempotencyKey::new(key).map_err(|err| corrupt(e, err))?,
        cart_id: CartId::from_uuid(col(row, "cart_id", e)?),
        payment_token: col(row, "payment_token", e)?,
        attempt: u32::try_from(attempt).map_err(|_| corrupt(e, "attempt out of range"))?,
        state,
        reservation_id: col::<Option<Uuid>>(row, "reservation_id", e)?
            .map(ReservationId::from_uuid),
        lease_token: col(row, "lease_token", e)?,
        lease_until: col(row, "lease_until", e)?,
        created_at: col(row, "created_at", e)?,
        awaiting: col::<Option<Json<AwaitingPayment>>>(row, "awaiting", e)?
            .map(|Json(a)| Box::new(a)),
    })
}

fn attempt_i32(attempt: u32) -> Result<i32> {
    i32::try_from(attempt).map_err(|_| Error::Overflow("checkout attempts"))
}

impl PgStore {
    async fn begin_try(&self, b: &BeginCheckout) -> Try<CheckoutClaim> {
        let token = Uuid::new_v4();
        let inserted: Option<Uuid> = sqlx::query_scalar(
            "INSERT INTO cw_checkouts (key, cart_id, payment_token, attempt, state, lease_token, lease_until, created_at)
             VALUES ($1, $2, $3, 1, 'in_progress', $4, $5, $6)
             ON CONFLICT (key) DO NOTHING RETURNING lease_token",
        )
        .bind(b.key.as_str())
        .bind(b.cart_id.as_uuid())
        .bind(&b.payment_token)
        .bind(token)
        .bind(b.lease_until)
        .bind(b.now)
        .fetch_optional(&self.pool)
        .await?;
        if inserted.is_some() {
            return Ok(CheckoutClaim::Claimed(Lease {
                key: b.key.clone(),
                token,
                attempt: 1,
            }));
        }
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query("SELECT * FROM cw_checkouts WHERE key = $1 FOR UPDATE")
            .bind(b.key.as_str())
            .fetch_optional(&mut *tx)
            .await?
            // Deleted between the two statements (an untouched attempt ended): try again.
            .ok_or_else(|| Error::Conflict("checkout"))?;
        let record = checkout_from_row(&row)?;
        if record.cart_id != b.cart_id || record.payment_token != b.payment_token {
            return Err(Error::IdempotencyConflict(b.key.to_string()).into());
        }
        let claim = match record.state {
            CheckoutState::Completed { order_id } => CheckoutClaim::Completed(order_id),
            CheckoutState::Failed { failure } => CheckoutClaim::Failed(failure),
            CheckoutState::InProgress => CheckoutClaim::InProgress {
                lease_until: record.lease_until,
            },
            CheckoutState::AwaitingPayment => match record.awaiting {
                Some(a) => CheckoutClaim::AwaitingPayment(Box::new(a.session)),
                None => return Err(corrupt("checkout", "waiting without its payment")),
            },
            CheckoutState::Retryable => {
                let attempt = record
                    .attempt
                    .checked_add(1)
                    .ok_or_else(|| Error::Overflow("checkout attempts"))?;
                sqlx::query(
                    "UPDATE cw_checkouts SET attempt = $2, state = 'in_progress', lease_token = $3, lease_until = $4
                     WHERE key = $1",
                )
                .bind(b.key.as_str())
                .bind(attempt_i32(attempt)?)
                .bind(token)
                .bind(b.lease_until)
                .execute(&mut *tx)
                .await?;
                CheckoutClaim::Claimed(Lease {
                    key: b.key.clone(),
                    token,
                    attempt,
                })
            }
        };
        tx.commit().await?;
        Ok(claim)
    }

    /// Locks the checkout row if `lease` still holds it; returns its reservation.
    async fn leased(tx: &mut PgConnection, lease: &Lease) -> Try<(Option<Uuid>, i32)> {
        let row: Option<(Option<Uuid>, i32)> = sqlx::query_as(
            "SELECT reservation_id, attempt FROM cw_checkouts
             WHERE key = $1 AND lease_token = $2 AND state = 'in_progress' FOR UPDATE",
        )
        .bind(lease.key.as_str())
        .bind(lease.token)
        .fetch_optional(&mut *tx)
        .await?;
        row.ok_or(Fail::Domain(Error::LeaseLost))
    }

    async fn reserve_for_checkout_try(
        &self,
        lease: &Lease,
        requests: &[StockRequest],
        claims: &[UsageClaim],
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Try<Reservation> {
        let mut tx = self.pool.begin().await?;
        let (previous, _) = Self::leased(&mut tx, lease).await?;
        if let Some(prev) = previous {
            release_tx(&mut tx, &[prev]).await?;
        }
        let r = reserve_tx(&mut tx, requests, claims, Some(&lease.key), expires_at, now).await?;
        tx.commit().await?;
        Ok(r)
    }

    async fn place_try(&self, lease: &Lease, order: &Order, now: DateTime<Utc>) -> Try<Order> {
        let body = json_text(order)?;
        let event = to_json(&EventKind::OrderPlaced {
            order_id: order.id,
            total: order.total(),
        })?;
        let now_json = to_json(&now)?;
        // One call of `cw_place_order` (migration 0015): every write is
        // gated on the lease, the live reservation and the cart's version,
        // so it all happens or none does.
        let placed = sqlx::query(
            "SELECT cw_place_order($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::json, $13, $14, $15, $16, $17)",
        )
        .bind(lease.key.as_str())
        .bind(lease.token)
        .bind(now)
        .bind(order.reservation_id.as_uuid())
        .bind(order.id.as_uuid())
        .bind(Json(&now_json))
        .bind(order.cart_id.as_uuid())
        .bind(version_i64(order.pricing.cart_version)?)
        .bind(order.customer_id.map(|c| c.as_uuid()))
        .bind(order.pricing.currency.code())
        .bind(order.total().amount())
        .bind(&body)
        .bind(EventId::new().as_uuid())
        .bind(Json(&event))
        .bind(&order.payment.reference)
        .bind(order.has_pending_work())
        .bind(order.email().map(|e| e.as_str()))
        .execute(&self.pool)
        .await;
        // Nothing was written when it raised: find out why.
        let Err(e) = placed else {
            return Ok(order.clone());
        };
        let fail = Fail::from(e);
        match sqlstate(&fail).as_deref() {
            Some("CW003") => Err(self.why_not_leased(lease, order, now).await?.into()),
            Some("CW004") => Err(self.why_cart_refused(order).await?.into()),
            _ => Err(fail),
        }
    }

    async fn why_not_leased(&self, lease: &Lease, order: &Order, now: DateTime<Utc>) -> Try<Error> {
        let row = sqlx::query(
            "SELECT c.state, c.lease_token, c.reservation_id, r.state AS r_state, r.expires_at
             FROM cw_checkouts c LEFT JOIN cw_reservations r ON r.id = c.reservation_id WHERE c.key = $1",
        )
        .bind(lease.key.as_str())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(Error::LeaseLost);
        };
        let state: String = col(&row, "state", "checkout")?;
        let token: Uuid = col(&row, "lease_token", "checkout")?;
        if state != "in_progress" || token != lease.token {
            return Ok(Error::LeaseLost);
        }
        let reservation: Option<Uuid> = col(&row, "reservation_id", "checkout")?;
        match reservation {
            None => Ok(Error::ReservationExpired),
            Some(r) if r != order.reservation_id.as_uuid() => Ok(Error::invalid(
                "order",
                "does not carry the checkout's reservation",
            )),
            Some(_) => {
                let r_state: Option<String> = col(&row, "r_state", "reservation")?;
                let expires: Option<DateTime<Utc>> = col(&row, "expires_at", "reservation")?;
                if r_state.as_deref() != Some("pending") || expires.is_none_or(|e| e <= now) {
                    Ok(Error::ReservationExpired)
                } else {
                    Ok(Error::Conflict("checkout"))
                }
            }
        }
    }

    async fn why_cart_refused(&self, order: &Order) -> Try<Error> {
        let row = sqlx::query("SELECT active, version FROM cw_carts WHERE id = $1")
            .bind(order.cart_id.as_uuid())
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else {
            return Ok(Error::not_found("cart", order.cart_id));
        };
        if !col::<bool>(&row, "active", "cart")? {
            return Ok(Error::CartNotActive {
                cart_id: order.cart_id,
            });
        }
        if let Some(c) = order.customer_id {
            let exists: Option<i32> =
                sqlx::query_scalar("SELECT 1 FROM cw_customers WHERE id = $1")
                    .bind(c.as_uuid())
                    .fetch_optional(&self.pool)
                    .await?;
            if exists.is_none() {
                return Ok(Error::UnknownCustomer(c));
            }
        }
        Ok(Error::Conflict("cart"))
    }

    async fn end_try(&self, lease: &Lease, end: &CheckoutEnd) -> Try<()> {
        let mut tx = self.pool.begin().await?;
        let (reservation, attempt) = Self::leased(&mut tx, lease).await?;
        if matches!(end, CheckoutEnd::Untouched) && reservation.is_none() && attempt == 1 {
            sqlx::query("DELETE FROM cw_checkouts WHERE key = $1")
                .bind(lease.key.as_str())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(());
        }
        if let Some(r) = reservation {
            release_tx(&mut tx, &[r]).await?;
        }
        let (state, failure, attempt) = match end {
            CheckoutEnd::Failed(f) => ("failed", Some(to_json(f)?), attempt),
            CheckoutEnd::Retryable => ("retryable", None, attempt),
            CheckoutEnd::Untouched if reservation.is_none() => {
                ("retryable", None, (attempt - 1).max(1))
            }
            CheckoutEnd::Untouched => ("retryable", None, attempt),
        };
        sqlx::query(
            "UPDATE cw_checkouts SET state = $2, failure = $3, reservation_id = NULL, attempt = $4,
                    awaiting = NULL
             WHERE key = $1",
        )
        .bind(lease.key.as_str())
        .bind(state)
        .bind(failure.map(Json))
        .bind(attempt)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

impl PgStore {
    /// One attempt of [`CheckoutStore::begin_and_reserve`]: one call of the
    /// server-side function `cw_begin_and_reserve` (migrations 0004, 0005, 0014).
    async fn begin_and_reserve_try(
        &self,
        b: &BeginCheckout,
        tracked: &[StockRequest],
        claims: &[UsageClaim],
        expires_at: DateTime<Utc>,
    ) -> Try<Option<(Lease, Reservation)>> {
        let token = Uuid::new_v4();
        let id = ReservationId::new();
        let to_i64 = |n: u64| i64::try_from(n).map_err(|_| Error::Overflow("usage claim"));
        let answer: std::result::Result<Option<Vec<Uuid>>, sqlx::Error> = sqlx::query_scalar(
            "SELECT cw_begin_and_reserve($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(b.key.as_str())
        .bind(b.cart_id.as_uuid())
        .bind(&b.payment_token)
        .bind(token)
        .bind(b.lease_until)
        .bind(b.now)
        .bind(id.as_uuid())
        .bind(expires_at)
        .bind(
            tracked
                .iter()
                .map(|r| r.variant_id.as_uuid())
                .collect::<Vec<_>>(),
        )
        .bind(
            tracked
                .iter()
                .map(|r| r.location.map(|l| l.as_uuid()))
                .collect::<Vec<_>>(),
        )
        .bind(
            tracked
                .iter()
                .map(|r| i64::from(r.quantity))
                .collect::<Vec<_>>(),
        )
        .bind(claims.iter().map(|c| c.counter.clone()).collect::<Vec<_>>())
        .bind(
            claims
                .iter()
                .map(|c| to_i64(c.amount))
                .collect::<Result<Vec<_>>>()?,
        )
        .bind(
            claims
                .iter()
                .map(|c| to_i64(c.limit))
                .collect::<Result<Vec<_>>>()?,
        )
        .fetch_one(&self.pool)
        .await;
        let locations = match answer {
            Ok(Some(locations)) => locations,
            Ok(None) => return Err(corrupt("checkout", "no answer from cw_begin_and_reserve")),
            // The key exists (23505), the stock is short (CW001) or a usage
            // limit would be passed (CW002): nothing was written.
            Err(sqlx::Error::Database(d))
                if matches!(d.code().as_deref(), Some("23505" | "CW001" | "CW002")) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        if locations.len() != tracked.len() {
            return Err(corrupt("reservation", "one location per line expected"));
        }
        let lines = tracked
            .iter()
            .zip(locations)
            .map(|(r, location)| ReservationLine {
                variant_id: r.variant_id,
                location_id: LocationId::from_uuid(location),
                quantity: r.quantity,
            })
            .collect();
        let lease = Lease {
            key: b.key.clone(),
            token,
            attempt: 1,
        };
        let reservation = Reservation {
            id,
            checkout_key: Some(b.key.clone()),
            lines,
            claims: claims.to_vec(),
            state: ReservationState::Pending { expires_at },
            created_at: b.now,
        };
        Ok(Some((lease, reservation)))
    }
}

#[async_trait]
impl CheckoutStore for PgStore {
    async fn begin_and_reserve(
        &self,
        begin: BeginCheckout,
        requests: &[StockRequest],
        claims: &[UsageClaim],
        expires_at: DateTime<Utc>,
    ) -> Result<Option<(Lease, Reservation)>> {
        if expires_at <= begin.now {
            return Err(Error::invalid("expires_at", "must be in the future"));
        }
        let merged = crate::inventory::merge_requests(requests)?;
        // A channel's locations, and backorders that may need a fallback
        // location: the general path.
        if merged.iter().any(|r| {
            r.channel.is_some()
                || r.policy
                    == (crate::catalog::InventoryPolicy::Tracked {
                        allow_backorder: true,
                    })
        }) {
            return Ok(None);
        }
        let mut tracked: Vec<StockRequest> = merged
            .into_iter()
            .filter(|r| r.policy != crate::catalog::InventoryPolicy::Untracked)
            .collect();
        // Locked in id order, as the general path locks.
        tracked.sort_by_key(|r| r.variant_id);
        let claims = crate::inventory::merge_claims(claims)?;
        let _permit = self.reservation_permit().await?;
        retry!(
            self,
            self.begin_and_reserve_try(&begin, &tracked, &claims, expires_at)
        )
    }

    async fn begin_checkout(&self, begin: BeginCheckout) -> Result<CheckoutClaim> {
        let mut tries = 0;
        loop {
            match retry!(self, self.begin_try(&begin)) {
                // The record vanished between two statements; look again.
                Err(Error::Conflict("checkout")) if tries < self.retries => tries += 1,
                other => return other,
            }
        }
    }

    async fn reserve_for_checkout(
        &self,
        lease: &Lease,
        requests: &[StockRequest],
        claims: &[UsageClaim],
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Reservation> {
        let _permit = self.reservation_permit().await?;
        retry!(
            self,
            self.reserve_for_checkout_try(lease, requests, claims, expires_at, now)
        )
    }

    async fn place_order(&self, lease: &Lease, order: Order, now: DateTime<Utc>) -> Result<Order> {
        retry!(self, async {
            self.place_try(lease, &order, now).await.map_err(|f| {
                if sqlstate(&f).as_deref() == Some("23505") {
                    Error::AlreadyExists {
                        what: "order",
                        value: order.id.to_string(),
                    }
                    .into()
                } else {
                    f
                }
            })
        })
    }

    async fn end_checkout(
        &self,
        lease: &Lease,
        end: CheckoutEnd,
        _now: DateTime<Utc>,
    ) -> Result<()> {
        retry!(self, self.end_try(lease, &end))
    }

    async fn checkout(&self, key: &IdempotencyKey) -> Result<Option<CheckoutRecord>> {
        retry!(self, async {
            let row = sqlx::query("SELECT * FROM cw_checkouts WHERE key = $1")
                .bind(key.as_str())
                .fetch_optional(&self.pool)
                .await?;
            row.as_ref().map(checkout_from_row).transpose()
        })
    }

    async fn prune_checkouts(&self, before: DateTime<Utc>) -> Result<u64> {
        retry!(self, async {
            let done = sqlx::query(
                "DELETE FROM cw_checkouts WHERE created_at < $1
                 AND state NOT IN ('in_progress', 'awaiting_payment')",
            )
            .bind(before)
            .execute(&self.pool)
            .await?;
            Ok(done.rows_affected())
        })
    }

    async fn stale_checkouts(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<CheckoutRecord>> {
        let limit = limit_i64(limit)?;
        retry!(self, async {
            let rows = sqlx::query(
                "SELECT * FROM cw_checkouts
                 WHERE state IN ('in_progress', 'awaiting_payment') AND lease_until <= $1
                 ORDER BY lease_until, key LIMIT $2",
            )
            .bind(now)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(checkout_from_row).collect::<Try<Vec<_>>>()
        })
    }

    async fn claim_stale(
        &self,
        key: &IdempotencyKey,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<Lease>> {
        retry!(self, async {
            let token = Uuid::new_v4();
            let attempt: Option<i32> = sqlx::query_scalar(
                "UPDATE cw_checkouts SET state = 'in_progress', lease_token = $2, lease_until = $3
                 WHERE key = $1 AND state IN ('in_progress', 'awaiting_payment')
                   AND lease_until <= $4
                 RETURNING attempt",
            )
            .bind(key.as_str())
            .bind(token)
            .bind(lease_until)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
            attempt
                .map(|a| {
                    Ok(Lease {
                        key: key.clone(),
                        token,
                        attempt: u32::try_from(a)
                            .map_err(|_| corrupt("checkout", "attempt out of range"))?,
                    })
                })
                .transpose()
        })
    }

    async fn fence_checkout(&self, lease: &Lease, lease_until: DateTime<Utc>) -> Result<()> {
        retry!(self, async {
            let fenced = sqlx::query(
                "UPDATE cw_checkouts SET awaiting = NULL, lease_until = $3
                 WHERE key = $1 AND lease_token = $2 AND state = 'in_progress'",
            )
            .bind(lease.key.as_str())
            .bind(lease.token)
            .bind(lease_until)
            .execute(&self.pool)
            .await?;
            if fenced.rows_affected() == 1 {
                Ok(())
            } else {
                Err(Error::LeaseLost.into())
            }
        })
    }

    async fn await_payment(
        &self,
        lease: &Lease,
        awaiting: &AwaitingPayment,
        until: DateTime<Utc>,
        hold_until: DateTime<Utc>,
    ) -> Result<()> {
        let body = to_json(awaiting)?;
        retry!(self, async {
            let mut tx = self.pool.begin().await?;
            let (reservation, _) = Self::leased(&mut tx, lease).await?;
            let reservation = reservation.ok_or(Fail::Domain(Error::ReservationExpired))?;
            let kept = sqlx::query(
                "UPDATE cw_reservations SET expires_at = greatest(expires_at, $2)
                 WHERE id = $1 AND state = 'pending'",
            )
            .bind(reservation)
            .bind(hold_until)
            .execute(&mut *tx)
            .await?;
            if kept.rows_affected() != 1 {
                return Err(Error::ReservationExpired.into());
            }
            sqlx::query(
                "UPDATE cw_checkouts SET state = 'awaiting_payment', lease_until = $2,
                        awaiting = $3, payment_reference = $4
                 WHERE key = $1",
            )
            .bind(lease.key.as_str())
            .bind(until)
            .bind(Json(&body))
            .bind(&awaiting.session.reference)
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                let f = Fail::from(e);
                if sqlstate(&f).as_deref() == Some("23505") {
                    Error::AlreadyExists {
                        what: "payment session",
                        value: awaiting.session.reference.clone(),
                    }
                    .into()
                } else {
                    f
                }
            })?;
            tx.commit().await?;
            Ok(())
        })
    }

    async fn claim_awaiting(
        &self,
        key: &IdempotencyKey,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<(Lease, AwaitingPayment)>> {
        retry!(self, async {
            let token = Uuid::new_v4();
            let row: Option<(i32, Option<Json<AwaitingPayment>>)> = sqlx::query_as(
                "UPDATE cw_checkouts SET state = 'in_progress', lease_token = $2, lease_until = $3
                 WHERE key = $1 AND state = 'awaiting_payment'
                 RETURNING attempt, awaiting",
            )
            .bind(key.as_str())
            .bind(token)
            .bind(lease_until)
            .fetch_optional(&self.pool)
            .await?;
            let Some((attempt, awaiting)) = row else {
                return Ok(None);
            };
            let Json(awaiting) =
                awaiting.ok_or_else(|| corrupt("checkout", "waiting without its payment"))?;
            let attempt =
                u32::try_from(attempt).map_err(|_| corrupt("checkout", "attempt out of range"))?;
            Ok(Some((
                Lease {
                    key: key.clone(),
                    token,
                    attempt,
                },
                awaiting,
            )))
        })
    }

    async fn checkout_by_payment_reference(
        &self,
        reference: &str,
    ) -> Result<Option<CheckoutRecord>> {
        retry!(self, async {
            let row = sqlx::query("SELECT * FROM cw_checkouts WHERE payment_reference = $1")
                .bind(reference)
                .fetch_optional(&self.pool)
                .await?;
            row.as_ref().map(checkout_from_row).transpose()
        })
    }
}

// ----- orders ------------------------------------------------------------

fn status_name(status: OrderStatus) -> &'static str {
    match status {
        OrderStatus::Placed => "placed",
        OrderStatus::Processing => "processing",
        OrderStatus::Completed => "completed",
        OrderStatus::Cancelled => "cancelled",
    }
}

fn order_from_row(row: &PgRow) -> Try<Order> {
    let order: Order = doc(row, "doc", "order")?;
    let total: Decimal = col(row, "total", "order")?;
    if total != order.total().amount() {
        return Err(corrupt("order", "total column disagrees with the document"));
    }
    Ok(order)
}

#[async_trait]
impl OrderStore for PgStore {
    async fn orders_placed_by(
        &self,
        customer: Option<CustomerId>,
        email: Option<&Email>,
    ) -> Result<u64> {
        if customer.is_none() && email.is_none() {
            return Ok(0);
        }
        retry!(self, async {
            let n: i64 = sqlx::query_scalar(
                // A NULL side matches nothing.
                "SELECT count(*) FROM cw_orders WHERE customer_id = $1 OR email = $2",
            )
            .bind(customer.map(|c| c.as_uuid()))
            .bind(email.map(|e| e.as_str()))
            .fetch_one(&self.pool)
            .await?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    async fn order(&self, id: OrderId) -> Result<Order> {
        retry!(self, async {
            let row = sqlx::query("SELECT total, doc FROM cw_orders WHERE id = $1")
                .bind(id.as_uuid())
                .fetch_optional(&self.pool)
                .await?
                .ok_or_else(|| Error::not_found("order", id))?;
            order_from_row(&row)
        })
    }

    async fn order_by_payment_reference(&self, reference: &str) -> Result<Option<Order>> {
        if reference.is_empty() {
            return Ok(None);
        }
        retry!(self, async {
            let row = sqlx::query("SELECT total, doc FROM cw_orders WHERE payment_reference = $1")
                .bind(reference)
                .fetch_optional(&self.pool)
                .await?;
            row.as_ref().map(order_from_row).transpose()
        })
    }

    async fn find_orders(&self, query: &OrderQuery) -> Result<Vec<Order>> {
        let limit = limit_i64(query.limit)?;
        retry!(self, async {
            let rows = sqlx::query(
                "SELECT total, doc FROM cw_orders
                 WHERE ($1::uuid IS NULL OR customer_id = $1)
                   AND ($2::text IS NULL OR status = $2)
                   AND ($3::timestamptz IS NULL OR placed_at >= $3)
                   AND ($4::timestamptz IS NULL OR placed_at < $4)
                   AND ($5::uuid IS NULL OR id < $5)
                   AND (NOT $7 OR pending_work)
                 ORDER BY id DESC LIMIT $6",
            )
            .bind(query.customer.map(|c| c.as_uuid()))
            .bind(query.status.map(status_name))
            .bind(query.placed_from)
            .bind(query.placed_until)
            .bind(query.before.map(|b| b.as_uuid()))
            .bind(limit)
            .bind(query.pending_work)
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(order_from_row).collect::<Try<Vec<_>>>()
        })
    }

    async fn save_order(&self, change: OrderChange, now: DateTime<Utc>) -> Result<Order> {
        retry!(self, self.save_order_try(&change, now))
    }
}

impl PgStore {
    async fn save_order_try(&self, change: &OrderChange, now: DateTime<Utc>) -> Try<Order> {
        if change.ship.is_empty() && change.restock.is_empty() && !change.release_reservation {
            return self.save_order_alone(change, now).await;
        }
        let id = change.order.id;
        let mut tx = self.pool.begin().await?;
        // Lock order: the order row, then (through release) its reservation,
        // stock rows and usage counters.
        let row = sqlx::query("SELECT total, doc FROM cw_orders WHERE id = $1 FOR UPDATE")
            .bind(id.as_uuid())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| Error::not_found("order", id))?;
        let stored = order_from_row(&row)?;
        if stored.version != change.order.version {
            return Err(Error::Conflict("order").into());
        }
        let mut order = change.order.clone();
        order.saved()?;
        if !change.ship.is_empty() || !change.restock.is_empty() {
            apply_stock_moves(&mut tx, order.reservation_id, &change.ship, &change.restock).await?;
        }
        if change.release_reservation {
            release_tx(&mut tx, &[order.reservation_id.as_uuid()]).await?;
        }
        let events = change
            .events
            .iter()
            .map(|k| to_json(k).map(Json))
            .collect::<Try<Vec<_>>>()?;
        let ids: Vec<Uuid> = change
            .events
            .iter()
            .map(|_| EventId::new().as_uuid())
            .collect();
        sqlx::query(
            "WITH o AS (UPDATE cw_orders SET doc = $2::json, status = $6, pending_work = $7 WHERE id = $1)
             INSERT INTO cw_events (id, occurred_at, kind)
             SELECT e, $3, k FROM unnest($4::uuid[], $5::jsonb[]) WITH ORDINALITY AS u(e, k, n) ORDER BY n",
        )
        .bind(id.as_uuid())
        .bind(json_text(&order)?)
        .bind(now)
        .bind(&ids)
        .bind(&events)
        .bind(status_name(order.status()))
        .bind(order.has_pending_work())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(order)
    }
}

/// Per (variant, location): total units, sorted — the lock order.
fn per_location(lines: &[ReservationLine]) -> (Vec<Uuid>, Vec<Uuid>, Vec<i64>) {
    let mut sums: BTreeMap<(Uuid, Uuid), i64> = BTreeMap::new();
    for l in lines {
        *sums
            .entry((l.variant_id.as_uuid(), l.location_id.as_uuid()))
            .or_default() += i64::from(l.quantity);
    }
    let mut out = (Vec::new(), Vec::new(), Vec::new());
    for ((v, l), q) in sums {
        out.0.push(v);
        out.1.push(l);
        out.2.push(q);
    }
    out
}

/// Shipping takes units out of the reservation and off hand; restocking puts
/// units back on hand. Locks the reservation, then the stock rows in order.
async fn apply_stock_moves(
    tx: &mut PgConnection,
    reservation: ReservationId,
    ship: &[ReservationLine],
    restock: &[ReservationLine],
) -> Try<()> {
    let all: Vec<ReservationLine> = ship.iter().chain(restock).copied().collect();
    let (av, al, _) = per_location(&all);
    let mut held = Vec::new();
    if !ship.is_empty() {
        let row = sqlx::query(
            "SELECT state, variant_ids, location_ids, quantities
             FROM cw_reservations WHERE id = $1 FOR UPDATE",
        )
        .bind(reservation.as_uuid())
        .fetch_optional(&mut *tx)
        .await?;
        let not_held = || Error::invalid("shipment", "the order's stock is no longer held");
        let row = row.ok_or_else(not_held)?;
        if col::<String>(&row, "state", "reservation")? != "allocated" {
            return Err(not_held().into());
        }
        held = reservation_lines(&row)?;
    }
    let locked: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "SELECT variant_id, location_id FROM cw_stock
         WHERE (variant_id, location_id) IN (SELECT * FROM unnest($1::uuid[], $2::uuid[]))
         ORDER BY variant_id, location_id FOR UPDATE",
    )
    .bind(&av)
    .bind(&al)
    .fetch_all(&mut *tx)
    .await?;
    if locked.len() != av.len() {
        return Err(Error::not_found("stock level", "for a shipped or returned unit").into());
    }
    if !ship.is_empty() {
        let (sv, sl, sq) = per_location(ship);
        // Take the shipped units out of the held lines (the row is locked);
        // a line emptied goes, and a reservation with none left is spent.
        for ((v, l), q) in sv.iter().zip(&sl).zip(&sq) {
            let line = held
                .iter_mut()
                .find(|h| h.variant_id.as_uuid() == *v && h.location_id.as_uuid() == *l)
                .filter(|h| i64::from(h.quantity) >= *q);
            let (Some(line), Ok(q)) = (line, u32::try_from(*q)) else {
                return Err(Error::invalid(
                    "shipment",
                    "ships units the order does not hold there",
                )
                .into());
            };
            line.quantity -= q;
        }
        held.retain(|h| h.quantity > 0);
        sqlx::query(
            "WITH s AS (
                 UPDATE cw_stock s SET on_hand = s.on_hand - u.q, reserved = s.reserved - u.q
                 FROM unnest($2::uuid[], $3::uuid[], $4::bigint[]) AS u(v, l, q)
                 WHERE s.variant_id = u.v AND s.location_id = u.l)
             UPDATE cw_reservations
                SET variant_ids = $5, location_ids = $6, quantities = $7,
                    state = CASE WHEN cardinality($5::uuid[]) = 0 THEN 'committed' ELSE state END,
                    order_id = CASE WHEN cardinality($5::uuid[]) = 0 THEN NULL ELSE order_id END
              WHERE id = $1",
        )
        .bind(reservation.as_uuid())
        .bind(&sv)
        .bind(&sl)
        .bind(&sq)
        .bind(uuids(&held, |h| h.variant_id.as_uuid()))
        .bind(uuids(&held, |h| h.location_id.as_uuid()))
        .bind(
            held.iter()
                .map(|h| i64::from(h.quantity))
                .collect::<Vec<_>>(),
        )
        .execute(&mut *tx)
        .await?;
    }
    if !restock.is_empty() {
        let (rv, rl, rq) = per_location(restock);
        let moved = sqlx::query(
            "UPDATE cw_stock s SET on_hand = s.on_hand + u.q
             FROM unnest($1::uuid[], $2::uuid[], $3::bigint[]) AS u(v, l, q)
             WHERE s.variant_id = u.v AND s.location_id = u.l AND s.on_hand + u.q <= $4",
        )
        .bind(&rv)
        .bind(&rl)
        .bind(&rq)
        .bind(MAX_ON_HAND)
        .execute(&mut *tx)
        .await?;
        if usize::try_from(moved.rows_affected()).ok() != Some(rv.len()) {
            return Err(Error::Overflow("stock on hand").into());
        }
    }
    Ok(())
}

impl PgStore {
    /// A change to the order row alone: one statement, gated on the version.
    async fn save_order_alone(&self, change: &OrderChange, now: DateTime<Utc>) -> Try<Order> {
        let id = change.order.id;
        let mut order = change.order.clone();
        order.saved()?;
        let events = change
            .events
            .iter()
            .map(|k| to_json(k).map(Json))
            .collect::<Try<Vec<_>>>()?;
        let ids: Vec<Uuid> = change
            .events
            .iter()
            .map(|_| EventId::new().as_uuid())
            .collect();
        let saved: i64 = sqlx::query_scalar(
            "WITH o AS (
                 UPDATE cw_orders SET doc = $2::json, status = $6, pending_work = $8
                 WHERE id = $1 AND (doc->>'version')::bigint = $7 RETURNING id),
             ev AS (
                 INSERT INTO cw_events (id, occurred_at, kind)
                 SELECT e, $3, k FROM unnest($4::uuid[], $5::jsonb[]) WITH ORDINALITY AS u(e, k, n)
                 WHERE EXISTS (SELECT 1 FROM o) ORDER BY n)
             SELECT count(*) FROM o",
        )
        .bind(id.as_uuid())
        .bind(json_text(&order)?)
        .bind(now)
        .bind(&ids)
        .bind(&events)
        .bind(status_name(order.status()))
        .bind(version_i64(change.order.version)?)
        .bind(order.has_pending_work())
        .fetch_one(&self.pool)
        .await?;
        if saved == 1 {
            return Ok(order);
        }
        let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM cw_orders WHERE id = $1")
            .bind(id.as_uuid())
            .fetch_optional(&self.pool)
            .await?;
        Err(match exists {
            None => Error::not_found("order", id),
            Some(_) => Error::Conflict("order"),
        }
        .into())
    }
}

// ----- events ------------------------------------------------------------

fn event_from_row(row: &PgRow) -> Try<Event> {
    let sequence: i64 = col(row, "sequence", "event")?;
    let Json(kind): Json<EventKind> = col(row, "kind", "event")?;
    Ok(Event {
        id: EventId::from_uuid(col(row, "id", "event")?),
        sequence: u64::try_from(sequence).map_err(|_| corrupt("event", "negative sequence"))?,
        occurred_at: col(row, "occurred_at", "event")?,
        kind,
    })
}

#[async_trait]
impl EventStore for PgStore {
    async fn pending_events(&self, consumer: &str, limit: usize) -> Result<Vec<Event>> {
        let consumer = check_consumer(consumer)?;
        let limit = limit_i64(limit)?;
        retry!(self, async {
            // Only events of transactions older than every running one: a
            // transaction still running may yet commit an event that sorts
            // earlier, and a reader must never move past it.
            let rows = sqlx::query(
                "SELECT e.sequence, e.id, e.occurred_at, e.kind
                 FROM cw_events e LEFT JOIN cw_event_cursors c ON c.consumer = $1
                 WHERE e.tx < pg_snapshot_xmin(pg_current_snapshot())
                   AND (c.consumer IS NULL OR (e.tx, e.sequence) > (c.tx, c.sequence))
                 ORDER BY e.tx, e.sequence LIMIT $2",
            )
            .bind(consumer)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(event_from_row).collect::<Try<Vec<_>>>()
        })
    }

    async fn ack_events(&self, consumer: &str, through: EventId) -> Result<()> {
        let consumer = check_consumer(consumer)?;
        retry!(self, async {
            let found: Option<i32> = sqlx::query_scalar(
                "WITH e AS (SELECT tx, sequence FROM cw_events WHERE id = $2),
                 up AS (
                     INSERT INTO cw_event_cursors (consumer, tx, sequence) SELECT $1, tx, sequence FROM e
                     ON CONFLICT (consumer) DO UPDATE SET tx = EXCLUDED.tx, sequence = EXCLUDED.sequence
                     WHERE (cw_event_cursors.tx, cw_event_cursors.sequence) < (EXCLUDED.tx, EXCLUDED.sequence))
                 SELECT 1 FROM e",
            )
            .bind(consumer)
            .bind(through.as_uuid())
            .fetch_optional(&self.pool)
            .await?;
            found
                .map(|_| ())
                .ok_or_else(|| Error::not_found("event", through).into())
        })
    }

    async fn record_events(&self, events: Vec<EventKind>, now: DateTime<Utc>) -> Result<()> {
        let kinds = events
            .iter()
            .map(|k| to_json(k).map(Json))
            .collect::<Try<Vec<_>>>()?;
        let ids: Vec<Uuid> = events.iter().map(|_| EventId::new().as_uuid()).collect();
        retry!(self, async {
            sqlx::query(
                "INSERT INTO cw_events (id, occurred_at, kind)
                 SELECT e, $3, k FROM unnest($1::uuid[], $2::jsonb[]) WITH ORDINALITY AS u(e, k, n) ORDER BY n",
            )
            .bind(&ids)
            .bind(&kinds)
            .bind(now)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    async fn prune_events(&self, before: DateTime<Utc>) -> Result<u64> {
        retry!(self, async {
            let done = sqlx::query(
                "DELETE FROM cw_events e
                 WHERE e.occurred_at < $1
                   AND EXISTS (SELECT 1 FROM cw_event_cursors)
                   AND NOT EXISTS (
                       SELECT 1 FROM cw_event_cursors c WHERE (e.tx, e.sequence) > (c.tx, c.sequence))",
            )
            .bind(before)
            .execute(&self.pool)
            .await?;
            Ok(done.rows_affected())
        })
    }
}

// ----- promotions ----------------------------------------------------------

/// Upserts a promotion and bumps the pricing version, in one statement.
const SAVE_PROMOTION: &str = "WITH saved AS (
         INSERT INTO cw_promotions (id, doc) VALUES ($1, $2)
         ON CONFLICT (id) DO UPDATE SET doc = EXCLUDED.doc)
     UPDATE cw_pricing_version SET version = version + 1";

/// Upserts a price list and bumps the pricing version, in one statement.
const SAVE_PRICE_LIST: &str = "WITH saved AS (
         INSERT INTO cw_price_lists (id, doc) VALUES ($1, $2)
         ON CONFLICT (id) DO UPDATE SET doc = EXCLUDED.doc)
     UPDATE cw_pricing_version SET version = version + 1";

impl PgStore {
    async fn save_pricing_doc<T: Serialize>(
        &self,
        sql: &'static str,
        id: Uuid,
        value: &T,
    ) -> Try<()> {
        sqlx::query(sql)
            .bind(id)
            .bind(Json(to_json(value)?))
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

#[async_trait]
impl PromotionStore for PgStore {
    async fn save_promotion(&self, promotion: Promotion) -> Result<()> {
        retry!(
            self,
            self.save_pricing_doc(SAVE_PROMOTION, promotion.id.as_uuid(), &promotion)
        )
    }

    async fn promotion(&self, id: PromotionId) -> Result<Promotion> {
        retry!(self, async {
            let row = sqlx::query("SELECT doc FROM cw_promotions WHERE id = $1")
                .bind(id.as_uuid())
                .fetch_optional(&self.pool)
                .await?;
            match row {
                Some(r) => doc(&r, "doc", "promotion"),
                None => Err(Error::not_found("promotion", id).into()),
            }
        })
    }

    async fn promotions(&self) -> Result<Vec<Promotion>> {
        retry!(
            self,
            self.all_docs("SELECT doc FROM cw_promotions ORDER BY id", "promotion")
        )
    }

    async fn save_price_list(&self, list: PriceList) -> Result<()> {
        retry!(
            self,
            self.save_pricing_doc(SAVE_PRICE_LIST, list.id.as_uuid(), &list)
        )
    }

    async fn price_lists(&self) -> Result<Vec<PriceList>> {
        retry!(
            self,
            self.all_docs("SELECT doc FROM cw_price_lists ORDER BY id", "price list")
        )
    }

    async fn insert_coupons(&self, coupons: &[Coupon]) -> Result<()> {
        let mut fresh = std::collections::HashSet::with_capacity(coupons.len());
        if let Some(twice) = coupons.iter().find(|c| !fresh.insert(c.code.as_str())) {
            return Err(Error::AlreadyExists {
                what: "coupon code",
                value: twice.code.clone(),
            });
        }
        let codes: Vec<&str> = coupons.iter().map(|c| c.code.as_str()).collect();
        let promotions = uuids(coupons, |c| c.promotion_id.as_uuid());
        let max_uses = coupons
            .iter()
            .map(|c| c.max_uses.map(i64::try_from).transpose())
            .collect::<std::result::Result<Vec<Option<i64>>, _>>()
            .map_err(|_| Error::Overflow("coupon max_uses"))?;
        let mut more = Vec::with_capacity(coupons.len());
        for c in coupons {
            c.validate()?;
            // An array literal of UUIDs (hex and dashes only), one per coupon.
            let ids: Vec<String> = c.more_promotions.iter().map(|p| p.to_string()).collect();
            more.push(format!("{{{}}}", ids.join(",")));
        }
        retry!(self, async {
            // The further promotions have no foreign key (an array): the
            // statement inserts nothing and names one when any is missing.
            let result = sqlx::query(
                "WITH input AS (
                     SELECT * FROM unnest($1::text[], $2::uuid[], $3::bigint[], $4::text[])
                         AS t(code, promotion_id, max_uses, more)),
                 missing AS (
                     SELECT m FROM input, unnest(input.more::uuid[]) AS m
                     WHERE NOT EXISTS (SELECT 1 FROM cw_promotions p WHERE p.id = m)
                     LIMIT 1),
                 ins AS (
                     INSERT INTO cw_coupons (code, promotion_id, max_uses, more_promotions)
                     SELECT code, promotion_id, max_uses, more::uuid[] FROM input
                     WHERE NOT EXISTS (SELECT 1 FROM missing)
                     RETURNING 1)
                 SELECT (SELECT m FROM missing) AS missing, (SELECT count(*) FROM ins) AS n",
            )
            .bind(&codes)
            .bind(&promotions)
            .bind(&max_uses)
            .bind(&more)
            .fetch_one(&self.pool)
            .await;
            match result.map_err(Fail::from) {
                Ok(row) => match col::<Option<uuid::Uuid>>(&row, "missing", "coupon")? {
                    Some(id) => {
                        Err(Error::not_found("promotion", PromotionId::from_uuid(id)).into())
                    }
                    None => Ok(()),
                },
                Err(f) if sqlstate(&f).as_deref() == Some("23503") => {
                    let id = coupons
                        .first()
                        .map(|c| c.promotion_id.to_string())
                        .unwrap_or_default();
                    Err(Error::NotFound {
                        entity: "promotion",
                        id,
                    }
                    .into())
                }
                Err(f) if sqlstate(&f).as_deref() == Some("23505") => {
                    // Name the code (the caller's value), never the database's text.
                    let taken: Option<String> = sqlx::query_scalar(
                        "SELECT code FROM cw_coupons WHERE code = ANY($1) ORDER BY code LIMIT 1",
                    )
                    .bind(&codes)
                    .fetch_optional(&self.pool)
                    .await?;
                    Err(Error::AlreadyExists {
                        what: "coupon code",
                        value: taken.unwrap_or_default(),
                    }
                    .into())
                }
                Err(f) => Err(f),
            }
        })
    }

    async fn pricing_inputs(
        &self,
        variants: &[VariantId],
        codes: &[String],
    ) -> Result<PricingInputs> {
        retry!(self, self.pricing_inputs_try(variants, codes))
    }

    async fn cart_for_pricing(
        &self,
        cart_id: CartId,
        extra: &[VariantId],
    ) -> Result<(Cart, PricingInputs)> {
        retry!(self, self.cart_for_pricing_try(cart_id, extra))
    }
}

impl PgStore {
    /// The cart and its pricing inputs in one statement: the cart's row
    /// (kind 3) beside the rows [`Self::pricing_inputs_try`] reads, for the
    /// variants and codes the cart's document names, each variant with the
    /// locations that stock it (commit 1's hint when there is one).
    async fn cart_for_pricing_try(
        &self,
        cart_id: CartId,
        extra: &[VariantId],
    ) -> Try<(Cart, PricingInputs)> {
        let rows = sqlx::query(CHECKOUT_READ)
            .bind(cart_id.as_uuid())
            // Every lookup in the statement is by key through
            // `= ANY (array)`, and no estimate depends on a parameter's
            // value: the server keeps one generic plan. With `IN (… UNION unnest($2))`, the estimate
            // followed the array's length, so each call was planned again
            // (0.5 ms, more than running it; BENCHMARKS.md, session 8).
            .bind(uuids(extra, |v| v.as_uuid()))
            .fetch_all(&self.pool)
            .await?;
        let mut cart = None;
        let mut inputs = Vec::with_capacity(rows.len());
        for row in rows {
            if col::<i32>(&row, "kind", "pricing inputs")? == 3 {
                cart = Some(cart_from_row(&row)?);
            } else {
                inputs.push(row);
            }
        }
        let cart = cart.ok_or_else(|| Error::not_found("cart", cart_id))?;
        Ok((cart, pricing_inputs_from_rows(inputs)?))
    }

    /// Entries, coupons and the version in one statement: rows of three
    /// kinds, told apart by `kind`.
    async fn pricing_inputs_try(
        &self,
        variants: &[VariantId],
        codes: &[String],
    ) -> Try<PricingInputs> {
        let rows = sqlx::query(
            "SELECT 0 AS kind, v.doc AS variant, p.summary, NULL::text AS code,
                    NULL::uuid AS promotion_id, NULL::bigint AS max_uses,
                    NULL::uuid[] AS more_promotions, NULL::bigint AS version,
                    NULL::uuid[] AS stock_locations
             FROM cw_variants v JOIN cw_products p ON p.id = v.product_id
             WHERE v.id = ANY($1)
             UNION ALL
             SELECT 1, NULL, NULL, code, promotion_id, max_uses, more_promotions, NULL, NULL
             FROM cw_coupons WHERE code = ANY($2)
             UNION ALL
             SELECT 2, NULL, NULL, NULL, NULL, NULL, NULL, version, NULL FROM cw_pricing_version",
        )
        .bind(uuids(variants, |v| v.as_uuid()))
        .bind(codes)
        .fetch_all(&self.pool)
        .await?;
        pricing_inputs_from_rows(rows)
    }
}

fn coupon_from_row(r: &PgRow) -> Try<Coupon> {
    let max_uses: Option<i64> = col(r, "max_uses", "coupon")?;
    Ok(Coupon {
        code: col(r, "code", "coupon")?,
        promotion_id: PromotionId::from_uuid(col(r, "promotion_id", "coupon")?),
        max_uses: max_uses
            .map(u64::try_from)
            .transpose()
            .map_err(|_| corrupt("coupon", "negative max_uses"))?,
        more_promotions: col::<Vec<uuid::Uuid>>(r, "more_promotions", "coupon")?
            .into_iter()
            .map(PromotionId::from_uuid)
            .collect(),
    })
}

// ----- gift cards ----------------------------------------------------------

#[async_trait]
impl GiftCardStore for PgStore {
    async fn insert_gift_card(&self, card: GiftCard) -> Result<()> {
        let body = to_json(&card)?;
        retry!(self, async {
            sqlx::query(
                "INSERT INTO cw_gift_cards (id, code_hash, customer_id, currency, balance, version, created_at, doc)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(card.id().as_uuid())
            .bind(card.code_hash())
            .bind(card.customer_id().map(|c| c.as_uuid()))
            .bind(card.currency().code())
            .bind(card.balance().amount())
            .bind(version_i64(card.version())?)
            .bind(card.created_at())
            .bind(Json(&body))
            .execute(&self.pool)
            .await
            .map_err(|e| {
                let f = Fail::from(e);
                if sqlstate(&f).as_deref() == Some("23505") {
                    Error::AlreadyExists {
                        what: "gift card",
                        value: card.id().to_string(),
                    }
                    .into()
                } else {
                    f
                }
            })?;
            Ok(())
        })
    }

    async fn gift_card(&self, id: GiftCardId) -> Result<GiftCard> {
        retry!(self, async {
            let row = sqlx::query("SELECT doc FROM cw_gift_cards WHERE id = $1")
                .bind(id.as_uuid())
                .fetch_optional(&self.pool)
                .await?
                .ok_or_else(|| Error::not_found("gift card", id))?;
            doc(&row, "doc", "gift card")
        })
    }

    async fn gift_card_by_code(&self, code_hash: &str) -> Result<Option<GiftCard>> {
        retry!(self, async {
            let row = sqlx::query("SELECT doc FROM cw_gift_cards WHERE code_hash = $1")
                .bind(code_hash)
                .fetch_optional(&self.pool)
                .await?;
            row.map(|r| doc(&r, "doc", "gift card")).transpose()
        })
    }

    async fn gift_cards_of(&self, customer: CustomerId) -> Result<Vec<GiftCard>> {
        let limit = limit_i64(crate::store::MAX_PAGE_SIZE)?;
        retry!(self, async {
            let rows = sqlx::query(
                "SELECT doc FROM cw_gift_cards WHERE customer_id = $1
                 ORDER BY created_at, id LIMIT $2",
            )
            .bind(customer.as_uuid())
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(|r| doc(r, "doc", "gift card")).collect()
        })
    }

    async fn post_gift_card_entry(
        &self,
        id: GiftCardId,
        entry: NewEntry,
        now: DateTime<Utc>,
    ) -> Result<GiftCard> {
        retry!(self, async {
            let mut tx = self.pool.begin().await?;
            // The row lock serializes every entry on this card.
            let row = sqlx::query("SELECT doc FROM cw_gift_cards WHERE id = $1 FOR UPDATE")
                .bind(id.as_uuid())
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| Error::not_found("gift card", id))?;
            let mut card: GiftCard = doc(&row, "doc", "gift card")?;
            if !card.post(entry.clone(), now)? {
                return Ok(card);
            }
            let body = to_json(&card)?;
            sqlx::query(
                "UPDATE cw_gift_cards SET balance = $2, version = $3, doc = $4 WHERE id = $1",
            )
            .bind(id.as_uuid())
            .bind(card.balance().amount())
            .bind(version_i64(card.version())?)
            .bind(Json(&body))
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(card)
        })
    }

    async fn gift_card_entries_for(
        &self,
        reference: &str,
    ) -> Result<Vec<(GiftCardId, LedgerEntry)>> {
        let filter = serde_json::json!([{ "reference": reference }]).to_string();
        retry!(self, async {
            let rows = sqlx::query(
                "SELECT doc FROM cw_gift_cards WHERE doc -> 'entries' @> $1::jsonb ORDER BY id",
            )
            .bind(&filter)
            .fetch_all(&self.pool)
            .await?;
            let mut found = Vec::new();
            for row in &rows {
                let card: GiftCard = doc(row, "doc", "gift card")?;
                found.extend(
                    card.entries()
                        .iter()
                        .filter(|e| e.reference == reference)
                        .map(|e| (card.id(), e.clone())),
                );
            }
            Ok(found)
        })
    }
}

// ----- sales channels ------------------------------------------------------

#[async_trait]
impl ChannelStore for PgStore {
    async fn save_channel(&self, channel: SalesChannel) -> Result<SalesChannel> {
        channel.validate()?;
        let mut saved = channel.clone();
        saved.version += 1;
        let body = to_json(&saved)?;
        let name = channel.name.trim().to_lowercase();
        retry!(self, async {
            let done = if channel.version == 0 {
                sqlx::query(
                    "INSERT INTO cw_channels (id, name, version, created_at, doc)
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(channel.id.as_uuid())
                .bind(&name)
                .bind(version_i64(saved.version)?)
                .bind(channel.created_at)
                .bind(Json(&body))
                .execute(&self.pool)
                .await
            } else {
                sqlx::query(
                    "UPDATE cw_channels SET name = $2, version = $3, doc = $4
                     WHERE id = $1 AND version = $5",
                )
                .bind(channel.id.as_uuid())
                .bind(&name)
                .bind(version_i64(saved.version)?)
                .bind(Json(&body))
                .bind(version_i64(channel.version)?)
                .execute(&self.pool)
                .await
            };
            let done = done.map_err(|e| {
                let f = Fail::from(e);
                if sqlstate(&f).as_deref() == Some("23505") {
                    Error::AlreadyExists {
                        what: "sales channel",
                        value: channel.name.clone(),
                    }
                    .into()
                } else {
                    f
                }
            })?;
            if done.rows_affected() == 1 {
                return Ok(saved.clone());
            }
            let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM cw_channels WHERE id = $1")
                .bind(channel.id.as_uuid())
                .fetch_optional(&self.pool)
                .await?;
            Err(match exists {
                Some(_) => Error::Conflict("sales channel"),
                None => Error::not_found("sales channel", channel.id),
            }
            .into())
        })
    }

    async fn channel(&self, id: ChannelId) -> Result<SalesChannel> {
        retry!(self, async {
            let row = sqlx::query("SELECT doc FROM cw_channels WHERE id = $1")
                .bind(id.as_uuid())
                .fetch_optional(&self.pool)
                .await?
                .ok_or_else(|| Error::not_found("sales channel", id))?;
            doc(&row, "doc", "sales channel")
        })
    }

    async fn channels(&self) -> Result<Vec<SalesChannel>> {
        let limit = limit_i64(crate::store::MAX_PAGE_SIZE)?;
        retry!(self, async {
            let rows =
                sqlx::query("SELECT doc FROM cw_channels ORDER BY doc->>'name', id LIMIT $1")
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
            rows.iter()
                .map(|r| doc(r, "doc", "sales channel"))
                .collect()
        })
    }
}
