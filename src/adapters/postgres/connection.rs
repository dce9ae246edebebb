//! The PostgreSQL store: connecting, the pool and its options, migrations,
//! following the primary across a failover, and the read replica.
//!
//! sqlx connects a pool to one host. The store keeps the list of hosts a
//! URL names (`postgres://user@primary:5432,standby:5432/shop`), connects
//! its pool to the one that is the primary now (a writable session), checks
//! every new connection for a writable session, and when a command meets a
//! read-only transaction (SQLSTATE 25006) or a lost server, looks for the
//! primary again and moves the pool there: the old pool's connections are
//! closed, and the next command goes to the new primary. This is
//! `target_session_attrs=read-write` built around sqlx, rather than a move
//! to another client: every statement, transaction and server-side
//! function of the store stays as it is, and the cost is one query per new
//! connection.

use super::*;

use std::sync::atomic::{AtomicU64, Ordering};

/// How often a command that cannot have taken effect (refused as read-only,
/// or no connection was had) is tried again on the new primary.
pub(super) const MAX_FAILOVER_RETRIES: u32 = 6;

/// The least time between two probes of the hosts.
const PROBE_INTERVAL: std::time::Duration = std::time::Duration::from_millis(200);

/// Most hosts one URL may name.
pub const MAX_HOSTS: usize = 16;

/// What a new connection to a server that is not the primary fails with.
const NOT_PRIMARY: &str = "cartwright: the server is not the primary (a read-only session)";

/// Whether a failure says the server is not (or no longer) the primary.
pub(super) fn primary_lost(f: &Fail) -> bool {
    match f {
        Fail::Db(
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed,
        ) => true,
        Fail::Db(sqlx::Error::Protocol(p)) => p == NOT_PRIMARY,
        _ => matches!(
            sqlstate(f).as_deref(),
            Some(
                "25006"
                    | "57P01"
                    | "57P02"
                    | "57P03"
                    | "08000"
                    | "08001"
                    | "08003"
                    | "08004"
                    | "08006"
            )
        ),
    }
}

/// Whether a failure that moved the store happened before the command
/// could take effect, so that trying it again on the new primary is safe:
/// refused as read-only (25006: nothing is written on a standby), no
/// connection had (the pool timed out or closed, the server would not take
/// one), or a new connection found a standby. A connection lost in the
/// middle of a command is not: its commit may have happened.
pub(super) fn took_no_effect(f: &Fail) -> bool {
    match f {
        Fail::Db(sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed) => true,
        Fail::Db(sqlx::Error::Protocol(p)) => p == NOT_PRIMARY,
        _ => matches!(
            sqlstate(f).as_deref(),
            Some("25006" | "57P03" | "08001" | "08004")
        ),
    }
}

/// The store's connections: the pool on the primary now, the hosts it may
/// move among, and the read replica's pool.
pub(super) struct Db {
    pool: parking_lot::RwLock<PgPool>,
    /// Bumped at each move, so that one failure moves the pool once.
    generation: AtomicU64,
    /// Every host of the URL, in order; empty when the store was given a
    /// pool ([`PgStore::from_pool`]), which then never moves.
    hosts: Vec<PgConnectOptions>,
    /// Which of `hosts` the pool is on.
    current: parking_lot::Mutex<usize>,
    options: PgOptions,
    /// One move at a time, and when the hosts were last probed: a burst
    /// of failures (an overloaded pool timing out, say) probes once.
    moving: tokio::sync::Mutex<Option<std::time::Instant>>,
    replica: Option<PgPool>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("hosts", &self.hosts.len())
            .field("generation", &self.generation())
            .field("replica", &self.replica.is_some())
            .finish_non_exhaustive()
    }
}

impl Db {
    fn of_pool(pool: PgPool, options: PgOptions) -> Self {
        Self {
            pool: parking_lot::RwLock::new(pool),
            generation: AtomicU64::new(0),
            hosts: Vec::new(),
            current: parking_lot::Mutex::new(0),
            options,
            moving: tokio::sync::Mutex::new(None),
            replica: None,
        }
    }

    pub(super) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Whether the store knows several hosts, so the primary may move.
    pub(super) fn can_move(&self) -> bool {
        self.hosts.len() > 1
    }
}

/// The URL for each host a (possibly multi-host) URL names:
/// `postgres://u@a:1,b:2/db?x` is `postgres://u@a:1/db?x` and
/// `postgres://u@b:2/db?x`. The URL is never echoed (it may hold a password).
fn split_hosts(url: &str) -> Result<Vec<String>> {
    let bad = || {
        Error::invalid(
            "database url",
            "must be postgres://[user@]host[:port][,host[:port]…][/database][?options]",
        )
    };
    let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = (
        rest.get(..end).ok_or_else(bad)?,
        rest.get(end..).ok_or_else(bad)?,
    );
    let (userinfo, hosts) = match authority.rfind('@') {
        Some(at) => (
            authority.get(..=at).ok_or_else(bad)?,
            authority.get(at + 1..).ok_or_else(bad)?,
        ),
        None => ("", authority),
    };
    let hosts: Vec<&str> = hosts.split(',').collect();
    if hosts.iter().any(|h| h.trim().is_empty()) {
        return Err(bad());
    }
    crate::validate::at_most("database hosts", hosts.len(), MAX_HOSTS)?;
    Ok(hosts
        .iter()
        .map(|h| format!("{scheme}://{userinfo}{}{tail}", h.trim()))
        .collect())
}

/// Whether `host` takes connections and is the primary (not in recovery,
/// sessions writable).
async fn is_primary(host: &PgConnectOptions, wait: std::time::Duration) -> bool {
    let probe = async {
        let mut conn = <PgConnection as sqlx::Connection>::connect_with(host).await?;
        let writable = writable(&mut conn).await;
        let _closed = sqlx::Connection::close(conn).await;
        writable
    };
    matches!(tokio::time::timeout(wait, probe).await, Ok(Ok(true)))
}

async fn writable(conn: &mut PgConnection) -> std::result::Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT NOT pg_is_in_recovery() AND current_setting('transaction_read_only') = 'off'",
    )
    .fetch_one(&mut *conn)
    .await
}

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
    /// A read replica's URL (default none): product listings and search,
    /// category and collection lists and order listings read there; every
    /// read that decides a write (checkout, payments, stock, anything under
    /// a version check) reads the primary. A replica shows the primary as
    /// it was a moment ago — with streaming replication, usually well under
    /// a second, more under load: a product just created, or an order just
    /// placed, may not be listed yet.
    pub read_replica: Option<String>,
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
            read_replica: None,
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

    /// [`pool_options`](Self::pool_options) for the primary: every new
    /// connection is checked for a writable session, and one to a server
    /// in recovery (a standby) or read-only is refused.
    fn primary_pool_options(&self) -> PgPoolOptions {
        self.pool_options().after_connect(|conn, _meta| {
            Box::pin(async move {
                if writable(conn).await? {
                    Ok(())
                } else {
                    Err(sqlx::Error::Protocol(NOT_PRIMARY.into()))
                }
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
    read_replica: Option<String>,
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
    /// The URL may name several hosts, a primary and its standbys
    /// (`postgres://shop@db1:5432,db2:5432/shop`): the store connects to the
    /// one that is the primary (a writable session) and follows the primary
    /// when it moves (see the module docs). A read replica for listings is
    /// [`PgOptions::read_replica`].
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
        let hosts = split_hosts(url)?
            .iter()
            .map(|u| connect_options(u, options))
            .collect::<Result<Vec<_>>>()?;
        // The primary now: the first host with a writable session. With one
        // host, that one (a connection error then says what is wrong).
        let wait = options
            .acquire_timeout
            .min(std::time::Duration::from_secs(5));
        let mut current = 0;
        if hosts.len() > 1 {
            let mut found = None;
            for (i, host) in hosts.iter().enumerate() {
                if is_primary(host, wait).await {
                    found = Some(i);
                    break;
                }
            }
            current = found.ok_or_else(|| Error::Storage {
                message: "none of the database hosts is a writable primary".into(),
                source: None,
            })?;
        }
        let first = hosts
            .get(current)
            .cloned()
            .ok_or_else(|| Error::invalid("database url", "names no host"))?;
        let pool = options
            .primary_pool_options()
            .connect_with(first)
            .await
            .map_err(storage)?;
        let replica = options
            .read_replica
            .as_deref()
            .map(|u| {
                connect_options(u, options).map(|c| options.pool_options().connect_lazy_with(c))
            })
            .transpose()?;
        let db = Db {
            pool: parking_lot::RwLock::new(pool),
            generation: AtomicU64::new(0),
            hosts,
            current: parking_lot::Mutex::new(current),
            options: options.clone(),
            moving: tokio::sync::Mutex::new(None),
            replica,
        };
        let store = Self {
            db: Arc::new(db),
            retries: options.max_retries,
            reservations: Arc::new(tokio::sync::Semaphore::new(
                options.max_concurrent_reservations,
            )),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Uses an existing pool and applies the migrations; the store's own
    /// settings are [`PgOptions`]' defaults.
    ///
    /// # Errors
    /// [`Error::Storage`] when a migration fails.
    pub async fn from_pool(pool: PgPool) -> Result<Self> {
        let store = Self {
            db: Arc::new(Db::of_pool(pool, PgOptions::default())),
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
        MIGRATOR
            .run(&self.pool())
            .await
            .map_err(|e| Error::Storage {
                message: "migration failed".into(),
                source: Some(Arc::new(e)),
            })
    }

    /// The connection pool on the primary now (a handle: after a failover
    /// the store moves to a new pool, so take it again rather than keep it).
    pub fn pool(&self) -> PgPool {
        self.db.pool.read().clone()
    }

    /// The pool reads that may lag go to: the read replica's, if one was
    /// configured ([`PgOptions::read_replica`]), else the primary's.
    pub(super) fn read_pool(&self) -> PgPool {
        match &self.db.replica {
            Some(replica) => replica.clone(),
            None => self.pool(),
        }
    }

    /// Moves the pool to the host that is the primary now, if the pool is
    /// still the one of generation `seen` (one failure moves it once) and
    /// the store knows several hosts. The old pool's connections are
    /// closed as they come back. When no host is the primary yet (a
    /// standby being promoted), nothing moves; the next failure looks
    /// again.
    pub(super) async fn fail_over(&self, seen: u64) {
        let db = &self.db;
        if db.hosts.len() < 2 {
            return;
        }
        let mut last_probe = db.moving.lock().await;
        if db.generation() != seen {
            return;
        }
        if last_probe.is_some_and(|at| at.elapsed() < PROBE_INTERVAL) {
            return;
        }
        *last_probe = Some(std::time::Instant::now());
        let wait = db
            .options
            .acquire_timeout
            .min(std::time::Duration::from_secs(5));
        for (i, host) in db.hosts.iter().enumerate() {
            if !is_primary(host, wait).await {
                continue;
            }
            if *db.current.lock() == i {
                // Still the primary (a connection broke, the server did
                // not move): the pool stays.
                return;
            }
            let pool = db
                .options
                .primary_pool_options()
                .connect_lazy_with(host.clone());
            let old = std::mem::replace(&mut *db.pool.write(), pool);
            let was = std::mem::replace(&mut *db.current.lock(), i);
            db.generation.fetch_add(1, Ordering::AcqRel);
            tracing::warn!(
                from = was,
                to = i,
                "the database primary moved; the store follows it"
            );
            // The engine's telemetry is above the adapters: the store
            // speaks to the metrics facade itself.
            #[cfg(feature = "metrics")]
            metrics::counter!("cartwright_db_failovers_total").increment(1);
            tokio::spawn(async move { old.close().await });
            return;
        }
        tracing::warn!("no database host is a writable primary now");
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

/// The connection options for one host's URL, with the store's statement
/// timeout.
fn connect_options(url: &str, options: &PgOptions) -> Result<PgConnectOptions> {
    let mut connect = PgConnectOptions::from_str(url).map_err(storage)?;
    if let Some(timeout) = options.statement_timeout {
        connect = connect.options([("statement_timeout", timeout.as_millis().to_string())]);
    }
    Ok(connect)
}
