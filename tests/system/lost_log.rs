//! A broker that lost its log (a standalone broker restarted on its memory engine, which makes
//! it another cluster): the relay sees the cluster id change and sends again every event a
//! consumer has not applied. No hub client is connected while the broker restarts: tansu
//! 0.6.0 answers a fetch for a topic id it no longer knows in a way that crashes librdkafka
//! 2.12 (issue 18's note), which Apache Kafka never does.
use crate::common;
use crate::instances::start_broker;
use crate::store::application;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bus::{Bus, BusConfig, OutboxStore as _};
use contracts::Catalogue;
use hub::app::intake::submit_application;
use hub::store::Store;
use hub_core::Reference;
use tokio_util::sync::CancellationToken;

/// The topics that have consumers (the ones the relay sends again).
fn consumed_topics(bus: &Bus) -> Vec<&str> {
    bus.catalogue().topics.iter().filter(|t| !t.consumers.is_empty()).map(|t| t.name.as_str()).collect()
}

/// Every message on the consumed topics, read by a new consumer group until none comes for 3 s.
/// Read, not taken from the watermarks: tansu 0.6.0 answers a partition's end with the base
/// offset of its last batch.
async fn consumed_messages(bus: &Bus) -> usize {
    let group = format!("lost-log-{}", uuid::Uuid::now_v7());
    let consumer = bus::OffRuntimeDrop::new(bus.consumer(&group, &consumed_topics(bus)).unwrap());
    let (mut count, mut wait) = (0, Duration::from_secs(30));
    while let Ok(message) = tokio::time::timeout(wait, consumer.recv()).await {
        message.unwrap();
        count += 1;
        wait = Duration::from_secs(3);
    }
    consumer.close().await;
    count
}

/// Relays until nothing is unpublished and the kept cluster id is another than `old` (30 s at
/// most): a relay that found the log lost has then sent everything again.
async fn relay_until_settled(store: &Store, bus: Arc<Bus>, old: Option<&str>) {
    let stop = CancellationToken::new();
    let relaying = tokio::spawn(hub::relay(store.clone(), bus.clone(), store.outbox_written.clone(), stop.clone()));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let kept = store.broker_cluster().await.unwrap();
        if kept.is_some() && kept.as_deref() != old && store.unpublished_ids(0, 1).await.unwrap().is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the relay did not settle the outbox on the broker (kept {kept:?})");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.cancel();
    relaying.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_broker_lost_its_log_the_relay_sends_again_what_is_unsettled() {
    let url = common::fresh_postgres_schema().await.expect("PostgreSQL for a clustered hub");
    let catalogue = Arc::new(Catalogue::builtin());
    let store = Store::connect(&url, catalogue.clone()).await.unwrap();
    let reference = Reference::builtin();
    for request in ["lost-1", "lost-2", "lost-3"] {
        submit_application(&store, &reference, &application(&reference, request)).await.unwrap();
    }
    let bootstrap = format!("127.0.0.1:{}", common::free_port());
    let config = BusConfig { bootstrap_servers: Some(bootstrap.clone()), ..BusConfig::default() };

    let broker = start_broker(&bootstrap);
    let bus = Arc::new(Bus::connect(&config, catalogue.clone()).await.unwrap());
    relay_until_settled(&store, bus.clone(), None).await;
    let first = store.broker_cluster().await.unwrap().expect("the cluster published to is kept");
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    let topics: Vec<String> = sqlx::query_scalar("SELECT topic FROM outbox").fetch_all(&pool).await.unwrap();
    pool.close().await;
    let unapplied = topics.iter().filter(|topic| consumed_topics(&bus).contains(&topic.as_str())).count();
    assert!(unapplied > 0, "the applications caused events that consumers apply");
    assert_eq!(consumed_messages(&bus).await, unapplied, "each event sent once");
    drop(bus);

    drop(broker);
    let _broker = start_broker(&bootstrap);
    let bus = Arc::new(Bus::connect(&config, catalogue).await.unwrap());
    for topic in consumed_topics(&bus) {
        assert_eq!(bus.message_count(topic).await.unwrap(), 0, "the restarted broker starts empty");
    }
    // Nothing is unpublished in the outbox: only the cluster id kept can tell what was lost.
    relay_until_settled(&store, bus.clone(), Some(&first)).await;
    assert_eq!(consumed_messages(&bus).await, unapplied, "every unapplied event sent again, once");
}
