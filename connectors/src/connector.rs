//! The contract every connector keeps, Vector-style: its configuration section builds it
//! (`ConnectorConfig::build`) into an outbound half (a batch handler on the topics the catalogue
//! lists under its name), the routes of its inbound half (each with its access rule, for the
//! hub's one route table) and a health check. The hub loops over `every_connector!`.
use std::sync::Arc;
use std::time::Duration;

use bus::{BatchHandler, Outbox};
use hub_web::Route;

use crate::ecert::inbound::CertificateLookup;
use crate::framework::control::ConnectorControl;
use crate::province::inbound::ApplicationDesk;
use crate::province::outbound::CaseDirectory;

/// What the hub lends each connector it builds.
#[derive(Clone)]
pub struct Ports {
    /// Where the inbound half records what counterparts push, and the outbound half what its
    /// calls came to, each in one transaction with the events it causes.
    pub outbox: Arc<dyn Outbox>,
    /// The county's key naming data subjects (HMAC of the ID number) in data-sharing events.
    pub subject_key: Vec<u8>,
    /// Case facts, for the status reports the provincial platform receives.
    pub cases: Arc<dyn CaseDirectory>,
    /// The hub's acceptance, for applications filed online.
    pub desk: Arc<dyn ApplicationDesk>,
    /// E-certificate lookups, shared with the counter's acceptance.
    pub certificates: Arc<CertificateLookup>,
}

/// A connector, built.
pub struct Connector {
    /// Its name: the consumer group of its outbound half, the operators' handle.
    pub name: &'static str,
    pub outbound: Arc<dyn BatchHandler>,
    pub routes: Vec<Route>,
    pub health: HealthCheck,
}

/// A connector's section of the hub's configuration, which builds it.
pub trait ConnectorConfig {
    /// The connector's name, known before it is built so that its saved control (pause,
    /// incidents) can be restored.
    fn name(&self) -> &'static str;

    /// Whether the county uses this counterpart at all; an optional connector (the seal
    /// service) is not built, and its topics not consumed, without its URL.
    fn configured(&self) -> bool {
        true
    }

    /// The most events its outbound half takes a batch, when not `consumers.max_batch`: a
    /// connector whose counterpart takes many requests a call does better with more.
    fn max_batch(&self) -> Option<usize> {
        None
    }

    /// Builds the connector; fails when a required setting (its counterpart's URL) is missing.
    fn build(&self, ports: &Ports, control: Arc<ConnectorControl>) -> anyhow::Result<Connector>;
}

/// Whether a counterpart answers at all: any HTTP answer from its base URL counts, a refused
/// connection or a time-out does not. Reported by readiness; a counterpart being down does not
/// make the hub unready, since its outbound half waits and retries on its own.
#[derive(Clone)]
pub struct HealthCheck {
    base_url: String,
    client: reqwest::Client,
}

impl HealthCheck {
    pub fn of(base_url: &str) -> anyhow::Result<HealthCheck> {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
        Ok(HealthCheck { base_url: base_url.trim_end_matches('/').to_string(), client })
    }

    pub async fn check(&self) -> Result<(), String> {
        self.client.get(&self.base_url).send().await.map(|_| ()).map_err(|error| error.to_string())
    }
}

/// Fails with the setting to set when a connector's counterpart URL is missing.
pub fn required_url(url: &str, setting: &str, what: &str) -> anyhow::Result<()> {
    if url.is_empty() {
        let variable = format!("HUB_{}", setting.to_uppercase().replace('.', "__"));
        anyhow::bail!("{setting} is not set ({variable}): {what}");
    }
    Ok(())
}
