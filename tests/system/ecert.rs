//! The e-certificate connector against its simulator, and through the whole hub: one certificate
//! per approval whatever the faults, identifiers with a right check character, revocation,
//! lookups only with a purpose, and every exchange on the data-sharing topic.
use crate::common;

use std::sync::Arc;
use std::time::Duration;

use bus::{BatchHandler, Delivery, OutboxStore};
use common::admin;
use common::desk::{Desk, APPLICANT_ID};
use connectors::ecert::identifier::CertificateId;
use connectors::ecert::outbound::EcertOutbound;
use connectors::ecert::simulator::{self, CertificateRecord, LookupRecord, SimulatorConfig, Stats};
use connectors::ecert::{self, EcertConfig};
use connectors::framework::control::{ConnectorControl, ConnectorStatus};
use connectors::simulation::Faults;
use contracts::{Catalogue, CertificateRequested, DataShared, Event};
use hub::config::Config;
use hub::store::Store;
use hub_cli::demo::DemoRun;
use rdkafka::Message as _;
use serde_json::json;

const FOOD: &str = "11610429MB2912345A4000104119000";
const VILLAGE: &str = "610429100201";

fn request(serial: usize, holder_code_kind: &str) -> Delivery {
    let case_number = format!("6104292026112000{serial:04}");
    let event: Event = CertificateRequested {
        event_id: format!("{case_number}/6"),
        case_number: case_number.clone(),
        occurred_at: 1_763_604_000_000,
        type_code: "11100000MB0308302E021".into(),
        certificate_name: "食品经营许可证".into(),
        number: format!("旬审批食〔2026〕{serial}号"),
        holder_name: "张三".into(),
        holder_code: APPLICANT_ID.into(),
        holder_code_kind: holder_code_kind.into(),
        data_subject: "subject".into(),
        issuer: "旬邑县行政审批服务局".into(),
        issuer_code: "11610429MB2912345A".into(),
        issue_date: 20_777,
        valid_until: Some(22_602),
        area_code: "610429".into(),
    }
    .into();
    Delivery { topic: "hub.ecert.requests".into(), partition: 0, offset: serial as i64, event }
}

async fn recorded(store: &Store) -> Vec<Event> {
    let ids = store.unpublished_ids(0, 10_000).await.unwrap();
    store.messages(&ids).await.unwrap().iter().map(|m| contracts::decode(&m.payload).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_are_issued_once_through_errors_lost_answers_and_an_outage() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Store::connect(&format!("sqlite://{}", dir.path().join("hub.db").display()), Arc::new(Catalogue::builtin()))
            .await
            .unwrap();
    let faults = Faults { error_rate: 0.3, delay_ms: 5, duplicate_rate: 0.3, outage: false };
    let sim_config = SimulatorConfig { app_id: "XY610429-HUB".into(), app_secret: "development-secret".into(), faults };
    let sim = simulator::spawn(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(), sim_config).unwrap();
    let config = EcertConfig { base_url: sim.base_url.clone(), retry: common::PATIENT, ..EcertConfig::default() };
    let connector =
        EcertOutbound::new(config.clone(), Arc::new(store.clone()), ConnectorControl::new(ecert::CONSUMER)).unwrap();

    // Twenty good requests and one the repository refuses; delivered twice, as after a rebalance.
    let mut batch: Vec<Delivery> = (1..=20).map(|n| request(n, "111")).collect();
    batch.push(request(21, "999"));
    let rejected = connector.handle(&batch).await.unwrap();
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(rejected[0].index, 20);
    assert!(rejected[0].reason.contains("holder_code_kind"), "the repository's reason is kept: {}", rejected[0].reason);
    assert!(connector.handle(&batch).await.unwrap().is_empty(), "a redelivered batch changes nothing");

    // An outage while a request is under way: the connector waits it out.
    reqwest::Client::new()
        .put(format!("{}/admin/faults", sim.base_url))
        .json(&json!({"outage": true}))
        .send()
        .await
        .unwrap();
    let late = [request(22, "111")];
    let handling = tokio::spawn({
        let connector =
            EcertOutbound::new(config.clone(), Arc::new(store.clone()), ConnectorControl::new(ecert::CONSUMER))
                .unwrap();
        async move { connector.handle(&late).await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!handling.is_finished(), "nothing is issued while the repository is down");
    reqwest::Client::new().put(format!("{}/admin/faults", sim.base_url)).json(&json!({})).send().await.unwrap();
    assert!(handling.await.unwrap().is_empty());

    let stats: Stats = admin(&sim.base_url, "stats").await;
    assert_eq!(stats.certificates, 21, "one certificate per request: {stats:?}");
    assert!(stats.calls.failed_calls > 0 && stats.calls.lost_answers > 0, "the faults struck: {stats:?}");
    assert_eq!(
        stats.replays, stats.calls.lost_answers,
        "each lost answer was retried and found the certificate issued: {stats:?}"
    );
    let held: Vec<CertificateRecord> = admin(&sim.base_url, "certificates").await;
    for record in &held {
        let id: CertificateId =
            record.certificate.certificate_id.parse().expect("a well-formed identifier with its check character");
        assert_eq!((id.type_code.as_str(), id.issuer_code.as_str()), ("11100000MB0308302E021", "11610429MB2912345A"));
    }

    let events = recorded(&store).await;
    let issued: Vec<&str> = events
        .iter()
        .filter_map(|e| if let Event::CertificateIssued(i) = e { Some(i.certificate_id.as_str()) } else { None })
        .collect();
    assert_eq!(issued.len(), 21);
    let mut distinct = issued.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 21, "no certificate recorded twice");
    let shared: Vec<_> =
        events.iter().filter_map(|e| if let Event::DataShared(s) = e { Some(s) } else { None }).collect();
    assert_eq!(shared.len(), 22, "every exchange, the refused one too");
    assert_eq!(shared.iter().filter(|s| s.outcome == "refused").count(), 1);
    assert!(shared
        .iter()
        .all(|s| s.exchange == "certificate.issue" && s.data_subject == "subject" && s.channel == "ecert-connector"));

    // A connector with the wrong secret is refused for good, not retried.
    let forged = EcertOutbound::new(
        EcertConfig { app_secret: "guess".into(), ..config.clone() },
        Arc::new(store.clone()),
        ConnectorControl::new(ecert::CONSUMER),
    )
    .unwrap();
    let rejected = forged.handle(&[request(23, "111")]).await.unwrap();
    assert!(rejected[0].reason.contains("401"), "{}", rejected[0].reason);

    // Down past the retry policy: an incident, the batch handed back untouched, and an automatic
    // restart that closes the incident once the repository answers again.
    let quick = EcertConfig {
        retry: bus::RetryPolicy { initial_ms: 5, max_ms: 10, multiplier: 2.0, max_attempts: 3 },
        ..config
    };
    let control = ConnectorControl::new(ecert::CONSUMER);
    let connector = EcertOutbound::new(quick, Arc::new(store.clone()), control.clone()).unwrap();
    reqwest::Client::new()
        .put(format!("{}/admin/faults", sim.base_url))
        .json(&json!({"outage": true}))
        .send()
        .await
        .unwrap();
    let error = connector.handle(&[request(24, "111")]).await.unwrap_err();
    assert!(error.to_string().contains("unreachable"), "{error}");
    let status = control.status();
    assert_eq!((status.state.as_str(), status.incidents.len()), ("restarting", 1), "{status:?}");
    assert!(status.incidents[0].reason.contains("503"), "{status:?}");
    assert!(
        !recorded(&store).await.iter().any(|e| e.case_number() == "61042920261120000024"),
        "nothing recorded for the failed batch"
    );
    reqwest::Client::new().put(format!("{}/admin/faults", sim.base_url)).json(&json!({})).send().await.unwrap();
    assert!(connector.handle(&[request(24, "111")]).await.unwrap().is_empty());
    let status = control.status();
    assert_eq!(
        (status.state.as_str(), status.incidents[0].resolved_by.as_deref()),
        ("running", Some("recovered")),
        "{status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_issues_a_certificate_that_can_be_verified_and_revoked() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let dir = tempfile::tempdir().unwrap();
    for (backend, url) in common::databases(&dir).await {
        let mut config = Config::default();
        config.database.url = url;
        config.api.listen = "127.0.0.1:0".into();
        config.audit.subject_key = "county key".into();
        let demo = DemoRun::start(config, &common::desk::demo_options(dir.path())).await.unwrap();
        let desk = Desk::new(&demo);

        // An integrator pauses the connector: the approval waits for its certificate until resumed.
        let (status, connectors) = desk.get("/api/v1/connectors".into()).await;
        let names: Vec<&str> = connectors.as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
        assert_eq!(
            (status, names),
            (200, vec!["postal-connector", "ecert-connector", "province-connector", "bank-connector", "sms-connector"])
        );
        let (status, paused) =
            desk.call("/api/v1/connectors/ecert-connector/pause", json!({"reason": "证照库维护"})).await;
        assert_eq!((status, paused["state"].as_str()), (200, Some("paused")), "{paused}");
        assert_eq!(desk.call("/api/v1/connectors/nonesuch/pause", json!({"reason": "x"})).await.0, 404);
        assert_eq!(desk.call("/api/v1/connectors/ecert-connector/pause", json!({"reason": " "})).await.0, 400);
        let case =
            desk.submit(&format!("{backend}-food"), FOOD, VILLAGE, json!({"delivery": {"method": "window"}})).await;
        desk.wait_for(&case, "routed").await;
        assert_eq!(desk.decide(&case, "approved", None).await.0, 200);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            desk.case(&case).await["case"]["certificate"]["status"],
            "requested",
            "{backend}: nothing issued while paused"
        );
        let (status, left) = desk.call("/api/v1/connectors/postal-connector/restart", json!({})).await;
        assert_eq!((status, left["state"].as_str()), (200, Some("running")), "a running connector is left as it is");
        let (status, resumed) = desk.call("/api/v1/connectors/ecert-connector/resume", json!({})).await;
        let resumed: ConnectorStatus = serde_json::from_value(resumed).unwrap();
        assert_eq!((status, resumed.state.as_str()), (200, "running"));
        let record = desk.wait_until(&case, "an issued certificate", |c| c["certificate"]["status"] == "valid").await;
        let certificate_id = record["case"]["certificate"]["certificate_id"].as_str().unwrap().to_string();
        assert!(certificate_id.parse::<CertificateId>().is_ok(), "{backend}: {certificate_id}");
        assert_eq!(record["case"]["certificate"]["name"], "食品经营许可证");

        // Verified instead of a paper copy, with a stated purpose; never without one.
        let lookup = |query: String| desk.get(format!("/api/v1/certificates/{query}"));
        let (status, verified) = lookup(format!(
            "{certificate_id}?purpose=办理食品经营许可变更：核验许可证&case_number={case}&officer=李受理"
        ))
        .await;
        assert_eq!(status, 200, "{backend}: {verified}");
        assert_eq!(
            (verified["valid"].as_bool(), verified["certificate"]["holder_name"].as_str()),
            (Some(true), Some("张三")),
            "{verified}"
        );
        assert_eq!(verified["certificate"]["number"], record["case"]["result_document"]);
        let (status, answer) = lookup(certificate_id.clone()).await;
        assert_eq!((status, answer["field"].as_str()), (400, Some("purpose")), "{backend}: {answer}");
        let mut corrupted = certificate_id.clone();
        corrupted.replace_range(corrupted.len() - 1.., if certificate_id.ends_with('A') { "B" } else { "A" });
        let (status, answer) = lookup(format!("{corrupted}?purpose=核验")).await;
        assert_eq!(
            (status, answer["field"].as_str()),
            (400, Some("certificate_id")),
            "{backend}: a wrong check character is caught: {answer}"
        );
        let (status, found) = desk
            .get(format!(
                "/api/v1/certificates?holder_code={APPLICANT_ID}&type_code=11100000MB0308302E021&purpose=核验"
            ))
            .await;
        assert_eq!(status, 200);
        assert!(
            found.as_array().unwrap().iter().any(|v| v["certificate"]["certificate_id"] == certificate_id.as_str()),
            "{backend}: {found}"
        );

        // Revoked by the deciding department; a lookup then says why it no longer stands.
        let revoke = json!({"reason": "经营场所灭失，依法注销"});
        assert_eq!(desk.command(&case, "certificate/revocation", revoke.clone()).await.0, 200);
        desk.wait_until(&case, "a revoked certificate", |c| c["certificate"]["status"] == "revoked").await;
        assert_eq!(
            desk.command(&case, "certificate/revocation", revoke).await.0,
            409,
            "{backend}: nothing left to revoke"
        );
        let (_, verified) = lookup(format!("{certificate_id}?purpose=核验")).await;
        assert_eq!(
            (verified["valid"].as_bool(), verified["problems"][0].as_str()),
            (Some(false), Some("status is revoked")),
            "{verified}"
        );

        // The repository logged who asked and why; every exchange is on the data-sharing topic.
        let lookups: Vec<LookupRecord> =
            reqwest::get(format!("{}/admin/lookups", demo.ecert_url())).await.unwrap().json().await.unwrap();
        assert!(
            lookups
                .iter()
                .any(|l| l.purpose == "办理食品经营许可变更：核验许可证"
                    && l.case_number.as_deref() == Some(case.as_str())),
            "{lookups:?}"
        );
        // The issue, three lookups that reached the repository (the corrupted identifier did not)
        // and the revocation, each naming the holder by the county's keyed hash only.
        let shared = read_topic(&demo, "hub.audit.data-sharing", 5, "certificate.").await;
        let mut exchanges: Vec<&str> = shared.iter().map(|s| s.exchange.as_str()).collect();
        exchanges.sort();
        assert_eq!(
            exchanges,
            ["certificate.fetch", "certificate.fetch", "certificate.fetch", "certificate.issue", "certificate.revoke"],
            "{backend}"
        );
        let subject = contracts::data_subject(b"county key", APPLICANT_ID);
        assert!(
            shared.iter().all(|s| s.data_subject == subject && !format!("{s:?}").contains(APPLICANT_ID)),
            "{backend}: {shared:?}"
        );
        let for_the_case = shared
            .iter()
            .find(|s| s.exchange == "certificate.fetch" && s.case_number == case)
            .expect("the lookup for the case");
        assert_eq!(
            (for_the_case.requester_officer.as_deref(), for_the_case.purpose.as_str()),
            (Some("李受理"), "办理食品经营许可变更：核验许可证"),
            "{backend}"
        );
        assert!(for_the_case.document_sha256.as_ref().is_some_and(|h| h.len() == 64));

        // The connector's position on its topic: everything handled, nothing left behind.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let offsets = loop {
            let (status, offsets) = desk.get("/api/v1/connectors/ecert-connector/offsets".into()).await;
            assert_eq!(status, 200, "{backend}: {offsets}");
            if offsets["lag"] == 0 {
                break offsets;
            }
            assert!(std::time::Instant::now() < deadline, "{backend}: the connector's lag stays at {offsets}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let partitions = offsets["partitions"].as_array().unwrap();
        assert_eq!(partitions.len(), 3, "{backend}: hub.ecert.requests has three partitions: {offsets}");
        let committed: i64 = partitions.iter().map(|p| p["committed"].as_i64().unwrap_or(0)).sum();
        assert_eq!(committed, 2, "{backend}: the issue and the revocation request were handled: {offsets}");
        assert_eq!(desk.get("/api/v1/connectors/nonesuch/offsets".into()).await.0, 404);
        // An operator moves the connector to the end: where it already stands, so the same offsets.
        let (status, reset) =
            desk.call("/api/v1/connectors/ecert-connector/offsets/reset", json!({"to": "latest"})).await;
        assert_eq!(status, 200, "{backend}: {reset}");
        let moved: i64 = reset["partitions"].as_array().unwrap().iter().map(|p| p["offset"].as_i64().unwrap()).sum();
        assert_eq!((reset["partitions"].as_array().unwrap().len(), moved), (3, 2), "{backend}: {reset}");
        for (body, status) in [
            (json!({"to": "yesterday"}), 400),
            (json!({"to": "earliest", "topic": "hub.postal.events"}), 400),
            (json!({"too": "earliest"}), 400),
        ] {
            let (answer, refusal) = desk.call("/api/v1/connectors/ecert-connector/offsets/reset", body.clone()).await;
            assert_eq!(answer, status, "{backend}: {body} -> {refusal}");
        }
        assert_eq!(desk.call("/api/v1/connectors/nonesuch/offsets/reset", json!({"to": "latest"})).await.0, 404);

        // 免提交: the applicant's own valid certificate stands in for the paper; someone else's or
        // a revoked one does not, and the one-time notice says why; a mistyped identifier is
        // refused at the counter before anybody is asked.
        let own = seed(&demo, APPLICANT_ID).await;
        let strangers = seed(&demo, "110105194912310038").await;
        let without_paper = |certificate_id: &str, material: &str| {
            json!({
                "materials": ["食品经营许可申请书", "与食品经营相适应的主要设备设施布局、操作流程文件", "食品安全管理制度"],
                "certificates": [{"material": material, "certificate_id": certificate_id}],
                "delivery": {"method": "window"},
            })
        };
        let accepted = desk.submit(&format!("{backend}-own"), FOOD, VILLAGE, without_paper(&own, "营业执照")).await;
        let record = desk.wait_for(&accepted, "routed").await;
        assert!(
            record["case"]["materials"].as_array().unwrap().iter().any(|m| m == "营业执照"),
            "{backend}: {}",
            record["case"]
        );
        for (name, id, problem) in
            [("stranger", &strangers, "持证主体与申请人不符"), ("revoked", &certificate_id, "status is revoked")]
        {
            let case = desk.submit(&format!("{backend}-{name}"), FOOD, VILLAGE, without_paper(id, "营业执照")).await;
            let record = desk.wait_for(&case, "awaiting_supplement").await;
            let faulty = &record["case"]["faulty"][0];
            assert!(
                faulty["material"] == "营业执照" && faulty["problem"].as_str().unwrap().contains(problem),
                "{backend} {name}: {faulty}"
            );
        }
        let mut application = without_paper(&corrupted, "营业执照");
        application["request_id"] = json!(format!("{backend}-mistyped"));
        application["matter_code"] = json!(FOOD);
        application["service_point"] = json!(VILLAGE);
        application["applicant"] =
            json!({"name": "张三", "id_type": "111", "id_number": APPLICANT_ID, "phone": "13912345678"});
        let (status, answer) = desk.call("/api/v1/applications", application.clone()).await;
        assert_eq!(
            (status, answer["field"].as_str()),
            (422, Some("certificates[0].certificate_id")),
            "{backend}: {answer}"
        );
        application["certificates"][0]["material"] = json!("食品经营许可申请书");
        let (status, answer) = desk.call("/api/v1/applications", application).await;
        assert_eq!(
            (status, answer["field"].as_str()),
            (422, Some("certificates[0].material")),
            "{backend}: an application form has no e-certificate: {answer}"
        );
        let lookups: Vec<LookupRecord> =
            reqwest::get(format!("{}/admin/lookups", demo.ecert_url())).await.unwrap().json().await.unwrap();
        assert_eq!(
            lookups.iter().filter(|l| l.purpose.contains("免提交")).count(),
            3,
            "{backend}: each presented certificate asked for once, with its purpose"
        );
        demo.hub.stop().await;
    }
}

/// Puts a business licence held by `holder` into the repository, as another authority would.
async fn seed(demo: &DemoRun, holder: &str) -> String {
    let licence = json!({
        "type_code": "11100000MB0308302E001", "certificate_name": "营业执照", "number": format!("91610429MA{holder}"),
        "holder_name": "张三", "holder_code": holder, "holder_code_kind": "111",
        "issuer": "旬邑县市场监督管理局", "issuer_code": "11610429MB2912346B", "issue_date": "2025-03-01",
        "valid_until": null, "area_code": "610429", "case_number": "61042920250301000001",
    });
    let response = reqwest::Client::new()
        .post(format!("{}/admin/certificates", demo.ecert_url()))
        .json(&licence)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let certificate: serde_json::Value = response.json().await.unwrap();
    certificate["certificate_id"].as_str().unwrap().to_string()
}

/// The first `count` data-sharing events of `topic` whose exchange starts with `exchange`, read
/// over Kafka as any consumer of the hub would.
async fn read_topic(demo: &DemoRun, topic: &str, count: usize, exchange: &str) -> Vec<DataShared> {
    let consumer =
        bus::OffRuntimeDrop::new(demo.hub.bus.consumer(&format!("test-{}", uuid::Uuid::now_v7()), &[topic]).unwrap());
    let mut shared = Vec::new();
    while shared.len() < count {
        let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .expect("the data-sharing events arrive")
            .unwrap();
        match contracts::decode(message.payload().unwrap()).unwrap() {
            Event::DataShared(event) if event.exchange.starts_with(exchange) => shared.push(event),
            Event::DataShared(_) => {}
            other => panic!("{topic} carries {other:?}"),
        }
    }
    consumer.close().await;
    shared
}
