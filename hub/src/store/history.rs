//! The history of every case: each event as it was recorded, in order.
use contracts::Event;
use sqlx::Row;

use super::{now_ms, text, Param, Store, StoreTx};

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

    /// For each case with events of both kinds up to `until`, the time from its first `from`
    /// event to its first `to` event (ms): one stage's latencies, counted in the database so
    /// a long run's events are not all held at once.
    pub async fn stage_durations(&self, from: &str, to: &str, until: i64) -> anyhow::Result<Vec<i64>> {
        let rows = sqlx::query(
            "SELECT t.at - f.at FROM \
             (SELECT case_number, MIN(occurred_at) AS at FROM case_events \
              WHERE kind = $1 AND occurred_at <= $2 GROUP BY case_number) f \
             JOIN (SELECT case_number, MIN(occurred_at) AS at FROM case_events \
              WHERE kind = $3 AND occurred_at <= $4 GROUP BY case_number) t \
             ON t.case_number = f.case_number",
        )
        .bind(from)
        .bind(until)
        .bind(to)
        .bind(until)
        .fetch_all(&self.reads)
        .await?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
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
        self.insert_rows(
            "INSERT INTO case_events (case_number, seq, event_id, kind, occurred_at, recorded_at, body)",
            "",
            rows,
        )
        .await
    }
}
