//! `hub bench`: the demo pipeline at full speed on the embedded defaults, and the bare broker
//! rate measured in the same run for comparison.
use std::time::Duration;

use serde::Serialize;

use crate::config::Config;
use crate::demo::{DemoOptions, DemoRun, Summary};

#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub cases: usize,
    pub completed: usize,
    pub cases_per_second: f64,
    pub hub_messages_per_second: f64,
    pub raw_messages_per_second: f64,
    pub hub_to_raw_ratio: f64,
    pub messages: i64,
    pub mean_message_bytes: usize,
    pub cores: usize,
    pub summary: Summary,
}

pub async fn run(mut config: Config, cases: usize) -> anyhow::Result<BenchReport> {
    let data_dir = std::env::temp_dir().join(format!("hub-bench-{}", std::process::id()));
    config.api.listen = "127.0.0.1:0".into();
    let options = DemoOptions {
        cases,
        resume: false,
        data_dir: data_dir.clone(),
        postal_url: None,
        ecert_url: None,
        province_url: None,
        bank_url: None,
        step_delay: Duration::ZERO,
        progress: false,
        concurrency: 32,
        faults: Default::default(),
        counterpart_faults: Default::default(),
        mix: true,
    };
    let demo = DemoRun::start(config, &options).await?;
    let outcome = async {
        let summary = demo.drive(&options).await?;
        let (messages, mean_size) = demo.hub.store.outbox_volume().await?;
        let raw = bus::raw::round_trip_rate(&demo.hub.bus, messages as usize, mean_size).await?;
        anyhow::Ok(BenchReport {
            cases,
            completed: summary.completed,
            cases_per_second: summary.cases_per_second,
            hub_messages_per_second: summary.hub_messages_per_second,
            raw_messages_per_second: raw,
            hub_to_raw_ratio: summary.hub_messages_per_second / raw,
            messages,
            mean_message_bytes: mean_size,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            summary,
        })
    }
    .await;
    demo.stop().await;
    let _ = std::fs::remove_dir_all(&data_dir);
    outcome
}

pub fn print_report(report: &BenchReport) {
    crate::demo::print_summary(&report.summary);
    println!();
    println!("bench: {} cases on {} cores", report.cases, report.cores);
    println!("  completed cases/s        {:>10.1}", report.cases_per_second);
    println!("  hub messages/s           {:>10.1}", report.hub_messages_per_second);
    println!("  raw broker messages/s    {:>10.1}  ({} messages of {} bytes)", report.raw_messages_per_second, report.messages, report.mean_message_bytes);
    println!("  hub / raw                {:>10.3}", report.hub_to_raw_ratio);
}
