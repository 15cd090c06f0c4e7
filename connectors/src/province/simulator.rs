//! A stand-in for the provincial platform: files online applications (as applicants would) and
//! pushes them to the hub until answered; takes case status reports and reviews (idempotent by
//! key) and keeps them, queryable per case; serves the matter catalogue, which tests change to
//! see a new version reach the hub. Every request is signed both ways. Faults through
//! `PUT /admin/faults`; for pushes, `duplicate_rate` sends a push twice and `outage` holds them.
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::protocol::{
    ApplicationPush, CaseStatus, MatterCatalogue, MatterGuide, OnlineApplication, PushResults, Received, ReviewReport,
    StatusBatch, StatusResult, StatusResults, COMPLETED, MAX_APPLICATIONS_PER_PUSH, MAX_REPORTS_PER_CALL, RECEIVED,
};
use crate::framework::now_ms;
pub use crate::simulation::RunningSimulator;
use crate::simulation::{error, idempotency_key, serve, Faults, GateCounts, SignedGate, SignedPusher};
use hub_web::{parse_json, BadRequest};

#[derive(Debug, Clone)]
pub struct SimulatorConfig {
    /// The application allowed in, and its secret; pushes are signed with them too.
    pub app_id: String,
    pub app_secret: String,
    /// The hub's push endpoint; none: applications are filed but never pushed.
    pub push_url: Option<String>,
    pub faults: Faults,
}

/// An application filed at the platform and what became of its push.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FiledApplication {
    pub application: OnlineApplication,
    pub case_number: Option<String>,
    /// Why the hub refused it, naming the field.
    pub refused: Option<String>,
    pub pushes_sent: u32,
}

/// What the platform knows of one case: every status report, in the order of the events.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CaseRecord {
    pub reports: Vec<CaseStatus>,
    /// The newest step's code.
    pub status: u8,
    pub result_type: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Stats {
    pub applications: usize,
    pub pushes_sent: u64,
    pub pushes_answered: u64,
    /// Calls reporting case status, each with 1 to 100 reports.
    pub status_calls: u64,
    /// Status reports taken (new), and reports and reviews sent again after being taken.
    pub reports: u64,
    pub replays: u64,
    pub reviews: u64,
    pub catalogue_reads: u64,
    #[serde(flatten)]
    pub calls: GateCounts,
}

#[derive(Default)]
struct Store {
    applications: BTreeMap<String, FiledApplication>,
    cases: BTreeMap<String, CaseRecord>,
    /// Idempotency keys of the reports and reviews taken.
    keys: std::collections::BTreeSet<String>,
    reviews: Vec<ReviewReport>,
    matters: BTreeMap<String, MatterGuide>,
    serial: u64,
}

struct Simulator {
    gate: SignedGate,
    store: Mutex<Store>,
    counters: Mutex<Stats>,
    to_push: mpsc::UnboundedSender<String>,
    pusher: Option<Arc<SignedPusher>>,
}

/// Serves the simulator on `listener` until the returned handle is dropped.
pub fn spawn(listener: TcpListener, config: SimulatorConfig) -> anyhow::Result<RunningSimulator> {
    let shutdown = CancellationToken::new();
    let (to_push, pending) = mpsc::unbounded_channel();
    let gate = SignedGate::new(&config.app_id, &config.app_secret, config.faults.clone());
    let pusher = SignedPusher::to(
        config.push_url.as_deref(),
        &config.app_id,
        &config.app_secret,
        gate.faults.clone(),
        shutdown.clone(),
    )?;
    let simulator = Arc::new(Simulator {
        gate,
        store: Default::default(),
        counters: Default::default(),
        to_push,
        pusher: pusher.clone(),
    });
    if let Some(pusher) = pusher {
        let sim = simulator.clone();
        tokio::spawn(async move {
            let body = |batch: &[String]| {
                let store = sim.store.lock().expect("store lock");
                ApplicationPush {
                    applications: batch
                        .iter()
                        .filter_map(|no| store.applications.get(no))
                        .map(|filed| filed.application.clone())
                        .collect(),
                }
            };
            pusher
                .run(pending, MAX_APPLICATIONS_PER_PUSH, body, |batch, status, answer| {
                    record_answer(&sim, batch, status, answer)
                })
                .await;
        });
    }
    let app = Router::new()
        .route("/api/v1/case-status", post(take_status))
        .route("/api/v1/reviews", post(take_review))
        .route("/api/v1/matters", get(serve_catalogue))
        .route("/admin/applications", get(list_applications).post(file_application))
        .route("/admin/applications/{project_no}", get(get_application))
        .route("/admin/cases", get(list_cases))
        .route("/admin/cases/{case_number}", get(get_case))
        .route("/admin/reviews", get(list_reviews))
        .route("/admin/matters", get(list_matters).put(replace_matters).post(change_matter))
        .route("/admin/stats", get(stats))
        .with_state(simulator.clone())
        .merge(simulator.gate.faults.routes());
    serve(listener, app, shutdown, "provincial platform")
}

impl Simulator {
    /// Takes a keyed report once: `Ok(true)` when new.
    fn first_time(&self, headers: &HeaderMap) -> Result<bool, BadRequest> {
        let key = idempotency_key(headers)?;
        Ok(self.store.lock().expect("store lock").keys.insert(key))
    }
}

fn check_batch(batch: &StatusBatch) -> Result<(), BadRequest> {
    if batch.reports.is_empty() || batch.reports.len() > MAX_REPORTS_PER_CALL {
        return Err(BadRequest::field("reports", format!("1 to {MAX_REPORTS_PER_CALL} reports a call")));
    }
    Ok(())
}

/// Checks one report: `(field, error)` when refused.
fn check_status(report: &CaseStatus) -> Result<(), (&'static str, String)> {
    for (field, value) in [
        ("report_id", &report.report_id),
        ("case_number", &report.case_number),
        ("implementation_code", &report.implementation_code),
        ("handler_code", &report.handler_code),
    ] {
        if value.trim().is_empty() {
            return Err((field, format!("{field} must not be empty")));
        }
    }
    if ![1, 3, 4, 6, 8, 9, 10, 11].contains(&report.event_code) {
        return Err(("event_code", format!("{} is not a status code (1, 3, 4, 6, 8, 9, 10, 11)", report.event_code)));
    }
    if (report.event_code == COMPLETED) != report.result_type.is_some() {
        return Err(("result_type", "a completion (11) carries its result type, and only a completion does".into()));
    }
    if report.event_code == RECEIVED && report.case_version == 1 && report.applicant.is_none() {
        return Err(("applicant", "a new case's receipt (1) names the applicant".into()));
    }
    if report.event_time <= 0 || report.matter_version < 1 || report.case_version < 1 {
        return Err(("event_time", "event_time, matter_version and case_version must be positive".into()));
    }
    Ok(())
}

/// Takes a batch of status reports, each once by its id; refuses the bad ones alone.
async fn take_status(
    State(sim): State<Arc<Simulator>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (faults, batch) = match sim.gate.admit_json::<StatusBatch>(&method, &uri, &headers, &body, check_batch).await {
        Ok(admitted) => admitted,
        Err(answer) => return answer,
    };
    let mut results = Vec::with_capacity(batch.reports.len());
    let (mut fresh, mut replays) = (0, 0);
    {
        let mut store = sim.store.lock().expect("store lock");
        for (position, report) in batch.reports.into_iter().enumerate() {
            let mut result =
                StatusResult { report_id: report.report_id.clone(), duplicate: false, error: None, field: None };
            if let Err((field, error)) = check_status(&report) {
                (result.error, result.field) = (Some(error), Some(format!("reports[{position}].{field}")));
            } else if !store.keys.insert(report.report_id.clone()) {
                result.duplicate = true;
                replays += 1;
            } else {
                let case = store.cases.entry(report.case_number.clone()).or_default();
                // Reports may come in any order; the case's status is that of its newest event.
                let at = case
                    .reports
                    .partition_point(|r| (r.event_time, r.event_code) <= (report.event_time, report.event_code));
                case.reports.insert(at, report);
                let newest = case.reports.last().expect("just inserted");
                (case.status, case.result_type) = (newest.event_code, newest.result_type.clone());
                fresh += 1;
            }
            results.push(result);
        }
    }
    {
        let mut counters = sim.counters.lock().expect("stats lock");
        counters.status_calls += 1;
        counters.reports += fresh;
        counters.replays += replays;
    }
    sim.gate.answer(&faults, StatusCode::OK, StatusResults { results })
}

async fn take_review(
    State(sim): State<Arc<Simulator>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let faults = match sim.gate.admit(&method, &uri, &headers, &body).await {
        Ok(faults) => faults,
        Err(answer) => return answer,
    };
    let review = match parse_json::<ReviewReport>(&body) {
        Ok(review) if (1..=5).contains(&review.grade) => review,
        Ok(_) => {
            return sim.gate.reject(BadRequest::field("grade", "grade is 1 (very dissatisfied) to 5 (very satisfied)"))
        }
        Err(bad) => return sim.gate.reject(bad),
    };
    let fresh = match sim.first_time(&headers) {
        Ok(fresh) => fresh,
        Err(bad) => return sim.gate.reject(bad),
    };
    if fresh {
        sim.store.lock().expect("store lock").reviews.push(review);
        sim.counters.lock().expect("stats lock").reviews += 1;
    } else {
        sim.counters.lock().expect("stats lock").replays += 1;
    }
    let status = if fresh { StatusCode::CREATED } else { StatusCode::OK };
    sim.gate.answer(&faults, status, Received { duplicate: !fresh })
}

#[derive(Debug, Deserialize)]
struct CatalogueQuery {
    region: String,
}

async fn serve_catalogue(
    State(sim): State<Arc<Simulator>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    query: Result<Query<CatalogueQuery>, QueryRejection>,
) -> Response {
    let faults = match sim.gate.admit(&method, &uri, &headers, b"").await {
        Ok(faults) => faults,
        Err(answer) => return answer,
    };
    match query {
        Ok(Query(query)) if query.region.len() == 6 && query.region.bytes().all(|b| b.is_ascii_digit()) => {}
        _ => return sim.gate.reject(BadRequest::field("region", "region is the 6-digit division code of a county")),
    }
    sim.counters.lock().expect("stats lock").catalogue_reads += 1;
    let matters = sim.store.lock().expect("store lock").matters.values().cloned().collect();
    sim.gate.answer(&faults, StatusCode::OK, MatterCatalogue { matters })
}

/// Files an application as an applicant would online; the platform numbers it and pushes it.
async fn file_application(State(sim): State<Arc<Simulator>>, body: Bytes) -> Response {
    let mut application = match parse_json::<OnlineApplication>(&body) {
        Ok(application) => application,
        Err(bad) => return bad.into_response(),
    };
    {
        let mut store = sim.store.lock().expect("store lock");
        if application.project_no.is_empty() {
            store.serial += 1;
            application.project_no = format!(
                "SX610429{}{:08}",
                crate::framework::date_text(contracts::day_of(now_ms())).replace('-', ""),
                store.serial
            );
        }
        if store.applications.contains_key(&application.project_no) {
            return BadRequest::field("project_no", format!("{} is filed already", application.project_no))
                .into_response();
        }
        store.applications.insert(
            application.project_no.clone(),
            FiledApplication { application: application.clone(), case_number: None, refused: None, pushes_sent: 0 },
        );
    }
    let _ = sim.to_push.send(application.project_no.clone());
    (StatusCode::ACCEPTED, Json(serde_json::json!({"project_no": application.project_no}))).into_response()
}

/// Notes what the hub answered for each application of a push.
fn record_answer(sim: &Simulator, batch: &[String], status: StatusCode, answer: &[u8]) {
    let mut store = sim.store.lock().expect("store lock");
    let results = serde_json::from_slice::<PushResults>(answer).map(|r| r.results).unwrap_or_default();
    for project_no in batch {
        let Some(filed) = store.applications.get_mut(project_no) else { continue };
        filed.pushes_sent += 1;
        match results.iter().find(|r| &r.project_no == project_no) {
            Some(result) => {
                filed.case_number = result.case_number.clone().or(filed.case_number.take());
                filed.refused = result.error.clone();
            }
            None => filed.refused = Some(format!("HTTP {status}: {}", String::from_utf8_lossy(answer))),
        }
    }
}

async fn list_applications(State(sim): State<Arc<Simulator>>) -> Json<Vec<FiledApplication>> {
    Json(sim.store.lock().expect("store lock").applications.values().cloned().collect())
}

async fn get_application(State(sim): State<Arc<Simulator>>, Path(project_no): Path<String>) -> Response {
    match sim.store.lock().expect("store lock").applications.get(&project_no) {
        Some(filed) => Json(filed.clone()).into_response(),
        None => error(StatusCode::NOT_FOUND, "P404", &format!("no application {project_no}")),
    }
}

async fn list_cases(State(sim): State<Arc<Simulator>>) -> Json<BTreeMap<String, CaseRecord>> {
    Json(sim.store.lock().expect("store lock").cases.clone())
}

async fn get_case(State(sim): State<Arc<Simulator>>, Path(case_number): Path<String>) -> Response {
    match sim.store.lock().expect("store lock").cases.get(&case_number) {
        Some(case) => Json(case.clone()).into_response(),
        None => error(StatusCode::NOT_FOUND, "P404", &format!("no reports of case {case_number}")),
    }
}

async fn list_reviews(State(sim): State<Arc<Simulator>>) -> Json<Vec<ReviewReport>> {
    Json(sim.store.lock().expect("store lock").reviews.clone())
}

async fn list_matters(State(sim): State<Arc<Simulator>>) -> Json<Vec<MatterGuide>> {
    Json(sim.store.lock().expect("store lock").matters.values().cloned().collect())
}

/// Replaces the whole catalogue (how a test or the demo seeds the platform).
async fn replace_matters(State(sim): State<Arc<Simulator>>, body: Bytes) -> Response {
    match parse_json::<Vec<MatterGuide>>(&body) {
        Ok(matters) => {
            let count = matters.len();
            sim.store.lock().expect("store lock").matters =
                matters.into_iter().map(|m| (m.implementation_code.clone(), m)).collect();
            Json(serde_json::json!({"matters": count})).into_response()
        }
        Err(bad) => bad.into_response(),
    }
}

/// Changes (or adds) one guide, as the province's catalogue administrators do.
async fn change_matter(State(sim): State<Arc<Simulator>>, body: Bytes) -> Response {
    match parse_json::<MatterGuide>(&body) {
        Ok(mut matter) => {
            matter.updated_at = now_ms();
            sim.store.lock().expect("store lock").matters.insert(matter.implementation_code.clone(), matter.clone());
            Json(matter).into_response()
        }
        Err(bad) => bad.into_response(),
    }
}

async fn stats(State(sim): State<Arc<Simulator>>) -> Json<Stats> {
    let mut stats = sim.counters.lock().expect("stats lock").clone();
    stats.calls = sim.gate.counts();
    (stats.pushes_sent, stats.pushes_answered) = sim.pusher.as_ref().map_or((0, 0), |pusher| pusher.counts());
    stats.applications = sim.store.lock().expect("store lock").applications.len();
    Json(stats)
}
