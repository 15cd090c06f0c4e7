//! Connectors between the hub's Kafka topics and the outside systems.
//!
//! Every connector has the same shape: `config` (its section of the hub's configuration),
//! `outbound` (topic -> counterpart API), `inbound` (counterpart pushes -> topic, through the
//! outbox), `protocol` (the documented wire types, shared with the simulator) and `simulator`
//! (a stand-in for the counterpart with fault injection). A new connector copies this shape.
//! `framework` holds what their halves share, `simulation` what their simulators share, and
//! `connector` the contract each keeps; `every_connector!` lists them all, once.

pub mod bank;
pub mod connector;
pub mod ecert;
pub mod framework;
pub mod postal;
pub mod province;
pub mod seal;
pub mod simulation;
pub mod sms;

/// Every connector, written once: its section of the hub's configuration (also its name in the
/// file and in `HUB_<SECTION>__*`) and that section's type, which builds it. The hub's
/// configuration and its wiring both expand this list: a new connector is its folder and one
/// line here.
#[macro_export]
macro_rules! every_connector {
    ($then:ident) => {
        $then! {
            postal: $crate::postal::PostalConfig,
            ecert: $crate::ecert::EcertConfig,
            province: $crate::province::ProvinceConfig,
            bank: $crate::bank::BankConfig,
            seal: $crate::seal::SealConfig,
            sms: $crate::sms::SmsConfig,
        }
    };
}
