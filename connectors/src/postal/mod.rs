//! Postal logistics (EMS-style): delivery orders out, tracking events in.
//! The protocol is documented in `connectors/docs/postal.md`.

pub mod config;
pub mod inbound;
pub mod outbound;
pub mod protocol;
pub mod simulator;

pub use config::PostalConfig;

/// Consumer group of the outbound half; also the name its applied events are recorded under.
pub const CONSUMER: &str = "postal-connector";
/// Name under which the inbound half records the pushes it has taken.
pub const PUSH_CONSUMER: &str = "postal-push";
/// The counterpart, as data-sharing events name it.
pub const CARRIER: &str = "中国邮政速递物流";
/// Path of the inbound push endpoint, relative to the hub's HTTP root.
pub const PUSH_PATH: &str = "/connectors/postal/tracking";
