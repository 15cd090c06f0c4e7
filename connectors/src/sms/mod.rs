//! SMS gateway (政务短信平台): text messages to applicants out (outbound: acceptance, decision,
//! pickup code, review invitation, the answer to a review) from templates registered with the
//! gateway; the applicants' replies to a review invitation pushed in (inbound: 短信评). The
//! protocol is documented in `connectors/docs/sms.md`.

pub mod config;
pub mod inbound;
pub mod outbound;
pub mod protocol;
pub mod simulator;

pub use config::SmsConfig;

/// Consumer group of the outbound half; also the channel named in its data-sharing events.
pub const CONSUMER: &str = "sms-connector";
/// Name under which the inbound half records the replies it has taken.
pub const PUSH_CONSUMER: &str = "sms-push";
/// The counterpart, as data-sharing events name it.
pub const GATEWAY: &str = "咸阳市政务短信平台";
/// Path of the inbound push endpoint, relative to the hub's HTTP root.
pub const PUSH_PATH: &str = "/connectors/sms/replies";
