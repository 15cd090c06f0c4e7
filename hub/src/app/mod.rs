//! The hub's services: they load what they need from the store, ask the core what happens, and
//! store the outcome with the messages it causes in one transaction. No HTTP here.
pub mod archive;
pub mod audit;
pub mod cases;
pub mod catalogue;
pub mod deadlines;
pub mod grouped;
pub mod housekeeping;
pub mod intake;
pub mod notifier;
pub mod online_desk;
pub mod reconciliation;
pub mod reference;
pub mod reports;
pub mod sliced;
pub mod supervision;
pub mod tokens;
