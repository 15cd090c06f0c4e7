//! The pure domain core: no I/O, no clocks, no randomness. Adapters pass in the time and the
//! reference data, and persist or publish what comes out.

pub mod access;
pub mod anomaly;
pub mod archive;
pub mod bulletin;
pub mod calendar;
pub mod case;
pub mod deadlines;
pub mod documents;
pub mod facts;
pub mod fees;
pub mod flow;
pub mod ids;
pub mod ledger;
pub mod reference;
pub mod reports;
pub mod reviews;
pub mod routing;
pub mod sms;
pub mod steps;
pub mod supervision;
#[cfg(test)]
pub(crate) mod testing;
pub mod validation;

pub use case::{
    decide, evolve, handle, handle_event, react, reactions, Case, CaseState, Command, Context, Handled, Outcome,
    Rejection,
};
pub use reference::Reference;
