//! The `hub` command and the county-day harness it shares with the system tests: the demo
//! (staff with tokens, applicants, simulators of every counterpart) and the bench.
pub mod bench;
pub mod commands;
pub mod demo;
