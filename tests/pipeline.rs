//! The whole slice in one process on each database: applications submitted over HTTP reach the
//! archive with a signed receipt, while the carrier simulator starts in an outage, then fails 30%
//! of order calls and sends duplicate pushes. Nothing is lost, nothing is doubled.
mod common;

use std::time::Duration;

use connectors::postal::simulator::{Faults, OrderRecord};
use hub::config::Config;
use hub::demo::{DemoOptions, DemoRun};
use serde_json::Value;

const CASES: usize = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cases_reach_the_archive_exactly_once_despite_carrier_faults() {
    let _ = tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).with_test_writer().try_init();
    let dir = tempfile::tempdir().unwrap();
    for (backend, url) in common::databases(&dir).await {
        let mut config = Config::default();
        config.database.url = url;
        config.api.listen = "127.0.0.1:0".into();
        config.postal.retry.initial_ms = 5;
        config.postal.retry.max_ms = 50;
        let options = DemoOptions {
            cases: CASES,
            resume: false,
            data_dir: dir.path().to_path_buf(),
            postal_url: None,
            ecert_url: None,
            province_url: None,
            bank_url: None,
            step_delay: Duration::from_millis(2),
            progress: false,
            concurrency: 8,
            faults: Faults { error_rate: 0.3, delay_ms: 1, duplicate_rate: 0.5, outage: true, failed_delivery_rate: 0.0 },
            mix: false,
        };
        let demo = DemoRun::start(config, &options).await.unwrap();
        let faults_url = format!("{}/admin/faults", demo.postal_url());
        // The carrier comes back once it has refused some orders.
        let end_outage = async {
            let client = reqwest::Client::new();
            loop {
                let stats: Value = client.get(format!("{}/admin/stats", demo.postal_url())).send().await.unwrap().json().await.unwrap();
                if stats["failed_calls"].as_u64().unwrap() >= 3 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let faults = Faults { outage: false, ..options.faults.clone() };
            assert!(client.put(&faults_url).json(&faults).send().await.unwrap().status().is_success());
        };
        let (summary, ()) = tokio::time::timeout(Duration::from_secs(120), async { tokio::join!(demo.drive(&options), end_outage) })
            .await
            .expect("demo finished in time");
        let summary = summary.unwrap();
        assert_eq!(summary.completed, CASES, "{backend}: {summary:?}");
        assert_eq!(summary.by_state.get("archived"), Some(&(CASES as i64)), "{backend}");
        assert_eq!(summary.dead_letters, 0, "{backend}: carrier errors are transient, nothing is dead-lettered");

        // The carrier made one order per case, whatever the retries.
        let orders: Vec<OrderRecord> = reqwest::get(format!("{}/admin/orders", demo.postal_url())).await.unwrap().json().await.unwrap();
        assert_eq!(orders.len(), CASES, "{backend}");
        assert!(orders.iter().all(|o| o.created == 1), "{backend}: an order was created twice");
        let stats: Value = reqwest::get(format!("{}/admin/stats", demo.postal_url())).await.unwrap().json().await.unwrap();
        assert!(stats["pushes_acknowledged"].as_u64().unwrap() > 4 * CASES as u64, "{backend}: duplicate pushes were sent: {stats}");
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
