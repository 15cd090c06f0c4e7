//! The demo: drives applications for the reference county through the whole hub, from a
//! village station over the HTTP API to a signed delivery receipt and the archive.

pub mod staff;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use connectors::bank;
use connectors::ecert;
use connectors::postal::simulator::{self, Faults, SimulatorConfig};
use connectors::postal::PUSH_PATH;
use connectors::province::{self, protocol::OnlineApplication};
use connectors::{seal, sms};
use contracts::catalogue::DEAD_LETTER_TOPIC;
use contracts::{Applicant, FeeReliefClaim, PostalAddress};
use futures::stream::{self, StreamExt as _};
use serde::Serialize;

use self::staff::Staff;
use hub::app::catalogue::guides_of;
use hub::app::intake::{DeliveryChoice, SubmitApplication};
use hub::config::Config;
use hub::{bind, Hub};
use hub_core::access::Role;
use hub_core::validation::resident_id_check;
use hub_core::Reference;

#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub cases: usize,
    /// Keep the database of an earlier run and carry on from where it stopped.
    pub resume: bool,
    /// Where the demo keeps its SQLite database (ignored with an explicit database URL).
    pub data_dir: PathBuf,
    /// An external carrier (or simulator) instead of the built-in simulator.
    pub postal_url: Option<String>,
    /// An external e-certificate repository (or simulator) instead of the built-in simulator.
    pub ecert_url: Option<String>,
    /// An external provincial platform simulator instead of the built-in one; online
    /// applications are filed at its `/admin/applications`.
    pub province_url: Option<String>,
    /// An external bank network simulator instead of the built-in one; applicants pay fees at
    /// its `/admin/payments`.
    pub bank_url: Option<String>,
    /// Time between two tracking events in the built-in simulator.
    pub step_delay: Duration,
    pub progress: bool,
    pub concurrency: usize,
    /// Faults the built-in postal simulator injects.
    pub faults: Faults,
    /// Faults the built-in e-certificate, provincial platform and bank simulators inject.
    pub counterpart_faults: connectors::simulation::Faults,
    /// The county-day mix of procedures; off: every case is a plain mailed approval.
    pub mix: bool,
    /// Seal documents electronically: with the configured seal service (`seal.base_url`), or
    /// else the built-in simulator.
    pub electronic_seals: bool,
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
    /// The applicants' reviews by channel: counter (their own screen), online (the link), sms.
    pub reviews_by_channel: BTreeMap<String, usize>,
}

/// The median, 99th and 99.9th percentile of a set of durations, in milliseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles; none of an empty set.
    pub fn of(mut values: Vec<f64>) -> Option<Percentiles> {
        if values.is_empty() {
            return None;
        }
        values.sort_unstable_by(f64::total_cmp);
        let at = |q: f64| values[((values.len() as f64 * q).ceil() as usize).clamp(1, values.len()) - 1];
        Some(Percentiles { p50: at(0.5), p99: at(0.99), p999: at(0.999) })
    }
}

/// A running demo environment: the hub and, unless an external one is given, the simulator.
pub struct DemoRun {
    pub hub: Hub,
    _simulator: Option<simulator::RunningSimulator>,
    _ecert_simulator: Option<ecert::simulator::RunningSimulator>,
    _province_simulator: Option<province::simulator::RunningSimulator>,
    _bank_simulator: Option<bank::simulator::RunningSimulator>,
    _seal_simulator: Option<seal::simulator::RunningSimulator>,
    _sms_simulator: Option<sms::simulator::RunningSimulator>,
    client: reqwest::Client,
    /// The county's people, each calling the API with their own token.
    pub staff: Staff,
    base: String,
    /// Other instances' APIs the demo also calls (`spread_over`).
    peers: Vec<String>,
    turn: std::sync::atomic::AtomicUsize,
    postal_url: String,
    ecert_url: String,
    province_url: String,
    bank_url: String,
    /// The SMS gateway (simulator): the applicants' phones, which read and answer the texts.
    sms_url: String,
    /// A resumed demo whose gateway simulator is its own: texts the killed run's gateway took
    /// died with it, so their applicants come to the counter instead.
    gateway_forgot_earlier_texts: bool,
    /// What the demo does with each case, by case number.
    profiles: std::sync::Mutex<HashMap<String, Profile>>,
    /// Fee orders the applicants have paid at the bank.
    paid_orders: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Cases final (or resting overdue) when the staff last counted: the submissions wait
    /// for them (`OPEN_CASES`).
    finished: std::sync::atomic::AtomicUsize,
    /// The most messages any of the hub's consumer groups had still to handle when last read
    /// (`BACKLOG_BOUND`).
    slowest_backlog: std::sync::atomic::AtomicUsize,
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
                    SimulatorConfig {
                        push_url: Some(push_url),
                        step_delay: options.step_delay,
                        faults: options.faults.clone(),
                    },
                )?;
                config.postal.base_url = sim.base_url.clone();
                Some(sim)
            }
        };
        let ecert_simulator = match &options.ecert_url {
            Some(url) => {
                config.ecert.base_url = url.clone();
                None
            }
            None => {
                let sim_config = ecert::simulator::SimulatorConfig {
                    app_id: config.ecert.app_id.clone(),
                    app_secret: config.ecert.app_secret.clone(),
                    faults: options.counterpart_faults.clone(),
                };
                let sim = ecert::simulator::spawn(bind("127.0.0.1:0").await?, sim_config)?;
                config.ecert.base_url = sim.base_url.clone();
                Some(sim)
            }
        };
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
        let province_simulator = match &options.province_url {
            Some(url) => {
                config.province.base_url = url.clone();
                None
            }
            None => {
                let push_url = format!("http://{}{}", listener.local_addr()?, province::PUSH_PATH);
                let sim_config = province::simulator::SimulatorConfig {
                    app_id: config.province.app_id.clone(),
                    app_secret: config.province.app_secret.clone(),
                    push_url: Some(push_url),
                    faults: options.counterpart_faults.clone(),
                };
                let sim = province::simulator::spawn(bind("127.0.0.1:0").await?, sim_config)?;
                // The platform holds the county's guides as the county published them.
                let guides = guides_of(&Reference::builtin());
                client.put(format!("{}/admin/matters", sim.base_url)).json(&guides).send().await?.error_for_status()?;
                config.province.base_url = sim.base_url.clone();
                Some(sim)
            }
        };
        let bank_simulator = match &options.bank_url {
            Some(url) => {
                config.bank.base_url = url.clone();
                None
            }
            None => {
                let push_url = format!("http://{}{}", listener.local_addr()?, bank::PUSH_PATH);
                let sim_config = bank::simulator::SimulatorConfig {
                    app_id: config.bank.app_id.clone(),
                    app_secret: config.bank.app_secret.clone(),
                    push_url: Some(push_url),
                    faults: options.counterpart_faults.clone(),
                };
                let sim = bank::simulator::spawn(bind("127.0.0.1:0").await?, sim_config)?;
                config.bank.base_url = sim.base_url.clone();
                Some(sim)
            }
        };
        let seal_simulator = if options.electronic_seals && config.seal.base_url.is_empty() {
            let sim_config = seal::simulator::SimulatorConfig {
                app_id: config.seal.app_id.clone(),
                app_secret: config.seal.app_secret.clone(),
                key_secret: "demo seal keys".into(),
                faults: options.counterpart_faults.clone(),
            };
            let sim = seal::simulator::spawn(bind("127.0.0.1:0").await?, sim_config)?;
            config.seal.base_url = sim.base_url.clone();
            Some(sim)
        } else {
            None
        };
        let sms_simulator = if config.sms.base_url.is_empty() {
            let sim_config = sms::simulator::SimulatorConfig {
                app_id: config.sms.app_id.clone(),
                app_secret: config.sms.app_secret.clone(),
                push_url: Some(format!("http://{}{}", listener.local_addr()?, sms::PUSH_PATH)),
                faults: options.counterpart_faults.clone(),
            };
            let sim = sms::simulator::spawn(bind("127.0.0.1:0").await?, sim_config)?;
            config.sms.base_url = sim.base_url.clone();
            Some(sim)
        } else {
            None
        };
        let gateway_forgot_earlier_texts = options.resume && sms_simulator.is_some();
        let hub = Hub::start(&config, listener).await?;
        let base = format!("http://{}", hub.api_address);
        let (postal_url, ecert_url, province_url) =
            (config.postal.base_url.clone(), config.ecert.base_url.clone(), config.province.base_url.clone());
        let (bank_url, sms_url) = (config.bank.base_url.clone(), config.sms.base_url.clone());
        let staff = Staff::of(&hub);
        Ok(DemoRun {
            hub,
            staff,
            _simulator: simulator,
            _ecert_simulator: ecert_simulator,
            _province_simulator: province_simulator,
            _bank_simulator: bank_simulator,
            _seal_simulator: seal_simulator,
            _sms_simulator: sms_simulator,
            client,
            base,
            peers: Vec::new(),
            turn: Default::default(),
            postal_url,
            ecert_url,
            province_url,
            bank_url,
            sms_url,
            gateway_forgot_earlier_texts,
            profiles: Default::default(),
            paid_orders: Default::default(),
            finished: Default::default(),
            slowest_backlog: Default::default(),
        })
    }

    /// Submits the applications, plays the clerks, approvers and applicants, and waits until
    /// every case is final; then the applicants review.
    pub async fn drive(&self, options: &DemoOptions) -> anyhow::Result<Summary> {
        let started = Instant::now();
        let reference = self.hub.reference.get();
        let applications = demo_applications(&reference, options.cases, options.mix);
        let bar = options.progress.then(|| progress_bar(options.cases));
        let submitting = self.submit_all(applications, options.concurrency);
        let done = tokio_util::sync::CancellationToken::new();
        let working = async {
            let worked = self.work_until_done(options.cases, Duration::ZERO, bar.as_ref()).await;
            done.cancel();
            worked
        };
        let (submitted, worked, ()) = tokio::join!(submitting, working, self.watch_backlog(&done));
        submitted?;
        worked?;
        if let Some(bar) = bar {
            bar.finish();
        }
        let elapsed = started.elapsed();
        self.catch_up().await?;
        self.aftercare().await?;
        self.review_all().await?;
        self.summary(options.cases, elapsed).await
    }

    async fn submit_all(
        &self,
        applications: impl Iterator<Item = (SubmitApplication, Profile)>,
        concurrency: usize,
    ) -> anyhow::Result<()> {
        let calls = applications.enumerate().map(|(position, (application, profile))| async move {
            while position >= self.finished.load(std::sync::atomic::Ordering::Relaxed) + OPEN_CASES
                || self.slowest_backlog.load(std::sync::atomic::Ordering::Relaxed) > BACKLOG_BOUND
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            self.submit(&application, profile).await
        });
        at_once(calls, concurrency.max(1)).await.map(drop)
    }

    async fn submit(&self, application: &SubmitApplication, profile: Profile) -> anyhow::Result<()> {
        if profile == Profile::Online {
            let case_number = self.file_online(application).await?;
            self.profiles.lock().expect("profiles lock").insert(case_number, profile);
        } else {
            self.hand_in(application, profile).await?;
        }
        Ok(())
    }

    /// Hands an application in at its service point's counter and returns the hub's answer;
    /// the demo's people then treat the case as `profile` says.
    pub async fn hand_in(
        &self,
        application: &SubmitApplication,
        profile: Profile,
    ) -> anyhow::Result<serde_json::Value> {
        let answer = self.post("/api/v1/applications", &serde_json::to_value(application)?).await?;
        let case_number = answer["case_number"].as_str().context("submission answer without case number")?;
        self.profiles.lock().expect("profiles lock").insert(case_number.to_string(), profile);
        Ok(answer)
    }

    /// Files the application on the provincial platform, as the applicant would online, and
    /// waits for the platform's push to open the case.
    async fn file_online(&self, application: &SubmitApplication) -> anyhow::Result<String> {
        let online = OnlineApplication {
            project_no: application.request_id.clone(),
            implementation_code: application.matter_code.clone(),
            applicant: application.applicant.clone(),
            domicile_township: application.domicile_township.clone(),
            materials: application.materials.clone(),
            certificates: Vec::new(),
            delivery_method: application.delivery.method.clone(),
            delivery_address: application.delivery.address.clone(),
            submitted_at: hub::store::now_ms(),
        };
        let platform = &self.province_url;
        let filed = self.client.post(format!("{platform}/admin/applications")).json(&online).send().await?;
        anyhow::ensure!(
            filed.status().is_success(),
            "filing {} online failed: {}",
            online.project_no,
            filed.text().await?
        );
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let record: serde_json::Value = self
                .client
                .get(format!("{platform}/admin/applications/{}", online.project_no))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            if let Some(case_number) = record["case_number"].as_str() {
                return Ok(case_number.to_string());
            }
            anyhow::ensure!(
                record["refused"].is_null(),
                "the hub refused online application {}: {}",
                online.project_no,
                record["refused"]
            );
            anyhow::ensure!(
                Instant::now() < deadline,
                "online application {} was not taken within two minutes",
                online.project_no
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn profile(&self, case_number: &str) -> Profile {
        self.profiles.lock().expect("profiles lock").get(case_number).copied().unwrap_or(Profile::Mailed)
    }

    /// Spreads the demo's calls over these other instances' APIs too (instances sharing the
    /// hub's database and broker), as a load balancer would, going on to the next one while an
    /// instance is down or draining.
    pub fn spread_over(&mut self, peers: Vec<String>) {
        self.peers = peers;
    }

    /// Calls the API, on the next instance in turn; a call answered "unavailable" (503), or
    /// whose instance did not answer, is made again, on another instance if there is one, for
    /// up to ten seconds. A repeated command refused as already done (409) had been done
    /// before its answer was lost: answered Null.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> anyhow::Result<serde_json::Value> {
        let instances = 1 + self.peers.len();
        let mut unanswered = 0;
        loop {
            let turn = self.turn.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % instances;
            let base = if turn == 0 { &self.base } else { &self.peers[turn - 1] };
            let mut request = self.client.request(method.clone(), format!("{base}{path}"));
            if let Some(body) = body {
                request = request.json(body);
            }
            let failed_over = unanswered > 0;
            let response = match self.staff.send(request).await {
                Ok(response) if response.status() != reqwest::StatusCode::SERVICE_UNAVAILABLE => response,
                // Unavailable for now (its database restarting, say), or down with others to ask.
                outcome if unanswered < 200 && (outcome.is_ok() || instances > 1) => {
                    unanswered += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                Ok(response) => response,
                Err(error) => return Err(error),
            };
            let status = response.status();
            if failed_over && status == reqwest::StatusCode::CONFLICT {
                return Ok(serde_json::Value::Null);
            }
            anyhow::ensure!(status.is_success(), "{method} {path} failed: {status} {}", response.text().await?);
            return Ok(response.json().await?);
        }
    }

    async fn post(&self, path: &str, body: &serde_json::Value) -> anyhow::Result<serde_json::Value> {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> anyhow::Result<serde_json::Value> {
        self.call(reqwest::Method::GET, path, None).await
    }

    /// Acts as the county until `cases` are finished: approvers decide their queues (a page at a
    /// time, plain approvals through the batch call) and issue what they approved, clerks take
    /// supplements, applicants collect their results. Each works their own queue side by side,
    /// as at a county hall, looking at it again at once when there was work, or after `pace` at
    /// the least; nobody waits for another's round.
    pub async fn work_until_done(
        &self,
        cases: usize,
        pace: Duration,
        bar: Option<&indicatif::ProgressBar>,
    ) -> anyhow::Result<()> {
        let done = tokio_util::sync::CancellationToken::new();
        let counting = async {
            let counted = self.count_until_finished(cases, bar).await;
            done.cancel();
            counted
        };
        tokio::try_join!(
            counting,
            keep_working(pace, &done, || self.deciding_round()),
            keep_working(pace, &done, || self.issuing_round()),
            keep_working(pace, &done, || self.supplementing_round()),
            keep_working(pace, &done, || self.collecting_round()),
        )?;
        Ok(())
    }

    /// Reads, every `BACKLOG_EVERY` until `done`, how many messages the hub's slowest consumer
    /// group has still to handle, for the submissions to wait on (a reading that fails keeps
    /// the last one).
    async fn watch_backlog(&self, done: &tokio_util::sync::CancellationToken) {
        while !done.is_cancelled() {
            let mut slowest = Some(0);
            for group in &self.hub.consumer_groups {
                let lag = self.hub.bus.group_lag(group).await.ok();
                slowest = slowest.zip(lag).map(|(slowest, lag)| slowest.max(lag));
            }
            if let Some(slowest) = slowest {
                self.slowest_backlog.store(slowest as usize, std::sync::atomic::Ordering::Relaxed);
            }
            tokio::select! {
                () = done.cancelled() => {}
                () = tokio::time::sleep(BACKLOG_EVERY) => {}
            }
        }
    }

    /// Counts the finished cases (scanning every case) a few times a second, which lets further
    /// submissions in and moves the progress bar, until `cases` are.
    async fn count_until_finished(&self, cases: usize, bar: Option<&indicatif::ProgressBar>) -> anyhow::Result<()> {
        loop {
            let by_state = self.hub.store.count_by_state().await?;
            // Commitments not kept rest until they fall due (`aftercare`).
            let finished = by_state
                .iter()
                .filter(|(state, _)| hub_core::CaseState::parse(state).is_some_and(|s| s.is_final()))
                .map(|(_, n)| *n)
                .sum::<i64>()
                + self.overdue_resting().await? as i64;
            self.finished.store(finished as usize, std::sync::atomic::Ordering::Relaxed);
            if let Some(bar) = bar {
                bar.set_position(finished as u64);
                bar.set_message(format!("{by_state:?}"));
            }
            if finished as usize >= cases {
                return Ok(());
            }
            tokio::time::sleep(COUNT_EVERY).await;
        }
    }

    /// Inspections an earlier, interrupted run started and did not finish, then the approvers'
    /// queues decided, a page of each (in turn: deciding starts and finishes inspections).
    async fn deciding_round(&self) -> anyhow::Result<bool> {
        let suspended = self.get("/api/v1/cases?state=suspended&limit=200").await?;
        for case in cases_in(&suspended) {
            let case_number = case["case_number"].as_str().context("case without number")?;
            self.complete_inspection(case_number).await?;
        }
        let queue = self.approval_queues().await?;
        if !queue.is_empty() {
            self.approve(&queue).await?;
        }
        Ok(!cases_in(&suspended).is_empty() || !queue.is_empty())
    }

    /// What the approvers approved made, sealed and sent out (制证, 盖章, 出件).
    async fn issuing_round(&self) -> anyhow::Result<bool> {
        let approved = self.get("/api/v1/cases?state=approved&limit=200").await?;
        let issued = at_once(cases_in(&approved).iter().map(|case| self.issue_result(case)), ISSUING_AT_ONCE).await?;
        Ok(!issued.is_empty())
    }

    /// Clerks take the supplements asked for, and the materials still owed on results out
    /// (容缺), except the commitments the demo lets go overdue.
    async fn supplementing_round(&self) -> anyhow::Result<bool> {
        // Newest first: the commitments let go overdue rest there, oldest, until they fall due.
        let [collected, delivered] = ["collected", "delivered"]
            .map(|state| format!("/api/v1/cases?state={state}&order=newest&limit={OWING_PAGE}"));
        let (supplements, collected, delivered) = tokio::try_join!(
            self.get("/api/v1/cases?state=awaiting_supplement&limit=200"),
            self.get(&collected),
            self.get(&delivered),
        )?;
        let owed = cases_in(&collected)
            .iter()
            .chain(cases_in(&delivered))
            .filter(|case| self.profile(case["case_number"].as_str().unwrap_or_default()) != Profile::Overdue);
        let supplemented =
            at_once(cases_in(&supplements).iter().chain(owed).map(|case| self.supplement(case)), 8).await?;
        Ok(!supplemented.is_empty())
    }

    /// Applicants collect the results waiting for them at the window.
    async fn collecting_round(&self) -> anyhow::Result<bool> {
        let pickups = self.get("/api/v1/cases?state=awaiting_pickup&limit=200").await?;
        let collected = at_once(cases_in(&pickups).iter().map(|case| self.collect(case)), 8).await?;
        Ok(!collected.is_empty())
    }

    /// Waits until the hub's own consumers have handled what the county day produced. Facts
    /// that move no case along (a text's delivery report) can queue behind a run at full
    /// speed, and an applicant's reply in the review phase would queue behind them.
    async fn catch_up(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + CATCH_UP;
        loop {
            let mut behind = BTreeMap::new();
            for group in hub::HUB_CONSUMERS {
                let lag = self.hub.bus.group_lag(group).await?;
                if lag > 0 {
                    behind.insert(group, lag);
                }
            }
            if behind.is_empty() {
                return Ok(());
            }
            anyhow::ensure!(Instant::now() < deadline, "the hub did not catch up within {CATCH_UP:?}: {behind:?}");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Cases whose commitment the demo lets go overdue, resting with their result out.
    async fn overdue_resting(&self) -> anyhow::Result<usize> {
        let mut resting = 0;
        for state in [hub_core::CaseState::Collected, hub_core::CaseState::Delivered] {
            let numbers = self.hub.store.case_numbers_in_state(state).await?;
            resting += numbers.iter().filter(|number| self.profile(number) == Profile::Overdue).count();
        }
        Ok(resting)
    }

    /// Each authority's approval queue, as its approvers see it, for the authorities the
    /// supervisor sees cases waiting at.
    async fn approval_queues(&self) -> anyhow::Result<Vec<serde_json::Value>> {
        let routed = self.get("/api/v1/cases?state=routed&limit=200").await?;
        let authorities: std::collections::BTreeSet<&str> =
            routed.as_array().into_iter().flatten().filter_map(|case| case["department_code"].as_str()).collect();
        let mut queue = Vec::new();
        for authority in authorities {
            let page = self.get(&format!("/api/v1/approvals?department={authority}&limit=200")).await?;
            queue.extend(page.as_array().cloned().unwrap_or_default());
        }
        Ok(queue)
    }

    /// Decides a page of the queue: opinions first for parallel approvals, a site inspection
    /// where the profile calls for one, then one batch of decisions.
    async fn approve(&self, queue: &[serde_json::Value]) -> anyhow::Result<()> {
        let prepared = at_once(queue.iter().map(|item| self.prepare_decision(item)), 8).await?;
        let decisions: Vec<serde_json::Value> = prepared.into_iter().flatten().collect();
        if decisions.is_empty() {
            // Only fees outstanding: give the bank a moment.
            tokio::time::sleep(Duration::from_millis(20)).await;
            return Ok(());
        }
        // Each department's approver decides its own cases, in one batch.
        let mut by_department: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
        for decision in decisions {
            by_department
                .entry(decision["department_code"].as_str().unwrap_or_default().to_string())
                .or_default()
                .push(decision);
        }
        for decisions in by_department.into_values() {
            let answer = self.post("/api/v1/decisions", &serde_json::json!({ "decisions": decisions })).await?;
            if answer.is_null() {
                continue; // decided before the instance answering went down
            }
            for result in answer["results"].as_array().context("batch decision answer without results")? {
                // 409: decided meanwhile (an earlier run or a retry); anything else is a failure.
                let code = result["status"].as_u64().unwrap_or(0);
                anyhow::ensure!(code == 200 || code == 409, "deciding {}: {result}", result["case_number"]);
            }
        }
        Ok(())
    }

    /// What an approver does before deciding a case of the queue: opinions, inspection,
    /// hearing, extension, complaint and the review steps, as its profile calls for; answers
    /// the decision, or None while the case waits for its fee.
    async fn prepare_decision(&self, item: &serde_json::Value) -> anyhow::Result<Option<serde_json::Value>> {
        let case_number = item["case_number"].as_str().context("queue item without case number")?;
        if item["fee"].is_object() && item["fee"]["paid"] != true {
            // The approval waits for the fee: the applicant pays at the bank once the order is placed.
            self.pay_fee(&item["fee"]).await?;
            return Ok(None);
        }
        let path = |action: &str| format!("/api/v1/cases/{case_number}/{action}");
        for department in item["opinions_pending"].as_array().into_iter().flatten() {
            let opinion = serde_json::json!({"department_code": department, "opinion": "agree"});
            self.post(&path("opinions"), &opinion).await?;
        }
        let profile = self.profile(case_number);
        if profile == Profile::Inspected && item["procedures_completed"] == 0 {
            let inspection =
                serde_json::json!({"procedure": "site_inspection", "departments": [item["department_code"]]});
            self.post(&path("procedures"), &inspection).await?;
            self.complete_inspection(case_number).await?;
        }
        if profile == Profile::Hearing && item["procedures_completed"] == 0 {
            self.hold_hearing(case_number).await?;
        }
        if matches!(profile, Profile::Extended | Profile::Complaint) {
            let record = self.get(&format!("/api/v1/cases/{case_number}")).await?;
            if profile == Profile::Extended && record["case"]["extended"] == false {
                let extension = serde_json::json!({"approved_by": "局长 王伟", "reason": "需补充核实经营场所权属，依法延长审批期限"});
                self.post(&path("extension"), &extension).await?;
            }
            if profile == Profile::Complaint {
                self.answer_complaint(case_number, &record["case"]).await?;
            }
        }
        for step in item["review_steps_pending"].as_array().into_iter().flatten() {
            let done = serde_json::json!({"step": step["step"], "remarks": "符合审查细则"});
            self.post(&path("steps"), &done).await?;
        }
        let (outcome, reason) = if matches!(profile, Profile::Denied | Profile::Refunded) {
            ("denied", Some("申请材料反映的经营条件不符合法定要求"))
        } else {
            ("approved", None)
        };
        Ok(Some(serde_json::json!({
            "case_number": case_number,
            "outcome": outcome,
            "reason": reason,
            "department_code": item["department_code"],
        })))
    }

    /// The applicant pays a placed fee order at a bank outlet, once.
    async fn pay_fee(&self, fee: &serde_json::Value) -> anyhow::Result<()> {
        let order = fee["order_number"].as_str().context("fee without order number")?;
        if fee["payment_code"].is_null()
            || !self.paid_orders.lock().expect("paid orders lock").insert(order.to_string())
        {
            return Ok(());
        }
        // The amount too: a resumed demo's fresh simulator does not know orders placed before.
        let payment = serde_json::json!({ "order_number": order, "amount_fen": fee["total_fen"] });
        let paid = self.client.post(format!("{}/admin/payments", self.bank_url)).json(&payment).send().await?;
        anyhow::ensure!(paid.status().is_success(), "paying {order} failed: {}", paid.text().await?);
        Ok(())
    }

    /// 制证, 盖章 and 出件 of an approved case, those not yet done, by its department.
    async fn issue_result(&self, case: &serde_json::Value) -> anyhow::Result<()> {
        let case_number = case["case_number"].as_str().context("case without number")?;
        let done: Vec<&str> =
            case["steps"].as_array().into_iter().flatten().filter_map(|s| s["step"].as_str()).collect();
        for (step, _) in hub_core::steps::RESULT_STEPS.iter().filter(|(step, _)| !done.contains(step)) {
            self.post(&format!("/api/v1/cases/{case_number}/steps"), &serde_json::json!({ "step": step })).await?;
        }
        Ok(())
    }

    /// The hearing rights told to the applicant and the neighbours, one asks for a hearing,
    /// which is announced seven working days ahead and its record entered.
    async fn hold_hearing(&self, case_number: &str) -> anyhow::Result<()> {
        let path = |action: &str| format!("/api/v1/cases/{case_number}/{action}");
        let parties = serde_json::json!(["相邻住户代表"]);
        self.post(&path("hearing-rights"), &serde_json::json!({ "parties": parties })).await?;
        let reference = self.hub.reference.get();
        let today = hub_core::calendar::day_of(hub::store::now_ms());
        let date = reference.calendar.add_working_days(today, hub_core::case::HEARING_NOTICE_DAYS);
        let hearing = serde_json::json!({
            "procedure": "hearing",
            "parties": parties,
            "scheduled_date": hub_core::calendar::iso_date(date),
        });
        self.post(&path("procedures"), &hearing).await?;
        let record = serde_json::json!({"summary": "听证会如期举行，利害关系人无异议"});
        self.post(&path("procedures/complete"), &record).await.map(drop)
    }

    /// The applicant's complaint at the counter (a red card and a 督办单), answered by the
    /// department.
    async fn answer_complaint(&self, case_number: &str, case: &serde_json::Value) -> anyhow::Result<()> {
        let path = |action: &str| format!("/api/v1/cases/{case_number}/{action}");
        let mut orders = case["supervisions"].clone();
        if orders.as_array().is_none_or(Vec::is_empty) {
            self.post(&path("complaints"), &serde_json::json!({"demanded": "村委会出具的无违法经营证明"})).await?;
            orders = self.get(&format!("/api/v1/cases/{case_number}")).await?["case"]["supervisions"].clone();
        }
        for order in orders.as_array().into_iter().flatten().filter(|o| o["answered"] == false) {
            let answer = serde_json::json!({
                "order_number": order["order_number"],
                "answer": "已核实：窗口人员要求提交指南外材料，已批评教育并当场纠正，申请人材料齐全继续办理",
            });
            self.post(&path("supervision/answer"), &answer).await?;
        }
        Ok(())
    }

    /// The weeks after the county day, simulated: each overdue commitment is found by the
    /// deadline check on the day after it fell due (a yellow card), and the clerk records what
    /// became of it, which closes the file.
    pub async fn aftercare(&self) -> anyhow::Result<usize> {
        let overdue: Vec<String> = {
            let profiles = self.profiles.lock().expect("profiles lock");
            profiles.iter().filter(|(_, p)| **p == Profile::Overdue).map(|(c, _)| c.clone()).collect()
        };
        let reference = self.hub.reference.get();
        // By the day each falls due, so the county's time limits are checked once per day.
        let mut due: BTreeMap<i64, Vec<hub::app::cases::Order>> = BTreeMap::new();
        for case_number in overdue {
            let Some(case) = self.hub.store.snapshot(&case_number).await? else { continue };
            let Some(promised) = case.commitment_date else { continue };
            if case.state.is_final() || !case.owes_materials() {
                continue;
            }
            // 10:00 on the day after the commitment fell due.
            let later = i64::from(promised + 1) * 86_400_000 + 2 * 3_600_000;
            let clerk = self.staff.holder_at(&case.application.service_point.code)?;
            let close = hub_core::Command::CloseCommitment {
                officer: clerk,
                outcome: "申请人逾期未补齐容缺材料，已电话催告无果，依承诺书记入信用记录并归档".into(),
            };
            due.entry(later).or_default().push(hub::app::cases::Order::hub(case_number, close));
        }
        let mut closed = 0;
        for (later, closes) in due {
            hub::app::deadlines::check_deadlines(&self.hub.store, &reference, later).await?;
            for result in
                hub::app::cases::execute_all_at(&self.hub.store, &reference, closes, later, hub::store::Waiting::Person)
                    .await?
            {
                result.map_err(|error| anyhow::anyhow!("closing an overdue commitment: {error:?}"))?;
                closed += 1;
            }
        }
        Ok(closed)
    }

    async fn complete_inspection(&self, case_number: &str) -> anyhow::Result<()> {
        let record = serde_json::json!({"summary": "现场与申请材料一致"});
        self.post(&format!("/api/v1/cases/{case_number}/procedures/complete"), &record).await.map(drop)
    }

    /// The applicant brings everything the one-time notice listed, or what a tolerant
    /// acceptance left owed.
    async fn supplement(&self, case: &serde_json::Value) -> anyhow::Result<()> {
        let case_number = case["case_number"].as_str().context("case without number")?;
        let matter = case["application"]["matter"]["implementation_code"].as_str().unwrap_or_default();
        let owed: Vec<String> = case["outstanding_materials"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m.as_str().map(String::from))
            .collect();
        let materials: Vec<String> = if case["state"] == "awaiting_supplement" {
            self.hub
                .reference
                .get()
                .matter(matter)
                .map(|m| m.materials.iter().map(|m| m.name.clone()).collect())
                .unwrap_or_default()
        } else {
            owed
        };
        self.post(&format!("/api/v1/cases/{case_number}/supplements"), &serde_json::json!({ "materials": materials }))
            .await
            .map(drop)
    }

    /// The applicant collects at the window with an ID card, or at the locker with the code.
    async fn collect(&self, case: &serde_json::Value) -> anyhow::Result<()> {
        let case_number = case["case_number"].as_str().context("case without number")?;
        // The supervisor's list masks ID numbers; the clerk at the counter sees the case whole.
        let record = self.get(&format!("/api/v1/cases/{case_number}")).await?;
        let case = &record["case"];
        let applicant = &case["application"]["applicant"];
        let mut body = serde_json::json!({
            "collected_by": applicant["name"],
            "id_number": applicant["id_number"],
            "pickup_code": case["pickup"]["code"],
            "notice_number": case["acceptance_notice"],
            "signature": format!("签名板记录 {case_number}"),
        });
        if self.profile(case_number) == Profile::Agent {
            // A relative collects: the acceptance notice, the applicant's ID and their own.
            body["collected_by"] =
                serde_json::json!(format!("{}（代取件人 亲属）", applicant["name"].as_str().unwrap_or_default()));
            body["agent"] = serde_json::json!({"id_number": "610429198805051236"});
        }
        self.post(&format!("/api/v1/cases/{case_number}/pickup"), &body).await.map(drop)
    }

    /// Every fourth applicant reviews, in turn at the counter on their own screen and by
    /// answering the SMS invitation; the dissatisfied ones online through the invitation's link.
    /// The supervisor verifies each bad review and closes its rectification. Safe to repeat
    /// after an interruption.
    async fn review_all(&self) -> anyhow::Result<()> {
        let reviewers: Vec<(String, Review)> = {
            let profiles = self.profiles.lock().expect("profiles lock");
            let mut all: Vec<(String, Profile)> = profiles.iter().map(|(c, p)| (c.clone(), *p)).collect();
            all.sort_by(|a, b| a.0.cmp(&b.0));
            all.into_iter()
                .enumerate()
                .filter(|(i, (_, p))| *p == Profile::BadReview || i % 4 == 0)
                .map(|(i, (case, profile))| {
                    let how = match profile {
                        Profile::BadReview => Review::Link,
                        _ if i % 8 == 4 => Review::Reply,
                        _ => Review::Counter,
                    };
                    (case, how)
                })
                .collect()
        };
        let reviews = reviewers.iter().map(|(case_number, how)| self.review(case_number, *how));
        at_once(reviews, 16).await.map(drop)
    }

    /// The review invitation the applicant's phone received for `case`, once the gateway
    /// delivered it; none when the case sent none (its result never reached the applicant) or
    /// the gateway that took it was killed with an earlier run.
    async fn invitation(&self, case: &serde_json::Value) -> anyhow::Result<Option<serde_json::Value>> {
        let sent =
            case["texts"].as_array().into_iter().flatten().find(|t| t["template"] == hub_core::sms::REVIEW_INVITATION);
        let Some((sent, message_id)) = sent.and_then(|t| Some((t, t["message_id"].as_str()?))) else {
            return Ok(None);
        };
        let lost_with_earlier_gateway = self.gateway_forgot_earlier_texts && sent["taken"] == true;
        let wait = if lost_with_earlier_gateway { Duration::from_secs(5) } else { Duration::from_secs(60) };
        let deadline = Instant::now() + wait;
        // The id holds slashes: one path segment, escaped.
        let mut lookup = reqwest::Url::parse(&format!("{}/admin/messages", self.sms_url))?;
        lookup.path_segments_mut().map_err(|()| anyhow::anyhow!("the gateway's address has no path"))?.push(message_id);
        loop {
            let answer = self.client.get(lookup.clone()).send().await?;
            if answer.status() != reqwest::StatusCode::NOT_FOUND {
                let record: serde_json::Value = answer.error_for_status()?.json().await?;
                return Ok(Some(record["message"].clone()));
            }
            if Instant::now() >= deadline {
                anyhow::ensure!(
                    lost_with_earlier_gateway,
                    "the review invitation {message_id} never reached the phone"
                );
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn review(&self, case_number: &str, how: Review) -> anyhow::Result<()> {
        let case_path = format!("/api/v1/cases/{case_number}");
        let path = |action: &str| format!("{case_path}/{action}");
        let mut record = self.get(&case_path).await?;
        if record["case"]["reviews"].as_array().is_none_or(Vec::is_empty) {
            let invitation = match how {
                Review::Counter => None,
                Review::Link | Review::Reply => self.invitation(&record["case"]).await?,
            };
            match (how, invitation) {
                (Review::Link, Some(invitation)) => {
                    let link = invitation["params"]["link"].as_str().context("invitation without link")?;
                    self.review_by_link(link, 2, "等候时间太长").await?
                }
                (Review::Reply, Some(invitation)) => {
                    let reply = serde_json::json!({"message_id": invitation["message_id"], "text": "5"});
                    let sent = self.client.post(format!("{}/admin/replies", self.sms_url)).json(&reply).send().await?;
                    anyhow::ensure!(sent.status().is_success(), "replying to {reply}: {}", sent.text().await?);
                }
                // At the counter (or where no invitation came): the clerk opens the visit, the
                // applicant grades it on the counter's screen.
                _ => {
                    let visit = self.post(&path("review-visits"), &serde_json::json!({})).await?;
                    self.review_by_link(visit["link"].as_str().context("visit without link")?, 5, "").await?;
                }
            }
            // A reply reaches the hub through the gateway's push: wait for it.
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                record = self.get(&case_path).await?;
                if !record["case"]["reviews"].as_array().is_none_or(Vec::is_empty) {
                    break;
                }
                anyhow::ensure!(Instant::now() < deadline, "the review of {case_number} never arrived");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        let open =
            record["case"]["rectifications"].as_array().into_iter().flatten().filter(|item| item["closed"] == false);
        for item in open {
            if item["substantiated"].is_null() {
                let verification = serde_json::json!({
                    "item_number": item["item_number"],
                    "finding": "调取窗口录像核实：高峰时段仅开一个窗口，等候超过四十分钟，情况属实",
                    "substantiated": true,
                    "reply": "经核实情况属实，已增开高峰时段窗口，感谢您的监督。",
                });
                self.post(&path("rectifications/verify"), &verification).await?;
            }
            let close = serde_json::json!({"item_number": item["item_number"], "feedback": "已增开窗口并回访申请人"});
            self.post(&path("rectifications/close"), &close).await?;
        }
        Ok(())
    }

    /// The applicant opens a review link (the page must load) and sends the form.
    async fn review_by_link(&self, link: &str, grade: i32, comment: &str) -> anyhow::Result<()> {
        let page = self.client.get(link).send().await?;
        anyhow::ensure!(page.status().is_success(), "review page {link}: {}", page.status());
        let url = url::Url::parse(link)?;
        let mut form: Vec<(String, String)> =
            url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        form.push(("grade".into(), grade.to_string()));
        form.push(("comment".into(), comment.into()));
        let action = format!("{}://{}{}", url.scheme(), url.authority(), url.path());
        let sent = self.client.post(action).form(&form).send().await?;
        anyhow::ensure!(sent.status().is_success(), "reviewing at {link}: {} {}", sent.status(), sent.text().await?);
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
            reviews_by_channel: reviews_by_channel(store).await?,
            // Events of the simulated later days (`aftercare`) are not the hub's latency.
            latency_ms: stage_latencies(store, hub::store::now_ms()).await?,
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

    /// The e-certificate repository the demo's hub talks to.
    pub fn ecert_url(&self) -> &str {
        &self.ecert_url
    }

    /// The provincial platform (simulator) the hub talks to.
    pub fn province_url(&self) -> &str {
        &self.province_url
    }

    /// The bank network (simulator) the hub talks to.
    pub fn bank_url(&self) -> &str {
        &self.bank_url
    }

    /// The SMS gateway (simulator) the hub talks to.
    pub fn sms_url(&self) -> &str {
        &self.sms_url
    }

    pub async fn stop(self) {
        self.hub.stop().await;
    }

    /// Keeps the hub serving after the run so that its web console can be looked at: prints
    /// the console's address and a token for one seat of each role, then waits for Ctrl-C.
    pub async fn serve_console(&self) -> anyhow::Result<()> {
        let reference = self.hub.reference.get();
        let (township, village) = reference.villages().next().context("the county has villages")?;
        let outlet = reference.county.bank_outlets.first().map(|outlet| outlet.code.clone());
        let seats = [
            (Role::VillageClerk, Some(village.code.clone())),
            (Role::TownshipClerk, Some(township.code.clone())),
            (Role::BankOutlet, outlet),
            (Role::CountyApprover, Some(reference.county.approval_bureau.clone())),
            (Role::Supervisor, None),
            (Role::Postal, None),
            (Role::DataBureau, None),
            (Role::Integrator, None),
        ];
        println!("\nweb console: {}/console/  (sign in with one of these tokens; Ctrl-C stops the hub)", self.base);
        println!("Kafka bootstrap: {}   schema registry: {}/schema-registry", self.hub.bus.bootstrap(), self.base);
        for (role, unit) in seats {
            println!("  {:<10} {}", role.title(), self.staff.token(role, unit.as_deref()).await?);
        }
        tokio::signal::ctrl_c().await?;
        Ok(())
    }
}

/// Repeats `round` (which answers whether it found work) until `done`.
async fn keep_working<F: std::future::Future<Output = anyhow::Result<bool>>>(
    pace: Duration,
    done: &tokio_util::sync::CancellationToken,
    round: impl Fn() -> F,
) -> anyhow::Result<()> {
    while !done.is_cancelled() {
        let paced = tokio::time::sleep(pace);
        let worked = tokio::select! {
            worked = round() => worked?,
            _ = done.cancelled() => return Ok(()),
        };
        if !worked {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        paced.await;
    }
    Ok(())
}

/// Makes `calls`, `width` at a time; answers their outcomes (in the order they finished), or
/// the first failure once all are done.
async fn at_once<T>(
    calls: impl Iterator<Item = impl std::future::Future<Output = anyhow::Result<T>>>,
    width: usize,
) -> anyhow::Result<Vec<T>> {
    let outcomes: Vec<anyhow::Result<T>> = stream::iter(calls).buffer_unordered(width).collect().await;
    outcomes.into_iter().collect()
}

/// The cases of a listing (none if it is not a list).
fn cases_in(listing: &serde_json::Value) -> &[serde_json::Value] {
    listing.as_array().map_or(&[], Vec::as_slice)
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

/// How an applicant reviews in the demo.
#[derive(Debug, Clone, Copy)]
enum Review {
    /// At the counter, on the applicant's own screen, for the visit.
    Counter,
    /// Online, through the link of the SMS invitation.
    Link,
    /// By answering the SMS invitation with a grade.
    Reply,
}

/// The reviews recorded, by channel.
async fn reviews_by_channel(store: &hub::store::Store) -> anyhow::Result<BTreeMap<String, usize>> {
    let tally = store.tally_events("ReviewSubmitted", &["channel"]).await?;
    Ok(tally.into_iter().map(|(mut channel, count)| (channel.remove(0), count as usize)).collect())
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

/// The percentiles of each stage over all cases that passed it by `until`.
pub async fn stage_latencies(store: &hub::store::Store, until: i64) -> anyhow::Result<BTreeMap<String, Percentiles>> {
    let kinds: Vec<&str> = STAGES
        .iter()
        .flat_map(|(_, from, to)| [*from, *to])
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let column = |kind: &str| kinds.iter().position(|k| *k == kind).expect("every stage's kinds are asked for");
    let columns: Vec<(usize, usize)> = STAGES.iter().map(|(_, from, to)| (column(from), column(to))).collect();
    let mut durations: Vec<Vec<f64>> = vec![Vec::new(); STAGES.len()];
    store
        .each_case_first_times(&kinds, until, |case| {
            for (stage, (from, to)) in columns.iter().enumerate() {
                if let (Some(from), Some(to)) = (case[*from], case[*to]) {
                    durations[stage].push((to - from) as f64);
                }
            }
        })
        .await?;
    Ok(STAGES
        .iter()
        .zip(durations)
        .filter_map(|((name, _, _), durations)| Some((name.to_string(), Percentiles::of(durations)?)))
        .collect())
}

const SURNAMES: [&str; 12] = ["王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "孙", "马"];
const GIVEN: [&str; 12] = ["建国", "秀英", "志强", "桂兰", "海燕", "伟", "芳", "军", "丽", "磊", "红梅", "永庆"];

/// Applications submitted at most ahead of the cases finished, as a county's day brings new
/// ones while earlier ones are decided: a long run holds no more in flight than a short one.
const OPEN_CASES: usize = 2_000;

/// Messages the hub's slowest consumer group may have still to handle before the counters
/// wait: past it the day outruns a group off the cases' path (the notifier, the province's
/// reports), whose backlog the embedded log would hold in memory; so a long run is held to the
/// rate every group keeps up with, and its cases/s is that rate. At full speed the case
/// consumer alone is some 30 000 behind.
const BACKLOG_BOUND: usize = 50_000;

/// How often the demo reads the consumer groups' backlog (each reading asks the broker for every
/// partition's offsets).
const BACKLOG_EVERY: Duration = Duration::from_secs(2);

/// How long the demo waits for the hub to handle what the county day left queued.
const CATCH_UP: Duration = Duration::from_secs(600);

/// The staff's page of results out with materials owed, newest first: what came out since
/// their last round, ahead of the commitments resting overdue (one case in 40).
const OWING_PAGE: usize = 200;

/// How often the demo counts the finished cases.
const COUNT_EVERY: Duration = Duration::from_millis(250);

/// Approved results the approvers issue at once.
const ISSUING_AT_ONCE: usize = 16;

/// What the demo does with a case: the county-day mix of DEMO.md's procedures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Complete materials, approved, mailed.
    Mailed,
    /// A primary material missing: one-time notice, then a supplement.
    Incomplete,
    /// A secondary material missing under a commitment (容缺受理).
    Tolerant,
    Window,
    Locker,
    Denied,
    /// A site inspection before the decision.
    Inspected,
    /// A township matter for an applicant from outside the county: not accepted.
    Refused,
    /// Approved, then a bad review and its rectification.
    BadReview,
    /// Parallel approval at the county hall.
    Parallel,
    /// Handed in at a bank outlet (channel bank).
    Bank,
    /// Filed online on the provincial platform, which pushes it to the hub (channel online).
    Online,
    /// A matter with a fee: ordered at acceptance, paid at a bank outlet before the approval.
    Fee,
    /// The same matter for a 低保 household: the fee waived in full by county rule.
    Waived,
    /// The fee paid, the application denied: refunded through the bank before the file closes.
    Refunded,
    /// The result goes back to the village station that took the application in.
    Station,
    /// Collected at the window by a (代)取件人 with the acceptance notice and both IDs.
    Agent,
    /// The decision limit extended once with the head's approval (延期告知书).
    Extended,
    /// The hearing rights told, then a hearing announced seven working days ahead.
    Hearing,
    /// The applicant complains at the counter of a material demanded outside the guide: a red
    /// card, a 督办单, and the department's answer.
    Complaint,
    /// Tolerant acceptance whose owed material never comes: once the commitment is overdue the
    /// clerk records its outcome and the file closes.
    Overdue,
}

impl Profile {
    /// The mix: about a third of the cases plain mailed approvals from village stations, the rest one
    /// procedure each.
    fn of(i: usize) -> Profile {
        match i % 40 {
            2 => Profile::Station,
            4 => Profile::Agent,
            6 => Profile::Extended,
            8 => Profile::Hearing,
            10 => Profile::Complaint,
            12 => Profile::Overdue,
            14 => Profile::Waived,
            16 => Profile::Refunded,
            3 | 23 => Profile::Incomplete,
            5 | 25 => Profile::Tolerant,
            7 | 27 => Profile::Window,
            9 | 29 => Profile::Locker,
            11 | 31 => Profile::Denied,
            13 => Profile::Inspected,
            15 => Profile::Refused,
            17 | 37 => Profile::BadReview,
            19 => Profile::Parallel,
            21 | 35 => Profile::Bank,
            33 | 39 => Profile::Online,
            1 => Profile::Fee,
            _ => Profile::Mailed,
        }
    }
}

/// Matters the mix uses for its special cases.
const HOMESTEAD: &str = "11610429MB2912349E4000117050000";
const CONSTRUCTION_PERMIT: &str = "11610429MB2912345A4000106012000";
const SELF_EMPLOYED: &str = "11610429MB2912345A4000104010000";
const FIRST_REGISTRATION: &str = "11610429MB291234CH4000105001000";

/// `count` applications handed in across the county, the same every run, with what the demo
/// does with each; made as they are handed in, so a long run does not hold them all.
pub fn demo_applications(
    reference: &Reference,
    count: usize,
    mix: bool,
) -> impl Iterator<Item = (SubmitApplication, Profile)> + '_ {
    let villages: Vec<_> = reference.villages().collect();
    let mut matters: Vec<_> =
        reference.matters().filter(|m| m.mail_allowed && m.accept_tiers.iter().any(|t| t == "village")).collect();
    matters.sort_by(|a, b| a.implementation_code.cmp(&b.implementation_code));
    (0..count).map(move |i| {
        let profile = if mix { Profile::of(i) } else { Profile::Mailed };
        let (township, village) = villages[i % villages.len()];
        let mut point = village.code.clone();
        let mut matter = matters[i % matters.len()];
        match profile {
            Profile::Refused => matter = reference.matter(HOMESTEAD).expect("homestead matter"),
            Profile::Parallel => {
                matter = reference.matter(CONSTRUCTION_PERMIT).expect("construction permit matter");
                point = reference.county.code.clone();
            }
            Profile::Bank => {
                let outlets = &reference.county.bank_outlets;
                point = outlets[i % outlets.len()].code.clone();
                matter = reference.matter(SELF_EMPLOYED).expect("self-employed matter");
            }
            Profile::Online => {
                point = reference.online_point().code.clone();
                matter = reference.matter(SELF_EMPLOYED).expect("self-employed matter");
            }
            Profile::Fee | Profile::Waived | Profile::Refunded => {
                point = township.code.clone();
                matter = reference.matter(FIRST_REGISTRATION).expect("first real-estate registration matter");
            }
            // A matter that lets its secondary material be owed.
            Profile::Overdue => matter = reference.matter(SELF_EMPLOYED).expect("self-employed matter"),
            _ => {}
        }
        let name = format!("{}{}", SURNAMES[i % SURNAMES.len()], GIVEN[(i / SURNAMES.len()) % GIVEN.len()]);
        let birth = format!("{:04}{:02}{:02}", 1950 + i % 50, 1 + i % 12, 1 + i % 28);
        let first17 = format!("610429{birth}{:03}", i % 1000);
        let phone = format!("139{:08}", i);
        let mut materials: Vec<String> = matter.materials.iter().map(|m| m.name.clone()).collect();
        let secondary = matter.materials.iter().find(|m| !m.primary).map(|m| m.name.clone());
        let mut commits_to_supply = false;
        match (profile, &secondary) {
            (Profile::Incomplete, _) => drop(materials.remove(0)),
            (Profile::Tolerant | Profile::Overdue, Some(secondary)) => {
                materials.retain(|m| m != secondary);
                commits_to_supply = true;
            }
            _ => {}
        }
        let address = PostalAddress {
            name: name.clone(),
            phone: phone.clone(),
            province: reference.county.province.clone(),
            city: reference.county.city.clone(),
            county: reference.county.name.clone(),
            address: format!("{}{}{}组{}号", township.name, village.name, 1 + i % 9, 1 + i % 60),
            post_code: reference.county.post_code.clone(),
        };
        let delivery = match profile {
            Profile::Window | Profile::Agent => DeliveryChoice { method: "window".into(), address: None },
            Profile::Station => DeliveryChoice { method: "village_station".into(), address: None },
            Profile::Locker => DeliveryChoice { method: "locker".into(), address: None },
            _ => DeliveryChoice { method: "mail".into(), address: Some(address) },
        };
        let application = SubmitApplication {
            request_id: format!("demo-{i}"),
            matter_code: matter.implementation_code.clone(),
            service_point: point,
            channel: match profile {
                Profile::Bank => "bank".into(),
                Profile::Online => "online".into(),
                _ => "counter".into(),
            },
            applicant: Applicant {
                name,
                id_type: "111".into(),
                id_number: format!("{first17}{}", resident_id_check(&first17)),
                phone,
                // Every fifth applicant wants notices by e-mail.
                email: (i % 5 == 0).then(|| format!("applicant{i}@example.cn")),
            },
            materials,
            faulty_materials: Vec::new(),
            certificates: Vec::new(),
            commits_to_supply,
            fee_relief: (profile == Profile::Waived)
                .then(|| FeeReliefClaim { rule: "dibao".into(), proof_number: format!("低保证 610429-{i:05}") }),
            // Outside the county (Changwu, 610428): the homestead matter cannot be accepted here.
            domicile_township: (profile == Profile::Refused).then(|| "610428100000".into()),
            delivery,
            // The token's holder and window are recorded by the hub, whatever is sent.
            received_by: String::new(),
            window: None,
        };
        (application, profile)
    })
}

/// Prints the summary as the table an operator reads.
pub fn print_summary(summary: &Summary) {
    println!();
    println!("Cases            {:>8}   completed {:>8}", summary.cases, summary.completed);
    println!("Elapsed          {:>8.2} s", summary.elapsed_seconds);
    println!(
        "Throughput       {:>8.1} cases/s   {:.1} hub messages/s",
        summary.cases_per_second, summary.hub_messages_per_second
    );
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
    println!("{:<32} {:>8}", "reviews by channel", "reviews");
    for (channel, count) in &summary.reviews_by_channel {
        println!("{channel:<32} {count:>8}");
    }
    println!();
    print_latencies("stage latency (ms)", &summary.latency_ms);
}

/// A table of percentiles by what they measure.
pub fn print_latencies<'a>(heading: &str, rows: impl IntoIterator<Item = (&'a String, &'a Percentiles)>) {
    println!("{heading:<32} {:>9} {:>9} {:>9}", "p50", "p99", "p99.9");
    for (what, p) in rows {
        println!("{what:<32} {:>9.1} {:>9.1} {:>9.1}", p.p50, p.p99, p.p999);
    }
}
