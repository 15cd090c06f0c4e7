use std::sync::Arc;

use bus::RetryPolicy;
use serde::{Deserialize, Serialize};

use super::{outbound, CONSUMER};
use crate::connector::{Connector, ConnectorConfig, HealthCheck, Ports};
use crate::framework::control::ConnectorControl;

/// The seal connector's section of the hub configuration (`[seal]`, `HUB_SEAL__*`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SealConfig {
    /// Base URL of the seal service. Empty: no electronic seals; documents mark where the
    /// paper seal goes.
    pub base_url: String,
    /// Our application id at the service, sent with every request.
    pub app_id: String,
    /// The secret the service gave us; signs every request.
    pub app_secret: String,
    pub timeout_ms: u64,
    /// Documents signed at once.
    pub concurrency: usize,
    pub retry: RetryPolicy,
}

impl Default for SealConfig {
    fn default() -> Self {
        SealConfig {
            base_url: String::new(),
            app_id: "XY610429-HUB".into(),
            app_secret: "development-secret".into(),
            timeout_ms: 5_000,
            concurrency: 8,
            // About a quarter of a minute of retries, then an incident and a restart with backoff.
            retry: RetryPolicy { initial_ms: 50, max_ms: 5_000, multiplier: 2.0, max_attempts: 10 },
        }
    }
}

impl ConnectorConfig for SealConfig {
    fn name(&self) -> &'static str {
        CONSUMER
    }

    fn configured(&self) -> bool {
        !self.base_url.is_empty()
    }

    fn build(&self, ports: &Ports, control: Arc<ConnectorControl>) -> anyhow::Result<Connector> {
        Ok(Connector {
            name: CONSUMER,
            outbound: Arc::new(outbound::SealOutbound::new(self.clone(), ports.outbox.clone(), control)?),
            routes: Vec::new(),
            health: HealthCheck::of(&self.base_url)?,
        })
    }
}
