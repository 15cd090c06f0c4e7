//! The hard way: the demo runs as a child process and is killed with SIGKILL at random moments,
//! then restarted on the same database. The embedded broker loses its log with every kill; the
//! outbox must make up for it. In the end every case reached exactly one final state and the
//! carrier and the bank (separate simulator processes that survive the kills) received each
//! order once.
use crate::common;
use common::KillOnDrop;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::Rng as _;
use sqlx::{AnyPool, Row};

// Enough work that a run is still busy when it is killed, now that a run goes at ~500 cases/s.
const CASES: usize = 5_000;
const KILLS: usize = 6;
const HUB: &str = env!("CARGO_BIN_EXE_hub");

fn demo(data_dir: &Path, api_port: u16, postal_url: &str, bank_url: &str) -> Child {
    Command::new(HUB)
        .args([
            "demo",
            "--resume",
            "--no-progress",
            "--cases",
            &CASES.to_string(),
            "--postal-url",
            postal_url,
            "--bank-url",
            bank_url,
        ])
        .arg("--data-dir")
        .arg(data_dir)
        .env("HUB_API__LISTEN", format!("127.0.0.1:{api_port}"))
        .stdout(Stdio::null())
        // Each run's complaints, for a failing final run to show.
        .stderr(std::fs::File::create(data_dir.join("demo.err")).expect("the demo's error file"))
        .spawn()
        .expect("start the demo")
}

async fn wait_until_up(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while reqwest::get(url).await.is_err() {
        assert!(Instant::now() < deadline, "{url} did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_and_restarted_the_hub_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (api_port, sim_port, bank_port) = (common::free_port(), common::free_port(), common::free_port());
    let postal_url = format!("http://127.0.0.1:{sim_port}");
    let bank_url = format!("http://127.0.0.1:{bank_port}");
    let _simulator = KillOnDrop(
        Command::new(HUB)
            .args(["postal-sim", "--listen", &format!("127.0.0.1:{sim_port}"), "--step-delay-ms", "5"])
            .args(["--push-url", &format!("http://127.0.0.1:{api_port}/connectors/postal/tracking")])
            .args(["--duplicate-rate", "0.2"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let _bank = KillOnDrop(
        Command::new(HUB)
            .args(["bank-sim", "--listen", &format!("127.0.0.1:{bank_port}"), "--duplicate-rate", "0.2"])
            .args(["--push-url", &format!("http://127.0.0.1:{api_port}/connectors/bank/payments")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until_up(&format!("{postal_url}/admin/stats")).await;
    wait_until_up(&format!("{bank_url}/admin/stats")).await;

    let mut rng = rand::rng();
    let mut kills = 0;
    for _ in 0..KILLS * 2 {
        if kills == KILLS {
            break;
        }
        let mut child = KillOnDrop(demo(dir.path(), api_port, &postal_url, &bank_url));
        // Random moments from start-up (broker still starting) to mid-flight.
        let delay = rng.random_range(300..1_500);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        if child.0.try_wait().unwrap().is_some() {
            continue;
        }
        child.0.kill().unwrap();
        child.0.wait().unwrap();
        kills += 1;
        eprintln!("killed the hub after {delay} ms (kill {kills})");
    }
    assert!(kills >= 5, "only {kills} runs could be killed before they finished");

    let mut last = demo(dir.path(), api_port, &postal_url, &bank_url);
    // Generous: the run redoes what the kills interrupted and then every review, on a CI
    // machine that may be busy; finishing at all, with the checks below, is what is tested.
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(status) = last.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = last.kill();
            panic!("the final run did not finish in 300 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let complaints = std::fs::read_to_string(dir.path().join("demo.err")).unwrap_or_default();
    let last_lines: Vec<&str> = complaints.lines().rev().take(20).collect();
    assert!(
        status.success(),
        "the final run must report every case final: {status}; it said, last first: {last_lines:#?}"
    );

    sqlx::any::install_default_drivers();
    let pool = AnyPool::connect(&format!("sqlite://{}", dir.path().join("hub.db").display())).await.unwrap();
    let cases: i64 = sqlx::query("SELECT COUNT(*) FROM cases").fetch_one(&pool).await.unwrap().get(0);
    assert_eq!(cases, CASES as i64, "one case per application, none twice");
    let not_final: i64 =
        sqlx::query("SELECT COUNT(*) FROM cases WHERE state <> 'archived'").fetch_one(&pool).await.unwrap().get(0);
    assert_eq!(not_final, 0);
    let archived_twice = cases_without_exactly(&pool, "CaseArchived", 1).await;
    assert_eq!(archived_twice, 0, "every case reached exactly one final state");
    let tracking_doubled = cases_without_exactly(&pool, "TrackingEvent", 4).await;
    assert_eq!(tracking_doubled, 0, "every tracking event recorded once");

    let mailed: i64 = sqlx::query("SELECT COUNT(*) FROM case_events WHERE kind = 'DeliveryRequested'")
        .fetch_one(&pool)
        .await
        .unwrap()
        .get(0);
    assert!(mailed > CASES as i64 / 2, "most of the demo's cases are mailed: {mailed}");
    let orders: Vec<serde_json::Value> =
        reqwest::get(format!("{postal_url}/admin/orders")).await.unwrap().json().await.unwrap();
    assert_eq!(orders.len() as i64, mailed, "one order per mailed case at the carrier");
    for order in &orders {
        assert_eq!(order["created"], 1, "order {} created more than once", order["logistics_order_no"]);
    }
    let fee_orders = fees_to_collect(&pool).await;
    let placed: Vec<serde_json::Value> =
        reqwest::get(format!("{bank_url}/admin/orders")).await.unwrap().json().await.unwrap();
    assert!(fee_orders > 0, "the demo has cases with fees");
    assert_eq!(placed.len() as i64, fee_orders, "one fee order per case with a fee at the bank");
}

/// Fee orders the hub requested with something to collect: a fee waived in full is not ordered.
pub async fn fees_to_collect(pool: &AnyPool) -> i64 {
    let rows =
        sqlx::query("SELECT body FROM case_events WHERE kind = 'FeeOrderRequested'").fetch_all(pool).await.unwrap();
    let total = |body: String| serde_json::from_str::<serde_json::Value>(&body).unwrap()["total_fen"].as_i64();
    rows.into_iter().filter(|row| total(row.get(0)) > Some(0)).count() as i64
}

/// Cases whose history does not hold exactly `count` events of `kind`.
async fn cases_without_exactly(pool: &AnyPool, kind: &str, count: i64) -> i64 {
    sqlx::query(
        "SELECT COUNT(*) FROM (SELECT case_number FROM case_events WHERE kind = $1 GROUP BY case_number HAVING COUNT(*) <> $2) x",
    )
    .bind(kind)
    .bind(count)
    .fetch_one(pool)
    .await
    .unwrap()
    .get(0)
}
