//! The consumer loop shared by every hub service and connector: decode, hand batches to a
//! handler, dead-letter what cannot be taken, then store offsets. Processing never stops on a
//! bad message.
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use contracts::catalogue::DEAD_LETTER_TOPIC;
use contracts::Event;
use futures::FutureExt as _;
use rdkafka::consumer::{Consumer as _, StreamConsumer};
use rdkafka::message::{Header, Message as _, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio_util::sync::CancellationToken;

use tokio::sync::{mpsc, OnceCell};

use crate::offsets::{self, ResetRequest};
use crate::{Bus, OffRuntimeDrop, RetryPolicy};

/// A decoded message and where it came from.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub event: Event,
}

/// A message the handler refuses for good: it goes to the dead-letter topic with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub index: usize,
    pub reason: String,
}

#[async_trait]
pub trait BatchHandler: Send + Sync {
    /// Applies a batch of messages. An `Err` is transient: the same batch is retried with
    /// backoff. Messages that can never be applied are returned as `Rejected`.
    async fn handle(&self, batch: &[Delivery]) -> anyhow::Result<Vec<Rejected>>;
}

/// How many messages a handler is given at once: `usual`, and more while the group is behind.
/// Each batch that fills its limit doubles the next one's, up to `behind`; the first that does
/// not restores `usual`. A short transaction keeps a counter's wait for SQLite's writer short,
/// and a backlog is still worked off in large ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimit {
    pub usual: usize,
    pub behind: usize,
}

impl BatchLimit {
    /// The limit after a batch of `taken` messages under `limit`.
    fn next(self, limit: usize, taken: usize) -> usize {
        if taken >= limit {
            (limit * 2).min(self.behind.max(self.usual))
        } else {
            self.usual
        }
    }
}

/// Consumes `topics` in consumer group `group` until `shutdown`.
pub async fn run_consumer(
    bus: Arc<Bus>,
    group: String,
    topics: Vec<String>,
    handler: Arc<dyn BatchHandler>,
    batch_limit: BatchLimit,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let topic_refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    let consumer = OffRuntimeDrop::new(bus.consumer(&group, &topic_refs)?);
    let resets = bus.resets().register(&group);
    let dead_letters = DeadLetters { bus: bus.clone(), producer: OnceCell::new(), group };
    let outcome = consume(&bus, &consumer, &dead_letters, handler.as_ref(), batch_limit, resets, &shutdown).await;
    // Leave the group and flush while the broker is still there.
    consumer.close().await;
    if let Some(producer) = dead_letters.producer.into_inner() {
        producer.close().await;
    }
    outcome
}

async fn consume(
    bus: &Bus,
    consumer: &StreamConsumer,
    dead_letters: &DeadLetters,
    handler: &dyn BatchHandler,
    batch_limit: BatchLimit,
    mut resets: mpsc::Receiver<ResetRequest>,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let group = &dead_letters.group;
    let retry = RetryPolicy::default();
    let mut limit = batch_limit.usual.max(1);
    'batches: loop {
        let first = tokio::select! {
            message = consumer.recv() => message,
            Some(reset) = resets.recv() => {
                offsets::carry_out(bus, consumer, group, reset).await;
                continue;
            }
            _ = shutdown.cancelled() => return Ok(()),
        };
        let mut messages = vec![first];
        while messages.len() < limit {
            match consumer.recv().now_or_never() {
                Some(message) => messages.push(message),
                None => break,
            }
        }
        limit = batch_limit.next(limit, messages.len());
        let mut batch = Vec::with_capacity(messages.len());
        let mut positions = Vec::with_capacity(messages.len());
        for message in &messages {
            let message = match message {
                Ok(message) => message,
                Err(error) => {
                    tracing::warn!(%group, %error, "Kafka consumer error");
                    continue;
                }
            };
            positions.push((message.topic().to_string(), message.partition(), message.offset()));
            match decode_for_topic(bus, message.topic(), message.payload().unwrap_or_default()) {
                Ok(event) => batch.push(Delivery {
                    topic: message.topic().to_string(),
                    partition: message.partition(),
                    offset: message.offset(),
                    event,
                }),
                Err(reason) => dead_letters.send(message, &reason).await?,
            }
        }
        let mut attempt = 0;
        let rejected = loop {
            let handled = tokio::select! {
                handled = handler.handle(&batch) => handled,
                // The batch in hand is abandoned, its offsets not stored (module offsets).
                Some(reset) = resets.recv() => {
                    offsets::carry_out(bus, consumer, group, reset).await;
                    continue 'batches;
                }
            };
            match handled {
                Ok(rejected) => break rejected,
                Err(error) => {
                    attempt += 1;
                    tracing::warn!(%group, %error, attempt, "handler failed; retrying the batch");
                    if retry.wait(attempt, shutdown).await {
                        return Ok(());
                    }
                }
            }
        };
        for Rejected { index, reason } in rejected {
            let delivery = &batch[index];
            let original = messages.iter().flatten().find(|m| {
                m.topic() == delivery.topic && m.partition() == delivery.partition && m.offset() == delivery.offset
            });
            if let Some(original) = original {
                dead_letters.send(original, &reason).await?;
            }
        }
        bus.handled.add(group, positions.len() as u64);
        for (topic, partition, offset) in positions {
            // The message's own offset: librdkafka's offset store commits the one after it.
            // Failing to store an offset (e.g. the partition moved in a rebalance) only means the
            // message may come again, which the idempotent handlers absorb.
            if let Err(error) = consumer.store_offset(&topic, partition, offset) {
                tracing::debug!(%group, %error, topic, partition, offset, "offset not stored");
            }
        }
    }
}

/// Decodes a message and checks that the catalogue lets its record travel on this topic.
fn decode_for_topic(bus: &Bus, topic: &str, payload: &[u8]) -> Result<Event, String> {
    let event = contracts::decode(payload).map_err(|e| e.to_string())?;
    let allowed =
        bus.catalogue().topic(topic).is_some_and(|spec| spec.values.iter().any(|v| *v == event.record_name()));
    if !allowed {
        return Err(format!("record {} is not carried by topic {topic} (topics/catalogue.toml)", event.record_name()));
    }
    Ok(event)
}

/// Messages handled per consumer group, in this process.
#[derive(Default)]
pub(crate) struct HandledCounts(Mutex<BTreeMap<String, u64>>);

impl HandledCounts {
    fn add(&self, group: &str, messages: u64) {
        let mut counts = self.0.lock().expect("handled counts lock");
        match counts.get_mut(group) {
            Some(count) => *count += messages,
            None => drop(counts.insert(group.to_string(), messages)),
        }
    }

    pub(crate) fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().expect("handled counts lock").clone()
    }
}

struct DeadLetters {
    bus: Arc<Bus>,
    /// Made at the first dead letter: most consumers never send one, and every idle producer
    /// costs a polling thread.
    producer: OnceCell<OffRuntimeDrop<FutureProducer>>,
    group: String,
}

impl DeadLetters {
    /// Sends the message unchanged to the dead-letter topic, with where it came from and why.
    /// Waits for the broker's acknowledgement so that the source offset is stored only after.
    async fn send(&self, message: &rdkafka::message::BorrowedMessage<'_>, reason: &str) -> anyhow::Result<()> {
        let partition = message.partition().to_string();
        let offset = message.offset().to_string();
        let headers = OwnedHeaders::new()
            .insert(Header { key: "dlq.source.topic", value: Some(message.topic()) })
            .insert(Header { key: "dlq.source.partition", value: Some(&partition) })
            .insert(Header { key: "dlq.source.offset", value: Some(&offset) })
            .insert(Header { key: "dlq.consumer.group", value: Some(&self.group) })
            .insert(Header { key: "dlq.error", value: Some(reason) });
        let mut record =
            FutureRecord::to(DEAD_LETTER_TOPIC).payload(message.payload().unwrap_or_default()).headers(headers);
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        tracing::warn!(
            topic = message.topic(),
            partition = message.partition(),
            offset = message.offset(),
            reason,
            "dead-lettered"
        );
        let producer = self.producer.get_or_try_init(|| async { self.bus.producer().map(OffRuntimeDrop::new) }).await?;
        producer
            .send(record, Duration::from_secs(30))
            .await
            .map_err(|(error, _)| anyhow::anyhow!("sending to {DEAD_LETTER_TOPIC}: {error}"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::BatchLimit;

    #[test]
    fn a_group_behind_takes_larger_batches_until_it_has_caught_up() {
        let limits = BatchLimit { usual: 32, behind: 256 };
        let mut limit = limits.usual;
        let mut seen = Vec::new();
        for taken in [32, 64, 128, 256, 256, 100, 5] {
            limit = limits.next(limit, taken.min(limit));
            seen.push(limit);
        }
        assert_eq!(seen, [64, 128, 256, 256, 256, 32, 32]);
        let fixed = BatchLimit { usual: 256, behind: 32 };
        assert_eq!(fixed.next(256, 256), 256, "never below the usual limit");
    }
}
