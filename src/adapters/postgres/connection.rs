//! The PostgreSQL store: connecting, the pool and its options, migrations.

use super::*;

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
    pub(super) async fn reservation_permit(&self) -> Result<tokio::sync::SemaphorePermit<'_>> {
        self.reservations
            .acquire()
            .await
            .map_err(|e| Error::Storage {
                message: "the store's reservation permits are closed".into(),
                source: Some(Arc::new(e)),
            })
    }
}
