//! The hub's message contracts.
//!
//! The Avro schemas in `schemas/avro` are the contract; `registry.toml` gives each schema version
//! its permanent id. Every Kafka value is written in the Confluent wire format: magic byte 0,
//! the 4-byte big-endian schema id, then the Avro binary body. The topic catalogue in
//! `topics/catalogue.toml` says which records travel on which topic.

pub mod catalogue;
pub mod events;
pub mod registry;
pub mod wire;

pub use catalogue::{Catalogue, TopicSpec};
pub use events::*;
pub use registry::{Registry, SchemaEntry};
pub use wire::{decode, encode, WireError};

use hmac::{Hmac, Mac as _};

/// How a data subject is named in data-sharing events: the hex HMAC-SHA256 of the ID number
/// under the county's key. The data bureau, holding the key, can search by ID number; the events
/// and the ledger never hold the number itself.
pub fn data_subject(county_key: &[u8], id_number: &str) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(county_key).expect("HMAC takes any key length");
    mac.update(id_number.trim().to_ascii_uppercase().as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The calendar day (days since 1970-01-01) of an instant in China Standard Time (UTC+8), where
/// every date the hub and its counterparts exchange is set: Avro `date` fields, validity dates.
pub fn day_of(millis: i64) -> i32 {
    const MILLIS_PER_DAY: i64 = 86_400_000;
    const CST_OFFSET_MILLIS: i64 = 8 * 3_600_000;
    (millis + CST_OFFSET_MILLIS).div_euclid(MILLIS_PER_DAY) as i32
}

/// Suffix of a fee order number after its case number: the hub numbers orders so, and the bank
/// connector finds the case of a payment by it.
pub const FEE_ORDER_SUFFIX: &str = "-FEE";

/// Suffix of a refund number after its case number, as for fee orders.
pub const REFUND_SUFFIX: &str = "-REF";
