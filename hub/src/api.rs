//! The HTTP API of service points and approvers (axum).
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use connectors::ecert::inbound::{CertificateLookup, LookupError, LookupPurpose};
use connectors::framework::{parse_json, BadRequest, ValidQuery};
use bus::Bus;
use contracts::MaterialProblem;
use axum::http::header;
use serde::de::DeserializeOwned;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::access::Refusal;
use crate::audit::PersonalDataShown;
use crate::openapi::Operation;
use schemars::SchemaGenerator;
use crate::domain::access::{CaseScope, Seat};
use crate::domain::deadlines::standing;
use crate::domain::documents::{page_index, render};
use crate::domain::flow::flow_record;
use crate::domain::{Case, CaseState, Command, Outcome, Reference, Rejection};
use crate::bank::{ReconcileError, Reconciler};
use crate::province::{CatalogueSync, CurrentReference};
use crate::store::{CaseRecord, Store};
use crate::workflow::{execute, execute_all, explain_routing, CommandError, Intake, SubmitApplication};

#[derive(Clone)]
pub struct ApiState {
    pub store: Store,
    pub reference: CurrentReference,
    pub intake: Intake,
    /// Verifies the e-certificates presented instead of paper.
    pub certificates: Arc<CertificateLookup>,
    pub bus: Arc<Bus>,
    /// The matter catalogue sync with the provincial platform.
    pub catalogue: Arc<CatalogueSync>,
    /// The daily reconciliation with the bank network.
    pub reconciler: Arc<Reconciler>,
}

pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/api/v1/applications", post(submit))
        .route("/api/v1/cases", get(list_cases))
        .route("/api/v1/cases/{case_number}", get(read_case))
        .route("/api/v1/cases/{case_number}/decision", post(case_command::<DecisionRequest>))
        .route("/api/v1/cases/{case_number}/refusal", post(case_command::<RefusalRequest>))
        .route("/api/v1/cases/{case_number}/supplements", post(case_command::<SupplementRequest>))
        .route("/api/v1/cases/{case_number}/procedures", post(case_command::<ProcedureRequest>))
        .route("/api/v1/cases/{case_number}/procedures/complete", post(case_command::<ProcedureCompletion>))
        .route("/api/v1/cases/{case_number}/opinions", post(case_command::<OpinionRequest>))
        .route("/api/v1/cases/{case_number}/pickup", post(case_command::<PickupRequest>))
        .route("/api/v1/cases/{case_number}/reviews", post(case_command::<ReviewRequest>))
        .route("/api/v1/cases/{case_number}/rectifications/close", post(case_command::<RectificationClosing>))
        .route("/api/v1/cases/{case_number}/certificate/revocation", post(case_command::<RevocationRequest>))
        .route("/api/v1/cases/{case_number}/flow", get(read_flow))
        .route("/api/v1/cases/{case_number}/documents", get(read_documents))
        .route("/api/v1/cases/{case_number}/documents/{position}", get(read_document))
        .route("/api/v1/reviews/stats", get(review_stats))
        .route("/api/v1/warnings", get(warnings))
        .route("/api/v1/decisions", post(decide_cases))
        .route("/api/v1/approvals", get(approval_queue))
        .route("/api/v1/routing/explain", get(explain))
        .route("/api/v1/matters", get(list_matters))
        .route("/api/v1/stats", get(stats))
        .route("/api/v1/delivery-orders", get(delivery_orders))
        .route("/api/v1/connectors/{name}/offsets", get(group_offsets))
        .route("/api/v1/connectors/{name}/offsets/reset", post(reset_offsets))
        .route("/api/v1/catalogue/sync", post(sync_catalogue))
        .route("/api/v1/bank/reconciliations", post(run_reconciliation))
        .route("/api/v1/bank/reconciliations/{day}", get(read_reconciliation))
        .with_state(state)
}

fn internal(error: anyhow::Error) -> Response {
    tracing::error!(%error, "request failed");
    (StatusCode::INTERNAL_SERVER_ERROR, Json(serde_json::json!({"error": "internal error; the request was not applied"}))).into_response()
}

async fn submit(State(state): State<ApiState>, Extension(seat): Extension<Seat>, body: Bytes) -> Response {
    let mut request: SubmitApplication = match parse_json(&body) {
        Ok(request) => request,
        Err(bad) => return bad.into_response(),
    };
    let reference = state.reference.get();
    if let Err(bad) = request.validate(&reference) {
        return BadRequest { status: StatusCode::UNPROCESSABLE_ENTITY, field: Some(bad.field.clone()), message: bad.to_string() }.into_response();
    }
    if seat.unit.as_deref() != Some(request.service_point.as_str()) {
        let reason = format!("{} takes in applications at {}, not at {}", seat.holder, seat.unit.as_deref().unwrap_or("no service point"), request.service_point);
        return Refusal::not_yours(&seat, reason).on_field("service_point").into_response();
    }
    if let Err(failure) = verify_presented(&reference, &state.certificates, &mut request).await {
        return failure.into_response();
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

/// Fetches and verifies each presented certificate: a good one stands in for its material, a
/// bad one makes the material faulty, for the one-time notice to name. A malformed identifier
/// is refused (422, naming it); an unreachable repository leaves the application untaken.
pub async fn verify_presented(reference: &Reference, certificates: &CertificateLookup, request: &mut SubmitApplication) -> Result<(), LookupError> {
    let matter = reference.matter(&request.matter_code).map(|m| m.name.clone()).unwrap_or_default();
    for (i, presented) in std::mem::take(&mut request.certificates).into_iter().enumerate() {
        let why = LookupPurpose { purpose: format!("办理{matter}：核验{}（免提交，申请{}）", presented.material, request.request_id), officer: None, case_number: None };
        let problem = match certificates.fetch(&presented.certificate_id, &why).await {
            Ok(found) if found.certificate.holder_code != request.applicant.id_number => Some("电子证照持证主体与申请人不符".to_string()),
            Ok(found) if !found.valid => Some(format!("电子证照核验未通过：{}", found.problems.join("；"))),
            Ok(_) => None,
            Err(LookupError::NotFound(_)) => Some("电子证照库中无此证照".to_string()),
            Err(LookupError::Bad(bad)) => {
                let field = format!("certificates[{i}].certificate_id");
                return Err(LookupError::Bad(BadRequest { status: StatusCode::UNPROCESSABLE_ENTITY, field: Some(field.clone()), message: format!("{field}: {}", bad.message) }));
            }
            Err(unavailable @ LookupError::Unavailable(_)) => return Err(unavailable),
        };
        match problem {
            None if !request.materials.contains(&presented.material) => request.materials.push(presented.material),
            None => {}
            Some(problem) => request.faulty_materials.push(MaterialProblem { material: presented.material, problem }),
        }
    }
    Ok(())
}

/// Synchronises the matter catalogue with the provincial platform now.
async fn sync_catalogue(State(state): State<ApiState>) -> Response {
    match state.catalogue.run().await {
        Ok(report) => Json(report).into_response(),
        Err(error) => (StatusCode::BAD_GATEWAY, Json(serde_json::json!({"success": false, "error": format!("{error:#}")}))).into_response(),
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ReconciliationRequest {
    /// `YYYY-MM-DD`, China Standard Time.
    date: String,
}

/// Reconciles a day's bank statement against the fee orders and payments now.
async fn run_reconciliation(State(state): State<ApiState>, body: Bytes) -> Response {
    let request: ReconciliationRequest = match parse_json(&body) {
        Ok(request) => request,
        Err(bad) => return bad.into_response(),
    };
    match state.reconciler.run(&request.date).await {
        Ok(report) => Json(report).into_response(),
        Err(ReconcileError::BadDay(_)) => BadRequest::field("date", "date is YYYY-MM-DD").into_response(),
        Err(error @ ReconcileError::Statement(_)) => (StatusCode::BAD_GATEWAY, Json(serde_json::json!({"success": false, "error": error.to_string()}))).into_response(),
        Err(ReconcileError::Store(error)) => internal(error),
    }
}

/// The latest reconciliation report of a day.
async fn read_reconciliation(State(state): State<ApiState>, Path(day): Path<String>) -> Response {
    match state.store.latest_reconciliation(&day).await {
        Ok(Some(report)) => Json(report).into_response(),
        Ok(None) => BadRequest { status: StatusCode::NOT_FOUND, field: None, message: format!("no reconciliation of {day} yet") }.into_response(),
        Err(error) => internal(error),
    }
}

/// Where a consumer group (a connector or a hub service) stands on each partition it reads.
async fn group_offsets(State(state): State<ApiState>, Path(name): Path<String>) -> Response {
    let topics: Vec<String> = state.bus.catalogue().topics.iter().filter(|t| t.consumers.contains(&name)).map(|t| t.name.clone()).collect();
    if topics.is_empty() {
        return BadRequest { status: StatusCode::NOT_FOUND, field: None, message: format!("topics/catalogue.toml lists no topic for consumer group {name}") }.into_response();
    }
    match state.bus.group_positions(&name, &topics).await {
        Ok(positions) => {
            let lag: i64 = positions.iter().map(|p| p.lag).sum();
            Json(serde_json::json!({ "group": name, "lag": lag, "partitions": positions })).into_response()
        }
        Err(error) => internal(error),
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct OffsetResetRequest {
    /// `earliest`, `latest` or an RFC 3339 instant.
    to: String,
    /// Only this topic; every topic the group reads when absent.
    #[serde(default)]
    topic: Option<String>,
}

/// Moves a consumer group's offsets: `earliest` reads everything held again, `latest` skips the
/// backlog, an instant goes back (or forward) to the first message written from then on.
async fn reset_offsets(State(state): State<ApiState>, Path(name): Path<String>, body: Bytes) -> Response {
    let request: OffsetResetRequest = match parse_json(&body) {
        Ok(request) => request,
        Err(bad) => return bad.into_response(),
    };
    let to = match bus::ResetTo::parse(&request.to) {
        Ok(to) => to,
        Err(message) => return BadRequest::field("to", message).into_response(),
    };
    if let Some(topic) = &request.topic {
        let read_by_group = state.bus.catalogue().topic(topic).is_some_and(|t| t.consumers.contains(&name));
        if !read_by_group {
            return BadRequest::field("topic", format!("consumer group {name} does not read topic {topic} (topics/catalogue.toml)")).into_response();
        }
    }
    match state.bus.resets().reset(&name, to, request.topic).await {
        Ok(partitions) => Json(serde_json::json!({ "group": name, "to": request.to, "partitions": partitions })).into_response(),
        Err(error @ bus::ResetError::NotRunHere(_)) => BadRequest { status: StatusCode::NOT_FOUND, field: None, message: error.to_string() }.into_response(),
        Err(error @ bus::ResetError::Failed { .. }) => BadRequest { status: StatusCode::CONFLICT, field: None, message: error.to_string() }.into_response(),
    }
}

/// The case, if it exists and lies within the seat's scope; otherwise the answer saying why not.
async fn case_for(state: &ApiState, seat: &Seat, case_number: &str) -> Result<CaseRecord, Response> {
    match state.store.case(case_number).await {
        Ok(Some(record)) if CaseScope::of(seat, &state.reference.get()).sees(&record.case) => Ok(record),
        Ok(Some(_)) => Err(Refusal::not_yours(seat, format!("case {case_number} is not one of {}'s ({})", seat.holder, seat.unit.as_deref().unwrap_or(seat.role.code()))).into_response()),
        Ok(None) => Err(BadRequest { status: StatusCode::NOT_FOUND, field: None, message: format!("no case {case_number}") }.into_response()),
        Err(error) => Err(internal(error)),
    }
}

async fn read_case(State(state): State<ApiState>, Extension(seat): Extension<Seat>, Path(case_number): Path<String>) -> Response {
    match case_for(&state, &seat, &case_number).await {
        Ok(record) => PersonalDataShown::of("case file", [&record.case]).attach(Json(&record).into_response()),
        Err(response) => response,
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct DecisionRequest {
    outcome: Outcome,
    officer: String,
    department_code: String,
    #[serde(default)]
    reason: Option<String>,
}

/// A request body that becomes a command on the case its path names.
trait CaseCommand: DeserializeOwned {
    fn into_command(self) -> Result<Command, BadRequest>;
}

fn required(field: &str, value: &str) -> Result<(), BadRequest> {
    if value.trim().is_empty() {
        return Err(BadRequest::field(field, format!("{field} must not be empty")));
    }
    Ok(())
}

impl CaseCommand for DecisionRequest {
    fn into_command(self) -> Result<Command, BadRequest> {
        required("officer", &self.officer)?;
        Ok(Command::Decide { outcome: self.outcome, officer: self.officer, department_code: self.department_code, reason: self.reason })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RefusalRequest {
    officer: String,
    reason: String,
    legal_basis: String,
}

impl CaseCommand for RefusalRequest {
    fn into_command(self) -> Result<Command, BadRequest> {
        required("officer", &self.officer)?;
        Ok(Command::Refuse { officer: self.officer, reason: self.reason, legal_basis: self.legal_basis })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct SupplementRequest {
    materials: Vec<String>,
}

impl CaseCommand for SupplementRequest {
    fn into_command(self) -> Result<Command, BadRequest> {
        if self.materials.is_empty() {
            return Err(BadRequest::field("materials", "name at least one material supplied"));
        }
        Ok(Command::Supplement { materials: self.materials })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ProcedureRequest {
    procedure: String,
    officer: String,
    #[serde(default)]
    departments: Vec<String>,
    #[serde(default)]
    parties: Vec<String>,
}

impl CaseCommand for ProcedureRequest {
    fn into_command(self) -> Result<Command, BadRequest> {
        required("officer", &self.officer)?;
        Ok(Command::StartProcedure { procedure: self.procedure, officer: self.officer, departments: self.departments, parties: self.parties })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ProcedureCompletion {
    officer: String,
    summary: String,
}

impl CaseCommand for ProcedureCompletion {
    fn into_command(self) -> Result<Command, BadRequest> {
        required("officer", &self.officer)?;
        Ok(Command::CompleteProcedure { officer: self.officer, summary: self.summary })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct OpinionRequest {
    department_code: String,
    officer: String,
    opinion: String,
    #[serde(default)]
    remarks: String,
}

impl CaseCommand for OpinionRequest {
    fn into_command(self) -> Result<Command, BadRequest> {
        required("officer", &self.officer)?;
        Ok(Command::GiveOpinion { department_code: self.department_code, officer: self.officer, opinion: self.opinion, remarks: self.remarks })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct PickupRequest {
    collected_by: String,
    #[serde(default)]
    id_number: Option<String>,
    #[serde(default)]
    pickup_code: Option<String>,
    #[serde(default)]
    signature: String,
}

impl CaseCommand for PickupRequest {
    fn into_command(self) -> Result<Command, BadRequest> {
        Ok(Command::Collect { collected_by: self.collected_by, id_number: self.id_number, pickup_code: self.pickup_code, signature: self.signature })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ReviewRequest {
    grade: i32,
    channel: String,
    #[serde(default)]
    comment: String,
}

impl CaseCommand for ReviewRequest {
    fn into_command(self) -> Result<Command, BadRequest> {
        Ok(Command::Review { grade: self.grade, channel: self.channel, comment: self.comment })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RectificationClosing {
    item_number: String,
    officer: String,
    feedback: String,
}

impl CaseCommand for RectificationClosing {
    fn into_command(self) -> Result<Command, BadRequest> {
        required("officer", &self.officer)?;
        Ok(Command::CloseRectification { item_number: self.item_number, officer: self.officer, feedback: self.feedback })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RevocationRequest {
    officer: String,
    reason: String,
}

impl CaseCommand for RevocationRequest {
    fn into_command(self) -> Result<Command, BadRequest> {
        required("officer", &self.officer)?;
        required("reason", &self.reason)?;
        Ok(Command::RevokeCertificate { officer: self.officer, reason: self.reason })
    }
}

/// How a command's failure is answered: which status, naming which field.
fn command_failure(case_number: &str, error: CommandError) -> Result<BadRequest, anyhow::Error> {
    Ok(match error {
        CommandError::NotFound(_) => BadRequest { status: StatusCode::NOT_FOUND, field: None, message: format!("no case {case_number}") },
        CommandError::Rejected(rejection) => {
            let (status, field) = match &rejection {
                Rejection::WrongState { .. } | Rejection::OpinionsPending(_) | Rejection::AlreadyReviewed | Rejection::FeeUnpaid { .. } => (StatusCode::CONFLICT, None),
                Rejection::NotCompetent { .. } => (StatusCode::FORBIDDEN, Some("department_code")),
                Rejection::IdentityMismatch => (StatusCode::FORBIDDEN, Some("id_number")),
                Rejection::WrongPickupCode => (StatusCode::FORBIDDEN, Some("pickup_code")),
                Rejection::MissingReason => (StatusCode::UNPROCESSABLE_ENTITY, Some("reason")),
                Rejection::Blank(field) => (StatusCode::UNPROCESSABLE_ENTITY, Some(*field)),
                Rejection::UnknownMaterial(_) => (StatusCode::UNPROCESSABLE_ENTITY, Some("materials")),
                Rejection::UnknownProcedure(..) => (StatusCode::UNPROCESSABLE_ENTITY, Some("procedure")),
                Rejection::NotConsulted(_) => (StatusCode::FORBIDDEN, Some("department_code")),
                Rejection::BadOpinion => (StatusCode::UNPROCESSABLE_ENTITY, Some("opinion")),
                Rejection::BadGrade => (StatusCode::UNPROCESSABLE_ENTITY, Some("grade")),
                Rejection::BadChannel => (StatusCode::UNPROCESSABLE_ENTITY, Some("channel")),
                Rejection::NoSuchRectification(_) => (StatusCode::NOT_FOUND, Some("item_number")),
                Rejection::NoCertificate => (StatusCode::CONFLICT, None),
                _ => (StatusCode::UNPROCESSABLE_ENTITY, None),
            };
            BadRequest { status, field: field.map(String::from), message: rejection.to_string() }
        }
        CommandError::Store(error) => return Err(error),
    })
}

/// The authority a command speaks for, if it speaks for one.
fn speaking_for(command: &Command) -> Option<&str> {
    match command {
        Command::Decide { department_code, .. } | Command::GiveOpinion { department_code, .. } => Some(department_code),
        _ => None,
    }
}

/// Why the seat may not give this command on this case, if it may not: the case outside its
/// scope, or a decision or opinion in the name of another department. A missing case is left
/// for the command to answer.
async fn command_refusal(state: &ApiState, seat: &Seat, case_number: &str, command: &Command) -> anyhow::Result<Option<Refusal>> {
    let scope = CaseScope::of(seat, &state.reference.get());
    if let Some(record) = state.store.case(case_number).await? {
        if !scope.sees(&record.case) {
            return Ok(Some(Refusal::not_yours(seat, format!("case {case_number} is not one of {}'s", seat.holder))));
        }
    }
    Ok(speaking_for(command).filter(|authority| !scope.speaks_for(authority)).map(|authority| {
        Refusal::not_yours(seat, format!("{} does not speak for {authority}", seat.holder)).on_field("department_code")
    }))
}

async fn case_command<B: CaseCommand>(State(state): State<ApiState>, Extension(seat): Extension<Seat>, Path(case_number): Path<String>, body: Bytes) -> Response {
    let command = match parse_json::<B>(&body).and_then(B::into_command) {
        Ok(command) => command,
        Err(bad) => return bad.into_response(),
    };
    match command_refusal(&state, &seat, &case_number, &command).await {
        Ok(Some(refusal)) => return refusal.into_response(),
        Ok(None) => {}
        Err(error) => return internal(error),
    }
    match execute(&state.store, &state.reference.get(), &case_number, command).await {
        Ok(case) => Json(summary(&case)).into_response(),
        Err(error) => match command_failure(&case_number, error) {
            Ok(bad) => bad.into_response(),
            Err(error) => internal(error),
        },
    }
}

/// What a command's caller gets back: where the case stands.
fn summary(case: &Case) -> serde_json::Value {
    serde_json::json!({
        "case_number": case.case_number,
        "state": case.state,
        "version": case.version,
        "promised_date": case.promised_date.map(crate::domain::calendar::iso_date),
        "documents": case.documents.len(),
    })
}

/// The case and its history as events, or the response that says why not.
async fn load_record(state: &ApiState, seat: &Seat, case_number: &str) -> Result<(CaseRecord, Vec<contracts::Event>), Response> {
    let record = case_for(state, seat, case_number).await?;
    let events = record.history.iter().map(|entry| serde_json::from_value(entry.event.clone())).collect::<Result<Vec<_>, _>>();
    match events {
        Ok(events) => Ok((record, events)),
        Err(error) => Err(internal(error.into())),
    }
}

/// The flow record (流转表): each hand-over with time, from, to and handler.
async fn read_flow(State(state): State<ApiState>, Extension(seat): Extension<Seat>, Path(case_number): Path<String>) -> Response {
    match load_record(&state, &seat, &case_number).await {
        Ok((record, events)) => {
            let flow = Json(serde_json::json!({ "case_number": case_number, "flow": flow_record(&events, &state.reference.get()) }));
            PersonalDataShown::of("flow record", [&record.case]).attach(flow.into_response())
        }
        Err(response) => response,
    }
}

/// The case file's page index; each line's position opens the printable document.
async fn read_documents(State(state): State<ApiState>, Extension(seat): Extension<Seat>, Path(case_number): Path<String>) -> Response {
    match load_record(&state, &seat, &case_number).await {
        Ok((record, _)) => {
            let index: Vec<_> = page_index(&record.case)
                .into_iter()
                .zip(&record.case.documents)
                .map(|(line, doc)| serde_json::json!({"kind": doc.kind, "href": format!("/api/v1/cases/{case_number}/documents/{}", line.position), "line": line}))
                .collect();
            PersonalDataShown::of("documents", [&record.case]).attach(Json(serde_json::json!({ "case_number": case_number, "documents": index })).into_response())
        }
        Err(response) => response,
    }
}

async fn read_document(State(state): State<ApiState>, Extension(seat): Extension<Seat>, Path((case_number, position)): Path<(String, usize)>) -> Response {
    let (record, events) = match load_record(&state, &seat, &case_number).await {
        Ok(loaded) => loaded,
        Err(response) => return response,
    };
    let found = position.checked_sub(1).and_then(|i| record.case.documents.get(i)).and_then(|doc| {
        events.iter().find(|e| e.event_id() == doc.event_id).map(|event| render(&record.case, doc, event, &state.reference.get()))
    });
    match found {
        Some(html) => PersonalDataShown::of("documents", [&record.case]).attach(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()),
        None => BadRequest { status: StatusCode::NOT_FOUND, field: None, message: format!("case {case_number} has no document {position}") }.into_response(),
    }
}

/// Largest number of decisions one batch call may carry.
const MAX_DECISIONS_PER_CALL: usize = 500;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct DecisionBatch {
    decisions: Vec<BatchDecision>,
}

#[derive(Debug, Deserialize, JsonSchema)]
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
async fn decide_cases(State(state): State<ApiState>, Extension(seat): Extension<Seat>, body: Bytes) -> Response {
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
        match CaseCommand::into_command(decision) {
            Ok(command) => commands.push((item.case_number, command)),
            Err(bad) => return bad.within(&format!("decisions[{index}]")).into_response(),
        }
    }
    // Decisions on cases not the seat's are refused in their place; the rest are taken.
    let mut refusals = Vec::new();
    let mut results: Vec<Option<serde_json::Value>> = Vec::with_capacity(commands.len());
    let mut allowed = Vec::with_capacity(commands.len());
    for (case_number, command) in commands {
        match command_refusal(&state, &seat, &case_number, &command).await {
            Ok(Some(refusal)) => {
                results.push(Some(refusal.as_result(&case_number)));
                refusals.push(refusal);
            }
            Ok(None) => {
                results.push(None);
                allowed.push((case_number, command));
            }
            Err(error) => return internal(error),
        }
    }
    let numbers: Vec<String> = allowed.iter().map(|(number, _)| number.clone()).collect();
    let outcomes = match execute_all(&state.store, &state.reference.get(), allowed).await {
        Ok(outcomes) => outcomes,
        Err(error) => return internal(error),
    };
    let mut taken = Vec::with_capacity(outcomes.len());
    for (case_number, outcome) in numbers.iter().zip(outcomes) {
        taken.push(match outcome {
            Ok(case) => serde_json::json!({"case_number": case_number, "status": 200, "state": case.state}),
            Err(error) => match command_failure(case_number, error) {
                Ok(bad) => serde_json::json!({"case_number": case_number, "status": bad.status.as_u16(), "error": bad.message, "field": bad.field}),
                Err(error) => return internal(error),
            },
        });
    }
    let mut taken = taken.into_iter();
    let results: Vec<serde_json::Value> = results.into_iter().map(|refused| refused.or_else(|| taken.next()).unwrap_or_default()).collect();
    Refusal::attach_all(refusals, Json(serde_json::json!({ "results": results })).into_response())
}

#[derive(Debug, Deserialize, JsonSchema)]
struct ExplainQuery {
    matter_code: String,
    service_point: String,
    domicile_township: Option<String>,
}

/// Where a hypothetical application would be decided, with the rule and the reason.
async fn explain(State(state): State<ApiState>, ValidQuery(query): ValidQuery<ExplainQuery>) -> Response {
    match explain_routing(&state.reference.get(), &query.matter_code, &query.service_point, query.domicile_township.as_deref()) {
        Ok(routing) => Json(routing).into_response(),
        Err(bad) => BadRequest { status: StatusCode::UNPROCESSABLE_ENTITY, field: Some(bad.field.clone()), message: bad.to_string() }.into_response(),
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
struct MatterQuery {
    /// Only the matters this service point may accept; a counter's own point by default.
    service_point: Option<String>,
}

/// The matter catalogue as a counter reads it: each matter's guide (办事指南) in its current
/// version with the deciding authority's name and the materials checklist, by department.
async fn list_matters(State(state): State<ApiState>, Extension(seat): Extension<Seat>, ValidQuery(query): ValidQuery<MatterQuery>) -> Response {
    let reference = state.reference.get();
    let counter_point = || seat.role.works_a_counter().then(|| seat.unit.clone()).flatten();
    let tier = match query.service_point.or_else(counter_point) {
        None => None,
        Some(code) => match reference.service_point(&code) {
            Some(point) => Some(point.tier.clone()),
            None => return BadRequest::field("service_point", format!("no service point {code} in county {}", reference.county.code)).into_response(),
        },
    };
    let mut matters: Vec<_> = reference.matters().filter(|matter| tier.as_ref().is_none_or(|tier| matter.accept_tiers.contains(tier))).collect();
    matters.sort_by(|a, b| (&a.department, &a.name).cmp(&(&b.department, &b.name)));
    let guides: Vec<_> = matters
        .into_iter()
        .map(|matter| {
            let mut guide = serde_json::to_value(matter).expect("a matter serialises");
            guide["department_name"] = serde_json::json!(reference.authority(&matter.department).map(|authority| authority.name));
            guide
        })
        .collect();
    Json(guides).into_response()
}

#[derive(Debug, Deserialize, JsonSchema)]
struct QueueQuery {
    department: Option<String>,
    limit: Option<i64>,
}

/// The approvers' queue: cases routed to a department and waiting for its decision, with the
/// opinions a parallel approval still awaits.
async fn approval_queue(State(state): State<ApiState>, Extension(seat): Extension<Seat>, ValidQuery(query): ValidQuery<QueueQuery>) -> Response {
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let scope = CaseScope::of(&seat, &state.reference.get());
    if let Some(department) = query.department.as_deref().filter(|department| !scope.speaks_for(department)) {
        return Refusal::not_yours(&seat, format!("{} does not decide for {department}", seat.holder)).into_response();
    }
    let department = query.department.or(seat.unit.clone());
    let reference = state.reference.get();
    let today = crate::domain::calendar::day_of(crate::store::now_ms());
    match state.store.cases_in_state(CaseState::Routed, department.as_deref(), &scope, limit).await {
        Ok(cases) => {
            let items: Vec<_> = cases
                .iter()
                .map(|c| {
                    let given: Vec<&str> = c.opinions.iter().map(|o| o.department_code.as_str()).collect();
                    let standing = standing(c, today, &reference);
                    serde_json::json!({
                        "case_number": c.case_number,
                        "matter": c.application.matter.name,
                        "matter_code": c.application.matter.implementation_code,
                        "department_code": c.department_code,
                        "promised_date": c.promised_date.map(crate::domain::calendar::iso_date),
                        // How near the promised date is today: prompt, yellow, red or none yet.
                        "deadline": standing.map(|s| serde_json::json!({"working_days_left": s.working_days_left, "level": s.level.map(|level| level.as_str())})),
                        "opinions_pending": c.opinions_required.iter().filter(|d| !given.contains(&d.as_str())).collect::<Vec<_>>(),
                        "procedures_completed": c.documents.iter().filter(|d| d.kind.ends_with("_record")).count(),
                        // An approval waits for an unpaid fee.
                        "fee": c.fee.as_ref().map(|fee| serde_json::json!({
                            "order_number": fee.order_number,
                            "total_fen": fee.total_fen,
                            "paid_fen": fee.paid_fen(),
                            "payment_code": fee.payment_code,
                            "paid": fee.is_paid(),
                        })),
                    })
                })
                .collect();
            Json(items).into_response()
        }
        Err(error) => internal(error),
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
struct CaseListQuery {
    state: String,
    department: Option<String>,
    limit: Option<i64>,
}

/// Cases in one state (awaiting supplement, awaiting pickup, …), longest waiting first.
async fn list_cases(State(state): State<ApiState>, Extension(seat): Extension<Seat>, ValidQuery(query): ValidQuery<CaseListQuery>) -> Response {
    let Some(case_state) = CaseState::parse(&query.state) else {
        let states: Vec<&str> = CaseState::ALL.iter().map(|s| s.as_str()).collect();
        return BadRequest::field("state", format!("unknown state {}; one of {}", query.state, states.join(", "))).into_response();
    };
    let scope = CaseScope::of(&seat, &state.reference.get());
    match state.store.cases_in_state(case_state, query.department.as_deref(), &scope, query.limit.unwrap_or(100).clamp(1, 1000)).await {
        Ok(cases) => PersonalDataShown::of("case list", &cases).attach(Json(&cases).into_response()),
        Err(error) => internal(error),
    }
}

async fn stats(State(state): State<ApiState>) -> Response {
    match state.store.count_by_state().await {
        Ok(by_state) => Json(serde_json::json!({ "by_state": by_state })).into_response(),
        Err(error) => internal(error),
    }
}

/// Review statistics (好差评) per service point and per department.
async fn review_stats(State(state): State<ApiState>) -> Response {
    let reviews = match state.store.events_of_kind("ReviewSubmitted", 1_000_000).await {
        Ok(reviews) => reviews,
        Err(error) => return internal(error),
    };
    let mut by_point: std::collections::BTreeMap<String, ReviewTally> = Default::default();
    let mut by_department: std::collections::BTreeMap<String, ReviewTally> = Default::default();
    for review in reviews {
        let Ok(contracts::Event::ReviewSubmitted(review)) = serde_json::from_value::<contracts::Event>(review) else { continue };
        by_point.entry(review.service_point.clone()).or_default().add(review.grade);
        if let Some(department) = &review.department_code {
            by_department.entry(department.clone()).or_default().add(review.grade);
        }
    }
    Json(serde_json::json!({ "by_service_point": by_point, "by_department": by_department })).into_response()
}

#[derive(Debug, Default, serde::Serialize)]
struct ReviewTally {
    reviews: u32,
    /// Count per grade, 1 (very dissatisfied) to 5 (very satisfied).
    grades: [u32; 5],
    bad: u32,
    average: f64,
}

impl ReviewTally {
    fn add(&mut self, grade: i32) {
        let Some(slot) = usize::try_from(grade - 1).ok().filter(|i| *i < 5) else { return };
        self.grades[slot] += 1;
        self.reviews += 1;
        self.bad += u32::from(crate::domain::case::BAD_GRADES.contains(&grade));
        let total: u32 = self.grades.iter().zip(1..).map(|(n, g)| n * g).sum();
        self.average = f64::from(total) / f64::from(self.reviews);
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
struct WarningQuery {
    limit: Option<i64>,
}

/// Time-limit warnings raised, oldest first (the supervisors' list).
async fn warnings(State(state): State<ApiState>, ValidQuery(query): ValidQuery<WarningQuery>) -> Response {
    match state.store.events_of_kind("DeadlineWarning", query.limit.unwrap_or(1000).clamp(1, 100_000)).await {
        Ok(warnings) => Json(serde_json::json!({ "warnings": warnings })).into_response(),
        Err(error) => internal(error),
    }
}

/// The delivery states of a case sent by post, as the postal board shows them.
const DELIVERY_STATES: [CaseState; 4] = [CaseState::DeliveryRequested, CaseState::InTransit, CaseState::Delivered, CaseState::DeliveryFailed];

#[derive(Debug, Deserialize, JsonSchema)]
struct DeliveryQuery {
    state: Option<String>,
    limit: Option<i64>,
}

/// The postal board: delivery orders by state (all four when none is named), each with what
/// the carrier needs — order, waybill, receiver and sender — and nothing of the application.
async fn delivery_orders(State(state): State<ApiState>, ValidQuery(query): ValidQuery<DeliveryQuery>) -> Response {
    let states: Vec<CaseState> = match query.state.as_deref() {
        None => DELIVERY_STATES.to_vec(),
        Some(name) => match CaseState::parse(name).filter(|s| DELIVERY_STATES.contains(s)) {
            Some(one) => vec![one],
            None => {
                let names: Vec<&str> = DELIVERY_STATES.iter().map(|s| s.as_str()).collect();
                return BadRequest::field("state", format!("a delivery state is one of {}", names.join(", "))).into_response();
            }
        },
    };
    let limit = query.limit.unwrap_or(200).clamp(1, 1000);
    let mut cases = Vec::new();
    for delivery_state in states {
        match state.store.cases_in_state(delivery_state, None, &CaseScope::All, limit).await {
            Ok(found) => cases.extend(found),
            Err(error) => return internal(error),
        }
    }
    let orders: Vec<_> = cases
        .iter()
        .map(|case| {
            serde_json::json!({
                "case_number": case.case_number,
                "state": case.state,
                "order_number": case.order_number,
                "waybill_number": case.waybill_number,
                "tracking_events": case.tracking_events,
                "delivery_outcome": case.delivery_outcome,
                "sender": case.department_name,
                "receiver": case.application.delivery_address,
            })
        })
        .collect();
    PersonalDataShown::of("delivery orders", &cases).attach(Json(serde_json::json!({ "orders": orders })).into_response())
}

/// This module's routes, for the OpenAPI document.
pub(crate) fn operations(g: &mut SchemaGenerator) -> Vec<Operation> {
    vec![
        Operation::new("POST", "/api/v1/applications", "service points", "submit an application (idempotent on request_id); presented e-certificates stand in for paper").body::<SubmitApplication>(g),
        Operation::new("GET", "/api/v1/cases", "cases", "cases in one state within the caller's scope, longest waiting first").query::<CaseListQuery>(g),
        Operation::new("GET", "/api/v1/cases/{case_number}", "cases", "the case with its full history"),
        Operation::new("GET", "/api/v1/cases/{case_number}/flow", "cases", "the flow record (流转表)"),
        Operation::new("GET", "/api/v1/cases/{case_number}/documents", "cases", "the case file's page index"),
        Operation::new("GET", "/api/v1/cases/{case_number}/documents/{position}", "cases", "one document, printable").produces("text/html"),
        Operation::new("POST", "/api/v1/cases/{case_number}/decision", "approvers", "approve or deny").body::<DecisionRequest>(g),
        Operation::new("POST", "/api/v1/cases/{case_number}/refusal", "approvers", "not accepted (不予受理)").body::<RefusalRequest>(g),
        Operation::new("POST", "/api/v1/cases/{case_number}/supplements", "service points", "materials supplied (补正)").body::<SupplementRequest>(g),
        Operation::new("POST", "/api/v1/cases/{case_number}/procedures", "approvers", "start a special procedure (site inspection, hearing, expert review)").body::<ProcedureRequest>(g),
        Operation::new("POST", "/api/v1/cases/{case_number}/procedures/complete", "approvers", "the procedure's record").body::<ProcedureCompletion>(g),
        Operation::new("POST", "/api/v1/cases/{case_number}/opinions", "approvers", "a consulted department's opinion (并联审批)").body::<OpinionRequest>(g),
        Operation::new("POST", "/api/v1/cases/{case_number}/pickup", "service points", "hand the result over at the window or locker").body::<PickupRequest>(g),
        Operation::new("POST", "/api/v1/cases/{case_number}/reviews", "service points", "the applicant's review (好差评)").body::<ReviewRequest>(g),
        Operation::new("POST", "/api/v1/cases/{case_number}/rectifications/close", "supervisors", "close a rectification item of a bad review").body::<RectificationClosing>(g),
        Operation::new("POST", "/api/v1/cases/{case_number}/certificate/revocation", "approvers", "revoke the case's e-certificate").body::<RevocationRequest>(g),
        Operation::new("GET", "/api/v1/reviews/stats", "supervisors", "reviews per service point and department"),
        Operation::new("GET", "/api/v1/warnings", "supervisors", "time-limit warnings raised, oldest first").query::<WarningQuery>(g),
        Operation::new("POST", "/api/v1/decisions", "approvers", "batch approval: 1 to 500 decisions, each answered on its own").body::<DecisionBatch>(g),
        Operation::new("GET", "/api/v1/approvals", "approvers", "the approvers' queue of the caller's department").query::<QueueQuery>(g),
        Operation::new("GET", "/api/v1/routing/explain", "service points", "where a hypothetical application would be decided, and why").query::<ExplainQuery>(g),
        Operation::new("GET", "/api/v1/matters", "service points", "the matter guides (办事指南) a service point may accept, with their materials checklists").query::<MatterQuery>(g),
        Operation::new("GET", "/api/v1/stats", "supervisors", "cases per state"),
        Operation::new("GET", "/api/v1/delivery-orders", "postal", "the postal board: delivery orders by delivery state").query::<DeliveryQuery>(g),
        Operation::new("GET", "/api/v1/connectors/{name}/offsets", "integrators", "where a consumer group stands on each partition"),
        Operation::new("POST", "/api/v1/connectors/{name}/offsets/reset", "integrators", "move a consumer group's offsets").body::<OffsetResetRequest>(g),
        Operation::new("POST", "/api/v1/catalogue/sync", "integrators", "synchronise the matter catalogue with the provincial platform now"),
        Operation::new("POST", "/api/v1/bank/reconciliations", "integrators", "reconcile a day's bank statement").body::<ReconciliationRequest>(g),
        Operation::new("GET", "/api/v1/bank/reconciliations/{day}", "supervisors", "the latest reconciliation report of a day"),
    ]
}
