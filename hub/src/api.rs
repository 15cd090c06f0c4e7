//! The HTTP API of service points and approvers (axum).
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use connectors::framework::{parse_json, BadRequest};
use serde::Deserialize;

use crate::domain::{Command, Outcome, Reference, Rejection};
use crate::store::Store;
use crate::workflow::{execute, execute_all, explain_routing, CommandError, Intake, SubmitApplication};

#[derive(Clone)]
pub struct ApiState {
    pub store: Store,
    pub reference: Arc<Reference>,
    pub intake: Intake,
}

pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/health", get(|| async { Json(serde_json::json!({"status": "ok"})) }))
        .route("/api/v1/applications", post(submit))
        .route("/api/v1/cases/{case_number}", get(read_case))
        .route("/api/v1/cases/{case_number}/decision", post(decide_case))
        .route("/api/v1/decisions", post(decide_cases))
        .route("/api/v1/approvals", get(approval_queue))
        .route("/api/v1/routing/explain", get(explain))
        .route("/api/v1/stats", get(stats))
        .with_state(state)
}

fn internal(error: anyhow::Error) -> Response {
    tracing::error!(%error, "request failed");
    (StatusCode::INTERNAL_SERVER_ERROR, Json(serde_json::json!({"error": "internal error; the request was not applied"}))).into_response()
}

async fn submit(State(state): State<ApiState>, body: Bytes) -> Response {
    let request: SubmitApplication = match parse_json(&body) {
        Ok(request) => request,
        Err(bad) => return bad.into_response(),
    };
    if let Err(bad) = request.validate(&state.reference) {
        return BadRequest { status: StatusCode::UNPROCESSABLE_ENTITY, field: Some(bad.field.clone()), message: bad.to_string() }.into_response();
    }
    match state.intake.submit(request).await {
        Ok(submitted) => {
            let status = if submitted.created { StatusCode::CREATED } else { StatusCode::OK };
            let body = serde_json::json!({
                "case_number": submitted.case.case_number,
                "state": submitted.case.state,
                "created": submitted.created,
            });
            (status, Json(body)).into_response()
        }
        Err(error) => internal(error),
    }
}

async fn read_case(State(state): State<ApiState>, Path(case_number): Path<String>) -> Response {
    match state.store.case(&case_number).await {
        Ok(Some(record)) => Json(record).into_response(),
        Ok(None) => BadRequest { status: StatusCode::NOT_FOUND, field: None, message: format!("no case {case_number}") }.into_response(),
        Err(error) => internal(error),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionRequest {
    outcome: Outcome,
    officer: String,
    department_code: String,
    #[serde(default)]
    reason: Option<String>,
}

impl DecisionRequest {
    fn into_command(self) -> Result<Command, BadRequest> {
        if self.officer.trim().is_empty() {
            return Err(BadRequest::field("officer", "officer must not be empty"));
        }
        Ok(Command::Decide { outcome: self.outcome, officer: self.officer, department_code: self.department_code, reason: self.reason })
    }
}

/// How a command's failure is answered: which status, naming which field.
fn command_failure(case_number: &str, error: CommandError) -> Result<BadRequest, anyhow::Error> {
    Ok(match error {
        CommandError::NotFound(_) => BadRequest { status: StatusCode::NOT_FOUND, field: None, message: format!("no case {case_number}") },
        CommandError::Rejected(rejection) => {
            let (status, field) = match &rejection {
                Rejection::WrongState { .. } => (StatusCode::CONFLICT, None),
                Rejection::NotCompetent { .. } => (StatusCode::FORBIDDEN, Some("department_code".to_string())),
                Rejection::MissingReason => (StatusCode::UNPROCESSABLE_ENTITY, Some("reason".to_string())),
                _ => (StatusCode::UNPROCESSABLE_ENTITY, None),
            };
            BadRequest { status, field, message: rejection.to_string() }
        }
        CommandError::Store(error) => return Err(error),
    })
}

async fn decide_case(State(state): State<ApiState>, Path(case_number): Path<String>, body: Bytes) -> Response {
    let command = match parse_json::<DecisionRequest>(&body).and_then(DecisionRequest::into_command) {
        Ok(command) => command,
        Err(bad) => return bad.into_response(),
    };
    match execute(&state.store, &state.reference, &case_number, command).await {
        Ok(case) => Json(serde_json::json!({"case_number": case.case_number, "state": case.state})).into_response(),
        Err(error) => match command_failure(&case_number, error) {
            Ok(bad) => bad.into_response(),
            Err(error) => internal(error),
        },
    }
}

/// Largest number of decisions one batch call may carry.
const MAX_DECISIONS_PER_CALL: usize = 500;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBatch {
    decisions: Vec<BatchDecision>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchDecision {
    case_number: String,
    outcome: Outcome,
    officer: String,
    department_code: String,
    #[serde(default)]
    reason: Option<String>,
}

/// Batch approval (批量审批): several decisions in one transaction, each answered on its own
/// with the status the single-case call would have given.
async fn decide_cases(State(state): State<ApiState>, body: Bytes) -> Response {
    let batch: DecisionBatch = match parse_json(&body) {
        Ok(batch) => batch,
        Err(bad) => return bad.into_response(),
    };
    if batch.decisions.is_empty() || batch.decisions.len() > MAX_DECISIONS_PER_CALL {
        let message = format!("a call carries 1 to {MAX_DECISIONS_PER_CALL} decisions, not {}", batch.decisions.len());
        return BadRequest::field("decisions", message).into_response();
    }
    let mut commands = Vec::with_capacity(batch.decisions.len());
    for (index, item) in batch.decisions.into_iter().enumerate() {
        let decision = DecisionRequest { outcome: item.outcome, officer: item.officer, department_code: item.department_code, reason: item.reason };
        match decision.into_command() {
            Ok(command) => commands.push((item.case_number, command)),
            Err(bad) => return bad.within(&format!("decisions[{index}]")).into_response(),
        }
    }
    let numbers: Vec<String> = commands.iter().map(|(number, _)| number.clone()).collect();
    let outcomes = match execute_all(&state.store, &state.reference, commands).await {
        Ok(outcomes) => outcomes,
        Err(error) => return internal(error),
    };
    let mut results = Vec::with_capacity(outcomes.len());
    for (case_number, outcome) in numbers.iter().zip(outcomes) {
        results.push(match outcome {
            Ok(case) => serde_json::json!({"case_number": case_number, "status": 200, "state": case.state}),
            Err(error) => match command_failure(case_number, error) {
                Ok(bad) => serde_json::json!({"case_number": case_number, "status": bad.status.as_u16(), "error": bad.message, "field": bad.field}),
                Err(error) => return internal(error),
            },
        });
    }
    Json(serde_json::json!({ "results": results })).into_response()
}

#[derive(Debug, Deserialize)]
struct ExplainQuery {
    matter_code: String,
    service_point: String,
    domicile_township: Option<String>,
}

/// Where a hypothetical application would be decided, with the rule and the reason.
async fn explain(State(state): State<ApiState>, query: Result<Query<ExplainQuery>, QueryRejection>) -> Response {
    let Query(query) = match query {
        Ok(query) => query,
        Err(rejection) => return BadRequest { status: StatusCode::BAD_REQUEST, field: None, message: rejection.body_text() }.into_response(),
    };
    match explain_routing(&state.reference, &query.matter_code, &query.service_point, query.domicile_township.as_deref()) {
        Ok(routing) => Json(routing).into_response(),
        Err(bad) => BadRequest { status: StatusCode::UNPROCESSABLE_ENTITY, field: Some(bad.field.clone()), message: bad.to_string() }.into_response(),
    }
}

#[derive(Debug, Deserialize)]
struct QueueQuery {
    department: Option<String>,
    limit: Option<i64>,
}

async fn approval_queue(State(state): State<ApiState>, Query(query): Query<QueueQuery>) -> Response {
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    match state.store.approval_queue(query.department.as_deref(), limit).await {
        Ok(cases) => {
            let items: Vec<_> = cases
                .iter()
                .map(|c| {
                    serde_json::json!({
                        "case_number": c.case_number,
                        "matter": c.application.matter.name,
                        "department_code": c.department_code,
                        "promised_date": c.promised_date.map(crate::domain::calendar::iso_date),
                    })
                })
                .collect();
            Json(items).into_response()
        }
        Err(error) => internal(error),
    }
}

async fn stats(State(state): State<ApiState>) -> Response {
    match state.store.count_by_state().await {
        Ok(by_state) => Json(serde_json::json!({ "by_state": by_state })).into_response(),
        Err(error) => internal(error),
    }
}
