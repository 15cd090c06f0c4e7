//! Time limits: the durable deadline timers checked on a schedule; the core decides warnings.
use std::time::Duration;

use hub_core::{Command, Reference};
use tokio_util::sync::CancellationToken;

use super::cases::{execute_all_at, Order};
use super::reference::CurrentReference;
use crate::store::{now_ms, Store, Waiting};

/// Cases whose deadline check falls due in one round, at most.
const DEADLINE_ROUND: i64 = 500;

/// Runs the deadline checks that are due at `now` (the durable timers in the database) and
/// returns how many cases were checked. Each check re-arms its case's timer for a later day.
pub async fn check_deadlines(store: &Store, reference: &Reference, now: i64) -> anyhow::Result<usize> {
    let today = hub_core::calendar::day_of(now);
    let mut checked = 0;
    // Bounded: a timer that failed to move on must not spin this loop.
    for _ in 0..100 {
        let due = store.cases_with_timer_due(today, DEADLINE_ROUND).await?;
        let round = due.len() as i64;
        let commands = due.into_iter().map(|number| Order::hub(number, Command::CheckDeadlines)).collect();
        checked += execute_all_at(store, reference, commands, now, Waiting::NoOne).await?.len();
        if round < DEADLINE_ROUND {
            break;
        }
    }
    Ok(checked)
}

/// Checks the durable deadline timers every `every` until `shutdown`.
pub async fn scan_every(store: Store, reference: CurrentReference, every: Duration, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        if let Err(error) = check_deadlines(&store, &reference.get(), now_ms()).await {
            tracing::warn!(error = format!("{error:#}"), "deadline check failed; retrying at the next tick");
        }
    }
}
