//! The data bureau's anomaly rules on the running hub: exchanges arriving on the audit topic
//! raise alerts that the hub keeps, publishes on hub.audit.alerts and e-mails to the bureau
//! through a real SMTP server (aiosmtpd); after a restart the rules remember, so the same
//! facts, or more of an anomaly already reported, raise nothing again.
use crate::common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::smtp::SmtpServer;
use contracts::{DataShared, Event};
use hub::config::Config;
use hub::{bind, Hub};
use hub_core::access::Role;
use hub_core::ledger::{Entry, EntryKind};
use rdkafka::message::Message as _;
use rdkafka::producer::FutureRecord;
use serde_json::Value;

const AUDIT_TOPIC: &str = "hub.audit.data-sharing";
const ALERT_TOPIC: &str = "hub.audit.alerts";
const DAY_MS: i64 = 86_400_000;
const BUREAU: &str = "shujuju@xunyi.gov.cn";

fn now_ms() -> i64 {
    connectors::framework::now_ms()
}

fn exchange(id: String, occurred_at: i64, officer: &str, department: &str, case: &str, subject: bool) -> DataShared {
    DataShared {
        event_id: id,
        case_number: case.into(),
        occurred_at,
        exchange: "certificate.fetch".into(),
        requester_system: "county-hub".into(),
        requester_department: department.into(),
        requester_officer: Some(officer.into()),
        provider: "provincial-ecert-repository".into(),
        data_subject: if subject { "ab".repeat(32) } else { String::new() },
        data_items: vec!["营业执照".into()],
        legal_basis: "《优化营商环境条例》".into(),
        purpose: "核验".into(),
        channel: "counter".into(),
        document_sha256: None,
        outcome: "ok".into(),
    }
}

/// Three anomalies among ordinary exchanges: twenty fetches by one officer at 02:00 yesterday
/// (China Standard Time); one fetch with no case; and a pair whose 10 exchanges a day on the
/// three days before become 60 today (exchanges without personal data, so they are no reads).
fn county_week() -> Vec<DataShared> {
    let now = now_ms();
    let today_start = now - (now + 8 * 3_600_000).rem_euclid(DAY_MS);
    let mut exchanges: Vec<DataShared> = (0..20)
        .map(|i| {
            exchange(
                format!("night/{i}"),
                today_start - DAY_MS + 2 * 3_600_000 + i * 60_000,
                "夜班王",
                "县市场监管局",
                "610429100020261122000001",
                true,
            )
        })
        .collect();
    exchanges.push(exchange("no-case/1".into(), now - 1_000, "李查询", "县人社局", "", true));
    for days_ago in 1..=3 {
        exchanges.extend((0..10).map(|i| {
            exchange(
                format!("usual/{days_ago}/{i}"),
                now - days_ago * DAY_MS - i,
                "统计员",
                "县统计局",
                "610429100020261122000002",
                false,
            )
        }));
    }
    exchanges.extend((0..60).map(|i| {
        exchange(format!("surge/{i}"), now - 100 - i, "统计员", "县统计局", "610429100020261122000002", false)
    }));
    exchanges
}

async fn publish(hub: &Hub, exchanges: &[DataShared]) {
    let producer = hub.bus.producer().unwrap();
    for shared in exchanges {
        let payload = contracts::encode(&Event::from(shared.clone())).unwrap();
        producer
            .send(FutureRecord::to(AUDIT_TOPIC).key(&shared.case_number).payload(&payload), Duration::from_secs(10))
            .await
            .unwrap();
    }
}

async fn wait_for_entries(hub: &Hub, count: usize, backend: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut entries = 0;
        hub.store
            .walk_ledger(|row| {
                entries +=
                    usize::from(serde_json::from_slice::<Entry>(&row.body).unwrap().record.kind == EntryKind::Exchange)
            })
            .await
            .unwrap();
        if entries >= count {
            assert_eq!(entries, count, "{backend}: each exchange once");
            return;
        }
        assert!(Instant::now() < deadline, "{backend}: {entries} of {count} exchanges in the ledger");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// (subject, body) of the alerts mailed to the data bureau so far.
fn bureau_mails(smtp: &SmtpServer) -> Vec<(String, String)> {
    smtp.messages()
        .into_iter()
        .filter(|(to, subject, _)| to.contains(BUREAU) && subject.starts_with("审计异常告警"))
        .map(|(_, subject, body)| (subject, body))
        .collect()
}

/// The data bureau's client.
async fn bureau(hub: &Hub) -> reqwest::Client {
    common::client_with(&common::token(hub, "赵数据", Role::DataBureau, None).await)
}

async fn alerts(hub: &Hub) -> Vec<Value> {
    bureau(hub)
        .await
        .get(format!("http://{}/api/v1/audit/alerts", hub.api_address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anomalies_raise_alerts_on_the_topic_and_by_mail_once() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start(dir.path());
    for (backend, url) in common::databases(&dir).await {
        let mut config = Config::default();
        config.database.url = url;
        config.api.listen = "127.0.0.1:0".into();
        config.mail.smtp_url = format!("smtp://127.0.0.1:{}", smtp.port);
        config.province.catalogue_sync_seconds = 0;
        // No case moves here: the counterparts are never called.
        let nowhere = "http://127.0.0.1:9".to_string();
        (config.postal.base_url, config.ecert.base_url, config.province.base_url, config.bank.base_url) =
            (nowhere.clone(), nowhere.clone(), nowhere.clone(), nowhere.clone());
        config.sms.base_url = nowhere;
        let mailed_before = bureau_mails(&smtp).len();
        let hub = Hub::start(&config, bind(&config.api.listen).await.unwrap()).await.unwrap();
        let week = county_week();
        publish(&hub, &week).await;
        wait_for_entries(&hub, week.len(), backend).await;

        let raised = alerts(&hub).await;
        let rules: BTreeSet<&str> = raised.iter().map(|a| a["rule"].as_str().unwrap()).collect();
        assert_eq!(
            rules,
            BTreeSet::from(["bulk_reads_off_hours", "read_without_case", "volume_above_norm"]),
            "{backend}: {raised:#?}"
        );
        assert_eq!(raised.len(), 3, "{backend}: one alert per anomaly: {raised:#?}");
        let bulk = raised.iter().find(|a| a["rule"] == "bulk_reads_off_hours").unwrap();
        assert_eq!(
            (bulk["requester"].as_str(), bulk["count"].as_i64()),
            (Some("夜班王（县市场监管局）"), Some(20)),
            "{backend}: {bulk}"
        );
        let surge = raised.iter().find(|a| a["rule"] == "volume_above_norm").unwrap();
        assert_eq!(
            (surge["count"].as_i64(), surge["norm"].as_f64()),
            (Some(51), Some(10.0)),
            "{backend}: raised when the day passed the floor: {surge}"
        );
        assert_eq!(
            bureau(&hub)
                .await
                .get(format!("http://{}/api/v1/audit/alerts?from=today", hub.api_address))
                .send()
                .await
                .unwrap()
                .status(),
            400
        );

        // The same alerts on the topic, as the bureau's systems read them.
        let consumer = bus::OffRuntimeDrop::new(
            hub.bus.consumer(&format!("test-{}", uuid::Uuid::now_v7()), &[ALERT_TOPIC]).unwrap(),
        );
        let mut published = BTreeSet::new();
        while published.len() < 3 {
            let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
                .await
                .expect("the alerts are published")
                .unwrap();
            match contracts::decode(message.payload().unwrap()).unwrap() {
                Event::AuditAnomalyDetected(alert) => published.insert(alert.event_id),
                other => panic!("{ALERT_TOPIC} carries {other:?}"),
            };
        }
        consumer.close().await;
        assert_eq!(published, raised.iter().map(|a| a["id"].as_str().unwrap().to_string()).collect(), "{backend}");

        // And by mail to the county data bureau, one mail each.
        let deadline = Instant::now() + Duration::from_secs(30);
        while bureau_mails(&smtp).len() < mailed_before + 3 {
            assert!(Instant::now() < deadline, "{backend}: the bureau's mails: {:#?}", bureau_mails(&smtp));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mails = bureau_mails(&smtp);
        assert_eq!(mails.len(), mailed_before + 3, "{backend}: {mails:#?}");
        for name in ["非工作时间批量调取", "无办件依据调取个人数据", "数据交换量异常"] {
            let about =
                mails.iter().filter(|(subject, body)| subject.contains(name) && body.contains("涉及台账条目")).count();
            assert_eq!(about, 1 + mailed_before / 3, "{backend}: one {name} mail: {mails:#?}");
        }
        hub.stop().await;

        // Restarted: the same facts again, one more fetch without a case by the same officer
        // today and one more exchange of the surging pair raise nothing new.
        let hub = Hub::start(&config, bind(&config.api.listen).await.unwrap()).await.unwrap();
        let mut again = week.clone();
        let now = now_ms();
        again.push(exchange("no-case/2".into(), now, "李查询", "县人社局", "", true));
        again.push(exchange("surge/60".into(), now, "统计员", "县统计局", "610429100020261122000002", false));
        publish(&hub, &again).await;
        wait_for_entries(&hub, week.len() + 2, backend).await;
        let after = alerts(&hub).await;
        assert_eq!(after.len(), 3, "{backend}: nothing raised twice: {after:#?}");
        hub.stop().await;
    }
}
