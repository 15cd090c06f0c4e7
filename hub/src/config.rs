//! Configuration: defaults, then an optional TOML file, then `HUB_*` environment variables
//! (sections separated by `__`, e.g. `HUB_BUS__BOOTSTRAP_SERVERS=kafka1:9092`).
use std::path::Path;

use bus::BusConfig;
use connectors::connector::ConnectorConfig;
use figment::providers::{Env, Format as _, Serialized, Toml};
use figment::Figment;
use hub_core::anomaly::AnomalyRules;
use serde::{Deserialize, Serialize};

use crate::app::notifier::MailConfig;

/// The configuration, with one section per connector of `connectors::every_connector!` between
/// the hub's own sections (the order of the file and of the start entry's digests).
macro_rules! hub_config {
    ($($connector:ident: $section:ty,)*) => {
        #[derive(Debug, Clone, Serialize, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct Config {
            pub database: DatabaseConfig,
            pub bus: BusConfig,
            pub api: ApiConfig,
            $(pub $connector: $section,)*
            pub consumers: ConsumerConfig,
            pub workflow: WorkflowConfig,
            pub mail: MailConfig,
            pub audit: AuditConfig,
        }

        /// The top-level sections, as they appear in the file and after `HUB_` in the environment.
        const SECTIONS: &[&str] = &["database", "bus", "api", $(stringify!($connector),)* "consumers", "workflow", "mail", "audit"];

        impl Config {
            /// Every connector's section, in the list's order.
            pub fn connectors(&self) -> Vec<&dyn ConnectorConfig> {
                vec![$(&self.$connector),*]
            }
        }

        impl Default for Config {
            fn default() -> Self {
                Config {
                    database: DatabaseConfig::default(),
                    bus: BusConfig::default(),
                    api: ApiConfig::default(),
                    $($connector: <$section>::default(),)*
                    consumers: ConsumerConfig::default(),
                    workflow: WorkflowConfig::default(),
                    mail: MailConfig::default(),
                    audit: AuditConfig::default(),
                }
            }
        }
    };
}
connectors::every_connector!(hub_config);

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// The county's key for naming data subjects by keyed hash (HMAC-SHA256) in data-sharing
    /// events; the data bureau keeps it to search by ID number. Set your own in production.
    pub subject_key: String,
    /// Seed of the hub's Ed25519 key that signs the ledger's checkpoints, 64 hex digits; the
    /// data bureau checks checkpoints with its public key (`GET /api/v1/audit/public-key`).
    pub signing_key: String,
    /// How often a checkpoint is signed over the ledger (when it has grown).
    pub checkpoint_seconds: u64,
    /// Whether this process keeps the ledger: records exchanges, reads and administrative
    /// actions, signs checkpoints, archives. Off only to measure what auditing costs (`hub
    /// bench --without-ledger`); a hub serving users keeps it on.
    pub keep_ledger: bool,
    /// Days an entry stays in the database before it is archived to a file (0: kept for ever).
    pub retention_days: u32,
    /// Where archives of old entries are written; keep them (and back them up) for as long as
    /// the county's records schedule says.
    pub archive_dir: String,
    /// The anomaly rules' thresholds (`[audit.anomaly]`).
    pub anomaly: AnomalyRules,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkflowConfig {
    /// Key that derives locker pickup codes; set your own in production.
    pub pickup_secret: String,
    /// Key that signs the applicants' review links (QR code, SMS); set your own in production.
    pub review_secret: String,
    /// How often the durable deadline timers are checked.
    pub deadline_scan_seconds: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://path/to/hub.db` (default) or `postgres://user@host:5432/db`.
    pub url: String,
    /// Days a published outbox message is kept before it is pruned.
    pub outbox_retention_days: u32,
    /// Days a consumer's record of an applied event is kept before it is pruned; never less
    /// than the longest retention of the topics consumed (0: exactly that), so that an offset
    /// reset cannot apply an event twice.
    pub applied_retention_days: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Address of the HTTP API (service points, approvers, carrier pushes).
    pub listen: String,
    /// Where applicants reach the hub's public pages (the review page the QR codes and text
    /// messages link to), e.g. `https://zwfw.xunyi.gov.cn/hub`. Empty: the listening address.
    pub public_url: String,
    /// On SIGTERM or Ctrl-C, how long readiness answers 503 while requests are still served,
    /// so that a load balancer stops sending before the hub stops taking them.
    pub drain_seconds: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsumerConfig {
    /// Most messages one consumer applies in one database transaction. Small enough that a
    /// counter's submission waiting for SQLite's writer waits milliseconds (measured: 256 made
    /// its p99 40 ms at 200 applications/s, 32 made it 24 ms, for the same throughput).
    pub max_batch: usize,
    /// The same for the notifier: its transaction writes two multi-row statements whatever the
    /// batch's size, and with 32 it fell behind the lifecycle topic at full speed (117 000
    /// messages behind 169 s into a 20 000-case demo; under 800 with 256).
    pub notifier_max_batch: usize,
    /// The same for the audit recorder: with 32 it fell 51 000 data-sharing events behind in a
    /// 20 000-case demo once the province connector reported 100 steps a call.
    pub audit_max_batch: usize,
    /// Most messages any consumer applies in one transaction while it is behind: each full
    /// batch doubles the next, up to this (never below the group's own size). With 32
    /// throughout, the case consumer fell 57 000 messages behind in a 20 000-case demo at full
    /// speed (texts' and tracking reports queued behind the cases) and the SMS connector 117 000
    /// in a longer one; with 256 throughout a counter's p99 at 200 applications/s was 55 ms.
    /// With 256 the province connector, whose usual batch is 256 too, never grew its batch and
    /// fell 33 000 messages behind in a 20 000-case demo (1 000 with 1 024, and 170 cases/s
    /// against 135: fewer turns of the writer for the same work).
    pub max_batch_behind: usize,
    /// Most events any consumer applies in one transaction while people wait for SQLite's one
    /// writer (a submission or a decision within the last second): a larger batch is applied
    /// in slices of this many, so that a person waits behind one slice, not the whole batch
    /// (0: never sliced).
    pub slice_while_people_wait: usize,
}

impl Config {
    /// SHA-256 of each section (`database=…`, first 8 hex digits) and of the whole, for the
    /// audit ledger: a changed setting shows, a secret does not.
    pub fn digests(&self) -> (Vec<String>, String) {
        use sha2::{Digest as _, Sha256};
        let value = serde_json::to_value(self).expect("the configuration serialises");
        let sections = value
            .as_object()
            .map(|sections| {
                sections
                    .iter()
                    .map(|(name, section)| format!("{name}={}", &hex::encode(Sha256::digest(section.to_string()))[..8]))
                    .collect()
            })
            .unwrap_or_default();
        (sections, hex::encode(Sha256::digest(value.to_string())))
    }
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            subject_key: String::new(),
            signing_key: String::new(),
            checkpoint_seconds: 300,
            keep_ledger: true,
            retention_days: 365,
            archive_dir: "data/ledger-archives".into(),
            anomaly: AnomalyRules::default(),
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig { url: "sqlite://data/hub.db".into(), outbox_retention_days: 7, applied_retention_days: 0 }
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig { listen: "127.0.0.1:8080".into(), public_url: String::new(), drain_seconds: 5 }
    }
}

impl Default for WorkflowConfig {
    fn default() -> Self {
        WorkflowConfig { pickup_secret: String::new(), review_secret: String::new(), deadline_scan_seconds: 60 }
    }
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            max_batch: 32,
            notifier_max_batch: 256,
            audit_max_batch: 256,
            max_batch_behind: 1024,
            slice_while_people_wait: 128,
        }
    }
}

impl Config {
    /// Loads the configuration; `file` is optional and may be missing only when not given.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            anyhow::ensure!(file.exists(), "configuration file {} does not exist", file.display());
            figment = figment.merge(Toml::file(file));
        }
        // Only the configuration's own sections: other HUB_* variables (HUB_CONFIG, test switches)
        // are not configuration keys.
        let sections = Env::prefixed("HUB_")
            .filter(|key| {
                SECTIONS.iter().any(|section| key.as_str().to_ascii_lowercase().starts_with(&format!("{section}__")))
            })
            .split("__");
        Ok(figment.merge(sections).extract()?)
    }
}

#[cfg(test)]
// figment's Jail reports its errors as they are; the tests only pass them on.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_the_file() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "hub.toml",
                "[database]\nurl = \"sqlite://x.db\"\n[bus]\nbootstrap_servers = \"kafka:9092\"\n",
            )?;
            jail.set_env("HUB_DATABASE__URL", "postgres://db/hub");
            jail.set_env("HUB_CONFIG", "hub.toml");
            let config = Config::load(Some(Path::new("hub.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(config.database.url, "postgres://db/hub");
            assert_eq!(config.bus.bootstrap_servers.as_deref(), Some("kafka:9092"));
            assert_eq!(config.api.listen, "127.0.0.1:8080");
            Ok(())
        });
    }

    #[test]
    fn the_shipped_example_configuration_loads() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/hub.example.toml");
        let config = Config::load(Some(&example)).unwrap();
        assert_eq!(config.mail.smtp_url, "smtp://mail.xunyi.gov.cn:25");
        assert_eq!(config.workflow.deadline_scan_seconds, 60);
        assert_eq!(config.ecert.base_url, "https://dzzz.shaanxi.gov.cn/gateway");
        assert_eq!(config.ecert.retry.max_attempts, 10);
        assert_eq!(config.province.base_url, "https://zwfw.shaanxi.gov.cn/exchange");
        assert_eq!(config.sms.base_url, "https://sms.xianyang.gov.cn/api");
        assert_eq!(config.api.public_url, "https://zwfw.xunyi.gov.cn/hub");
        assert_eq!(config.province.region_code, "610429");
        assert_eq!(config.bank.base_url, "https://pay.sxnxs.com/govfee");
    }

    #[test]
    fn unknown_keys_are_refused() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("hub.toml", "[database]\nulr = \"typo\"\n")?;
            assert!(Config::load(Some(Path::new("hub.toml"))).is_err());
            Ok(())
        });
    }
}
