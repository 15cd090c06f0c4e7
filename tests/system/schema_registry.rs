//! The hub answers the Confluent Schema Registry's read API, so a standard client decodes its
//! topics: Python's confluent-kafka (from PyPI) with its SchemaRegistryClient and
//! AvroDeserializer reads the delivery orders the demo made, and finds what the hub wrote.
use crate::common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use contracts::{Event, Registry};
use hub::config::Config;
use hub_cli::demo::DemoRun;
use rdkafka::message::Message as _;
use serde_json::{json, Value};

const TOPIC: &str = "hub.postal.delivery-requests";
const DELIVERY: &str = "cn.gov.county.hub.DeliveryRequested";

async fn get(url: String) -> (u16, Value) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status().as_u16();
    assert_eq!(response.headers()["content-type"], "application/vnd.schemaregistry.v1+json");
    (status, response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standard_client_decodes_the_hubs_topics_through_its_registry() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.api.listen = "127.0.0.1:0".into();
    let mut options = common::desk::demo_options(dir.path());
    options.cases = 8;
    let demo = DemoRun::start(config, &options).await.unwrap();
    let summary =
        tokio::time::timeout(Duration::from_secs(120), demo.drive(&options)).await.expect("the demo finished").unwrap();
    assert_eq!(summary.completed, 8);
    let registry = format!("{}/schema-registry", demo.api_url());

    // The read API, as Confluent's clients call it.
    let (status, subjects) = get(format!("{registry}/subjects")).await;
    assert_eq!(status, 200);
    assert!(subjects.as_array().unwrap().iter().any(|s| s == DELIVERY), "{subjects}");
    let (_, versions) = get(format!("{registry}/subjects/{DELIVERY}/versions")).await;
    let latest = Registry::global().latest(DELIVERY).unwrap();
    assert_eq!(versions.as_array().unwrap().last().unwrap(), latest.version);
    let (_, described) = get(format!("{registry}/subjects/{DELIVERY}/versions/latest")).await;
    assert_eq!(
        (described["id"].as_u64(), described["version"].as_u64()),
        (Some(u64::from(latest.id)), Some(u64::from(latest.version)))
    );
    for entry in Registry::global().entries() {
        let (status, by_id) = get(format!("{registry}/schemas/ids/{}", entry.id)).await;
        let served: Value = serde_json::from_str(by_id["schema"].as_str().unwrap()).unwrap();
        assert_eq!((status, served), (200, serde_json::from_str::<Value>(entry.text).unwrap()), "schema {}", entry.id);
    }
    let (status, missing) = get(format!("{registry}/subjects/cn.gov.county.hub.Nonesuch/versions")).await;
    assert_eq!((status, missing["error_code"].as_u64()), (404, Some(40401)));
    assert_eq!(get(format!("{registry}/schemas/ids/9999")).await.1["error_code"], 40403);
    assert_eq!(get(format!("{registry}/subjects/{DELIVERY}/versions/77")).await.1["error_code"], 40402);

    // The compatibility check: an optional field added is compatible, a required one is not.
    let mut schema: Value = serde_json::from_str(latest.text).unwrap();
    let client = reqwest::Client::new();
    let check = |schema: &Value| {
        client
            .post(format!("{registry}/compatibility/subjects/{DELIVERY}/versions/latest"))
            .json(&json!({"schema": schema.to_string()}))
            .send()
    };
    schema["fields"].as_array_mut().unwrap().push(json!({"name": "note", "type": ["null", "string"], "default": null}));
    assert_eq!(check(&schema).await.unwrap().json::<Value>().await.unwrap()["is_compatible"], true);
    schema["fields"].as_array_mut().unwrap().push(json!({"name": "weight_grams", "type": "long"}));
    assert_eq!(check(&schema).await.unwrap().json::<Value>().await.unwrap()["is_compatible"], false);
    let garbage = client
        .post(format!("{registry}/compatibility/subjects/{DELIVERY}/versions/latest"))
        .json(&json!({"schema": "{not avro"}))
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 422);

    // What the hub wrote, read with its own decoder.
    let consumer =
        bus::OffRuntimeDrop::new(demo.hub.bus.consumer(&format!("test-{}", uuid::Uuid::now_v7()), &[TOPIC]).unwrap());
    let mut written = BTreeMap::new();
    while let Ok(message) = tokio::time::timeout(Duration::from_secs(3), consumer.recv()).await {
        if let Event::DeliveryRequested(order) = contracts::decode(message.unwrap().payload().unwrap()).unwrap() {
            written.insert(order.event_id.clone(), order);
        }
    }
    consumer.close().await;
    assert!(!written.is_empty(), "the demo mailed results");

    // The same orders, read by Confluent's Python client through the hub's registry.
    let packages =
        common::python_packages("confluent_kafka.schema_registry.avro", "confluent-kafka[avro,schemaregistry]==2.6.1");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/system/python/read_delivery_orders.py");
    let bootstrap = demo.hub.bus.bootstrap().to_string();
    let count = written.len().to_string();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(script)
            .args([bootstrap.as_str(), registry.as_str(), TOPIC, count.as_str()])
            .env("PYTHONPATH", packages)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(output.status.success(), "the Python client failed: {}", String::from_utf8_lossy(&output.stderr));
    let read: BTreeMap<String, Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .map(|order| (order["event_id"].as_str().unwrap().to_string(), order))
        .collect();
    assert_eq!(read.keys().collect::<Vec<_>>(), written.keys().collect::<Vec<_>>());
    for (event_id, order) in &written {
        let decoded = &read[event_id];
        assert_eq!(decoded["case_number"], order.case_number.as_str());
        assert_eq!(decoded["order_number"], order.order_number.as_str());
        assert_eq!(decoded["receiver"]["name"], order.receiver.name.as_str(), "Chinese text survives");
        assert_eq!(decoded["receiver"]["post_code"], order.receiver.post_code.as_str());
        assert_eq!(decoded["data_subject"], order.data_subject.as_str());
    }
    demo.stop().await;
}
