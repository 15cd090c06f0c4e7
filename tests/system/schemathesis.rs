//! Schemathesis (from PyPI) fuzzes the API from its served OpenAPI document, once with each
//! role's token, and finds no server error. Its JUnit reports are kept as test artifacts.
use crate::common;

use std::path::PathBuf;

use common::desk::{demo_options, Desk};
use hub::config::Config;
use hub_cli::demo::DemoRun;
use hub_core::access::Role;
use serde_json::json;

const SELF_EMPLOYED: &str = "11610429MB2912345A4000104010000";
const VILLAGE: &str = "610429100201";
const SCHEMATHESIS: &str = "schemathesis==4.32.5";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_for_any_role() {
    let dir = tempfile::tempdir().unwrap();
    // Production's database: PostgreSQL where it runs, SQLite otherwise.
    let (backend, url) = common::databases(&dir).await.pop().unwrap();
    let mut config = Config::default();
    config.database.url = url;
    config.api.listen = "127.0.0.1:0".into();
    config.audit.archive_dir = dir.path().join("archives").display().to_string();
    let demo = DemoRun::start(config, &demo_options(dir.path())).await.unwrap();
    let api = demo.api_url().to_string();
    // A case to find, so that case routes answer from real data too.
    let desk = Desk::new(&demo);
    let case = desk.submit("schemathesis-1", SELF_EMPLOYED, VILLAGE, json!({})).await;
    let routed = desk.wait_for(&case, "routed").await;
    let department = routed["case"]["department_code"].as_str().unwrap().to_string();

    let pydeps = common::python_packages("schemathesis", SCHEMATHESIS);
    let reports = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("artifacts").join("schemathesis");
    let seats = [
        (Role::VillageClerk, Some(VILLAGE)),
        (Role::CountyApprover, Some(department.as_str())),
        (Role::Supervisor, None),
        (Role::Postal, None),
        (Role::DataBureau, None),
        (Role::Integrator, None),
    ];
    for (role, unit) in seats {
        let token = common::token(&demo.hub, &format!("schemathesis {}", role.code()), role, unit).await;
        let report = reports.join(format!("{}.xml", role.code()));
        let run = tokio::process::Command::new("python3")
            .env("PYTHONPATH", &pydeps)
            .args(["-m", "schemathesis.cli", "run", &format!("{api}/openapi.json")])
            .args(["--checks", "not_a_server_error", "--max-examples", "6", "--seed", "7", "--workers", "1"])
            .args(["--generation-database", "none", "--no-color", "--report", "junit", "--report-junit-path"])
            .arg(&report)
            .args(["-H", &format!("Authorization: Bearer {token}")])
            .output()
            .await
            .unwrap();
        let output = String::from_utf8_lossy(&run.stdout);
        assert!(
            run.status.success(),
            "{backend}: schemathesis as {} found failures:\n{output}\n{}",
            role.code(),
            String::from_utf8_lossy(&run.stderr)
        );
        // Every operation was exercised (all but the document itself, which Schemathesis leaves
        // out), and none failed.
        let junit = std::fs::read_to_string(&report).unwrap();
        let document: serde_json::Value =
            reqwest::get(format!("{api}/openapi.json")).await.unwrap().json().await.unwrap();
        let operations =
            document["paths"].as_object().unwrap().values().map(|path| path.as_object().unwrap().len()).sum::<usize>()
                - 1;
        // Operations are counted by their test cases: the stateful phase, when Schemathesis
        // finds links to follow, adds one test case of its own.
        let tested =
            junit.matches("<testcase name=\"").count() - junit.matches("<testcase name=\"Stateful tests\"").count();
        assert!(
            tested == operations && junit.contains("errors=\"0\" failures=\"0\" skipped=\"0\""),
            "{backend}: {tested} of {operations} operations tested: {junit}"
        );
    }
    demo.stop().await;
}
