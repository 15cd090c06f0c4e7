//! `hub`: parses the command line and runs the subcommand on a Tokio runtime.
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser as _;
use hub_cli::commands::{run, Cli};

// The allocator is jemalloc, declared in the hub library (hub/src/memory.rs).

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(run(cli));
    // Kafka clients close on blocking threads; do not let a slow close hold the exit.
    runtime.shutdown_timeout(Duration::from_secs(2));
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
