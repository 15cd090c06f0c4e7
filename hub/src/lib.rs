//! The county–township–village integration hub: the services and adapters around the pure core
//! (`hub_core`). `store` is the database, `app` the services, `http` the API over them, and
//! `wiring` starts one hub process: the bus, the consumer groups, the connectors, the API.
pub mod app;
pub mod config;
pub mod http;
pub mod memory;
pub mod store;
mod wiring;

pub use wiring::{bind, relay, token_desk, Hub, HUB_CONSUMERS};
