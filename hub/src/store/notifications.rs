//! The notices mailed to applicants: one send per event and template, recorded.
use std::collections::HashSet;

use sqlx::Row;

use super::{now_ms, text, Param, Params, Store, StoreTx, ROWS_PER_STATEMENT};

impl Store {
    /// The (event id, recipient) pairs among `event_ids` whose e-mail went out.
    pub async fn notifications_sent(&self, event_ids: &[&str]) -> anyhow::Result<HashSet<(String, String)>> {
        let mut sent = HashSet::new();
        for chunk in event_ids.chunks(ROWS_PER_STATEMENT) {
            let mut params = Params::new(self.backend);
            let sql = format!(
                "SELECT event_id, recipient FROM notifications WHERE outcome = 'sent' AND event_id IN ({})",
                params.list(chunk.len())
            );
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
}

impl StoreTx<'_> {
    /// Records e-mails sent or attempted; a later attempt's outcome replaces an earlier one's.
    pub async fn record_notifications(&mut self, sends: &[(&str, &str, &str, i64, &str)]) -> anyhow::Result<()> {
        let now = now_ms();
        let rows = sends
            .iter()
            .map(|(event_id, recipient, template, version, outcome)| {
                vec![
                    text(event_id),
                    text(recipient),
                    text(template),
                    Param::Int(*version),
                    text(outcome),
                    Param::Int(now),
                ]
            })
            .collect();
        let conflict =
            "ON CONFLICT (event_id, recipient) DO UPDATE SET outcome = excluded.outcome, sent_at = excluded.sent_at";
        self.execute_rows(
            "INSERT INTO notifications (event_id, recipient, template, template_version, outcome, sent_at)",
            conflict,
            rows,
        )
        .await
    }
}
