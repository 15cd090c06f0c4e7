//! `hub bench` on several instances and the relay's drain, as an operator runs them: each in a
//! scratch schema of PostgreSQL that is gone afterwards.
use std::process::{Command, Stdio};

use sqlx::AnyPool;

const HUB: &str = env!("CARGO_BIN_EXE_hub");

/// Runs `hub bench ARGS --json` on PostgreSQL and answers its report and the process id (which
/// names its scratch schema).
fn bench(args: &[&str]) -> (serde_json::Value, u32) {
    let database = std::env::var("HUB_TEST_POSTGRES_URL").unwrap_or_else(|_| crate::common::DEFAULT_POSTGRES.into());
    let child = Command::new(HUB)
        .arg("bench")
        .args(args)
        .arg("--json")
        .env("HUB_DATABASE__URL", database)
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "hub bench {args:?} failed");
    (serde_json::from_slice(&output.stdout).unwrap(), pid)
}

async fn scratch_schema_left(pid: u32) -> bool {
    sqlx::any::install_default_drivers();
    let database = std::env::var("HUB_TEST_POSTGRES_URL").unwrap_or_else(|_| crate::common::DEFAULT_POSTGRES.into());
    let pool = AnyPool::connect(&database).await.unwrap();
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = $1")
        .bind(format!("hub_bench_{pid}"))
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    left > 0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_shares_the_work_between_instances_and_drains_the_relay() {
    let (report, pid) = bench(&["--instances", "2", "--cases", "60", "--ledger-entries", "0"]);
    assert_eq!(report["completed"], 60, "{report:#}");
    assert_eq!(report["instances"], 2);
    let shares = report["shares"].as_array().unwrap();
    assert_eq!(shares.len(), 2, "{report:#}");
    // Each instance's count was read, and the parts add up. How the work falls between them is
    // the broker's group coordinator's to decide (a short run may end before it rebalances).
    let handled: u64 = shares.iter().map(|s| s["messages_handled"].as_u64().unwrap()).sum();
    assert!(handled >= 60, "fewer messages handled than cases: {shares:#?}");
    let total: f64 = shares.iter().map(|s| s["share"].as_f64().unwrap()).sum();
    assert!((total - 1.0).abs() < 1e-9, "{shares:#?}");
    // This process drove 60 cases through its hub, broker and simulators: that took processor time.
    assert!(report["cpu_ms_per_case"].as_f64().is_some_and(|ms| ms > 0.0), "{report:#}");
    // The bare broker's part of a case: its messages, at what the bare run cost each.
    let floor = &report["broker_floor"];
    let per_case = report["messages"].as_f64().unwrap() / 60.0;
    assert!((floor["messages_per_case"].as_f64().unwrap() - per_case).abs() < 1e-9, "{report:#}");
    let (per_message, case_ms) =
        (floor["cpu_us_per_message"].as_f64().unwrap(), floor["cpu_ms_per_case"].as_f64().unwrap());
    assert!(per_message > 0.0 && (case_ms - per_message * per_case / 1000.0).abs() < 1e-9, "{report:#}");
    assert!(!scratch_schema_left(pid).await, "the bench left its scratch schema behind");

    let (drain, pid) = bench(&["--drain-rows", "5000"]);
    assert_eq!(drain["rows"], 5000);
    assert_eq!(drain["database"], "PostgreSQL");
    assert!(drain["rows_per_second"].as_f64().unwrap() > 0.0, "{drain:#}");
    assert!(!scratch_schema_left(pid).await, "the drain left its scratch schema behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bench_on_one_instance_works_in_a_scratch_schema_that_a_later_run_does_not_see() {
    // A run in the database's own schema would leave its cases for the next run to count as
    // finished at once.
    for _ in 0..2 {
        let (report, pid) = bench(&["--cases", "20", "--ledger-entries", "0"]);
        assert_eq!(report["completed"], 20, "{report:#}");
        assert_eq!(
            report["summary"]["by_state"].as_object().unwrap().values().filter_map(|n| n.as_i64()).sum::<i64>(),
            20,
            "{report:#}"
        );
        assert!(!scratch_schema_left(pid).await, "the bench left its scratch schema behind");
    }
}
