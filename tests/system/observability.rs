//! Liveness, readiness and the Prometheus metrics, read as Prometheus reads them (no token):
//! cases per state, consumer lag, connectors, dead letters and time-limit warnings.
use crate::common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::desk::{demo_options, Desk};
use hub::config::Config;
use hub_cli::demo::DemoRun;
use rdkafka::producer::FutureRecord;
use serde_json::{json, Value};

const SELF_EMPLOYED: &str = "11610429MB2912345A4000104010000";
const VILLAGE: &str = "610429100201";

/// The exposition as `name{labels}` → value; it must end as OpenMetrics requires.
async fn scrape(api: &str) -> BTreeMap<String, f64> {
    let response = reqwest::get(format!("{api}/metrics")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
    let text = response.text().await.unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| {
            let (name, value) = line.rsplit_once(' ').unwrap();
            (name.to_string(), value.parse().unwrap())
        })
        .collect()
}

/// The OpenAPI document the route table makes: every schema reference resolves, request bodies
/// refuse unknown fields and name the required ones, and each operation lists its roles.
async fn check_document(api: &str) {
    let document: Value = reqwest::get(format!("{api}/openapi.json")).await.unwrap().json().await.unwrap();
    let text = document.to_string();
    let schemas = document["components"]["schemas"].as_object().unwrap();
    for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = &reference[..reference.find('"').unwrap()];
        assert!(schemas.contains_key(name), "{name} is referenced but not defined");
    }
    assert_eq!(schemas["DecisionRequest"]["additionalProperties"], false);
    assert_eq!(schemas["DecisionRequest"]["required"], json!(["outcome", "department_code"]));
    let submit = &document["paths"]["/api/v1/applications"]["post"];
    assert_eq!(submit["x-roles"], json!(["village_clerk", "township_clerk", "bank_outlet"]));
    let listing = &document["paths"]["/api/v1/cases"]["get"]["parameters"];
    assert!(listing.as_array().unwrap().iter().any(|p| p["name"] == "state" && p["required"] == true), "{listing}");
    let push = &document["paths"]["/connectors/postal/tracking"]["post"];
    assert_eq!(push["tags"], json!(["counterparts"]), "the connectors' routes are in the one table");
    assert!(
        document["paths"]["/console/"].is_null() && document["paths"]["/schema-registry/subjects"].is_null(),
        "no operations"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_cases_lag_connectors_dead_letters_and_warnings() {
    let dir = tempfile::tempdir().unwrap();
    for (backend, url) in common::databases(&dir).await {
        let mut config = Config::default();
        config.database.url = url.clone();
        config.api.listen = "127.0.0.1:0".into();
        let mut options = demo_options(dir.path());
        options.cases = 6;
        let demo = DemoRun::start(config, &options).await.unwrap();
        let summary = demo.drive(&options).await.unwrap();
        assert_eq!(summary.completed, 6, "{backend}");
        let api = demo.api_url().to_string();
        let desk = Desk::new(&demo);

        assert_eq!(reqwest::get(format!("{api}/health")).await.unwrap().status(), 200);
        let ready = reqwest::get(format!("{api}/ready")).await.unwrap();
        assert_eq!(ready.status(), 200);
        let counterparts = json!({"postal-connector": "ok", "ecert-connector": "ok", "province-connector": "ok", "bank-connector": "ok", "sms-connector": "ok"});
        let expected = json!({"ready": true, "database": "ok", "kafka": "ok", "counterparts": counterparts});
        assert_eq!(ready.json::<Value>().await.unwrap(), expected, "{backend}");
        check_document(&api).await;

        // One case left waiting past its statutory limit: a red card.
        let late = desk.submit(&format!("{backend}-late"), SELF_EMPLOYED, VILLAGE, json!({})).await;
        let record = desk.wait_for(&late, "routed").await;
        let statutory = record["case"]["statutory_date"].as_i64().unwrap();
        let the_day_after = (statutory + 1) * 86_400_000 + 2 * 3_600_000;
        hub::app::deadlines::check_deadlines(&demo.hub.store, &demo.hub.reference.get(), the_day_after).await.unwrap();
        // An operator pauses the bank connector; a poison message reaches the dead letters.
        let (status, _) = desk.call("/api/v1/connectors/bank-connector/pause", json!({"reason": "银行系统升级"})).await;
        assert_eq!(status, 200);
        let producer = demo.hub.bus.producer().unwrap();
        producer
            .send(
                FutureRecord::to("hub.applications.submitted").key("poison").payload(b"not Avro".as_slice()),
                Duration::from_secs(10),
            )
            .await
            .unwrap();

        // Each group reading the topic sets the poison aside once.
        let readers = demo.hub.bus.catalogue().topic("hub.applications.submitted").unwrap().consumers.len() as f64;
        let deadline = Instant::now() + Duration::from_secs(30);
        let figures = loop {
            let figures = scrape(&api).await;
            if figures.get("hub_dead_letters") == Some(&readers) {
                break figures;
            }
            assert!(Instant::now() < deadline, "{backend}: the poison never showed as a dead letter: {figures:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let figure = |name: &str| *figures.get(name).unwrap_or_else(|| panic!("{backend}: no {name} in {figures:?}"));
        assert_eq!(figure("hub_cases{state=\"archived\"}"), 6.0, "{backend}");
        assert_eq!(figure("hub_cases{state=\"routed\"}"), 1.0, "{backend}");
        assert_eq!(figure("hub_cases{state=\"in_transit\"}"), 0.0, "{backend}: every state is shown");
        assert!(figure("hub_deadline_warnings{level=\"red\"}") >= 1.0, "{backend}");
        assert_eq!(figure("hub_connector_running{connector=\"bank-connector\"}"), 0.0, "{backend}: paused");
        assert_eq!(figure("hub_connector_running{connector=\"postal-connector\"}"), 1.0, "{backend}");
        assert!(figure("hub_connector_batches_applied{connector=\"postal-connector\"}") >= 1.0, "{backend}");
        assert_eq!(figure("hub_connector_incidents_open{connector=\"postal-connector\"}"), 0.0, "{backend}");
        let lag = figure("hub_consumer_lag{group=\"hub-delivery\"}");
        assert!(lag >= 0.0, "{backend}: {lag}");
        assert!(
            figures.keys().any(|name| name.starts_with("hub_consumer_lag{group=\"hub-audit\"}")),
            "{backend}: every group of the catalogue"
        );
        let in_use = figure("hub_heap_in_use_bytes");
        assert!(in_use > 1e6 && in_use < 1e10, "{backend}: the heap in use {in_use}");
        // Only SQLite has one writer; six cases archived held it for some time.
        let held = figures.get("hub_writer_held_seconds_total");
        match backend {
            "sqlite" => assert!(held.is_some_and(|held| *held > 0.0), "{backend}: the writer's time {held:?}"),
            _ => assert_eq!(held, None, "{backend}: no one writer"),
        }
        demo.stop().await;
    }
}
