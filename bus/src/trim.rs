//! Trimming the log of what every consumer has handled. The embedded broker (tansu) applies no
//! retention, and the hub replays from its outbox, not from the log, so a partition only needs
//! what some consumer group of its topic has still to handle, and a margin behind the slowest.
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use crate::{Bus, OffRuntimeDrop};

/// A topic's partition.
type Partition = (String, i32);

/// A consumer in each consumer group the catalogue lists, kept to read the group's committed
/// offsets on the topics it is listed for.
pub struct Watchers(Vec<(String, BaseConsumer, TopicPartitionList)>);

impl Watchers {
    pub fn new(bus: &Bus) -> anyhow::Result<Watchers> {
        let catalogue = bus.catalogue();
        let mut watchers = Vec::new();
        for group in catalogue.groups() {
            let mut wanted = TopicPartitionList::new();
            for topic in catalogue.topics_read_by(group) {
                for partition in 0..topic.partitions {
                    wanted.add_partition(&topic.name, partition);
                }
            }
            let mut config = bus.client_config();
            config.set("group.id", group).set("enable.auto.commit", "false");
            watchers.push((group.to_string(), config.create()?, wanted));
        }
        Ok(Watchers(watchers))
    }

    /// The offset the slowest group listed for each partition's topic has committed, for the
    /// partitions where every one of them has committed something. Blocks on the broker.
    pub fn slowest_committed(&self) -> anyhow::Result<BTreeMap<Partition, i64>> {
        let timeout = Duration::from_secs(5);
        let mut slowest: BTreeMap<Partition, Option<i64>> = BTreeMap::new();
        for (group, consumer, wanted) in &self.0 {
            let committed = consumer
                .committed_offsets(wanted.clone(), timeout)
                .with_context(|| format!("reading the committed offsets of {group}"))?;
            for element in committed.elements() {
                let offset = match element.offset() {
                    Offset::Offset(offset) => Some(offset),
                    _ => None,
                };
                let partition = (element.topic().to_string(), element.partition());
                let point = slowest.entry(partition).or_insert(offset);
                *point = point.zip(offset).map(|(a, b)| a.min(b));
            }
        }
        Ok(slowest.into_iter().filter_map(|(partition, offset)| Some((partition, offset?))).collect())
    }
}

/// `Watchers::slowest_committed` off the async workers.
pub async fn slowest_committed(watchers: &Arc<OffRuntimeDrop<Watchers>>) -> anyhow::Result<BTreeMap<Partition, i64>> {
    let watchers = watchers.clone();
    tokio::task::spawn_blocking(move || watchers.slowest_committed()).await?
}

/// Deletes each partition's messages before its offset (Kafka's DeleteRecords).
pub async fn delete_before(bus: &Bus, points: &BTreeMap<Partition, i64>) -> anyhow::Result<()> {
    let admin: OffRuntimeDrop<AdminClient<DefaultClientContext>> =
        OffRuntimeDrop::new(bus.client_config().create().context("creating the Kafka admin client")?);
    let mut offsets = TopicPartitionList::new();
    for ((topic, partition), offset) in points {
        offsets.add_partition_offset(topic, *partition, Offset::Offset(*offset))?;
    }
    let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(10)));
    let deleted = admin.delete_records(&offsets, &options).await.context("deleting consumed messages")?;
    for element in deleted.elements() {
        element
            .error()
            .with_context(|| format!("deleting consumed messages of {} [{}]", element.topic(), element.partition()))?;
    }
    Ok(())
}

/// Every `every` until `stop`: deletes what every group listed for a topic has handled, keeping
/// `keep` messages behind the slowest on each partition.
pub async fn trim_every(bus: Arc<Bus>, keep: i64, every: Duration, stop: CancellationToken) {
    let watchers = match Watchers::new(&bus) {
        Ok(watchers) => Arc::new(OffRuntimeDrop::new(watchers)),
        Err(error) => return tracing::error!(error = format!("{error:#}"), "the log cannot be trimmed"),
    };
    let mut trimmed: BTreeMap<Partition, i64> = BTreeMap::new();
    let mut ticks = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.cancelled() => break,
        }
        let trimming = async {
            let due: BTreeMap<Partition, i64> = slowest_committed(&watchers)
                .await?
                .into_iter()
                .map(|(partition, offset)| (partition, offset - keep))
                .filter(|(partition, offset)| *offset > trimmed.get(partition).copied().unwrap_or(0))
                .collect();
            if !due.is_empty() {
                delete_before(&bus, &due).await?;
                tracing::debug!(partitions = due.len(), "trimmed consumed messages from the log");
                trimmed.extend(due);
            }
            anyhow::Ok(())
        };
        if let Err(error) = trimming.await {
            tracing::warn!(error = format!("{error:#}"), "trimming the log failed; trying at the next tick");
        }
    }
    // Closed while the broker is still there: an embedded one stops with the hub.
    if let Ok(watchers) = Arc::try_unwrap(watchers) {
        watchers.close().await;
    }
}
