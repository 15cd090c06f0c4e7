//! The data bureau's ledger on each database: every exchange the demo makes is in it, and every
//! administrative action; checkpoints are signed and an entry's proof checks offline; the
//! bureau finds a person's entries by ID number; and rows edited, deleted, reordered or
//! inserted directly in the database are caught, naming the first bad entry.
use crate::common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use contracts::catalogue::DEAD_LETTER_TOPIC;
use contracts::{Catalogue, Event, LedgerCheckpointSigned};
use hub::app::audit::{check_archive_series, check_offline, signing_key, Archive, EntryProof, ExportBundle, Ledger};
use hub::config::Config;
use hub::store::Store;
use hub_cli::demo::DemoRun;
use hub_core::access::{decider_of, CaseScope, Role};
use hub_core::anomaly::{AnomalyRules, Detector};
use hub_core::calendar::Calendar;
use hub_core::ledger::{Entry, EntryKind};
use rdkafka::message::Message as _;
use serde_json::{json, Value};
use sqlx::AnyPool;

const TOPIC: &str = "hub.audit.data-sharing";
const CASES: usize = 40;

/// Every data-sharing event id on the audit topic, and the checkpoints published there: read
/// until nothing more comes for a while.
async fn audit_topic(demo: &DemoRun) -> (BTreeSet<String>, Vec<LedgerCheckpointSigned>) {
    let consumer =
        bus::OffRuntimeDrop::new(demo.hub.bus.consumer(&format!("test-{}", uuid::Uuid::now_v7()), &[TOPIC]).unwrap());
    let (mut ids, mut checkpoints) = (BTreeSet::new(), Vec::new());
    while let Ok(message) = tokio::time::timeout(Duration::from_secs(3), consumer.recv()).await {
        match contracts::decode(message.unwrap().payload().unwrap()).unwrap() {
            Event::DataShared(shared) => {
                ids.insert(shared.event_id);
            }
            Event::LedgerCheckpointSigned(checkpoint) => checkpoints.push(checkpoint),
            other => panic!("{TOPIC} carries {other:?}"),
        }
    }
    consumer.close().await;
    (ids, checkpoints)
}

async fn ledger_entries(store: &Store) -> Vec<Entry> {
    let mut entries = Vec::new();
    store.walk_ledger(|row| entries.push(serde_json::from_slice(&row.body).unwrap())).await.unwrap();
    entries
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_holds_every_exchange_and_action_and_catches_tampering() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let dir = tempfile::tempdir().unwrap();
    for (backend, url) in common::databases(&dir).await {
        let mut config = Config::default();
        config.database.url = url.clone();
        config.api.listen = "127.0.0.1:0".into();
        config.audit.subject_key = "county key".into();
        config.audit.signing_key = "11".repeat(32);
        let mut options = common::desk::demo_options(dir.path());
        options.cases = CASES;
        options.mix = true;
        options.concurrency = 8;
        let demo = DemoRun::start(config.clone(), &options).await.unwrap();
        let summary = tokio::time::timeout(Duration::from_secs(180), demo.drive(&options))
            .await
            .expect("the demo finished")
            .unwrap();
        assert_eq!(summary.completed, CASES, "{backend}");
        let api = demo.api_url().to_string();
        let integrator = common::client_with(&common::token(&demo.hub, "王集成", Role::Integrator, None).await);
        let other_integrator = common::client_with(&common::token(&demo.hub, "陈集成", Role::Integrator, None).await);
        let client = common::client_with(&common::token(&demo.hub, "赵数据", Role::DataBureau, None).await);

        // Administrative actions, allowed or refused, are entries naming the token's holder.
        let pause = integrator
            .post(format!("{api}/api/v1/connectors/bank-connector/pause"))
            .header("x-officer", "冒名者")
            .json(&json!({"reason": "银行系统升级"}));
        assert_eq!(pause.send().await.unwrap().status(), 200);
        assert_eq!(
            integrator.post(format!("{api}/api/v1/connectors/nonesuch/resume")).send().await.unwrap().status(),
            404
        );
        assert_eq!(
            other_integrator
                .post(format!("{api}/api/v1/connectors/bank-connector/resume"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );

        // Every exchange of the demo reaches the ledger, once (the platform's status reports
        // may still be flowing: compared until both sides agree).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let entries = loop {
            let (exchanges, _) = audit_topic(&demo).await;
            assert!(
                exchanges.len() > CASES,
                "{backend}: the demo exchanged data with every counterpart: {}",
                exchanges.len()
            );
            let entries = ledger_entries(&demo.hub.store).await;
            let recorded: BTreeSet<String> = entries
                .iter()
                .filter(|e| e.record.kind == EntryKind::Exchange)
                .map(|e| e.record.source_id.clone())
                .collect();
            if recorded == exchanges {
                break entries;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{backend}: {} exchanges on the topic, {} in the ledger: {:?} {:?}",
                exchanges.len(),
                recorded.len(),
                recorded.difference(&exchanges).collect::<Vec<_>>(),
                exchanges.difference(&recorded).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let actions: Vec<(&str, Option<&str>, &str)> = entries
            .iter()
            .filter(|e| e.record.kind == EntryKind::Admin && e.record.action.contains("/api/v1/connectors/"))
            .map(|e| (e.record.action.as_str(), e.record.requester_officer.as_deref(), e.record.outcome.as_str()))
            .collect();
        assert_eq!(
            actions,
            [
                ("POST /api/v1/connectors/bank-connector/pause", Some("王集成"), "200"),
                ("POST /api/v1/connectors/nonesuch/resume", Some("王集成"), "404"),
                ("POST /api/v1/connectors/bank-connector/resume", Some("陈集成"), "200"),
            ],
            "{backend}: the token names the officer, not a header"
        );
        assert!(
            entries.iter().any(|e| e.record.purpose.contains("银行系统升级")
                && e.record.requester_department == Role::Integrator.title()),
            "{backend}"
        );
        // The hub's start, with the configuration it ran with, is an entry too.
        let started = entries.iter().find(|e| e.record.action == "hub.start").expect("the start is in the ledger");
        assert!(
            started.record.data_items.iter().any(|item| item.starts_with("audit="))
                && started.record.document_sha256.is_some(),
            "{backend}: {started:?}"
        );

        // The bureau's search by ID number: the ledger names people by keyed hash only.
        let person = entries.iter().find_map(|e| e.record.data_subject.clone()).expect("an exchange about a person");
        let found: Vec<Value> = client
            .get(format!("{api}/api/v1/audit/entries"))
            .query(&[("subject", person.as_str())])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(
            !found.is_empty() && found.iter().all(|e| e["data_subject"] == person.as_str()),
            "{backend}: {found:?}"
        );
        let applicant = demo
            .hub
            .store
            .cases_in_state(hub_core::CaseState::Archived, None, &CaseScope::All, hub::store::ListOrder::Oldest, 1)
            .await
            .unwrap()
            .pop()
            .unwrap()
            .application
            .applicant
            .id_number;
        let by_id: Vec<Value> = client
            .get(format!("{api}/api/v1/audit/entries"))
            .query(&[("subject_id", applicant.as_str())])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(!by_id.is_empty(), "{backend}: the applicant's exchanges are found by ID number");
        assert!(
            !serde_json::to_string(&by_id).unwrap().contains(&applicant),
            "{backend}: the ledger never holds the ID number"
        );
        let bad = client.get(format!("{api}/api/v1/audit/entries?from=yesterday")).send().await.unwrap();
        assert_eq!(bad.status(), 400);

        // Daily volume per pair of parties adds up to the exchanges.
        let volume: Vec<Value> =
            client.get(format!("{api}/api/v1/audit/volume")).send().await.unwrap().json().await.unwrap();
        let total: i64 = volume.iter().map(|row| row["exchanges"].as_i64().unwrap()).sum();
        let exchanged = entries.iter().filter(|e| e.record.kind == EntryKind::Exchange).count() as i64;
        let pairs: BTreeSet<(&str, &str)> = volume
            .iter()
            .map(|row| (row["requester_department"].as_str().unwrap(), row["provider"].as_str().unwrap()))
            .collect();
        assert!(
            total >= exchanged && pairs.len() >= 3,
            "{backend}: every counterpart is a pair of parties: {volume:?}"
        );
        assert!(volume.iter().all(|row| row["day"].as_str().unwrap().starts_with("20")), "{backend}: {volume:?}");

        // A checkpoint on demand; the whole ledger verifies; one entry's proof checks offline.
        let checkpoint: Value =
            integrator.post(format!("{api}/api/v1/audit/checkpoints")).send().await.unwrap().json().await.unwrap();
        let verified: Value =
            client.get(format!("{api}/api/v1/audit/verify")).send().await.unwrap().json().await.unwrap();
        assert_eq!(verified["holds"], true, "{backend}: {verified}");
        let public_key: Value =
            client.get(format!("{api}/api/v1/audit/public-key")).send().await.unwrap().json().await.unwrap();
        let trusted = hub::app::audit::public_key(public_key["public_key"].as_str().unwrap()).unwrap();
        assert_eq!(trusted, signing_key(&"11".repeat(32)).unwrap().verifying_key());
        let proven =
            client.get(format!("{api}/api/v1/audit/entries/7/proof")).send().await.unwrap().text().await.unwrap();
        assert!(check_offline(&proven, &trusted).is_ok(), "{backend}: {proven}");
        assert!(check_offline(&checkpoint.to_string(), &trusted).is_ok(), "{backend}");
        // The checkpoint is published on the audit topic too, and checks there with the key alone.
        let (_, published) = audit_topic(&demo).await;
        let on_topic = published
            .iter()
            .find(|c| c.size == checkpoint["size"].as_i64().unwrap())
            .expect("the checkpoint on the audit topic");
        let as_exported = json!({"first_seq": on_topic.first_seq, "size": on_topic.size, "last_hash": on_topic.last_hash, "merkle_root": on_topic.merkle_root, "created_at": on_topic.occurred_at, "public_key": on_topic.public_key, "signature": on_topic.signature});
        assert!(check_offline(&as_exported.to_string(), &trusted).is_ok(), "{backend}: {on_topic:?}");
        let mut forged: EntryProof = serde_json::from_str(&proven).unwrap();
        forged.entry.body = forged.entry.body.replacen("\"seq\":7", "\"seq\":7 ", 1);
        assert!(
            check_offline(&serde_json::to_string(&forged).unwrap(), &trusted).is_err(),
            "{backend}: an altered entry"
        );
        let stranger = signing_key(&"22".repeat(32)).unwrap().verifying_key();
        assert!(check_offline(&proven, &stranger).is_err(), "{backend}: another key");

        // A clerk reads a case file: an entry naming the officer, the purpose and the person.
        let archived = demo
            .hub
            .store
            .cases_in_state(hub_core::CaseState::Archived, None, &CaseScope::All, hub::store::ListOrder::Oldest, 100)
            .await
            .unwrap();
        let case = archived.into_iter().find(|case| case.department_code.is_some()).expect("a decided case");
        let authority = case.department_code.clone().unwrap();
        let approver = common::client_with(
            &common::token(&demo.hub, "李审批", decider_of(&authority, &demo.hub.reference.get()), Some(&authority))
                .await,
        );
        let read = approver.get(format!("{api}/api/v1/cases/{}", case.case_number)).header("x-purpose", "复核办件");
        assert_eq!(read.send().await.unwrap().status(), 200);
        let subject = contracts::data_subject(b"county key", &case.application.applicant.id_number);
        let reads: Vec<Value> = client
            .get(format!("{api}/api/v1/audit/entries"))
            .query(&[("subject", subject.as_str())])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let read = reads.iter().find(|e| e["kind"] == "read").expect("the read is in the ledger");
        assert_eq!(
            (read["requester_officer"].as_str(), read["purpose"].as_str(), read["case_number"].as_str()),
            (Some("李审批"), Some("复核办件"), Some(case.case_number.as_str())),
            "{backend}: {read}"
        );

        // A list of cases shows their applicants: one read entry per case; the same list again
        // that day by the same clerk for the same purpose adds none.
        let supervisor = common::client_with(&common::token(&demo.hub, "周督查", Role::Supervisor, None).await);
        let list =
            || supervisor.get(format!("{api}/api/v1/cases?state=archived&limit=5")).header("x-purpose", "核对归档");
        assert_eq!(list().send().await.unwrap().status(), 200);
        let listed = |entries: Vec<Entry>| {
            entries.into_iter().filter(|e| e.record.requester_officer.as_deref() == Some("周督查")).collect::<Vec<_>>()
        };
        let reads = listed(ledger_entries(&demo.hub.store).await);
        assert_eq!(reads.len(), 5, "{backend}: {reads:?}");
        assert!(
            reads.iter().all(|e| e.record.kind == EntryKind::Read
                && e.record.data_subject.is_some()
                && e.record.data_items == ["case list"]),
            "{backend}: {reads:?}"
        );
        assert_eq!(list().send().await.unwrap().status(), 200);
        assert_eq!(listed(ledger_entries(&demo.hub.store).await).len(), 5, "{backend}: read again the same day");

        // A period exported as a bundle checks offline; an altered bundle does not.
        let export = client
            .post(format!("{api}/api/v1/audit/exports"))
            .json(&json!({"from": "2020-01-01T00:00:00Z", "until": "2100-01-01T00:00:00Z"}));
        let bundle = export.send().await.unwrap().text().await.unwrap();
        let holds = check_offline(&bundle, &trusted).unwrap_or_else(|problem| panic!("{backend}: {problem}"));
        assert!(holds.contains("chain together"), "{holds}");
        let mut altered: ExportBundle = serde_json::from_str(&bundle).unwrap();
        altered.entries[3].body = altered.entries[3].body.replacen("\"outcome\":\"", "\"outcome\":\"x", 1);
        assert!(
            check_offline(&serde_json::to_string(&altered).unwrap(), &trusted).is_err(),
            "{backend}: an altered bundle"
        );
        let mut shortened: ExportBundle = serde_json::from_str(&bundle).unwrap();
        shortened.entries.remove(2);
        assert!(
            check_offline(&serde_json::to_string(&shortened).unwrap(), &trusted).is_err(),
            "{backend}: an entry taken out"
        );
        let refused = client
            .post(format!("{api}/api/v1/audit/exports"))
            .json(&json!({"from": "2030-01-01T00:00:00Z", "until": "2020-01-01T00:00:00Z"}))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 400);
        assert_eq!(demo.hub.bus.message_count(DEAD_LETTER_TOPIC).await.unwrap(), 0, "{backend}");
        demo.stop().await;

        tamper_and_catch(backend, &url, &dir).await;
    }
}

async fn ledger(url: &str, archive_dir: std::path::PathBuf) -> Ledger {
    let store = Store::connect(url, Arc::new(Catalogue::builtin())).await.unwrap();
    let detector = Detector::new(AnomalyRules::default(), Calendar::builtin()).unwrap();
    Ledger::new(store, signing_key(&"11".repeat(32)).unwrap(), b"county key".to_vec(), detector, archive_dir)
}

/// Edits the ledger's rows behind the application's back and shows `verify` names each.
async fn tamper_and_catch(backend: &str, url: &str, dir: &tempfile::TempDir) {
    let ledger = ledger(url, dir.path().join(format!("{backend}-archives"))).await;
    assert!(ledger.verify().await.unwrap().holds(), "{backend}");
    let pool = AnyPool::connect(url).await.unwrap();
    let refused = sqlx::query("UPDATE ledger_entries SET body = 'x' WHERE seq = 5").execute(&pool).await.unwrap_err();
    assert!(refused.to_string().contains("append-only"), "{backend}: {refused}");
    assert!(sqlx::query("DELETE FROM ledger_entries WHERE seq = 5").execute(&pool).await.is_err(), "{backend}");
    // The attacker has the database's owner rights and lifts the guard.
    if backend == "sqlite" {
        sqlx::query("DROP TRIGGER ledger_entries_no_update").execute(&pool).await.unwrap();
        sqlx::query("DROP TRIGGER ledger_entries_no_delete").execute(&pool).await.unwrap();
    } else {
        sqlx::query("ALTER TABLE ledger_entries DISABLE TRIGGER USER").execute(&pool).await.unwrap();
    }
    let first_bad = || async { ledger.verify().await.unwrap().first_bad_entry };
    let body = |seq: i64| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, String>("SELECT body FROM ledger_entries WHERE seq = $1")
                .bind(seq)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };

    // Edited: the purpose of entry 5 rewritten.
    let original = body(5).await;
    let edited = original.replacen("\"purpose\":\"", "\"purpose\":\"另有用途", 1);
    assert_ne!(edited, original);
    sqlx::query("UPDATE ledger_entries SET body = $1 WHERE seq = 5").bind(&edited).execute(&pool).await.unwrap();
    assert_eq!(first_bad().await, Some(5), "{backend}: edited");
    sqlx::query("UPDATE ledger_entries SET body = $1 WHERE seq = 5").bind(&original).execute(&pool).await.unwrap();
    assert_eq!(first_bad().await, None, "{backend}: restored");

    // Deleted: entry 3 gone.
    sqlx::query("CREATE TABLE kept AS SELECT * FROM ledger_entries WHERE seq = 3").execute(&pool).await.unwrap();
    sqlx::query("DELETE FROM ledger_entries WHERE seq = 3").execute(&pool).await.unwrap();
    assert_eq!(first_bad().await, Some(3), "{backend}: deleted");
    sqlx::query("INSERT INTO ledger_entries SELECT * FROM kept").execute(&pool).await.unwrap();
    assert_eq!(first_bad().await, None, "{backend}: put back");

    // Reordered: entries 6 and 7 swap places.
    for (from, to) in [(6, -6), (7, 6), (-6, 7)] {
        sqlx::query("UPDATE ledger_entries SET seq = $1 WHERE seq = $2")
            .bind(to)
            .bind(from)
            .execute(&pool)
            .await
            .unwrap();
    }
    assert_eq!(first_bad().await, Some(6), "{backend}: reordered");
    for (from, to) in [(6, -6), (7, 6), (-6, 7)] {
        sqlx::query("UPDATE ledger_entries SET seq = $1 WHERE seq = $2")
            .bind(to)
            .bind(from)
            .execute(&pool)
            .await
            .unwrap();
    }
    assert_eq!(first_bad().await, None, "{backend}: put back in order");

    // Inserted: a forged entry after the last one, chained to nothing real.
    let last: i64 = sqlx::query_scalar("SELECT MAX(seq) FROM ledger_entries").fetch_one(&pool).await.unwrap();
    let forged = body(last).await.replacen(&format!("\"seq\":{last},"), &format!("\"seq\":{},", last + 1), 1).replacen(
        "\"source_id\":\"",
        "\"source_id\":\"forged-",
        1,
    );
    sqlx::query("INSERT INTO ledger_entries (seq, source_id, recorded_at, kind, requester_department, provider, body, previous_hash, hash) VALUES ($1, 'forged', 0, 'exchange', '', '', $2, $3, $3)")
        .bind(last + 1)
        .bind(&forged)
        .bind("00".repeat(32))
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(first_bad().await, Some(last + 1), "{backend}: inserted");
    pool.close().await;
}

/// Entries past their retention leave the database for archive files: each archive checks on
/// its own, the next archive and the entries kept continue its chain, the ledger still
/// verifies, and an archive file changed afterwards is caught.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_entries_are_archived_and_the_chain_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    for (backend, url) in common::databases(&dir).await {
        let archive_dir = dir.path().join(format!("{backend}-archives"));
        let ledger = ledger(&url, archive_dir.clone()).await;
        let trusted = ledger.public_key();
        let append = |numbers: std::ops::Range<usize>| {
            let records: Vec<_> = numbers.map(hub_cli::bench::synthetic_exchange).collect();
            let ledger = &ledger;
            async move { ledger.record(&records).await.unwrap() }
        };
        let cut = || async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            let instant = hub::store::now_ms();
            tokio::time::sleep(Duration::from_millis(5)).await;
            instant
        };
        append(0..30).await;
        ledger.checkpoint().await.unwrap();
        let first_cut = cut().await;
        append(30..50).await;
        let first = ledger.archive(first_cut).await.unwrap().expect("entries to archive");
        assert_eq!((first.first_seq, first.last_seq), (1, 30), "{backend}");
        let verified = ledger.verify().await.unwrap();
        assert!(verified.holds(), "{backend}: {verified:?}");
        // Entries 31 to 50 stay, and entry 51 records the archiving.
        assert_eq!((verified.entries, verified.archives), (21, 1), "{backend}");
        let pool = AnyPool::connect(&url).await.unwrap();
        let refused = sqlx::query("DELETE FROM ledger_entries WHERE seq = 40").execute(&pool).await.unwrap_err();
        assert!(refused.to_string().contains("only archived entries"), "{backend}: {refused}");
        pool.close().await;

        append(50..60).await;
        let second_cut = cut().await;
        append(60..65).await;
        let second = ledger.archive(second_cut).await.unwrap().expect("entries to archive");
        assert_eq!((second.first_seq, second.last_seq), (31, 61), "{backend}");
        assert!(ledger.archive(first_cut).await.unwrap().is_none(), "{backend}: nothing that old is left");
        let verified = ledger.verify().await.unwrap();
        assert!(verified.holds() && verified.archives == 2, "{backend}: {verified:?}");
        let newest = ledger.checkpoint().await.unwrap().unwrap();
        assert_eq!((newest.first_seq, newest.size), (62, 67), "{backend}: checkpoints cover what is kept");
        let proven = serde_json::to_string(&ledger.proof(63).await.unwrap().expect("a kept entry's proof")).unwrap();
        assert!(check_offline(&proven, &trusted).is_ok(), "{backend}");
        assert!(ledger.proof(10).await.unwrap().is_none(), "{backend}: an archived entry is proven by its archive");

        // Everything archived, the archiving entry too: the next entry still continues the chain.
        let everything = ledger.archive(cut().await).await.unwrap().expect("entries to archive");
        assert_eq!((everything.first_seq, everything.last_seq), (62, 67), "{backend}");
        append(65..66).await;
        let verified = ledger.verify().await.unwrap();
        assert!(verified.holds() && verified.archives == 3, "{backend}: {verified:?}");
        assert_eq!(ledger.checkpoint().await.unwrap().map(|c| (c.first_seq, c.size)), Some((68, 69)), "{backend}");

        // The archive files, as the bureau receives them: each alone, and in order, linked.
        let read =
            |record: &hub::store::ArchiveRecord| std::fs::read_to_string(archive_dir.join(&record.file_name)).unwrap();
        let (first_file, second_file) = (read(&first), read(&second));
        for file in [&first_file, &second_file] {
            let holds = check_offline(file, &trusted).unwrap_or_else(|problem| panic!("{backend}: {problem}"));
            assert!(holds.starts_with("archive of entries"), "{holds}");
        }
        let archives: Vec<Archive> =
            [&first_file, &second_file].iter().map(|f| serde_json::from_str(f).unwrap()).collect();
        assert!(check_archive_series(&archives, &trusted).is_ok(), "{backend}");
        let reversed: Vec<Archive> = archives.iter().rev().cloned().collect();
        assert!(check_archive_series(&reversed, &trusted).is_err(), "{backend}: out of order");
        let mut gap = archives.clone();
        gap[1].entries.remove(0);
        assert!(check_archive_series(&gap, &trusted).is_err(), "{backend}: an entry short");

        // An archive changed after it was written: the file's check and `verify` both say so.
        let altered = first_file.replacen("核验营业执照", "随便看看", 1);
        assert_ne!(altered, first_file);
        assert!(check_offline(&altered, &trusted).is_err(), "{backend}");
        std::fs::write(archive_dir.join(&first.file_name), &altered).unwrap();
        let verified = ledger.verify().await.unwrap();
        assert!(
            !verified.holds() && verified.problems.iter().any(|p| p.contains(&first.file_name)),
            "{backend}: {verified:?}"
        );
    }
}

/// People's facts that come while the ledger is busy are appended together: each fact is held
/// once, each caller is told how many of its facts were new (a fact two callers asked for is
/// new to one of them), and the chain holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn facts_recorded_side_by_side_are_held_once_and_every_caller_answered() {
    let dir = tempfile::tempdir().unwrap();
    for (backend, url) in common::databases(&dir).await {
        let ledger = Arc::new(ledger(&url, dir.path().join(format!("{backend}-archives"))).await);
        // Callers 2k and 2k+1 ask for the same 5 facts: 40 callers, 100 distinct facts.
        let callers = (0..40).map(|caller| {
            let ledger = ledger.clone();
            let first = caller / 2 * 5;
            let records: Vec<_> = (first..first + 5).map(hub_cli::bench::synthetic_exchange).collect();
            tokio::spawn(async move { ledger.record(&records).await.unwrap() })
        });
        let answers: Vec<usize> = futures::future::join_all(callers).await.into_iter().map(Result::unwrap).collect();
        assert_eq!(answers.iter().sum::<usize>(), 100, "{backend}: {answers:?}");
        let verified = ledger.verify().await.unwrap();
        assert!(verified.holds(), "{backend}: {verified:?}");
        assert_eq!(verified.entries, 100, "{backend}");
        // Asked again, nothing is new.
        assert_eq!(ledger.record(&[hub_cli::bench::synthetic_exchange(7)]).await.unwrap(), 0, "{backend}");
    }
}

/// The bureau's search by data subject finds a person's entries in every block of 4 096
/// entries its period spans (the index is led by the block), newest first, within the period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subject_is_found_in_every_block_of_the_period() {
    let dir = tempfile::tempdir().unwrap();
    for (backend, url) in common::databases(&dir).await {
        let ledger = ledger(&url, dir.path().join(format!("{backend}-archives"))).await;
        let person = contracts::data_subject(b"county key", "610429199001010011");
        // The person's exchanges fall in blocks 0, 1 and 2 (entries 6, 4 101 and 9 001).
        let about_person = [5, 4_100, 9_000];
        let records = |numbers: std::ops::Range<usize>| -> Vec<_> {
            numbers
                .map(|n| {
                    let mut record = hub_cli::bench::synthetic_exchange(n);
                    if about_person.contains(&n) {
                        record.data_subject = Some(person.clone());
                    }
                    record
                })
                .collect()
        };
        for first in (0..4_100).step_by(1_000) {
            ledger.record(&records(first..(first + 1_000).min(4_100))).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        let later = hub::store::now_ms();
        for first in (4_100..9_500).step_by(1_000) {
            ledger.record(&records(first..(first + 1_000).min(9_500))).await.unwrap();
        }
        let search = |from_ms: i64, limit: i64| {
            let search = hub::store::LedgerSearch {
                data_subject: Some(person.clone()),
                department: None,
                from_ms,
                until_ms: hub::store::now_ms() + 1,
                without_case: false,
                limit,
            };
            let ledger = &ledger;
            async move { ledger.search(&search).await.unwrap().iter().map(|entry| entry.seq).collect::<Vec<_>>() }
        };
        assert_eq!(search(0, 100).await, [9_001, 4_101, 6], "{backend}: every block, newest first");
        assert_eq!(search(later, 100).await, [9_001, 4_101], "{backend}: only the period");
        assert_eq!(search(0, 1).await, [9_001], "{backend}: the newest, as many as asked");
        let stranger = hub::store::LedgerSearch {
            data_subject: Some(contracts::data_subject(b"county key", "610429199001010022")),
            department: None,
            from_ms: 0,
            until_ms: hub::store::now_ms() + 1,
            without_case: false,
            limit: 100,
        };
        assert!(ledger.search(&stranger).await.unwrap().is_empty(), "{backend}");
    }
}
