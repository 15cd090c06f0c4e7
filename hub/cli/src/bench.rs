//! `hub bench`: the demo pipeline at full speed on the embedded defaults, and the bare broker
//! rate measured in the same run for comparison.
use std::time::{Duration, Instant};

use std::collections::BTreeMap;

use futures::{FutureExt as _, StreamExt as _};
use serde::Serialize;

use crate::demo::{demo_applications, DemoOptions, DemoRun, Percentiles, Profile, Summary};
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
    /// The share of the run SQLite's one writer was held by a transaction (None on PostgreSQL).
    pub writer_busy_share: Option<f64>,
    /// Processor time (user and system) of this process's threads per completed case: the
    /// hub's, the embedded broker's and the simulators'; not the peers' or the database
    /// server's. What a case costs, where cases/s also counts waiting.
    pub cpu_ms_per_case: Option<f64>,
    /// The broker's part of a case at the least: each of its messages produced and read once,
    /// at the bare rate's processor cost (None where the system does not tell).
    pub broker_floor: Option<BrokerFloor>,
    pub ledger: Option<LedgerBench>,
    /// Hub instances sharing the work: the bench's own and `hub run` processes.
    pub instances: usize,
    pub shares: Vec<InstanceShare>,
    pub summary: Summary,
}

/// What the bare broker costs a case: the processor time the bare rate's run took per message
/// (the broker, the producer and the reader, less what the idle hub beside them used), times
/// the messages of a case. Extra consumer groups reading a message cost more, so this is a
/// floor: the cases/s no hub could pass on these cores through this broker.
#[derive(Debug, Clone, Serialize)]
pub struct BrokerFloor {
    /// The share of a core the hub used idle after the run (its consumers' fetches, its duties).
    pub idle_cpu_share: f64,
    pub cpu_us_per_message: f64,
    pub messages_per_case: f64,
    pub cpu_ms_per_case: f64,
    pub ceiling_cases_per_second: f64,
}

/// One instance's part of the work: the messages its consumers handled.
#[derive(Debug, Clone, Serialize)]
pub struct InstanceShare {
    pub api: String,
    pub messages_handled: u64,
    pub share: f64,
}

/// The audit ledger on its own, on a SQLite file: appending synthetic exchanges in batches of
/// 1 000 (timed without making them up), signing a checkpoint over all of them, verifying the
/// whole chain and the checkpoint, then archiving them all.
#[derive(Debug, Clone, Serialize)]
pub struct LedgerBench {
    pub entries: usize,
    pub append_entries_per_second: f64,
    pub checkpoint_seconds: f64,
    pub verify_entries_per_second: f64,
    /// Writing all of them to an archive file and out of the database.
    pub archive_entries_per_second: f64,
}

/// The county-day mix at full speed, with the built-in simulators and no faults.
fn full_speed(cases: usize, data_dir: &std::path::Path) -> DemoOptions {
    DemoOptions {
        cases,
        resume: false,
        data_dir: data_dir.to_path_buf(),
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
        electronic_seals: false,
    }
}

/// Measures the ledger with `entries` synthetic exchanges.
pub async fn ledger_bench(dir: &std::path::Path, entries: usize) -> anyhow::Result<LedgerBench> {
    let url = format!("sqlite://{}", dir.join("ledger-bench.db").display());
    let store = hub::store::Store::connect(&url, std::sync::Arc::new(contracts::Catalogue::builtin())).await?;
    let detector = Detector::new(AnomalyRules::default(), Calendar::builtin()).map_err(anyhow::Error::msg)?;
    let ledger = Ledger::new(store, signing_key("")?, b"bench key".to_vec(), detector, dir.join("ledger-archives"));
    // Only the ledger's time counts: making up the exchanges is the bench's own work.
    let mut appending = Duration::ZERO;
    for first in (0..entries).step_by(1_000) {
        let batch: Vec<Record> = (first..(first + 1_000).min(entries)).map(synthetic_exchange).collect();
        let started = Instant::now();
        ledger.record(&batch).await?;
        appending += started.elapsed();
    }
    let append_entries_per_second = entries as f64 / appending.as_secs_f64();
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
    instances: usize,
) -> anyhow::Result<BenchReport> {
    let data_dir = std::env::temp_dir().join(format!("hub-bench-{}", std::process::id()));
    config.api.listen = "127.0.0.1:0".into();
    config.audit.keep_ledger = keep_ledger;
    let on_postgres = config.database.url.starts_with("postgres");
    anyhow::ensure!(
        instances == 1 || on_postgres,
        "bench --instances {instances} needs database.url on PostgreSQL (HUB_DATABASE__URL): instances share one database"
    );
    // On PostgreSQL the run works in a scratch schema of its own: the database may hold an
    // earlier run's cases, which would count as finished at once. Instances share it.
    let scratch = if on_postgres { Some(Scratch::create(&config.database.url).await?) } else { None };
    if let Some(scratch) = &scratch {
        config.database.url = scratch.url.clone();
    }
    // The scratch schema goes on every path, a failed start included.
    let outcome = drive_instances(config, cases, keep_ledger, instances, &data_dir).await;
    if let Some(scratch) = scratch {
        scratch.remove().await;
    }
    let outcome = match outcome {
        Ok(report) if ledger_entries > 0 => {
            Ok(BenchReport { ledger: Some(ledger_bench(&data_dir, ledger_entries).await?), ..report })
        }
        other => other,
    };
    let _ = std::fs::remove_dir_all(&data_dir);
    outcome
}

/// The county-day run itself, on `instances` hubs sharing `config`'s database.
async fn drive_instances(
    mut config: Config,
    cases: usize,
    keep_ledger: bool,
    instances: usize,
    data_dir: &std::path::Path,
) -> anyhow::Result<BenchReport> {
    // Several instances share a broker process.
    let mut broker = None;
    if instances > 1 {
        let bootstrap = format!("127.0.0.1:{}", free_port()?);
        let spawned = Child::spawn(&["broker", "--listen", &bootstrap], &[])?;
        let address = bootstrap.clone();
        wait_until(move || tokio::net::TcpStream::connect(address.clone()).map(|c| c.is_ok()), "the broker to listen")
            .await?;
        config.bus.bootstrap_servers = Some(bootstrap);
        broker = Some(spawned);
    }
    let options = full_speed(cases, data_dir);
    let mut demo = DemoRun::start(config.clone(), &options).await?;
    let peers = match start_peers(&config, &demo, instances - 1).await {
        Ok(peers) => peers,
        Err(error) => {
            demo.stop().await;
            return Err(error);
        }
    };
    demo.spread_over(peers.iter().map(|(url, _)| url.clone()).collect());
    let outcome = async {
        let held_before = demo.hub.store.writer_held();
        let (summary, drive_cpu, drive_wall) = with_processor_time(demo.drive(&options)).await;
        let summary = summary?;
        let cpu_ms_per_case = drive_cpu
            .filter(|_| summary.completed > 0)
            .map(|used| used.as_secs_f64() * 1000.0 / summary.completed as f64);
        let writer_busy_share = demo
            .hub
            .store
            .writer_held()
            .zip(held_before)
            .map(|(after, before)| (after - before).as_secs_f64() / drive_wall.as_secs_f64());
        let mut apis = vec![demo.api_url().to_string()];
        apis.extend(peers.iter().map(|(url, _)| url.clone()));
        let shares = shares(&apis).await?;
        let (messages, mean_size) = demo.hub.store.outbox_volume().await?;
        let ((), idle_cpu, idle_wall) = with_processor_time(tokio::time::sleep(IDLE_SAMPLE)).await;
        let (raw, raw_cpu, raw_wall) =
            with_processor_time(bus::raw::round_trip_rate(&demo.hub.bus, messages as usize, mean_size)).await;
        let raw = raw?;
        let cores = cores();
        let broker_floor =
            raw_cpu.zip(idle_cpu).filter(|_| summary.completed > 0 && messages > 0).map(|(raw_cpu, idle_cpu)| {
                let idle_share = idle_cpu.as_secs_f64() / idle_wall.as_secs_f64();
                let busy = raw_cpu.as_secs_f64() - idle_share * raw_wall.as_secs_f64();
                let cpu_us_per_message = busy.max(0.0) * 1e6 / messages as f64;
                let messages_per_case = messages as f64 / summary.completed as f64;
                let cpu_ms_per_case = cpu_us_per_message * messages_per_case / 1000.0;
                BrokerFloor {
                    idle_cpu_share: idle_share,
                    cpu_us_per_message,
                    messages_per_case,
                    cpu_ms_per_case,
                    ceiling_cases_per_second: cores as f64 * 1000.0 / cpu_ms_per_case,
                }
            });
        anyhow::Ok(BenchReport {
            cases,
            completed: summary.completed,
            cases_per_second: summary.cases_per_second,
            hub_messages_per_second: summary.hub_messages_per_second,
            raw_messages_per_second: raw,
            hub_to_raw_ratio: summary.hub_messages_per_second / raw,
            messages,
            mean_message_bytes: mean_size,
            cores,
            ledger_kept: keep_ledger,
            writer_busy_share,
            cpu_ms_per_case,
            broker_floor,
            ledger: None,
            instances,
            shares,
            summary,
        })
    }
    .await;
    drop(peers);
    demo.stop().await;
    drop(broker);
    outcome
}

/// The cores this process may run on.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// How long the idle hub is watched before the bare rate's run, to take its own use out.
const IDLE_SAMPLE: Duration = Duration::from_secs(1);

/// What `work` gives, with the processor time this process used while it ran (None where the
/// system does not tell) and the time it took.
async fn with_processor_time<T>(work: impl std::future::Future<Output = T>) -> (T, Option<Duration>, Duration) {
    let (before, started) = (process_cpu_time(), Instant::now());
    let outcome = work.await;
    let used = process_cpu_time().zip(before).map(|(after, before)| after - before);
    (outcome, used, started.elapsed())
}

/// Processor time this process has used so far, all its threads together (None where the
/// system does not tell).
fn process_cpu_time() -> Option<Duration> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::uninit();
    // SAFETY: getrusage only writes the struct it is given, and is checked before it is read.
    let usage = unsafe {
        if libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) != 0 {
            return None;
        }
        usage.assume_init()
    };
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1_000);
    Some(time(usage.ru_utime) + time(usage.ru_stime))
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
    if let Some(share) = report.writer_busy_share {
        println!("  SQLite writer busy       {:>9.1}%", share * 100.0);
    }
    if let Some(cpu) = report.cpu_ms_per_case {
        println!("  processor ms per case    {cpu:>10.2}");
    }
    if let Some(floor) = &report.broker_floor {
        println!("  idle hub's core share    {:>9.1}%  (after the run: fetches, duties)", floor.idle_cpu_share * 100.0);
        println!(
            "  bare broker µs/message   {:>10.1}  (producer, broker and reader, per message)",
            floor.cpu_us_per_message
        );
        println!(
            "  broker floor ms per case {:>10.2}  ({:.1} messages each produced and read once)",
            floor.cpu_ms_per_case, floor.messages_per_case
        );
        println!(
            "  broker ceiling cases/s   {:>10.0}  (all {} cores doing nothing else)",
            floor.ceiling_cases_per_second, report.cores
        );
    }
    if report.instances > 1 {
        println!("instances: {} on one PostgreSQL database and one broker process", report.instances);
        for share in &report.shares {
            println!(
                "  {:<24} {:>9.1}%  ({} messages handled)",
                share.api,
                share.share * 100.0,
                share.messages_handled
            );
        }
    }
    if let Some(ledger) = &report.ledger {
        println!("ledger: {} synthetic exchanges on SQLite", ledger.entries);
        println!("  appended entries/s       {:>10.1}", ledger.append_entries_per_second);
        println!("  checkpoint over all      {:>10.3} s", ledger.checkpoint_seconds);
        println!("  verified entries/s       {:>10.1}", ledger.verify_entries_per_second);
        println!("  archived entries/s       {:>10.1}", ledger.archive_entries_per_second);
    }
}

/// The open-loop bench: applications offered at fixed rates, each rate on a fresh hub.
#[derive(Debug, Clone, Serialize)]
pub struct OpenLoopBench {
    pub database: &'static str,
    pub cores: usize,
    pub rates: Vec<RateRun>,
}

/// One offered rate: applications handed in at the counters at fixed intervals, whether or not
/// the earlier ones were answered, each timed from the moment it was due (so a hub falling
/// behind shows as waiting, not as fewer requests); the county's staff work the cases meanwhile.
#[derive(Debug, Clone, Serialize)]
pub struct RateRun {
    pub rate: u32,
    pub offered: usize,
    /// The rate the applications actually went out at.
    pub offered_per_second: f64,
    /// From due to the HTTP answer of `POST /applications`.
    pub answer_ms: Percentiles,
    /// From due to the acceptance with its notice ready to print (the answer carries it), over
    /// the applications accepted.
    pub accepted_ms: Percentiles,
    /// Each stage of a case's life, from its events' times.
    pub stages_ms: BTreeMap<String, Percentiles>,
    pub completed: usize,
    /// From the first application due to the last case final.
    pub seconds_to_done: f64,
}

/// Offers `seconds` of applications at each of `rates` per second, each rate on a hub of its own
/// on a scratch database (a schema of `database.url` on PostgreSQL, else a SQLite file).
pub async fn open_loop(config: Config, rates: &[u32], seconds: u32) -> anyhow::Result<OpenLoopBench> {
    let mut runs = Vec::with_capacity(rates.len());
    let mut database = "SQLite";
    for &rate in rates {
        anyhow::ensure!(rate > 0, "a rate is a positive number of applications per second");
        let scratch = Scratch::create(&config.database.url).await?;
        database = scratch.backend;
        let mut config = config.clone();
        config.database.url = scratch.url.clone();
        config.api.listen = "127.0.0.1:0".into();
        let count = rate as usize * seconds as usize;
        let data_dir = std::env::temp_dir().join(format!("hub-bench-rate-{}-{rate}", std::process::id()));
        let outcome = async {
            let demo = DemoRun::start(config, &full_speed(count, &data_dir)).await?;
            let run = offer(&demo, rate, count).await;
            demo.stop().await;
            run
        }
        .await;
        scratch.remove().await;
        let _ = std::fs::remove_dir_all(&data_dir);
        runs.push(outcome?);
    }
    Ok(OpenLoopBench { database, cores: cores(), rates: runs })
}

/// How often the county's staff look at their queues during the open-loop bench: people at
/// their screens, not a loop as fast as the hub answers (that is the throughput bench).
const STAFF_PACE: Duration = Duration::from_millis(250);

async fn offer(demo: &DemoRun, rate: u32, count: usize) -> anyhow::Result<RateRun> {
    // The county-day mix as handed in at counters (an online application is the platform's).
    let applications: Vec<_> = demo_applications(&demo.hub.reference.get(), count + count / 16 + 1, true)
        .filter(|(_, profile)| *profile != Profile::Online)
        .take(count)
        .collect();
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
    let start = tokio::time::Instant::now() + Duration::from_millis(50);
    let handing_in = async {
        let answers: Vec<(f64, tokio::time::Instant, anyhow::Result<serde_json::Value>)> =
            futures::stream::iter(applications.iter().enumerate())
                .map(|(i, (application, profile))| async move {
                    let due = start + interval.mul_f64(i as f64);
                    tokio::time::sleep_until(due).await;
                    let sent = tokio::time::Instant::now();
                    let answer = demo.hand_in(application, *profile).await;
                    (due.elapsed().as_secs_f64() * 1000.0, sent, answer)
                })
                .buffer_unordered(count.max(1))
                .collect()
                .await;
        let last_sent = answers.iter().map(|(_, sent, _)| *sent).max().unwrap_or(start);
        let mut answer_ms = Vec::with_capacity(answers.len());
        let mut accepted_ms = Vec::new();
        for (waited, _, answer) in answers {
            let answer = answer?;
            answer_ms.push(waited);
            if answer["acceptance"] == "accepted" {
                accepted_ms.push(waited);
            }
        }
        anyhow::Ok((answer_ms, accepted_ms, last_sent))
    };
    let working = demo.work_until_done(count, STAFF_PACE, None);
    let ((answer_ms, accepted_ms, last_sent), ()) = tokio::try_join!(handing_in, working)?;
    let elapsed = start.elapsed();
    let summary = demo.summary(count, elapsed).await?;
    let none = || anyhow::anyhow!("no application was answered at {rate}/s");
    Ok(RateRun {
        rate,
        offered: count,
        offered_per_second: count as f64 / (last_sent - start).as_secs_f64().max(1e-3),
        answer_ms: Percentiles::of(answer_ms).ok_or_else(none)?,
        accepted_ms: Percentiles::of(accepted_ms).ok_or_else(none)?,
        stages_ms: summary.latency_ms,
        completed: summary.completed,
        seconds_to_done: elapsed.as_secs_f64(),
    })
}

pub fn print_open_loop(bench: &OpenLoopBench) {
    println!(
        "open loop on {} ({} cores): applications offered at a fixed rate, timed from when each was due",
        bench.database, bench.cores
    );
    for run in &bench.rates {
        println!();
        println!(
            "{}/s offered: {} applications at {:.1}/s; {} archived, the last case final after {:.1} s",
            run.rate, run.offered, run.offered_per_second, run.completed, run.seconds_to_done
        );
        let answers = [("answer".to_string(), run.answer_ms), ("submitted->accepted".to_string(), run.accepted_ms)];
        crate::demo::print_latencies("latency (ms)", answers.iter().map(|(what, p)| (what, p)).chain(&run.stages_ms));
    }
}

/// The outbox relay on its own: a backlog of `rows` messages written at once, then drained to a
/// broker of its own (embedded, so nobody's topics receive the filler).
#[derive(Debug, Clone, Serialize)]
pub struct DrainBench {
    pub rows: usize,
    pub database: String,
    pub fill_seconds: f64,
    pub drain_seconds: f64,
    pub rows_per_second: f64,
    /// Over the first and the last tenth of the backlog: alike when a poll costs what it sends,
    /// rising towards the end if it cost what is left.
    pub first_tenth_rows_per_second: f64,
    pub last_tenth_rows_per_second: f64,
}

/// Measures the relay draining `rows` messages, in a scratch schema of the PostgreSQL database
/// at `database_url` (dropped afterwards) or, for a SQLite URL, a scratch file.
pub async fn drain_bench(database_url: &str, rows: usize) -> anyhow::Result<DrainBench> {
    let scratch = Scratch::create(database_url).await?;
    let outcome = drain(&scratch, rows).await;
    scratch.remove().await;
    outcome
}

async fn drain(scratch: &Scratch, rows: usize) -> anyhow::Result<DrainBench> {
    use anyhow::Context as _;
    let url = scratch.url.as_str();
    let catalogue = std::sync::Arc::new(contracts::Catalogue::builtin());
    let store = hub::store::Store::connect(url, catalogue.clone()).await?;
    let pool = sqlx::AnyPool::connect(url).await?;
    let topic = catalogue.topics.iter().max_by_key(|t| t.partitions).context("the catalogue has no topics")?;
    let started = Instant::now();
    // A case's worth of keys, and the size of a typical event.
    sqlx::query(
        "INSERT INTO outbox (event_id, topic, message_key, payload, created_at) \
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1) \
         SELECT 'drain-bench-' || i, $2, 'case-' || (i % 10000), $3, 0 FROM n",
    )
    .bind(rows as i64)
    .bind(&topic.name)
    .bind(vec![0u8; 400])
    .execute(&pool)
    .await
    .context("filling the outbox")?;
    let fill_seconds = started.elapsed().as_secs_f64();
    let first_id: i64 = sqlx::query_scalar("SELECT MIN(id) FROM outbox").fetch_one(&pool).await?;

    let bus = std::sync::Arc::new(bus::Bus::connect(&bus::BusConfig::default(), catalogue).await?);
    let stop = tokio_util::sync::CancellationToken::new();
    let relay = tokio::spawn(hub::relay(store.clone(), bus.clone(), store.outbox_written.clone(), stop.clone()));
    let started = Instant::now();
    let (mut first_tenth, mut nine_tenths) = (None, None);
    let drained = loop {
        // The oldest unsent row: one index lookup, so watching costs the relay nothing.
        let oldest: Option<i64> =
            sqlx::query_scalar("SELECT MIN(id) FROM outbox WHERE published_at IS NULL").fetch_one(&pool).await?;
        let Some(oldest) = oldest else { break started.elapsed() };
        let sent = (oldest - first_id) as usize;
        if first_tenth.is_none() && sent * 10 >= rows {
            first_tenth = Some(started.elapsed());
        }
        if nine_tenths.is_none() && sent * 10 >= rows * 9 {
            nine_tenths = Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    stop.cancel();
    relay.await?;
    pool.close().await;
    let tenth = rows as f64 / 10.0;
    let first_tenth = first_tenth.unwrap_or(drained);
    let last_tenth = drained - nine_tenths.unwrap_or_default();
    Ok(DrainBench {
        rows,
        database: scratch.backend.into(),
        fill_seconds,
        drain_seconds: drained.as_secs_f64(),
        rows_per_second: rows as f64 / drained.as_secs_f64(),
        first_tenth_rows_per_second: tenth / first_tenth.as_secs_f64(),
        last_tenth_rows_per_second: tenth / last_tenth.as_secs_f64(),
    })
}

/// A database of the bench's own: a schema of the PostgreSQL database, or a SQLite file.
struct Scratch {
    url: String,
    backend: &'static str,
    /// The PostgreSQL database and the schema made in it.
    schema: Option<(String, String)>,
    dir: Option<std::path::PathBuf>,
}

impl Scratch {
    async fn create(database_url: &str) -> anyhow::Result<Scratch> {
        sqlx::any::install_default_drivers();
        if database_url.starts_with("postgres") {
            let schema = format!("hub_bench_{}", std::process::id());
            let pool = sqlx::AnyPool::connect(database_url).await?;
            sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&pool).await?;
            pool.close().await;
            return Ok(Scratch {
                url: hub::store::url_in_schema(database_url, &schema),
                backend: "PostgreSQL",
                schema: Some((database_url.to_string(), schema)),
                dir: None,
            });
        }
        let dir = std::env::temp_dir().join(format!("hub-bench-scratch-{}", std::process::id()));
        let url = format!("sqlite://{}", dir.join("scratch.db").display());
        Ok(Scratch { url, backend: "SQLite", schema: None, dir: Some(dir) })
    }

    async fn remove(&self) {
        if let Some((database, schema)) = &self.schema {
            if let Ok(pool) = sqlx::AnyPool::connect(database).await {
                let _ = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE")).execute(&pool).await;
                pool.close().await;
            }
        }
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

pub fn print_drain(drain: &DrainBench) {
    println!("relay: {} outbox rows on {}", drain.rows, drain.database);
    println!("  written in               {:>10.1} s", drain.fill_seconds);
    println!("  drained in               {:>10.1} s", drain.drain_seconds);
    println!("  rows/s                   {:>10.1}", drain.rows_per_second);
    println!("  rows/s, first tenth      {:>10.1}", drain.first_tenth_rows_per_second);
    println!("  rows/s, last tenth       {:>10.1}", drain.last_tenth_rows_per_second);
}

/// A child process of this binary, killed when dropped.
struct Child(std::process::Child);

impl Child {
    fn spawn(args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Child> {
        let child = std::process::Command::new(std::env::current_exe()?)
            .args(args)
            .envs(env.iter().copied())
            .env("RUST_LOG", "error")
            .stdout(std::process::Stdio::null())
            .spawn()?;
        Ok(Child(child))
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

async fn wait_until<F: std::future::Future<Output = bool>>(
    mut done: impl FnMut() -> F,
    what: &str,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done().await {
        anyhow::ensure!(Instant::now() < deadline, "waited a minute for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// `count` `hub run` processes on the demo's database, broker and counterparts, each with its
/// API URL, once all are ready.
async fn start_peers(config: &Config, demo: &DemoRun, count: usize) -> anyhow::Result<Vec<(String, Child)>> {
    let mut peers = Vec::with_capacity(count);
    for _ in 0..count {
        let listen = format!("127.0.0.1:{}", free_port()?);
        let env = [
            ("HUB_API__LISTEN", listen.as_str()),
            ("HUB_DATABASE__URL", config.database.url.as_str()),
            ("HUB_BUS__BOOTSTRAP_SERVERS", config.bus.bootstrap_servers.as_deref().unwrap_or_default()),
            ("HUB_AUDIT__KEEP_LEDGER", if config.audit.keep_ledger { "true" } else { "false" }),
            ("HUB_POSTAL__BASE_URL", demo.postal_url()),
            ("HUB_ECERT__BASE_URL", demo.ecert_url()),
            ("HUB_PROVINCE__BASE_URL", demo.province_url()),
            ("HUB_BANK__BASE_URL", demo.bank_url()),
            ("HUB_SMS__BASE_URL", demo.sms_url()),
        ];
        peers.push((format!("http://{listen}"), Child::spawn(&["run"], &env)?));
    }
    let client = reqwest::Client::new();
    for (url, _) in &peers {
        let ready = format!("{url}/ready");
        let answered = || client.get(&ready).send().map(|r| r.is_ok_and(|r| r.status().is_success()));
        wait_until(answered, &format!("{url} to be ready")).await?;
    }
    Ok(peers)
}

/// Each instance's share of the messages handled, read from its `/metrics`.
async fn shares(apis: &[String]) -> anyhow::Result<Vec<InstanceShare>> {
    let mut handled = Vec::with_capacity(apis.len());
    for api in apis {
        let text = reqwest::get(format!("{api}/metrics")).await?.error_for_status()?.text().await?;
        let sum: u64 = text
            .lines()
            .filter(|line| line.starts_with("hub_messages_handled{"))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
            .sum();
        handled.push(sum);
    }
    let total = handled.iter().sum::<u64>().max(1) as f64;
    Ok(apis
        .iter()
        .zip(handled)
        .map(|(api, messages_handled)| InstanceShare {
            api: api.clone(),
            messages_handled,
            share: messages_handled as f64 / total,
        })
        .collect())
}

/// The reports over a long history: `cases` cases synthesised into a scratch store from the
/// histories of a county day the demo drove (renumbered, spread back over a year), each written
/// with its report lines as the hub writes them; then the month's reports timed and recounted.
#[derive(Debug, Clone, Serialize)]
pub struct ReportBench {
    pub backend: &'static str,
    pub cases: usize,
    pub events: usize,
    pub lines: i64,
    pub synthesis_seconds: f64,
    pub month: String,
    pub month_received: u64,
    /// One report of the month for the county, a township, a window and a staff member.
    pub county_month_seconds: f64,
    pub township_month_seconds: f64,
    pub window_month_seconds: f64,
    pub staff_month_seconds: f64,
    /// The month's whole bulletin: the county and every township, department and window.
    pub bulletin_seconds: f64,
    pub recount_seconds: f64,
    pub recount_matches: bool,
}

pub async fn report_bench(database_url: &str, cases: usize) -> anyhow::Result<ReportBench> {
    let templates = county_day_histories().await?;
    let scratch = Scratch::create(database_url).await?;
    let outcome = reports_over(&scratch, &templates, cases).await;
    scratch.remove().await;
    outcome
}

/// Every history of a 200-case county day, as the demo leaves them.
async fn county_day_histories() -> anyhow::Result<Vec<Vec<contracts::Event>>> {
    let data_dir = std::env::temp_dir().join(format!("hub-bench-reports-{}", std::process::id()));
    let mut config = Config::default();
    config.api.listen = "127.0.0.1:0".into();
    let options = full_speed(200, &data_dir);
    let demo = DemoRun::start(config, &options).await?;
    let driven = demo.drive(&options).await;
    let mut histories = Vec::new();
    let read = demo.hub.store.each_history(|history| histories.push(history.to_vec())).await;
    demo.stop().await;
    let _ = std::fs::remove_dir_all(&data_dir);
    driven?;
    read?;
    Ok(histories)
}

/// A template history as another case: its number replaced, every event `days` earlier.
fn renumbered(history: &[contracts::Event], number: &str, days: i64) -> anyhow::Result<Vec<contracts::Event>> {
    let old = history[0].case_number().to_string();
    history
        .iter()
        .map(|event| {
            let mut value: serde_json::Value =
                serde_json::from_str(&serde_json::to_string(event)?.replace(&old, number))?;
            if let Some(at) = value.get_mut("occurred_at") {
                *at = (at.as_i64().unwrap_or(0) - days * 86_400_000).into();
            }
            // A counterpart's fact keeps the counterpart's id (a bank's payment id): made the copy's own.
            if let Some(id) = value.get_mut("event_id").filter(|id| !id.as_str().unwrap_or_default().contains(number)) {
                *id = format!("{number}/{}", id.as_str().unwrap_or_default()).into();
            }
            Ok(serde_json::from_value(value)?)
        })
        .collect()
}

async fn reports_over(
    scratch: &Scratch,
    templates: &[Vec<contracts::Event>],
    cases: usize,
) -> anyhow::Result<ReportBench> {
    use hub::app::reports::{bulletin_of, keep_lines, recount_of, report_of, Appended};
    use hub_core::reports::{Period, Unit};
    let store = hub::store::Store::connect(&scratch.url, std::sync::Arc::new(contracts::Catalogue::builtin())).await?;
    let reference = hub_core::Reference::builtin();
    let started = Instant::now();
    let mut events = 0;
    const BATCH: usize = 1_000;
    for first in (0..cases).step_by(BATCH) {
        let mut batch = Vec::with_capacity(BATCH);
        for i in first..(first + BATCH).min(cases) {
            // Spread over the year before the template's day, a different day for each case.
            let history =
                renumbered(&templates[i % templates.len()], &format!("6104299{i:013}"), (i * 7_919 % 365) as i64)?;
            let contracts::Event::ApplicationSubmitted(app) = &history[0] else {
                anyhow::bail!("a history starts with its application")
            };
            let opened = hub_core::Case::open(app);
            let case = history[1..].iter().fold(opened.clone(), hub_core::case::evolve);
            batch.push((format!("report-bench-{i}"), opened, case, history));
        }
        let mut tx = store.begin().await?;
        tx.insert_cases(&batch.iter().map(|(request, _, case, _)| (request.as_str(), case)).collect::<Vec<_>>())
            .await?;
        let entries: Vec<(u32, &contracts::Event)> =
            batch.iter().flat_map(|(_, _, _, history)| (1..).zip(history.iter())).collect();
        events += entries.len();
        tx.append_history(&entries).await?;
        let appended: Vec<Appended> = batch
            .iter()
            .map(|(_, opened, case, history)| Appended { loaded: opened, first_seq: 1, history, now: case })
            .collect();
        keep_lines(&mut tx, &appended, &reference).await?;
        tx.commit().await?;
    }
    let synthesis_seconds = started.elapsed().as_secs_f64();
    let lines = store.report_line_count().await?;

    let month = "2026-06".to_string();
    let period = Period::parse(&month).map_err(anyhow::Error::msg)?;
    let timed = |unit: Unit| {
        let (store, period) = (&store, &period);
        async move {
            let started = Instant::now();
            let report = report_of(store, period, &unit).await?;
            anyhow::Ok((report, started.elapsed().as_secs_f64()))
        }
    };
    let (county, county_month_seconds) = timed(Unit::County).await?;
    let (_, township_month_seconds) = timed(Unit::Township("610429100000".into())).await?;
    let (_, window_month_seconds) = timed(Unit::Window("610429000000-W01".into())).await?;
    let (_, staff_month_seconds) = timed(Unit::Staff("王审批".into())).await?;
    let started = Instant::now();
    bulletin_of(&store, &reference, &month, &period).await?;
    let bulletin_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let recounted = recount_of(&store, &reference, &period, &Unit::County).await?;
    let recount_seconds = started.elapsed().as_secs_f64();
    Ok(ReportBench {
        backend: scratch.backend,
        cases,
        events,
        lines,
        synthesis_seconds,
        month,
        month_received: county.received,
        county_month_seconds,
        township_month_seconds,
        window_month_seconds,
        staff_month_seconds,
        bulletin_seconds,
        recount_seconds,
        recount_matches: recounted == county,
    })
}

pub fn print_report_bench(bench: &ReportBench) {
    println!(
        "Reports over {} cases on {} ({} events, {} report lines, synthesised in {:.1} s)",
        bench.cases, bench.backend, bench.events, bench.lines, bench.synthesis_seconds
    );
    println!("Month {}: {} applications received", bench.month, bench.month_received);
    println!("  county report      {:>8.3} s", bench.county_month_seconds);
    println!("  township report    {:>8.3} s", bench.township_month_seconds);
    println!("  window report      {:>8.3} s", bench.window_month_seconds);
    println!("  staff report       {:>8.3} s", bench.staff_month_seconds);
    println!("  whole bulletin     {:>8.3} s", bench.bulletin_seconds);
    println!(
        "  recount from every history {:.1} s: {}",
        bench.recount_seconds,
        if bench.recount_matches { "the same figures" } else { "DIFFERENT FIGURES" }
    );
}
