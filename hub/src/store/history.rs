//! The history of every case: each event as it was recorded, in order.
use contracts::Event;
use futures::TryStreamExt as _;
use sqlx::Row;

use super::{now_ms, text, Backend, Param, Params, Store, StoreTx};

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

    /// Every event of one kind, oldest first, as stored JSON (reviews, warnings).
    pub async fn events_of_kind(&self, kind: &str, limit: i64) -> anyhow::Result<Vec<serde_json::Value>> {
        let rows =
            sqlx::query("SELECT body FROM case_events WHERE kind = $1 ORDER BY recorded_at, case_number, seq LIMIT $2")
                .bind(kind)
                .bind(limit)
                .fetch_all(&self.reads)
                .await?;
        rows.iter().map(|row| Ok(serde_json::from_str(row.get::<String, _>(0).as_str())?)).collect()
    }

    /// Each case's first time (ms) of each of `kinds` up to `until`, None where it has none,
    /// handed to `each` case by case as the database yields them: every stage's latency from one
    /// pass, never holding a long run's cases at once.
    pub async fn each_case_first_times(
        &self,
        kinds: &[&str],
        until: i64,
        mut each: impl FnMut(&[Option<i64>]) + Send,
    ) -> anyhow::Result<()> {
        let mut params = Params::new(self.backend);
        let firsts: Vec<String> =
            kinds.iter().map(|_| format!("MIN(CASE WHEN kind = {} THEN occurred_at END)", params.next())).collect();
        let sql = format!(
            "SELECT {} FROM case_events WHERE occurred_at <= {} GROUP BY case_number",
            firsts.join(", "),
            params.next()
        );
        let mut query = sqlx::query(&sql);
        for kind in kinds {
            query = query.bind(*kind);
        }
        let mut rows = query.bind(until).fetch(&self.reads);
        let mut times = Vec::with_capacity(kinds.len());
        while let Some(row) = rows.try_next().await? {
            times.clear();
            times.extend((0..kinds.len()).map(|column| row.get::<Option<i64>, _>(column)));
            each(&times);
        }
        Ok(())
    }

    /// How many events of `kind` the histories hold for each combination of the values of
    /// `fields` (top-level fields of the event, as text, "" where absent or null), counted by
    /// the database: a scrape or a report costs the same memory however long the history.
    pub async fn tally_events(&self, kind: &str, fields: &[&str]) -> anyhow::Result<Vec<(Vec<String>, i64)>> {
        anyhow::ensure!(!fields.is_empty(), "a tally needs a field to count by");
        let columns: Vec<String> = fields
            .iter()
            .map(|field| {
                anyhow::ensure!(
                    !field.is_empty() && field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                    "not an event field: {field:?}"
                );
                Ok(match self.backend {
                    Backend::Sqlite => format!("COALESCE(CAST(json_extract(body, '$.{field}') AS TEXT), '')"),
                    Backend::Postgres => format!("COALESCE(CAST(body AS JSONB) ->> '{field}', '')"),
                })
            })
            .collect::<anyhow::Result<_>>()?;
        let groups = (1..=fields.len()).map(|n| n.to_string()).collect::<Vec<_>>().join(", ");
        let sql = format!(
            "SELECT {}, COUNT(*) FROM case_events WHERE kind = {} GROUP BY {groups}",
            columns.join(", "),
            Params::new(self.backend).next()
        );
        let rows = sqlx::query(&sql).bind(kind).fetch_all(&self.reads).await?;
        Ok(rows
            .iter()
            .map(|row| ((0..fields.len()).map(|column| row.get(column)).collect(), row.get(fields.len())))
            .collect())
    }
}

impl StoreTx<'_> {
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
        self.execute_rows(
            "INSERT INTO case_events (case_number, seq, event_id, kind, occurred_at, recorded_at, body)",
            "",
            rows,
        )
        .await
    }
}
