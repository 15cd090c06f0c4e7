//! Helpers shared by the system tests: the databases to run against and free ports.
#![allow(dead_code)] // each area uses its own part of the helpers

pub mod cluster;
pub mod desk;
pub mod reviews;
pub mod smtp;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use contracts::PostalAddress;
use sqlx::AnyPool;

/// PostgreSQL used by the tests; CI sets HUB_TEST_REQUIRE_POSTGRES=1 so that a missing server fails.
pub const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A database URL for each backend: a fresh SQLite file, and a fresh schema on PostgreSQL when
/// one is reachable (a printed notice otherwise, or a failure where PostgreSQL is required).
pub async fn databases(dir: &tempfile::TempDir) -> Vec<(&'static str, String)> {
    let mut urls = vec![("sqlite", format!("sqlite://{}", dir.path().join("hub.db").display()))];
    match fresh_postgres_schema().await {
        Ok(url) => urls.push(("postgres", url)),
        Err(error) => {
            if std::env::var("HUB_TEST_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
                panic!("PostgreSQL is required (HUB_TEST_REQUIRE_POSTGRES=1) but not reachable: {error}");
            }
            eprintln!("notice: PostgreSQL not reachable ({error}); running on SQLite only");
        }
    }
    urls
}

/// Creates an empty schema and returns a URL whose connections use it.
pub async fn fresh_postgres_schema() -> anyhow::Result<String> {
    sqlx::any::install_default_drivers();
    let base = std::env::var("HUB_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES.to_string());
    let pool = AnyPool::connect(&base).await?;
    let schema = format!("t_{}", uuid::Uuid::now_v7().simple());
    sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&pool).await?;
    pool.close().await;
    Ok(hub::store::url_in_schema(&base, &schema))
}

/// A hub on a fresh SQLite file in `dir` whose counterparts nobody answers at: for tests in
/// which it only starts, serves its probes and stops.
pub fn quiet_sqlite_config(dir: &Path) -> hub::config::Config {
    let mut config = hub::config::Config::default();
    config.database.url = format!("sqlite://{}", dir.join("hub.db").display());
    config.province.catalogue_sync_seconds = 0;
    config.audit.archive_dir = dir.join("archives").display().to_string();
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    config.postal.base_url = nowhere.clone();
    config.ecert.base_url = nowhere.clone();
    config.province.base_url = nowhere.clone();
    config.bank.base_url = nowhere.clone();
    config.sms.base_url = nowhere;
    config
}

/// A child process (a simulator, a broker, a hub) killed and reaped when the test lets go of it.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A mailing address in the reference county.
pub fn postal_address(name: &str, post_code: &str) -> PostalAddress {
    PostalAddress {
        name: name.into(),
        phone: "13912345678".into(),
        province: "陕西省".into(),
        city: "咸阳市".into(),
        county: "旬邑县".into(),
        address: "土桥镇土桥1村".into(),
        post_code: post_code.into(),
    }
}

/// A simulator's administration view `what` (`stats`, `orders`, …).
pub async fn admin<T: serde::de::DeserializeOwned>(base: &str, what: &str) -> T {
    reqwest::get(format!("{base}/admin/{what}")).await.unwrap().json().await.unwrap()
}

/// Sets the faults a simulator injects from now on.
pub async fn set_faults(base: &str, faults: serde_json::Value) {
    assert_eq!(
        reqwest::Client::new().put(format!("{base}/admin/faults")).json(&faults).send().await.unwrap().status(),
        200
    );
}

/// Posts `body` to the hub's `path` as a counterpart pushes, signed with `secret`.
pub async fn signed_push(api: &str, path: &str, body: &serde_json::Value, secret: &str) -> (u16, serde_json::Value) {
    use connectors::framework::{now_ms, signature, APP_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
    let bytes = serde_json::to_vec(body).unwrap();
    let timestamp = now_ms();
    let response = reqwest::Client::new()
        .post(format!("{api}{path}"))
        .header(APP_ID_HEADER, "XY610429-HUB")
        .header(TIMESTAMP_HEADER, timestamp.to_string())
        .header(SIGNATURE_HEADER, signature(secret, "POST", path, timestamp, &bytes))
        .header("content-type", "application/json")
        .body(bytes)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(serde_json::Value::Null))
}

/// A retry policy for tests that inject 30 % errors and 30 % lost answers: patient enough that
/// exhausting it (about 0.51⁴⁰) never happens, quick enough not to slow the test.
pub const PATIENT: bus::RetryPolicy = bus::RetryPolicy { initial_ms: 1, max_ms: 20, multiplier: 2.0, max_attempts: 40 };

/// Where Python can import `module` from: the system's (CI installs what the tests use), or
/// else a copy of `requirement` this test installs from PyPI into the build's scratch
/// directory, so `cargo test` needs nothing more.
pub fn python_packages(module: &str, requirement: &str) -> PathBuf {
    let scratch = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("pydeps").join(module);
    let importable = |path: &Path| {
        Command::new("python3")
            .args(["-c", &format!("import {module}")])
            .env("PYTHONPATH", path)
            .status()
            .is_ok_and(|s| s.success())
    };
    if !importable(&scratch) {
        let installed = Command::new("python3")
            .args(["-m", "pip", "install", "-q", "--target"])
            .arg(&scratch)
            .arg(requirement)
            .status();
        assert!(
            installed.is_ok_and(|s| s.success()) && importable(&scratch),
            "{requirement} could not be installed from PyPI (pip install '{requirement}')"
        );
    }
    scratch
}

/// A client that calls with this token.
pub fn client_with(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
    reqwest::Client::builder().default_headers(headers).build().unwrap()
}

/// A person's token of `role` (bound to `unit`), issued on the hub's own token store.
pub async fn token(hub: &hub::Hub, holder: &str, role: hub_core::access::Role, unit: Option<&str>) -> String {
    let request = hub::app::tokens::TokenRequest {
        holder: holder.into(),
        kind: hub::app::tokens::TokenKind::Person,
        role,
        unit: unit.map(String::from),
        window: None,
        valid_days: None,
    };
    hub.tokens.issue(request, "test").await.unwrap().token
}
