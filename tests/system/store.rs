//! The store on SQLite and PostgreSQL: idempotent submission, idempotent consumers, optimistic
//! concurrency, and the outbox re-publishing what some consumer has not applied.
use crate::common;

use std::sync::Arc;

use bus::{BatchHandler, Delivery, Effect, Outbox, OutboxStore};
use connectors::framework::control::{ConnectorControl, SavedControl};
use contracts::{Applicant, Catalogue, Event};
use hub::app::cases::CaseProcessor;
use hub::app::intake::{submit_application, submit_applications, DeliveryChoice, SubmitApplication};
use hub::app::reference::CurrentReference;
use hub::store::Store;
use hub_core::{CaseState, Reference};

pub fn application(reference: &Reference, request_id: &str) -> SubmitApplication {
    let matter = reference.matter("11610429MB2912345A4000104010000").unwrap();
    SubmitApplication {
        certificates: Vec::new(),
        request_id: request_id.into(),
        matter_code: matter.implementation_code.clone(),
        service_point: "610429100201".into(),
        channel: "counter".into(),
        applicant: Applicant {
            name: "张三".into(),
            id_type: "111".into(),
            id_number: "11010519491231002X".into(),
            phone: "13912345678".into(),
            email: None,
        },
        materials: matter.materials.iter().map(|m| m.name.clone()).collect(),
        faulty_materials: Vec::new(),
        commits_to_supply: false,
        domicile_township: None,
        fee_relief: None,
        window: None,
        delivery: DeliveryChoice { method: "mail".into(), address: Some(common::postal_address("张三", "711300")) },
        received_by: "刘代办".into(),
    }
}

fn delivery(event: Event) -> Delivery {
    Delivery { topic: "t".into(), partition: 0, offset: 0, event }
}

async fn outbox_events(store: &Store) -> Vec<Event> {
    let ids = store.unpublished_ids(0, 10_000).await.unwrap();
    store.messages(&ids).await.unwrap().iter().map(|m| contracts::decode(&m.payload).unwrap()).collect()
}

#[tokio::test]
async fn the_store_keeps_its_promises_on_every_backend() {
    let dir = tempfile::tempdir().unwrap();
    let reference = Arc::new(Reference::builtin());
    for (backend, url) in common::databases(&dir).await {
        let store = Store::connect(&url, Arc::new(Catalogue::builtin())).await.unwrap();
        // Migrating twice is harmless.
        let store_again = Store::connect(&url, Arc::new(Catalogue::builtin())).await.unwrap();
        drop(store_again);

        // Submission is idempotent on the client's request id.
        let first = submit_application(&store, &reference, &application(&reference, "r-1")).await.unwrap();
        let again = submit_application(&store, &reference, &application(&reference, "r-1")).await.unwrap();
        assert!(first.created && !again.created, "{backend}");
        assert_eq!(first.case.case_number, again.case.case_number);
        assert!(first.case.case_number.starts_with("610429"), "{backend}");
        let other = submit_application(&store, &reference, &application(&reference, "r-2")).await.unwrap();
        assert_ne!(other.case.case_number, first.case.case_number);

        let with_requests = store
            .cases_with_requests(&[&first.case.case_number, &first.case.case_number, "610429000000009999"])
            .await
            .unwrap();
        assert_eq!(with_requests.len(), 1, "{backend}: each existing case once");
        assert_eq!(with_requests[0].0, "r-1", "{backend}");

        // Matter versions from the platform's catalogue survive a restart.
        let mut revised = Reference::builtin();
        let mut changed = revised.matter("11610429MB2912345A4000104010000").unwrap().clone();
        changed.promised_days = 2;
        let new_versions = revised.revise(vec![changed]);
        store.save_matter_versions(&new_versions).await.unwrap();
        assert_eq!(store.matter_versions().await.unwrap(), new_versions, "{backend}");
        // Another instance keeping the same version number later changes nothing: kept once, as first written.
        let mut rival = new_versions.clone();
        rival[0].promised_days = 3;
        store.save_matter_versions(&rival).await.unwrap();
        assert_eq!(store.matter_versions().await.unwrap(), new_versions, "{backend}: a version is written once");

        // Each application is examined in the transaction that opens its case: accepted,
        // routed and its text requested, all in the outbox together.
        let record = store.case(&first.case.case_number).await.unwrap().unwrap();
        assert_eq!(record.case.state, CaseState::Routed, "{backend}: accepted and routed as it was opened");
        assert_eq!(first.case.state, CaseState::Routed, "{backend}: the submitter is told so");
        let kinds: Vec<&str> = record.history.iter().map(|h| h.kind.as_str()).collect();
        assert_eq!(kinds, ["ApplicationSubmitted", "CaseAccepted", "CaseRouted", "SmsRequested"], "{backend}");
        let submitted = outbox_events(&store).await;
        assert_eq!(submitted.len(), 8, "{backend}: both cases' four events");

        // A consumer applies an event once, however often it is delivered: the SMS gateway's
        // word that the acceptance text went out, four times in two batches.
        let delivery_group = CaseProcessor {
            consumer: "hub-delivery".into(),
            store: store.clone(),
            reference: CurrentReference::new(Reference::builtin()),
        };
        let sent = Event::SmsSent(contracts::SmsSent {
            event_id: format!("sms/{}", record.case.texts[0].message_id),
            case_number: first.case.case_number.clone(),
            occurred_at: hub::store::now_ms(),
            message_id: record.case.texts[0].message_id.clone(),
            gateway_id: "gw-1".into(),
            template: record.case.texts[0].template.clone(),
            version: 1,
        });
        let batch = vec![delivery(sent.clone()), delivery(sent)];
        assert!(delivery_group.handle(&batch).await.unwrap().is_empty(), "{backend}");
        assert!(delivery_group.handle(&batch).await.unwrap().is_empty(), "{backend}");
        let record = store.case(&first.case.case_number).await.unwrap().unwrap();
        let kinds: Vec<&str> = record.history.iter().map(|h| h.kind.as_str()).collect();
        assert_eq!(
            kinds,
            ["ApplicationSubmitted", "CaseAccepted", "CaseRouted", "SmsRequested", "SmsSent"],
            "{backend}: no duplicates"
        );
        assert_eq!(outbox_events(&store).await.len(), 8, "{backend}: a fact recorded is not news");

        // The deadline timer lives in the database: a store opened afresh, as after a restart,
        // finds the case due on its day and not before.
        let timer = record.case.timer_day.expect("a timer is armed at acceptance");
        assert!(timer <= record.case.promised_date.unwrap(), "{backend}: the first warning comes by the promised date");
        let restarted = Store::connect(&url, Arc::new(Catalogue::builtin())).await.unwrap();
        assert!(
            restarted.cases_with_timer_due(timer, 100).await.unwrap().contains(&first.case.case_number),
            "{backend}"
        );
        assert!(restarted.cases_with_timer_due(timer - 1, 100).await.unwrap().is_empty(), "{backend}");
        drop(restarted);

        // An event for a case that does not exist is rejected with a reason, not retried forever.
        let Event::ApplicationSubmitted(mut ghost) = submitted[0].clone() else { unreachable!() };
        ghost.case_number = "610429000000000000".into();
        ghost.event_id = "ghost/1".into();
        let rejected = delivery_group.handle(&[delivery(ghost.into())]).await.unwrap();
        assert_eq!(rejected.len(), 1, "{backend}");
        assert!(rejected[0].reason.contains("does not exist"), "{backend}: {}", rejected[0].reason);

        // Optimistic concurrency: a stale writer fails and changes nothing.
        let mut tx = store.begin().await.unwrap();
        let case = tx.load_cases(&[&first.case.case_number]).await.unwrap().remove(&first.case.case_number).unwrap();
        assert!(tx.update_cases(&[(&case, case.seq - 1)]).await.is_err(), "{backend}");
        drop(tx);

        // The connector side of the outbox: each source applied once, even twice in one call.
        let effect = |id: &str| Effect { source_event_id: id.into(), events: vec![] };
        let fresh = store.apply_all("postal-connector", &[effect("x/1"), effect("x/2"), effect("x/1")]).await.unwrap();
        assert_eq!(fresh, [true, true, false], "{backend}");
        assert_eq!(
            store.apply_all("postal-connector", &[effect("x/2"), effect("x/3")]).await.unwrap(),
            [false, true],
            "{backend}"
        );
        let applied = Outbox::applied_among(&store, "postal-connector", &["x/1", "x/3", "x/4"]).await.unwrap();
        assert_eq!(applied, ["x/1".to_string(), "x/3".to_string()].into_iter().collect(), "{backend}");
        // Several connectors' calls gathered into one transaction: each consumer keeps its own
        // record, and a source twice in the group is applied once.
        let gathered = store
            .apply_each(&[
                ("postal-connector", &[effect("x/3"), effect("x/5")][..]),
                ("bank-connector", &[effect("x/3")][..]),
                ("postal-connector", &[effect("x/5")][..]),
            ])
            .await
            .unwrap();
        assert_eq!(gathered, [vec![false, true], vec![true], vec![false]], "{backend}");

        // Publish everything, then restart: what some consumer has not applied is sent again,
        // what every consumer applied is settled.
        let unreported = submit_application(&store, &reference, &application(&reference, "r-5")).await.unwrap();
        let ids = store.unpublished_ids(0, 100).await.unwrap();
        store.mark_published(&ids).await.unwrap();
        assert!(store.unpublished_ids(0, 100).await.unwrap().is_empty(), "{backend}");
        // The broker published to is remembered, one at a time.
        assert_eq!(store.broker_cluster().await.unwrap(), None, "{backend}");
        store.keep_broker_cluster("first").await.unwrap();
        store.keep_broker_cluster("second").await.unwrap();
        assert_eq!(store.broker_cluster().await.unwrap().as_deref(), Some("second"), "{backend}");
        let published: Vec<Event> =
            store.messages(&ids).await.unwrap().iter().map(|m| contracts::decode(&m.payload).unwrap()).collect();
        let all: Vec<Effect> = published.iter().map(|e| effect(e.event_id())).collect();
        // The notifier went through all of it and the SMS connector sent the texts; the
        // province connector reported all but the receipt of case r-5.
        store.apply_all("hub-notifier", &all).await.unwrap();
        store.apply_all("sms-connector", &all).await.unwrap();
        let unreported_receipt = hub_core::ids::case_event(&unreported.case.case_number, 1);
        let reported: Vec<Effect> =
            published.iter().map(|e| e.event_id()).filter(|id| *id != unreported_receipt).map(effect).collect();
        store.apply_all("province-connector", &reported).await.unwrap();
        let (republished, settled) = store.resettle_outbox().await.unwrap();
        assert_eq!(
            (republished, settled),
            (1, ids.len() as u64 - 1),
            "{backend}: 1 receipt pending for the province connector, the rest settled"
        );
        let pending = outbox_events(&store).await;
        assert_eq!(
            pending.iter().map(|e| e.event_id()).collect::<Vec<_>>(),
            [unreported_receipt.as_str()],
            "{backend}"
        );
        assert_eq!(store.resettle_outbox().await.unwrap(), (0, 0), "{backend}: nothing published since");

        // Group intake: one transaction for several submissions, repeats answered with their case.
        let group = ["r-3", "r-1", "r-4", "r-3"].map(|id| application(&reference, id));
        let outcomes = submit_applications(&store, &reference, &group).await.unwrap();
        assert_eq!(outcomes.iter().map(|o| o.created).collect::<Vec<_>>(), [true, false, true, false], "{backend}");
        assert_eq!(outcomes[1].case.case_number, first.case.case_number, "{backend}");
        assert_eq!(outcomes[3].case.case_number, outcomes[0].case.case_number, "{backend}");
        let numbers: std::collections::HashSet<_> = [&first, &other, &unreported, &outcomes[0], &outcomes[2]]
            .iter()
            .map(|s| s.case.case_number.clone())
            .collect();
        assert_eq!(numbers.len(), 5, "{backend}: serial numbers are not reused");

        // Connector incidents and pauses outlive the process: a journal written by one control
        // restores the next.
        let (journal, mut changes) = tokio::sync::mpsc::unbounded_channel();
        let control = ConnectorControl::restore("bank-connector", SavedControl::default(), Some(journal));
        control.raise_incident("HTTP 503");
        control.applied();
        control.raise_incident("connection refused");
        control.pause("银行系统升级");
        while let Ok(change) = changes.try_recv() {
            store.keep_control_change(&change).await.unwrap();
        }
        let mut saved = store.saved_controls().await.unwrap();
        let restored =
            ConnectorControl::restore("bank-connector", saved.remove("bank-connector").unwrap(), None).status();
        let kept = control.status();
        assert_eq!(
            (&restored.state, &restored.paused_reason, &restored.incidents),
            (&kept.state, &kept.paused_reason, &kept.incidents),
            "{backend}"
        );
        assert_eq!(
            restored.incidents.iter().map(|i| i.resolved_by.as_deref()).collect::<Vec<_>>(),
            [Some("recovered"), None],
            "{backend}"
        );
        assert!(restored.incidents[0].id < restored.incidents[1].id, "{backend}: numbered in order");
        control.resume();
        while let Ok(change) = changes.try_recv() {
            store.keep_control_change(&change).await.unwrap();
        }
        let saved = store.saved_controls().await.unwrap();
        assert_eq!(saved["bank-connector"].paused_reason, None, "{backend}: resumed");
        assert!(saved["bank-connector"].incidents.iter().all(|i| i.resolved_at.is_some()), "{backend}");
    }
}

/// On SQLite the store copies its write-ahead log into the database file itself, beside the
/// writer (no commit waits for that copy): committed cases reach the file on their own.
#[tokio::test]
async fn sqlite_copies_its_log_into_the_database_file_beside_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let reference = Reference::builtin();
    let url = format!("sqlite://{}", dir.path().join("hub.db").display());
    let store = Store::connect(&url, Arc::new(Catalogue::builtin())).await.unwrap();
    let requests: Vec<SubmitApplication> =
        (0..200).map(|n| application(&reference, &format!("checkpoint-{n}"))).collect();
    let opened = submit_applications(&store, &reference, &requests).await.unwrap();
    let last = opened.last().unwrap().case.case_number.clone();
    // The file alone, without its log, as a backup of just the database file would hold it.
    let copy = dir.path().join("file-alone.db");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        std::fs::copy(dir.path().join("hub.db"), &copy).unwrap();
        // A copy made halfway through a checkpoint is malformed, and opening it retries until
        // the pool gives up (30 s): a fresh copy is the better try.
        let copy_url = format!("sqlite://{}", copy.display());
        let opening = Store::connect(&copy_url, Arc::new(Catalogue::builtin()));
        let found = match tokio::time::timeout(std::time::Duration::from_secs(2), opening).await {
            Ok(Ok(alone)) => alone.snapshot(&last).await.ok().flatten().is_some(),
            _ => false,
        };
        if found {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "case {last} never reached the database file");
        for leftover in ["file-alone.db", "file-alone.db-wal", "file-alone.db-shm"] {
            let _ = std::fs::remove_file(dir.path().join(leftover));
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
