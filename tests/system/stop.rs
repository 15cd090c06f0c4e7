//! A container stop: `hub run` as its own process tells where its API, Kafka bootstrap and schema
//! registry are, turns unready at once on SIGTERM while still answering, and exits 0 within its
//! bound. Idle, it writes no line per request of the embedded broker's clients.
use crate::common;

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const HUB: &str = env!("CARGO_BIN_EXE_hub");
const DRAIN_SECONDS: u64 = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_and_exits_zero_within_its_bound() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    // Counterparts nobody answers at: an idle hub calls none of them.
    let nowhere = format!("http://127.0.0.1:{}", common::free_port());
    let mut child = Command::new(HUB)
        .arg("run")
        .env("HUB_DATABASE__URL", format!("sqlite://{}", dir.path().join("hub.db").display()))
        .env("HUB_API__LISTEN", format!("127.0.0.1:{port}"))
        .env("HUB_API__DRAIN_SECONDS", DRAIN_SECONDS.to_string())
        .env("HUB_AUDIT__ARCHIVE_DIR", dir.path().join("archives"))
        .env("HUB_PROVINCE__CATALOGUE_SYNC_SECONDS", "0")
        .envs(
            ["POSTAL", "ECERT", "PROVINCE", "BANK", "SMS"]
                .map(|name| (format!("HUB_{name}__BASE_URL"), nowhere.clone())),
        )
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read as it comes, so a chatty hub cannot fill the pipe and stall.
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let logged = std::thread::spawn(move || stderr.lines().map_while(Result::ok).collect::<Vec<String>>());
    let mut printed = BufReader::new(child.stdout.take().unwrap()).lines();
    let lines: Vec<String> = (0..3).map(|_| printed.next().unwrap().unwrap()).collect();
    assert!(lines[0].contains(&format!("http://127.0.0.1:{port}")), "{lines:?}");
    assert!(lines[1].starts_with("Kafka bootstrap:") && lines[1].contains("127.0.0.1:"), "{lines:?}");
    assert!(lines[2].ends_with(&format!("http://127.0.0.1:{port}/schema-registry")), "{lines:?}");

    let ready_url = format!("http://127.0.0.1:{port}/ready");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if reqwest::get(&ready_url).await.is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(Instant::now() < deadline, "hub run never became ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Idle for a while: the broker's clients poll it all the time, and nothing of that is logged.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let signalled = Instant::now();
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let draining = reqwest::get(&ready_url).await.expect("still answering while draining");
    assert_eq!(draining.status(), 503);
    assert_eq!(draining.json::<Value>().await.unwrap()["draining"], true);

    // The bound: the drain, five seconds for the tasks to finish, two for the Kafka clients.
    let bound = Duration::from_secs(DRAIN_SECONDS + 5 + 2 + 3);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if signalled.elapsed() > bound {
            let _ = child.kill();
            panic!("hub run did not exit within {bound:?} of SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "hub run exited with {status}");
    let log = logged.join().unwrap();
    assert!(log.len() < 100, "an idle hub logged {} lines, e.g. {:?}", log.len(), &log[log.len().saturating_sub(3)..]);
    assert!(log.iter().any(|line| line.contains("draining")), "{log:?}");
}
