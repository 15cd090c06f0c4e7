//! The county–township–village integration hub.
//!
//! `domain` is the pure core (case state machine, reference data, calendar); `store`, `api`
//! `workflow` and `notify` are its adapters; `app` wires them to the Kafka bus and the connectors.

pub mod access;
pub mod api;
pub mod app;
pub mod audit;
pub mod bank;
pub mod bench;
pub mod config;
pub mod console;
pub mod demo;
pub mod domain;
pub mod metrics;
pub mod notify;
pub mod openapi;
pub mod province;
pub mod schema_registry;
pub mod staff;
pub mod store;
pub mod workflow;
