//! `hub postal-sim`, `ecert-sim`, `province-sim`, `bank-sim`, `seal-sim`, `sms-sim`: each counterpart's simulator as
//! its own server, with the faults it injects from the start.
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use connectors::{bank, ecert, postal, province, seal, simulation, sms};

use super::init_logging;

#[derive(Debug, Args)]
pub struct PostalSim {
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
}

#[derive(Debug, Args)]
pub struct BankSim {
    #[arg(long, default_value = "127.0.0.1:8093")]
    listen: String,
    #[command(flatten)]
    counterpart: PushingCounterpart,
}

#[derive(Debug, Args)]
pub struct ProvinceSim {
    #[arg(long, default_value = "127.0.0.1:8092")]
    listen: String,
    /// Seed the platform's catalogue with the reference county's matter guides.
    #[arg(long)]
    seed_catalogue: bool,
    #[command(flatten)]
    counterpart: PushingCounterpart,
}

#[derive(Debug, Args)]
pub struct EcertSim {
    #[arg(long, default_value = "127.0.0.1:8091")]
    listen: String,
    #[command(flatten)]
    counterpart: SignedCounterpart,
}

#[derive(Debug, Args)]
pub struct SealSim {
    #[arg(long, default_value = "127.0.0.1:8094")]
    listen: String,
    /// Whence the seals' Ed25519 keys derive: keep it to keep the keys across restarts.
    #[arg(long, default_value = "development seal keys")]
    key_secret: String,
    #[command(flatten)]
    counterpart: SignedCounterpart,
}

#[derive(Debug, Args)]
pub struct SmsSim {
    #[arg(long, default_value = "127.0.0.1:8095")]
    listen: String,
    #[command(flatten)]
    counterpart: PushingCounterpart,
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
        simulation::Faults {
            error_rate: self.error_rate,
            delay_ms: self.delay_ms,
            duplicate_rate: self.duplicate_rate,
            outage: self.outage,
        }
    }
}

impl PostalSim {
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        let FaultArgs { error_rate, delay_ms, duplicate_rate, outage } = self.faults;
        let faults = postal::simulator::Faults {
            error_rate,
            delay_ms,
            duplicate_rate,
            outage,
            failed_delivery_rate: self.failed_delivery_rate,
        };
        let config = postal::simulator::SimulatorConfig {
            push_url: self.push_url,
            step_delay: Duration::from_millis(self.step_delay_ms),
            faults,
        };
        serve(&self.listen, "postal", |listener| postal::simulator::spawn(listener, config)).await
    }
}

impl BankSim {
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        let PushingCounterpart { push_url, signed: SignedCounterpart { app_id, app_secret, faults } } =
            self.counterpart;
        let config = bank::simulator::SimulatorConfig { app_id, app_secret, push_url, faults: faults.faults() };
        serve(&self.listen, "bank network", |listener| bank::simulator::spawn(listener, config)).await
    }
}

impl ProvinceSim {
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        let PushingCounterpart { push_url, signed: SignedCounterpart { app_id, app_secret, faults } } =
            self.counterpart;
        let config = province::simulator::SimulatorConfig { app_id, app_secret, push_url, faults: faults.faults() };
        let seed_catalogue = self.seed_catalogue;
        serve(&self.listen, "provincial platform", |listener| {
            let running = province::simulator::spawn(listener, config)?;
            if seed_catalogue {
                let url = format!("{}/admin/matters", running.base_url);
                let guides = hub::app::catalogue::guides_of(&hub_core::Reference::builtin());
                tokio::spawn(async move {
                    if let Err(error) =
                        reqwest::Client::new().put(url).json(&guides).send().await.and_then(|r| r.error_for_status())
                    {
                        tracing::error!(%error, "seeding the catalogue failed");
                    }
                });
            }
            Ok(running)
        })
        .await
    }
}

impl EcertSim {
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        let SignedCounterpart { app_id, app_secret, faults } = self.counterpart;
        let config = ecert::simulator::SimulatorConfig { app_id, app_secret, faults: faults.faults() };
        serve(&self.listen, "e-certificate", |listener| ecert::simulator::spawn(listener, config)).await
    }
}

impl SealSim {
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        let SignedCounterpart { app_id, app_secret, faults } = self.counterpart;
        let config = seal::simulator::SimulatorConfig {
            app_id,
            app_secret,
            key_secret: self.key_secret,
            faults: faults.faults(),
        };
        serve(&self.listen, "seal service", |listener| seal::simulator::spawn(listener, config)).await
    }
}

impl SmsSim {
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        let PushingCounterpart { push_url, signed: SignedCounterpart { app_id, app_secret, faults } } =
            self.counterpart;
        let config = sms::simulator::SimulatorConfig { app_id, app_secret, push_url, faults: faults.faults() };
        serve(&self.listen, "SMS gateway", |listener| sms::simulator::spawn(listener, config)).await
    }
}

/// Serves a simulator on `listen` until Ctrl-C.
async fn serve(
    listen: &str,
    name: &str,
    spawn: impl FnOnce(tokio::net::TcpListener) -> anyhow::Result<simulation::RunningSimulator>,
) -> anyhow::Result<ExitCode> {
    init_logging("info");
    let running = spawn(hub::bind(listen).await?)?;
    println!("{name} simulator listening on {}", running.base_url);
    tokio::signal::ctrl_c().await?;
    Ok(ExitCode::SUCCESS)
}
