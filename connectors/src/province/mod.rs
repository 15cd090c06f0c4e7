//! Provincial online government-service platform (省一体化在线政务服务平台): online applications
//! in (inbound, pushed by the platform), case status and reviews back (outbound), the matter
//! catalogue in (pulled). The protocol is documented in `connectors/docs/province.md`.

pub mod config;
pub mod inbound;
pub mod outbound;
pub mod protocol;
pub mod simulator;

pub use config::ProvinceConfig;

/// Consumer group of the outbound half; also the channel named in its data-sharing events.
pub const CONSUMER: &str = "province-connector";
/// Name under which the inbound half records the applications it has taken.
pub const PUSH_CONSUMER: &str = "province-push";
/// The counterpart, as data-sharing events name it.
pub const PLATFORM: &str = "陕西省一体化在线政务服务平台";
/// Path of the inbound push endpoint, relative to the hub's HTTP root.
pub const PUSH_PATH: &str = "/connectors/province/applications";
