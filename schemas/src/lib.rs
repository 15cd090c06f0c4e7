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
