//! The demo: drives applications for the reference county through the whole hub, from a
//! village station over the HTTP API to a signed delivery receipt and the archive.
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use connectors::postal::simulator::{self, Faults, SimulatorConfig};
use connectors::postal::PUSH_PATH;
use contracts::catalogue::DEAD_LETTER_TOPIC;
use contracts::{Applicant, PostalAddress};
use futures::stream::{self, StreamExt as _};
use serde::Serialize;

use crate::app::{bind, Hub};
use crate::config::Config;
use crate::domain::validation::resident_id_check;
use crate::domain::Reference;
use crate::workflow::{DeliveryChoice, SubmitApplication};

#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub cases: usize,
    /// Keep the database of an earlier run and carry on from where it stopped.
    pub resume: bool,
    /// Where the demo keeps its SQLite database (ignored with an explicit database URL).
    pub data_dir: PathBuf,
    /// An external carrier (or simulator) instead of the built-in simulator.
    pub postal_url: Option<String>,
    /// Time between two tracking events in the built-in simulator.
    pub step_delay: Duration,
    pub progress: bool,
    pub concurrency: usize,
    /// Faults the built-in simulator injects.
    pub faults: Faults,
}

/// What a run achieved; printed as a table and written as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub cases: usize,
    pub completed: usize,
    pub by_state: BTreeMap<String, i64>,
    pub messages_per_topic: BTreeMap<String, i64>,
    pub dead_letters: i64,
    pub elapsed_seconds: f64,
    pub cases_per_second: f64,
    pub hub_messages_per_second: f64,
    pub latency_ms: BTreeMap<String, Percentiles>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Percentiles {
    pub p50: i64,
    pub p99: i64,
}

/// A running demo environment: the hub and, unless an external one is given, the simulator.
pub struct DemoRun {
    pub hub: Hub,
    _simulator: Option<simulator::RunningSimulator>,
    client: reqwest::Client,
    base: String,
    postal_url: String,
}

impl DemoRun {
    pub async fn start(mut config: Config, options: &DemoOptions) -> anyhow::Result<DemoRun> {
        if config.database.url == Config::default().database.url {
            let file = options.data_dir.join("hub.db");
            if !options.resume {
                for suffix in ["", "-wal", "-shm"] {
                    let path = PathBuf::from(format!("{}{suffix}", file.display()));
                    if path.exists() {
                        std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
                    }
                }
            }
            config.database.url = format!("sqlite://{}", file.display());
        }
        let listener = bind(&config.api.listen).await?;
        let push_url = format!("http://{}{PUSH_PATH}", listener.local_addr()?);
        let simulator = match &options.postal_url {
            Some(url) => {
                config.postal.base_url = url.clone();
                None
            }
            None => {
                let sim_listener = bind("127.0.0.1:0").await?;
                let sim = simulator::spawn(
                    sim_listener,
                    SimulatorConfig { push_url: Some(push_url), step_delay: options.step_delay, faults: options.faults.clone() },
                )?;
                config.postal.base_url = sim.base_url.clone();
                Some(sim)
            }
        };
        let hub = Hub::start(&config, listener).await?;
        let base = format!("http://{}", hub.api_address);
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
        let postal_url = config.postal.base_url.clone();
        Ok(DemoRun { hub, _simulator: simulator, client, base, postal_url })
    }

    /// Submits the applications, plays the county approvers, and waits until every case is final.
    pub async fn drive(&self, options: &DemoOptions) -> anyhow::Result<Summary> {
        let started = Instant::now();
        let applications = demo_applications(&self.hub.reference, options.cases);
        let bar = options.progress.then(|| progress_bar(options.cases));
        let submitting = self.submit_all(&applications, options.concurrency);
        let approving = self.approve_until_done(options.cases, bar.as_ref());
        let (submitted, approved) = tokio::join!(submitting, approving);
        submitted?;
        approved?;
        if let Some(bar) = bar {
            bar.finish();
        }
        self.summary(options.cases, started.elapsed()).await
    }

    async fn submit_all(&self, applications: &[SubmitApplication], concurrency: usize) -> anyhow::Result<()> {
        let calls = applications.iter().map(|application| self.submit(application));
        let results: Vec<anyhow::Result<()>> = stream::iter(calls).buffer_unordered(concurrency.max(1)).collect().await;
        results.into_iter().collect()
    }

    async fn submit(&self, application: &SubmitApplication) -> anyhow::Result<()> {
        let response = self.client.post(format!("{}/api/v1/applications", self.base)).json(application).send().await?;
        let status = response.status();
        anyhow::ensure!(status.is_success(), "submitting {} failed: {status} {}", application.request_id, response.text().await?);
        Ok(())
    }

    /// Acts as the county departments: decides every case in the approval queue, a page at a
    /// time through the batch-approval call.
    async fn approve_until_done(&self, cases: usize, bar: Option<&indicatif::ProgressBar>) -> anyhow::Result<()> {
        let mut counted = Instant::now();
        loop {
            let queue: Vec<serde_json::Value> =
                self.client.get(format!("{}/api/v1/approvals?limit=200", self.base)).send().await?.error_for_status()?.json().await?;
            if !queue.is_empty() {
                self.approve(&queue).await?;
            }
            // Counting scans every case: only when idle, or to move the progress bar along.
            if queue.is_empty() || (bar.is_some() && counted.elapsed() > Duration::from_millis(200)) {
                counted = Instant::now();
                let by_state = self.hub.store.count_by_state().await?;
                let finished = by_state.iter().filter(|(state, _)| crate::domain::CaseState::parse(state).is_some_and(|s| s.is_final())).map(|(_, n)| *n).sum::<i64>();
                if let Some(bar) = bar {
                    bar.set_position(finished as u64);
                    bar.set_message(format!("{by_state:?}"));
                }
                if finished as usize >= cases {
                    return Ok(());
                }
            }
            if queue.is_empty() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    async fn approve(&self, queue: &[serde_json::Value]) -> anyhow::Result<()> {
        let decisions: Vec<serde_json::Value> = queue
            .iter()
            .map(|item| {
                serde_json::json!({
                    "case_number": item["case_number"],
                    "outcome": "approved",
                    "officer": "县审批局 王审批",
                    "department_code": item["department_code"],
                })
            })
            .collect();
        let response = self.client.post(format!("{}/api/v1/decisions", self.base)).json(&serde_json::json!({ "decisions": decisions })).send().await?;
        let status = response.status();
        anyhow::ensure!(status.is_success(), "batch decision failed: {status} {}", response.text().await?);
        let answer: serde_json::Value = response.json().await?;
        for result in answer["results"].as_array().context("batch decision answer without results")? {
            // 409: decided meanwhile (an earlier run or a retry); anything else is a failure.
            let code = result["status"].as_u64().unwrap_or(0);
            anyhow::ensure!(code == 200 || code == 409, "deciding {}: {result}", result["case_number"]);
        }
        Ok(())
    }

    pub async fn summary(&self, cases: usize, elapsed: Duration) -> anyhow::Result<Summary> {
        let store = &self.hub.store;
        let by_state = store.count_by_state().await?;
        let completed = by_state.get("archived").copied().unwrap_or(0) as usize;
        let messages_per_topic = store.messages_per_topic().await?;
        let dead_letters = self.hub.bus.message_count(DEAD_LETTER_TOPIC).await.unwrap_or(0);
        let total_messages: i64 = messages_per_topic.values().sum();
        let seconds = elapsed.as_secs_f64().max(1e-9);
        Ok(Summary {
            cases,
            completed,
            by_state,
            messages_per_topic,
            dead_letters,
            elapsed_seconds: seconds,
            cases_per_second: completed as f64 / seconds,
            hub_messages_per_second: total_messages as f64 / seconds,
            latency_ms: stage_latencies(&store.event_times().await?),
        })
    }

    /// Base URL of the carrier API in use.
    pub fn postal_url(&self) -> &str {
        &self.postal_url
    }

    /// Base URL of the hub's HTTP API.
    pub fn api_url(&self) -> &str {
        &self.base
    }

    pub async fn stop(self) {
        self.hub.stop().await;
    }
}

fn progress_bar(cases: usize) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(cases as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} archived  {msg}")
            .expect("static template")
            .progress_chars("=> "),
    );
    bar
}

/// The stages of a case's life whose duration the summary reports, as pairs of event kinds.
pub const STAGES: [(&str, &str, &str); 8] = [
    ("1 submitted->accepted", "ApplicationSubmitted", "CaseAccepted"),
    ("2 accepted->routed", "CaseAccepted", "CaseRouted"),
    ("3 routed->decided", "CaseRouted", "CaseDecided"),
    ("4 decided->delivery requested", "CaseDecided", "DeliveryRequested"),
    ("5 requested->order created", "DeliveryRequested", "DeliveryOrderCreated"),
    ("6 order created->delivered", "DeliveryOrderCreated", "DeliveryCompleted"),
    ("7 delivered->archived", "DeliveryCompleted", "CaseArchived"),
    ("total submitted->archived", "ApplicationSubmitted", "CaseArchived"),
];

/// p50 and p99 of each stage over all cases that passed it.
pub fn stage_latencies(events: &[(String, String, i64)]) -> BTreeMap<String, Percentiles> {
    let mut times: HashMap<&str, HashMap<&str, i64>> = HashMap::new();
    for (case, kind, at) in events {
        times.entry(case.as_str()).or_default().entry(kind.as_str()).or_insert(*at);
    }
    STAGES
        .iter()
        .filter_map(|(name, from, to)| {
            let mut durations: Vec<i64> = times.values().filter_map(|t| Some(t.get(to)? - t.get(from)?)).collect();
            if durations.is_empty() {
                return None;
            }
            durations.sort_unstable();
            let at = |q: f64| durations[((durations.len() - 1) as f64 * q).round() as usize];
            Some((name.to_string(), Percentiles { p50: at(0.5), p99: at(0.99) }))
        })
        .collect()
}

const SURNAMES: [&str; 12] = ["王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "孙", "马"];
const GIVEN: [&str; 12] = ["建国", "秀英", "志强", "桂兰", "海燕", "伟", "芳", "军", "丽", "磊", "红梅", "永庆"];

/// `count` applications handed in at village stations across the county, the same every run.
pub fn demo_applications(reference: &Reference, count: usize) -> Vec<SubmitApplication> {
    let villages: Vec<_> = reference.villages().collect();
    let mut matters: Vec<_> = reference.matters().filter(|m| m.mail_allowed && m.accept_tiers.iter().any(|t| t == "village")).collect();
    matters.sort_by(|a, b| a.implementation_code.cmp(&b.implementation_code));
    (0..count)
        .map(|i| {
            let (township, village) = villages[i % villages.len()];
            let matter = matters[i % matters.len()];
            let name = format!("{}{}", SURNAMES[i % SURNAMES.len()], GIVEN[(i / SURNAMES.len()) % GIVEN.len()]);
            let birth = format!("{:04}{:02}{:02}", 1950 + i % 50, 1 + i % 12, 1 + i % 28);
            let first17 = format!("610429{birth}{:03}", i % 1000);
            let phone = format!("139{:08}", i);
            SubmitApplication {
                request_id: format!("demo-{i}"),
                matter_code: matter.implementation_code.clone(),
                service_point: village.code.clone(),
                channel: "counter".into(),
                applicant: Applicant {
                    name: name.clone(),
                    id_type: "111".into(),
                    id_number: format!("{first17}{}", resident_id_check(&first17)),
                    phone: phone.clone(),
                },
                materials: matter.materials.iter().map(|m| m.name.clone()).collect(),
                delivery: DeliveryChoice {
                    method: "mail".into(),
                    address: Some(PostalAddress {
                        name,
                        phone,
                        province: reference.county.province.clone(),
                        city: reference.county.city.clone(),
                        county: reference.county.name.clone(),
                        address: format!("{}{}{}组{}号", township.name, village.name, 1 + i % 9, 1 + i % 60),
                        post_code: reference.county.post_code.clone(),
                    }),
                },
            }
        })
        .collect()
}

/// Prints the summary as the table an operator reads.
pub fn print_summary(summary: &Summary) {
    println!();
    println!("Cases            {:>8}   completed {:>8}", summary.cases, summary.completed);
    println!("Elapsed          {:>8.2} s", summary.elapsed_seconds);
    println!("Throughput       {:>8.1} cases/s   {:.1} hub messages/s", summary.cases_per_second, summary.hub_messages_per_second);
    println!();
    println!("{:<32} {:>8}", "final state", "cases");
    for (state, count) in &summary.by_state {
        println!("{state:<32} {count:>8}");
    }
    println!();
    println!("{:<32} {:>8}", "topic", "messages");
    for (topic, count) in &summary.messages_per_topic {
        println!("{topic:<32} {count:>8}");
    }
    println!("{:<32} {:>8}", DEAD_LETTER_TOPIC, summary.dead_letters);
    println!();
    println!("{:<32} {:>8} {:>8}", "stage latency (ms)", "p50", "p99");
    for (stage, p) in &summary.latency_ms {
        println!("{stage:<32} {:>8} {:>8}", p.p50, p.p99);
    }
}

/// Runs the demo end to end; returns the summary.
pub async fn run(config: Config, options: DemoOptions) -> anyhow::Result<Summary> {
    let demo = DemoRun::start(config, &options).await?;
    let summary = demo.drive(&options).await;
    demo.stop().await;
    summary
}
