//! The database adapter: SQLite (default, WAL) or PostgreSQL through sqlx's `Any` driver, one
//! set of SQL for both. The database is the source of truth; Kafka carries what the outbox holds.
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use contracts::Catalogue;
use sqlx::any::AnyPoolOptions;
use sqlx::{Any, AnyPool, Transaction};
use tokio::sync::Notify;

mod cases;
mod catalogue;
mod connector_state;
mod election;
mod history;
mod ledger;
mod notifications;
mod outbox;
mod reports;
mod tokens;
mod turns;

pub use cases::{CaseRecord, ListOrder};
pub use connector_state::{follow_pauses, keep_control_changes};
pub use election::{Duty, Elections, Sharing};
pub use history::HistoryEntry;
pub use ledger::{ArchiveRecord, LedgerSearch, LEDGER_PAGE};
pub use reports::{KeptLine, UnitKind};
pub use tokens::TokenRecord;
pub use turns::Waiting;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Store {
    /// Transactions. On SQLite one connection: SQLite has one writer anyway, and a single
    /// connection never meets a busy snapshot when a read transaction turns into a write.
    pool: AnyPool,
    /// Reads outside transactions (queries, the relay). On SQLite separate read-only
    /// connections, which WAL lets run beside the writer instead of queueing for it.
    reads: AnyPool,
    backend: Backend,
    catalogue: Arc<Catalogue>,
    /// Woken after every commit that enqueued messages, so the relay publishes at once.
    pub outbox_written: Arc<Notify>,
    /// On SQLite, who writes next.
    turns: Arc<turns::WriterTurns>,
}

/// The PostgreSQL `url` with its connections working in `schema` (their search path): a schema
/// of one's own in a shared database.
pub fn url_in_schema(url: &str, schema: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-c%20search_path%3D{schema}")
}

/// Whether every migration of `migrator` has been applied to the database.
async fn migrations_applied(pool: &AnyPool, migrator: &sqlx::migrate::Migrator) -> bool {
    use sqlx::Row as _;
    let Ok(rows) = sqlx::query("SELECT version FROM _sqlx_migrations WHERE success").fetch_all(pool).await else {
        return false;
    };
    let applied: std::collections::HashSet<i64> = rows.iter().map(|row| row.get(0)).collect();
    migrator.iter().all(|migration| applied.contains(&migration.version))
}

impl Store {
    /// Opens the database at `url` (`sqlite://path` or `postgres://...`) and migrates it.
    pub async fn connect(url: &str, catalogue: Arc<Catalogue>) -> anyhow::Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            bail!("database URL must start with sqlite: or postgres:, got {url}");
        };
        let turns = Arc::<turns::WriterTurns>::default();
        let (pool, reads) = match backend {
            Backend::Sqlite => {
                let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)?;
                if let Some(dir) = options.get_filename().parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
                }
                let url = if url.contains('?') { url.to_string() } else { format!("{url}?mode=rwc") };
                let pool = sqlite_pool(&url, 1, false).await?;
                // Opened after the writer, which creates the file and switches it to WAL.
                let reads = sqlite_pool(&url, 2, true).await?;
                if sqlite_file(url.as_str()).is_some() {
                    let connection = sqlite_pool(&url, 1, false).await?;
                    tokio::spawn(checkpoint_while(Arc::downgrade(&turns), connection));
                }
                (pool, reads)
            }
            Backend::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(8)
                    .connect(url)
                    .await
                    .with_context(|| format!("connecting to {url}"))?;
                (pool.clone(), pool)
            }
        };
        let migrator = match backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        // A production role (deploy/postgres-roles.sql) may not create tables, not even the
        // migrator's own when it exists: a schema already up to date is left alone.
        if !migrations_applied(&pool, migrator).await {
            migrator.run(&pool).await.context(
                "migrating the database (a role without CREATE on the schema needs the schema's owner to run the hub once first)",
            )?;
        }
        Ok(Store { pool, reads, backend, catalogue, outbox_written: Arc::new(Notify::new()), turns })
    }

    /// A transaction no one waits for at a screen (consumers, duties): on SQLite people's
    /// transactions go first.
    pub async fn begin(&self) -> anyhow::Result<StoreTx<'_>> {
        self.begin_for(Waiting::NoOne).await
    }

    /// A transaction someone is waiting for (a counter's submission, an approver's decision):
    /// on SQLite it goes ahead of the background work waiting for the writer.
    pub async fn begin_now(&self) -> anyhow::Result<StoreTx<'_>> {
        self.begin_for(Waiting::Person).await
    }

    /// How long transactions have held SQLite's one writer in all (None on PostgreSQL, which
    /// has no one writer): against the time elapsed, how busy the writer is.
    pub fn writer_held(&self) -> Option<std::time::Duration> {
        (self.backend == Backend::Sqlite).then(|| self.turns.held())
    }

    /// Whether people wait for SQLite's one writer now or did within `lately` (never on
    /// PostgreSQL, which has no one writer): background work then holds it in shorter turns.
    pub fn people_at_the_writer(&self, lately: std::time::Duration) -> bool {
        self.backend == Backend::Sqlite && self.turns.people_lately(lately)
    }

    pub async fn begin_for(&self, waiting: Waiting) -> anyhow::Result<StoreTx<'_>> {
        let turn = match (self.backend, waiting) {
            (Backend::Sqlite, Waiting::Person) => Some(self.turns.for_person().await),
            (Backend::Sqlite, Waiting::NoOne) => Some(self.turns.for_background().await),
            (Backend::Postgres, _) => None,
        };
        Ok(StoreTx { tx: self.pool.begin().await?, store: self, enqueued: false, _turn: turn })
    }

    /// Joins the instances on this database (`url`, as connected) as `sharing` says, and
    /// stands for the background duties: on SQLite this instance must be the only one.
    pub async fn elections(&self, url: &str, sharing: Sharing) -> anyhow::Result<Elections> {
        match self.backend {
            Backend::Postgres => Elections::postgres(url, sharing).await,
            Backend::Sqlite => match sqlite_file(url) {
                None => Ok(Elections::private()),
                Some(file) => Elections::sqlite(&file),
            },
        }
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> anyhow::Result<()> {
        sqlx::query("SELECT 1").execute(&self.reads).await?;
        Ok(())
    }
}

/// One database transaction of the hub: case changes, outbox rows and applied-event records
/// commit together or not at all.
pub struct StoreTx<'s> {
    tx: Transaction<'static, Any>,
    store: &'s Store,
    enqueued: bool,
    /// Held to the end of the transaction (after `tx`, which is dropped first).
    _turn: Option<turns::Turn>,
}

impl StoreTx<'_> {
    pub async fn commit(self) -> anyhow::Result<()> {
        self.tx.commit().await?;
        if self.enqueued {
            self.store.outbox_written.notify_one();
        }
        Ok(())
    }

    pub async fn rollback(self) -> anyhow::Result<()> {
        self.tx.rollback().await?;
        Ok(())
    }

    /// Runs `{head} VALUES (...), (...) {tail}` for `rows`, a chunk of rows per statement: an
    /// INSERT of the rows, or an UPDATE … FROM the VALUES list.
    async fn execute_rows(&mut self, head: &str, tail: &str, rows: Vec<Vec<Param>>) -> anyhow::Result<()> {
        let Some(width) = rows.first().map(Vec::len) else { return Ok(()) };
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let chunk: Vec<Vec<Param>> = rows.by_ref().take(ROWS_PER_STATEMENT).collect();
            let sql = format!("{head} VALUES {} {tail}", Params::new(self.store.backend).rows(chunk.len(), width));
            let mut query = sqlx::query(&sql);
            for value in chunk.into_iter().flatten() {
                query = match value {
                    Param::Text(v) => query.bind(v),
                    Param::MaybeText(v) => query.bind(v),
                    Param::MaybeInt(v) => query.bind(v),
                    Param::Int(v) => query.bind(v),
                    Param::Bytes(v) => query.bind(v),
                };
            }
            query.execute(&mut *self.tx).await?;
        }
        Ok(())
    }
}

/// Another writer changed a case between this transaction's read and its write (its snapshot
/// moved on, or it wrote the same history entry first): the transaction, run again on what is
/// there now, may well succeed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConcurrentChange(pub String);

/// Whether `error` is a concurrent change of a case: a moved snapshot or a history entry
/// another instance wrote first.
pub fn is_concurrent_change(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| cause.is::<ConcurrentChange>()) || is_unique_violation(error)
}

/// Whether `error` is a row that broke a unique key (another instance inserted it first).
pub fn is_unique_violation(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        matches!(cause.downcast_ref::<sqlx::Error>(), Some(sqlx::Error::Database(db)) if db.is_unique_violation())
    })
}

/// A value for a statement parameter, owned so that rows can be built before their statement.
enum Param {
    Text(String),
    MaybeText(Option<String>),
    Int(i64),
    MaybeInt(Option<i64>),
    Bytes(Vec<u8>),
}

fn text(value: &str) -> Param {
    Param::Text(value.to_string())
}

/// Rows per multi-row statement: well below the bound-parameter limits of SQLite and PostgreSQL.
const ROWS_PER_STATEMENT: usize = 128;

/// Bind-parameter placeholders: numbered for PostgreSQL, anonymous for SQLite, whose lookup of
/// numbered ones by name costs time quadratic in their number.
struct Params {
    backend: Backend,
    issued: usize,
}

impl Params {
    fn new(backend: Backend) -> Params {
        Params { backend, issued: 0 }
    }

    fn next(&mut self) -> String {
        self.issued += 1;
        match self.backend {
            Backend::Sqlite => "?".to_string(),
            Backend::Postgres => format!("${}", self.issued),
        }
    }

    /// `count` placeholders, for an IN list.
    fn list(&mut self, count: usize) -> String {
        (0..count).map(|_| self.next()).collect::<Vec<_>>().join(", ")
    }

    /// `rows` parenthesised rows of `width` placeholders, for VALUES.
    fn rows(&mut self, rows: usize, width: usize) -> String {
        (0..rows).map(|_| format!("({})", self.list(width))).collect::<Vec<_>>().join(", ")
    }
}

/// The file of a SQLite database `url`; None for one in memory.
fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url).ok()?;
    let file = options.get_filename();
    (!file.as_os_str().is_empty() && !file.to_string_lossy().contains(":memory:")).then(|| file.to_path_buf())
}

/// How often the write-ahead log is copied into the database file.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// Copies the write-ahead log into the database file every `CHECKPOINT_EVERY` on a connection of
/// its own, for as long as the store's writer lives. Left to SQLite, the commit that fills the
/// log does it, fsync included, and everyone waiting for the writer waits for that too
/// (measured: a commit in eight took over 5 ms under load, none since).
async fn checkpoint_while(writer: std::sync::Weak<turns::WriterTurns>, connection: AnyPool) {
    let mut ticks = tokio::time::interval(CHECKPOINT_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut log_copied = 0;
    loop {
        ticks.tick().await;
        let Some(turns) = writer.upgrade() else { break };
        match checkpoint(&turns, &connection, log_copied).await {
            Ok(frames) => log_copied = frames,
            Err(error) => tracing::warn!(%error, "copying the write-ahead log into the database failed; trying again"),
        }
    }
    connection.close().await;
}

/// Frames (4 KiB pages) the log may reach before it is made to start over. Measured at 200
/// applications/s (2 cores, three interleaved runs each): 32 768 doubled the counter's p99
/// answer (55–66 ms against 25–40), 2 048 changed nothing beyond the runs' spread.
const LOG_RESTART_FRAMES: i64 = 8_192;

/// Copies the log beside the writer; once the log holds `LOG_RESTART_FRAMES` or more and grew
/// since the last round (`copied`), copies the rest in a turn of the writer's own and waits
/// there for the readers still on the log (RESTART), so that the next write starts it over.
/// Answers the frames the log holds. Under steady writing, copies beside the writer alone let
/// it grow without end (measured: 6 GB of log for a 1 GB ledger); so did a passive copy in the
/// writer's turn while readers kept reading (14 GB of log in a 100 000-case demo: some reader
/// always held an older snapshot). Taking the turn every round instead cost the counter's
/// answer ~10 ms at p99 (200/s).
async fn checkpoint(turns: &Arc<turns::WriterTurns>, connection: &AnyPool, copied: i64) -> anyhow::Result<i64> {
    use sqlx::Row as _;
    // Passive: copies what no reader still needs, never waits for the writer or readers.
    let passive = || async {
        anyhow::Ok(sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").fetch_one(connection).await?.get::<i64, _>(1))
    };
    let in_log = passive().await?;
    if in_log == copied || in_log < LOG_RESTART_FRAMES {
        return Ok(in_log);
    }
    let _turn = turns.for_background().await;
    // Writers wait while it does: a reader slower than this is left for the next round.
    sqlx::query("PRAGMA busy_timeout = 200").execute(connection).await?;
    Ok(sqlx::query("PRAGMA wal_checkpoint(RESTART)").fetch_one(connection).await?.get::<i64, _>(1))
}

/// A SQLite pool: the writer, or read-only connections beside it.
async fn sqlite_pool(url: &str, connections: u32, read_only: bool) -> anyhow::Result<AnyPool> {
    AnyPoolOptions::new()
        .max_connections(connections)
        // A local file's connection does not go stale: no ping before each transaction, which
        // cost a round trip to the connection's thread while holding the writer.
        .test_before_acquire(false)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                let mut pragmas = vec![
                    "PRAGMA journal_mode = WAL",
                    "PRAGMA synchronous = NORMAL",
                    "PRAGMA foreign_keys = ON",
                    "PRAGMA busy_timeout = 10000",
                    // `checkpoint_while` copies the log; after a backlog it shrinks back to this.
                    "PRAGMA wal_autocheckpoint = 0",
                    "PRAGMA journal_size_limit = 67108864",
                ];
                if read_only {
                    // Temporary tables stay in files: a report's sort or grouping over the whole
                    // history (the outbox by topic: 190 MB at 100 000 cases) must not be resident.
                    pragmas = vec!["PRAGMA query_only = ON", "PRAGMA busy_timeout = 10000"];
                } else {
                    // A statement's undo pages (multi-row inserts under unique keys) in memory
                    // rather than a temporary file.
                    pragmas.push("PRAGMA temp_store = MEMORY");
                }
                // 16 MiB of pages kept per connection instead of 2 MiB (the ledger's and outbox's
                // indexes were read back from the OS at every append).
                pragmas.push("PRAGMA cache_size = -16384");
                for pragma in pragmas {
                    sqlx::query(pragma).execute(&mut *conn).await?;
                }
                Ok(())
            })
        })
        .connect(url)
        .await
        .with_context(|| format!("opening {url}"))
}
