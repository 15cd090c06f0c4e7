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
use hub_cli::demo::DemoRun;
use serde_json::{json, Value};

const SELF_EMPLOYED: &str = "11610429MB2912345A4000104010000";
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
        day.overdue_warnings_are_mailed_once(&smtp, &Earlier { mailed, tolerated, commitment, heard }).await;
        day.reviews_are_counted_per_service_point().await;
        day.the_flow_record_names_every_hand_over(&parallel).await;
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

    /// Complete materials, mailed, signed for; then a very dissatisfied online review.
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
        let (status, _) =
            desk.command(&mailed, "reviews", json!({"grade": 1, "channel": "online", "comment": "材料跑了两趟"})).await;
        assert_eq!(status, 200);
        assert_eq!(
            desk.command(&mailed, "reviews", json!({"grade": 5, "channel": "online"})).await.0,
            409,
            "{backend}: one online review per case"
        );
        let record = desk.case(&mailed).await;
        let item = record["case"]["rectifications"][0]["item_number"].as_str().unwrap().to_string();
        let close = json!({"item_number": item, "officer": "县政务服务监督科", "feedback": "已整改：窗口一次性告知到位，已回访"});
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
        desk.wait_for(&supplemented, "awaiting_pickup").await;
        let stranger = json!({"collected_by": "李四", "id_number": "110105194912310038", "signature": "sig"});
        assert_eq!(
            desk.command(&supplemented, "pickup", stranger).await.0,
            403,
            "{backend}: only the applicant collects"
        );
        let applicant = json!({"collected_by": "张三", "id_number": APPLICANT_ID, "signature": "签名影像 sha256:9f2c"});
        assert_eq!(desk.command(&supplemented, "pickup", applicant).await.0, 200);
        desk.wait_for(&supplemented, "archived").await;
        let titles = desk.titles(&supplemented).await;
        assert!(
            titles.contains(&"一次性告知单".to_string()) && titles.contains(&"办件结果领取签收记录".to_string()),
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
        let code = record["case"]["pickup"]["code"].as_str().unwrap().to_string();
        assert_eq!(
            desk.command(&tolerated, "pickup", json!({"collected_by": "张三", "pickup_code": "x"})).await.0,
            403
        );
        assert_eq!(
            desk.command(&tolerated, "pickup", json!({"collected_by": "张三", "pickup_code": code})).await.0,
            200
        );
        desk.wait_for(&tolerated, "archived").await;
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
        let inspection = json!({"procedure": "site_inspection", "officer": "赵踏勘", "departments": ["11610429MB2912345A", "11610429MB2912346B"]});
        assert_eq!(desk.command(&inspected, "procedures", inspection).await.0, 200);
        assert_eq!(
            desk.decide(&inspected, "approved", None).await.0,
            409,
            "{backend}: no decision while a special procedure runs"
        );
        let done = json!({"officer": "赵踏勘", "summary": "经营场所与申请材料一致，设备布局符合要求"});
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
        let hearing = json!({"procedure": "hearing", "officer": "钱听证", "parties": ["相邻住户李四"]});
        assert_eq!(desk.command(&heard, "procedures", hearing).await.0, 200);
        desk.command(
            &heard,
            "procedures/complete",
            json!({"officer": "钱听证", "summary": "相邻住户反映油烟扰民，申请人未能提出防治措施"}),
        )
        .await;
        assert_eq!(desk.decide(&heard, "denied", None).await.0, 422, "{backend}: a denial states its reasons");
        assert_eq!(desk.decide(&heard, "denied", Some("经听证，油烟排放不符合要求")).await.0, 200);
        desk.wait_for(&heard, "archived").await;
        let titles = desk.titles(&heard).await;
        let denial = titles.iter().position(|t| t == "不予行政许可决定书").unwrap() + 1;
        let html = desk.document(&heard, denial).await;
        assert!(html.contains("行政复议") && html.contains("油烟排放不符合要求"), "{backend}");
        assert!(titles.contains(&"听证通知书".to_string()) && titles.contains(&"听证笔录".to_string()));
        heard
    }

    /// A parallel approval at the county hall; the mail fails and the result comes back to the window.
    async fn parallel_approval_returned_to_the_window(&self) -> String {
        let Day { backend, desk, .. } = self;
        let parallel = desk.submit(&self.id("parallel"), CONSTRUCTION, COUNTY_HALL, json!({})).await;
        desk.wait_for(&parallel, "routed").await;
        assert_eq!(desk.decide(&parallel, "approved", None).await.0, 409, "{backend}: opinions first");
        for department in ["11610429MB291234AF", "11610429MB291234CH"] {
            let opinion = json!({"department_code": department, "officer": "孙", "opinion": "agree"});
            assert_eq!(desk.command(&parallel, "opinions", opinion).await.0, 200);
        }
        let faults_url = format!("{}/admin/faults", self.demo.postal_url());
        let fail_all = Faults { failed_delivery_rate: 1.0, ..Faults::default() };
        assert!(desk.client.put(&faults_url).json(&fail_all).send().await.unwrap().status().is_success());
        assert_eq!(desk.decide(&parallel, "approved", None).await.0, 200);
        let record = desk.wait_for(&parallel, "awaiting_pickup").await;
        assert!(desk.client.put(&faults_url).json(&Faults::default()).send().await.unwrap().status().is_success());
        assert_eq!(record["case"]["delivery_outcome"], "returned");
        desk.command(
            &parallel,
            "pickup",
            json!({"collected_by": "张三", "id_number": APPLICANT_ID, "signature": "sig"}),
        )
        .await;
        desk.wait_for(&parallel, "archived").await;
        parallel
    }

    /// An overdue case: red warning, to the handler and the supervisor, once.
    async fn overdue_warnings_are_mailed_once(&self, smtp: &SmtpServer, earlier: &Earlier) {
        let Day { backend, desk, demo } = self;
        let Earlier { mailed, tolerated, commitment, heard, .. } = earlier;
        let overdue = desk.submit(&self.id("overdue"), SELF_EMPLOYED, VILLAGE, json!({})).await;
        let record = desk.wait_for(&overdue, "routed").await;
        let promised = record["case"]["promised_date"].as_i64().unwrap() as i32;
        let the_day_after = |day: i32| (i64::from(day) + 1) * 86_400_000 + 2 * 3_600_000;
        let late = the_day_after(promised.max(*commitment));
        hub::app::deadlines::check_deadlines(&demo.hub.store, &demo.hub.reference.get(), late).await.unwrap();
        hub::app::deadlines::check_deadlines(&demo.hub.store, &demo.hub.reference.get(), late).await.unwrap();
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

        // The warnings reach the mailboxes through SMTP: handler and supervisor for red.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let messages = smtp.messages();
            let red: Vec<_> = messages.iter().filter(|(_, subject, _)| subject.contains(&overdue)).collect();
            if red.len() == 2 {
                let recipients: Vec<&str> = red.iter().map(|(to, _, _)| to.as_str()).collect();
                assert!(recipients.contains(&"duban@xunyi.gov.cn"), "{recipients:?}");
                assert!(recipients.contains(&"11610429mb2912345a@xunyi.gov.cn"), "{recipients:?}");
                assert!(red
                    .iter()
                    .all(|(_, subject, body)| subject.contains("红色预警") && body.contains("已超过承诺办结日期")));
                break;
            }
            assert!(Instant::now() < deadline, "{backend}: red warning mails: {red:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let sent = demo.hub.store.notifications().await.unwrap();
        assert!(
            sent.iter().filter(|n| n.0.starts_with(&overdue)).all(|n| n.4 == "sent" && n.3 == 1),
            "{backend}: {sent:?}"
        );
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
            "交邮寄送",
            "投递失败退回",
            "待领取",
            "领取",
            "归档",
        ] {
            assert!(actions.contains(&action), "{backend}: {action} missing from {actions:?}");
        }
    }
}
