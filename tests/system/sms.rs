//! The SMS gateway connector against its simulator, and the applicant's reviews through the
//! whole hub: each text sent once whatever the faults, every message recorded, replies counted
//! once however often pushed; reviews by the signed link, at the counter on the applicant's own
//! screen and by SMS, a bad one verified and answered, an overdue rectification carded.
use crate::common;

use std::sync::Arc;
use std::time::Duration;

use bus::{BatchHandler, Delivery, OutboxStore};
use common::desk::{demo_options, Desk};
use common::reviews::{invitation_link, messages_of, page, review, texts_of};
use common::{admin, set_faults};
use connectors::framework::control::ConnectorControl;
use connectors::simulation::Faults;
use connectors::sms::outbound::SmsOutbound;
use connectors::sms::simulator::{self, MessageRecord, SimulatorConfig, Stats};
use connectors::sms::{self, SmsConfig};
use contracts::{Catalogue, Event, SmsRequested};
use hub::config::Config;
use hub::store::Store;
use hub_cli::demo::DemoRun;
use serde_json::{json, Value};

const SELF_EMPLOYED: &str = "11610429MB2912345A4000104010000";
const VILLAGE: &str = "610429100201";
const OTHER_VILLAGE: &str = "610429101201";

fn text(serial: usize) -> Delivery {
    let case_number = format!("6104292026112000{serial:04}");
    let (phone, template) = match serial {
        21 => ("0291234567".to_string(), "pickup"),
        22 => ("13900000022".to_string(), "no-such-template"),
        _ => (format!("139{serial:08}"), "pickup"),
    };
    let params = [
        ("case_number", case_number.as_str()),
        ("matter", "个体工商户设立登记"),
        ("place", "取件柜"),
        ("how", "取件码123456。"),
    ];
    let event: Event = SmsRequested {
        event_id: format!("{case_number}/9/sms"),
        case_number: case_number.clone(),
        occurred_at: 1_763_604_000_000,
        phone,
        template: template.into(),
        version: 1,
        params: params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    }
    .into();
    Delivery { topic: "hub.sms.requests".into(), partition: 0, offset: serial as i64, event }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn texts_are_sent_once_through_errors_lost_answers_and_an_outage() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Store::connect(&format!("sqlite://{}", dir.path().join("hub.db").display()), Arc::new(Catalogue::builtin()))
            .await
            .unwrap();
    let faults = Faults { error_rate: 0.3, delay_ms: 5, duplicate_rate: 0.3, outage: false };
    let sim_config = SimulatorConfig {
        app_id: "XY610429-HUB".into(),
        app_secret: "development-secret".into(),
        push_url: None,
        faults,
    };
    let sim = simulator::spawn(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(), sim_config).unwrap();
    let config = SmsConfig { base_url: sim.base_url.clone(), retry: common::PATIENT, ..SmsConfig::default() };
    let connector = |config: SmsConfig| {
        SmsOutbound::new(config, Arc::new(store.clone()), ConnectorControl::new(sms::CONSUMER)).unwrap()
    };

    // Twenty good texts, one to a landline and one of a template the gateway does not hold;
    // delivered twice.
    let batch: Vec<Delivery> = (1..=22).map(text).collect();
    let outbound = connector(config.clone());
    let mut rejected = outbound.handle(&batch).await.unwrap();
    rejected.sort_by_key(|r| r.index);
    assert_eq!(rejected.iter().map(|r| r.index).collect::<Vec<_>>(), [20, 21], "{rejected:?}");
    assert!(rejected[0].reason.contains("phone") && rejected[1].reason.contains("no-such-template"), "{rejected:?}");
    assert!(outbound.handle(&batch).await.unwrap().is_empty(), "a redelivered batch sends nothing again");

    // The gateway down for a while: nothing is lost, nothing sent twice.
    set_faults(&sim.base_url, json!({"outage": true})).await;
    let late = [text(23)];
    let handling = tokio::spawn({
        let outbound = connector(config.clone());
        async move { outbound.handle(&late).await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!handling.is_finished(), "nothing is sent while the gateway is down");
    set_faults(&sim.base_url, json!({"delay_ms": 20})).await;
    assert!(handling.await.unwrap().is_empty());

    let stats: Stats = admin(&sim.base_url, "stats").await;
    assert_eq!(stats.messages, 21, "one message per id: {stats:?}");
    assert!(stats.calls.failed_calls > 0 && stats.calls.lost_answers > 0, "the faults struck: {stats:?}");
    assert_eq!(stats.replays, stats.calls.lost_answers, "each lost answer was retried and found sent: {stats:?}");
    let messages: Vec<MessageRecord> = admin(&sim.base_url, "messages").await;
    let first = messages.iter().find(|m| m.message.reference == "61042920261120000001").unwrap();
    assert_eq!(
        first.text,
        "【旬邑政务】您的办件61042920261120000001（个体工商户设立登记）结果已可领取，地点：取件柜。取件码123456。"
    );
    let ids = store.unpublished_ids(0, 10_000).await.unwrap();
    let events: Vec<Event> =
        store.messages(&ids).await.unwrap().iter().map(|m| contracts::decode(&m.payload).unwrap()).collect();
    let sent = events.iter().filter(|e| matches!(e, Event::SmsSent(_))).count();
    assert_eq!(sent, 21, "each message recorded once as taken");
    let shared = events.iter().filter(|e| matches!(e, Event::DataShared(s) if s.exchange == "sms.send")).count();
    assert_eq!(shared, 23, "every exchange, the refused ones too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applicants_review_by_link_at_the_counter_and_by_sms() {
    let dir = tempfile::tempdir().unwrap();
    for (backend, url) in common::databases(&dir).await {
        let mut config = Config::default();
        config.database.url = url;
        config.api.listen = "127.0.0.1:0".into();
        config.province.catalogue_sync_seconds = 0;
        config.workflow.deadline_scan_seconds = 3600;
        let demo = DemoRun::start(config, &demo_options(dir.path())).await.unwrap();
        let desk = Desk::new(&demo);
        let sms_url = demo.sms_url().to_string();
        let mut cases = Vec::new();
        for n in 1..=3 {
            let case = desk.submit(&format!("{backend}-review-{n}"), SELF_EMPLOYED, VILLAGE, json!({})).await;
            desk.wait_for(&case, "routed").await;
            assert_eq!(desk.decide(&case, "approved", None).await.0, 200);
            cases.push(case);
        }
        for case in &cases {
            desk.wait_for(case, "archived").await;
        }
        let [by_sms, by_link, at_counter] = [&cases[0], &cases[1], &cases[2]];

        // Every turn told by SMS, from the versioned templates; every message on the case.
        let acceptance = texts_of(&sms_url, by_sms, "acceptance").await;
        assert!(
            acceptance[0].starts_with("【旬邑政务】您申请的个体工商户设立登记已受理")
                && acceptance[0].contains(by_sms.as_str()),
            "{backend}: {acceptance:?}"
        );
        let decision = texts_of(&sms_url, by_sms, "decision").await;
        assert!(decision[0].contains("准予许可"), "{backend}: {decision:?}");
        let invitation = messages_of(&sms_url, by_sms, "review-invitation").await;
        assert_eq!(invitation.len(), 1, "{backend}");
        let record = desk
            .wait_until(by_sms, "every text taken", |c| {
                c["texts"].as_array().is_some_and(|t| t.len() == 3 && t.iter().all(|t| t["taken"] == true))
            })
            .await;
        let templates: Vec<&str> =
            record["case"]["texts"].as_array().unwrap().iter().map(|t| t["template"].as_str().unwrap()).collect();
        assert_eq!(templates, ["acceptance", "decision", "review-invitation"], "{backend}");

        // 短信评: words are no grade; a grade pushed twice counts once; one review online.
        set_faults(&sms_url, json!({"duplicate_rate": 1.0})).await;
        let reply = |text: &str| {
            let body = json!({"message_id": invitation[0].message.message_id, "text": text});
            let request = reqwest::Client::new().post(format!("{sms_url}/admin/replies")).json(&body).send();
            async move { assert_eq!(request.await.unwrap().status(), 202) }
        };
        reply("收到").await;
        reply("4 挺快的").await;
        let record = desk.wait_until(by_sms, "the SMS review", |c| c["reviews"] == json!([4])).await;
        reply("1").await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(desk.case(by_sms).await["case"]["reviews"], json!([4]), "{backend}: one review per case online");
        assert_eq!(record["case"]["rectifications"], json!([]), "{backend}");
        set_faults(&sms_url, json!({})).await;

        // 网上评 through the invitation's signed link: the page in Chinese, no account; a link
        // altered or for another case is refused.
        let link = invitation_link(&sms_url, by_link).await;
        let (status, shown) = page(&link).await;
        assert!(
            status == 200
                && shown.contains("政务服务“好差评”")
                && shown.contains(by_link.as_str())
                && shown.contains("非常不满意"),
            "{backend}: {shown}"
        );
        assert!(!shown.contains("张三"), "{backend}: no personal data on the page");
        assert_eq!(page(&link.replace(by_link.as_str(), by_sms.as_str())).await.0, 403, "{backend}");
        let tampered = format!("{}0", &link[..link.len() - 1]);
        assert_eq!(review(&tampered, 1, "").await.0, 403, "{backend}");
        let (status, thanks) = review(&link, 2, "邮寄慢").await;
        assert!(status == 200 && thanks.contains("调查核实"), "{backend}: {thanks}");
        assert_eq!(review(&link, 5, "").await.0, 409, "{backend}: one online review per case");
        assert_eq!(review(&link, 9, "").await.0, 422, "{backend}");
        let record = desk.case(by_link).await;
        let item = record["case"]["rectifications"][0]["item_number"].as_str().unwrap().to_string();
        // Verified unfounded: the item closes, and the applicant is answered by SMS.
        let verification = json!({"item_number": item, "finding": "邮政揽投记录显示次日妥投，未超时限", "substantiated": false, "reply": "经核实，结果已于受理后按时寄出，感谢您的监督。"});
        assert_eq!(desk.command(by_link, "rectifications/verify", verification.clone()).await.0, 200, "{backend}");
        assert_eq!(
            desk.command(by_link, "rectifications/verify", verification).await.0,
            404,
            "{backend}: closed, verified once"
        );
        let answer = texts_of(&sms_url, by_link, "review-reply").await;
        assert!(answer[0].contains("经核实，结果已于受理后按时寄出"), "{backend}: {answer:?}");
        assert_eq!(desk.case(by_link).await["case"]["rectifications"][0]["closed"], true, "{backend}");

        // 一次一评 at the counter: the clerk opens the visit, the applicant grades on their own
        // screen; another point's clerk cannot open one.
        let (status, visit) = desk.command(at_counter, "review-visits", json!({})).await;
        assert_eq!(status, 201, "{backend}: {visit}");
        let visit_link = visit["link"].as_str().unwrap().to_string();
        assert_eq!(review(&visit_link, 5, "").await.0, 200, "{backend}");
        assert_eq!(review(&visit_link, 4, "").await.0, 409, "{backend}: one review per visit");
        let (status, second) = desk.command(at_counter, "review-visits", json!({})).await;
        assert_eq!(status, 201, "{backend}");
        assert_eq!(review(second["link"].as_str().unwrap(), 1, "窗口人员态度差").await.0, 200, "{backend}");
        let other_clerk = demo.staff.token(hub_core::access::Role::VillageClerk, Some(OTHER_VILLAGE)).await.unwrap();
        let refused = reqwest::Client::new()
            .post(format!("{}/api/v1/cases/{at_counter}/review-visits", demo.api_url()))
            .bearer_auth(other_clerk)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 403, "{backend}");
        let record = desk.case(at_counter).await;
        assert_eq!(record["case"]["reviews"], json!([5, 1]), "{backend}");
        assert_eq!(record["case"]["reviewed_visits"].as_array().unwrap().len(), 2, "{backend}");

        // A rectification past its deadline is carded like a time limit, up to red and a 督办单.
        let deadline = record["case"]["rectifications"][0]["deadline"].as_i64().unwrap() as i32;
        let reference = demo.hub.reference.get();
        let later = i64::from(reference.calendar.add_working_days(deadline, 4)) * 86_400_000 + 2 * 3_600_000;
        hub::app::deadlines::check_deadlines(&demo.hub.store, &reference, later).await.unwrap();
        let warnings: Value = desk.get("/api/v1/warnings".into()).await.1;
        let cards: Vec<&str> = warnings["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|w| w["case_number"] == at_counter.as_str() && w["scope"] == "rectification")
            .map(|w| w["level"].as_str().unwrap())
            .collect();
        assert_eq!(cards, ["red"], "{backend}: {warnings}");
        let record = desk.case(at_counter).await;
        assert_eq!(
            record["case"]["supervisions"].as_array().unwrap().len(),
            1,
            "{backend}: a 督办单 follows the red card"
        );

        // The reviews counted per service point, and in the month's report.
        let stats: Value = desk.get("/api/v1/reviews/stats".into()).await.1;
        assert_eq!(stats["by_service_point"][VILLAGE]["reviews"], 4, "{backend}: {stats}");
        let month = &connectors::framework::date_text(contracts::day_of(connectors::framework::now_ms()))[..7];
        let (status, answer) = desk.get(format!("/api/v1/reports?period={month}&unit={VILLAGE}")).await;
        let report = &answer["report"];
        assert_eq!(status, 200, "{backend}: {answer}");
        assert_eq!(
            (report["received"].as_u64(), report["decided"].as_u64(), report["archived"].as_u64()),
            (Some(3), Some(3), Some(3)),
            "{backend}: {report}"
        );
        assert_eq!(
            (report["reviews"].as_u64(), report["good_reviews"]["count"].as_u64(), report["bad_reviews"].as_u64()),
            (Some(4), Some(2), Some(2)),
            "{backend}: {report}"
        );
        assert_eq!(
            report["rectified_on_time"]["of"], 0,
            "{backend}: the unfounded one closed unrectified, the other is open"
        );
        let (status, answer) = desk.get("/api/v1/reports?period=2026-13".into()).await;
        assert_eq!((status, answer["field"].as_str()), (400, Some("period")), "{backend}: {answer}");
        demo.stop().await;
    }
}
