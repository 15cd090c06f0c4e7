//! The catalogue rules the topics: missing ones are created (idempotently), and a live topic
//! that contradicts the catalogue stops the hub with a message naming the difference.
use std::sync::Arc;

use bus::{Bus, BusConfig};
use contracts::Catalogue;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_are_created_once_and_contradictions_refused() {
    let embedded = Bus::connect(&BusConfig::default(), Arc::new(Catalogue::builtin())).await.unwrap();
    let external = BusConfig { bootstrap_servers: Some(embedded.bootstrap().to_string()), ..BusConfig::default() };

    // Connecting again to the same cluster finds the topics there and accepts them.
    let again = Bus::connect(&external, Arc::new(Catalogue::builtin())).await.unwrap();
    assert!(!again.is_embedded());

    let mut contradicting = Catalogue::builtin();
    contradicting.topics[0].partitions = 3;
    let refused = Bus::connect(&external, Arc::new(contradicting)).await;
    let message = format!("{:#}", refused.err().expect("a contradicting topic must stop the start"));
    assert!(message.contains("refusing to start"), "{message}");
    assert!(message.contains("hub.applications.submitted") && message.contains("partitions"), "{message}");
}
