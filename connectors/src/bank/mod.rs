//! Bank network (政银合作): fee orders out to the bank (outbound), payment confirmations pushed
//! in (inbound), and the daily statement read for reconciliation. Bank outlets are also service
//! points: their applications come in over the hub's API with channel `bank`. The protocol is
//! documented in `connectors/docs/bank.md`.

pub mod config;
pub mod inbound;
pub mod outbound;
pub mod protocol;
pub mod simulator;

pub use config::BankConfig;

/// Consumer group of the outbound half; also the channel named in its data-sharing events.
pub const CONSUMER: &str = "bank-connector";
/// Name under which the inbound half records the payments it has taken.
pub const PUSH_CONSUMER: &str = "bank-push";
/// Name under which statement reads are recorded.
pub const STATEMENT_CONSUMER: &str = "bank-statement";
/// The counterpart, as data-sharing events name it.
pub const BANK: &str = "旬邑县农村信用合作联社";
/// Path of the inbound push endpoint, relative to the hub's HTTP root.
pub const PUSH_PATH: &str = "/connectors/bank/payments";
