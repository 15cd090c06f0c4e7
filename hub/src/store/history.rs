//! The history of every case: each event as it was recorded, in order.
use contracts::Event;
use sqlx::Row;

use super::{now_ms, text, Param, Params, Store, StoreTx};

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

    /// Each case's first time (ms) of each of `kinds` up to `until`, None where it has none:
    /// every stage's latency from one pass, without holding a long run's events at once.
    pub async fn first_event_times(&self, kinds: &[&str], until: i64) -> anyhow::Result<Vec<Vec<Option<i64>>>> {
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
        let rows = query.bind(until).fetch_all(&self.reads).await?;
        Ok(rows.iter().map(|row| (0..kinds.len()).map(|column| row.get(column)).collect()).collect())
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
