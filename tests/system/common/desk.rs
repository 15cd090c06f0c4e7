//! A service desk over the hub's HTTP API: what clerks and approvers do, as the system tests
//! need it; each call is made by whoever would make it, with their token (`hub_cli::demo::staff`).
use std::path::Path;
use std::time::{Duration, Instant};

use connectors::postal::simulator::Faults;
use hub_cli::demo::{DemoOptions, DemoRun};
use serde_json::{json, Value};

/// The ID number of the applicant in every test application.
pub const APPLICANT_ID: &str = "11010519491231002X";

/// A demo environment with nothing driven automatically: the tests play every part.
pub fn demo_options(dir: &Path) -> DemoOptions {
    DemoOptions {
        cases: 0,
        resume: false,
        data_dir: dir.to_path_buf(),
        postal_url: None,
        ecert_url: None,
        province_url: None,
        bank_url: None,
        step_delay: Duration::from_millis(2),
        progress: false,
        concurrency: 1,
        faults: Faults::default(),
        counterpart_faults: Default::default(),
        mix: false,
        electronic_seals: false,
    }
}

pub struct Desk<'a> {
    pub demo: &'a DemoRun,
    pub client: reqwest::Client,
}

impl<'a> Desk<'a> {
    pub fn new(demo: &'a DemoRun) -> Desk<'a> {
        Desk { demo, client: reqwest::Client::new() }
    }

    pub async fn call(&self, path: &str, body: Value) -> (u16, Value) {
        let response =
            self.demo.staff.send(self.client.post(format!("{}{path}", self.demo.api_url())).json(&body)).await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: String) -> (u16, Value) {
        let response = self.demo.staff.send(self.client.get(format!("{}{path}", self.demo.api_url()))).await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
    }

    /// Submits an application with every material of the matter, mailed unless `extra` says otherwise.
    pub async fn submit(&self, request_id: &str, matter: &str, point: &str, extra: Value) -> String {
        let reference = self.demo.hub.reference.get();
        let mut body = json!({
            "request_id": request_id,
            "matter_code": matter,
            "service_point": point,
            "applicant": {"name": "张三", "id_type": "111", "id_number": APPLICANT_ID, "phone": "13912345678"},
            "materials": reference.matter(matter).unwrap().materials.iter().map(|m| m.name.clone()).collect::<Vec<_>>(),
            "delivery": {"method": "mail", "address": super::postal_address("张三", "711300")},
        });
        for (key, value) in extra.as_object().unwrap() {
            body[key] = value.clone();
        }
        let (status, answer) = self.call("/api/v1/applications", body).await;
        assert_eq!(status, 201, "{answer}");
        answer["case_number"].as_str().unwrap().to_string()
    }

    pub async fn command(&self, case: &str, action: &str, body: Value) -> (u16, Value) {
        self.call(&format!("/api/v1/cases/{case}/{action}"), body).await
    }

    pub async fn case(&self, case: &str) -> Value {
        self.get(format!("/api/v1/cases/{case}")).await.1
    }

    pub async fn wait_for(&self, case: &str, state: &str) -> Value {
        self.wait_until(case, state, |c| c["state"] == state).await
    }

    /// Waits until the case satisfies `done`; `what` names the wait in a failure.
    pub async fn wait_until(&self, case: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let record = self.case(case).await;
            if done(&record["case"]) {
                return record;
            }
            assert!(Instant::now() < deadline, "case {case} never got to {what}: it is {}", record["case"]);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The department decides as its rules say: the matter's review steps (审查细则) first, then
    /// the decision, and after an approval 制证, 盖章 and 出件. Answers the decision's status.
    pub async fn decide(&self, case: &str, outcome: &str, reason: Option<&str>) -> (u16, Value) {
        let record = self.case(case).await;
        let department = record["case"]["department_code"].clone();
        let matter =
            record["case"]["application"]["matter"]["implementation_code"].as_str().unwrap_or_default().to_string();
        let review: Vec<String> =
            self.demo.hub.reference.get().review_steps(&matter).iter().map(|s| s.step.clone()).collect();
        for step in review {
            self.command(case, "steps", json!({"step": step, "remarks": "符合审查细则"})).await;
        }
        let decided = self
            .command(case, "decision", json!({"outcome": outcome, "department_code": department, "reason": reason}))
            .await;
        if decided.0 == 200 && outcome == "approved" {
            self.issue_result(case).await;
        }
        decided
    }

    /// 制证, 盖章, 出件 of an approved case, each by its department's officer.
    pub async fn issue_result(&self, case: &str) {
        for (step, _) in hub_core::steps::RESULT_STEPS {
            let (status, answer) = self.command(case, "steps", json!({"step": step})).await;
            assert_eq!(status, 200, "{step} of {case}: {answer}");
        }
    }

    pub async fn titles(&self, case: &str) -> Vec<String> {
        let index = self.get(format!("/api/v1/cases/{case}/documents")).await.1;
        index["documents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["line"]["title"].as_str().unwrap().to_string())
            .collect()
    }

    pub async fn document(&self, case: &str, position: usize) -> String {
        let url = format!("{}/api/v1/cases/{case}/documents/{position}", self.demo.api_url());
        let response = self.demo.staff.send(self.client.get(url)).await.unwrap();
        let html = response.headers()["content-type"] == "text/html; charset=utf-8";
        let text = response.text().await.unwrap();
        assert!(html, "document {position} of {case} is not a page: {text}");
        text
    }
}
