//! Connectors between the hub's Kafka topics and the outside systems.
//!
//! Every connector has the same shape: `config` (its section of the hub's configuration),
//! `outbound` (topic -> counterpart API), `inbound` (counterpart pushes -> topic, through the
//! outbox), `protocol` (the documented wire types, shared with the simulator) and `simulator`
//! (a stand-in for the counterpart with fault injection). A new connector copies this shape.
//! `framework` holds what their halves share, `simulation` what their simulators share.

pub mod control;
pub mod bank;
pub mod ecert;
pub mod framework;
pub mod postal;
pub mod province;
pub mod simulation;
