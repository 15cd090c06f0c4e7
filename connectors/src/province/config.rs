use std::sync::Arc;

use bus::RetryPolicy;
use serde::{Deserialize, Serialize};

use super::{inbound, outbound, CONSUMER};
use crate::connector::{required_url, Connector, ConnectorConfig, HealthCheck, Ports};
use crate::framework::control::ConnectorControl;

/// The provincial platform connector's section of the hub configuration (`[province]`,
/// `HUB_PROVINCE__*`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProvinceConfig {
    /// Base URL of the platform's exchange API. Empty in the demo: the built-in simulator is used.
    pub base_url: String,
    /// Our application id at the platform; it signs both ways with the secret below.
    pub app_id: String,
    pub app_secret: String,
    /// Administrative division whose matters the catalogue sync asks for (6-digit county code).
    pub region_code: String,
    /// How often the matter catalogue is synchronised; 0: only on demand.
    pub catalogue_sync_seconds: u64,
    pub timeout_ms: u64,
    /// Calls in flight at once (each with up to 100 status reports, or one review).
    pub concurrency: usize,
    /// Most events the outbound half takes a batch: their status reports go up 100 a call and
    /// are recorded in one transaction, which costs about the same whatever its size.
    pub max_batch: usize,
    pub retry: RetryPolicy,
}

impl Default for ProvinceConfig {
    fn default() -> Self {
        ProvinceConfig {
            base_url: String::new(),
            app_id: "XY610429-HUB".into(),
            app_secret: "development-secret".into(),
            region_code: "610429".into(),
            catalogue_sync_seconds: 3_600,
            timeout_ms: 5_000,
            concurrency: 8,
            max_batch: 256,
            // About a quarter of a minute of retries, then an incident and a restart with backoff.
            retry: RetryPolicy { initial_ms: 50, max_ms: 5_000, multiplier: 2.0, max_attempts: 10 },
        }
    }
}

impl ConnectorConfig for ProvinceConfig {
    fn name(&self) -> &'static str {
        CONSUMER
    }

    fn max_batch(&self) -> Option<usize> {
        Some(self.max_batch)
    }

    fn build(&self, ports: &Ports, control: Arc<ConnectorControl>) -> anyhow::Result<Connector> {
        required_url(
            &self.base_url,
            "province.base_url",
            "the provincial platform connector needs the platform's exchange API",
        )?;
        Ok(Connector {
            name: CONSUMER,
            outbound: Arc::new(outbound::ProvinceOutbound::new(
                self.clone(),
                ports.outbox.clone(),
                control,
                ports.cases.clone(),
                ports.subject_key.clone(),
            )?),
            routes: inbound::routes(self.clone(), ports.desk.clone(), ports.outbox.clone(), ports.subject_key.clone()),
            health: HealthCheck::of(&self.base_url)?,
        })
    }
}
