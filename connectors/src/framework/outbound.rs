//! The outbound half's batch handling, the same for every connector, and the data-sharing
//! events its exchanges leave for the audit.
use std::future::Future;

use bus::{Delivery, Effect, Outbox, Rejected};
use contracts::{DataShared, Event};
use futures::stream::{self, StreamExt as _};

use super::calls::CallError;
use super::control::ConnectorControl;

/// What one outbound request came to: the events to record, the reason when the counterpart
/// refused it for good (the request then also goes to the dead-letter topic), or the reason it
/// stayed unreachable past the retry policy (nothing is recorded: the batch waits for it).
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub events: Vec<Event>,
    pub refused: Option<String>,
    pub unreachable: Option<String>,
}

impl Outcome {
    pub fn done(events: Vec<Event>) -> Outcome {
        Outcome { events, refused: None, unreachable: None }
    }

    pub fn refused(reason: String, events: Vec<Event>) -> Outcome {
        Outcome { events, refused: Some(reason), unreachable: None }
    }

    /// A call that failed, as of `now`: refused for good (the exchange is recorded, the data
    /// went out), or unreachable past the retry policy.
    pub fn failed(
        what: String,
        error: &CallError,
        exchange: &Exchange,
        source_event_id: &str,
        case_number: &str,
        now: i64,
    ) -> Outcome {
        match error {
            CallError::Permanent(_) => Outcome::refused(
                format!("{what}: {error}"),
                vec![exchange.shared(source_event_id, case_number, error.audit_outcome(), now)],
            ),
            CallError::Transient(_) => {
                Outcome { events: Vec::new(), refused: None, unreachable: Some(format!("{what}: {error}")) }
            }
        }
    }
}

/// The outbound half's batch handling, the same for every connector: waits while the connector
/// is paused, skips requests already applied, makes the calls several at once, then records
/// every outcome in one transaction. A crash in between only repeats calls, which the
/// idempotency keys make harmless. A counterpart unreachable past the retry policy raises an
/// incident and fails the batch, which the consumer hands back once the connector restarts.
pub async fn apply_outbound<'a, F, Fut>(
    control: &ConnectorControl,
    outbox: &dyn Outbox,
    batch: &'a [Delivery],
    concurrency: usize,
    call: F,
) -> anyhow::Result<Vec<Rejected>>
where
    F: Fn(&'a Event) -> Fut,
    Fut: Future<Output = Outcome>,
{
    apply_outbound_together(control, outbox, batch, |requests| async move {
        // A loop, not a closure over references: async_trait's Send bound defeats inference.
        let mut calls = Vec::with_capacity(requests.len());
        for (index, event) in requests.into_iter().enumerate() {
            let call = call(event);
            calls.push(async move { (index, call.await) });
        }
        stream::iter(calls).buffer_unordered(concurrency.max(1)).collect().await
    })
    .await
}

/// [`apply_outbound`] for a counterpart that takes several requests in one call: `calls` is
/// given every request of the batch not yet applied and answers one outcome for each, with the
/// request's position among them, in any order.
pub async fn apply_outbound_together<'a, F, Fut>(
    control: &ConnectorControl,
    outbox: &dyn Outbox,
    batch: &'a [Delivery],
    calls: F,
) -> anyhow::Result<Vec<Rejected>>
where
    F: FnOnce(Vec<&'a Event>) -> Fut,
    Fut: Future<Output = Vec<(usize, Outcome)>>,
{
    control.until_running().await;
    let consumer = control.name();
    let ids: Vec<&str> = batch.iter().map(|d| d.event.event_id()).collect();
    let mut skip = outbox.applied_among(consumer, &ids).await?;
    let (indexes, requests): (Vec<usize>, Vec<&Event>) = batch
        .iter()
        .enumerate()
        .filter(|(_, delivery)| skip.insert(delivery.event.event_id().to_string()))
        .map(|(index, delivery)| (index, &delivery.event))
        .unzip();
    let mut outcomes = calls(requests).await;
    outcomes.sort_unstable_by_key(|(position, _)| *position);
    anyhow::ensure!(
        outcomes.iter().map(|(position, _)| *position).eq(0..indexes.len()),
        "{consumer}: the outcomes do not answer each of the {} requests once",
        indexes.len()
    );
    if let Some(reason) = outcomes.iter().find_map(|(_, outcome)| outcome.unreachable.clone()) {
        control.raise_incident(&reason);
        anyhow::bail!("{consumer}: counterpart unreachable past the retry policy: {reason}");
    }
    let mut rejected = Vec::new();
    let mut effects = Vec::with_capacity(outcomes.len());
    for (index, (_, outcome)) in indexes.into_iter().zip(outcomes) {
        if let Some(reason) = outcome.refused {
            rejected.push(Rejected { index, reason });
        }
        effects.push(Effect { source_event_id: batch[index].event.event_id().to_string(), events: outcome.events });
    }
    outbox.apply_all(consumer, &effects).await?;
    control.applied();
    Ok(rejected)
}

/// One exchange of data with a counterpart, described for the data-sharing audit.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// What was exchanged, e.g. `certificate.issue`.
    pub name: &'static str,
    pub requester_system: String,
    pub requester_department: String,
    pub requester_officer: Option<String>,
    pub provider: String,
    pub data_subject: String,
    pub data_items: &'static [&'static str],
    pub legal_basis: String,
    pub purpose: String,
    pub channel: &'static str,
    pub document_sha256: Option<String>,
}

impl Exchange {
    /// The data-sharing event for this exchange made on behalf of `source_event_id` at `now`;
    /// its id is derived from the source, so a repeated exchange is recorded once.
    pub fn shared(&self, source_event_id: &str, case_number: &str, outcome: &str, now: i64) -> Event {
        DataShared {
            event_id: hub_core::ids::data_shared(source_event_id, self.name),
            case_number: case_number.into(),
            occurred_at: now,
            exchange: self.name.into(),
            requester_system: self.requester_system.clone(),
            requester_department: self.requester_department.clone(),
            requester_officer: self.requester_officer.clone(),
            provider: self.provider.clone(),
            data_subject: self.data_subject.clone(),
            data_items: self.data_items.iter().map(|item| item.to_string()).collect(),
            legal_basis: self.legal_basis.clone(),
            purpose: self.purpose.clone(),
            channel: self.channel.into(),
            document_sha256: self.document_sha256.clone(),
            outcome: outcome.into(),
        }
        .into()
    }
}

/// An Avro `date` (days since 1970-01-01) as `YYYY-MM-DD`.
pub fn date_text(days: i32) -> String {
    const UNIX_EPOCH_JULIAN_DAY: i32 = 2_440_588;
    time::Date::from_julian_day(days + UNIX_EPOCH_JULIAN_DAY)
        .map_or_else(|_| format!("day {days}"), |date| date.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avro_dates_are_written_as_iso_dates() {
        assert_eq!(date_text(0), "1970-01-01");
        assert_eq!(date_text(20_777), "2026-11-20");
    }
}
