//! The whole slice in one process on each database: applications submitted over HTTP reach the
//! archive with a signed receipt, while the carrier simulator starts in an outage, then fails 30%
//! of order calls and sends duplicate pushes. Nothing is lost, nothing is doubled.
use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use connectors::postal::simulator::{Faults, OrderRecord};
use contracts::catalogue::DEAD_LETTER_TOPIC;
use hub::config::Config;
use hub_cli::demo::DemoRun;
use rdkafka::message::{Headers as _, Message as _};
use rdkafka::producer::FutureRecord;
use serde_json::Value;

const CASES: usize = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cases_reach_the_archive_exactly_once_despite_carrier_faults() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let dir = tempfile::tempdir().unwrap();
    for (backend, url) in common::databases(&dir).await {
        let mut config = Config::default();
        config.database.url = url;
        config.api.listen = "127.0.0.1:0".into();
        config.postal.retry.initial_ms = 5;
        config.postal.retry.max_ms = 50;
        let mut options = common::desk::demo_options(dir.path());
        options.cases = CASES;
        options.concurrency = 8;
        options.faults =
            Faults { error_rate: 0.3, delay_ms: 1, duplicate_rate: 0.5, outage: true, failed_delivery_rate: 0.0 };
        let demo = DemoRun::start(config, &options).await.unwrap();
        let faults_url = format!("{}/admin/faults", demo.postal_url());
        // The carrier comes back once it has refused some orders.
        let end_outage = async {
            let client = reqwest::Client::new();
            loop {
                let stats: Value = client
                    .get(format!("{}/admin/stats", demo.postal_url()))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                if stats["failed_calls"].as_u64().unwrap() >= 3 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let faults = Faults { outage: false, ..options.faults.clone() };
            assert!(client.put(&faults_url).json(&faults).send().await.unwrap().status().is_success());
        };
        let (summary, ()) =
            tokio::time::timeout(Duration::from_secs(120), async { tokio::join!(demo.drive(&options), end_outage) })
                .await
                .expect("demo finished in time");
        let summary = summary.unwrap();
        assert_eq!(summary.completed, CASES, "{backend}: {summary:?}");
        assert_eq!(summary.by_state.get("archived"), Some(&(CASES as i64)), "{backend}");
        assert_eq!(summary.dead_letters, 0, "{backend}: carrier errors are transient, nothing is dead-lettered");

        // The carrier made one order per case, whatever the retries.
        let orders: Vec<OrderRecord> =
            reqwest::get(format!("{}/admin/orders", demo.postal_url())).await.unwrap().json().await.unwrap();
        assert_eq!(orders.len(), CASES, "{backend}");
        assert!(orders.iter().all(|o| o.created == 1), "{backend}: an order was created twice");
        let stats: Value =
            reqwest::get(format!("{}/admin/stats", demo.postal_url())).await.unwrap().json().await.unwrap();
        assert!(
            stats["pushes_acknowledged"].as_u64().unwrap() > 4 * CASES as u64,
            "{backend}: duplicate pushes were sent: {stats}"
        );
        assert!(stats["failed_calls"].as_u64().unwrap() >= 3, "{backend}: the outage and errors were felt: {stats}");

        // Each case's history holds every tracking event once, despite duplicate pushes.
        for order in &orders {
            let case_number = order.logistics_order_no.rsplit_once('-').unwrap().0;
            let record = demo.hub.store.case(case_number).await.unwrap().unwrap();
            let count = |kind: &str| record.history.iter().filter(|h| h.kind == kind).count();
            assert_eq!(count("TrackingEvent"), 4, "{backend} {case_number}");
            assert_eq!(count("DeliveryCompleted"), 1, "{backend} {case_number}");
            assert_eq!(count("CaseArchived"), 1, "{backend} {case_number}");
            assert_eq!(record.case.waybill_number.as_deref(), Some(order.waybill_no.as_str()));
            let seqs: Vec<i64> = record.history.iter().map(|h| h.seq).collect();
            assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>(), "{backend}: history is gapless");
        }
        for stage in ["1 submitted->accepted", "5 requested->order created", "total submitted->archived"] {
            assert!(summary.latency_ms.contains_key(stage), "{backend}: no latency for {stage}");
        }
        demo.stop().await;
    }
}

/// The county-day mix with every counterpart unreliable at once (the carrier down at first, then
/// failing; the repository, the platform and the bank failing 30 % of calls and losing 30 % of
/// answers), and garbage on every connector's input topic. Every case is archived, every
/// counterpart holds each thing once, and the dead-letter topic holds the garbage and nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_connectors_under_faults_lose_nothing_and_dead_letter_only_bad_data() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let dir = tempfile::tempdir().unwrap();
    for (backend, url) in common::databases(&dir).await {
        let mut config = Config::default();
        config.database.url = url;
        config.api.listen = "127.0.0.1:0".into();
        for retry in [
            &mut config.postal.retry,
            &mut config.ecert.retry,
            &mut config.province.retry,
            &mut config.bank.retry,
            &mut config.sms.retry,
        ] {
            retry.initial_ms = 5;
            retry.max_ms = 50;
        }
        let mut options = common::desk::demo_options(dir.path());
        options.cases = CASES;
        options.concurrency = 8;
        options.mix = true;
        options.faults =
            Faults { error_rate: 0.3, delay_ms: 1, duplicate_rate: 0.3, outage: true, failed_delivery_rate: 0.0 };
        options.counterpart_faults =
            connectors::simulation::Faults { error_rate: 0.3, delay_ms: 1, duplicate_rate: 0.3, outage: false };
        let demo = DemoRun::start(config, &options).await.unwrap();

        // Garbage on each connector's input topic: dead-lettered once by every group reading it.
        let poisoned =
            ["hub.postal.delivery-requests", "hub.ecert.requests", "hub.bank.fee-orders", "hub.applications.submitted"];
        let producer = demo.hub.bus.producer().unwrap();
        let mut expected = BTreeSet::new();
        for topic in poisoned {
            let key = format!("garbage on {topic}");
            producer
                .send(FutureRecord::to(topic).key(&key).payload("{\"not\": \"avro\"}"), Duration::from_secs(10))
                .await
                .unwrap();
            for group in &demo.hub.bus.catalogue().topic(topic).unwrap().consumers {
                expected.insert((key.clone(), group.clone()));
            }
        }

        let end_outage = async {
            while common::admin::<Value>(demo.postal_url(), "stats").await["failed_calls"].as_u64().unwrap() < 3 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            common::set_faults(
                demo.postal_url(),
                serde_json::to_value(Faults { outage: false, ..options.faults.clone() }).unwrap(),
            )
            .await;
        };
        let (summary, ()) =
            tokio::time::timeout(Duration::from_secs(240), async { tokio::join!(demo.drive(&options), end_outage) })
                .await
                .expect("demo finished in time");
        let summary = summary.unwrap();
        assert_eq!(summary.completed, CASES, "{backend}: {summary:?}");

        // Each counterpart holds each thing once, and felt the faults.
        let orders: Vec<OrderRecord> = common::admin(demo.postal_url(), "orders").await;
        assert!(!orders.is_empty() && orders.iter().all(|o| o.created == 1), "{backend}: {orders:?}");
        // A fee waived in full is not ordered; a denied case that paid is refunded once.
        let fee_cases = count_cases(&demo, |c| c["fee"]["total_fen"].as_i64().is_some_and(|fen| fen > 0)).await;
        let waived = count_cases(&demo, |c| c["fee"]["total_fen"] == 0 && c["fee"]["relief"]["rule"] == "dibao").await;
        let bank_orders: Vec<Value> = common::admin(demo.bank_url(), "orders").await;
        assert_eq!(
            (bank_orders.len(), fee_cases > 0, waived),
            (fee_cases, true, 1),
            "{backend}: one fee order per fee case"
        );
        let refunded = count_cases(&demo, |c| c["fee"]["refund"]["refund_id"].is_string()).await;
        let refunds: Vec<Value> = common::admin(demo.bank_url(), "refunds").await;
        assert_eq!((refunds.len(), refunded), (1, 1), "{backend}: the denied fee case refunded once: {refunds:?}");
        // Reviews came by every channel: the counter's screen, the signed link, an SMS reply.
        for channel in ["counter", "online", "sms"] {
            assert!(summary.reviews_by_channel.get(channel).is_some_and(|n| *n > 0), "{backend}: {summary:?}");
        }
        // Certificates and status reports follow the cases: waited for.
        let certifying = count_cases(&demo, |c| !c["certificate"].is_null()).await;
        assert!(certifying > 0, "{backend}: the mix approves matters with certificates");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let platform_cases = loop {
            let issued = count_cases(&demo, |c| c["certificate"]["certificate_id"].is_string()).await;
            let certificates: Vec<Value> = common::admin(demo.ecert_url(), "certificates").await;
            let platform_cases: BTreeMap<String, Value> = common::admin(demo.province_url(), "cases").await;
            if (issued, certificates.len(), platform_cases.len()) == (certifying, certifying, CASES) {
                break platform_cases;
            }
            assert!(tokio::time::Instant::now() < deadline, "{backend}: {issued} of {certifying} certificates issued, {} at the repository, {} cases at the platform", certificates.len(), platform_cases.len());
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        for (case, record) in &platform_cases {
            let steps: Vec<(i64, i64)> = record["reports"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| (r["event_code"].as_i64().unwrap(), r["event_time"].as_i64().unwrap()))
                .collect();
            assert_eq!(
                steps.iter().collect::<BTreeSet<_>>().len(),
                steps.len(),
                "{backend} {case}: a step reported twice: {steps:?}"
            );
        }
        // The mix makes few calls to some counterparts (one fee case in forty): the faults are
        // asserted over the three together; each connector's own test asserts them one by one.
        let mut struck = 0;
        for base in [demo.ecert_url(), demo.province_url(), demo.bank_url()] {
            let stats: Value = common::admin(base, "stats").await;
            struck += stats["failed_calls"].as_u64().unwrap() + stats["lost_answers"].as_u64().unwrap();
        }
        assert!(struck > 0, "{backend}: the faults struck");

        // The dead-letter topic: exactly the garbage, once per group that read it.
        let reader = demo.hub.bus.consumer(&format!("dead-letter-audit-{backend}"), &[DEAD_LETTER_TOPIC]).unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while demo.hub.bus.message_count(DEAD_LETTER_TOPIC).await.unwrap() < expected.len() as i64
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut dead = BTreeSet::new();
        while dead.len() < expected.len() {
            // A new group's first read waits for it to join, which a loaded machine slows.
            let Ok(message) = tokio::time::timeout(Duration::from_secs(60), reader.recv()).await else { break };
            let message = message.unwrap();
            let header = |name: &str| {
                message
                    .headers()
                    .unwrap()
                    .iter()
                    .find(|h| h.key == name)
                    .and_then(|h| h.value)
                    .map(|v| String::from_utf8_lossy(v).to_string())
                    .unwrap()
            };
            assert!(
                dead.insert((
                    String::from_utf8_lossy(message.key().unwrap()).to_string(),
                    header("dlq.consumer.group")
                )),
                "{backend}: a dead letter twice"
            );
        }
        assert_eq!(dead, expected, "{backend}: the dead letters, by message and consumer group");
        assert_eq!(
            demo.hub.bus.message_count(DEAD_LETTER_TOPIC).await.unwrap(),
            expected.len() as i64,
            "{backend}: nothing else was dead-lettered"
        );
        crate::reports::check_county_day(&demo, backend, CASES).await;
        demo.stop().await;
    }
}

/// Archived cases of the demo that satisfy `wanted`.
async fn count_cases(demo: &DemoRun, wanted: impl Fn(&Value) -> bool) -> usize {
    let archived = demo
        .hub
        .store
        .cases_in_state(
            hub_core::CaseState::Archived,
            None,
            &hub_core::access::CaseScope::All,
            hub::store::ListOrder::Oldest,
            10_000,
        )
        .await
        .unwrap();
    archived.iter().filter(|case| wanted(&serde_json::to_value(case).unwrap())).count()
}
