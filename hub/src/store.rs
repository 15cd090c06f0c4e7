//! The database adapter: SQLite (default, WAL) or PostgreSQL through sqlx's `Any` driver, one
//! set of SQL for both. The database is the source of truth; Kafka carries what the outbox holds.
use std::collections::{BTreeMap, HashMap, HashSet};
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use async_trait::async_trait;
use bus::{Effect, Outbox, OutboxMessage, OutboxStore};
use contracts::{Catalogue, Event};
use sqlx::any::AnyPoolOptions;
use sqlx::{Any, AnyPool, Row, Transaction};
use tokio::sync::Notify;

mod connector_state;
mod ledger;
mod tokens;

pub use connector_state::keep_control_changes;
pub use ledger::{ArchiveRecord, LedgerSearch, LEDGER_PAGE};
pub use tokens::TokenRecord;

use crate::domain::access::CaseScope;
use crate::domain::reference::Matter;
use crate::domain::{Case, CaseState};

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
}

/// A case with its history, as the API shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CaseRecord {
    pub case: Case,
    pub history: Vec<HistoryEntry>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct HistoryEntry {
    pub seq: i64,
    pub event_id: String,
    pub kind: String,
    pub occurred_at: i64,
    pub recorded_at: i64,
    pub event: serde_json::Value,
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
                (pool, reads)
            }
            Backend::Postgres => {
                let pool = AnyPoolOptions::new().max_connections(8).connect(url).await.with_context(|| format!("connecting to {url}"))?;
                (pool.clone(), pool)
            }
        };
        match backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&pool).await,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&pool).await,
        }
        .context("migrating the database")?;
        Ok(Store { pool, reads, backend, catalogue, outbox_written: Arc::new(Notify::new()) })
    }

    pub async fn begin(&self) -> anyhow::Result<StoreTx<'_>> {
        Ok(StoreTx { tx: self.pool.begin().await?, store: self, enqueued: false })
    }

    pub async fn case(&self, case_number: &str) -> anyhow::Result<Option<CaseRecord>> {
        // One read transaction: the snapshot and the history agree.
        let mut read = self.reads.begin().await?;
        let Some(row) = sqlx::query("SELECT snapshot FROM cases WHERE case_number = $1").bind(case_number).fetch_optional(&mut *read).await? else {
            return Ok(None);
        };
        let case: Case = serde_json::from_str(row.get::<String, _>(0).as_str())?;
        let rows = sqlx::query("SELECT seq, event_id, kind, occurred_at, recorded_at, body FROM case_events WHERE case_number = $1 ORDER BY seq")
            .bind(case_number)
            .fetch_all(&mut *read)
            .await?;
        let history = rows
            .iter()
            .map(|row| {
                Ok(HistoryEntry {
                    seq: row.get(0),
                    event_id: row.get(1),
                    kind: row.get(2),
                    occurred_at: row.get(3),
                    recorded_at: row.get(4),
                    event: serde_json::from_str(row.get::<String, _>(5).as_str())?,
                })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Some(CaseRecord { case, history }))
    }

    /// Cases in `state`, longest waiting first, optionally of one handling department.
    /// Cases in a state within a seat's scope (and one department's, if given), longest
    /// waiting first.
    pub async fn cases_in_state(&self, state: CaseState, department: Option<&str>, scope: &CaseScope, limit: i64) -> anyhow::Result<Vec<Case>> {
        let mut params = Params::new(self.backend);
        let mut sql = format!("SELECT snapshot FROM cases WHERE state = {}", params.next());
        let mut values: Vec<String> = vec![state.as_str().to_string()];
        if let Some(department) = department {
            sql.push_str(&format!(" AND department = {}", params.next()));
            values.push(department.to_string());
        }
        match scope {
            CaseScope::All => {}
            CaseScope::Nothing => return Ok(Vec::new()),
            CaseScope::Of { service_points, authorities } => {
                let mut within = Vec::new();
                for (column, codes) in [("service_point", service_points), ("department", authorities)].into_iter().filter(|(_, codes)| !codes.is_empty()) {
                    within.push(format!("{column} IN ({})", params.list(codes.len())));
                    values.extend(codes.iter().cloned());
                }
                if within.is_empty() {
                    return Ok(Vec::new());
                }
                sql.push_str(&format!(" AND ({})", within.join(" OR ")));
            }
        }
        sql.push_str(&format!(" ORDER BY updated_at, case_number LIMIT {}", params.next()));
        let mut query = sqlx::query(&sql);
        for value in &values {
            query = query.bind(value);
        }
        let rows = query.bind(limit).fetch_all(&self.reads).await?;
        rows.iter().map(|row| Ok(serde_json::from_str(row.get::<String, _>(0).as_str())?)).collect()
    }

    /// The cases among `case_numbers` that exist, each with the request id that opened it.
    pub async fn cases_with_requests(&self, case_numbers: &[&str]) -> anyhow::Result<Vec<(String, Case)>> {
        let mut cases = Vec::new();
        let unique: Vec<&str> = case_numbers.iter().copied().collect::<HashSet<_>>().into_iter().collect();
        for chunk in unique.chunks(ROWS_PER_STATEMENT) {
            let sql = format!("SELECT request_id, snapshot FROM cases WHERE case_number IN ({})", Params::new(self.backend).list(chunk.len()));
            let mut query = sqlx::query(&sql);
            for number in chunk {
                query = query.bind(*number);
            }
            for row in query.fetch_all(&self.reads).await? {
                cases.push((row.get(0), serde_json::from_str(row.get::<String, _>(1).as_str())?));
            }
        }
        Ok(cases)
    }

    /// Events of one kind in the cases' histories that occurred in `[from, until)`, oldest first.
    pub async fn events_between(&self, kind: &str, from: i64, until: i64) -> anyhow::Result<Vec<Event>> {
        let rows = sqlx::query("SELECT body FROM case_events WHERE kind = $1 AND occurred_at >= $2 AND occurred_at < $3 ORDER BY occurred_at, case_number, seq")
            .bind(kind)
            .bind(from)
            .bind(until)
            .fetch_all(&self.reads)
            .await?;
        rows.iter().map(|row| Ok(serde_json::from_str(row.get::<String, _>(0).as_str())?)).collect()
    }

    /// Keeps a reconciliation report of `day`; every run is kept.
    pub async fn save_reconciliation(&self, day: &str, report: &serde_json::Value) -> anyhow::Result<()> {
        sqlx::query("INSERT INTO reconciliations (day, run_at, report) VALUES ($1, $2, $3)")
            .bind(day)
            .bind(now_ms())
            .bind(report.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The latest reconciliation report of `day`.
    pub async fn latest_reconciliation(&self, day: &str) -> anyhow::Result<Option<serde_json::Value>> {
        let row = sqlx::query("SELECT report FROM reconciliations WHERE day = $1 ORDER BY run_at DESC LIMIT 1").bind(day).fetch_optional(&self.reads).await?;
        row.map(|row| Ok(serde_json::from_str(row.get::<String, _>(0).as_str())?)).transpose()
    }

    /// Keeps matter versions taken from the provincial platform.
    pub async fn save_matter_versions(&self, matters: &[Matter]) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await?;
        for matter in matters {
            sqlx::query("INSERT INTO matter_versions (implementation_code, version, body, synced_at) VALUES ($1, $2, $3, $4)")
                .bind(&matter.implementation_code)
                .bind(i64::from(matter.version))
                .bind(serde_json::to_string(matter)?)
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every matter version taken from the platform, oldest first.
    pub async fn matter_versions(&self) -> anyhow::Result<Vec<Matter>> {
        let rows = sqlx::query("SELECT body FROM matter_versions ORDER BY implementation_code, version").fetch_all(&self.reads).await?;
        rows.iter().map(|row| Ok(serde_json::from_str(row.get::<String, _>(0).as_str())?)).collect()
    }

    /// Cases whose deadline timer is due on or before `day`, earliest first.
    pub async fn cases_with_timer_due(&self, day: i32, limit: i64) -> anyhow::Result<Vec<String>> {
        let rows = sqlx::query("SELECT case_number FROM cases WHERE timer_day <= $1 ORDER BY timer_day, case_number LIMIT $2")
            .bind(i64::from(day))
            .bind(limit)
            .fetch_all(&self.reads)
            .await?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    /// Every event of one kind, oldest first, as stored JSON (reviews, warnings).
    pub async fn events_of_kind(&self, kind: &str, limit: i64) -> anyhow::Result<Vec<serde_json::Value>> {
        let rows = sqlx::query("SELECT body FROM case_events WHERE kind = $1 ORDER BY recorded_at, case_number, seq LIMIT $2")
            .bind(kind)
            .bind(limit)
            .fetch_all(&self.reads)
            .await?;
        rows.iter().map(|row| Ok(serde_json::from_str(row.get::<String, _>(0).as_str())?)).collect()
    }

    /// The (event id, recipient) pairs among `event_ids` whose e-mail went out.
    pub async fn notifications_sent(&self, event_ids: &[&str]) -> anyhow::Result<HashSet<(String, String)>> {
        let mut sent = HashSet::new();
        for chunk in event_ids.chunks(ROWS_PER_STATEMENT) {
            let mut params = Params::new(self.backend);
            let sql = format!("SELECT event_id, recipient FROM notifications WHERE outcome = 'sent' AND event_id IN ({})", params.list(chunk.len()));
            let mut query = sqlx::query(&sql);
            for id in chunk {
                query = query.bind(*id);
            }
            for row in query.fetch_all(&self.reads).await? {
                sent.insert((row.get(0), row.get(1)));
            }
        }
        Ok(sent)
    }

    /// Every e-mail sent or attempted: event id, recipient, template, version, outcome.
    pub async fn notifications(&self) -> anyhow::Result<Vec<(String, String, String, i64, String)>> {
        let rows = sqlx::query("SELECT event_id, recipient, template, template_version, outcome FROM notifications ORDER BY sent_at, event_id, recipient")
            .fetch_all(&self.reads)
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))).collect())
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> anyhow::Result<()> {
        sqlx::query("SELECT 1").execute(&self.reads).await?;
        Ok(())
    }

    pub async fn count_by_state(&self) -> anyhow::Result<BTreeMap<String, i64>> {
        let rows = sqlx::query("SELECT state, COUNT(*) FROM cases GROUP BY state").fetch_all(&self.reads).await?;
        Ok(rows.iter().map(|r| (r.get::<String, _>(0), r.get::<i64, _>(1))).collect())
    }

    /// Messages written to each topic through the outbox.
    pub async fn messages_per_topic(&self) -> anyhow::Result<BTreeMap<String, i64>> {
        let rows = sqlx::query("SELECT topic, COUNT(*) FROM outbox GROUP BY topic").fetch_all(&self.reads).await?;
        Ok(rows.iter().map(|r| (r.get::<String, _>(0), r.get::<i64, _>(1))).collect())
    }

    /// Number of messages written through the outbox and their mean size in bytes.
    pub async fn outbox_volume(&self) -> anyhow::Result<(i64, usize)> {
        let row = sqlx::query("SELECT COUNT(*), COALESCE(SUM(LENGTH(payload)), 0) FROM outbox").fetch_one(&self.reads).await?;
        let (count, bytes): (i64, i64) = (row.get(0), row.get(1));
        Ok((count, if count == 0 { 0 } else { (bytes / count) as usize }))
    }

    /// (case number, event kind, occurred_at) of every case event, for latency figures.
    pub async fn event_times(&self) -> anyhow::Result<Vec<(String, String, i64)>> {
        let rows = sqlx::query("SELECT case_number, kind, occurred_at FROM case_events ORDER BY case_number, seq").fetch_all(&self.reads).await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
    }

    /// Makes the outbox publish again every event that some consumer named in the catalogue
    /// has not applied yet, and marks the rest settled. Run at start, before the consumers:
    /// an embedded broker starts empty, so whatever was in flight when the process stopped is
    /// sent again; idempotent consumers drop what they had already applied.
    pub async fn resettle_outbox(&self) -> anyhow::Result<(u64, u64)> {
        let now = now_ms();
        let (mut republished, mut settled) = (0, 0);
        for topic in &self.catalogue.topics {
            if topic.consumers.is_empty() {
                continue;
            }
            let consumers: Vec<String> = topic.consumers.iter().map(|c| format!("'{}'", c.replace('\'', "''"))).collect();
            let applied_by_all = format!(
                "(SELECT COUNT(*) FROM processed_events p WHERE p.event_id = outbox.event_id AND p.consumer IN ({})) = {}",
                consumers.join(","),
                consumers.len()
            );
            settled += sqlx::query(&format!("UPDATE outbox SET settled_at = $1 WHERE topic = $2 AND settled_at IS NULL AND {applied_by_all}"))
                .bind(now)
                .bind(&topic.name)
                .execute(&self.pool)
                .await?
                .rows_affected();
            republished += sqlx::query("UPDATE outbox SET published_at = NULL WHERE topic = $1 AND settled_at IS NULL AND published_at IS NOT NULL")
                .bind(&topic.name)
                .execute(&self.pool)
                .await?
                .rows_affected();
        }
        Ok((republished, settled))
    }
}

/// One database transaction of the hub: case changes, outbox rows and applied-event records
/// commit together or not at all.
pub struct StoreTx<'s> {
    tx: Transaction<'static, Any>,
    store: &'s Store,
    enqueued: bool,
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

    /// Which of `event_ids` `consumer` has already applied.
    pub async fn applied_among(&mut self, consumer: &str, event_ids: &[&str]) -> anyhow::Result<HashSet<String>> {
        let mut applied = HashSet::new();
        for chunk in event_ids.chunks(ROWS_PER_STATEMENT) {
            let mut params = Params::new(self.store.backend);
            let sql = format!("SELECT event_id FROM processed_events WHERE consumer = {} AND event_id IN ({})", params.next(), params.list(chunk.len()));
            let mut query = sqlx::query(&sql).bind(consumer);
            for id in chunk {
                query = query.bind(*id);
            }
            for row in query.fetch_all(&mut *self.tx).await? {
                applied.insert(row.get::<String, _>(0));
            }
        }
        Ok(applied)
    }

    /// Records that `consumer` applied each `(event_id, outcome)`; ones recorded before stay as they were.
    pub async fn mark_applied(&mut self, consumer: &str, applied: &[(&str, &str)]) -> anyhow::Result<()> {
        let now = now_ms();
        let rows = applied.iter().map(|(event_id, outcome)| vec![text(consumer), text(event_id), Param::Int(now), text(outcome)]).collect();
        self.insert_rows("INSERT INTO processed_events (consumer, event_id, applied_at, outcome)", "ON CONFLICT DO NOTHING", rows).await
    }

    /// Records e-mails sent or attempted; a later attempt's outcome replaces an earlier one's.
    pub async fn record_notifications(&mut self, sends: &[(&str, &str, &str, i64, &str)]) -> anyhow::Result<()> {
        let now = now_ms();
        let rows = sends
            .iter()
            .map(|(event_id, recipient, template, version, outcome)| vec![text(event_id), text(recipient), text(template), Param::Int(*version), text(outcome), Param::Int(now)])
            .collect();
        let conflict = "ON CONFLICT (event_id, recipient) DO UPDATE SET outcome = excluded.outcome, sent_at = excluded.sent_at";
        self.insert_rows("INSERT INTO notifications (event_id, recipient, template, template_version, outcome, sent_at)", conflict, rows).await
    }

    /// Reserves `count` case serial numbers; returns the first.
    pub async fn reserve_case_serials(&mut self, count: usize) -> anyhow::Result<i64> {
        let row = sqlx::query("UPDATE counters SET value = value + $1 WHERE name = 'case_serial' RETURNING value")
            .bind(count as i64)
            .fetch_one(&mut *self.tx)
            .await?;
        Ok(row.get::<i64, _>(0) - count as i64 + 1)
    }

    /// The cases already opened for any of these client request ids, by request id.
    pub async fn cases_for_requests(&mut self, request_ids: &[&str]) -> anyhow::Result<HashMap<String, Case>> {
        self.select_cases("request_id", request_ids).await
    }

    /// The cases among `case_numbers` that exist, by number.
    pub async fn load_cases(&mut self, case_numbers: &[&str]) -> anyhow::Result<HashMap<String, Case>> {
        self.select_cases("case_number", case_numbers).await
    }

    async fn select_cases(&mut self, column: &str, keys: &[&str]) -> anyhow::Result<HashMap<String, Case>> {
        let mut cases = HashMap::new();
        for chunk in keys.chunks(ROWS_PER_STATEMENT) {
            let sql = format!("SELECT {column}, snapshot FROM cases WHERE {column} IN ({})", Params::new(self.store.backend).list(chunk.len()));
            let mut query = sqlx::query(&sql);
            for key in chunk {
                query = query.bind(*key);
            }
            for row in query.fetch_all(&mut *self.tx).await? {
                let case: Case = serde_json::from_str(row.get::<String, _>(1).as_str())?;
                cases.insert(row.get::<String, _>(0), case);
            }
        }
        Ok(cases)
    }

    /// Inserts new cases, each with the client request id that opened it.
    pub async fn insert_cases(&mut self, cases: &[(&str, &Case)]) -> anyhow::Result<()> {
        let now = now_ms();
        let rows = cases
            .iter()
            .map(|(request_id, case)| {
                Ok(vec![
                    text(&case.case_number),
                    text(request_id),
                    text(case.state.as_str()),
                    Param::Int(i64::from(case.seq)),
                    text(&case.application.service_point.code),
                    Param::MaybeText(case.department_code.clone()),
                    Param::Text(serde_json::to_string(case)?),
                    Param::Int(now),
                    Param::Int(now),
                ])
            })
            .collect::<anyhow::Result<_>>()?;
        let head = "INSERT INTO cases (case_number, request_id, state, seq, service_point, department, snapshot, created_at, updated_at)";
        self.insert_rows(head, "", rows).await
    }

    /// Saves cases, each loaded at the sequence number given with it; fails, and the whole
    /// transaction with it, if any was changed by someone else since.
    pub async fn update_cases(&mut self, cases: &[(&Case, u32)]) -> anyhow::Result<()> {
        let now = now_ms();
        for chunk in cases.chunks(ROWS_PER_STATEMENT) {
            // VALUES columns are column1..column8 on both SQLite and PostgreSQL; the casts give
            // PostgreSQL their types.
            let mut params = Params::new(self.store.backend);
            let rows: Vec<String> = (0..chunk.len())
                .map(|_| {
                    let types = ["TEXT", "BIGINT", "TEXT", "BIGINT", "TEXT", "TEXT", "BIGINT", "BIGINT"];
                    let values: Vec<String> = types.iter().map(|t| format!("CAST({} AS {t})", params.next())).collect();
                    format!("({})", values.join(", "))
                })
                .collect();
            let sql = format!(
                "UPDATE cases SET state = v.column3, seq = v.column4, department = v.column5, snapshot = v.column6, updated_at = v.column7, timer_day = v.column8 \
                 FROM (VALUES {}) AS v WHERE cases.case_number = v.column1 AND cases.seq = v.column2",
                rows.join(", ")
            );
            let mut query = sqlx::query(&sql);
            for (case, loaded_seq) in chunk {
                query = query
                    .bind(case.case_number.clone())
                    .bind(i64::from(*loaded_seq))
                    .bind(case.state.as_str())
                    .bind(i64::from(case.seq))
                    .bind(case.department_code.clone())
                    .bind(serde_json::to_string(case)?)
                    .bind(now)
                    .bind(case.timer_day.map(i64::from));
            }
            let updated = query.execute(&mut *self.tx).await?.rows_affected();
            if updated != chunk.len() as u64 {
                let numbers: Vec<&str> = chunk.iter().map(|(case, _)| case.case_number.as_str()).collect();
                bail!("{} of the cases {numbers:?} changed concurrently", chunk.len() as u64 - updated);
            }
        }
        Ok(())
    }

    /// Appends events to their cases' histories, each at the sequence number given with it.
    pub async fn append_history(&mut self, entries: &[(u32, &Event)]) -> anyhow::Result<()> {
        let now = now_ms();
        let rows = entries
            .iter()
            .map(|(seq, event)| {
                Ok(vec![
                    text(event.case_number()),
                    Param::Int(i64::from(*seq)),
                    text(event.event_id()),
                    text(event.kind()),
                    Param::Int(event.occurred_at()),
                    Param::Int(now),
                    Param::Text(serde_json::to_string(event)?),
                ])
            })
            .collect::<anyhow::Result<_>>()?;
        self.insert_rows("INSERT INTO case_events (case_number, seq, event_id, kind, occurred_at, recorded_at, body)", "", rows).await
    }

    /// Writes events to the outbox, in order, each to the topic the catalogue assigns its record.
    pub async fn enqueue(&mut self, events: &[Event]) -> anyhow::Result<()> {
        let now = now_ms();
        let rows = events
            .iter()
            .map(|event| {
                let record = event.record_name();
                let topic = self.store.catalogue.topic_of(&record).with_context(|| format!("no topic in the catalogue carries {record}"))?;
                Ok(vec![text(event.event_id()), text(&topic.name), text(event.case_number()), Param::Bytes(contracts::encode(event)?), Param::Int(now)])
            })
            .collect::<anyhow::Result<_>>()?;
        self.insert_rows("INSERT INTO outbox (event_id, topic, message_key, payload, created_at)", "ON CONFLICT DO NOTHING", rows).await?;
        self.enqueued |= !events.is_empty();
        Ok(())
    }

    /// Runs `{head} VALUES (...), (...) {tail}` for `rows`, a chunk of rows per statement.
    async fn insert_rows(&mut self, head: &str, tail: &str, rows: Vec<Vec<Param>>) -> anyhow::Result<()> {
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
                    Param::Int(v) => query.bind(v),
                    Param::Bytes(v) => query.bind(v),
                };
            }
            query.execute(&mut *self.tx).await?;
        }
        Ok(())
    }
}

/// A value for a statement parameter, owned so that rows can be built before their statement.
enum Param {
    Text(String),
    MaybeText(Option<String>),
    Int(i64),
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

/// A SQLite pool: the writer, or read-only connections beside it.
async fn sqlite_pool(url: &str, connections: u32, read_only: bool) -> anyhow::Result<AnyPool> {
    AnyPoolOptions::new()
        .max_connections(connections)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                let mut pragmas = vec!["PRAGMA journal_mode = WAL", "PRAGMA synchronous = NORMAL", "PRAGMA foreign_keys = ON", "PRAGMA busy_timeout = 10000"];
                if read_only {
                    pragmas = vec!["PRAGMA query_only = ON", "PRAGMA busy_timeout = 10000"];
                }
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

#[async_trait]
impl OutboxStore for Store {
    async fn unpublished_ids(&self, after: i64, limit: i64) -> anyhow::Result<Vec<i64>> {
        let rows = sqlx::query("SELECT id FROM outbox WHERE published_at IS NULL AND id > $1 ORDER BY id LIMIT $2")
            .bind(after)
            .bind(limit)
            .fetch_all(&self.reads)
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn messages(&self, ids: &[i64]) -> anyhow::Result<Vec<OutboxMessage>> {
        let mut messages = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            let sql = format!("SELECT id, topic, message_key, payload FROM outbox WHERE id IN ({}) ORDER BY id", Params::new(self.backend).list(chunk.len()));
            let mut query = sqlx::query(&sql);
            for id in chunk {
                query = query.bind(*id);
            }
            for row in query.fetch_all(&self.reads).await? {
                messages.push(OutboxMessage { id: row.get(0), topic: row.get(1), key: row.get(2), payload: row.get(3) });
            }
        }
        Ok(messages)
    }

    fn ids_follow_commit_order(&self) -> bool {
        self.backend == Backend::Sqlite
    }

    async fn mark_published(&self, ids: &[i64]) -> anyhow::Result<()> {
        let now = now_ms();
        for chunk in ids.chunks(500) {
            let list: Vec<String> = chunk.iter().map(i64::to_string).collect();
            sqlx::query(&format!("UPDATE outbox SET published_at = $1 WHERE id IN ({})", list.join(",")))
                .bind(now)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Outbox for Store {
    async fn applied_among(&self, consumer: &str, source_event_ids: &[&str]) -> anyhow::Result<HashSet<String>> {
        let mut tx = self.begin().await?;
        let applied = tx.applied_among(consumer, source_event_ids).await?;
        tx.rollback().await?;
        Ok(applied)
    }

    async fn apply_all(&self, consumer: &str, effects: &[Effect]) -> anyhow::Result<Vec<bool>> {
        let mut tx = self.begin().await?;
        let ids: Vec<&str> = effects.iter().map(|e| e.source_event_id.as_str()).collect();
        let mut seen = tx.applied_among(consumer, &ids).await?;
        let fresh: Vec<bool> = effects.iter().map(|e| seen.insert(e.source_event_id.clone())).collect();
        let applied: Vec<&Effect> = effects.iter().zip(&fresh).filter(|(_, new)| **new).map(|(e, _)| e).collect();
        let marks: Vec<(&str, &str)> = applied.iter().map(|e| (e.source_event_id.as_str(), "applied")).collect();
        let events: Vec<Event> = applied.iter().flat_map(|e| e.events.iter().cloned()).collect();
        tx.mark_applied(consumer, &marks).await?;
        tx.enqueue(&events).await?;
        tx.commit().await?;
        Ok(fresh)
    }
}
