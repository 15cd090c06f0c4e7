//! The system tests, one module per area, in one binary: each test takes its own ports, its own
//! database (a fresh SQLite file and a fresh PostgreSQL schema) and its own temporary directory,
//! so the tests run in parallel threads.
mod common;

mod access;
mod anomalies;
mod api;
mod audit;
mod bank;
mod bench;
mod console;
mod crash;
mod dead_letter;
mod deploy;
mod ecert;
mod instances;
mod lost_log;
mod notices;
mod observability;
mod offsets;
mod pipeline;
mod postal;
mod procedures;
mod province;
mod reports;
mod schema_registry;
mod schemathesis;
mod seal;
mod sms;
mod stop;
mod store;
mod topics;
mod trim;
