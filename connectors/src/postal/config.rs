use std::sync::Arc;

use bus::RetryPolicy;
use serde::{Deserialize, Serialize};

use super::{inbound, outbound, CONSUMER};
use crate::connector::{required_url, Connector, ConnectorConfig, HealthCheck, Ports};
use crate::framework::control::ConnectorControl;

/// The postal connector's section of the hub configuration (`[postal]`, `HUB_POSTAL__*`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PostalConfig {
    /// Base URL of the carrier's order API. Empty in the demo: the built-in simulator is used.
    pub base_url: String,
    /// Our customer code at the carrier, sent with every order.
    pub customer_code: String,
    /// Per-request timeout towards the carrier.
    pub timeout_ms: u64,
    /// Orders created at once.
    pub concurrency: usize,
    pub retry: RetryPolicy,
}

impl Default for PostalConfig {
    fn default() -> Self {
        PostalConfig {
            base_url: String::new(),
            customer_code: "XY610429".into(),
            timeout_ms: 5_000,
            concurrency: 16,
            // About a quarter of a minute of retries, then an incident and a restart with backoff.
            retry: RetryPolicy { initial_ms: 50, max_ms: 5_000, multiplier: 2.0, max_attempts: 10 },
        }
    }
}

impl ConnectorConfig for PostalConfig {
    fn name(&self) -> &'static str {
        CONSUMER
    }

    fn build(&self, ports: &Ports, control: Arc<ConnectorControl>) -> anyhow::Result<Connector> {
        required_url(&self.base_url, "postal.base_url", "the postal connector needs the carrier's API")?;
        Ok(Connector {
            name: CONSUMER,
            outbound: Arc::new(outbound::PostalOutbound::new(self.clone(), ports.outbox.clone(), control)?),
            routes: inbound::routes(ports.outbox.clone()),
            health: HealthCheck::of(&self.base_url)?,
        })
    }
}
