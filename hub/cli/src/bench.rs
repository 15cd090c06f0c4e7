//! `hub bench`: the demo pipeline at full speed on the embedded defaults, and the bare broker
//! rate measured in the same run for comparison.
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::demo::{DemoOptions, DemoRun, Summary};
use hub::app::audit::{signing_key, Ledger};
use hub::config::Config;
use hub_core::anomaly::{AnomalyRules, Detector};
use hub_core::calendar::Calendar;
use hub_core::ledger::{EntryKind, Record};

#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub cases: usize,
    pub completed: usize,
    pub cases_per_second: f64,
    pub hub_messages_per_second: f64,
    pub raw_messages_per_second: f64,
    pub hub_to_raw_ratio: f64,
    pub messages: i64,
    pub mean_message_bytes: usize,
    pub cores: usize,
    /// Whether the audit ledger was kept during the run.
    pub ledger_kept: bool,
    pub ledger: Option<LedgerBench>,
    pub summary: Summary,
}

/// The audit ledger on its own, on a SQLite file: appending synthetic exchanges in batches,
/// signing a checkpoint over all of them, verifying the whole chain and the checkpoint, then
/// archiving them all.
#[derive(Debug, Clone, Serialize)]
pub struct LedgerBench {
    pub entries: usize,
    pub append_entries_per_second: f64,
    pub checkpoint_seconds: f64,
    pub verify_entries_per_second: f64,
    /// Writing all of them to an archive file and out of the database.
    pub archive_entries_per_second: f64,
}

/// Measures the ledger with `entries` synthetic exchanges.
pub async fn ledger_bench(dir: &std::path::Path, entries: usize) -> anyhow::Result<LedgerBench> {
    let url = format!("sqlite://{}", dir.join("ledger-bench.db").display());
    let store = hub::store::Store::connect(&url, std::sync::Arc::new(contracts::Catalogue::builtin())).await?;
    let detector = Detector::new(AnomalyRules::default(), Calendar::builtin()).map_err(anyhow::Error::msg)?;
    let ledger = Ledger::new(store, signing_key("")?, b"bench key".to_vec(), detector, dir.join("ledger-archives"));
    let started = Instant::now();
    for first in (0..entries).step_by(1_000) {
        let batch: Vec<Record> = (first..(first + 1_000).min(entries)).map(synthetic_exchange).collect();
        ledger.record(&batch).await?;
    }
    let append_entries_per_second = entries as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    ledger.checkpoint().await?;
    let checkpoint_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let verification = ledger.verify().await?;
    let verify_entries_per_second = verification.entries as f64 / started.elapsed().as_secs_f64();
    anyhow::ensure!(
        verification.holds() && verification.entries == entries as i64,
        "the benchmark ledger did not verify: {verification:?}"
    );
    let started = Instant::now();
    ledger.archive(hub::store::now_ms() + 1).await?;
    let archive_entries_per_second = entries as f64 / started.elapsed().as_secs_f64();
    let archived = ledger.verify().await?;
    anyhow::ensure!(
        archived.holds() && archived.archives == 1,
        "the archived benchmark ledger did not verify: {archived:?}"
    );
    Ok(LedgerBench {
        entries,
        append_entries_per_second,
        checkpoint_seconds,
        verify_entries_per_second,
        archive_entries_per_second,
    })
}

/// A certificate fetch of the kind the counters make all day, numbered `n` (the ledger
/// benchmark and the archive test append them).
pub fn synthetic_exchange(n: usize) -> Record {
    Record {
        kind: EntryKind::Exchange,
        source_id: format!("bench/{n}"),
        occurred_at: 1_795_392_000_000 + n as i64,
        action: "certificate.fetch".into(),
        requester_system: "county-hub".into(),
        requester_department: "11610429MB2912345A".into(),
        requester_officer: Some("李受理".into()),
        provider: "provincial-ecert-repository".into(),
        data_subject: Some(contracts::data_subject(b"bench key", &format!("{n:018}"))),
        data_items: vec!["营业执照".into()],
        legal_basis: "《国务院关于在线政务服务的若干规定》第十条".into(),
        purpose: "办理食品经营许可：核验营业执照".into(),
        case_number: Some(format!("61042920261123{:06}", n % 1_000_000)),
        channel: Some("counter".into()),
        document_sha256: None,
        outcome: "ok".into(),
    }
}

/// Runs `cases` through the demo pipeline (with or without the ledger) and, when
/// `ledger_entries` > 0, the ledger on its own.
pub async fn run(
    mut config: Config,
    cases: usize,
    keep_ledger: bool,
    ledger_entries: usize,
) -> anyhow::Result<BenchReport> {
    let data_dir = std::env::temp_dir().join(format!("hub-bench-{}", std::process::id()));
    config.api.listen = "127.0.0.1:0".into();
    config.audit.keep_ledger = keep_ledger;
    let options = DemoOptions {
        cases,
        resume: false,
        data_dir: data_dir.clone(),
        postal_url: None,
        ecert_url: None,
        province_url: None,
        bank_url: None,
        step_delay: Duration::ZERO,
        progress: false,
        concurrency: 32,
        faults: Default::default(),
        counterpart_faults: Default::default(),
        mix: true,
    };
    let demo = DemoRun::start(config, &options).await?;
    let outcome = async {
        let summary = demo.drive(&options).await?;
        let (messages, mean_size) = demo.hub.store.outbox_volume().await?;
        let raw = bus::raw::round_trip_rate(&demo.hub.bus, messages as usize, mean_size).await?;
        anyhow::Ok(BenchReport {
            cases,
            completed: summary.completed,
            cases_per_second: summary.cases_per_second,
            hub_messages_per_second: summary.hub_messages_per_second,
            raw_messages_per_second: raw,
            hub_to_raw_ratio: summary.hub_messages_per_second / raw,
            messages,
            mean_message_bytes: mean_size,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            ledger_kept: keep_ledger,
            ledger: None,
            summary,
        })
    }
    .await;
    demo.stop().await;
    let outcome = match outcome {
        Ok(report) if ledger_entries > 0 => {
            Ok(BenchReport { ledger: Some(ledger_bench(&data_dir, ledger_entries).await?), ..report })
        }
        other => other,
    };
    let _ = std::fs::remove_dir_all(&data_dir);
    outcome
}

pub fn print_report(report: &BenchReport) {
    crate::demo::print_summary(&report.summary);
    println!();
    println!("bench: {} cases on {} cores", report.cases, report.cores);
    println!("  completed cases/s        {:>10.1}", report.cases_per_second);
    println!("  hub messages/s           {:>10.1}", report.hub_messages_per_second);
    println!(
        "  raw broker messages/s    {:>10.1}  ({} messages of {} bytes)",
        report.raw_messages_per_second, report.messages, report.mean_message_bytes
    );
    println!("  hub / raw                {:>10.3}", report.hub_to_raw_ratio);
    println!("  audit ledger kept        {:>10}", report.ledger_kept);
    if let Some(ledger) = &report.ledger {
        println!("ledger: {} synthetic exchanges on SQLite", ledger.entries);
        println!("  appended entries/s       {:>10.1}", ledger.append_entries_per_second);
        println!("  checkpoint over all      {:>10.3} s", ledger.checkpoint_seconds);
        println!("  verified entries/s       {:>10.1}", ledger.verify_entries_per_second);
        println!("  archived entries/s       {:>10.1}", ledger.archive_entries_per_second);
    }
}
