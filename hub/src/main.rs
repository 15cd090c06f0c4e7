use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use connectors::postal::simulator::{self, Faults, SimulatorConfig};
use connectors::{bank, ecert, province, simulation};
use hub::config::Config;
use hub::demo::{self, DemoOptions};
use hub::{app, bench};
use tracing_subscriber::EnvFilter;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// County–township–village government services integration hub.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// Configuration file (TOML); `HUB_*` environment variables override it.
    #[arg(long, global = true, env = "HUB_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the hub: API, consumers, outbox relay and connectors, as configured.
    Run,
    /// Drive demo applications for the reference county through the whole hub.
    Demo {
        /// Number of applications.
        #[arg(long, default_value_t = 1000)]
        cases: usize,
        /// Also write the summary as JSON to this file.
        #[arg(long)]
        summary_json: Option<PathBuf>,
        /// Keep the database of an earlier (possibly interrupted) run and finish it.
        #[arg(long)]
        resume: bool,
        /// Directory of the demo's SQLite database.
        #[arg(long, default_value = "data/demo")]
        data_dir: PathBuf,
        /// Use this carrier API (e.g. a separately started `postal-sim`) instead of the built-in simulator.
        #[arg(long)]
        postal_url: Option<String>,
        /// Use this e-certificate repository (e.g. a separately started `ecert-sim`) instead of the
        /// built-in simulator; the app id and secret come from the configuration (`[ecert]`).
        #[arg(long)]
        ecert_url: Option<String>,
        /// Use this provincial platform simulator (e.g. a separately started `province-sim`)
        /// instead of the built-in one; online applications are filed at it.
        #[arg(long)]
        province_url: Option<String>,
        /// Use this bank network simulator (e.g. a separately started `bank-sim`) instead of the
        /// built-in one; applicants pay fees at it.
        #[arg(long)]
        bank_url: Option<String>,
        /// Time between two tracking events of the built-in simulator.
        #[arg(long, default_value_t = 10)]
        step_delay_ms: u64,
        /// No progress bar.
        #[arg(long)]
        no_progress: bool,
        /// Only plain mailed approvals, without the county-day mix of procedures.
        #[arg(long)]
        plain: bool,
        /// After the run, keep the hub serving its web console (with a token printed for each
        /// role) until Ctrl-C.
        #[arg(long)]
        serve: bool,
    },
    /// Benchmark the demo pipeline against the bare broker rate.
    Bench {
        #[arg(long, default_value_t = 2000)]
        cases: usize,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Run the pipeline without writing the audit ledger, to see what the ledger costs.
        #[arg(long)]
        without_ledger: bool,
        /// Then measure the ledger on its own with this many synthetic entries (0: skip).
        #[arg(long, default_value_t = 200_000)]
        ledger_entries: usize,
    },
    /// Show where an application would be decided, by which rule and why.
    Explain {
        /// Implementation code of the matter.
        #[arg(long)]
        matter: String,
        /// Code of the accepting service point.
        #[arg(long)]
        service_point: String,
        /// The applicant's township, for matters decided where the applicant lives.
        #[arg(long)]
        domicile_township: Option<String>,
    },
    /// Run the postal carrier simulator as its own server.
    PostalSim {
        #[arg(long, default_value = "127.0.0.1:8090")]
        listen: String,
        /// Where to push tracking events, e.g. http://127.0.0.1:8080/connectors/postal/tracking.
        #[arg(long)]
        push_url: Option<String>,
        #[arg(long, default_value_t = 10)]
        step_delay_ms: u64,
        #[command(flatten)]
        faults: FaultArgs,
        /// Share of items that cannot be delivered and are returned.
        #[arg(long, default_value_t = 0.0)]
        failed_delivery_rate: f64,
    },
    /// Operate the connectors of a running hub over its API: status, pause, resume, restart, offsets.
    Connectors {
        #[command(flatten)]
        api: HubApi,
        #[command(subcommand)]
        action: ConnectorAction,
    },
    /// The data bureau's audit ledger of a running hub; `check` works offline.
    Audit {
        #[command(flatten)]
        api: HubApi,
        #[command(subcommand)]
        action: AuditAction,
    },
    /// API tokens, on the hub's own database (run where the hub runs, with its configuration);
    /// every change is an entry of the audit ledger.
    Tokens {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Synchronise the matter catalogue of a running hub with the provincial platform now.
    CatalogueSync {
        #[command(flatten)]
        api: HubApi,
    },
    /// Reconcile a day's bank statement against the fee orders and payments of a running hub.
    BankReconcile {
        #[command(flatten)]
        api: HubApi,
        /// The day, YYYY-MM-DD (China Standard Time).
        #[arg(long)]
        date: String,
    },
    /// Run the bank network simulator as its own server; it pushes payment confirmations to
    /// e.g. http://127.0.0.1:8080/connectors/bank/payments.
    BankSim {
        #[arg(long, default_value = "127.0.0.1:8093")]
        listen: String,
        #[command(flatten)]
        counterpart: PushingCounterpart,
    },
    /// Run the provincial platform simulator as its own server; it pushes online applications to
    /// e.g. http://127.0.0.1:8080/connectors/province/applications.
    ProvinceSim {
        #[arg(long, default_value = "127.0.0.1:8092")]
        listen: String,
        /// Seed the platform's catalogue with the reference county's matter guides.
        #[arg(long)]
        seed_catalogue: bool,
        #[command(flatten)]
        counterpart: PushingCounterpart,
    },
    /// Run the e-certificate repository simulator as its own server.
    EcertSim {
        #[arg(long, default_value = "127.0.0.1:8091")]
        listen: String,
        #[command(flatten)]
        counterpart: SignedCounterpart,
    },
}

/// A running hub's API and the token to call it with.
#[derive(Debug, Args)]
struct HubApi {
    /// The hub's HTTP API.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    api: String,
    /// Your API token (`hub tokens issue` makes the first one).
    #[arg(long, env = "HUB_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

impl HubApi {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api.trim_end_matches('/'))
    }

    fn client(&self) -> anyhow::Result<reqwest::Client> {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(token) = &self.token {
            headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {}", token.trim()).parse()?);
        }
        Ok(reqwest::Client::builder().default_headers(headers).build()?)
    }
}

#[derive(Debug, Subcommand)]
enum TokenAction {
    /// Issue a token; its text is printed this once. The first integrator's token comes from here.
    Issue {
        /// The person's or system's name.
        #[arg(long)]
        holder: String,
        /// village_clerk, township_clerk, bank_outlet, county_approver, supervisor, postal, data_bureau or integrator.
        #[arg(long)]
        role: String,
        /// The service point (clerks, outlets) or department (approvers) code.
        #[arg(long)]
        unit: Option<String>,
        /// A system's token rather than a person's.
        #[arg(long)]
        system: bool,
        #[arg(long)]
        valid_days: Option<u32>,
    },
    /// Every token: holder, role, unit, expiry, revocation (never the secret).
    List,
    /// Revoke a token by its id.
    Revoke { token_id: String },
}

#[derive(Debug, Subcommand)]
enum ConnectorAction {
    /// Each connector's state, applied batches and incidents.
    Status,
    /// Stop a connector taking requests until resumed.
    Pause {
        name: String,
        #[arg(long)]
        reason: String,
    },
    /// Let a paused or restarting connector run again; resolves its open incidents.
    Resume { name: String },
    /// Let a connector try again now, without waiting out its restart backoff; its open
    /// incidents close once calls succeed.
    Restart { name: String },
    /// Where a connector (or any consumer group) stands on each partition: committed offset, end, lag.
    Offsets { name: String },
    /// Move a connector's (or any consumer group's) offsets: `earliest` reads everything held
    /// again, `latest` skips the backlog, an RFC 3339 instant starts from the messages written then.
    ResetOffsets {
        name: String,
        #[arg(long)]
        to: String,
        /// Only this topic; every topic the group reads by default.
        #[arg(long)]
        topic: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum AuditAction {
    /// Check the whole chain and every checkpoint; names the first bad entry.
    Verify,
    /// Sign a checkpoint over the ledger now.
    Checkpoint,
    /// The hub's public key, for checking checkpoints offline.
    PublicKey,
    /// Entries about a person (by ID number), a department's exchanges in a period, or those
    /// with no case behind them.
    Search {
        #[arg(long)]
        subject_id: Option<String>,
        #[arg(long)]
        department: Option<String>,
        /// RFC 3339 instants.
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        until: Option<String>,
        #[arg(long)]
        without_case: bool,
    },
    /// Exchanges per day and pair of parties (requesting department, provider).
    Volume {
        /// RFC 3339 instants; the last 30 days by default.
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        until: Option<String>,
    },
    /// Alerts of the anomaly rules (bulk reads off hours, reads with no case, volume above norm).
    Alerts {
        /// RFC 3339 instants; the last 30 days by default.
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        until: Option<String>,
    },
    /// One entry with its inclusion proof against the newest checkpoint (save it to check offline).
    Proof { seq: i64 },
    /// Archive the entries recorded before an instant now (retention does it hourly).
    Archive {
        /// RFC 3339 instant.
        #[arg(long)]
        before: String,
    },
    /// The archive files made so far.
    Archives,
    /// Offline, with the public key alone: check an exported checkpoint, entry proof, bundle or
    /// archive (JSON files); several archives are also checked to link up, in the order given.
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long)]
        public_key: String,
    },
}

/// A simulated counterpart that checks the signature of every call.
#[derive(Debug, Args)]
struct SignedCounterpart {
    /// The application id and secret it lets in and signs with (the hub's ones for this connector).
    #[arg(long, default_value = "XY610429-HUB")]
    app_id: String,
    #[arg(long, default_value = "development-secret")]
    app_secret: String,
    #[command(flatten)]
    faults: FaultArgs,
}

/// A signed counterpart that also pushes to the hub.
#[derive(Debug, Args)]
struct PushingCounterpart {
    /// The hub's push endpoint for this counterpart.
    #[arg(long)]
    push_url: Option<String>,
    #[command(flatten)]
    signed: SignedCounterpart,
}

/// Faults a simulator injects from the start; `PUT /admin/faults` changes them while it runs.
#[derive(Debug, Args)]
struct FaultArgs {
    /// Share of calls answered with HTTP 500.
    #[arg(long, default_value_t = 0.0)]
    error_rate: f64,
    /// Added latency of every call.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// Share of duplicates: pushes sent twice, or calls done whose answer is lost.
    #[arg(long, default_value_t = 0.0)]
    duplicate_rate: f64,
    /// Start in an outage: every call gets 503.
    #[arg(long)]
    outage: bool,
}

impl FaultArgs {
    fn faults(&self) -> simulation::Faults {
        simulation::Faults { error_rate: self.error_rate, delay_ms: self.delay_ms, duplicate_rate: self.duplicate_rate, outage: self.outage }
    }
}

/// Default log filter of the interactive commands: warnings of our own, errors of Kafka, and
/// nothing of the embedded broker's shutdown chatter.
const QUIET: &str = "warn,librdkafka=error,rdkafka=error,tansu_broker=off,tansu_service=off,tansu_storage=off";

fn init_logging(default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(run(cli));
    // Kafka clients close on blocking threads; do not let a slow close hold the exit.
    runtime.shutdown_timeout(Duration::from_secs(2));
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Serves a simulator on `listen` until Ctrl-C.
async fn run_simulator(listen: &str, name: &str, spawn: impl FnOnce(tokio::net::TcpListener) -> anyhow::Result<simulation::RunningSimulator>) -> anyhow::Result<ExitCode> {
    init_logging("info");
    let running = spawn(app::bind(listen).await?)?;
    println!("{name} simulator listening on {}", running.base_url);
    tokio::signal::ctrl_c().await?;
    Ok(ExitCode::SUCCESS)
}

/// Sends an operator's request to a running hub and prints its JSON answer; exit code 2 when
/// the hub refused it.
/// Checks an exported checkpoint or entry proof with the public key alone.
fn check_exported(files: &[PathBuf], public_key: &str) -> anyhow::Result<ExitCode> {
    let trusted = hub::audit::public_key(public_key)?;
    let mut archives = Vec::new();
    let mut holds = true;
    for file in files {
        let exported = std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("reading {}: {e}", file.display()))?;
        match hub::audit::check_offline(&exported, &trusted) {
            Ok(found) => println!("{}: {found}", file.display()),
            Err(problem) => {
                println!("{}: DOES NOT HOLD: {problem}", file.display());
                holds = false;
            }
        }
        archives.extend(serde_json::from_str::<hub::audit::Archive>(&exported).ok());
    }
    if holds && archives.len() > 1 {
        match hub::audit::check_archive_series(&archives, &trusted) {
            Ok(found) => println!("{found}"),
            Err(problem) => {
                println!("DOES NOT HOLD: {problem}");
                holds = false;
            }
        }
    }
    Ok(if holds { ExitCode::SUCCESS } else { ExitCode::from(2) })
}

/// The `from` and `until` of a period, as far as given.
fn period_query(from: Option<String>, until: Option<String>) -> Vec<(&'static str, String)> {
    [("from", from), ("until", until)].into_iter().filter_map(|(name, value)| value.map(|value| (name, value))).collect()
}

/// Issues, lists or revokes tokens on the hub's database, each change an admin ledger entry.
async fn manage_tokens(config: &Config, action: TokenAction) -> anyhow::Result<ExitCode> {
    init_logging(QUIET);
    let (tokens, ledger) = app::token_desk(config).await?;
    let operator = std::env::var("USER").unwrap_or_else(|_| "operator".into());
    let answer = match action {
        TokenAction::Issue { holder, role, unit, system, valid_days } => {
            let Some(role) = hub::domain::access::Role::parse(&role) else {
                anyhow::bail!("unknown role {role}; one of {}", hub::domain::access::Role::ALL.map(|r| r.code()).join(", "));
            };
            let kind = if system { hub::access::TokenKind::System } else { hub::access::TokenKind::Person };
            let request = hub::access::TokenRequest { holder, kind, role, unit, valid_days };
            let issued = match tokens.issue(request.clone(), &format!("cli:{operator}")).await {
                Ok(issued) => issued,
                Err(hub::access::IssueError::Bad(bad)) => anyhow::bail!("{}", bad.message),
                Err(hub::access::IssueError::Store(error)) => return Err(error),
            };
            ledger.record_admin("POST /api/v1/tokens (cli)", &operator, format!("{} {} {:?} → {}", request.holder, role.code(), request.unit, issued.record.token_id)).await?;
            serde_json::to_value(&issued)?
        }
        TokenAction::List => serde_json::json!({ "tokens": tokens.list().await? }),
        TokenAction::Revoke { token_id } => {
            let revoked = tokens.revoke(&token_id).await?.ok_or_else(|| anyhow::anyhow!("no token {token_id}"))?;
            ledger.record_admin(&format!("POST /api/v1/tokens/{token_id}/revocation (cli)"), &operator, String::new()).await?;
            serde_json::to_value(&revoked)?
        }
    };
    println!("{}", serde_json::to_string_pretty(&answer)?);
    Ok(ExitCode::SUCCESS)
}

async fn print_answer(request: reqwest::RequestBuilder) -> anyhow::Result<ExitCode> {
    let response = request.send().await?;
    let status = response.status();
    let body: serde_json::Value = response.json().await?;
    println!("{}", serde_json::to_string_pretty(&body)?);
    Ok(if status.is_success() { ExitCode::SUCCESS } else { ExitCode::from(2) })
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Run => {
            init_logging("info");
            let listener = app::bind(&config.api.listen).await?;
            let hub = app::Hub::start(&config, listener).await?;
            tokio::signal::ctrl_c().await?;
            hub.stop().await;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo { cases, summary_json, resume, data_dir, postal_url, ecert_url, province_url, bank_url, step_delay_ms, no_progress, plain, serve } => {
            init_logging(QUIET);
            let mut config = config;
            if std::env::var_os("HUB_API__LISTEN").is_none() && cli.config.is_none() {
                config.api.listen = "127.0.0.1:0".into();
            }
            let options = DemoOptions {
                cases,
                resume,
                data_dir,
                postal_url,
                ecert_url,
                province_url,
                bank_url,
                step_delay: Duration::from_millis(step_delay_ms),
                progress: !no_progress,
                concurrency: 32,
                faults: Faults::default(),
                counterpart_faults: Default::default(),
                mix: !plain,
            };
            let run = demo::DemoRun::start(config, &options).await?;
            let summary = run.drive(&options).await;
            let served = match &summary {
                Ok(summary) => {
                    demo::print_summary(summary);
                    if serve { run.serve_console().await } else { Ok(()) }
                }
                Err(_) => Ok(()),
            };
            run.stop().await;
            let summary = summary?;
            served?;
            if let Some(path) = summary_json {
                std::fs::write(&path, serde_json::to_vec_pretty(&summary)?)?;
            }
            if summary.completed == summary.cases {
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("error: only {} of {} cases reached a final state", summary.completed, summary.cases);
                Ok(ExitCode::FAILURE)
            }
        }
        Command::Bench { cases, json, without_ledger, ledger_entries } => {
            init_logging(QUIET);
            let report = bench::run(config, cases, !without_ledger, ledger_entries).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                bench::print_report(&report);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Explain { matter, service_point, domicile_township } => {
            let reference = hub::domain::Reference::builtin();
            match hub::workflow::explain_routing(&reference, &matter, &service_point, domicile_township.as_deref()) {
                Ok(routing) => {
                    println!("{}", serde_json::to_string_pretty(&routing)?);
                    Ok(ExitCode::SUCCESS)
                }
                Err(error) => {
                    eprintln!("error: {error}");
                    Ok(ExitCode::from(2))
                }
            }
        }
        Command::PostalSim { listen, push_url, step_delay_ms, faults, failed_delivery_rate } => {
            let faults = Faults { error_rate: faults.error_rate, delay_ms: faults.delay_ms, duplicate_rate: faults.duplicate_rate, outage: faults.outage, failed_delivery_rate };
            let config = SimulatorConfig { push_url, step_delay: Duration::from_millis(step_delay_ms), faults };
            run_simulator(&listen, "postal", |listener| simulator::spawn(listener, config)).await
        }
        Command::Tokens { action } => manage_tokens(&config, action).await,
        Command::Audit { api, action } => {
            let client = api.client()?;
            let base = api.url("/api/v1/audit");
            let request = match action {
                AuditAction::Check { files, public_key } => return check_exported(&files, &public_key),
                AuditAction::Archive { before } => client.post(format!("{base}/archives")).json(&serde_json::json!({ "before": before })),
                AuditAction::Archives => client.get(format!("{base}/archives")),
                AuditAction::Verify => client.get(format!("{base}/verify")),
                AuditAction::Checkpoint => client.post(format!("{base}/checkpoints")),
                AuditAction::PublicKey => client.get(format!("{base}/public-key")),
                AuditAction::Search { subject_id, department, from, until, without_case } => {
                    let mut query = period_query(from, until);
                    query.extend([("subject_id", subject_id), ("department", department), ("without_case", without_case.then(|| "true".to_string()))].into_iter().filter_map(|(k, v)| v.map(|v| (k, v))));
                    client.get(format!("{base}/entries")).query(&query)
                }
                AuditAction::Volume { from, until } => client.get(format!("{base}/volume")).query(&period_query(from, until)),
                AuditAction::Alerts { from, until } => client.get(format!("{base}/alerts")).query(&period_query(from, until)),
                AuditAction::Proof { seq } => client.get(format!("{base}/entries/{seq}/proof")),
            };
            print_answer(request).await
        }
        Command::CatalogueSync { api } => print_answer(api.client()?.post(api.url("/api/v1/catalogue/sync"))).await,
        Command::BankReconcile { api, date } => print_answer(api.client()?.post(api.url("/api/v1/bank/reconciliations")).json(&serde_json::json!({ "date": date }))).await,
        Command::BankSim { listen, counterpart: PushingCounterpart { push_url, signed: SignedCounterpart { app_id, app_secret, faults } } } => {
            let config = bank::simulator::SimulatorConfig { app_id, app_secret, push_url, faults: faults.faults() };
            run_simulator(&listen, "bank network", |listener| bank::simulator::spawn(listener, config)).await
        }
        Command::ProvinceSim { listen, seed_catalogue, counterpart: PushingCounterpart { push_url, signed: SignedCounterpart { app_id, app_secret, faults } } } => {
            let config = province::simulator::SimulatorConfig { app_id, app_secret, push_url, faults: faults.faults() };
            run_simulator(&listen, "provincial platform", |listener| {
                let running = province::simulator::spawn(listener, config)?;
                if seed_catalogue {
                    let url = format!("{}/admin/matters", running.base_url);
                    let guides = hub::province::guides_of(&hub::domain::Reference::builtin());
                    tokio::spawn(async move {
                        if let Err(error) = reqwest::Client::new().put(url).json(&guides).send().await.and_then(|r| r.error_for_status()) {
                            tracing::error!(%error, "seeding the catalogue failed");
                        }
                    });
                }
                Ok(running)
            })
            .await
        }
        Command::Connectors { api, action } => {
            let client = api.client()?;
            let base = api.url("/api/v1/connectors");
            let request = match action {
                ConnectorAction::Status => client.get(base),
                ConnectorAction::Pause { name, reason } => client.post(format!("{base}/{name}/pause")).json(&serde_json::json!({ "reason": reason })),
                ConnectorAction::Resume { name } => client.post(format!("{base}/{name}/resume")),
                ConnectorAction::Restart { name } => client.post(format!("{base}/{name}/restart")),
                ConnectorAction::Offsets { name } => client.get(format!("{base}/{name}/offsets")),
                ConnectorAction::ResetOffsets { name, to, topic } => {
                    client.post(format!("{base}/{name}/offsets/reset")).json(&serde_json::json!({ "to": to, "topic": topic }))
                }
            };
            print_answer(request).await
        }
        Command::EcertSim { listen, counterpart: SignedCounterpart { app_id, app_secret, faults } } => {
            let config = ecert::simulator::SimulatorConfig { app_id, app_secret, faults: faults.faults() };
            run_simulator(&listen, "e-certificate", |listener| ecert::simulator::spawn(listener, config)).await
        }
    }
}
