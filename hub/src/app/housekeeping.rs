//! Pruning what has served its purpose: published outbox messages and old applied-event
//! records, on a schedule, by one instance.
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::store::{now_ms, Store};

const DAY_MS: i64 = 86_400_000;

/// How long published messages and applied-event records are kept.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub outbox_ms: i64,
    pub applied_ms: i64,
}

impl Retention {
    /// As configured, with applied-event records kept at least `longest_topic_ms` (the longest
    /// retention of a topic consumed): an offset reset can reach back that far. `applied_days`
    /// 0: exactly that long.
    pub fn new(outbox_days: u32, applied_days: u32, longest_topic_ms: i64) -> Retention {
        let applied_ms = i64::from(applied_days) * DAY_MS;
        if applied_days > 0 && applied_ms < longest_topic_ms {
            tracing::warn!(
                applied_retention_days = applied_days,
                longest_topic_days = longest_topic_ms / DAY_MS,
                "database.applied_retention_days is shorter than a consumed topic's retention; keeping them that long"
            );
        }
        Retention { outbox_ms: i64::from(outbox_days) * DAY_MS, applied_ms: applied_ms.max(longest_topic_ms) }
    }
}

/// Prunes at start and every `every` until `shutdown`.
pub async fn prune_every(store: Store, retention: Retention, every: Duration, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        let now = now_ms();
        match store.prune(now - retention.outbox_ms, now - retention.applied_ms).await {
            Ok((0, 0)) => {}
            Ok((messages, applied)) => {
                tracing::info!(messages, applied, "pruned published messages and applied-event records")
            }
            Err(error) => tracing::warn!(error = format!("{error:#}"), "pruning failed; trying at the next tick"),
        }
    }
}
