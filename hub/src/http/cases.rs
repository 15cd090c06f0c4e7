//! The cases as service points, approvers, supervisors and the post see them: applications in,
//! case files, flow records and documents out, commands on cases, queues and lists. Handlers
//! only translate: the services decide, the core rules.
use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use connectors::ecert::inbound::CertificateLookup;
use connectors::seal::inbound::{SealKeys, SealProblem};
use contracts::Event;
use hub_core::access::Role::{CountyApprover, Postal, Supervisor, TownshipClerk};
use hub_core::access::{CaseScope, Rule, Seat, CASE_READERS, DECIDERS, POINTS};
use hub_core::deadlines::standing;
use hub_core::documents::{acceptance_outcome, page_index, render, sealed_digest, DocumentRef, ElectronicSeal};
use hub_core::flow::flow_record;
use hub_core::{Case, CaseState, Command, Outcome, Reference, Rejection};
use hub_web::{ApiError, ApiResult, BadRequest, Refusal, Route, ValidJson, ValidQuery};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

use crate::app::audit::PersonalDataShown;
use crate::app::cases::{CommandError, Commands, Order};
use crate::app::intake::{explain_routing, verify_presented, Intake, SubmitApplication};
use crate::app::reference::CurrentReference;
use crate::app::reports;
use crate::store::{now_ms, CaseRecord, ListOrder, Store};

#[derive(Clone)]
pub struct CasesState {
    pub store: Store,
    pub reference: CurrentReference,
    pub intake: Intake,
    pub commands: Commands,
    /// Verifies the e-certificates presented instead of paper.
    pub certificates: Arc<CertificateLookup>,
    /// The seal service's keys, which verify sealed documents; none without a seal service.
    pub seals: Option<Arc<SealKeys>>,
}

const READERS: Rule = Rule::Roles(CASE_READERS);
const COUNTERS: Rule = Rule::Roles(POINTS);
const DECIDING: Rule = Rule::Roles(DECIDERS);
const SUPERVISORS: Rule = Rule::Roles(&[Supervisor]);

pub fn routes() -> Vec<Route<CasesState>> {
    vec![
        Route::post("/api/v1/applications", COUNTERS, submit)
            .doc(
                "service points",
                "submit an application (idempotent on request_id), examined at once: the answer carries the acceptance outcome and the notice to print; presented e-certificates stand in for paper",
            )
            .body::<SubmitApplication>(),
        Route::get("/api/v1/cases", READERS, list_cases)
            .doc("cases", "cases in one state within the caller's scope, longest waiting first")
            .query::<CaseListQuery>(),
        Route::get("/api/v1/cases/{case_number}", READERS, read_case).doc("cases", "the case with its full history"),
        Route::get("/api/v1/cases/{case_number}/flow", READERS, read_flow).doc("cases", "the flow record (流转表)"),
        Route::get("/api/v1/cases/{case_number}/documents", READERS, read_documents)
            .doc("cases", "the case file's page index"),
        Route::get("/api/v1/cases/{case_number}/documents/{position}", READERS, read_document)
            .doc("cases", "one document, printable")
            .produces("text/html"),
        command::<DecisionRequest>("/api/v1/cases/{case_number}/decision", DECIDING, "approvers", "approve or deny"),
        command::<RefusalRequest>(
            "/api/v1/cases/{case_number}/refusal",
            DECIDING,
            "approvers",
            "not accepted (不予受理)",
        ),
        command::<SupplementRequest>(
            "/api/v1/cases/{case_number}/supplements",
            COUNTERS,
            "service points",
            "materials supplied (补正)",
        ),
        command::<ProcedureRequest>(
            "/api/v1/cases/{case_number}/procedures",
            DECIDING,
            "approvers",
            "start a special procedure (site inspection, hearing, expert review)",
        ),
        command::<ProcedureCompletion>(
            "/api/v1/cases/{case_number}/procedures/complete",
            DECIDING,
            "approvers",
            "the procedure's record",
        ),
        command::<OpinionRequest>(
            "/api/v1/cases/{case_number}/opinions",
            DECIDING,
            "approvers",
            "a consulted department's opinion (并联审批)",
        ),
        command::<PickupRequest>(
            "/api/v1/cases/{case_number}/pickup",
            COUNTERS,
            "service points",
            "hand the result over at the window or locker",
        ),
        command::<StepRequest>(
            "/api/v1/cases/{case_number}/steps",
            DECIDING,
            "approvers",
            "the next step done: a review step of the matter's 审查细则, then 制证, 盖章, 出件 after an approval",
        ),
        command::<ExtensionRequest>(
            "/api/v1/cases/{case_number}/extension",
            DECIDING,
            "approvers",
            "extend the decision limit once with the head's approval (第四十二条); issues the 延期告知书",
        ),
        command::<HearingRightsRequest>(
            "/api/v1/cases/{case_number}/hearing-rights",
            DECIDING,
            "approvers",
            "tell the applicant and interested parties of their right to a hearing (听证权利告知书, five days to ask)",
        ),
        command::<SupervisionAnswer>(
            "/api/v1/cases/{case_number}/supervision/answer",
            DECIDING,
            "approvers",
            "the handling unit's answer to a supervision order (督办单)",
        ),
        command::<ComplaintRequest>(
            "/api/v1/cases/{case_number}/complaints",
            COUNTERS,
            "service points",
            "an applicant's complaint of a material or condition demanded outside the guide (a red card and 督办)",
        ),
        command::<CommitmentClosing>(
            "/api/v1/cases/{case_number}/commitment/close",
            COUNTERS,
            "service points",
            "record what became of materials owed past their 容缺 commitment, so the file can close",
        ),
        command::<WithdrawalRequest>(
            "/api/v1/cases/{case_number}/withdrawal",
            COUNTERS,
            "service points",
            "the applicant's written withdrawal before the decision (撤回申请): handling ends, what was paid is refunded",
        ),
        Route::post("/api/v1/cases/{case_number}/review-visits", COUNTERS, open_review_visit).doc(
            "service points",
            "a counter visit's review link (一次一评), opened on the applicant's own screen; the applicant reviews there",
        ),
        command::<ReviewVerification>(
            "/api/v1/cases/{case_number}/rectifications/verify",
            SUPERVISORS,
            "supervisors",
            "the verification of a bad review (调查核实) and the answer the applicant gets by SMS",
        ),
        command::<RectificationClosing>(
            "/api/v1/cases/{case_number}/rectifications/close",
            SUPERVISORS,
            "supervisors",
            "close a rectification item of a bad review",
        ),
        command::<RevocationRequest>(
            "/api/v1/cases/{case_number}/certificate/revocation",
            DECIDING,
            "approvers",
            "revoke the case's e-certificate",
        ),
        Route::get("/api/v1/reviews/stats", SUPERVISORS, review_stats)
            .doc("supervisors", "reviews per service point and department"),
        Route::get("/api/v1/warnings", SUPERVISORS, warnings)
            .doc("supervisors", "time-limit warnings raised, oldest first")
            .query::<WarningQuery>(),
        Route::post("/api/v1/decisions", DECIDING, decide_cases)
            .doc("approvers", "batch approval: 1 to 500 decisions, each answered on its own")
            .body::<DecisionBatch>(),
        Route::get("/api/v1/approvals", DECIDING, approval_queue)
            .doc("approvers", "the approvers' queue of the caller's department")
            .query::<QueueQuery>(),
        Route::get("/api/v1/routing/explain", READERS, explain)
            .doc("service points", "where a hypothetical application would be decided, and why")
            .query::<ExplainQuery>(),
        Route::get("/api/v1/matters", READERS, list_matters)
            .doc(
                "service points",
                "the matter guides (办事指南) a service point may accept, with their materials checklists",
            )
            .query::<MatterQuery>(),
        Route::get("/api/v1/stats", Rule::Roles(&[Supervisor, hub_core::access::Role::Integrator]), stats)
            .doc("supervisors", "cases per state"),
        Route::get(
            "/api/v1/archive/hand-in",
            Rule::Roles(&[Supervisor, CountyApprover, TownshipClerk]),
            archive_hand_in,
        )
        .doc("archive", "a month's archive hand-in list (归档移交清单) per unit: archive numbers, pages, retention")
        .query::<HandInQuery>(),
        Route::get("/api/v1/reports", SUPERVISORS, read_report)
            .doc("supervisors", "a period's figures (办件通报) for the county, a township, a service point, a department or a staff member")
            .query::<ReportQuery>(),
        Route::get("/api/v1/supervision/board", SUPERVISORS, read_board)
            .doc("supervisors", "电子监察: limits near or missed, stalled steps, repeated supplements, refusals without basis, fees outside the guide, bad reviews unanswered, 督办 overdue")
            .query::<BoardQuery>(),
        Route::get("/api/v1/reports/bulletin", SUPERVISORS, read_bulletin)
            .doc("supervisors", "the period's 办件通报 as a printable A4 page with its charts")
            .query::<BulletinQuery>()
            .produces("text/html"),
        Route::get("/api/v1/reports/bulletin/xlsx", SUPERVISORS, read_bulletin_xlsx)
            .doc("supervisors", "the period's 办件通报 as a spreadsheet")
            .query::<BulletinQuery>()
            .produces(XLSX),
        Route::get("/api/v1/delivery-orders", Rule::Roles(&[Postal, Supervisor]), delivery_orders)
            .doc("postal", "the postal board: delivery orders by delivery state")
            .query::<DeliveryQuery>(),
    ]
}

/// The route of a command on the case its path names (`POST /api/v1/cases/{case_number}/…`).
fn command<B: CaseCommand + JsonSchema + Send + 'static>(
    path: &'static str,
    rule: Rule,
    tag: &'static str,
    summary: &'static str,
) -> Route<CasesState> {
    Route::post(path, rule, case_command::<B>).doc(tag, summary).body::<B>()
}

async fn submit(
    State(state): State<CasesState>,
    Extension(seat): Extension<Seat>,
    ValidJson(mut request): ValidJson<SubmitApplication>,
) -> ApiResult<Response> {
    let reference = state.reference.get();
    request.validate(&reference).map_err(|bad| BadRequest::invalid(bad.field.clone(), bad.to_string()))?;
    if seat.unit.as_deref() != Some(request.service_point.as_str()) {
        let at = seat.unit.as_deref().unwrap_or("no service point");
        let reason = format!("{} takes in applications at {at}, not at {}", seat.holder, request.service_point);
        return Err(Refusal::not_yours(&seat, reason).on_field("service_point").into());
    }
    verify_presented(&reference, &state.certificates, &mut request).await?;
    request.received_by = seat.holder.clone();
    request.window = seat.window.clone();
    let submitted = state.intake.submit(request).await?;
    let status = if submitted.created { StatusCode::CREATED } else { StatusCode::OK };
    let case = &submitted.case;
    let (acceptance, notice) = match acceptance_outcome(case) {
        Some((outcome, position, doc)) => {
            let href = format!("/api/v1/cases/{}/documents/{position}", case.case_number);
            (json!(outcome), json!({"kind": doc.kind, "title": doc.title, "number": doc.number, "href": href}))
        }
        None => (Value::Null, Value::Null),
    };
    let body = json!({
        "case_number": case.case_number,
        "state": case.state,
        "created": submitted.created,
        "acceptance": acceptance,
        "promised_date": case.promised_date.map(hub_core::calendar::iso_date),
        "notice": notice,
    });
    Ok((status, Json(body)).into_response())
}

/// The case, if it exists and lies within the seat's scope.
async fn case_for(state: &CasesState, seat: &Seat, case_number: &str) -> ApiResult<CaseRecord> {
    match state.store.case(case_number).await? {
        Some(record) if CaseScope::of(seat, &state.reference.get()).sees(&record.case) => Ok(record),
        Some(_) => {
            let whose = seat.unit.as_deref().unwrap_or(seat.role.code());
            Err(Refusal::not_yours(seat, format!("case {case_number} is not one of {}'s ({whose})", seat.holder))
                .into())
        }
        None => Err(BadRequest::not_found(format!("no case {case_number}")).into()),
    }
}

async fn read_case(
    State(state): State<CasesState>,
    Extension(seat): Extension<Seat>,
    Path(case_number): Path<String>,
) -> ApiResult<Response> {
    let record = case_for(&state, &seat, &case_number).await?;
    Ok(PersonalDataShown::of("case file", [&record.case]).attach(Json(&record).into_response()))
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct DecisionRequest {
    outcome: Outcome,
    /// Optional: commands are recorded under the token's holder; a name given must be theirs.
    #[serde(default)]
    officer: Option<String>,
    department_code: String,
    #[serde(default)]
    reason: Option<String>,
}

/// A request body that becomes a command on the case its path names.
trait CaseCommand: serde::de::DeserializeOwned {
    /// The command, given by the holder of `seat`'s token.
    fn into_command(self, seat: &Seat) -> Result<Command, BadRequest>;
}

fn required(field: &str, value: &str) -> Result<(), BadRequest> {
    if value.trim().is_empty() {
        return Err(BadRequest::field(field, format!("{field} must not be empty")));
    }
    Ok(())
}

/// The officer a command is recorded under: the holder of the token used, so that every
/// document and hand-over names who acted. A body that still names an officer must name them.
fn officer(seat: &Seat, named: Option<String>) -> Result<String, BadRequest> {
    match named {
        Some(named) if named.trim() != seat.holder => Err(BadRequest::field(
            "officer",
            format!(
                "officer: this token is held by {}, and commands are recorded under the holder of the token used, not {named:?}",
                seat.holder
            ),
        )),
        _ => Ok(seat.holder.clone()),
    }
}

impl CaseCommand for DecisionRequest {
    fn into_command(self, seat: &Seat) -> Result<Command, BadRequest> {
        Ok(Command::Decide {
            outcome: self.outcome,
            officer: officer(seat, self.officer)?,
            department_code: self.department_code,
            reason: self.reason,
        })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RefusalRequest {
    /// Optional: commands are recorded under the token's holder; a name given must be theirs.
    #[serde(default)]
    officer: Option<String>,
    reason: String,
    legal_basis: String,
}

impl CaseCommand for RefusalRequest {
    fn into_command(self, seat: &Seat) -> Result<Command, BadRequest> {
        Ok(Command::Refuse {
            officer: officer(seat, self.officer)?,
            reason: self.reason,
            legal_basis: self.legal_basis,
        })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct SupplementRequest {
    materials: Vec<String>,
}

impl CaseCommand for SupplementRequest {
    fn into_command(self, seat: &Seat) -> Result<Command, BadRequest> {
        if self.materials.is_empty() {
            return Err(BadRequest::field("materials", "name at least one material supplied"));
        }
        Ok(Command::Supplement { materials: self.materials, received_by: seat.holder.clone() })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ProcedureRequest {
    procedure: String,
    /// Optional: commands are recorded under the token's holder; a name given must be theirs.
    #[serde(default)]
    officer: Option<String>,
    #[serde(default)]
    departments: Vec<String>,
    #[serde(default)]
    parties: Vec<String>,
    /// A hearing's date (YYYY-MM-DD), at least seven working days ahead.
    #[serde(default)]
    scheduled_date: Option<String>,
}

impl CaseCommand for ProcedureRequest {
    fn into_command(self, seat: &Seat) -> Result<Command, BadRequest> {
        let scheduled_date = self
            .scheduled_date
            .map(|date| {
                hub_core::calendar::parse_iso_date(&date).ok_or_else(|| {
                    BadRequest::field("scheduled_date", format!("scheduled_date: {date:?} is not a date (YYYY-MM-DD)"))
                })
            })
            .transpose()?;
        Ok(Command::StartProcedure {
            procedure: self.procedure,
            officer: officer(seat, self.officer)?,
            departments: self.departments,
            parties: self.parties,
            scheduled_date,
        })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct StepRequest {
    /// The step's id: a review step of the matter's 审查细则, or make (制证), seal (盖章), dispatch (出件).
    step: String,
    /// Optional: commands are recorded under the token's holder; a name given must be theirs.
    #[serde(default)]
    officer: Option<String>,
    #[serde(default)]
    remarks: String,
}

impl CaseCommand for StepRequest {
    fn into_command(self, seat: &Seat) -> Result<Command, BadRequest> {
        required("step", &self.step)?;
        Ok(Command::CompleteStep { step: self.step, officer: officer(seat, self.officer)?, remarks: self.remarks })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ExtensionRequest {
    /// Optional: commands are recorded under the token's holder; a name given must be theirs.
    #[serde(default)]
    officer: Option<String>,
    /// The head of the organ who approved the extension.
    approved_by: String,
    /// Why, as the applicant is told.
    reason: String,
}

impl CaseCommand for ExtensionRequest {
    fn into_command(self, seat: &Seat) -> Result<Command, BadRequest> {
        Ok(Command::Extend {
            officer: officer(seat, self.officer)?,
            approved_by: self.approved_by,
            reason: self.reason,
        })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct HearingRightsRequest {
    /// Optional: commands are recorded under the token's holder; a name given must be theirs.
    #[serde(default)]
    officer: Option<String>,
    /// Interested parties told besides the applicant.
    #[serde(default)]
    parties: Vec<String>,
}

impl CaseCommand for HearingRightsRequest {
    fn into_command(self, seat: &Seat) -> Result<Command, BadRequest> {
        Ok(Command::NotifyHearingRights { officer: officer(seat, self.officer)?, parties: self.parties })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct SupervisionAnswer {
    order_number: String,
    /// Optional: commands are recorded under the token's holder; a name given must be theirs.
    #[serde(default)]
    officer: Option<String>,
    answer: String,
}

impl CaseCommand for SupervisionAnswer {
    fn into_command(self, seat: &Seat) -> Result<Command, BadRequest> {
        Ok(Command::AnswerSupervision {
            order_number: self.order_number,
            officer: officer(seat, self.officer)?,
            answer: self.answer,
        })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ComplaintRequest {
    /// The material or condition the applicant was asked for that the guide does not list.
    demanded: String,
}

impl CaseCommand for ComplaintRequest {
    fn into_command(self, seat: &Seat) -> Result<Command, BadRequest> {
        Ok(Command::Complain { officer: seat.holder.clone(), demanded: self.demanded })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct CommitmentClosing {
    /// Optional: commands are recorded under the token's holder; a name given must be theirs.
    #[serde(default)]
    officer: Option<String>,
    /// What was done about the materials not supplied (撤销, 记入信用记录 …).
    outcome: String,
}

impl CaseCommand for CommitmentClosing {
    fn into_command(self, seat: &Seat) -> Result<Command, BadRequest> {
        Ok(Command::CloseCommitment { officer: officer(seat, self.officer)?, outcome: self.outcome })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ProcedureCompletion {
    /// Optional: commands are recorded under the token's holder; a name given must be theirs.
    #[serde(default)]
    officer: Option<String>,
    summary: String,
}

impl CaseCommand for ProcedureCompletion {
    fn into_command(self, seat: &Seat) -> Result<Command, BadRequest> {
        Ok(Command::CompleteProcedure { officer: officer(seat, self.officer)?, summary: self.summary })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct OpinionRequest {
    department_code: String,
    /// Optional: commands are recorded under the token's holder; a name given must be theirs.
    #[serde(default)]
    officer: Option<String>,
    opinion: String,
    #[serde(default)]
    remarks: String,
}

impl CaseCommand for OpinionRequest {
    fn into_command(self, seat: &Seat) -> Result<Command, BadRequest> {
        Ok(Command::GiveOpinion {
            department_code: self.department_code,
            officer: officer(seat, self.officer)?,
            opinion: self.opinion,
            remarks: self.remarks,
        })
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
    /// The acceptance notice presented (受理通知书), at a window or village station.
    #[serde(default)]
    notice_number: Option<String>,
    /// Someone collecting for the applicant: a (代)取件人, or an enterprise's agent.
    #[serde(default)]
    agent: Option<AgentBody>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct AgentBody {
    /// The agent's own ID number, checked at the window (not kept in the event).
    id_number: String,
    /// The 委托书 an enterprise's agent presents.
    #[serde(default)]
    authorization_number: Option<String>,
}

impl CaseCommand for PickupRequest {
    fn into_command(self, seat: &Seat) -> Result<Command, BadRequest> {
        Ok(Command::Collect {
            handed_out_by: seat.holder.clone(),
            collected_by: self.collected_by,
            id_number: self.id_number,
            pickup_code: self.pickup_code,
            signature: self.signature,
            notice_number: self.notice_number,
            agent: self.agent.map(|agent| hub_core::case::Agent {
                id_number: agent.id_number,
                authorization_number: agent.authorization_number,
            }),
        })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct WithdrawalRequest {
    /// Optional: commands are recorded under the token's holder; a name given must be theirs.
    #[serde(default)]
    officer: Option<String>,
    /// The applicant's reason, as the written request gives it.
    reason: String,
}

impl CaseCommand for WithdrawalRequest {
    fn into_command(self, seat: &Seat) -> Result<Command, BadRequest> {
        Ok(Command::Withdraw { officer: officer(seat, self.officer)?, reason: self.reason })
    }
}

/// A counter visit's review link: the applicant's screen at the counter opens it, and the
/// applicant, not the clerk, grades the visit.
async fn open_review_visit(
    State(state): State<CasesState>,
    Extension(seat): Extension<Seat>,
    Path(case_number): Path<String>,
) -> ApiResult<Response> {
    let record = case_for(&state, &seat, &case_number).await?;
    if record.case.state == CaseState::Submitted {
        return Err(BadRequest::conflict(format!("case {case_number} is not accepted yet; nothing to review")).into());
    }
    let visit_id = uuid::Uuid::now_v7().simple().to_string();
    let link = hub_core::reviews::link(&state.reference.get(), &case_number, Some(&visit_id));
    Ok((StatusCode::CREATED, Json(json!({"case_number": case_number, "visit_id": visit_id, "link": link})))
        .into_response())
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ReviewVerification {
    item_number: String,
    /// Optional: commands are recorded under the token's holder; a name given must be theirs.
    #[serde(default)]
    officer: Option<String>,
    /// What the verification found (调查核实).
    finding: String,
    /// Whether the complaint was borne out: only then does the item wait for its rectification.
    substantiated: bool,
    /// The answer the applicant gets by SMS.
    reply: String,
}

impl CaseCommand for ReviewVerification {
    fn into_command(self, seat: &Seat) -> Result<Command, BadRequest> {
        Ok(Command::VerifyReview {
            item_number: self.item_number,
            officer: officer(seat, self.officer)?,
            finding: self.finding,
            substantiated: self.substantiated,
            reply: self.reply,
        })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RectificationClosing {
    item_number: String,
    /// Optional: commands are recorded under the token's holder; a name given must be theirs.
    #[serde(default)]
    officer: Option<String>,
    feedback: String,
}

impl CaseCommand for RectificationClosing {
    fn into_command(self, seat: &Seat) -> Result<Command, BadRequest> {
        Ok(Command::CloseRectification {
            item_number: self.item_number,
            officer: officer(seat, self.officer)?,
            feedback: self.feedback,
        })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RevocationRequest {
    /// Optional: commands are recorded under the token's holder; a name given must be theirs.
    #[serde(default)]
    officer: Option<String>,
    reason: String,
}

impl CaseCommand for RevocationRequest {
    fn into_command(self, seat: &Seat) -> Result<Command, BadRequest> {
        required("reason", &self.reason)?;
        Ok(Command::RevokeCertificate { officer: officer(seat, self.officer)?, reason: self.reason })
    }
}

/// How a command's failure is answered: which status, naming which field.
fn command_failure(seat: &Seat, case_number: &str, error: CommandError) -> ApiError {
    ApiError::Bad(match error {
        CommandError::NotFound(_) => BadRequest::not_found(format!("no case {case_number}")),
        CommandError::Rejected(rejection) => {
            let (status, field) = match &rejection {
                Rejection::WrongState { .. }
                | Rejection::OpinionsPending(_)
                | Rejection::AlreadyReviewed
                | Rejection::FeeUnpaid { .. } => (StatusCode::CONFLICT, None),
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
                Rejection::StepPending(_)
                | Rejection::AlreadyExtended
                | Rejection::HearingRightsNotTold
                | Rejection::HearingWindowClosed(_)
                | Rejection::MaterialsOwed(_)
                | Rejection::NoOverdueCommitment
                | Rejection::VisitReviewed
                | Rejection::AlreadyVerified(_)
                | Rejection::NothingToRefund => (StatusCode::CONFLICT, None),
                Rejection::NotVerified(_) => (StatusCode::CONFLICT, Some("item_number")),
                Rejection::WrongStep { .. } => (StatusCode::CONFLICT, Some("step")),
                Rejection::HearingDate { .. } => (StatusCode::UNPROCESSABLE_ENTITY, Some("scheduled_date")),
                Rejection::InGuide(_) => (StatusCode::UNPROCESSABLE_ENTITY, Some("demanded")),
                Rejection::NoSuchSupervision(_) => (StatusCode::NOT_FOUND, Some("order_number")),
                Rejection::WrongNotice { .. } => (StatusCode::FORBIDDEN, Some("notice_number")),
                Rejection::AuthorizationMissing => (StatusCode::FORBIDDEN, Some("agent.authorization_number")),
                _ => (StatusCode::UNPROCESSABLE_ENTITY, None),
            };
            BadRequest { status, field: field.map(String::from), message: rejection.to_string() }
        }
        CommandError::NotYours(reason) => return Refusal::not_yours(seat, reason).into(),
        // A database gone for now is 503 (the request may be made again), not a failure.
        CommandError::Store(error) => return ApiError::from(error),
    })
}

/// The authority a command speaks for, if it speaks for one.
fn speaking_for(command: &Command) -> Option<&str> {
    match command {
        Command::Decide { department_code, .. } | Command::GiveOpinion { department_code, .. } => Some(department_code),
        _ => None,
    }
}

/// A decision or opinion in the name of a department the seat does not speak for, refused
/// before it runs. Whether the case is the seat's is checked on the case the command finds, in
/// its own transaction (`Order::by`).
fn speaking_refusal(state: &CasesState, seat: &Seat, command: &Command) -> Option<Refusal> {
    let scope = CaseScope::of(seat, &state.reference.get());
    speaking_for(command).filter(|authority| !scope.speaks_for(authority)).map(|authority| {
        Refusal::not_yours(seat, format!("{} does not speak for {authority}", seat.holder)).on_field("department_code")
    })
}

async fn case_command<B: CaseCommand>(
    State(state): State<CasesState>,
    Extension(seat): Extension<Seat>,
    Path(case_number): Path<String>,
    ValidJson(body): ValidJson<B>,
) -> ApiResult<Json<Value>> {
    let command = body.into_command(&seat)?;
    if let Some(refusal) = speaking_refusal(&state, &seat, &command) {
        return Err(refusal.into());
    }
    let outcome = state.commands.execute(&case_number, command, Some(seat.clone())).await;
    let case = outcome.map_err(|error| command_failure(&seat, &case_number, error))?;
    Ok(Json(summary(&case)))
}

/// What a command's caller gets back: where the case stands.
fn summary(case: &Case) -> Value {
    json!({
        "case_number": case.case_number,
        "state": case.state,
        "version": case.version,
        "promised_date": case.promised_date.map(hub_core::calendar::iso_date),
        "documents": case.documents.len(),
    })
}

/// The case and its history as events.
async fn load_record(state: &CasesState, seat: &Seat, case_number: &str) -> ApiResult<(CaseRecord, Vec<Event>)> {
    let record = case_for(state, seat, case_number).await?;
    let events =
        record.history.iter().map(|entry| serde_json::from_value(entry.event.clone())).collect::<Result<Vec<_>, _>>();
    let events = events.map_err(anyhow::Error::from)?;
    Ok((record, events))
}

/// The flow record (流转表): each hand-over with time, from, to and handler.
async fn read_flow(
    State(state): State<CasesState>,
    Extension(seat): Extension<Seat>,
    Path(case_number): Path<String>,
) -> ApiResult<Response> {
    let (record, events) = load_record(&state, &seat, &case_number).await?;
    let flow = Json(json!({ "case_number": case_number, "flow": flow_record(&events, &state.reference.get()) }));
    Ok(PersonalDataShown::of("flow record", [&record.case]).attach(flow.into_response()))
}

/// The case file's page index; each line's position opens the printable document.
async fn read_documents(
    State(state): State<CasesState>,
    Extension(seat): Extension<Seat>,
    Path(case_number): Path<String>,
) -> ApiResult<Response> {
    let (record, _) = load_record(&state, &seat, &case_number).await?;
    let index: Vec<_> = page_index(&record.case)
        .into_iter()
        .zip(&record.case.documents)
        .map(|(line, doc)| {
            let href = format!("/api/v1/cases/{case_number}/documents/{}", line.position);
            json!({"kind": doc.kind, "href": href, "line": line})
        })
        .collect();
    let body = Json(json!({ "case_number": case_number, "documents": index }));
    Ok(PersonalDataShown::of("documents", [&record.case]).attach(body.into_response()))
}

async fn read_document(
    State(state): State<CasesState>,
    Extension(seat): Extension<Seat>,
    Path((case_number, position)): Path<(String, usize)>,
) -> ApiResult<Response> {
    let (record, events) = load_record(&state, &seat, &case_number).await?;
    let reference = state.reference.get();
    let found = position
        .checked_sub(1)
        .and_then(|i| record.case.documents.get(i))
        .and_then(|doc| events.iter().find(|e| e.event_id() == doc.event_id).map(|event| (doc, event)));
    let (doc, event) =
        found.ok_or_else(|| BadRequest::not_found(format!("case {case_number} has no document {position}")))?;
    if let Some(signed) = &doc.electronic_seal {
        verify_seal(&state, &reference, &record.case, doc, event, signed).await?;
    }
    let html = render(&record.case, doc, event, &reference);
    let page = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response();
    Ok(PersonalDataShown::of("documents", [&record.case]).attach(page))
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct HandInQuery {
    /// The month the files were closed, YYYY-MM (China Standard Time).
    month: String,
    /// The unit: a department's credit code or a township's code. A supervisor may leave it
    /// out for every unit; others get their own unit's.
    #[serde(default)]
    unit: Option<String>,
}

async fn archive_hand_in(
    State(state): State<CasesState>,
    Extension(seat): Extension<Seat>,
    ValidQuery(query): ValidQuery<HandInQuery>,
) -> ApiResult<Json<Value>> {
    let unit = match (seat.role, query.unit) {
        (Supervisor, unit) => unit,
        (_, Some(unit)) if seat.unit.as_deref() != Some(unit.as_str()) => {
            let reason = format!("{} hands in the files of their own unit, not of {unit}", seat.holder);
            return Err(Refusal::not_yours(&seat, reason).on_field("unit").into());
        }
        _ => seat.unit.clone(),
    };
    let lists = crate::app::archive::hand_in(&state.store, &state.reference.get(), &query.month, unit.as_deref())
        .await?
        .map_err(|problem| BadRequest::field("month", problem))?;
    Ok(Json(json!({ "month": query.month, "lists": lists })))
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ReportQuery {
    /// `2026-12-02`, `2026-12`, `2026-Q4` or `2026` (China Standard Time).
    period: String,
    /// The unit's code: the county's (the default), a township's, a service point's, a
    /// window's or a department's credit code.
    #[serde(default)]
    unit: Option<String>,
    /// One staff member, as their token names them, instead of a unit.
    #[serde(default)]
    staff: Option<String>,
    /// Also recount the figures from every case's history and say whether they match the kept
    /// ones (slow: it reads the whole store).
    #[serde(default)]
    recount: bool,
}

async fn read_report(
    State(state): State<CasesState>,
    ValidQuery(query): ValidQuery<ReportQuery>,
) -> ApiResult<Json<Value>> {
    let reference = state.reference.get();
    let (period, unit) = reports::scope_of(&reference, &query.period, query.unit.as_deref(), query.staff.as_deref())
        .map_err(|(field, why)| BadRequest::field(field, why))?;
    let report = reports::report_of(&state.store, &period, &unit).await?;
    let mut answer = json!({ "period": query.period, "unit": query.unit, "staff": query.staff, "report": report });
    if query.recount {
        let recounted = reports::recount_of(&state.store, &reference, &period, &unit).await?;
        answer["recount_matches"] = json!(recounted == report);
        answer["recount"] = json!(recounted);
    }
    Ok(Json(answer))
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct BoardQuery {
    /// A unit as the reports name it: a township's, service point's, window's or department's
    /// code (the county's: the whole board).
    #[serde(default)]
    unit: Option<String>,
    /// `warning`, `yellow` or `red`.
    #[serde(default)]
    level: Option<String>,
    /// One kind of item (`deadline`, `stalled`, …).
    #[serde(default)]
    kind: Option<String>,
    /// Working days without an event after which a step counts as stalled (3 by default).
    #[serde(default)]
    stalled_after: Option<i32>,
}

async fn read_board(
    State(state): State<CasesState>,
    ValidQuery(query): ValidQuery<BoardQuery>,
) -> ApiResult<Json<Value>> {
    use hub_core::reports::Unit;
    use hub_core::supervision::KINDS;
    let reference = state.reference.get();
    let unit = match &query.unit {
        None => Unit::County,
        Some(code) => Unit::of_code(&reference, code).map_err(|why| BadRequest::field("unit", why))?,
    };
    let level = match &query.level {
        None => None,
        Some(level) => Some(
            hub_core::deadlines::Level::parse(level)
                .ok_or_else(|| BadRequest::field("level", "a card is warning, yellow or red"))?,
        ),
    };
    let kind = match &query.kind {
        None => None,
        Some(kind) => Some(
            *KINDS
                .iter()
                .find(|known| *known == kind)
                .ok_or_else(|| BadRequest::field("kind", format!("a kind is one of {}", KINDS.join(", "))))?,
        ),
    };
    let stalled_after = query.stalled_after.unwrap_or(3);
    if !(1..=60).contains(&stalled_after) {
        return Err(BadRequest::field("stalled_after", "1 to 60 working days").into());
    }
    let filter = crate::app::supervision::BoardFilter { unit, level, kind };
    let board = crate::app::supervision::board(&state.store, &reference, &filter, stalled_after).await?;
    let items: Vec<Value> = board
        .items
        .iter()
        .map(|item| {
            let mut value = json!(item);
            value["point_name"] = json!(reference.unit_name(&item.units.point));
            value["department_name"] =
                json!(item.units.department.as_deref().and_then(|code| reference.unit_name(code)));
            value["case_href"] = json!(format!("/api/v1/cases/{}", item.case_number));
            value["flow_href"] = json!(format!("/api/v1/cases/{}/flow", item.case_number));
            value
        })
        .collect();
    let (by_level, by_kind) = (board.by_level, board.by_kind);
    Ok(Json(
        json!({ "generated_at": crate::store::now_ms(), "by_level": by_level, "by_kind": by_kind, "items": items }),
    ))
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct BulletinQuery {
    /// `2026-12` (a month: the usual bulletin), `2026-Q4`, `2026` or a day.
    period: String,
}

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

async fn bulletin(state: &CasesState, period: &str) -> ApiResult<hub_core::bulletin::Bulletin> {
    let reference = state.reference.get();
    let (parsed, _) =
        reports::scope_of(&reference, period, None, None).map_err(|(field, why)| BadRequest::field(field, why))?;
    Ok(reports::bulletin_of(&state.store, &reference, period, &parsed).await?)
}

async fn read_bulletin(
    State(state): State<CasesState>,
    ValidQuery(query): ValidQuery<BulletinQuery>,
) -> ApiResult<Response> {
    let page = bulletin(&state, &query.period).await?.html();
    Ok(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response())
}

async fn read_bulletin_xlsx(
    State(state): State<CasesState>,
    ValidQuery(query): ValidQuery<BulletinQuery>,
) -> ApiResult<Response> {
    let sheet = reports::bulletin_xlsx(&bulletin(&state, &query.period).await?)?;
    let file = format!("attachment; filename=\"bulletin-{}.xlsx\"", query.period);
    Ok(([(header::CONTENT_TYPE, XLSX.to_string()), (header::CONTENT_DISPOSITION, file)], sheet).into_response())
}

/// A sealed document is shown only while its seal holds: the document as rendered now is the
/// one that was signed, and the signature is the seal's. Otherwise 409 naming what broke (or
/// 503 while the seal service cannot be asked for its key).
async fn verify_seal(
    state: &CasesState,
    reference: &Reference,
    case: &Case,
    doc: &DocumentRef,
    event: &Event,
    signed: &ElectronicSeal,
) -> ApiResult<()> {
    let broken = |why: String| {
        let message =
            format!("document {} of case {} does not hold its electronic seal: {why}", doc.number, case.case_number);
        ApiError::Bad(BadRequest { status: StatusCode::CONFLICT, field: None, message })
    };
    let digest = sealed_digest(case, doc, event, reference);
    if digest != signed.document_sha256 {
        return Err(broken(format!(
            "its content now hashes to {digest}, not to the {} that was sealed",
            signed.document_sha256
        )));
    }
    let Some(seals) = &state.seals else {
        return Err(ApiError::Unavailable("no seal service is configured to verify the document's seal".into()));
    };
    match seals.verify(&signed.seal_name, &signed.key_id, &signed.signature, &signed.document_sha256).await {
        Ok(()) => Ok(()),
        Err(SealProblem::Broken(why)) => Err(broken(why)),
        Err(SealProblem::Unavailable(why)) => Err(ApiError::Unavailable(why)),
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
    /// Optional: commands are recorded under the token's holder; a name given must be theirs.
    #[serde(default)]
    officer: Option<String>,
    department_code: String,
    #[serde(default)]
    reason: Option<String>,
}

/// Batch approval (批量审批): several decisions in one transaction, each answered on its own
/// with the status the single-case call would have given.
async fn decide_cases(
    State(state): State<CasesState>,
    Extension(seat): Extension<Seat>,
    ValidJson(batch): ValidJson<DecisionBatch>,
) -> ApiResult<Response> {
    if batch.decisions.is_empty() || batch.decisions.len() > MAX_DECISIONS_PER_CALL {
        let message = format!("a call carries 1 to {MAX_DECISIONS_PER_CALL} decisions, not {}", batch.decisions.len());
        return Err(BadRequest::field("decisions", message).into());
    }
    let mut commands = Vec::with_capacity(batch.decisions.len());
    for (index, item) in batch.decisions.into_iter().enumerate() {
        let decision = DecisionRequest {
            outcome: item.outcome,
            officer: item.officer,
            department_code: item.department_code,
            reason: item.reason,
        };
        let command = decision.into_command(&seat).map_err(|bad| bad.within(&format!("decisions[{index}]")))?;
        commands.push((item.case_number, command));
    }
    // Decisions on cases not the seat's are refused in their place; the rest are taken.
    let mut refusals = Vec::new();
    let mut results: Vec<Option<Value>> = Vec::with_capacity(commands.len());
    let mut allowed = Vec::with_capacity(commands.len());
    for (case_number, command) in commands {
        match speaking_refusal(&state, &seat, &command) {
            Some(refusal) => {
                results.push(Some(refusal.as_result(&case_number)));
                refusals.push(refusal);
            }
            None => {
                results.push(None);
                allowed.push(Order { case_number, command, by: Some(seat.clone()) });
            }
        }
    }
    let numbers: Vec<String> = allowed.iter().map(|order| order.case_number.clone()).collect();
    let outcomes = state.commands.execute_all(allowed).await?;
    let mut taken = Vec::with_capacity(outcomes.len());
    for (case_number, outcome) in numbers.iter().zip(outcomes) {
        taken.push(match outcome.map_err(|error| command_failure(&seat, case_number, error)) {
            Ok(case) => json!({"case_number": case_number, "status": 200, "state": case.state}),
            Err(ApiError::Bad(bad)) => json!({"case_number": case_number, "status": bad.status.as_u16(), "error": bad.message, "field": bad.field}),
            Err(ApiError::Refused(refusal)) => {
                let result = refusal.as_result(case_number);
                refusals.push(refusal);
                result
            }
            Err(failure) => return Err(failure),
        });
    }
    let mut taken = taken.into_iter();
    let results: Vec<Value> =
        results.into_iter().map(|refused| refused.or_else(|| taken.next()).unwrap_or_default()).collect();
    Ok(Refusal::attach_all(refusals, Json(json!({ "results": results })).into_response()))
}

#[derive(Debug, Deserialize, JsonSchema)]
struct ExplainQuery {
    matter_code: String,
    service_point: String,
    domicile_township: Option<String>,
}

/// Where a hypothetical application would be decided, with the rule and the reason.
async fn explain(State(state): State<CasesState>, ValidQuery(query): ValidQuery<ExplainQuery>) -> ApiResult<Response> {
    let reference = state.reference.get();
    let routing =
        explain_routing(&reference, &query.matter_code, &query.service_point, query.domicile_township.as_deref())
            .map_err(|bad| BadRequest::invalid(bad.field.clone(), bad.to_string()))?;
    Ok(Json(routing).into_response())
}

#[derive(Debug, Deserialize, JsonSchema)]
struct MatterQuery {
    /// Only the matters this service point may accept; a counter's own point by default.
    service_point: Option<String>,
}

/// The matter catalogue as a counter reads it: each matter's guide (办事指南) in its current
/// version with the deciding authority's name and the materials checklist, by department.
async fn list_matters(
    State(state): State<CasesState>,
    Extension(seat): Extension<Seat>,
    ValidQuery(query): ValidQuery<MatterQuery>,
) -> ApiResult<Json<Vec<Value>>> {
    let reference = state.reference.get();
    let counter_point = || seat.role.works_a_counter().then(|| seat.unit.clone()).flatten();
    let tier = match query.service_point.or_else(counter_point) {
        None => None,
        Some(code) => match reference.service_point(&code) {
            Some(point) => Some(point.tier.clone()),
            None => {
                let message = format!("no service point {code} in county {}", reference.county.code);
                return Err(BadRequest::field("service_point", message).into());
            }
        },
    };
    let mut matters: Vec<_> = reference
        .matters()
        .filter(|matter| tier.as_ref().is_none_or(|tier| matter.accept_tiers.contains(tier)))
        .collect();
    matters.sort_by(|a, b| (&a.department, &a.name).cmp(&(&b.department, &b.name)));
    let guides: Vec<_> = matters
        .into_iter()
        .map(|matter| {
            let mut guide = serde_json::to_value(matter).expect("a matter serialises");
            guide["department_name"] = json!(reference.authority(&matter.department).map(|authority| authority.name));
            // The county's waivers and reductions, for a matter with fees to relieve.
            let reliefs = if matter.fees.is_empty() { &[][..] } else { &reference.county.policy.fee_relief[..] };
            guide["fee_relief"] = json!(reliefs);
            guide
        })
        .collect();
    Ok(Json(guides))
}

#[derive(Debug, Deserialize, JsonSchema)]
struct QueueQuery {
    department: Option<String>,
    limit: Option<i64>,
}

/// The approvers' queue: cases routed to a department and waiting for its decision, with the
/// opinions a parallel approval still awaits.
async fn approval_queue(
    State(state): State<CasesState>,
    Extension(seat): Extension<Seat>,
    ValidQuery(query): ValidQuery<QueueQuery>,
) -> ApiResult<Json<Vec<Value>>> {
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let scope = CaseScope::of(&seat, &state.reference.get());
    if let Some(department) = query.department.as_deref().filter(|department| !scope.speaks_for(department)) {
        return Err(Refusal::not_yours(&seat, format!("{} does not decide for {department}", seat.holder)).into());
    }
    let department = query.department.or(seat.unit.clone());
    let reference = state.reference.get();
    let today = hub_core::calendar::day_of(now_ms());
    let cases =
        state.store.cases_in_state(CaseState::Routed, department.as_deref(), &scope, ListOrder::Oldest, limit).await?;
    let items = cases
        .iter()
        .map(|c| {
            let given: Vec<&str> = c.opinions.iter().map(|o| o.department_code.as_str()).collect();
            let standing = standing(c, today, &reference);
            json!({
                "case_number": c.case_number,
                "matter": c.application.matter.name,
                "matter_code": c.application.matter.implementation_code,
                "department_code": c.department_code,
                "promised_date": c.promised_date.map(hub_core::calendar::iso_date),
                // How near the promised date is today: warning (预警), yellow, red or none yet.
                "deadline": standing.map(|s| json!({"working_days_left": s.working_days_left, "level": s.level.map(|level| level.as_str())})),
                "opinions_pending": c.opinions_required.iter().filter(|d| !given.contains(&d.as_str())).collect::<Vec<_>>(),
                "procedures_completed": c.documents.iter().filter(|d| d.kind.ends_with("_record")).count(),
                // The 审查细则 steps still to do before the decision, in order.
                "review_steps_pending": hub_core::steps::review_pending(c, &reference)
                    .map(|s| json!({"step": s.step, "title": s.title}))
                    .collect::<Vec<_>>(),
                // An approval waits for an unpaid fee.
                "fee": c.fee.as_ref().map(|fee| json!({
                    "order_number": fee.order_number,
                    "total_fen": fee.total_fen,
                    "paid_fen": fee.paid_fen(),
                    "payment_code": fee.payment_code,
                    "paid": fee.is_paid(),
                })),
            })
        })
        .collect();
    Ok(Json(items))
}

#[derive(Debug, Deserialize, JsonSchema)]
struct CaseListQuery {
    state: String,
    department: Option<String>,
    /// `oldest` (longest waiting, the default) or `newest` (just arrived) first.
    #[serde(default)]
    order: ListOrder,
    limit: Option<i64>,
}

/// Cases in one state (awaiting supplement, awaiting pickup, …), longest waiting first or,
/// with `order=newest`, latest changed first.
async fn list_cases(
    State(state): State<CasesState>,
    Extension(seat): Extension<Seat>,
    ValidQuery(query): ValidQuery<CaseListQuery>,
) -> ApiResult<Response> {
    let Some(case_state) = CaseState::parse(&query.state) else {
        let states: Vec<&str> = CaseState::ALL.iter().map(|s| s.as_str()).collect();
        return Err(
            BadRequest::field("state", format!("unknown state {}; one of {}", query.state, states.join(", "))).into()
        );
    };
    let scope = CaseScope::of(&seat, &state.reference.get());
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let cases = state.store.cases_in_state(case_state, query.department.as_deref(), &scope, query.order, limit).await?;
    Ok(PersonalDataShown::of("case list", &cases).attach(Json(&cases).into_response()))
}

async fn stats(State(state): State<CasesState>) -> ApiResult<Json<Value>> {
    Ok(Json(json!({ "by_state": state.store.count_by_state().await? })))
}

/// Review statistics (好差评) per service point and per department.
async fn review_stats(State(state): State<CasesState>) -> ApiResult<Json<Value>> {
    let tally = state.store.tally_events("ReviewSubmitted", &["service_point", "department_code", "grade"]).await?;
    let mut by_point: BTreeMap<String, ReviewTally> = BTreeMap::new();
    let mut by_department: BTreeMap<String, ReviewTally> = BTreeMap::new();
    for (values, count) in tally {
        let [point, department, grade] = values.as_slice() else { continue };
        let (Ok(grade), Ok(count)) = (grade.parse(), u32::try_from(count)) else { continue };
        by_point.entry(point.clone()).or_default().add(grade, count);
        if !department.is_empty() {
            by_department.entry(department.clone()).or_default().add(grade, count);
        }
    }
    let reference = state.reference.get();
    // Keyed by code, each tally named, so a page shows the unit without a second lookup.
    let named = |tallies: BTreeMap<String, ReviewTally>| -> serde_json::Map<String, Value> {
        tallies
            .into_iter()
            .map(|(code, tally)| {
                let mut shown = json!(tally);
                shown["name"] = json!(reference.unit_name(&code));
                (code, shown)
            })
            .collect()
    };
    Ok(Json(json!({ "by_service_point": named(by_point), "by_department": named(by_department) })))
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
    /// Counts `count` reviews of `grade`.
    fn add(&mut self, grade: i32, count: u32) {
        let Some(slot) = usize::try_from(grade - 1).ok().filter(|i| *i < 5) else { return };
        self.grades[slot] += count;
        self.reviews += count;
        if hub_core::case::BAD_GRADES.contains(&grade) {
            self.bad += count;
        }
        let total: u32 = self.grades.iter().zip(1..).map(|(n, g)| n * g).sum();
        self.average = f64::from(total) / f64::from(self.reviews);
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
struct WarningQuery {
    limit: Option<i64>,
}

/// Time-limit warnings raised, oldest first (the supervisors' list).
async fn warnings(
    State(state): State<CasesState>,
    ValidQuery(query): ValidQuery<WarningQuery>,
) -> ApiResult<Json<Value>> {
    let warnings = state.store.events_of_kind("DeadlineWarning", query.limit.unwrap_or(1000).clamp(1, 100_000)).await?;
    Ok(Json(json!({ "warnings": warnings })))
}

/// The delivery states of a case sent by post, as the postal board shows them.
const DELIVERY_STATES: [CaseState; 4] =
    [CaseState::DeliveryRequested, CaseState::InTransit, CaseState::Delivered, CaseState::DeliveryFailed];

#[derive(Debug, Deserialize, JsonSchema)]
struct DeliveryQuery {
    state: Option<String>,
    limit: Option<i64>,
}

/// The postal board: delivery orders by state (all four when none is named), each with what
/// the carrier needs — order, waybill, receiver and sender — and nothing of the application.
async fn delivery_orders(
    State(state): State<CasesState>,
    ValidQuery(query): ValidQuery<DeliveryQuery>,
) -> ApiResult<Response> {
    let states: Vec<CaseState> = match query.state.as_deref() {
        None => DELIVERY_STATES.to_vec(),
        Some(name) => match CaseState::parse(name).filter(|s| DELIVERY_STATES.contains(s)) {
            Some(one) => vec![one],
            None => {
                let names: Vec<&str> = DELIVERY_STATES.iter().map(|s| s.as_str()).collect();
                return Err(
                    BadRequest::field("state", format!("a delivery state is one of {}", names.join(", "))).into()
                );
            }
        },
    };
    let limit = query.limit.unwrap_or(200).clamp(1, 1000);
    let mut cases = Vec::new();
    for delivery_state in states {
        cases
            .extend(state.store.cases_in_state(delivery_state, None, &CaseScope::All, ListOrder::Oldest, limit).await?);
    }
    let orders: Vec<_> = cases
        .iter()
        .map(|case| {
            json!({
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
    Ok(PersonalDataShown::of("delivery orders", &cases).attach(Json(json!({ "orders": orders })).into_response()))
}
