//! The seal connector through the whole hub: every document that goes out under a seal is
//! signed once with its unit's seal through errors, lost answers and an outage; the signature
//! is verified whenever the document is read; a document changed behind the hub's back, or a
//! signature that is not the seal's, is refused.
use crate::common;

use common::desk::{demo_options, Desk};
use common::{admin, set_faults};
use connectors::seal::simulator::{self, SigningRecord, SimulatorConfig, Stats};
use connectors::simulation::Faults;
use hub::config::Config;
use hub_cli::demo::DemoRun;
use serde_json::{json, Value};

const SELF_EMPLOYED: &str = "11610429MB2912345A4000104010000";
const VILLAGE: &str = "610429100201";

/// The case once every document that goes out under a seal carries its signature.
async fn sealed(desk: &Desk<'_>, case: &str) -> Value {
    let record = desk
        .wait_until(case, "every document sealed", |c| {
            c["state"] == "archived"
                && c["documents"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|d| d["kind"] == "application" || !d["electronic_seal"].is_null())
        })
        .await;
    record["case"].clone()
}

async fn submit_and_approve(desk: &Desk<'_>, request_id: &str) -> String {
    let case = desk.submit(request_id, SELF_EMPLOYED, VILLAGE, json!({})).await;
    desk.wait_for(&case, "routed").await;
    assert_eq!(desk.decide(&case, "approved", None).await.0, 200);
    case
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_are_sealed_once_through_faults_and_verified_on_every_read() {
    let dir = tempfile::tempdir().unwrap();
    // A run makes only about 14 answered calls: at 0.3 no answer was lost in about one run of 70
    // (seen in CI); at 0.5, one in 16 000.
    let faults = Faults { error_rate: 0.3, delay_ms: 2, duplicate_rate: 0.5, outage: false };
    let sim_config = SimulatorConfig {
        app_id: "XY610429-HUB".into(),
        app_secret: "development-secret".into(),
        key_secret: "test seal keys".into(),
        faults,
    };
    let sim = simulator::spawn(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(), sim_config).unwrap();
    let mut config = Config::default();
    config.database.url = format!("sqlite://{}", dir.path().join("hub.db").display());
    config.api.listen = "127.0.0.1:0".into();
    config.seal.base_url = sim.base_url.clone();
    config.seal.retry = common::PATIENT;
    let mut options = demo_options(dir.path());
    options.electronic_seals = true;
    let demo = DemoRun::start(config.clone(), &options).await.unwrap();
    let desk = Desk::new(&demo);

    let mut cases = Vec::new();
    for n in 0..3 {
        cases.push(submit_and_approve(&desk, &format!("seal-{n}")).await);
    }
    let mut sealed_documents = 0;
    for case in &cases {
        let record = sealed(&desk, case).await;
        for (position, doc) in record["documents"].as_array().unwrap().iter().enumerate() {
            let kind = doc["kind"].as_str().unwrap();
            let html = desk.document(case, position + 1).await;
            assert!(hub_core::documents::missing_parts(kind, &html).is_empty(), "{kind}: {html}");
            if kind == "application" {
                continue;
            }
            sealed_documents += 1;
            let seal = &doc["electronic_seal"];
            assert!(html.contains(&format!("电子印章：{}", seal["seal_name"].as_str().unwrap())), "{html}");
            assert!(!html.contains("此处加盖"), "a sealed document no longer marks where a paper seal goes: {html}");
        }
    }
    let stats: Stats = admin(&sim.base_url, "stats").await;
    assert_eq!(stats.signings, sealed_documents, "one signature per sealed document: {stats:?}");
    assert!(stats.calls.failed_calls > 0 && stats.calls.lost_answers > 0, "the faults struck: {stats:?}");
    let signings: Vec<SigningRecord> = admin(&sim.base_url, "signings").await;
    let seals: std::collections::BTreeSet<&str> = signings.iter().map(|s| s.seal_name.as_str()).collect();
    assert_eq!(
        seals.into_iter().collect::<Vec<_>>(),
        ["旬邑县土桥镇人民政府", "旬邑县行政审批服务局行政审批专用章"],
        "the village station takes in for its township; the bureau decides and archives"
    );

    // While the service is down nothing is lost: the documents wait, marked for a paper seal.
    set_faults(&sim.base_url, json!({"outage": true})).await;
    let waiting = submit_and_approve(&desk, "seal-outage").await;
    desk.wait_for(&waiting, "archived").await;
    let notice = desk.document(&waiting, 2).await;
    assert!(notice.contains("此处加盖旬邑县土桥镇人民政府"), "{notice}");
    set_faults(&sim.base_url, json!({})).await;
    sealed(&desk, &waiting).await;
    assert!(desk.document(&waiting, 2).await.contains("电子印章：旬邑县土桥镇人民政府"));

    // Behind the hub's back: a signature that is not the seal's, and a document whose content changed.
    let pool = sqlx::AnyPool::connect(&config.database.url).await.unwrap();
    let edit_snapshot = |case: String, from: String, to: String| {
        let pool = pool.clone();
        async move {
            let (snapshot,): (String,) = sqlx::query_as("SELECT snapshot FROM cases WHERE case_number = $1")
                .bind(&case)
                .fetch_one(&pool)
                .await
                .unwrap();
            assert!(snapshot.contains(&from), "{case}: {from}");
            sqlx::query("UPDATE cases SET snapshot = $1 WHERE case_number = $2")
                .bind(snapshot.replace(&from, &to))
                .bind(&case)
                .execute(&pool)
                .await
                .unwrap();
        }
    };
    let forged = sealed(&desk, &cases[0]).await;
    let signature = forged["documents"][1]["electronic_seal"]["signature"].as_str().unwrap().to_string();
    let flipped = format!("{}{}", if signature.starts_with('0') { '1' } else { '0' }, &signature[1..]);
    edit_snapshot(cases[0].clone(), signature, flipped).await;
    let (status, answer) = desk.get(format!("/api/v1/cases/{}/documents/2", cases[0])).await;
    assert_eq!(status, 409, "{answer}");
    assert!(answer["error"].as_str().unwrap_or_default().contains("does not hold its electronic seal"), "{answer}");
    assert!(desk.document(&cases[1], 2).await.contains("电子印章："), "the other cases' documents still hold");

    edit_snapshot(cases[1].clone(), "\"name\":\"张三\"".into(), "\"name\":\"张四\"".into()).await;
    let (status, answer) = desk.get(format!("/api/v1/cases/{}/documents/2", cases[1])).await;
    assert_eq!(status, 409, "{answer}");
    assert!(answer.to_string().contains("not to the"), "the content no longer hashes to what was sealed: {answer}");
    demo.stop().await;
}
