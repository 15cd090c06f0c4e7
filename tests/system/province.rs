//! The provincial platform connector against its simulator, and through the whole hub: online
//! applications enter the same acceptance as counter ones; every step of every case reaches the
//! platform once with the national fields, whatever the faults; reviews flow up; a changed
//! guide in the platform's catalogue becomes a new matter version that survives a restart.
use crate::common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bus::{BatchHandler, Delivery};
use common::desk::{demo_options, Desk, APPLICANT_ID};
use common::{admin, set_faults, signed_push};
use connectors::framework::control::ConnectorControl;
use connectors::province::outbound::{CaseDirectory, CaseFacts, ProvinceOutbound};
use connectors::province::simulator::{self, CaseRecord, FiledApplication, SimulatorConfig, Stats};
use connectors::province::{self, ProvinceConfig, PUSH_PATH};
use connectors::simulation::Faults;
use contracts::{Applicant, CaseRouted, Catalogue, Event};
use hub::config::Config;
use hub::store::Store;
use hub_cli::demo::DemoRun;
use serde_json::{json, Value};

const SELF_EMPLOYED: &str = "11610429MB2912345A4000104010000";
const VILLAGE: &str = "610429100201";

fn online_application(project_no: &str, matter: &str, materials: &[&str]) -> Value {
    json!({
        "project_no": project_no,
        "implementation_code": matter,
        "applicant": {"name": "张三", "id_type": "111", "id_number": APPLICANT_ID, "phone": "13912345678"},
        "materials": materials,
        "delivery_method": "mail",
        "delivery_address": common::postal_address("张三", "711300"),
        "submitted_at": 1_763_604_000_000i64,
    })
}

/// Waits until the platform's record of `case` satisfies `done`.
async fn platform_case(base: &str, case: &str, what: &str, done: impl Fn(&CaseRecord) -> bool) -> CaseRecord {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let response = reqwest::get(format!("{base}/admin/cases/{case}")).await.unwrap();
        if response.status() == 200 {
            let record: CaseRecord = response.json().await.unwrap();
            if done(&record) {
                return record;
            }
            assert!(Instant::now() < deadline, "the platform never saw {what} for case {case}: {record:?}");
        }
        assert!(Instant::now() < deadline, "the platform never heard of case {case}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_applications_status_reviews_and_catalogue_flow_through_the_platform() {
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
        // On demand only: the restart below must not meet a periodic sync.
        config.province.catalogue_sync_seconds = 0;
        let demo = DemoRun::start(config.clone(), &demo_options(dir.path())).await.unwrap();
        let desk = Desk::new(&demo);
        let platform = demo.province_url().to_string();
        // The platform is unreliable: errors, lost answers, slow, and every push may come twice.
        set_faults(&platform, json!({"error_rate": 0.3, "duplicate_rate": 0.3, "delay_ms": 5})).await;

        // Filed online: pushed to the hub, accepted like a counter application, channel online.
        let materials: Vec<String> =
            demo.hub.reference.get().matter(SELF_EMPLOYED).unwrap().materials.iter().map(|m| m.name.clone()).collect();
        let names: Vec<&str> = materials.iter().map(String::as_str).collect();
        let client = reqwest::Client::new();
        for (project, matter) in
            [(format!("{backend}-SX1"), SELF_EMPLOYED), (format!("{backend}-SX2"), "11610429MB0000000X4000000000000")]
        {
            let filed = client
                .post(format!("{platform}/admin/applications"))
                .json(&online_application(&project, matter, &names))
                .send()
                .await
                .unwrap();
            assert_eq!(filed.status(), 202);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        let (taken, refused) = loop {
            let filed: Vec<FiledApplication> = admin(&platform, "applications").await;
            let by_project: HashMap<&str, &FiledApplication> =
                filed.iter().map(|f| (f.application.project_no.as_str(), f)).collect();
            let taken = by_project.get(format!("{backend}-SX1").as_str()).and_then(|f| f.case_number.clone());
            let refused = by_project.get(format!("{backend}-SX2").as_str()).and_then(|f| f.refused.clone());
            if let (Some(taken), Some(refused)) = (taken, refused) {
                break (taken, refused);
            }
            assert!(Instant::now() < deadline, "{backend}: the pushes were not answered: {filed:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(refused.contains("implementation_code"), "{backend}: the refusal names the field: {refused}");
        let record = desk.wait_for(&taken, "routed").await;
        let application = &record["case"]["application"];
        assert_eq!(
            (application["channel"].as_str(), application["service_point"]["tier"].as_str()),
            (Some("online"), Some("online")),
            "{backend}"
        );

        // The same application pushed again is the same case; unsigned or malformed pushes are refused.
        let again = json!({"applications": [online_application(&format!("{backend}-SX1"), SELF_EMPLOYED, &names)]});
        let (status, answer) = signed_push(demo.api_url(), PUSH_PATH, &again, "development-secret").await;
        assert_eq!(
            (status, answer["results"][0]["case_number"].as_str(), answer["results"][0]["duplicate"].as_bool()),
            (200, Some(taken.as_str()), Some(true)),
            "{backend}: {answer}"
        );
        assert_eq!(signed_push(demo.api_url(), PUSH_PATH, &again, "guess").await.0, 401, "{backend}: a forged push");
        let (status, answer) = signed_push(
            demo.api_url(),
            PUSH_PATH,
            &json!({"applications": [{"project_no": "x"}]}),
            "development-secret",
        )
        .await;
        assert_eq!(status, 400, "{backend}: {answer}");
        assert!(answer["field"].as_str().unwrap().starts_with("applications[0]"), "{backend}: {answer}");
        let mut nameless = online_application(&format!("{backend}-SX3"), SELF_EMPLOYED, &names);
        nameless["applicant"]["name"] = json!(" ");
        let (status, answer) =
            signed_push(demo.api_url(), PUSH_PATH, &json!({"applications": [nameless]}), "development-secret").await;
        assert_eq!(
            (status, answer["results"][0]["field"].as_str()),
            (422, Some("applications[0].applicant.name")),
            "{backend}: {answer}"
        );

        // A counter case too: every step reaches the platform once, in order, with the national fields.
        let counter = desk.submit(&format!("{backend}-counter"), SELF_EMPLOYED, VILLAGE, json!({})).await;
        for case in [&taken, &counter] {
            desk.wait_for(case, "routed").await;
            assert_eq!(desk.decide(case, "approved", None).await.0, 200);
        }
        for (case, channel) in [(&taken, "online"), (&counter, "counter")] {
            let record = platform_case(&platform, case, "every step", |r| r.reports.len() >= 4).await;
            let codes: Vec<u8> = record.reports.iter().map(|r| r.event_code).collect();
            assert_eq!(codes, [1, 3, 8, 11], "{backend} {channel}: each step once, in order: {record:?}");
            assert_eq!(record.result_type.as_deref(), Some("approved"));
            let received = &record.reports[0];
            assert_eq!(
                (received.channel.as_str(), received.implementation_code.as_str(), received.matter_version),
                (channel, SELF_EMPLOYED, 1),
                "{backend}"
            );
            assert_eq!(
                received.applicant.as_ref().map(|a| a.id_number.as_str()),
                Some(APPLICANT_ID),
                "{backend}: the receipt names the applicant"
            );
            assert!(
                record.reports[1..].iter().all(|r| r.applicant.is_none()),
                "{backend}: only the receipt carries personal data"
            );
            assert_eq!(record.reports[3].handler_code, "11610429MB2912345A", "{backend}: the deciding department");
            assert_eq!(received.project_no.is_some(), channel == "online", "{backend}");
        }

        // Reviews flow up, once each: the online applicant reviews through the SMS invitation's link.
        let link = common::reviews::invitation_link(demo.sms_url(), &taken).await;
        assert_eq!(common::reviews::review(&link, 5, "网上办很方便").await.0, 200, "{backend}");
        let deadline = Instant::now() + Duration::from_secs(60);
        let reviews = loop {
            let reviews: Vec<Value> = admin(&platform, "reviews").await;
            if !reviews.is_empty() {
                break reviews;
            }
            assert!(Instant::now() < deadline, "{backend}: the review never reached the platform");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(
            (reviews.len(), reviews[0]["grade"].as_i64(), reviews[0]["case_number"].as_str()),
            (1, Some(5), Some(taken.as_str())),
            "{backend}"
        );
        let stats: Stats = admin(&platform, "stats").await;
        assert_eq!(stats.reports, 8, "{backend}: nothing duplicated at the platform: {stats:?}");

        // The catalogue: the platform shortens a promised time limit; the sync makes it version 2,
        // new cases take it, the case accepted before keeps version 1.
        set_faults(&platform, json!({})).await;
        let mut guides: Vec<Value> = admin(&platform, "matters").await;
        let guide = guides.iter_mut().find(|g| g["implementation_code"] == SELF_EMPLOYED).unwrap();
        guide["promised_days"] = json!(2);
        client.post(format!("{platform}/admin/matters")).json(guide).send().await.unwrap().error_for_status().unwrap();
        let mut foreign = guide.clone();
        foreign["implementation_code"] = json!("11610428MB0000000X4000104010000");
        client
            .post(format!("{platform}/admin/matters"))
            .json(&foreign)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap();
        let (status, report) = desk.call("/api/v1/catalogue/sync", json!({})).await;
        assert_eq!(status, 200, "{backend}: {report}");
        assert_eq!(report["revised"], json!([[SELF_EMPLOYED, "个体工商户设立登记", 2]]), "{backend}: {report}");
        assert_eq!(
            report["skipped"][0][0], "11610428MB0000000X4000104010000",
            "{backend}: a matter the county does not offer: {report}"
        );
        let (_, again) = desk.call("/api/v1/catalogue/sync", json!({})).await;
        assert_eq!(again["revised"], json!([]), "{backend}: an unchanged catalogue is no new version: {again}");
        let later = desk.submit(&format!("{backend}-later"), SELF_EMPLOYED, VILLAGE, json!({})).await;
        let record = desk.wait_for(&later, "routed").await;
        assert_eq!(record["case"]["application"]["matter"]["version"], 2, "{backend}");
        assert_eq!(
            desk.case(&counter).await["case"]["application"]["matter"]["version"],
            1,
            "{backend}: a case keeps its version"
        );
        // An integrator pauses the bank connector for the bank's upgrade; a restart keeps it paused,
        // and the platform connector's incidents (if its faults raised any) are still listed.
        let (status, paused) =
            desk.call("/api/v1/connectors/bank-connector/pause", json!({"reason": "银行系统升级"})).await;
        assert_eq!(status, 200, "{paused}");
        let (_, before) = desk.get("/api/v1/connectors/province-connector".into()).await;
        demo.stop().await;

        // After a restart the hub still knows version 2, and the case accepted under it goes on.
        let mut options = demo_options(dir.path());
        options.resume = true;
        let demo = DemoRun::start(config, &options).await.unwrap();
        assert_eq!(demo.hub.reference.get().matter(SELF_EMPLOYED).unwrap().version, 2, "{backend}");
        let desk = Desk::new(&demo);
        let (_, bank) = desk.get("/api/v1/connectors/bank-connector".into()).await;
        assert_eq!(
            (bank["state"].as_str(), bank["paused_reason"].as_str()),
            (Some("paused"), Some("银行系统升级")),
            "{backend}: {bank}"
        );
        let (_, after) = desk.get("/api/v1/connectors/province-connector".into()).await;
        assert_eq!(after["incidents"], before["incidents"], "{backend}");
        assert_eq!(desk.call("/api/v1/connectors/bank-connector/resume", json!({})).await.0, 200);
        assert_eq!(desk.decide(&later, "approved", None).await.0, 200, "{backend}: decided under version 2");
        demo.stop().await;
    }
}

/// Answers every case with the same facts.
struct FixedFacts;

#[async_trait]
impl CaseDirectory for FixedFacts {
    async fn facts(&self, case_numbers: &[&str]) -> anyhow::Result<HashMap<String, CaseFacts>> {
        let facts = CaseFacts {
            implementation_code: SELF_EMPLOYED.into(),
            matter_name: "个体工商户设立登记".into(),
            matter_version: 1,
            case_version: 1,
            channel: "counter".into(),
            project_no: None,
            applicant: Applicant {
                name: "张三".into(),
                id_type: "111".into(),
                id_number: APPLICANT_ID.into(),
                phone: "13912345678".into(),
                email: None,
            },
            handler_code: "11610429MB2912345A".into(),
            handler_name: "旬邑县行政审批服务局".into(),
        };
        Ok(case_numbers.iter().map(|n| (n.to_string(), facts.clone())).collect())
    }
}

fn routed(serial: usize) -> Delivery {
    let case_number = format!("6104292026112000{serial:04}");
    let event: Event = CaseRouted {
        event_id: format!("{case_number}/3"),
        case_number,
        occurred_at: 1_763_604_000_000,
        department_code: "11610429MB2912345A".into(),
        department_name: "旬邑县行政审批服务局".into(),
        rule: "nearby-handling/county-decides".into(),
        reason: "r".into(),
        consulted_departments: Vec::new(),
    }
    .into();
    Delivery { topic: "hub.cases.lifecycle".into(), partition: 0, offset: serial as i64, event }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reports_reach_the_platform_once_through_errors_lost_answers_and_an_outage() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Store::connect(&format!("sqlite://{}", dir.path().join("hub.db").display()), Arc::new(Catalogue::builtin()))
            .await
            .unwrap();
    // Half the answers lost: with 0.3, all 21 calls kept theirs once in about 1 800 runs (CI saw
    // it), and the test then proves nothing about lost answers.
    let faults = Faults { error_rate: 0.3, delay_ms: 5, duplicate_rate: 0.5, outage: false };
    let sim_config = SimulatorConfig {
        app_id: "XY610429-HUB".into(),
        app_secret: "development-secret".into(),
        push_url: None,
        faults,
    };
    let sim = simulator::spawn(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(), sim_config).unwrap();
    let config = ProvinceConfig { base_url: sim.base_url.clone(), retry: common::PATIENT, ..ProvinceConfig::default() };
    let connector = |config: ProvinceConfig, control| {
        ProvinceOutbound::new(config, Arc::new(store.clone()), control, Arc::new(FixedFacts), b"county key".to_vec())
            .unwrap()
    };

    // Twenty reports, one a batch (a call each, for the faults to strike), then delivered again
    // together as after a rebalance.
    let outbound = connector(config.clone(), ConnectorControl::new(province::CONSUMER));
    for delivery in (1..=20).map(routed) {
        assert!(outbound.handle(&[delivery]).await.unwrap().is_empty());
    }
    let batch: Vec<Delivery> = (1..=20).map(routed).collect();
    assert!(outbound.handle(&batch).await.unwrap().is_empty(), "a redelivered batch changes nothing");

    // Down for a while: the connector waits it out and loses nothing.
    set_faults(&sim.base_url, json!({"outage": true})).await;
    let late = [routed(21)];
    let handling = tokio::spawn({
        let outbound = connector(config.clone(), ConnectorControl::new(province::CONSUMER));
        async move { outbound.handle(&late).await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!handling.is_finished(), "nothing is reported while the platform is down");
    set_faults(&sim.base_url, json!({"delay_ms": 50})).await;
    assert!(handling.await.unwrap().is_empty());

    let stats: Stats = admin(&sim.base_url, "stats").await;
    assert_eq!(stats.reports, 21, "one report per event: {stats:?}");
    assert!(stats.calls.failed_calls > 0 && stats.calls.lost_answers > 0, "the faults struck: {stats:?}");
    assert_eq!(
        stats.replays, stats.calls.lost_answers,
        "each lost answer was retried and found the report taken: {stats:?}"
    );
    let cases: HashMap<String, CaseRecord> = admin(&sim.base_url, "cases").await;
    assert!(cases.values().all(|c| c.reports.len() == 1 && c.status == 8), "{cases:?}");

    // A report the platform refuses (a bad field) goes to the dead-letter topic with its reason.
    let forged = connector(
        ProvinceConfig { app_secret: "guess".into(), ..config.clone() },
        ConnectorControl::new(province::CONSUMER),
    );
    let rejected = forged.handle(&[routed(22)]).await.unwrap();
    assert!(rejected[0].reason.contains("401"), "{}", rejected[0].reason);

    // A batch's steps go up together, 100 a call; a report the platform refuses is refused alone.
    let mut batch: Vec<Delivery> = (23..=172).map(routed).collect();
    if let Event::CaseRouted(routed) = &mut batch[7].event {
        routed.occurred_at = 0;
    }
    let before: Stats = admin(&sim.base_url, "stats").await;
    let rejected = outbound.handle(&batch).await.unwrap();
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(rejected[0].index, 7);
    assert!(rejected[0].reason.contains("reports[7].event_time"), "{}", rejected[0].reason);
    let after: Stats = admin(&sim.base_url, "stats").await;
    assert_eq!(
        (after.status_calls - before.status_calls, after.reports - before.reports),
        (2, 149),
        "150 reports in two calls, all but the refused one taken: {after:?}"
    );
}
