//! The transactional outbox: events are written to the database in the same transaction as the
//! state change that caused them; the relay publishes them to Kafka afterwards.
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use contracts::Event;
use futures::future::join_all;
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::{OffRuntimeDrop, RetryPolicy};

/// An event waiting in the outbox, already encoded in the wire format.
#[derive(Debug, Clone)]
pub struct OutboxMessage {
    pub id: i64,
    pub topic: String,
    pub key: String,
    pub payload: Vec<u8>,
}

/// What the relay needs from the database.
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// The oldest unpublished messages, in the order they were written.
    async fn unpublished(&self, limit: i64) -> anyhow::Result<Vec<OutboxMessage>>;
    async fn mark_published(&self, ids: &[i64]) -> anyhow::Result<()>;
}

/// What a connector needs from the database: idempotent consumption and durable publication.
#[async_trait]
pub trait Outbox: Send + Sync {
    /// In one transaction: records that `consumer` applied `source_event_id` and enqueues
    /// `events` for publication. Returns false, changing nothing, when it was already applied.
    async fn apply(&self, consumer: &str, source_event_id: &str, events: &[Event]) -> anyhow::Result<bool>;
    async fn is_applied(&self, consumer: &str, source_event_id: &str) -> anyhow::Result<bool>;
}

const RELAY_BATCH: i64 = 500;

/// Publishes outbox messages in order until `shutdown`; wakes on `wake` or every 100 ms.
pub async fn run_relay(store: Arc<dyn OutboxStore>, producer: FutureProducer, wake: Arc<Notify>, shutdown: CancellationToken) {
    let producer = OffRuntimeDrop::new(producer);
    let retry = RetryPolicy::default();
    let mut failures = 0;
    while !shutdown.is_cancelled() {
        let published = match relay_once(store.as_ref(), &producer).await {
            Ok(count) => {
                failures = 0;
                count
            }
            Err(error) => {
                failures += 1;
                tracing::warn!(%error, failures, "outbox relay failed; retrying");
                tokio::time::sleep(retry.delay(failures)).await;
                continue;
            }
        };
        if published < RELAY_BATCH as usize {
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = shutdown.cancelled() => {}
            }
        }
    }
}

/// Publishes one batch; returns how many messages went out.
pub async fn relay_once(store: &dyn OutboxStore, producer: &FutureProducer) -> anyhow::Result<usize> {
    let batch = store.unpublished(RELAY_BATCH).await?;
    if batch.is_empty() {
        return Ok(0);
    }
    // Queue the whole batch before awaiting any acknowledgement; the idempotent producer keeps
    // per-partition order, so a case's events arrive in the order they were written.
    let sends = batch.iter().map(|message| {
        producer.send(FutureRecord::to(&message.topic).key(&message.key).payload(&message.payload), Duration::from_secs(30))
    });
    let results = join_all(sends).await;
    let mut delivered = Vec::with_capacity(batch.len());
    let mut first_error = None;
    for (message, result) in batch.iter().zip(results) {
        match result {
            Ok(_) => delivered.push(message.id),
            Err((error, _)) => {
                first_error.get_or_insert(error);
            }
        }
    }
    store.mark_published(&delivered).await?;
    match first_error {
        Some(error) => Err(anyhow::anyhow!("publishing the outbox: {error}")),
        None => Ok(delivered.len()),
    }
}
