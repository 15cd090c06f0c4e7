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

/// Messages held by the topics that have consumers (the ones the relay sends again).
async fn consumed_messages(bus: &Bus) -> i64 {
    let mut total = 0;
    for topic in bus.catalogue().topics.iter().filter(|t| !t.consumers.is_empty()) {
        total += bus.message_count(&topic.name).await.unwrap();
    }
    total
}

/// Relays until `until` holds for the messages on the consumed topics (30 s at most); answers them.
async fn relay_until(store: &Store, bus: Arc<Bus>, until: impl Fn(i64) -> bool) -> i64 {
    let stop = CancellationToken::new();
    let relaying = tokio::spawn(hub::relay(store.clone(), bus.clone(), store.outbox_written.clone(), stop.clone()));
    let deadline = Instant::now() + Duration::from_secs(30);
    let held = loop {
        let held = consumed_messages(&bus).await;
        if until(held) && store.unpublished_ids(0, 1).await.unwrap().is_empty() {
            break held;
        }
        assert!(Instant::now() < deadline, "the relay did not get there: {held} messages on the consumed topics");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    stop.cancel();
    relaying.await.unwrap();
    held
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
    let sent = relay_until(&store, bus.clone(), |held| held > 0).await;
    let first = store.broker_cluster().await.unwrap().expect("the cluster published to is kept");
    drop(bus);

    drop(broker);
    let _broker = start_broker(&bootstrap);
    let bus = Arc::new(Bus::connect(&config, catalogue).await.unwrap());
    assert_eq!(consumed_messages(&bus).await, 0, "the restarted broker starts empty");
    // Nothing is unpublished in the outbox: only the comparison with the kept ends can tell.
    let resent = relay_until(&store, bus.clone(), |held| held >= sent).await;
    assert_eq!(resent, sent, "every unapplied event sent again, once");
    let second = store.broker_cluster().await.unwrap().unwrap();
    assert_ne!(first, second, "the new cluster is kept");
}
