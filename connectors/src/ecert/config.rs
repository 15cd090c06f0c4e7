use std::sync::Arc;

use bus::RetryPolicy;
use serde::{Deserialize, Serialize};

use super::{inbound, outbound, CONSUMER};
use crate::connector::{required_url, Connector, ConnectorConfig, HealthCheck, Ports};
use crate::framework::control::ConnectorControl;

/// The e-certificate connector's section of the hub configuration (`[ecert]`, `HUB_ECERT__*`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EcertConfig {
    /// Base URL of the repository's API. Empty in the demo: the built-in simulator is used.
    pub base_url: String,
    /// Our application id at the repository, sent with every request.
    pub app_id: String,
    /// The secret the repository gave us; signs every request.
    pub app_secret: String,
    /// Our department code as requester of lookups (unified social credit code).
    pub requester_department: String,
    pub timeout_ms: u64,
    /// Requests in flight at once.
    pub concurrency: usize,
    pub retry: RetryPolicy,
}

impl Default for EcertConfig {
    fn default() -> Self {
        EcertConfig {
            base_url: String::new(),
            app_id: "XY610429-HUB".into(),
            app_secret: "development-secret".into(),
            requester_department: "11610429MB2912345A".into(),
            timeout_ms: 5_000,
            concurrency: 8,
            // About a quarter of a minute of retries, then an incident and a restart with backoff.
            retry: RetryPolicy { initial_ms: 50, max_ms: 5_000, multiplier: 2.0, max_attempts: 10 },
        }
    }
}

impl ConnectorConfig for EcertConfig {
    fn name(&self) -> &'static str {
        CONSUMER
    }

    fn build(&self, ports: &Ports, control: Arc<ConnectorControl>) -> anyhow::Result<Connector> {
        required_url(&self.base_url, "ecert.base_url", "the e-certificate connector needs the repository's API")?;
        Ok(Connector {
            name: CONSUMER,
            outbound: Arc::new(outbound::EcertOutbound::new(self.clone(), ports.outbox.clone(), control)?),
            routes: inbound::routes(ports.certificates.clone()),
            health: HealthCheck::of(&self.base_url)?,
        })
    }
}
