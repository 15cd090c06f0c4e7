//! The database adapter: SQLite (default, WAL) or PostgreSQL through sqlx's `Any` driver, one
//! set of SQL for both. The database is the source of truth; Kafka carries what the outbox holds.
use std::collections::{BTreeMap, HashSet};
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use async_trait::async_trait;
use bus::{Outbox, OutboxMessage, OutboxStore};
use contracts::{Catalogue, Event};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, Row, Transaction};
use tokio::sync::Notify;

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
    pool: AnyPool,
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
        let pool = match backend {
            Backend::Sqlite => {
                let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)?;
                if let Some(dir) = options.get_filename().parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
                }
                let url = if url.contains('?') { url.to_string() } else { format!("{url}?mode=rwc") };
                // One connection: SQLite has one writer anyway, and a single connection never
                // meets a busy snapshot when a read transaction turns into a write.
                AnyPoolOptions::new()
                    .max_connections(1)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            for pragma in ["PRAGMA journal_mode = WAL", "PRAGMA synchronous = NORMAL", "PRAGMA foreign_keys = ON", "PRAGMA busy_timeout = 10000"] {
                                sqlx::query(pragma).execute(&mut *conn).await?;
                            }
                            Ok(())
                        })
                    })
                    .connect(&url)
                    .await
                    .with_context(|| format!("opening {url}"))?
            }
            Backend::Postgres => AnyPoolOptions::new().max_connections(8).connect(url).await.with_context(|| format!("connecting to {url}"))?,
        };
        match backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&pool).await,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&pool).await,
        }
        .context("migrating the database")?;
        Ok(Store { pool, catalogue, outbox_written: Arc::new(Notify::new()) })
    }

    pub async fn begin(&self) -> anyhow::Result<StoreTx<'_>> {
        Ok(StoreTx { tx: self.pool.begin().await?, store: self, enqueued: false })
    }

    pub async fn case(&self, case_number: &str) -> anyhow::Result<Option<CaseRecord>> {
        let Some(row) = sqlx::query("SELECT snapshot FROM cases WHERE case_number = $1").bind(case_number).fetch_optional(&self.pool).await? else {
            return Ok(None);
        };
        let case: Case = serde_json::from_str(row.get::<String, _>(0).as_str())?;
        let rows = sqlx::query("SELECT seq, event_id, kind, occurred_at, recorded_at, body FROM case_events WHERE case_number = $1 ORDER BY seq")
            .bind(case_number)
            .fetch_all(&self.pool)
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

    /// Cases waiting for a decision, oldest first, optionally for one department.
    pub async fn approval_queue(&self, department: Option<&str>, limit: i64) -> anyhow::Result<Vec<Case>> {
        let rows = sqlx::query(
            "SELECT snapshot FROM cases WHERE state = $1 AND ($2 = '' OR department = $2) ORDER BY updated_at, case_number LIMIT $3",
        )
        .bind(CaseState::Routed.as_str())
        .bind(department.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|row| Ok(serde_json::from_str(row.get::<String, _>(0).as_str())?)).collect()
    }

    pub async fn count_by_state(&self) -> anyhow::Result<BTreeMap<String, i64>> {
        let rows = sqlx::query("SELECT state, COUNT(*) FROM cases GROUP BY state").fetch_all(&self.pool).await?;
        Ok(rows.iter().map(|r| (r.get::<String, _>(0), r.get::<i64, _>(1))).collect())
    }

    /// Messages written to each topic through the outbox.
    pub async fn messages_per_topic(&self) -> anyhow::Result<BTreeMap<String, i64>> {
        let rows = sqlx::query("SELECT topic, COUNT(*) FROM outbox GROUP BY topic").fetch_all(&self.pool).await?;
        Ok(rows.iter().map(|r| (r.get::<String, _>(0), r.get::<i64, _>(1))).collect())
    }

    /// Number of messages written through the outbox and their mean size in bytes.
    pub async fn outbox_volume(&self) -> anyhow::Result<(i64, usize)> {
        let row = sqlx::query("SELECT COUNT(*), COALESCE(SUM(LENGTH(payload)), 0) FROM outbox").fetch_one(&self.pool).await?;
        let (count, bytes): (i64, i64) = (row.get(0), row.get(1));
        Ok((count, if count == 0 { 0 } else { (bytes / count) as usize }))
    }

    /// (case number, event kind, occurred_at) of every case event, for latency figures.
    pub async fn event_times(&self) -> anyhow::Result<Vec<(String, String, i64)>> {
        let rows = sqlx::query("SELECT case_number, kind, occurred_at FROM case_events ORDER BY case_number, seq").fetch_all(&self.pool).await?;
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
        for chunk in event_ids.chunks(200) {
            let placeholders: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
            let sql = format!("SELECT event_id FROM processed_events WHERE consumer = $1 AND event_id IN ({})", placeholders.join(","));
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

    /// Records that `consumer` applied `event_id`; false if it already had.
    pub async fn mark_applied(&mut self, consumer: &str, event_id: &str, outcome: &str) -> anyhow::Result<bool> {
        let inserted = sqlx::query(
            "INSERT INTO processed_events (consumer, event_id, applied_at, outcome) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(consumer)
        .bind(event_id)
        .bind(now_ms())
        .bind(outcome)
        .execute(&mut *self.tx)
        .await?
        .rows_affected();
        Ok(inserted == 1)
    }

    pub async fn next_case_serial(&mut self) -> anyhow::Result<i64> {
        let row = sqlx::query("UPDATE counters SET value = value + 1 WHERE name = 'case_serial' RETURNING value").fetch_one(&mut *self.tx).await?;
        Ok(row.get(0))
    }

    /// The case opened for a client's request id, if any.
    pub async fn case_for_request(&mut self, request_id: &str) -> anyhow::Result<Option<Case>> {
        let row = sqlx::query("SELECT snapshot FROM cases WHERE request_id = $1").bind(request_id).fetch_optional(&mut *self.tx).await?;
        row.map(|r| parse_snapshot(&r)).transpose()
    }

    pub async fn load_case(&mut self, case_number: &str) -> anyhow::Result<Option<Case>> {
        let row = sqlx::query("SELECT snapshot FROM cases WHERE case_number = $1").bind(case_number).fetch_optional(&mut *self.tx).await?;
        row.map(|r| parse_snapshot(&r)).transpose()
    }

    pub async fn insert_case(&mut self, request_id: &str, case: &Case) -> anyhow::Result<()> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO cases (case_number, request_id, state, seq, service_point, department, snapshot, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
        )
        .bind(&case.case_number)
        .bind(request_id)
        .bind(case.state.as_str())
        .bind(i64::from(case.seq))
        .bind(&case.application.service_point.code)
        .bind(case.department_code.clone())
        .bind(serde_json::to_string(case)?)
        .bind(now)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Saves a case that was loaded at `loaded_seq`; fails if someone else changed it since.
    pub async fn update_case(&mut self, case: &Case, loaded_seq: u32) -> anyhow::Result<()> {
        let updated = sqlx::query(
            "UPDATE cases SET state = $1, seq = $2, department = $3, snapshot = $4, updated_at = $5 WHERE case_number = $6 AND seq = $7",
        )
        .bind(case.state.as_str())
        .bind(i64::from(case.seq))
        .bind(case.department_code.clone())
        .bind(serde_json::to_string(case)?)
        .bind(now_ms())
        .bind(&case.case_number)
        .bind(i64::from(loaded_seq))
        .execute(&mut *self.tx)
        .await?
        .rows_affected();
        if updated != 1 {
            bail!("case {} changed concurrently (expected seq {loaded_seq})", case.case_number);
        }
        Ok(())
    }

    /// Appends events to a case's history, numbered from `first_seq`.
    pub async fn append_history(&mut self, first_seq: u32, events: &[Event]) -> anyhow::Result<()> {
        let now = now_ms();
        for (seq, event) in (first_seq..).zip(events) {
            sqlx::query(
                "INSERT INTO case_events (case_number, seq, event_id, kind, occurred_at, recorded_at, body) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(event.case_number())
            .bind(i64::from(seq))
            .bind(event.event_id())
            .bind(event.kind())
            .bind(event.occurred_at())
            .bind(now)
            .bind(serde_json::to_string(event)?)
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(())
    }

    /// Writes events to the outbox, each to the topic the catalogue assigns its record.
    pub async fn enqueue(&mut self, events: &[Event]) -> anyhow::Result<()> {
        let now = now_ms();
        for event in events {
            let record = event.record_name();
            let topic = self.store.catalogue.topic_of(&record).with_context(|| format!("no topic in the catalogue carries {record}"))?;
            let payload = contracts::encode(event)?;
            sqlx::query("INSERT INTO outbox (event_id, topic, message_key, payload, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING")
                .bind(event.event_id())
                .bind(&topic.name)
                .bind(event.case_number())
                .bind(payload)
                .bind(now)
                .execute(&mut *self.tx)
                .await?;
            self.enqueued = true;
        }
        Ok(())
    }
}

fn parse_snapshot(row: &AnyRow) -> anyhow::Result<Case> {
    Ok(serde_json::from_str(row.get::<String, _>(0).as_str())?)
}

#[async_trait]
impl OutboxStore for Store {
    async fn unpublished(&self, limit: i64) -> anyhow::Result<Vec<OutboxMessage>> {
        let rows = sqlx::query("SELECT id, topic, message_key, payload FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT $1")
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| OutboxMessage { id: r.get(0), topic: r.get(1), key: r.get(2), payload: r.get(3) })
            .collect())
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
    async fn apply(&self, consumer: &str, source_event_id: &str, events: &[Event]) -> anyhow::Result<bool> {
        let mut tx = self.begin().await?;
        if !tx.mark_applied(consumer, source_event_id, "applied").await? {
            tx.rollback().await?;
            return Ok(false);
        }
        tx.enqueue(events).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn is_applied(&self, consumer: &str, source_event_id: &str) -> anyhow::Result<bool> {
        let row = sqlx::query("SELECT 1 FROM processed_events WHERE consumer = $1 AND event_id = $2")
            .bind(consumer)
            .bind(source_event_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }
}
