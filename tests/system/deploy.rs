//! The deployment files in `deploy/` cannot run here (Apache Kafka, Kubernetes), so they are
//! checked against the code: every `HUB_*` setting they pass is one the configuration has, and
//! every path they probe or scrape answers 200 on a running hub.
use crate::common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use hub::config::Config;
use serde_json::Value;

fn deploy(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy").join(file)
}

/// Every document of a YAML file, read by PyYAML.
fn yaml_documents(path: &Path) -> Vec<Value> {
    let output = Command::new("python3")
        .args([
            "-c",
            "import sys, json, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1], encoding='utf-8')))))",
        ])
        .arg(path)
        .env("PYTHONPATH", common::python_packages("yaml", "PyYAML==6.0.2"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{} is not YAML: {}", path.display(), String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Whether `HUB_SECTION__KEY…` names a setting of `config` (the configuration as JSON).
fn setting_exists(config: &Value, variable: &str) -> bool {
    let Some(path) = variable.strip_prefix("HUB_") else { return false };
    let mut node = config;
    for part in path.split("__") {
        match node.get(part.to_lowercase()) {
            Some(next) => node = next,
            None => return false,
        }
    }
    true
}

fn object_keys(value: &Value) -> Vec<String> {
    value.as_object().map(|object| object.keys().cloned().collect()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deployment_files_pass_only_real_settings_and_probe_real_paths() {
    let mut variables = BTreeSet::new();
    let mut paths = BTreeSet::new();

    let compose = yaml_documents(&deploy("compose.yaml")).remove(0);
    for (name, service) in compose["services"].as_object().unwrap() {
        variables.extend(object_keys(&service["environment"]).into_iter().filter(|k| k.starts_with("HUB_")));
        for word in service["healthcheck"]["test"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            if let Some(at) = word.find("8080/") {
                paths.insert(word[at + 4..].to_string());
            }
        }
        if name.starts_with("hub-") {
            assert_eq!(service["stop_signal"], "SIGTERM", "{name} is stopped with SIGTERM, which drains it");
        }
    }
    let kafka_nodes = compose["services"].as_object().unwrap().keys().filter(|k| k.starts_with("kafka-")).count();
    assert_eq!(kafka_nodes, 3, "Kafka in KRaft mode, three nodes");
    let env_file = std::fs::read_to_string(deploy("hub.env")).unwrap();
    variables.extend(
        env_file
            .lines()
            .filter(|l| l.starts_with("HUB_"))
            .filter_map(|l| l.split_once('='))
            .map(|(k, _)| k.to_string()),
    );
    let prometheus = yaml_documents(&deploy("prometheus.yml")).remove(0);
    for job in prometheus["scrape_configs"].as_array().unwrap() {
        paths.insert(job["metrics_path"].as_str().unwrap_or("/metrics").to_string());
    }

    let manifests = yaml_documents(&deploy("k8s/hub.yaml"));
    let kinds: BTreeSet<&str> = manifests.iter().filter_map(|m| m["kind"].as_str()).collect();
    for kind in ["ConfigMap", "Secret", "Deployment", "PodDisruptionBudget", "PersistentVolumeClaim", "Service"] {
        assert!(kinds.contains(kind), "deploy/k8s/hub.yaml has a {kind}");
    }
    for manifest in &manifests {
        match manifest["kind"].as_str() {
            Some("ConfigMap") => variables.extend(object_keys(&manifest["data"])),
            Some("Secret") => variables.extend(object_keys(&manifest["stringData"])),
            Some("Deployment") => {
                let spec = &manifest["spec"];
                assert_eq!(spec["replicas"], 3);
                assert!(spec["template"]["spec"]["terminationGracePeriodSeconds"].as_i64().unwrap() >= 20);
                for container in spec["template"]["spec"]["containers"].as_array().unwrap() {
                    for probe in ["readinessProbe", "livenessProbe"] {
                        let path = container[probe]["httpGet"]["path"].as_str().unwrap_or_else(|| panic!("{probe}"));
                        paths.insert(path.to_string());
                    }
                }
            }
            _ => {}
        }
    }

    let known = serde_json::to_value(Config::default()).unwrap();
    let unknown: Vec<&String> = variables.iter().filter(|v| !setting_exists(&known, v)).collect();
    assert!(variables.len() > 10, "{variables:?}");
    assert!(unknown.is_empty(), "settings the configuration does not have: {unknown:?}");

    let dir = tempfile::tempdir().unwrap();
    let config = common::quiet_sqlite_config(dir.path());
    let hub = hub::Hub::start(&config, hub::bind("127.0.0.1:0").await.unwrap()).await.unwrap();
    assert_eq!(paths, BTreeSet::from(["/ready".to_string(), "/health".into(), "/metrics".into()]));
    for path in &paths {
        let answer = reqwest::get(format!("http://{}{path}", hub.api_address)).await.unwrap();
        assert_eq!(answer.status(), 200, "{path}");
    }
    hub.stop().await;
}
