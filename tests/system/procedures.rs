//! A county day, end to end over the HTTP API on each database: every acceptance outcome, a
//! supplement, a tolerant acceptance with a missed commitment, a refusal, a township-decided
//! matter, a joint site inspection, a hearing, a parallel approval, a denial, window, locker and
//! mail delivery with a failed mail that comes back to the window, an overdue case, and a bad
//! review. Warnings are e-mailed to a real SMTP server process (aiosmtpd).
use crate::common;

use std::time::{Duration, Instant};

use common::desk::{demo_options, Desk, APPLICANT_ID};
use common::smtp::SmtpServer;
use connectors::postal::simulator::Faults;
use hub::config::Config;
use hub::store::Waiting;
use hub_cli::demo::DemoRun;
use serde_json::{json, Value};

const SELF_EMPLOYED: &str = "11610429MB2912345A4000104010000";
const ENTERPRISE: &str = "11610429MB2912345A4000104001000";
const FOOD: &str = "11610429MB2912345A4000104119000";
const CONSTRUCTION: &str = "11610429MB2912345A4000106012000";
const HOMESTEAD: &str = "11610429MB2912349E4000117050000";
const VILLAGE: &str = "610429100201";
const COUNTY_HALL: &str = "610429000000";
const BANK_OUTLET: &str = "BANK-PSBC-610429100";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_county_day_runs_every_procedure_to_its_end() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start(dir.path());
    for (backend, url) in common::databases(&dir).await {
        let mut config = Config::default();
        config.database.url = url;
        config.api.listen = "127.0.0.1:0".into();
        config.mail.smtp_url = format!("smtp://127.0.0.1:{}", smtp.port);
        config.workflow.deadline_scan_seconds = 3600;
        config.workflow.pickup_secret = "county secret".into();
        let demo = DemoRun::start(config, &demo_options(dir.path())).await.unwrap();
        let day = Day { backend, desk: Desk::new(&demo), demo: &demo };
        let mailed = day.mailed_then_reviewed_badly().await;
        day.bank_outlet_takes_only_bank_matters().await;
        day.incomplete_then_supplemented_and_collected().await;
        let (tolerated, commitment) = day.tolerated_with_a_missed_commitment_into_the_locker().await;
        day.not_accepted_outside_the_county().await;
        day.decided_by_the_township().await;
        day.site_inspection_stops_the_clock().await;
        let heard = day.hearing_then_denial_with_reasons().await;
        let parallel = day.parallel_approval_returned_to_the_window().await;
        day.review_steps_extension_and_village_station_pickup_by_an_agent().await;
        day.an_enterprises_agent_collects_with_its_authorization().await;
        day.a_complaint_at_the_counter_sends_a_supervision_order().await;
        day.overdue_warnings_are_mailed_once(&smtp, &Earlier { mailed, tolerated, commitment, heard }).await;
        day.reviews_are_counted_per_service_point().await;
        day.the_flow_record_names_every_hand_over(&parallel).await;
        day.every_document_is_complete_in_chinese_under_its_seal().await;
        demo.stop().await;
    }
}

/// One county day on one database: the counter's desk, and the hub behind it.
struct Day<'a> {
    backend: &'static str,
    desk: Desk<'a>,
    demo: &'a DemoRun,
}

/// Cases of the earlier steps that the warnings step looks at again.
struct Earlier {
    mailed: String,
    tolerated: String,
    commitment: i32,
    heard: String,
}

impl Day<'_> {
    /// A request id of this database's run.
    fn id(&self, name: &str) -> String {
        format!("{}-{name}", self.backend)
    }

    /// Complete materials, mailed, signed for; then a very dissatisfied review through the link
    /// of the SMS invitation, verified by the supervisor, answered by SMS and rectified.
    async fn mailed_then_reviewed_badly(&self) -> String {
        let Day { backend, desk, .. } = self;
        let mailed = desk.submit(&self.id("mailed"), SELF_EMPLOYED, VILLAGE, json!({})).await;
        desk.wait_for(&mailed, "routed").await;
        assert_eq!(desk.decide(&mailed, "approved", None).await.0, 200);
        desk.wait_for(&mailed, "archived").await;
        assert_eq!(
            desk.titles(&mailed).await,
            ["申请表及申请材料", "受理通知书", "准予行政许可决定书", "送达回证", "归档目录"],
            "{backend}"
        );
        let notice = desk.document(&mailed, 2).await;
        assert!(
            notice.contains(&mailed) && notice.contains("承诺办结日期") && notice.contains("029-34421234"),
            "{backend}: {notice}"
        );
        assert!(notice.contains("data-part=\"评价二维码\"") && notice.contains("<svg"), "{backend}: the QR code");
        let link = common::reviews::invitation_link(self.demo.sms_url(), &mailed).await;
        assert_eq!(common::reviews::review(&link, 1, "材料跑了两趟").await.0, 200, "{backend}");
        assert_eq!(common::reviews::review(&link, 5, "").await.0, 409, "{backend}: one online review per case");
        let record = desk.case(&mailed).await;
        assert_eq!(record["case"]["reviews"], json!([1]), "{backend}");
        let item = record["case"]["rectifications"][0]["item_number"].as_str().unwrap().to_string();
        let close = json!({"item_number": item, "feedback": "已整改：窗口一次性告知到位，已回访"});
        assert_eq!(
            desk.command(&mailed, "rectifications/close", close.clone()).await.0,
            409,
            "{backend}: verified first"
        );
        let verification = json!({"item_number": item, "finding": "经调阅受理记录，补正材料未一次性告知，属实", "substantiated": true, "reply": "经核实情况属实，已责令窗口整改。"});
        assert_eq!(desk.command(&mailed, "rectifications/verify", verification).await.0, 200, "{backend}");
        let answer = common::reviews::texts_of(self.demo.sms_url(), &mailed, "review-reply").await;
        assert!(answer[0].contains("经核实情况属实，已责令窗口整改。"), "{backend}: {answer:?}");
        assert_eq!(desk.command(&mailed, "rectifications/close", close).await.0, 200);
        assert_eq!(desk.case(&mailed).await["case"]["rectifications"][0]["closed"], true);
        mailed
    }

    /// A bank outlet takes in a bank matter (channel bank), and refuses one not listed for banks.
    async fn bank_outlet_takes_only_bank_matters(&self) {
        let Day { backend, desk, .. } = self;
        let banked = desk.submit(&self.id("banked"), SELF_EMPLOYED, BANK_OUTLET, json!({"channel": "bank"})).await;
        let record = desk.wait_for(&banked, "routed").await;
        assert_eq!(record["case"]["application"]["service_point"]["tier"], "bank");
        let mut not_for_banks = json!({"request_id": self.id("bank-homestead"), "matter_code": HOMESTEAD, "service_point": BANK_OUTLET, "channel": "bank"});
        not_for_banks["applicant"] =
            json!({"name": "张三", "id_type": "111", "id_number": APPLICANT_ID, "phone": "13912345678"});
        not_for_banks["materials"] = json!([]);
        not_for_banks["delivery"] = json!({"method": "window"});
        let (status, answer) = desk.call("/api/v1/applications", not_for_banks).await;
        assert_eq!((status, answer["field"].as_str()), (422, Some("service_point")), "{backend}: {answer}");
        assert_eq!(desk.decide(&banked, "approved", None).await.0, 200);
    }

    /// Incomplete (a missing and a faulty material on one notice), supplemented, picked up at the window.
    async fn incomplete_then_supplemented_and_collected(&self) {
        let Day { backend, desk, .. } = self;
        let incomplete = json!({
            "materials": ["个体工商户登记申请书"],
            "faulty_materials": [{"material": "个体工商户登记申请书", "problem": "缺少经营者签字"}],
            "delivery": {"method": "window"},
        });
        let supplemented = desk.submit(&self.id("supplemented"), SELF_EMPLOYED, VILLAGE, incomplete).await;
        let waiting = desk.wait_for(&supplemented, "awaiting_supplement").await;
        let notice =
            waiting["history"].as_array().unwrap().iter().find(|h| h["kind"] == "SupplementRequested").unwrap()
                ["event"]["items"]
                .clone();
        assert_eq!(notice.as_array().unwrap().len(), 3, "{backend}: two missing and one faulty, all at once: {notice}");
        let all = json!({"materials": ["个体工商户登记申请书", "经营者身份证明", "经营场所使用证明"]});
        let (status, answer) = desk.command(&supplemented, "supplements", all).await;
        assert_eq!((status, answer["version"].as_i64()), (200, Some(2)), "{answer}");
        desk.wait_for(&supplemented, "routed").await;
        desk.decide(&supplemented, "approved", None).await;
        let record = desk.wait_for(&supplemented, "awaiting_pickup").await;
        let notice = record["case"]["acceptance_notice"].clone();
        let stranger = json!({"collected_by": "李四", "id_number": "110105194912310038", "signature": "sig", "notice_number": notice});
        assert_eq!(
            desk.command(&supplemented, "pickup", stranger).await.0,
            403,
            "{backend}: only the applicant collects"
        );
        let applicant = json!({"collected_by": "张三", "id_number": APPLICANT_ID, "signature": "签名影像 sha256:9f2c", "notice_number": notice});
        assert_eq!(desk.command(&supplemented, "pickup", applicant).await.0, 200);
        desk.wait_for(&supplemented, "archived").await;
        let titles = desk.titles(&supplemented).await;
        assert!(
            titles.contains(&"一次性告知单".to_string()) && titles.contains(&"送达回证（当面领取）".to_string()),
            "{backend}: {titles:?}"
        );
    }

    /// Tolerant acceptance whose commitment is missed; result in the locker.
    async fn tolerated_with_a_missed_commitment_into_the_locker(&self) -> (String, i32) {
        let desk = &self.desk;
        let tolerant = json!({
            "materials": ["个体工商户登记申请书", "经营者身份证明"],
            "commits_to_supply": true,
            "delivery": {"method": "locker"},
        });
        let tolerated = desk.submit(&self.id("tolerated"), SELF_EMPLOYED, VILLAGE, tolerant).await;
        let record = desk.wait_for(&tolerated, "routed").await;
        assert_eq!(record["case"]["acceptance"], "tolerant");
        let commitment = record["case"]["commitment_date"].as_i64().unwrap() as i32;
        desk.decide(&tolerated, "approved", None).await;
        let record = desk.wait_for(&tolerated, "awaiting_pickup").await;
        assert_eq!(
            record["case"]["pickup"]["place"], "旬邑县土桥镇便民服务中心门厅自助取件柜",
            "its township's locker"
        );
        let code = record["case"]["pickup"]["code"].as_str().unwrap().to_string();
        assert_eq!(
            desk.command(&tolerated, "pickup", json!({"collected_by": "张三", "pickup_code": "x"})).await.0,
            403
        );
        assert_eq!(
            desk.command(&tolerated, "pickup", json!({"collected_by": "张三", "pickup_code": code})).await.0,
            200
        );
        // Collected, but a material is still owed: the file stays open until it comes, or
        // until what became of it is recorded (the warnings step does that once it is overdue).
        desk.wait_for(&tolerated, "collected").await;
        assert!(
            desk.titles(&tolerated).await.contains(&"容缺受理承诺书".to_string()),
            "the applicant's commitment is in the file"
        );
        let early = json!({"outcome": "逾期未补齐"});
        assert_eq!(desk.command(&tolerated, "commitment/close", early).await.0, 409, "not overdue yet");
        (tolerated, commitment)
    }

    /// Not accepted: a township matter for an applicant from outside the county.
    async fn not_accepted_outside_the_county(&self) {
        let desk = &self.desk;
        let refused =
            desk.submit(&self.id("refused"), HOMESTEAD, VILLAGE, json!({"domicile_township": "610430100000"})).await;
        let record = desk.wait_for(&refused, "archived").await;
        assert_eq!(desk.titles(&refused).await[1], "不予受理通知书");
        assert_eq!(record["case"]["decision"], Value::Null);
    }

    /// Township-decided matter, decided by the township centre.
    async fn decided_by_the_township(&self) {
        let Day { backend, desk, .. } = self;
        let homestead = desk.submit(&self.id("homestead"), HOMESTEAD, VILLAGE, json!({})).await;
        let record = desk.wait_for(&homestead, "routed").await;
        assert_eq!(record["case"]["department_code"], "610429100000", "{backend}: the village's township decides");
        assert_eq!(desk.decide(&homestead, "approved", None).await.0, 200);
    }

    /// A joint site inspection stops the clock; then approved.
    async fn site_inspection_stops_the_clock(&self) {
        let Day { backend, desk, .. } = self;
        let inspected = desk.submit(&self.id("inspected"), FOOD, VILLAGE, json!({})).await;
        let before = desk.wait_for(&inspected, "routed").await["case"]["promised_date"].as_i64().unwrap();
        let inspection =
            json!({"procedure": "site_inspection", "departments": ["11610429MB2912345A", "11610429MB2912346B"]});
        assert_eq!(desk.command(&inspected, "procedures", inspection).await.0, 200);
        assert_eq!(
            desk.decide(&inspected, "approved", None).await.0,
            409,
            "{backend}: no decision while a special procedure runs"
        );
        let done = json!({"summary": "经营场所与申请材料一致，设备布局符合要求"});
        assert_eq!(desk.command(&inspected, "procedures/complete", done).await.0, 200);
        let after = desk.case(&inspected).await["case"]["promised_date"].as_i64().unwrap();
        assert!(after >= before, "{backend}: a pause never shortens the time limit");
        assert_eq!(desk.decide(&inspected, "approved", None).await.0, 200);
        desk.wait_for(&inspected, "archived").await;
        assert!(desk.titles(&inspected).await.contains(&"现场踏勘记录".to_string()));
    }

    /// A hearing for a neighbour's interests, then a denial with reasons and remedies.
    async fn hearing_then_denial_with_reasons(&self) -> String {
        let Day { backend, desk, .. } = self;
        let heard = desk.submit(&self.id("heard"), FOOD, VILLAGE, json!({})).await;
        desk.wait_for(&heard, "routed").await;
        let today = contracts::day_of(hub::store::now_ms());
        let reference = self.demo.hub.reference.get();
        let on =
            |working_days: u32| hub_core::calendar::iso_date(reference.calendar.add_working_days(today, working_days));
        let hearing =
            |date: String| json!({"procedure": "hearing", "parties": ["相邻住户李四"], "scheduled_date": date});
        assert_eq!(
            desk.command(&heard, "procedures", hearing(on(7))).await.0,
            409,
            "{backend}: the rights are told first"
        );
        let rights = json!({"parties": ["相邻住户李四"]});
        assert_eq!(desk.command(&heard, "hearing-rights", rights).await.0, 200);
        let (status, answer) = desk.command(&heard, "procedures", hearing(on(6))).await;
        assert_eq!(
            (status, answer["field"].as_str()),
            (422, Some("scheduled_date")),
            "{backend}: seven days' notice: {answer}"
        );
        assert_eq!(desk.command(&heard, "procedures", hearing(on(7))).await.0, 200);
        desk.command(&heard, "procedures/complete", json!({"summary": "相邻住户反映油烟扰民，申请人未能提出防治措施"}))
            .await;
        assert_eq!(desk.decide(&heard, "denied", None).await.0, 422, "{backend}: a denial states its reasons");
        assert_eq!(desk.decide(&heard, "denied", Some("经听证，油烟排放不符合要求")).await.0, 200);
        desk.wait_for(&heard, "archived").await;
        let titles = desk.titles(&heard).await;
        let denial = titles.iter().position(|t| t == "不予行政许可决定书").unwrap() + 1;
        let html = desk.document(&heard, denial).await;
        assert!(html.contains("行政复议") && html.contains("油烟排放不符合要求"), "{backend}");
        assert!(titles.contains(&"听证权利告知书".to_string()) && titles.contains(&"听证通知书".to_string()));
        assert!(titles.contains(&"听证笔录".to_string()));
        let notice = desk.document(&heard, titles.iter().position(|t| t == "听证通知书").unwrap() + 1).await;
        assert!(notice.contains(&on(7)) && notice.contains("第四十八条"), "{backend}: {notice}");
        heard
    }

    /// A parallel approval at the county hall; the mail fails and the result comes back to the window.
    async fn parallel_approval_returned_to_the_window(&self) -> String {
        let Day { backend, desk, .. } = self;
        let parallel = desk.submit(&self.id("parallel"), CONSTRUCTION, COUNTY_HALL, json!({})).await;
        desk.wait_for(&parallel, "routed").await;
        assert_eq!(desk.decide(&parallel, "approved", None).await.0, 409, "{backend}: opinions first");
        for department in ["11610429MB291234AF", "11610429MB291234CH"] {
            let opinion = json!({"department_code": department, "opinion": "agree"});
            assert_eq!(desk.command(&parallel, "opinions", opinion).await.0, 200);
        }
        let faults_url = format!("{}/admin/faults", self.demo.postal_url());
        let fail_all = Faults { failed_delivery_rate: 1.0, ..Faults::default() };
        assert!(desk.client.put(&faults_url).json(&fail_all).send().await.unwrap().status().is_success());
        assert_eq!(desk.decide(&parallel, "approved", None).await.0, 200);
        let record = desk.wait_for(&parallel, "awaiting_pickup").await;
        assert!(desk.client.put(&faults_url).json(&Faults::default()).send().await.unwrap().status().is_success());
        assert_eq!(record["case"]["delivery_outcome"], "returned");
        let notice = record["case"]["acceptance_notice"].clone();
        let collect = json!({"collected_by": "张三", "id_number": APPLICANT_ID, "signature": "签名影像 sha256:4b1a", "notice_number": notice});
        assert_eq!(desk.command(&parallel, "pickup", collect).await.0, 200);
        desk.wait_for(&parallel, "archived").await;
        parallel
    }

    /// An overdue case: red warning, to the handler and the supervisor, once.
    async fn overdue_warnings_are_mailed_once(&self, smtp: &SmtpServer, earlier: &Earlier) {
        let Day { backend, desk, demo } = self;
        let Earlier { mailed, tolerated, commitment, heard, .. } = earlier;
        // A matter whose statutory limit (20 days) lies well past its promise (10) and the
        // tolerated case's commitment (5): only the promise is broken.
        // Case numbers start afresh on each database; the mailbox is shared: read this run's mail.
        let before = smtp.messages();
        let overdue = desk.submit(&self.id("overdue"), FOOD, VILLAGE, json!({})).await;
        let record = desk.wait_for(&overdue, "routed").await;
        // Its review steps done in time: only the promise can be missed.
        for step in ["initial_review", "final_review"] {
            assert_eq!(desk.command(&overdue, "steps", json!({"step": step})).await.0, 200);
        }
        let promised = record["case"]["promised_date"].as_i64().unwrap() as i32;
        let reference = demo.hub.reference.get();
        let at_ten = |day: i32| i64::from(day) * 86_400_000 + 2 * 3_600_000;
        // More than three working days past the promise (the county's threshold): a red card.
        let late = at_ten(reference.calendar.add_working_days(promised.max(*commitment), 4));
        hub::app::deadlines::check_deadlines(&demo.hub.store, &reference, late).await.unwrap();
        hub::app::deadlines::check_deadlines(&demo.hub.store, &reference, late).await.unwrap();
        let warnings: Value = desk.get("/api/v1/warnings".into()).await.1;
        let warnings = warnings["warnings"].as_array().unwrap().clone();
        let about = |case: &str| {
            warnings
                .iter()
                .filter(|w| w["case_number"] == case)
                .map(|w| (w["scope"].as_str().unwrap().to_string(), w["level"].as_str().unwrap().to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(about(&overdue), [("case".to_string(), "red".to_string())], "{backend}");
        assert_eq!(
            about(tolerated),
            [("commitment".to_string(), "yellow".to_string())],
            "{backend}: the missed commitment"
        );
        assert!(about(mailed).is_empty() && about(heard).is_empty(), "{backend}: finished cases do not warn");
        let record = desk.case(&overdue).await;
        let order = &record["case"]["supervisions"][0];
        assert_eq!(order["answered"], false, "{backend}: a red card sends a 督办单: {record}");
        assert!(desk.titles(&overdue).await.contains(&"督办单".to_string()));

        // The owed material never came: the clerk records what became of it, and the file closes.
        let close = hub_core::Command::CloseCommitment {
            officer: "李受理".into(),
            outcome: "申请人逾期未补齐，已记入信用记录".into(),
        };
        let closed = hub::app::cases::execute_all_at(
            &demo.hub.store,
            &reference,
            vec![hub::app::cases::Order::hub(tolerated.clone(), close)],
            late,
            Waiting::Person,
        )
        .await
        .unwrap();
        assert!(closed[0].is_ok(), "{backend}: {:?}", closed[0]);
        desk.wait_for(tolerated, "archived").await;

        // The cards reach the mailboxes through SMTP: handler and supervisor for red, and the
        // 督办单 to the handler.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let messages = received_since(smtp, &before);
            let about: Vec<_> = messages.iter().filter(|(_, subject, _)| subject.contains(&overdue)).collect();
            let red: Vec<_> = about.iter().filter(|(_, subject, _)| subject.contains("红牌")).collect();
            let ordered: Vec<_> = about.iter().filter(|(_, subject, _)| subject.contains("督办单")).collect();
            if red.len() == 2 && ordered.len() == 1 {
                let recipients: Vec<&str> = red.iter().map(|(to, _, _)| to.as_str()).collect();
                assert!(recipients.contains(&"duban@xunyi.gov.cn"), "{recipients:?}");
                assert!(recipients.contains(&"11610429mb2912345a@xunyi.gov.cn"), "{recipients:?}");
                assert!(red.iter().all(|(_, _, body)| body.contains("已超过承诺办结日期")));
                assert_eq!(ordered[0].0, "11610429mb2912345a@xunyi.gov.cn");
                assert!(ordered[0].2.contains(order["order_number"].as_str().unwrap()), "{:?}", ordered[0]);
                break;
            }
            assert!(Instant::now() < deadline, "{backend}: red card and 督办单 mails: {about:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let sent = demo.hub.store.notifications().await.unwrap();
        assert!(
            sent.iter().filter(|n| n.0.starts_with(&overdue)).all(|n| n.4 == "sent" && n.3 == 1),
            "{backend}: {sent:?}"
        );

        // Later: the 督办单 went unanswered past its date (the next level hears), and a result
        // decided but never made is past the ten days of 第四十四条.
        let undelivered = desk.submit(&self.id("undelivered"), SELF_EMPLOYED, VILLAGE, json!({})).await;
        desk.wait_for(&undelivered, "routed").await;
        let decide = json!({"outcome": "approved", "department_code": "11610429MB2912345A"});
        assert_eq!(desk.command(&undelivered, "decision", decide).await.0, 200);
        let decided = contracts::day_of(hub::store::now_ms());
        let answer_by = order["answer_by"].as_i64().unwrap() as i32;
        let later = at_ten(reference.calendar.add_working_days(decided, 11).max(answer_by + 1));
        hub::app::deadlines::check_deadlines(&demo.hub.store, &reference, later).await.unwrap();
        let warnings: Value = desk.get("/api/v1/warnings".into()).await.1;
        let cards = |case: &str| -> Vec<(String, String)> {
            warnings["warnings"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|w| w["case_number"] == case)
                .map(|w| (w["scope"].as_str().unwrap().to_string(), w["level"].as_str().unwrap().to_string()))
                .collect()
        };
        assert!(cards(&overdue).contains(&("supervision".into(), "red".into())), "{backend}: {:?}", cards(&overdue));
        assert!(
            cards(&undelivered).iter().any(|(scope, _)| scope == "delivery"),
            "{backend}: the delivery limit is watched: {:?}",
            cards(&undelivered)
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while !received_since(smtp, &before)
            .iter()
            .any(|(to, _, body)| to == "xianfuban@xunyi.gov.cn" && body.contains(&overdue))
        {
            assert!(Instant::now() < deadline, "{backend}: the next level was never told");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        desk.issue_result(&undelivered).await;
        desk.wait_for(&undelivered, "archived").await;
    }

    /// Seed 000's review steps (审查细则) with their own limits, one extension with its notice,
    /// 制证 → 盖章 → 出件, and the result back at the village station, whose clerk hands it to a
    /// (代)取件人 against the acceptance notice and both IDs.
    async fn review_steps_extension_and_village_station_pickup_by_an_agent(&self) {
        let Day { backend, desk, demo } = self;
        let case =
            desk.submit(&self.id("station"), FOOD, VILLAGE, json!({"delivery": {"method": "village_station"}})).await;
        desk.wait_for(&case, "routed").await;
        let department = json!("11610429MB2912345A");
        let decide = json!({"outcome": "approved", "department_code": department});
        let (status, answer) = desk.command(&case, "decision", decide.clone()).await;
        assert_eq!(status, 409, "{backend}: the review steps first: {answer}");
        assert!(answer["error"].as_str().unwrap().contains("初审"), "{answer}");
        let (status, answer) = desk.command(&case, "steps", json!({"step": "final_review"})).await;
        assert_eq!((status, answer["field"].as_str()), (409, Some("step")), "{backend}: in order: {answer}");
        assert_eq!(desk.command(&case, "steps", json!({"step": "initial_review", "remarks": "材料齐全"})).await.0, 200);
        let extension = json!({"approved_by": "局长 王伟", "reason": "需核实经营场所权属"});
        assert_eq!(desk.command(&case, "extension", extension.clone()).await.0, 200);
        assert_eq!(desk.command(&case, "extension", extension).await.0, 409, "{backend}: one extension only");
        assert_eq!(desk.command(&case, "steps", json!({"step": "final_review"})).await.0, 200);
        assert_eq!(desk.command(&case, "decision", decide).await.0, 200);
        assert_eq!(desk.case(&case).await["case"]["state"], "approved", "{backend}: the result waits for 制证");
        assert_eq!(desk.command(&case, "steps", json!({"step": "dispatch"})).await.0, 409);
        desk.issue_result(&case).await;
        let record = desk.wait_for(&case, "awaiting_pickup").await;
        assert_eq!(record["case"]["pickup"]["place"], "土桥1村便民服务站", "{backend}");
        let steps: Vec<&str> =
            record["case"]["steps"].as_array().unwrap().iter().map(|s| s["title"].as_str().unwrap()).collect();
        assert_eq!(steps, ["初审（材料审查）", "复审（审核意见）", "制证", "盖章", "出件"], "{backend}");
        let notice = record["case"]["acceptance_notice"].as_str().unwrap().to_string();
        let agent = json!({
            "collected_by": "李四（代取件人）",
            "id_number": APPLICANT_ID,
            "notice_number": notice,
            "agent": {"id_number": "610429198805051236"},
            "signature": "签名影像 sha256:77ee",
        });
        // Another point's clerk may not hand it over: it waits at the station.
        let reference = demo.hub.reference.get();
        let other = reference.service_point("610429100202").unwrap();
        let (role, unit) = hub_core::access::counter_of(other, &reference.county.code);
        let token = demo.staff.token(role, Some(&unit)).await.unwrap();
        let elsewhere = desk
            .client
            .post(format!("{}/api/v1/cases/{case}/pickup", demo.api_url()))
            .bearer_auth(token)
            .json(&agent)
            .send()
            .await
            .unwrap();
        assert_eq!(elsewhere.status().as_u16(), 403, "{backend}");
        let mut wrong = agent.clone();
        wrong["notice_number"] = json!("旬受〔2026〕999999号");
        let (status, answer) = desk.command(&case, "pickup", wrong).await;
        assert_eq!((status, answer["field"].as_str()), (403, Some("notice_number")), "{backend}: {answer}");
        assert_eq!(desk.command(&case, "pickup", agent).await.0, 200);
        desk.wait_for(&case, "archived").await;
        let titles = desk.titles(&case).await;
        assert!(titles.contains(&"延长审批期限告知书".to_string()), "{backend}: {titles:?}");
        let receipt = desk.document(&case, titles.iter().position(|t| t == "送达回证（当面领取）").unwrap() + 1).await;
        assert!(receipt.contains("代取件人") && receipt.contains(&notice), "{backend}: {receipt}");
    }

    /// An enterprise's result goes to its agent with a 委托书, never without one.
    async fn an_enterprises_agent_collects_with_its_authorization(&self) {
        let Day { backend, desk, .. } = self;
        let firm = json!({
            "applicant": {"name": "旬邑县丰源农业有限公司", "id_type": "001", "id_number": "91610429MA6XYZ1234", "phone": "13912345678"},
            "delivery": {"method": "window"},
        });
        let case = desk.submit(&self.id("firm"), ENTERPRISE, VILLAGE, firm).await;
        desk.wait_for(&case, "routed").await;
        assert_eq!(desk.decide(&case, "approved", None).await.0, 200);
        let record = desk.wait_for(&case, "awaiting_pickup").await;
        let mut collect = json!({
            "collected_by": "王五",
            "id_number": "91610429MA6XYZ1234",
            "notice_number": record["case"]["acceptance_notice"],
            "agent": {"id_number": "610429198805051236"},
            "signature": "签名影像 sha256:51aa",
        });
        let (status, answer) = desk.command(&case, "pickup", collect.clone()).await;
        assert_eq!(
            (status, answer["field"].as_str()),
            (403, Some("agent.authorization_number")),
            "{backend}: {answer}"
        );
        collect["agent"]["authorization_number"] = json!("委托书 FY-2026-018");
        assert_eq!(desk.command(&case, "pickup", collect).await.0, 200);
        let record = desk.wait_for(&case, "archived").await;
        let collected = record["history"].as_array().unwrap().iter().find(|h| h["kind"] == "ResultCollected").unwrap();
        assert_eq!(collected["event"]["authorization_number"], "委托书 FY-2026-018", "{backend}");
    }

    /// Seed 001: a material demanded outside the guide, reported at the counter, is a red card
    /// and a 督办单; the department answers it, once.
    async fn a_complaint_at_the_counter_sends_a_supervision_order(&self) {
        let Day { backend, desk, .. } = self;
        let case = desk.submit(&self.id("complaint"), SELF_EMPLOYED, VILLAGE, json!({})).await;
        desk.wait_for(&case, "routed").await;
        let (status, answer) = desk.command(&case, "complaints", json!({"demanded": "经营场所使用证明"})).await;
        assert_eq!((status, answer["field"].as_str()), (422, Some("demanded")), "{backend}: in the guide: {answer}");
        assert_eq!(desk.command(&case, "complaints", json!({"demanded": "村委会出具的无违法证明"})).await.0, 200);
        let record = desk.case(&case).await;
        let order = record["case"]["supervisions"][0]["order_number"].as_str().unwrap().to_string();
        let answer = json!({"order_number": order, "answer": "已核实并纠正，退回指南外材料要求"});
        assert_eq!(desk.command(&case, "supervision/answer", answer.clone()).await.0, 200);
        assert_eq!(desk.command(&case, "supervision/answer", answer).await.0, 404, "{backend}: answered once");
        let warnings: Value = desk.get("/api/v1/warnings".into()).await.1;
        let card = warnings["warnings"].as_array().unwrap().iter().find(|w| w["case_number"] == case.as_str()).cloned();
        assert_eq!(
            card.map(|w| (w["scope"].clone(), w["level"].clone())),
            Some((json!("outside_guide"), json!("red")))
        );
        let titles = desk.titles(&case).await;
        assert!(
            titles.contains(&"督办单".to_string()) && titles.contains(&"督办反馈单".to_string()),
            "{backend}: {titles:?}"
        );
        assert_eq!(desk.decide(&case, "approved", None).await.0, 200);
        desk.wait_for(&case, "archived").await;
    }

    /// The bad review counts against the village station.
    async fn reviews_are_counted_per_service_point(&self) {
        let Day { backend, desk, .. } = self;
        let stats: Value = desk.get("/api/v1/reviews/stats".into()).await.1;
        assert_eq!(stats["by_service_point"][VILLAGE]["bad"], 1, "{backend}: {stats}");
    }

    /// The flow record names every hand-over of the returned mail.
    async fn the_flow_record_names_every_hand_over(&self, parallel: &str) {
        let Day { backend, desk, .. } = self;
        let flow: Value = desk.get(format!("/api/v1/cases/{parallel}/flow")).await.1;
        let actions: Vec<&str> =
            flow["flow"].as_array().unwrap().iter().map(|h| h["action"].as_str().unwrap()).collect();
        for action in [
            "提交申请",
            "受理",
            "材料流转",
            "并联审批意见",
            "准予许可",
            "制证",
            "盖章",
            "出件",
            "交邮寄送",
            "投递失败退回",
            "待领取",
            "领取",
            "归档",
        ] {
            assert!(actions.iter().any(|a| a.starts_with(action)), "{backend}: {action} missing from {actions:?}");
        }
    }

    /// Every document of every closed case has the parts `documents/parts.toml` lists, says
    /// them in Chinese only, prints on A4 and names where its seal goes; every hand-over names
    /// its units and people; the month's hand-in lists hold every closed file.
    async fn every_document_is_complete_in_chinese_under_its_seal(&self) {
        let Day { backend, desk, .. } = self;
        let listed = |list: Value| -> Vec<String> {
            list.as_array()
                .unwrap_or_else(|| panic!("{list}"))
                .iter()
                .map(|c| c["case_number"].as_str().unwrap().to_string())
                .collect()
        };
        let numbers = listed(desk.get("/api/v1/cases?state=archived&limit=500".into()).await.1);
        assert!(numbers.len() >= 8, "{backend}: {numbers:?}");
        let mut newest_first = listed(desk.get("/api/v1/cases?state=archived&order=newest&limit=500".into()).await.1);
        newest_first.reverse();
        assert_eq!(newest_first, numbers, "{backend}: order=newest lists the same cases the other way round");
        let (status, refused) = desk.get("/api/v1/cases?state=archived&order=sideways".into()).await;
        assert_eq!(status, 400, "{backend}: an unknown order: {refused}");
        let mut kinds = std::collections::BTreeSet::new();
        let mut months = std::collections::BTreeSet::new();
        for number in &numbers {
            let index = desk.get(format!("/api/v1/cases/{number}/documents")).await.1;
            for (position, doc) in index["documents"].as_array().unwrap().iter().enumerate() {
                let kind = doc["kind"].as_str().unwrap();
                let html = desk.document(number, position + 1).await;
                let missing = hub_core::documents::missing_parts(kind, &html);
                assert!(missing.is_empty(), "{backend}: {number} {kind} lacks {missing:?}:\n{html}");
                assert_eq!(
                    latin_words(&html),
                    Vec::<String>::new(),
                    "{backend}: {number} {kind} is not all Chinese:\n{html}"
                );
                assert!(
                    html.contains("size:A4") && html.contains("此处加盖")
                        || ["application", "commitment"].contains(&kind),
                    "{backend}: {kind}"
                );
                kinds.insert(kind.to_string());
            }
            let case = desk.case(number).await;
            let history = case["history"].as_array().unwrap();
            let submitted = &history[0]["event"];
            if submitted["channel"] != "online" {
                let clerk = submitted["received_by"].as_str().unwrap();
                assert!(
                    !clerk.is_empty() && latin_words(clerk).is_empty(),
                    "{backend}: the clerk is named: {submitted}"
                );
            }
            let archived = history.iter().find(|e| e["kind"] == "CaseArchived").unwrap();
            let day = contracts::day_of(archived["occurred_at"].as_i64().unwrap());
            months.insert(hub_core::calendar::iso_date(day)[..7].to_string());
            let flow = desk.get(format!("/api/v1/cases/{number}/flow")).await.1;
            for step in flow["flow"].as_array().unwrap() {
                for part in ["from", "giver", "to", "receiver"] {
                    let text = step[part].as_str().unwrap();
                    let coded = text.is_empty() || text.chars().filter(char::is_ascii_digit).count() >= 12;
                    assert!(
                        !coded && latin_words(text).is_empty(),
                        "{backend}: {number} flow names no one by code: {step}"
                    );
                }
            }
        }
        for kind in [
            "application",
            "acceptance_notice",
            "tolerant_acceptance_notice",
            "refusal",
            "one_time_notice",
            "site_inspection",
            "site_inspection_record",
            "hearing",
            "hearing_record",
            "opinion",
            "approval",
            "denial",
            "delivery_receipt",
            "pickup_notice",
            "pickup_record",
            "archive_index",
            "commitment",
            "extension",
            "hearing_rights",
            "supervision_order",
            "supervision_answer",
        ] {
            assert!(kinds.contains(kind), "{backend}: no {kind} among {kinds:?}");
        }
        let mut listed = 0;
        for month in &months {
            let (status, answer) = desk.get(format!("/api/v1/archive/hand-in?month={month}")).await;
            assert_eq!(status, 200, "{answer}");
            for list in answer["lists"].as_array().unwrap() {
                assert!(!list["handed_in_by"].as_str().unwrap().is_empty(), "{list}");
                for line in list["lines"].as_array().unwrap() {
                    assert!(line["file_number"].as_str().unwrap().starts_with("J045-WS·"), "{line}");
                    assert!(numbers.iter().any(|n| n == line["case_number"].as_str().unwrap()), "{line}");
                    listed += 1;
                }
            }
        }
        assert_eq!(listed, numbers.len(), "{backend}: each closed file is handed in once");
        // The same list from the command line, as an archivist would print it.
        let month = months.iter().next().unwrap();
        let token = self.demo.staff.token(hub_core::access::Role::Supervisor, None).await.unwrap();
        let printed = std::process::Command::new(env!("CARGO_BIN_EXE_hub"))
            .args(["archive-hand-in", "--api", self.demo.api_url(), "--month", month.as_str()])
            .env("HUB_TOKEN", token)
            .output()
            .unwrap();
        assert!(printed.status.success(), "{backend}: {}", String::from_utf8_lossy(&printed.stderr));
        let printed: Value = serde_json::from_slice(&printed.stdout).unwrap();
        let (_, answered) = desk.get(format!("/api/v1/archive/hand-in?month={month}")).await;
        assert_eq!(printed, answered, "{backend}");
        let (status, answer) = desk.get("/api/v1/archive/hand-in?month=2026-13".into()).await;
        assert_eq!((status, answer["field"].as_str()), (400, Some("month")), "{answer}");
    }
}

/// Words of three or more Latin letters in a page's text (its head and tags left out): a
/// document for the applicant is in Chinese. Codes (archive numbers, credit codes: anything
/// with a digit in it) may hold letters.
/// The messages the server received since it held `before` (the same message may come twice).
fn received_since(smtp: &SmtpServer, before: &[(String, String, String)]) -> Vec<(String, String, String)> {
    let mut seen = before.to_vec();
    let mut fresh = smtp.messages();
    fresh.retain(|message| match seen.iter().position(|m| m == message) {
        Some(i) => {
            seen.swap_remove(i);
            false
        }
        None => true,
    });
    fresh
}

/// Latin words of a document's text; the review link it prints is an address, not words.
fn latin_words(html: &str) -> Vec<String> {
    let body = html.split_once("</head>").map_or(html, |(_, body)| body);
    let body: String = body.split_whitespace().filter(|word| !word.starts_with("http")).collect::<Vec<_>>().join(" ");
    let mut text = String::new();
    let mut in_tag = false;
    for c in body.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.split(|c: char| !(c.is_ascii_alphanumeric() || "-_·/.".contains(c)))
        .filter(|token| !token.chars().any(|c| c.is_ascii_digit()))
        .filter(|token| token.chars().filter(char::is_ascii_alphabetic).count() >= 3)
        .map(String::from)
        .collect()
}
