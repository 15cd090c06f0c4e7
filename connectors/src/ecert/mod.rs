//! Electronic-certificate repository (电子证照库): certificates issued on approval and revoked on
//! request (outbound); certificates looked up and verified with a stated purpose instead of
//! paper copies (inbound). The protocol is documented in `connectors/docs/ecert.md`.

pub mod config;
pub mod identifier;
pub mod inbound;
pub mod outbound;
pub mod protocol;
pub mod simulator;

pub use config::EcertConfig;

/// Consumer group of the outbound half; also the channel named in its data-sharing events.
pub const CONSUMER: &str = "ecert-connector";
/// Name under which the inbound half records its lookups.
pub const LOOKUP_CONSUMER: &str = "ecert-lookup";
/// The counterpart, as data-sharing events name it.
pub const REPOSITORY: &str = "省电子证照库";
