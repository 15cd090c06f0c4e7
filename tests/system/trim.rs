//! The embedded broker's log is trimmed of what every consumer group of a topic has handled
//! (DeleteRecords, through the patched tansu-storage), keeping a margin behind the slowest;
//! the groups read on from where they were.
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bus::{Bus, BusConfig, OffRuntimeDrop};
use contracts::Catalogue;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _};
use rdkafka::message::Message as _;
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};

/// Read by the SMS connector alone.
const TOPIC: &str = "hub.sms.requests";
const GROUP: &str = "sms-connector";

/// The first offset still held on partition 0.
async fn log_start(bus: &Bus) -> i64 {
    let config = bus.client_config();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = config.create().unwrap();
        consumer.fetch_watermarks(TOPIC, 0, Duration::from_secs(5)).unwrap().0
    })
    .await
    .unwrap()
}

/// Commits `offset` on partition 0 for `group`, as a consumer that handled everything before it.
async fn commit(bus: &Bus, group: &str, offset: i64) {
    let mut config = bus.client_config();
    config.set("group.id", group).set("enable.auto.commit", "false");
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = config.create().unwrap();
        let mut offsets = TopicPartitionList::new();
        offsets.add_partition_offset(TOPIC, 0, Offset::Offset(offset)).unwrap();
        consumer.commit(&offsets, CommitMode::Sync).unwrap();
    })
    .await
    .unwrap()
}

/// The offset of the first message `group` is handed next.
async fn next_for(bus: &Bus, group: &str) -> i64 {
    let consumer = OffRuntimeDrop::new(bus.consumer(group, &[TOPIC]).unwrap());
    let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv()).await.expect("a message").unwrap();
    let offset = message.offset();
    drop(message);
    consumer.close().await;
    offset
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_log_keeps_only_what_a_consumer_still_needs_and_a_margin() {
    let bus = Arc::new(Bus::connect(&BusConfig::default(), Arc::new(Catalogue::builtin())).await.unwrap());
    assert_eq!(bus.keep_consumed(), Some(100), "the embedded broker is trimmed by default");
    let producer = bus.producer().unwrap();
    for n in 0..50 {
        let payload = format!("text {n}");
        let record = FutureRecord::to(TOPIC).partition(0).key("k").payload(&payload);
        producer.send(record, Duration::from_secs(10)).await.unwrap();
    }
    assert_eq!(log_start(&bus).await, 0);

    // Nothing committed yet: nothing may go.
    let partition = (TOPIC.to_string(), 0);
    let watchers = Arc::new(OffRuntimeDrop::new(bus::trim::Watchers::new(&bus).unwrap()));
    assert!(!bus::trim::slowest_committed(&watchers).await.unwrap().contains_key(&partition));

    // The SMS connector handled the first 40: all but the last 10 of those may go.
    commit(&bus, GROUP, 40).await;
    let slowest = bus::trim::slowest_committed(&watchers).await.unwrap();
    assert_eq!(slowest.get(&partition), Some(&40));
    bus::trim::delete_before(&bus, &BTreeMap::from([(partition.clone(), 30)])).await.unwrap();
    assert_eq!(log_start(&bus).await, 30, "each message was its own batch: exactly those before 30 went");

    // The group reads on where it was; a new group starts at what is left.
    assert_eq!(next_for(&bus, GROUP).await, 40);
    assert_eq!(next_for(&bus, "a-new-reader").await, 30);
    // A point past the end is refused, not taken as everything.
    assert!(bus::trim::delete_before(&bus, &BTreeMap::from([(partition, 1_000)])).await.is_err());
    assert_eq!(log_start(&bus).await, 30);
}
