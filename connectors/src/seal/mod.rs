//! Electronic seal service (电子印章): each document of a case file that goes out under a
//! unit's seal is sent as its digest to be signed with that seal (outbound); the signature is
//! verified with the seal's public key whenever the document is read (inbound). The protocol
//! is documented in `connectors/docs/seal.md`. Optional: without `seal.base_url` documents
//! mark where the seal goes on paper.

pub mod config;
pub mod inbound;
pub mod outbound;
pub mod protocol;
pub mod simulator;

pub use config::SealConfig;

/// Consumer group of the outbound half; also the channel named in its data-sharing events.
pub const CONSUMER: &str = "seal-connector";
/// The counterpart, as data-sharing events name it.
pub const SERVICE: &str = "电子印章服务平台";
