//! Connector incidents and operators' pauses, kept so that a restarted hub shows them again.
use std::collections::BTreeMap;

use connectors::framework::control::{Connectors, ControlChange, Incident, SavedControl};
use sqlx::Row as _;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{now_ms, Store};

impl Store {
    pub async fn keep_control_change(&self, change: &ControlChange) -> anyhow::Result<()> {
        match change {
            ControlChange::Incident { connector, incident } => {
                sqlx::query(
                    "INSERT INTO connector_incidents (connector, id, opened_at, reason, resolved_at, resolved_by) VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (connector, id) DO UPDATE SET resolved_at = excluded.resolved_at, resolved_by = excluded.resolved_by",
                )
                .bind(connector)
                .bind(incident.id as i64)
                .bind(incident.opened_at)
                .bind(&incident.reason)
                .bind(incident.resolved_at)
                .bind(&incident.resolved_by)
                .execute(&self.pool)
                .await?;
            }
            ControlChange::Pause { connector, reason: Some(reason) } => {
                sqlx::query("INSERT INTO connector_pauses (connector, reason, paused_at) VALUES ($1, $2, $3) ON CONFLICT (connector) DO UPDATE SET reason = excluded.reason, paused_at = excluded.paused_at")
                    .bind(connector)
                    .bind(reason)
                    .bind(now_ms())
                    .execute(&self.pool)
                    .await?;
            }
            ControlChange::Pause { connector, reason: None } => {
                sqlx::query("DELETE FROM connector_pauses WHERE connector = $1")
                    .bind(connector)
                    .execute(&self.pool)
                    .await?;
            }
        }
        Ok(())
    }

    /// Every operator's pause in force: connector name and reason.
    pub async fn pauses(&self) -> anyhow::Result<BTreeMap<String, String>> {
        let rows = sqlx::query("SELECT connector, reason FROM connector_pauses").fetch_all(&self.reads).await?;
        Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
    }

    /// Every connector's kept pause and incidents, by connector name.
    pub async fn saved_controls(&self) -> anyhow::Result<BTreeMap<String, SavedControl>> {
        let mut saved: BTreeMap<String, SavedControl> = BTreeMap::new();
        let incidents = sqlx::query("SELECT connector, id, opened_at, reason, resolved_at, resolved_by FROM connector_incidents ORDER BY connector, id").fetch_all(&self.reads).await?;
        for row in incidents {
            let incident = Incident {
                id: row.get::<i64, _>(1) as u64,
                opened_at: row.get(2),
                reason: row.get(3),
                resolved_at: row.get(4),
                resolved_by: row.get(5),
            };
            saved.entry(row.get(0)).or_default().incidents.push(incident);
        }
        for row in sqlx::query("SELECT connector, reason FROM connector_pauses").fetch_all(&self.reads).await? {
            saved.entry(row.get(0)).or_default().paused_reason = Some(row.get(1));
        }
        Ok(saved)
    }
}

/// Writes the connectors' changes as they come, in order, until `shutdown`; a failed write is
/// tried again, since an operator would otherwise lose sight of an incident after a restart.
pub async fn keep_control_changes(
    store: Store,
    mut changes: mpsc::UnboundedReceiver<ControlChange>,
    shutdown: CancellationToken,
) {
    loop {
        let change = tokio::select! {
            Some(change) = changes.recv() => change,
            _ = shutdown.cancelled() => {
                // What happened just before the stop is kept too, as far as the database lets.
                while let Ok(change) = changes.try_recv() {
                    let _ = store.keep_control_change(&change).await;
                }
                return;
            }
        };
        while let Err(error) = store.keep_control_change(&change).await {
            tracing::warn!(error = format!("{error:#}"), ?change, "keeping a connector change failed; trying again");
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }
}

/// How soon an operator's pause or resume through one instance reaches the others.
const FOLLOW_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Applies, until `shutdown`, the pauses and resumes that operators make through other
/// instances: each change in the shared table since the last look is followed here. Only
/// changes are followed, so a pause made here and not yet written is not undone.
pub async fn follow_pauses(store: Store, connectors: Connectors, shutdown: CancellationToken) {
    let mut seen = None;
    let mut ticks = tokio::time::interval(FOLLOW_EVERY);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        let pauses = match store.pauses().await {
            Ok(pauses) => pauses,
            Err(error) => {
                tracing::debug!(error = format!("{error:#}"), "reading the connectors' pauses failed");
                continue;
            }
        };
        if let Some(before) = seen.replace(pauses.clone()) {
            for control in connectors.iter() {
                let now = pauses.get(control.name());
                if now != before.get(control.name()) {
                    control.follow_pause(now.map(String::as_str));
                }
            }
        }
    }
}
