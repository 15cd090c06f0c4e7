//! The `hub` command line: one subcommand each for running the hub, the demo and the bench,
//! the simulators, and the operators' calls against a running hub.
mod operate;
mod simulators;
mod tokens;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use connectors::postal::simulator::Faults;
use hub::config::Config;
use tracing_subscriber::EnvFilter;

use crate::bench;
use crate::demo::{self, DemoOptions};
use operate::{AuditAction, ConnectorAction, HubApi};
use tokens::TokenAction;

/// County–township–village government services integration hub.
#[derive(Debug, Parser)]
#[command(version)]
pub struct Cli {
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
    /// Run the Kafka-compatible broker the hub embeds, as its own process, so that several hub
    /// processes here can share it (`bus.bootstrap_servers`). Its log lives in memory: for
    /// trying and testing; production runs Apache Kafka.
    Broker {
        /// Address to listen on; clients are told this same address.
        #[arg(long, default_value = "127.0.0.1:9092")]
        listen: std::net::SocketAddr,
    },
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
        /// Seal the documents electronically: at `seal.base_url` if set, else with the
        /// built-in seal service simulator.
        #[arg(long)]
        electronic_seals: bool,
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
        /// Hub instances sharing the work: the bench's own and `hub run` processes, on a scratch
        /// schema of `database.url` (PostgreSQL) and a `hub broker` process.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
        instances: u16,
        /// Instead, measure the outbox relay draining a backlog of this many rows, in a scratch
        /// schema of `database.url` (PostgreSQL) or a scratch SQLite file.
        #[arg(long)]
        drain_rows: Option<usize>,
        /// Instead, time the reports over this many cases synthesised into a scratch schema of
        /// `database.url` (PostgreSQL) or a scratch SQLite file, and recount them.
        #[arg(long)]
        report_cases: Option<usize>,
        /// Instead, offer applications at this fixed rate per second (open loop, on a fresh
        /// hub) and report the latency of the answer, of acceptance and of each later stage.
        #[arg(long, conflicts_with = "rates")]
        rate: Option<u32>,
        /// The same at each of these rates in turn, to find the knee: 50,100,200,400,800.
        #[arg(long, value_delimiter = ',')]
        rates: Vec<u32>,
        /// How long each rate is offered.
        #[arg(long, default_value_t = 10)]
        seconds: u32,
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
    PostalSim(simulators::PostalSim),
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
    /// A month's archive hand-in lists (归档移交清单) of a running hub: per unit, the closed
    /// case files by archive number, with their pages and retention.
    ArchiveHandIn {
        #[command(flatten)]
        api: HubApi,
        /// The month, YYYY-MM (China Standard Time).
        #[arg(long)]
        month: String,
        /// One unit's code (a department's credit code, a township's code); all by default.
        #[arg(long)]
        unit: Option<String>,
    },
    /// A period's figures (办件通报) of a running hub, as JSON: the county's, or one unit's or
    /// staff member's.
    Report {
        #[command(flatten)]
        api: HubApi,
        #[command(flatten)]
        asked: operate::ReportAsked,
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
    BankSim(simulators::BankSim),
    /// Run the provincial platform simulator as its own server; it pushes online applications to
    /// e.g. http://127.0.0.1:8080/connectors/province/applications.
    ProvinceSim(simulators::ProvinceSim),
    /// Run the e-certificate repository simulator as its own server.
    EcertSim(simulators::EcertSim),
    /// Run the electronic seal service simulator as its own server (signs documents with one
    /// Ed25519 key per seal).
    SealSim(simulators::SealSim),
    /// Run the SMS gateway simulator as its own server; it pushes the applicants' replies to
    /// e.g. http://127.0.0.1:8080/connectors/sms/replies.
    SmsSim(simulators::SmsSim),
}

/// Default log filter of the interactive commands: warnings of our own, errors of Kafka, and
/// nothing of the embedded broker's shutdown chatter.
const QUIET: &str = "warn,librdkafka=error,rdkafka=error,tansu_broker=off,tansu_service=off,tansu_storage=off";

/// Default log filter of `hub run`: what the hub does, without a line for every request its
/// clients make to the embedded broker (they poll it thousands of times a second).
const RUNNING: &str = "info,librdkafka=warn,rdkafka=warn,tansu_broker=warn,tansu_service=warn,tansu_storage=warn";

/// Ctrl-C, or SIGTERM (what a container stop sends).
async fn stop_signal() -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        interrupted = tokio::signal::ctrl_c() => interrupted?,
        _ = terminate.recv() => {}
    }
    Ok(())
}

fn init_logging(default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Run => {
            init_logging(RUNNING);
            let listener = hub::bind(&config.api.listen).await?;
            let hub = hub::Hub::start(&config, listener).await?;
            // Where a carrier's or a bureau's developer points a standard Kafka client.
            println!("hub API:          http://{}", hub.api_address);
            println!("Kafka bootstrap:  {}", hub.bus.bootstrap());
            println!("schema registry:  http://{}/schema-registry", hub.api_address);
            stop_signal().await?;
            hub.drain(Duration::from_secs(config.api.drain_seconds)).await;
            Ok(ExitCode::SUCCESS)
        }
        Command::Broker { listen } => {
            init_logging(RUNNING);
            let catalogue = contracts::Catalogue::builtin();
            let mut broker = bus::embedded::EmbeddedBroker::start_with_topics(listen, &catalogue).await?;
            println!("Kafka bootstrap:  {}", broker.bootstrap());
            tokio::select! {
                stopped = stop_signal() => stopped?,
                _ = broker.stopped() => anyhow::bail!("the broker stopped"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo {
            cases,
            summary_json,
            resume,
            data_dir,
            postal_url,
            ecert_url,
            province_url,
            bank_url,
            step_delay_ms,
            no_progress,
            plain,
            electronic_seals,
            serve,
        } => {
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
                electronic_seals,
            };
            let run = demo::DemoRun::start(config, &options).await?;
            let summary = run.drive(&options).await;
            let served = match &summary {
                Ok(summary) => {
                    demo::print_summary(summary);
                    if serve {
                        run.serve_console().await
                    } else {
                        Ok(())
                    }
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
        Command::Bench { report_cases: Some(cases), json, .. } => {
            init_logging(QUIET);
            let bench = bench::report_bench(&config.database.url, cases).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&bench)?);
            } else {
                bench::print_report_bench(&bench);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench { drain_rows: Some(rows), json, .. } => {
            init_logging(QUIET);
            let drain = bench::drain_bench(&config.database.url, rows).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&drain)?);
            } else {
                bench::print_drain(&drain);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench { rate, rates, seconds, json, .. } if rate.is_some() || !rates.is_empty() => {
            init_logging(QUIET);
            let rates: Vec<u32> = rate.into_iter().chain(rates).collect();
            let bench = bench::open_loop(config, &rates, seconds).await?;
            if json {
                // One line: the last line of the output is the whole result.
                println!("{}", serde_json::to_string(&bench)?);
            } else {
                bench::print_open_loop(&bench);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            cases,
            json,
            without_ledger,
            ledger_entries,
            instances,
            drain_rows: None,
            report_cases: None,
            ..
        } => {
            init_logging(QUIET);
            let report = bench::run(config, cases, !without_ledger, ledger_entries, instances.into()).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                bench::print_report(&report);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Explain { matter, service_point, domicile_township } => {
            let reference = hub_core::Reference::builtin();
            match hub::app::intake::explain_routing(&reference, &matter, &service_point, domicile_township.as_deref()) {
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
        Command::Tokens { action } => tokens::manage(&config, action).await,
        Command::Audit { api, action } => action.run(api).await,
        Command::Connectors { api, action } => action.run(api).await,
        Command::CatalogueSync { api } => operate::sync_catalogue(api).await,
        Command::BankReconcile { api, date } => operate::reconcile_bank_day(api, date).await,
        Command::ArchiveHandIn { api, month, unit } => operate::archive_hand_in(api, month, unit).await,
        Command::Report { api, asked } => operate::report(api, asked).await,
        Command::PostalSim(sim) => sim.run().await,
        Command::BankSim(sim) => sim.run().await,
        Command::ProvinceSim(sim) => sim.run().await,
        Command::EcertSim(sim) => sim.run().await,
        Command::SealSim(sim) => sim.run().await,
        Command::SmsSim(sim) => sim.run().await,
    }
}
