//! The Kafka bus shared by the hub and its connectors.
//!
//! Everything here speaks the Kafka protocol through rdkafka, so the same code runs against the
//! embedded broker (started when no bootstrap servers are configured) and an Apache Kafka cluster.

pub mod admin;
pub mod consumer;
pub mod embedded;
pub mod offsets;
pub mod outbox;
pub mod raw;
pub mod retry;
pub mod trim;

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context as _;
use contracts::Catalogue;
use rdkafka::consumer::StreamConsumer;
use rdkafka::producer::FutureProducer;
use rdkafka::ClientConfig;
use serde::{Deserialize, Serialize};

pub use consumer::{run_consumer, BatchHandler, BatchLimit, Delivery, Rejected};
pub use offsets::{GroupResets, PartitionOffset, ResetError, ResetTo};
pub use outbox::{run_relay, Effect, Outbox, OutboxMessage, OutboxStore, RelayEnd};
pub use retry::RetryPolicy;

/// How to reach Kafka.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BusConfig {
    /// Comma-separated bootstrap servers. Empty: start the embedded broker on a loopback port.
    pub bootstrap_servers: Option<String>,
    /// Replication factor for topics the hub creates; -1 takes the cluster default.
    pub replication_factor: Option<i32>,
    /// Extra librdkafka properties for every client (security.protocol, sasl.mechanism, ...).
    pub client_properties: BTreeMap<String, String>,
    /// Longest a consumer's fetch waits for messages (ms); empty: 100. Apache Kafka answers as
    /// soon as messages come, so a long wait only saves idle polling; the embedded broker
    /// (tansu 0.6.0) sleeps out a wait under 250 ms, so there it is also the least latency of
    /// every hop.
    pub fetch_wait_ms: Option<u32>,
    /// Most a consumer holds fetched ahead of its handler, in KiB; empty: 1024. librdkafka's
    /// own default (64 MiB) is held by every consumer group apart, so a backlog was held
    /// once per group reading its topic, while a handler takes a batch at a time.
    pub prefetch_kbytes: Option<u32>,
    /// Consumed messages each partition keeps behind the slowest consumer group listed for its
    /// topic; older ones are deleted (DeleteRecords). Empty: 100 with the embedded broker,
    /// which applies no retention, and no trimming on a cluster, whose retention applies.
    pub keep_consumed_messages: Option<u32>,
}

/// Consumed messages a partition of the embedded broker keeps: enough for an operator's offset
/// reset to replay the last moments; the outbox replays the rest. Few, because tansu 0.6.0
/// lists every batch a partition holds on each fetch.
const EMBEDDED_KEEPS_CONSUMED: i64 = 100;

/// A connection to Kafka: the brokers' address, client settings and the topic catalogue.
pub struct Bus {
    bootstrap: String,
    /// Replication factor of the topics this bus creates.
    replication: i32,
    /// Consumed messages each partition keeps, if the log is trimmed (`trim`).
    keep_consumed: Option<i64>,
    fetch_wait_ms: u32,
    prefetch_kbytes: u32,
    properties: BTreeMap<String, String>,
    catalogue: Arc<Catalogue>,
    resets: GroupResets,
    handled: consumer::HandledCounts,
    _embedded: Option<embedded::EmbeddedBroker>,
}

impl Bus {
    /// Connects (starting the embedded broker if no servers are configured) and makes the live
    /// topics agree with the catalogue: missing ones are created, contradicting ones refused.
    pub async fn connect(config: &BusConfig, catalogue: Arc<Catalogue>) -> anyhow::Result<Bus> {
        let (bootstrap, embedded, replication) = match config.bootstrap_servers.as_deref().filter(|s| !s.is_empty()) {
            Some(servers) => (servers.to_string(), None, config.replication_factor.unwrap_or(-1)),
            None => {
                let broker = embedded::EmbeddedBroker::start().await.context("starting the embedded broker")?;
                (broker.bootstrap().to_string(), Some(broker), 1)
            }
        };
        let keep_consumed = match (config.keep_consumed_messages, &embedded) {
            (Some(keep), _) => Some(i64::from(keep)),
            (None, Some(_)) => Some(EMBEDDED_KEEPS_CONSUMED),
            (None, None) => None,
        };
        let bus = Bus {
            bootstrap,
            replication,
            keep_consumed,
            fetch_wait_ms: config.fetch_wait_ms.unwrap_or(100),
            prefetch_kbytes: config.prefetch_kbytes.unwrap_or(1024),
            properties: config.client_properties.clone(),
            catalogue,
            resets: GroupResets::default(),
            handled: Default::default(),
            _embedded: embedded,
        };
        bus.ensure_topics().await?;
        Ok(bus)
    }

    /// Creates the catalogue's missing topics and refuses live ones that contradict it.
    pub async fn ensure_topics(&self) -> anyhow::Result<()> {
        admin::ensure_topics(self, self.replication).await
    }

    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    pub fn catalogue(&self) -> &Arc<Catalogue> {
        &self.catalogue
    }

    /// The consumer groups this process runs, for moving their offsets.
    pub fn resets(&self) -> &GroupResets {
        &self.resets
    }

    /// Messages this process's consumers handled since it started, by consumer group: where
    /// several instances share the groups, each one's share of the work.
    pub fn handled_counts(&self) -> BTreeMap<String, u64> {
        self.handled.snapshot()
    }

    /// Consumed messages each partition keeps, when the log is to be trimmed at all.
    pub fn keep_consumed(&self) -> Option<i64> {
        self.keep_consumed
    }

    pub fn is_embedded(&self) -> bool {
        self._embedded.is_some()
    }

    /// Client settings shared by every producer, consumer and admin client.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap);
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config
    }

    /// Idempotent producer with acks=all: retries never duplicate or reorder within a partition.
    pub fn producer(&self) -> anyhow::Result<FutureProducer> {
        self.client_config()
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "2")
            .set("message.timeout.ms", "30000")
            .create()
            .context("creating the Kafka producer")
    }

    /// A consumer in group `group`; offsets are stored only after a message was handled.
    pub fn consumer(&self, group: &str, topics: &[&str]) -> anyhow::Result<StreamConsumer> {
        subscribed(&self.consumer_config(group), group, topics)
    }

    /// The settings of `consumer`.
    fn consumer_config(&self, group: &str) -> ClientConfig {
        let mut config = self.client_config();
        config
            .set("group.id", group)
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "500")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "10000")
            .set("fetch.wait.max.ms", self.fetch_wait_ms.to_string())
            .set(PREFETCH_KBYTES, self.prefetch_kbytes.to_string());
        config
    }
}

/// The librdkafka setting that caps what a consumer holds fetched ahead (`prefetch_kbytes`).
const PREFETCH_KBYTES: &str = "queued.max.messages.kbytes";

/// A consumer made with `config`, subscribed to `topics`.
fn subscribed(config: &ClientConfig, group: &str, topics: &[&str]) -> anyhow::Result<StreamConsumer> {
    use rdkafka::consumer::Consumer as _;
    let consumer: StreamConsumer = config.create().context("creating a Kafka consumer")?;
    consumer.subscribe(topics).with_context(|| format!("subscribing {group} to {topics:?}"))?;
    Ok(consumer)
}

impl Bus {
    /// Messages currently held by `topic`: the sum over its partitions of high minus low watermark.
    pub async fn message_count(&self, topic: &str) -> anyhow::Result<i64> {
        use rdkafka::consumer::{BaseConsumer, Consumer as _};
        let (config, topic) = (self.client_config(), topic.to_string());
        // librdkafka's watermark calls block; keep them off the async workers.
        tokio::task::spawn_blocking(move || {
            let consumer: BaseConsumer = config.create()?;
            let timeout = std::time::Duration::from_secs(5);
            let metadata = consumer.fetch_metadata(Some(&topic), timeout)?;
            let mut total = 0;
            for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
                let (low, high) = consumer.fetch_watermarks(&topic, partition.id(), timeout)?;
                total += high - low;
            }
            Ok(total)
        })
        .await?
    }
}

/// Where a consumer group stands on one partition: its committed offset, the partition's end,
/// and the messages between them still to be handled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionPosition {
    pub topic: String,
    pub partition: i32,
    /// None: the group has committed nothing here yet (it starts at the earliest message).
    pub committed: Option<i64>,
    pub end: i64,
    pub lag: i64,
}

impl Bus {
    /// The committed positions of consumer group `group` on every partition of `topics`.
    pub async fn group_positions(&self, group: &str, topics: &[String]) -> anyhow::Result<Vec<PartitionPosition>> {
        use rdkafka::consumer::{BaseConsumer, Consumer as _};
        use rdkafka::{Offset, TopicPartitionList};
        let mut config = self.client_config();
        config.set("group.id", group).set("enable.auto.commit", "false");
        let topics = topics.to_vec();
        // librdkafka's offset calls block; keep them off the async workers.
        tokio::task::spawn_blocking(move || {
            let consumer: BaseConsumer = config.create()?;
            let timeout = std::time::Duration::from_secs(5);
            let mut wanted = TopicPartitionList::new();
            let mut low_water = BTreeMap::new();
            let mut ends = BTreeMap::new();
            for topic in &topics {
                let metadata = consumer.fetch_metadata(Some(topic), timeout)?;
                for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
                    wanted.add_partition(topic, partition.id());
                    let (low, high) = consumer.fetch_watermarks(topic, partition.id(), timeout)?;
                    low_water.insert((topic.clone(), partition.id()), low);
                    ends.insert((topic.clone(), partition.id()), high);
                }
            }
            let committed = consumer.committed_offsets(wanted, timeout)?;
            Ok(committed
                .elements()
                .iter()
                .map(|element| {
                    let key = (element.topic().to_string(), element.partition());
                    let committed = match element.offset() {
                        Offset::Offset(offset) => Some(offset),
                        _ => None,
                    };
                    let end = ends.get(&key).copied().unwrap_or_default();
                    let from = committed.unwrap_or_else(|| low_water.get(&key).copied().unwrap_or_default());
                    PartitionPosition { topic: key.0, partition: key.1, committed, end, lag: (end - from).max(0) }
                })
                .collect())
        })
        .await?
    }

    /// Messages consumer group `group` has still to handle, over every partition of the topics
    /// the catalogue lists it for.
    pub async fn group_lag(&self, group: &str) -> anyhow::Result<i64> {
        let topics: Vec<String> = self.catalogue().topics_read_by(group).map(|topic| topic.name.clone()).collect();
        Ok(self.group_positions(group, &topics).await?.iter().map(|position| position.lag).sum())
    }

    /// `group_lag` of every consumer group the catalogue lists.
    pub async fn lag_by_group(&self) -> BTreeMap<String, anyhow::Result<i64>> {
        let mut lag = BTreeMap::new();
        for group in self.catalogue().groups() {
            lag.insert(group.to_string(), self.group_lag(group).await);
        }
        lag
    }
}

/// Asks the brokers which cluster they are, over a client kept for the purpose.
pub struct ClusterIdentity {
    client: Arc<OffRuntimeDrop<rdkafka::consumer::BaseConsumer>>,
}

impl ClusterIdentity {
    pub fn new(bus: &Bus) -> anyhow::Result<ClusterIdentity> {
        let client = bus.client_config().create().context("creating a Kafka client for the cluster id")?;
        Ok(ClusterIdentity { client: Arc::new(OffRuntimeDrop::new(client)) })
    }

    pub async fn cluster_id(&self) -> anyhow::Result<String> {
        use rdkafka::consumer::Consumer as _;
        let client = self.client.clone();
        // librdkafka's metadata calls block; keep them off the async workers.
        tokio::task::spawn_blocking(move || client.client().fetch_cluster_id(std::time::Duration::from_secs(5)))
            .await?
            .context("the brokers did not tell their cluster id")
    }

    pub async fn close(self) {
        if let Ok(client) = Arc::try_unwrap(self.client) {
            client.close().await;
        }
    }
}

/// Owns a librdkafka client and closes it on a thread of its own: closing a client waits on
/// the broker, and doing that on an async worker can starve the very tasks it waits for (the
/// embedded broker runs on the same runtime). Not the runtime's blocking pool either: a runtime
/// shutting down waits for that pool, and a close whose broker is gone may never end.
pub struct OffRuntimeDrop<T: Send + 'static>(Option<T>);

/// How long an owner waits for a client to close before going on without it.
const CLOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl<T: Send + 'static> OffRuntimeDrop<T> {
    pub fn new(client: T) -> Self {
        OffRuntimeDrop(Some(client))
    }

    /// Closes the client and waits (a bounded time) until it is closed. Owners call this
    /// before the broker may go away (an embedded broker stops with the hub): a consumer
    /// leaving its group needs it.
    pub async fn close(mut self) {
        if let Some(client) = self.0.take() {
            let (done, closed) = tokio::sync::oneshot::channel();
            std::thread::spawn(move || {
                drop(client);
                let _ = done.send(());
            });
            if tokio::time::timeout(CLOSE_TIMEOUT, closed).await.is_err() {
                tracing::warn!("a Kafka client did not close within {CLOSE_TIMEOUT:?}; going on without it");
            }
        }
    }
}

impl<T: Send + 'static> std::ops::Deref for OffRuntimeDrop<T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.0.as_ref().expect("present until closed")
    }
}

impl<T: Send + 'static> Drop for OffRuntimeDrop<T> {
    fn drop(&mut self) {
        if let Some(client) = self.0.take() {
            std::thread::spawn(move || drop(client));
        }
    }
}
