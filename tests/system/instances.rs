//! Several instances, one result: three `hub run` processes and the demo's own hub share one
//! PostgreSQL schema and one `hub broker` process; the demo spreads its calls over all four
//! APIs. In the end every case is archived once, each carrier order, fee order and certificate
//! was made once (the simulators count), each mail went out under one stable Message-ID, the
//! ledger verifies as one chain, nothing was dead-lettered; a SIGTERM'd instance exits 0.
//! Instances that must run alone (an embedded broker, SQLite) refuse to start beside another.
//!
//! Early in the run the database (a private cluster) is restarted; then a random `hub run` is
//! killed with SIGKILL and restarted `HUB_TEST_KILLS` times (none by default: tansu 0.6.0's
//! group coordinator leaves a killed member's partitions unassigned, issue 18's note). One
//! instance connects as `hub_app`, the role `deploy/postgres-roles.sql` makes. `HUB_TEST_INSTANCE_CASES` and
//! `HUB_TEST_DRIVE_SECONDS` size the run.
use crate::common;
use common::KillOnDrop;

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::cluster::PrivateCluster;
use common::desk::demo_options;
use common::smtp::SmtpServer;
use hub::config::Config;
use hub_cli::demo::DemoRun;
use rand::Rng as _;
use sqlx::{AnyPool, Row as _};

const HUB: &str = env!("CARGO_BIN_EXE_hub");

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// One `hub run` of the cluster: its settings, so it can be started again after a kill.
struct Instance {
    port: u16,
    env: Vec<(String, String)>,
    process: Option<KillOnDrop>,
}

impl Instance {
    fn start(&mut self, log: &Path) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
        let child = Command::new(HUB)
            .arg("run")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("HUB_API__LISTEN", format!("127.0.0.1:{}", self.port))
            // Which instance holds which duty, for a failure's story.
            .env("RUST_LOG", "warn,hub::store::election=info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.process = Some(KillOnDrop(child));
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// A `hub broker` process on `bootstrap`, listening when this returns.
pub fn start_broker(bootstrap: &str) -> KillOnDrop {
    let broker = KillOnDrop(
        Command::new(HUB)
            .args(["broker", "--listen", bootstrap])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(bootstrap).is_err() {
        assert!(Instant::now() < deadline, "hub broker did not listen on {bootstrap}");
        std::thread::sleep(Duration::from_millis(50));
    }
    broker
}

async fn wait_until_ready(url: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !reqwest::get(format!("{url}/ready")).await.is_ok_and(|r| r.status() == 200) {
        assert!(Instant::now() < deadline, "{url} never became ready\n{}", tail(log));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `hub run` with `env` and answers its exit status and what it logged, failing if it
/// keeps running for 30 s.
fn refused(env: &[(String, String)]) -> String {
    let mut child = Command::new(HUB)
        .arg("run")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("HUB_API__LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "an instance that must not run beside others kept running");
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    assert!(!output.status.success());
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_instances_on_one_database_and_broker_do_everything_once() {
    let (kills_wanted, cases) = (knob("HUB_TEST_KILLS", 0), knob("HUB_TEST_INSTANCE_CASES", 300));
    let _ = tracing_subscriber::fmt()
        .with_env_filter("warn,hub::store::election=info")
        .with_writer(std::io::stderr)
        .try_init();
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start(dir.path());
    let cluster = PrivateCluster::start().expect("a private PostgreSQL cluster (initdb) for several instances");
    let database = cluster.url("postgres");
    let bootstrap = format!("127.0.0.1:{}", common::free_port());
    let _broker = start_broker(&bootstrap);

    let mut config = Config::default();
    config.database.url = database.clone();
    config.bus.bootstrap_servers = Some(bootstrap.clone());
    config.api.listen = "127.0.0.1:0".into();
    config.mail.smtp_url = format!("smtp://127.0.0.1:{}", smtp.port);
    config.audit.checkpoint_seconds = 1;
    config.audit.archive_dir = dir.path().join("archives").display().to_string();
    let mut options = demo_options(dir.path());
    options.cases = cases;
    options.mix = true;
    options.concurrency = 16;
    let mut demo = DemoRun::start(config.clone(), &options).await.unwrap();
    // The demo's hub migrated the schema as its owner; the deployment's roles come next.
    sqlx::any::install_default_drivers();
    let pool = AnyPool::connect(&database).await.unwrap();
    sqlx::raw_sql(include_str!("../../deploy/postgres-roles.sql")).execute(&pool).await.unwrap();
    pool.close().await;

    let shared: Vec<(String, String)> = [
        ("HUB_DATABASE__URL", database.clone()),
        ("HUB_BUS__BOOTSTRAP_SERVERS", bootstrap.clone()),
        ("HUB_MAIL__SMTP_URL", config.mail.smtp_url.clone()),
        ("HUB_AUDIT__CHECKPOINT_SECONDS", "1".into()),
        ("HUB_AUDIT__ARCHIVE_DIR", config.audit.archive_dir.clone()),
        ("HUB_API__DRAIN_SECONDS", "1".into()),
        ("HUB_POSTAL__BASE_URL", demo.postal_url().into()),
        ("HUB_ECERT__BASE_URL", demo.ecert_url().into()),
        ("HUB_PROVINCE__BASE_URL", demo.province_url().into()),
        ("HUB_BANK__BASE_URL", demo.bank_url().into()),
        ("HUB_SMS__BASE_URL", demo.sms_url().into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let log = dir.path().join("instances.log");
    let mut instances: Vec<Instance> =
        (0..3).map(|_| Instance { port: common::free_port(), env: shared.clone(), process: None }).collect();
    // The production role: it may not update the ledger, and must do everything else.
    instances[2].env.retain(|(k, _)| k != "HUB_DATABASE__URL");
    instances[2].env.push(("HUB_DATABASE__URL".into(), cluster.url("hub_app")));
    for instance in &mut instances {
        instance.start(&log);
    }
    for instance in &instances {
        wait_until_ready(&instance.url(), &log).await;
    }

    // An instance with its own embedded broker must run alone: it refuses beside the cluster.
    let lone: Vec<(String, String)> =
        shared.iter().filter(|(k, _)| k != "HUB_BUS__BOOTSTRAP_SERVERS").cloned().collect();
    let said = refused(&lone);
    assert!(said.contains("bus.bootstrap_servers") && said.contains("alone"), "{said}");

    demo.spread_over(instances.iter().map(Instance::url).collect());
    let finished = AtomicBool::new(false);
    let driving = async {
        let bound = Duration::from_secs(knob("HUB_TEST_DRIVE_SECONDS", 300) as u64);
        let summary = tokio::time::timeout(bound, demo.drive(&options)).await;
        finished.store(true, Ordering::Relaxed);
        summary
    };
    let disrupting = async {
        let mut rng = rand::rng();
        tokio::time::sleep(Duration::from_millis(rng.random_range(500..1_500))).await;
        assert!(!finished.load(Ordering::Relaxed), "the demo finished before PostgreSQL could be restarted");
        eprintln!("restarting PostgreSQL");
        cluster.restart().unwrap();
        let mut kills = 0;
        while !finished.load(Ordering::Relaxed) && kills < kills_wanted {
            tokio::time::sleep(Duration::from_millis(rng.random_range(500..2_000))).await;
            let victim = rng.random_range(0..instances.len());
            if let Some(mut process) = instances[victim].process.take() {
                process.0.kill().unwrap();
                process.0.wait().unwrap();
            }
            kills += 1;
            eprintln!("killed instance {victim} (kill {kills})");
            tokio::time::sleep(Duration::from_millis(rng.random_range(200..1_500))).await;
            instances[victim].start(&log);
        }
        kills
    };
    let (summary, kills) = tokio::join!(driving, disrupting);
    let Ok(summary) = summary else {
        let states = demo.hub.store.count_by_state().await.unwrap();
        let pool = AnyPool::connect(&database).await.unwrap();
        let unpublished: Vec<(String, i64)> =
            sqlx::query("SELECT topic, COUNT(*) FROM outbox WHERE published_at IS NULL GROUP BY topic")
                .fetch_all(&pool)
                .await
                .unwrap()
                .iter()
                .map(|row| (row.get(0), row.get(1)))
                .collect();
        let postal: serde_json::Value = common::admin(demo.postal_url(), "stats").await;
        // Where each consumer group stands where it lags: a stall shows as a lag that stays.
        for topic in demo.hub.bus.catalogue().topics.iter() {
            for group in &topic.consumers {
                let positions = demo.hub.bus.group_positions(group, std::slice::from_ref(&topic.name)).await;
                for position in positions.into_iter().flatten().filter(|p| p.lag > 0) {
                    eprintln!("{group} lags: {position:?}");
                }
            }
        }
        let stuck: Option<String> = sqlx::query("SELECT MIN(case_number) FROM cases WHERE state <> 'archived'")
            .fetch_one(&pool)
            .await
            .unwrap()
            .get(0);
        if let Some(case) = stuck {
            let like = format!("%{case}%");
            for sql in [
                "SELECT event_id || ' ' || topic || ' published=' || COALESCE(CAST(published_at AS TEXT), '-') FROM outbox WHERE event_id LIKE $1 ORDER BY id",
                "SELECT consumer || ' ' || event_id || ' ' || outcome FROM processed_events WHERE event_id LIKE $1 ORDER BY applied_at",
                "SELECT CAST(seq AS TEXT) || ' ' || kind FROM case_events WHERE case_number = $1 OR case_number LIKE $1 ORDER BY seq",
            ] {
                let rows: Vec<String> = sqlx::query(sql)
                    .bind(&like)
                    .fetch_all(&pool)
                    .await
                    .unwrap()
                    .iter()
                    .map(|row| row.get(0))
                    .collect();
                eprintln!("{case}: {rows:#?}");
            }
        }
        panic!(
            "the demo did not finish in time: cases by state {states:?}, unpublished {unpublished:?}, carrier {postal}\n{}",
            tail(&log)
        );
    };
    let summary = summary.unwrap_or_else(|error| panic!("the demo failed: {error:#}\n{}", tail(&log)));
    assert_eq!(kills, kills_wanted, "the demo finished before every kill was made");
    assert_eq!(summary.completed, cases, "{summary:?}");
    assert_eq!(summary.dead_letters, 0, "{summary:?}");

    // A clean stop of one instance: exit 0 within its bound.
    let mut stopping = instances[0].process.take().unwrap();
    let signalled = Instant::now();
    assert!(Command::new("kill").args(["-TERM", &stopping.0.id().to_string()]).status().unwrap().success());
    let status = loop {
        if let Some(status) = stopping.0.try_wait().unwrap() {
            break status;
        }
        assert!(signalled.elapsed() < Duration::from_secs(15), "a SIGTERM'd instance did not exit within 15 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "a SIGTERM'd instance exited with {status}");

    let pool = AnyPool::connect(&database).await.unwrap();
    let count = |sql: &'static str| {
        let pool = pool.clone();
        async move { sqlx::query(sql).fetch_one(&pool).await.unwrap().get::<i64, _>(0) }
    };
    assert_eq!(count("SELECT COUNT(*) FROM cases").await, cases as i64, "one case per application");
    assert_eq!(
        count("SELECT COUNT(*) FROM (SELECT case_number FROM case_events WHERE kind = 'CaseArchived' GROUP BY case_number HAVING COUNT(*) <> 1) x").await,
        0,
        "every case archived exactly once"
    );

    let mailed = count("SELECT COUNT(*) FROM case_events WHERE kind = 'DeliveryRequested'").await;
    let orders: Vec<serde_json::Value> = common::admin(demo.postal_url(), "orders").await;
    assert_eq!(orders.len() as i64, mailed, "one carrier order per mailed case");
    for order in &orders {
        assert_eq!(order["created"], 1, "carrier order {} created more than once", order["logistics_order_no"]);
    }
    let fee_orders = crate::crash::fees_to_collect(&pool).await;
    let placed: Vec<serde_json::Value> = common::admin(demo.bank_url(), "orders").await;
    assert!(fee_orders > 0, "the mix has fees");
    assert_eq!(placed.len() as i64, fee_orders, "one fee order per case with a fee");
    let issued = count("SELECT COUNT(*) FROM case_events WHERE kind = 'CertificateIssued'").await;
    let ecert: serde_json::Value = common::admin(demo.ecert_url(), "stats").await;
    assert!(issued > 0, "the mix issues certificates");
    assert_eq!(ecert["certificates"], issued, "one certificate per issuing case: {ecert}");

    // Each mail recorded as sent arrived, under one Message-ID however often it went out. The
    // notifiers may still be mailing the last events' notices: both sides are read again until
    // they agree (30 s at most).
    let deadline = Instant::now() + Duration::from_secs(30);
    let (distinct, sent) = loop {
        let sent = count("SELECT COUNT(*) FROM notifications WHERE outcome = 'sent'").await;
        let distinct: HashSet<String> = smtp.message_ids().into_iter().collect();
        if (sent > 0 && distinct.len() as i64 == sent) || Instant::now() > deadline {
            break (distinct, sent);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(sent > 0, "the mix's applicants with e-mail addresses got notices");
    assert_eq!(distinct.len() as i64, sent, "distinct Message-IDs received vs notices recorded as sent");
    assert!(!distinct.contains(""), "every mail has a Message-ID");

    let verified = demo.hub.ledger.verify().await.unwrap();
    assert!(verified.holds(), "the ledger is one chain: {verified:?}");
    assert_eq!(
        count("SELECT COUNT(*) FROM audit_alerts").await,
        count("SELECT COUNT(*) FROM outbox WHERE topic = 'hub.audit.alerts'").await,
        "each alert kept once and published once"
    );
}

/// The last lines the instances logged, for a failure's message.
fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_instance_on_one_sqlite_database_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::quiet_sqlite_config(dir.path());
    let first = hub::Hub::start(&config, hub::bind("127.0.0.1:0").await.unwrap()).await.unwrap();
    let second = hub::Hub::start(&config, hub::bind("127.0.0.1:0").await.unwrap()).await;
    let error = format!("{:#}", second.err().expect("a second instance on the same SQLite file refuses"));
    assert!(error.contains("SQLite serves one instance") && error.contains("database.url"), "{error}");
    first.stop().await;
    // Stopped, it leaves the database to the next one.
    let next = hub::Hub::start(&config, hub::bind("127.0.0.1:0").await.unwrap()).await.unwrap();
    next.stop().await;
}
