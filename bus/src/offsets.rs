//! Moving a consumer group's committed offsets, as `kafka-consumer-groups --reset-offsets` does.
//!
//! Kafka refuses offset commits for a group that has live members, and the hub's groups are
//! live while the hub runs. So the reset is carried out by the group's own consumer, between
//! two batches: it moves the offsets of the partitions it holds, commits them and seeks there.
//! A batch in hand when the reset arrives is abandoned (it is read again if the new position
//! lies before it); handlers are idempotent, so that is as safe as a crash.
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::Bus;

/// How long an operator's request waits for the group's consumer to carry it out.
const RESET_TIMEOUT: Duration = Duration::from_secs(30);

/// Where a group's offsets are moved to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResetTo {
    /// The oldest message still held: everything is read again.
    Earliest,
    /// The end: the backlog is skipped.
    Latest,
    /// The first message written at or after this instant (epoch ms).
    Time(i64),
}

impl ResetTo {
    /// Reads `earliest`, `latest` or an RFC 3339 instant such as `2026-11-23T08:00:00+08:00`.
    pub fn parse(text: &str) -> Result<ResetTo, String> {
        match text.trim() {
            "earliest" => Ok(ResetTo::Earliest),
            "latest" => Ok(ResetTo::Latest),
            instant => instant_ms(instant).map(ResetTo::Time).ok_or_else(|| {
                format!(
                    "`{instant}` is neither earliest, latest nor an RFC 3339 instant like 2026-11-23T08:00:00+08:00"
                )
            }),
        }
    }
}

/// An RFC 3339 instant such as `2026-11-23T08:00:00+08:00` as epoch milliseconds.
pub fn instant_ms(text: &str) -> Option<i64> {
    let at = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    Some((at.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// The offset a group was moved to on one partition: the next message it reads there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionOffset {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    #[error("consumer group {0} is not run by this process")]
    NotRunHere(String),
    #[error("consumer group {group}: {reason}")]
    Failed { group: String, reason: String },
}

pub(crate) struct ResetRequest {
    to: ResetTo,
    /// Only this topic's partitions; all the group reads when None.
    topic: Option<String>,
    reply: oneshot::Sender<anyhow::Result<Vec<PartitionOffset>>>,
}

/// The consumer groups running in this process, each reachable for a reset.
#[derive(Clone, Default)]
pub struct GroupResets(Arc<Mutex<BTreeMap<String, mpsc::Sender<ResetRequest>>>>);

impl GroupResets {
    pub(crate) fn register(&self, group: &str) -> mpsc::Receiver<ResetRequest> {
        let (sender, receiver) = mpsc::channel(4);
        self.0.lock().expect("resets lock").insert(group.to_string(), sender);
        receiver
    }

    /// Asks group `group`'s consumer to move its offsets and waits until it has.
    pub async fn reset(
        &self,
        group: &str,
        to: ResetTo,
        topic: Option<String>,
    ) -> Result<Vec<PartitionOffset>, ResetError> {
        let failed = |reason: String| ResetError::Failed { group: group.to_string(), reason };
        let sender = self
            .0
            .lock()
            .expect("resets lock")
            .get(group)
            .cloned()
            .ok_or_else(|| ResetError::NotRunHere(group.to_string()))?;
        let (reply, answer) = oneshot::channel();
        sender.send(ResetRequest { to, topic, reply }).await.map_err(|_| failed("its consumer has stopped".into()))?;
        match tokio::time::timeout(RESET_TIMEOUT, answer).await {
            Ok(Ok(outcome)) => outcome.map_err(|error| failed(format!("{error:#}"))),
            Ok(Err(_)) => Err(failed("its consumer stopped before the reset".into())),
            Err(_) => Err(failed(format!("its consumer did not carry out the reset within {RESET_TIMEOUT:?}"))),
        }
    }
}

/// Carries out a reset in the group's consumer and answers the operator.
pub(crate) async fn carry_out(bus: &Bus, consumer: &StreamConsumer, group: &str, request: ResetRequest) {
    let outcome = move_held_partitions(bus, consumer, request.to, request.topic.as_deref()).await;
    match &outcome {
        Ok(moved) => tracing::warn!(group, to = ?request.to, ?moved, "consumer offsets reset by an operator"),
        Err(error) => tracing::warn!(group, %error, "consumer offset reset failed"),
    }
    let _ = request.reply.send(outcome);
}

async fn move_held_partitions(
    bus: &Bus,
    consumer: &StreamConsumer,
    to: ResetTo,
    topic: Option<&str>,
) -> anyhow::Result<Vec<PartitionOffset>> {
    let held: Vec<(String, i32)> = consumer
        .assignment()?
        .elements()
        .iter()
        .filter(|element| topic.is_none_or(|topic| element.topic() == topic))
        .map(|element| (element.topic().to_string(), element.partition()))
        .collect();
    anyhow::ensure!(
        !held.is_empty(),
        "it holds no partitions{} yet (it may still be joining its group); try again shortly",
        topic.map(|t| format!(" of {t}")).unwrap_or_default()
    );
    let targets = bus.offsets_at(held, to).await?;
    let mut list = TopicPartitionList::new();
    for target in &targets {
        list.add_partition_offset(&target.topic, target.partition, Offset::Offset(target.offset))?;
    }
    // Stored as well as committed, so that the next automatic commit does not put back the
    // offsets stored before the reset.
    consumer.store_offsets(&list)?;
    consumer.commit(&list, CommitMode::Async)?;
    for target in &targets {
        // A zero timeout starts the seek without blocking the runtime; fetched messages from
        // before it are discarded by librdkafka.
        consumer.seek(&target.topic, target.partition, Offset::Offset(target.offset), Duration::ZERO)?;
    }
    Ok(targets)
}

impl Bus {
    /// The offset `to` designates on each partition.
    async fn offsets_at(&self, partitions: Vec<(String, i32)>, to: ResetTo) -> anyhow::Result<Vec<PartitionOffset>> {
        let mut config = self.client_config();
        config.set("group.id", "hub-offset-lookup").set("enable.auto.commit", "false");
        // librdkafka's offset lookups block; keep them off the async workers.
        tokio::task::spawn_blocking(move || {
            let consumer: BaseConsumer = config.create()?;
            let timeout = Duration::from_secs(5);
            let at_time = match to {
                ResetTo::Time(ms) => {
                    let mut wanted = TopicPartitionList::new();
                    for (topic, partition) in &partitions {
                        wanted.add_partition_offset(topic, *partition, Offset::Offset(ms))?;
                    }
                    consumer.offsets_for_times(wanted, timeout).context("looking up offsets by time")?
                }
                _ => TopicPartitionList::new(),
            };
            partitions
                .into_iter()
                .map(|(topic, partition)| {
                    let (low, high) = consumer.fetch_watermarks(&topic, partition, timeout)?;
                    let offset = match to {
                        ResetTo::Earliest => low,
                        ResetTo::Latest => high,
                        // No message at or after the instant: the end.
                        ResetTo::Time(ms) => match at_time.find_partition(&topic, partition).map(|p| p.offset()) {
                            Some(Offset::Offset(offset)) => {
                                first_written_since(&config, &topic, partition, offset.clamp(low, high), high, ms)?
                            }
                            _ => high,
                        },
                    };
                    Ok(PartitionOffset { topic, partition, offset })
                })
                .collect()
        })
        .await?
    }
}

/// The first offset from `from` whose message was written at or after `ms`, reading forward.
/// Kafka's time lookup answers that offset and one read confirms it; a broker that answers an
/// earlier one (the embedded broker answers 0 when nothing is that recent) is read past.
fn first_written_since(
    config: &rdkafka::ClientConfig,
    topic: &str,
    partition: i32,
    from: i64,
    high: i64,
    ms: i64,
) -> anyhow::Result<i64> {
    use rdkafka::Message as _;
    let reader: BaseConsumer = config.create()?;
    let mut start = TopicPartitionList::new();
    start.add_partition_offset(topic, partition, Offset::Offset(from))?;
    reader.assign(&start)?;
    let mut next = from;
    while next < high {
        let message = reader
            .poll(Duration::from_secs(5))
            .with_context(|| format!("reading {topic}/{partition} at offset {next} timed out"))??;
        if message.timestamp().to_millis().is_some_and(|written| written >= ms) {
            return Ok(message.offset());
        }
        next = message.offset() + 1;
    }
    Ok(high)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_targets_are_read_from_words_or_instants() {
        assert_eq!(ResetTo::parse("earliest"), Ok(ResetTo::Earliest));
        assert_eq!(ResetTo::parse(" latest "), Ok(ResetTo::Latest));
        assert_eq!(ResetTo::parse("2026-11-23T08:00:00+08:00"), Ok(ResetTo::Time(1_795_392_000_000)));
        let refused = ResetTo::parse("yesterday").unwrap_err();
        assert!(refused.contains("RFC 3339"), "{refused}");
    }
}
