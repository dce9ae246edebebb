//! A PostgreSQL primary and a synchronous streaming standby of the test's
//! own, on loopback ports, made with the server's own tools (`initdb`,
//! `pg_basebackup`, `pg_ctl`): for failover tests. The server binaries come
//! from `CARTWRIGHT_PG_BIN` (the README's test command sets it) or the
//! newest `/usr/lib/postgresql/*/bin`. As root, the servers run as the
//! `postgres` user. Dropping the cluster stops both servers and removes
//! their files.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sqlx::Connection;

pub struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    as_postgres: bool,
    pub primary_port: u16,
    pub standby_port: u16,
}

/// The database the tests use on the cluster.
pub const DATABASE: &str = "cartwright";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn server_binaries() -> PathBuf {
    if let Ok(bin) = std::env::var("CARTWRIGHT_PG_BIN") {
        return PathBuf::from(bin);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect(
            "the failover test needs the PostgreSQL server binaries: run the README's test \
             command, or set CARTWRIGHT_PG_BIN",
        )
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("pg_basebackup").exists())
        .collect();
    found.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found
        .pop()
        .expect("no PostgreSQL server binaries under /usr/lib/postgresql")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl Cluster {
    /// Starts a primary and a synchronous standby (`synchronous_commit =
    /// remote_apply`: a commit returns once the standby applied it), and
    /// creates the test database on them.
    pub async fn start() -> Self {
        let dir =
            std::env::temp_dir().join(format!("cw-failover-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let cluster = Self {
            dir,
            bin: server_binaries(),
            as_postgres: is_root(),
            primary_port: free_port(),
            standby_port: free_port(),
        };
        if cluster.as_postgres {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&cluster.dir)
                .status()
                .unwrap();
            assert!(status.success(), "chown of the cluster's folder failed");
        }
        let primary = cluster.dir.join("primary");
        cluster.run(
            "initdb",
            &[
                "-D",
                path(&primary),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        cluster.append(
            &primary.join("postgresql.conf"),
            &format!(
                "port = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
                 wal_level = replica\nmax_wal_senders = 4\nhot_standby = on\n\
                 synchronous_commit = remote_apply\nsynchronous_standby_names = '*'\n\
                 fsync = off\nshared_buffers = 32MB\nmax_connections = 60\n",
                cluster.primary_port,
                path(&cluster.dir)
            ),
        );
        cluster.pg_ctl(&primary, "start");
        let standby = cluster.dir.join("standby");
        cluster.run(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &cluster.primary_port.to_string(),
                "-U",
                "postgres",
                "-D",
                path(&standby),
                "-R",
                "-X",
                "stream",
                "--no-sync",
            ],
        );
        // The standby's own settings: its port, and no synchronous standby
        // of its own (once promoted, it must not wait for one).
        cluster.append(
            &standby.join("postgresql.conf"),
            &format!(
                "port = {}\nsynchronous_standby_names = ''\n",
                cluster.standby_port
            ),
        );
        cluster.pg_ctl(&standby, "start");
        // Wait until the standby streams synchronously.
        let mut admin = cluster.connect(cluster.primary_port, "postgres").await;
        for _ in 0..200 {
            let sync: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync' AND state = 'streaming'",
            )
            .fetch_one(&mut admin)
            .await
            .unwrap();
            if sync > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {DATABASE}")))
            .execute(&mut admin)
            .await
            .unwrap();
        cluster
    }

    /// The URL naming both hosts, primary first.
    pub fn url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/{DATABASE}",
            self.primary_port, self.standby_port
        )
    }

    /// A connection to one server.
    pub async fn connect(&self, port: u16, database: &str) -> sqlx::PgConnection {
        let url = format!("postgres://postgres@127.0.0.1:{port}/{database}");
        for _ in 0..100 {
            if let Ok(c) = sqlx::PgConnection::connect(&url).await {
                return c;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("cannot connect to the test cluster on port {port}");
    }

    /// Stops the primary at once, as a crash would (`immediate`).
    pub fn stop_primary(&self) {
        self.run(
            "pg_ctl",
            &[
                "-D",
                path(&self.dir.join("primary")),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }

    /// Promotes the standby to primary, waiting until it takes writes.
    pub fn promote_standby(&self) {
        self.run(
            "pg_ctl",
            &["-D", path(&self.dir.join("standby")), "-w", "promote"],
        );
    }

    fn pg_ctl(&self, data: &Path, action: &str) {
        let log = data.with_extension("log");
        self.run(
            "pg_ctl",
            &["-D", path(data), "-l", path(&log), "-w", action],
        );
    }

    fn append(&self, file: &Path, text: &str) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(file).unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    fn run(&self, program: &str, args: &[&str]) {
        let exe = self.bin.join(program);
        let output = if self.as_postgres {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&exe)
                .args(args)
                .current_dir(&self.dir)
                .output()
        } else {
            Command::new(&exe)
                .args(args)
                .current_dir(&self.dir)
                .output()
        }
        .unwrap_or_else(|e| panic!("{}: {e}", exe.display()));
        assert!(
            output.status.success(),
            "{program} {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in ["primary", "standby"] {
            let data = self.dir.join(node);
            let exe = self.bin.join("pg_ctl");
            let args = ["-D", path(&data), "-m", "immediate", "stop"];
            let _ = if self.as_postgres {
                Command::new("runuser")
                    .args(["-u", "postgres", "--"])
                    .arg(&exe)
                    .args(args)
                    .output()
            } else {
                Command::new(&exe).args(args).output()
            };
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
