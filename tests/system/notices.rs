//! Applicants who give an e-mail address get their notices by mail — one-time notice, acceptance,
//! decision, delivery — through a real SMTP server process (aiosmtpd), from the versioned
//! templates; every send is recorded with its template, version and outcome.
use crate::common;

use std::time::{Duration, Instant};

use common::desk::{demo_options, Desk, APPLICANT_ID};
use common::smtp::SmtpServer;
use hub::config::Config;
use hub_cli::demo::DemoRun;
use serde_json::json;

const SELF_EMPLOYED: &str = "11610429MB2912345A4000104010000";
const VILLAGE: &str = "610429100201";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applicants_get_their_notices_by_mail_from_versioned_templates() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start(dir.path());
    for (backend, url) in common::databases(&dir).await {
        let mut config = Config::default();
        config.database.url = url;
        config.api.listen = "127.0.0.1:0".into();
        config.mail.smtp_url = format!("smtp://127.0.0.1:{}", smtp.port);
        config.province.catalogue_sync_seconds = 0;
        let demo = DemoRun::start(config, &demo_options(dir.path())).await.unwrap();
        let desk = Desk::new(&demo);
        let address = format!("zhangsan.{backend}@example.cn");
        let applicant = |email: &str| json!({"name": "张三", "id_type": "111", "id_number": APPLICANT_ID, "phone": "13912345678", "email": email});

        // A bad address is named at the counter.
        let (status, answer) = desk
            .call(
                "/api/v1/applications",
                json!({
                    "request_id": format!("{backend}-bad-mail"), "matter_code": SELF_EMPLOYED, "service_point": VILLAGE,
                    "applicant": applicant("zhangsan at example"), "materials": [], "delivery": {"method": "window"},
                }),
            )
            .await;
        assert_eq!((status, answer["field"].as_str()), (422, Some("applicant.email")), "{backend}: {answer}");

        // Incomplete, supplemented, approved, mailed and signed for: four notices.
        let materials: Vec<String> =
            demo.hub.reference.get().matter(SELF_EMPLOYED).unwrap().materials.iter().map(|m| m.name.clone()).collect();
        let case = desk
            .submit(
                &format!("{backend}-mailed"),
                SELF_EMPLOYED,
                VILLAGE,
                json!({"applicant": applicant(&address), "materials": materials[1..]}),
            )
            .await;
        desk.wait_for(&case, "awaiting_supplement").await;
        assert_eq!(desk.command(&case, "supplements", json!({"materials": [materials[0]]})).await.0, 200);
        desk.wait_for(&case, "routed").await;
        assert_eq!(desk.decide(&case, "approved", None).await.0, 200);
        desk.wait_for(&case, "archived").await;
        // And one applicant without an address, who gets none.
        let silent = desk.submit(&format!("{backend}-silent"), SELF_EMPLOYED, VILLAGE, json!({})).await;
        desk.wait_for(&silent, "routed").await;

        let deadline = Instant::now() + Duration::from_secs(30);
        let mails = loop {
            let mails: Vec<_> = smtp.messages().into_iter().filter(|(to, _, _)| to.contains(&address)).collect();
            if mails.len() >= 4 {
                break mails;
            }
            assert!(Instant::now() < deadline, "{backend}: the applicant's notices: {mails:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let subject = |start: &str| {
            mails
                .iter()
                .find(|(_, subject, _)| subject.starts_with(start))
                .unwrap_or_else(|| panic!("{backend}: no {start} mail in {mails:?}"))
        };
        let (_, _, notice) = subject("一次性告知");
        assert!(
            notice.contains(&format!("1. {}：未提交", materials[0])) && notice.contains(&case),
            "{backend}: {notice}"
        );
        let (_, _, accepted) = subject("受理通知");
        assert!(accepted.contains("承诺办结日期") && accepted.contains("029-34421234"), "{backend}: {accepted}");
        let (_, _, decided) = subject("准予许可");
        assert!(decided.contains("准予许可决定"), "{backend}: {decided}");
        let (_, _, delivered) = subject("已签收");
        assert!(delivered.contains("签收") && delivered.contains("模板 delivery 第 1 版"), "{backend}: {delivered}");
        assert_eq!(mails.len(), 4, "{backend}: each notice once: {mails:?}");

        // A send is recorded just after the server took the mail: waited for.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let sent = loop {
            let sent = demo.hub.store.notifications().await.unwrap();
            if sent.iter().filter(|n| n.1 == address).count() >= 4 || std::time::Instant::now() > deadline {
                break sent;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let mut templates: Vec<(&str, i64, &str)> =
            sent.iter().filter(|n| n.1 == address).map(|n| (n.2.as_str(), n.3, n.4.as_str())).collect();
        templates.sort();
        assert_eq!(
            templates,
            [
                ("acceptance", 1, "sent"),
                ("decision", 1, "sent"),
                ("delivery", 1, "sent"),
                ("one-time-notice", 1, "sent")
            ],
            "{backend}"
        );
        assert!(
            !sent.iter().any(|n| n.0.starts_with(&silent)),
            "{backend}: nothing for an applicant without an address"
        );
        demo.stop().await;
    }
}

/// The same warning twice in one batch (a redelivery), then again in a later batch (after a
/// crash): mailed once to each recipient, recorded once, on either database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warning_delivered_twice_in_one_batch_is_mailed_once() {
    use bus::{BatchHandler as _, Delivery};
    use contracts::{Catalogue, DeadlineWarning};
    use hub::app::notifier::{MailConfig, Notifier};
    use hub::store::Store;
    use hub_core::Reference;
    use std::sync::Arc;

    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start(dir.path());
    for (backend, url) in common::databases(&dir).await {
        let store = Store::connect(&url, Arc::new(Catalogue::builtin())).await.unwrap();
        let mail = MailConfig { smtp_url: format!("smtp://127.0.0.1:{}", smtp.port), ..MailConfig::default() };
        let notifier = Notifier::new(&mail, store.clone(), Arc::new(Reference::builtin())).unwrap();
        let case_number = format!("61042920261120{}", if backend == "sqlite" { "900001" } else { "900002" });
        let warning = DeadlineWarning {
            event_id: format!("{case_number}/7"),
            case_number: case_number.clone(),
            occurred_at: 1_795_140_000_000,
            level: "red".into(),
            scope: "case".into(),
            step: None,
            due_date: 20_777,
            department_code: "11610429MB2912345A".into(),
            escalate: true,
            message: "已超过承诺办结日期".into(),
        };
        let delivery = |offset| Delivery {
            topic: "hub.cases.lifecycle".into(),
            partition: 0,
            offset,
            event: warning.clone().into(),
        };
        assert!(notifier.handle(&[delivery(1), delivery(2)]).await.unwrap().is_empty(), "{backend}");
        assert!(notifier.handle(&[delivery(1)]).await.unwrap().is_empty(), "{backend}: again after a crash");
        let deadline = Instant::now() + Duration::from_secs(10);
        let mailed = loop {
            let mailed: Vec<String> = smtp
                .messages()
                .into_iter()
                .filter(|(_, subject, _)| subject.contains(&case_number))
                .map(|(to, _, _)| to)
                .collect();
            if mailed.len() >= 2 || Instant::now() > deadline {
                break mailed;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        // Give a second copy the time to arrive, if one were on its way.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let again = smtp.messages().into_iter().filter(|(_, subject, _)| subject.contains(&case_number)).count();
        assert_eq!((mailed.len(), again), (2, 2), "{backend}: handler and supervisor, once each: {mailed:?}");
        let recorded: Vec<_> =
            store.notifications().await.unwrap().into_iter().filter(|n| n.0 == warning.event_id).collect();
        assert_eq!(recorded.len(), 2, "{backend}: {recorded:?}");
    }
}
