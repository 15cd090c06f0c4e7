//! Poison messages: whatever arrives malformed on an input topic goes to the dead-letter topic
//! with its source topic, partition, offset and the reason in headers, and consumption goes on.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bus::{run_consumer, BatchLimit, Bus, BusConfig};
use contracts::catalogue::DEAD_LETTER_TOPIC;
use contracts::{CaseArchived, Catalogue, Event};
use hub::app::cases::CaseProcessor;
use hub::app::reference::CurrentReference;
use hub::store::Store;
use hub_core::{CaseState, Reference};
use rdkafka::message::{Headers as _, Message as _};
use rdkafka::producer::FutureRecord;
use tokio_util::sync::CancellationToken;

const TOPIC: &str = "hub.applications.submitted";
/// A case consumer group of the test's own on that topic.
const GROUP: &str = "poison-test";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_messages_are_dead_lettered_and_consumption_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let catalogue = Arc::new(Catalogue::builtin());
    let reference = Arc::new(Reference::builtin());
    let store =
        Store::connect(&format!("sqlite://{}", dir.path().join("hub.db").display()), catalogue.clone()).await.unwrap();
    let bus = Arc::new(Bus::connect(&BusConfig::default(), catalogue).await.unwrap());

    // A real submission waits in the outbox; the poison goes on the same topic first.
    let application = common_application(&store, &reference).await;
    let producer = bus.producer().unwrap();
    let wrong_record = contracts::encode(&Event::from(CaseArchived {
        event_id: "x/9".into(),
        case_number: application.case_number().into(),
        occurred_at: 1,
        final_outcome: "signed".into(),
        document_count: 1,
        archivist: "马晓燕".into(),
        file_number: String::new(),
        retention: "D30".into(),
        unit_code: String::new(),
    }))
    .unwrap();
    let mut ghost = application.clone();
    if let Event::ApplicationSubmitted(e) = &mut ghost {
        e.case_number = "610429000000009999".into();
        e.event_id = "ghost/1".into();
    }
    let poison: Vec<(&str, Vec<u8>)> = vec![
        ("not Avro at all", b"{\"case\": 1}".to_vec()),
        ("wrong record for the topic", wrong_record),
        ("unknown case", contracts::encode(&ghost).unwrap()),
        ("the real one", contracts::encode(&application).unwrap()),
    ];
    for (key, payload) in &poison {
        producer.send(FutureRecord::to(TOPIC).key(*key).payload(payload), Duration::from_secs(10)).await.unwrap();
    }

    let shutdown = CancellationToken::new();
    let processor = Arc::new(CaseProcessor {
        consumer: GROUP.into(),
        store: store.clone(),
        reference: CurrentReference::new(Reference::builtin()),
    });
    let consumer = tokio::spawn(run_consumer(
        bus.clone(),
        GROUP.into(),
        vec![TOPIC.into()],
        processor,
        BatchLimit { usual: 64, behind: 64 },
        shutdown.clone(),
    ));

    // Consumption went on past the poison: the real application was applied (to its case,
    // already examined when it was opened: nothing more to do).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while bus::Outbox::applied_among(&store, GROUP, &[application.event_id()]).await.unwrap().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "the real application was never applied");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(store.case(application.case_number()).await.unwrap().unwrap().case.state, CaseState::Routed);

    let reader = bus.consumer("dead-letter-reader", &[DEAD_LETTER_TOPIC]).unwrap();
    let mut dead: HashMap<String, HashMap<String, String>> = HashMap::new();
    while dead.len() < 3 {
        let message =
            tokio::time::timeout(Duration::from_secs(30), reader.recv()).await.expect("three dead letters").unwrap();
        let key = String::from_utf8_lossy(message.key().unwrap()).to_string();
        let headers = message.headers().unwrap();
        let fields = headers
            .iter()
            .map(|h| (h.key.to_string(), String::from_utf8_lossy(h.value.unwrap_or_default()).to_string()))
            .collect();
        let original = poison.iter().find(|(k, _)| *k == key).unwrap();
        assert_eq!(message.payload().unwrap(), original.1.as_slice(), "the payload is kept unchanged");
        dead.insert(key, fields);
    }
    for (key, expected_reason) in [
        ("not Avro at all", "magic byte"),
        ("wrong record for the topic", "not carried by topic"),
        ("unknown case", "does not exist"),
    ] {
        let headers = &dead[key];
        assert_eq!(headers["dlq.source.topic"], TOPIC);
        assert!(headers["dlq.source.partition"].parse::<i32>().is_ok());
        assert!(headers["dlq.source.offset"].parse::<i64>().is_ok());
        assert_eq!(headers["dlq.consumer.group"], GROUP);
        assert!(headers["dlq.error"].contains(expected_reason), "{key}: {}", headers["dlq.error"]);
    }
    assert!(!dead.contains_key("the real one"));
    shutdown.cancel();
    consumer.await.unwrap().unwrap();
    bus::OffRuntimeDrop::new(reader).close().await;
}

/// Opens a case the normal way and returns its ApplicationSubmitted event.
async fn common_application(store: &Store, reference: &Reference) -> Event {
    let (request, _) = hub_cli::demo::demo_applications(reference, 1, false).next().unwrap();
    hub::app::intake::submit_application(store, reference, &request).await.unwrap();
    let ids = bus::OutboxStore::unpublished_ids(store, 0, 1).await.unwrap();
    let message = bus::OutboxStore::messages(store, &ids).await.unwrap().remove(0);
    contracts::decode(&message.payload).unwrap()
}
