use std::sync::Arc;

use bus::RetryPolicy;
use serde::{Deserialize, Serialize};

use super::{inbound, outbound, CONSUMER};
use crate::connector::{required_url, Connector, ConnectorConfig, HealthCheck, Ports};
use crate::framework::control::ConnectorControl;

/// The SMS connector's section of the hub configuration (`[sms]`, `HUB_SMS__*`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmsConfig {
    /// Base URL of the SMS gateway. Empty in the demo: the built-in simulator is used.
    pub base_url: String,
    /// Our account at the gateway; it signs both ways with the secret below.
    pub app_id: String,
    pub app_secret: String,
    pub timeout_ms: u64,
    /// Messages sent at once.
    pub concurrency: usize,
    pub retry: RetryPolicy,
}

impl Default for SmsConfig {
    fn default() -> Self {
        SmsConfig {
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

impl ConnectorConfig for SmsConfig {
    fn name(&self) -> &'static str {
        CONSUMER
    }

    fn build(&self, ports: &Ports, control: Arc<ConnectorControl>) -> anyhow::Result<Connector> {
        required_url(&self.base_url, "sms.base_url", "the SMS connector needs the SMS gateway's API")?;
        Ok(Connector {
            name: CONSUMER,
            outbound: Arc::new(outbound::SmsOutbound::new(self.clone(), ports.outbox.clone(), control)?),
            routes: inbound::routes(self.clone(), ports.outbox.clone()),
            health: HealthCheck::of(&self.base_url)?,
        })
    }
}
