//! The case state machine of a case's life in decider style:
//! `decide(case, command) -> events | rejection`, `evolve(case, event) -> case`, and
//! `reactions(case, event) -> commands`, the process manager that says what the hub does next.
use contracts::{
    AcceptanceRefused, ApplicationSubmitted, CaseAccepted, CaseArchived, CaseDecided, CaseRouted, CertificateRequested,
    CertificateRevocationRequested, DeliveryRequested, Event, FeeItem, FeeOrderRequested, MaterialProblem,
    MaterialsSupplemented, OpinionGiven, PostalAddress, ProcedureCompleted, ProcedureStarted, RectificationClosed, RectificationOpened,
    ResultCollected, ResultReadyForPickup, ReviewSubmitted, SupplementRequested,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::calendar;
use super::deadlines;
use super::documents::{self, DocumentRef};
use super::reference::{CertificateSpec, Matter, Reference};
use super::routing;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseState {
    Submitted,
    /// The one-time notice went out; the case waits for the applicant's supplement (补正).
    AwaitingSupplement,
    /// Not accepted (不予受理); archived at once.
    NotAccepted,
    Accepted,
    Routed,
    /// A special procedure runs; the deadline clock stands still.
    Suspended,
    Approved,
    Denied,
    DeliveryRequested,
    InTransit,
    Delivered,
    DeliveryFailed,
    /// The result waits at a window or in a locker.
    AwaitingPickup,
    Collected,
    Archived,
}

impl CaseState {
    /// In the order a case moves through them; delivery facts never move a case backwards.
    pub const ALL: [CaseState; 15] = [
        CaseState::Submitted,
        CaseState::AwaitingSupplement,
        CaseState::NotAccepted,
        CaseState::Accepted,
        CaseState::Routed,
        CaseState::Suspended,
        CaseState::Approved,
        CaseState::Denied,
        CaseState::DeliveryRequested,
        CaseState::InTransit,
        CaseState::Delivered,
        CaseState::DeliveryFailed,
        CaseState::AwaitingPickup,
        CaseState::Collected,
        CaseState::Archived,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CaseState::Submitted => "submitted",
            CaseState::AwaitingSupplement => "awaiting_supplement",
            CaseState::NotAccepted => "not_accepted",
            CaseState::Accepted => "accepted",
            CaseState::Routed => "routed",
            CaseState::Suspended => "suspended",
            CaseState::Approved => "approved",
            CaseState::Denied => "denied",
            CaseState::DeliveryRequested => "delivery_requested",
            CaseState::InTransit => "in_transit",
            CaseState::Delivered => "delivered",
            CaseState::DeliveryFailed => "delivery_failed",
            CaseState::AwaitingPickup => "awaiting_pickup",
            CaseState::Collected => "collected",
            CaseState::Archived => "archived",
        }
    }

    pub fn parse(text: &str) -> Option<CaseState> {
        CaseState::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// A case in a final state never changes state again (reviews may still come in).
    pub fn is_final(self) -> bool {
        self == CaseState::Archived
    }

    fn rank(self) -> usize {
        CaseState::ALL.iter().position(|s| *s == self).unwrap_or(0)
    }
}

impl std::fmt::Display for CaseState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Opinion {
    pub department_code: String,
    pub officer: String,
    pub opinion: String,
    pub remarks: String,
}

/// The special procedure running now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenProcedure {
    pub procedure: String,
    pub started_day: i32,
    pub limit_date: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pickup {
    pub method: String,
    pub place: String,
    pub code: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rectification {
    pub item_number: String,
    pub deadline: i32,
    pub closed: bool,
}

/// What the hub knows of a case: the application as handed in, and what happened since.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    pub case_number: String,
    pub state: CaseState,
    /// Number of events in the case's history.
    pub seq: u32,
    pub application: ApplicationSubmitted,
    /// Incremented by every supplement.
    pub version: i32,
    /// Materials in hand: those handed in and those supplied since.
    pub materials: Vec<String>,
    /// Materials found faulty and not yet replaced.
    pub faulty: Vec<MaterialProblem>,
    pub accepted_at: Option<i64>,
    pub acceptance: Option<String>,
    pub promised_date: Option<i32>,
    pub statutory_date: Option<i32>,
    pub outstanding_materials: Vec<String>,
    pub commitment_date: Option<i32>,
    pub department_code: Option<String>,
    pub department_name: Option<String>,
    pub opinions_required: Vec<String>,
    pub opinions: Vec<Opinion>,
    pub procedure: Option<OpenProcedure>,
    pub paused_working_days: i32,
    pub decision: Option<String>,
    pub result_document: Option<String>,
    pub order_number: Option<String>,
    pub waybill_number: Option<String>,
    pub delivery_outcome: Option<String>,
    pub tracking_events: u32,
    pub pickup: Option<Pickup>,
    /// Keys of the warnings raised, so each is raised once.
    pub warnings: Vec<String>,
    pub online_reviewed: bool,
    pub reviews: Vec<i32>,
    pub rectifications: Vec<Rectification>,
    /// Every document of the case file, in the order issued: the archive's page index.
    pub documents: Vec<DocumentRef>,
    /// Next day a deadline check is due (the durable timer), kept by the application service.
    pub timer_day: Option<i32>,
    /// The electronic certificate the approval issued, once requested.
    #[serde(default)]
    pub certificate: Option<CaseCertificate>,
    /// The fee order, for matters with fees (一窗收费): ordered at acceptance, paid at the bank.
    #[serde(default)]
    pub fee: Option<CaseFee>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseFee {
    pub order_number: String,
    pub total_fen: i64,
    /// The bank's payment code (缴款码), once the order is placed.
    pub payment_code: Option<String>,
    /// Every payment confirmed, by the bank's transaction number.
    pub payments: Vec<(String, i64)>,
}

impl CaseFee {
    pub fn paid_fen(&self) -> i64 {
        self.payments.iter().map(|(_, fen)| fen).sum()
    }

    pub fn is_paid(&self) -> bool {
        self.paid_fen() >= self.total_fen
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseCertificate {
    pub name: String,
    /// The repository's identifier, once issued.
    pub certificate_id: Option<String>,
    /// requested, valid, revocation_requested or revoked.
    pub status: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Approved,
    Denied,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Examine the materials against the matter's checklist: accept, tolerate, or ask for more.
    Examine,
    /// A clerk refuses to accept (不予受理).
    Refuse { officer: String, reason: String, legal_basis: String },
    Supplement { materials: Vec<String> },
    Route,
    StartProcedure { procedure: String, officer: String, departments: Vec<String>, parties: Vec<String> },
    CompleteProcedure { officer: String, summary: String },
    GiveOpinion { department_code: String, officer: String, opinion: String, remarks: String },
    Decide { outcome: Outcome, officer: String, department_code: String, reason: Option<String> },
    RequestDelivery,
    HoldForPickup { method: String, reason: String },
    Collect { collected_by: String, id_number: Option<String>, pickup_code: Option<String>, signature: String },
    /// Record a fact a connector reported (order created, tracking, delivery outcome, certificate).
    Record(Event),
    RevokeCertificate { officer: String, reason: String },
    Archive,
    CheckDeadlines,
    Review { grade: i32, channel: String, comment: String },
    OpenRectification { grade: i32 },
    CloseRectification { item_number: String, officer: String, feedback: String },
}

impl Command {
    fn action(&self) -> &'static str {
        match self {
            Command::Examine => "examine the materials",
            Command::Refuse { .. } => "refuse acceptance",
            Command::Supplement { .. } => "supplement materials",
            Command::Route => "route",
            Command::StartProcedure { .. } => "start a special procedure",
            Command::CompleteProcedure { .. } => "complete a special procedure",
            Command::GiveOpinion { .. } => "give an opinion",
            Command::Decide { .. } => "decide",
            Command::RequestDelivery => "request delivery",
            Command::HoldForPickup { .. } => "hold the result for pickup",
            Command::Collect { .. } => "hand over the result",
            Command::Record(_) => "record a connector's fact",
            Command::RevokeCertificate { .. } => "revoke the certificate",
            Command::Archive => "archive",
            Command::CheckDeadlines => "check deadlines",
            Command::Review { .. } => "review",
            Command::OpenRectification { .. } => "open a rectification",
            Command::CloseRectification { .. } => "close a rectification",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("case {case} is {state}; cannot {action}")]
    WrongState { case: String, state: CaseState, action: &'static str },
    #[error("matter {0} at the case's version is not in the catalogue")]
    UnknownMatter(String),
    #[error("department {department} is not competent for this case; {competent} is")]
    NotCompetent { department: String, competent: String },
    #[error("cannot route: {0}")]
    Unroutable(String),
    #[error("a denial must state its reasons")]
    MissingReason,
    #[error("{0} must not be blank")]
    Blank(&'static str),
    #[error("the case chose {0} delivery; nothing to mail")]
    NoMailDelivery(String),
    #[error("order {given} does not belong to case {case} (its order is {expected})")]
    ForeignOrder { case: String, given: String, expected: String },
    #[error("{0} is not a fact a connector reports")]
    NotAFact(&'static str),
    #[error("{0} is not a material of this matter")]
    UnknownMaterial(String),
    #[error("nothing to supplement: no material is missing, faulty or owed")]
    NothingToSupplement,
    #[error("unknown special procedure {0}; known: {1}")]
    UnknownProcedure(String, String),
    #[error("opinions still awaited from {0}")]
    OpinionsPending(String),
    #[error("department {0} is not consulted on this case, or has already given its opinion")]
    NotConsulted(String),
    #[error("an opinion is agree or disagree")]
    BadOpinion,
    #[error("the ID number does not match the applicant's; the result is handed to the applicant only")]
    IdentityMismatch,
    #[error("wrong pickup code")]
    WrongPickupCode,
    #[error("a grade is 1 (very dissatisfied) to 5 (very satisfied)")]
    BadGrade,
    #[error("a review channel is online or counter")]
    BadChannel,
    #[error("the case was already reviewed online (one review per case online)")]
    AlreadyReviewed,
    #[error("no open rectification item {0} on this case")]
    NoSuchRectification(String),
    #[error("the case has no valid certificate to revoke")]
    NoCertificate,
    #[error("certificate {given} is not the one issued for case {case}")]
    ForeignCertificate { case: String, given: String },
    #[error("fee order {given} is not the one of case {case}")]
    ForeignFeeOrder { case: String, given: String },
    #[error("the fee is not paid: {paid_fen} of {total_fen} fen on order {order}; an approval waits for the payment")]
    FeeUnpaid { order: String, total_fen: i64, paid_fen: i64 },
}

/// What a decision may look at besides the case: the time and the reference data.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub now: i64,
    pub reference: &'a Reference,
}

impl Context<'_> {
    pub fn today(&self) -> i32 {
        calendar::day_of(self.now)
    }
}

impl Case {
    /// A case as opened by its submission.
    pub fn open(application: &ApplicationSubmitted) -> Case {
        let submitted = Event::ApplicationSubmitted(application.clone());
        let case = Case {
            case_number: application.case_number.clone(),
            state: CaseState::Submitted,
            seq: 0,
            application: application.clone(),
            version: application.case_version,
            materials: application.materials.clone(),
            faulty: application.faulty_materials.clone(),
            accepted_at: None,
            acceptance: None,
            promised_date: None,
            statutory_date: None,
            outstanding_materials: Vec::new(),
            commitment_date: None,
            department_code: None,
            department_name: None,
            opinions_required: Vec::new(),
            opinions: Vec::new(),
            procedure: None,
            paused_working_days: 0,
            decision: None,
            result_document: None,
            order_number: None,
            waybill_number: None,
            delivery_outcome: None,
            tracking_events: 0,
            pickup: None,
            warnings: Vec::new(),
            online_reviewed: false,
            reviews: Vec::new(),
            rectifications: Vec::new(),
            documents: Vec::new(),
            timer_day: None,
            certificate: None,
            fee: None,
        };
        evolve(case, &submitted)
    }

    /// Id of the `n`-th event of this case (1-based), stable across retries.
    pub fn event_id(case_number: &str, n: u32) -> String {
        format!("{case_number}/{n}")
    }

    pub fn order_number(&self) -> String {
        format!("{}-P1", self.case_number)
    }

    /// Number of the case's fee order; the case number is what comes before the suffix.
    pub fn fee_order_number(&self) -> String {
        format!("{}{}", self.case_number, contracts::FEE_ORDER_SUFFIX)
    }

    /// Serial part of the case number, which numbers the case's documents.
    pub fn serial(&self) -> &str {
        &self.case_number[self.case_number.len().saturating_sub(6)..]
    }

    fn wrong_state(&self, command: &Command) -> Rejection {
        Rejection::WrongState { case: self.case_number.clone(), state: self.state, action: command.action() }
    }

    fn matter<'r>(&self, reference: &'r Reference) -> Result<&'r Matter, Rejection> {
        let matter = &self.application.matter;
        reference.matter_version(&matter.implementation_code, matter.version).ok_or_else(|| Rejection::UnknownMatter(matter.implementation_code.clone()))
    }

    /// The authority handling the case, or the accepting point before routing.
    pub fn handler_code(&self) -> String {
        self.department_code.clone().unwrap_or_else(|| self.application.service_point.code.clone())
    }
}

/// The fee order of a case accepted for a matter with fees, to be paid by the applicant.
fn fee_order(case: &Case, matter: &Matter, accepted: &CaseAccepted, ctx: &Context<'_>) -> Option<FeeOrderRequested> {
    (matter.fee_fen > 0).then(|| {
        let applicant = &case.application.applicant;
        FeeOrderRequested {
            event_id: format!("{}/fee", accepted.event_id),
            case_number: case.case_number.clone(),
            occurred_at: accepted.occurred_at,
            order_number: case.fee_order_number(),
            payer_name: applicant.name.clone(),
            data_subject: contracts::data_subject(&ctx.reference.subject_key, &applicant.id_number),
            department_code: matter.department.clone(),
            items: vec![FeeItem { name: format!("{}费", matter.name), amount_fen: matter.fee_fen }],
            total_fen: matter.fee_fen,
        }
    })
}

/// The certificate an approval asks the repository to issue, for the applicant.
fn certificate_request(case: &Case, spec: &CertificateSpec, decided: &CaseDecided, ctx: &Context<'_>) -> CertificateRequested {
    let applicant = &case.application.applicant;
    let issuer = case.department_code.as_deref().and_then(|code| ctx.reference.authority(code));
    let issue_date = ctx.today();
    CertificateRequested {
        event_id: Case::event_id(&case.case_number, case.seq + 2),
        case_number: case.case_number.clone(),
        occurred_at: ctx.now,
        type_code: spec.type_code.clone(),
        certificate_name: spec.name.clone(),
        number: decided.result_document.clone().unwrap_or_default(),
        holder_name: applicant.name.clone(),
        holder_code: applicant.id_number.clone(),
        holder_code_kind: applicant.id_type.clone(),
        data_subject: contracts::data_subject(&ctx.reference.subject_key, &applicant.id_number),
        issuer: issuer.as_ref().map_or_else(|| ctx.reference.county.approval_bureau.clone(), |a| a.name.clone()),
        issuer_code: decided.department_code.clone(),
        issue_date,
        valid_until: (spec.valid_years > 0).then(|| calendar::validity_end(issue_date, spec.valid_years)),
        // 行政区划代码: the six-digit county code, without the twelve-digit division's zeros.
        area_code: ctx.reference.county.code.chars().take(6).collect(),
    }
}

/// The case number an order number belongs to.
pub fn case_of_order(order_number: &str) -> Option<&str> {
    order_number.rsplit_once('-').map(|(case, _)| case)
}

/// The locker pickup code: derived from the case number under the county's secret, so a retry
/// gives the same code and nobody without the secret can guess it.
pub fn pickup_code(secret: &[u8], case_number: &str) -> String {
    let digest = Sha256::new().chain_update(secret).chain_update(case_number.as_bytes()).finalize();
    let value = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) % 1_000_000;
    format!("{value:06}")
}

/// The outcome of examining the materials at acceptance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Examination {
    Complete,
    /// Primary materials complete; these secondary ones owed under the applicant's commitment.
    Tolerant(Vec<String>),
    /// Every missing or faulty material, for the one-time notice.
    Incomplete(Vec<MaterialProblem>),
}

/// Checks the materials in hand against the checklist (DOMAIN.md, acceptance outcomes).
pub fn examine(matter: &Matter, materials: &[String], faulty: &[MaterialProblem], commits_to_supply: bool) -> Examination {
    let missing = |primary: bool| -> Vec<String> {
        matter.materials.iter().filter(|m| m.primary == primary && !materials.contains(&m.name)).map(|m| m.name.clone()).collect()
    };
    let (missing_primary, missing_secondary) = (missing(true), missing(false));
    if missing_primary.is_empty() && faulty.is_empty() {
        if missing_secondary.is_empty() {
            return Examination::Complete;
        }
        if commits_to_supply {
            return Examination::Tolerant(missing_secondary);
        }
    }
    let absent = missing_primary.into_iter().chain(missing_secondary).map(|material| MaterialProblem { material, problem: "未提交".into() });
    Examination::Incomplete(absent.chain(faulty.iter().cloned()).collect())
}

/// Legal basis of a refusal for want of competence (行政许可法 第三十二条第一款第（二）项).
pub const NOT_COMPETENT_BASIS: &str = "《中华人民共和国行政许可法》第三十二条第一款第（二）项";

fn not_blank(field: &'static str, value: &str) -> Result<(), Rejection> {
    if value.trim().is_empty() {
        Err(Rejection::Blank(field))
    } else {
        Ok(())
    }
}

pub fn decide(case: &Case, command: &Command, ctx: &Context<'_>) -> Result<Vec<Event>, Rejection> {
    let next_id = || Case::event_id(&case.case_number, case.seq + 1);
    let case_number = case.case_number.clone();
    let app = &case.application;
    let today = ctx.today();
    let number = |kind: &str| documents::number(ctx.reference, case, kind, today);
    let event: Event = match (case.state, command) {
        (CaseState::Submitted | CaseState::AwaitingSupplement, Command::Examine) => {
            let matter = case.matter(ctx.reference)?;
            let point = ctx.reference.service_point(&app.service_point.code);
            let routed = point.ok_or_else(|| format!("no service point {}", app.service_point.code)).and_then(|point| {
                routing::route(ctx.reference, matter, point, app.domicile_township.as_deref())
            });
            if let Err(reason) = routed {
                return Ok(vec![AcceptanceRefused {
                    event_id: next_id(),
                    case_number,
                    occurred_at: ctx.now,
                    case_version: case.version,
                    officer: app.service_point.code.clone(),
                    reason,
                    legal_basis: NOT_COMPETENT_BASIS.into(),
                    notice_number: number("refusal"),
                }
                .into()]);
            }
            let (acceptance, outstanding, commitment_date) = match examine(matter, &case.materials, &case.faulty, app.commits_to_supply) {
                Examination::Incomplete(items) => {
                    return Ok(vec![SupplementRequested {
                        event_id: next_id(),
                        case_number,
                        occurred_at: ctx.now,
                        case_version: case.version,
                        officer: app.service_point.code.clone(),
                        notice_number: number("one_time_notice"),
                        items,
                    }
                    .into()])
                }
                Examination::Complete => ("standard", Vec::new(), None),
                Examination::Tolerant(owed) => {
                    ("tolerant", owed, Some(ctx.reference.calendar.add_working_days(today, ctx.reference.county.policy.commitment_days)))
                }
            };
            let accepted = CaseAccepted {
                event_id: next_id(),
                case_number,
                occurred_at: ctx.now,
                case_version: case.version,
                accepted_by: app.service_point.code.clone(),
                matter_implementation_code: matter.implementation_code.clone(),
                matter_version: matter.version,
                promised_date: ctx.reference.calendar.add_working_days(today, matter.promised_days),
                statutory_date: Some(ctx.reference.calendar.add_working_days(today, matter.statutory_days)),
                acceptance: acceptance.into(),
                outstanding_materials: outstanding,
                commitment_date,
                notice_number: number("acceptance_notice"),
            };
            // A case accepted again after a supplement keeps the order it already has.
            let fee = fee_order(case, matter, &accepted, ctx).filter(|_| case.fee.is_none());
            return Ok(std::iter::once(accepted.into()).chain(fee.map(Event::from)).collect());
        }
        (CaseState::Submitted | CaseState::AwaitingSupplement, Command::Refuse { officer, reason, legal_basis }) => {
            not_blank("reason", reason)?;
            not_blank("legal_basis", legal_basis)?;
            AcceptanceRefused {
                event_id: next_id(),
                case_number,
                occurred_at: ctx.now,
                case_version: case.version,
                officer: officer.clone(),
                reason: reason.clone(),
                legal_basis: legal_basis.clone(),
                notice_number: number("refusal"),
            }
            .into()
        }
        (state, Command::Supplement { materials }) => {
            let awaited = state == CaseState::AwaitingSupplement || !case.outstanding_materials.is_empty();
            if state.is_final() || state == CaseState::NotAccepted {
                return Err(case.wrong_state(command));
            }
            if !awaited {
                return Err(Rejection::NothingToSupplement);
            }
            let matter = case.matter(ctx.reference)?;
            if let Some(unknown) = materials.iter().find(|name| !matter.materials.iter().any(|m| &m.name == *name)) {
                return Err(Rejection::UnknownMaterial(unknown.clone()));
            }
            MaterialsSupplemented { event_id: next_id(), case_number, occurred_at: ctx.now, case_version: case.version + 1, materials: materials.clone() }.into()
        }
        (CaseState::Accepted, Command::Route) => {
            let matter = case.matter(ctx.reference)?;
            let point = ctx.reference.service_point(&app.service_point.code).ok_or_else(|| Rejection::Unroutable(format!("no service point {}", app.service_point.code)))?;
            let routing = routing::route(ctx.reference, matter, point, app.domicile_township.as_deref()).map_err(Rejection::Unroutable)?;
            CaseRouted {
                event_id: next_id(),
                case_number,
                occurred_at: ctx.now,
                department_code: routing.authority_code,
                department_name: routing.authority_name,
                rule: routing.rule,
                reason: routing.reason,
                consulted_departments: matter.co_departments.iter().chain(&routing.consulted).cloned().collect(),
            }
            .into()
        }
        (CaseState::Routed, Command::StartProcedure { procedure, officer, departments, parties }) => {
            let limits = &ctx.reference.county.policy.procedure_days;
            let limit = limits.get(procedure).ok_or_else(|| Rejection::UnknownProcedure(procedure.clone(), limits.keys().cloned().collect::<Vec<_>>().join(", ")))?;
            not_blank("officer", officer)?;
            let departments = if departments.is_empty() { vec![case.handler_code()] } else { departments.clone() };
            ProcedureStarted {
                event_id: next_id(),
                case_number,
                occurred_at: ctx.now,
                procedure: procedure.clone(),
                officer: officer.clone(),
                departments,
                parties: parties.clone(),
                notice_number: number(procedure),
                limit_date: ctx.reference.calendar.add_working_days(today, *limit),
            }
            .into()
        }
        (CaseState::Suspended, Command::CompleteProcedure { officer, summary }) => {
            not_blank("summary", summary)?;
            let open = case.procedure.as_ref().ok_or_else(|| case.wrong_state(command))?;
            let paused = ctx.reference.calendar.working_days_between(open.started_day, today).max(0);
            let promised = case.promised_date.unwrap_or(today);
            ProcedureCompleted {
                event_id: next_id(),
                case_number,
                occurred_at: ctx.now,
                procedure: open.procedure.clone(),
                officer: officer.clone(),
                record_number: number(&format!("{}_record", open.procedure)),
                summary: summary.clone(),
                paused_working_days: paused,
                promised_date: ctx.reference.calendar.add_working_days(promised, paused as u32),
                statutory_date: case.statutory_date.map(|date| ctx.reference.calendar.add_working_days(date, paused as u32)),
            }
            .into()
        }
        (CaseState::Routed | CaseState::Suspended, Command::GiveOpinion { department_code, officer, opinion, remarks }) => {
            let pending = case.opinions_required.contains(department_code) && !case.opinions.iter().any(|o| &o.department_code == department_code);
            if !pending {
                return Err(Rejection::NotConsulted(department_code.clone()));
            }
            if !["agree", "disagree"].contains(&opinion.as_str()) {
                return Err(Rejection::BadOpinion);
            }
            if opinion == "disagree" {
                not_blank("remarks", remarks)?;
            }
            OpinionGiven { event_id: next_id(), case_number, occurred_at: ctx.now, department_code: department_code.clone(), officer: officer.clone(), opinion: opinion.clone(), remarks: remarks.clone() }.into()
        }
        (CaseState::Routed, Command::Decide { outcome, officer, department_code, reason }) => {
            let competent = case.department_code.clone().unwrap_or_default();
            if *department_code != competent {
                return Err(Rejection::NotCompetent { department: department_code.clone(), competent });
            }
            let pending: Vec<&str> = case
                .opinions_required
                .iter()
                .filter(|d| !case.opinions.iter().any(|o| &o.department_code == *d))
                .map(String::as_str)
                .collect();
            if !pending.is_empty() {
                return Err(Rejection::OpinionsPending(pending.join(", ")));
            }
            if *outcome == Outcome::Denied && reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
                return Err(Rejection::MissingReason);
            }
            if let Some(fee) = case.fee.as_ref().filter(|fee| *outcome == Outcome::Approved && !fee.is_paid()) {
                return Err(Rejection::FeeUnpaid { order: fee.order_number.clone(), total_fen: fee.total_fen, paid_fen: fee.paid_fen() });
            }
            let (outcome, kind) = match outcome {
                Outcome::Approved => ("approved", "approval"),
                Outcome::Denied => ("denied", "denial"),
            };
            let decided = CaseDecided {
                event_id: next_id(),
                case_number,
                occurred_at: ctx.now,
                outcome: outcome.into(),
                department_code: department_code.clone(),
                officer: officer.clone(),
                result_document: Some(number(kind)),
                reason: reason.clone(),
            };
            let certificate = case.matter(ctx.reference)?.certificate.as_ref().filter(|_| outcome == "approved");
            let requested = certificate.map(|spec| certificate_request(case, spec, &decided, ctx));
            return Ok(std::iter::once(decided.into()).chain(requested.map(Event::from)).collect());
        }
        (state, Command::RevokeCertificate { officer, reason }) => {
            let certificate_id = match &case.certificate {
                Some(CaseCertificate { certificate_id: Some(id), status, .. }) if status == "valid" => id.clone(),
                _ => return Err(Rejection::NoCertificate),
            };
            if state.rank() < CaseState::Approved.rank() {
                return Err(case.wrong_state(command));
            }
            not_blank("reason", reason)?;
            not_blank("officer", officer)?;
            CertificateRevocationRequested {
                event_id: next_id(),
                case_number,
                occurred_at: ctx.now,
                certificate_id,
                reason: reason.clone(),
                department_code: case.department_code.clone().unwrap_or_default(),
                officer: officer.clone(),
                data_subject: contracts::data_subject(&ctx.reference.subject_key, &app.applicant.id_number),
            }
            .into()
        }
        (_, Command::Record(Event::CertificateIssued(issued))) => {
            if case.certificate.is_none() {
                return Err(Rejection::ForeignCertificate { case: case_number, given: issued.certificate_id.clone() });
            }
            issued.clone().into()
        }
        (_, Command::Record(fact @ (Event::FeeOrderCreated(_) | Event::PaymentConfirmed(_)))) => {
            let order = match fact {
                Event::FeeOrderCreated(e) => &e.order_number,
                Event::PaymentConfirmed(e) => &e.order_number,
                _ => unreachable!("matched above"),
            };
            if case.fee.as_ref().map(|fee| &fee.order_number) != Some(order) {
                return Err(Rejection::ForeignFeeOrder { case: case_number, given: order.clone() });
            }
            fact.clone()
        }
        (_, Command::Record(Event::CertificateRevoked(revoked))) => {
            if case.certificate.as_ref().and_then(|c| c.certificate_id.as_ref()) != Some(&revoked.certificate_id) {
                return Err(Rejection::ForeignCertificate { case: case_number, given: revoked.certificate_id.clone() });
            }
            revoked.clone().into()
        }
        (CaseState::Approved, Command::RequestDelivery) => {
            let receiver = match (&app.delivery_method[..], &app.delivery_address) {
                ("mail", Some(address)) => address.clone(),
                _ => return Err(Rejection::NoMailDelivery(app.delivery_method.clone())),
            };
            let department = case.department_code.as_deref().and_then(|code| ctx.reference.authority(code));
            let county = &ctx.reference.county;
            let sender = PostalAddress {
                name: department.as_ref().map_or_else(|| county.name.clone(), |d| d.name.clone()),
                phone: department.as_ref().map_or_else(|| county.enquiry_phone.clone(), |d| d.phone.clone()),
                province: county.province.clone(),
                city: county.city.clone(),
                county: county.name.clone(),
                address: department.as_ref().map_or_else(String::new, |d| d.address.clone()),
                post_code: county.post_code.clone(),
            };
            DeliveryRequested {
                data_subject: contracts::data_subject(&ctx.reference.subject_key, &app.applicant.id_number),
                event_id: next_id(),
                case_number,
                occurred_at: ctx.now,
                order_number: case.order_number(),
                product: "standard-express-documents".into(),
                contents: "documents".into(),
                sender,
                receiver,
                return_receipt: true,
            }
            .into()
        }
        (CaseState::Approved | CaseState::DeliveryFailed, Command::HoldForPickup { method, reason }) => {
            let (place, code) = match method.as_str() {
                "locker" => (ctx.reference.county.policy.locker_place.clone(), Some(pickup_code(&ctx.reference.pickup_secret, &case_number))),
                _ => (format!("{}窗口", app.service_point.name), None),
            };
            ResultReadyForPickup { event_id: next_id(), case_number, occurred_at: ctx.now, method: method.clone(), place, pickup_code: code, reason: reason.clone() }.into()
        }
        (CaseState::AwaitingPickup, Command::Collect { collected_by, id_number, pickup_code, signature }) => {
            let pickup = case.pickup.as_ref().ok_or_else(|| case.wrong_state(command))?;
            let id_checked = match &pickup.code {
                Some(code) => {
                    if pickup_code.as_ref() != Some(code) {
                        return Err(Rejection::WrongPickupCode);
                    }
                    false
                }
                None => {
                    if id_number.as_deref() != Some(app.applicant.id_number.as_str()) {
                        return Err(Rejection::IdentityMismatch);
                    }
                    not_blank("signature", signature)?;
                    true
                }
            };
            not_blank("collected_by", collected_by)?;
            ResultCollected { event_id: next_id(), case_number, occurred_at: ctx.now, method: pickup.method.clone(), collected_by: collected_by.clone(), id_checked, signature: signature.clone() }.into()
        }
        (state, Command::Record(fact)) => {
            let order = match fact {
                Event::DeliveryOrderCreated(e) => &e.order_number,
                Event::TrackingEvent(e) => &e.order_number,
                Event::DeliveryCompleted(e) => &e.order_number,
                other => return Err(Rejection::NotAFact(other.kind())),
            };
            // Facts about the case's own order are always kept, even when they arrive late.
            if state.rank() < CaseState::DeliveryRequested.rank() || case.order_number.is_none() {
                return Err(case.wrong_state(command));
            }
            let expected = case.order_number.clone().unwrap_or_default();
            if *order != expected {
                return Err(Rejection::ForeignOrder { case: case_number, given: order.clone(), expected });
            }
            fact.clone()
        }
        (CaseState::NotAccepted | CaseState::Denied | CaseState::Delivered | CaseState::Collected, Command::Archive) => CaseArchived {
            event_id: next_id(),
            case_number,
            occurred_at: ctx.now,
            final_outcome: match case.state {
                CaseState::NotAccepted => "not_accepted".into(),
                CaseState::Denied => "denied".into(),
                CaseState::Collected => "collected".into(),
                _ => case.delivery_outcome.clone().unwrap_or_default(),
            },
            // The archive index itself is the last document of the file.
            document_count: case.documents.len() as i32 + 1,
        }
        .into(),
        (_, Command::CheckDeadlines) => return Ok(deadlines::warnings(case, ctx)),
        (state, Command::Review { grade, channel, comment }) => {
            if matches!(state, CaseState::Submitted) {
                return Err(case.wrong_state(command));
            }
            if !(1..=5).contains(grade) {
                return Err(Rejection::BadGrade);
            }
            match channel.as_str() {
                "online" if case.online_reviewed => return Err(Rejection::AlreadyReviewed),
                "online" | "counter" => {}
                _ => return Err(Rejection::BadChannel),
            }
            ReviewSubmitted {
                event_id: next_id(),
                case_number,
                occurred_at: ctx.now,
                grade: *grade,
                channel: channel.clone(),
                comment: comment.clone(),
                service_point: app.service_point.code.clone(),
                department_code: case.department_code.clone(),
            }
            .into()
        }
        (_, Command::OpenRectification { grade }) => RectificationOpened {
            event_id: next_id(),
            item_number: format!("{case_number}-Z{}", case.rectifications.len() + 1),
            case_number,
            occurred_at: ctx.now,
            grade: *grade,
            deadline: ctx.reference.calendar.add_working_days(today, ctx.reference.county.policy.rectification_days),
            department_code: case.handler_code(),
        }
        .into(),
        (_, Command::CloseRectification { item_number, officer, feedback }) => {
            if !case.rectifications.iter().any(|r| &r.item_number == item_number && !r.closed) {
                return Err(Rejection::NoSuchRectification(item_number.clone()));
            }
            not_blank("feedback", feedback)?;
            RectificationClosed { event_id: next_id(), case_number, occurred_at: ctx.now, item_number: item_number.clone(), officer: officer.clone(), feedback: feedback.clone() }.into()
        }
        _ => return Err(case.wrong_state(command)),
    };
    Ok(vec![event])
}

pub fn evolve(mut case: Case, event: &Event) -> Case {
    case.seq += 1;
    if let Some(document) = documents::issued_by(&case, event) {
        case.documents.push(document);
    }
    match event {
        Event::ApplicationSubmitted(_) => {}
        Event::SupplementRequested(_) => case.state = CaseState::AwaitingSupplement,
        Event::MaterialsSupplemented(e) => {
            case.version = e.case_version;
            case.faulty.retain(|f| !e.materials.contains(&f.material));
            case.outstanding_materials.retain(|m| !e.materials.contains(m));
            for material in &e.materials {
                if !case.materials.contains(material) {
                    case.materials.push(material.clone());
                }
            }
        }
        Event::AcceptanceRefused(_) => case.state = CaseState::NotAccepted,
        Event::CaseAccepted(e) => {
            case.state = CaseState::Accepted;
            case.accepted_at = Some(e.occurred_at);
            case.acceptance = Some(e.acceptance.clone());
            case.promised_date = Some(e.promised_date);
            case.statutory_date = e.statutory_date;
            case.outstanding_materials = e.outstanding_materials.clone();
            case.commitment_date = e.commitment_date;
        }
        Event::CaseRouted(e) => {
            case.state = CaseState::Routed;
            case.department_code = Some(e.department_code.clone());
            case.department_name = Some(e.department_name.clone());
            case.opinions_required = e.consulted_departments.clone();
        }
        Event::ProcedureStarted(e) => {
            case.state = CaseState::Suspended;
            case.procedure = Some(OpenProcedure { procedure: e.procedure.clone(), started_day: calendar::day_of(e.occurred_at), limit_date: e.limit_date });
        }
        Event::ProcedureCompleted(e) => {
            case.state = CaseState::Routed;
            case.procedure = None;
            case.paused_working_days += e.paused_working_days;
            case.promised_date = Some(e.promised_date);
            case.statutory_date = e.statutory_date.or(case.statutory_date);
        }
        Event::OpinionGiven(e) => case.opinions.push(Opinion {
            department_code: e.department_code.clone(),
            officer: e.officer.clone(),
            opinion: e.opinion.clone(),
            remarks: e.remarks.clone(),
        }),
        Event::CaseDecided(e) => {
            case.state = if e.outcome == "approved" { CaseState::Approved } else { CaseState::Denied };
            case.decision = Some(e.outcome.clone());
            case.result_document = e.result_document.clone();
        }
        Event::DeliveryRequested(e) => {
            case.state = CaseState::DeliveryRequested;
            case.order_number = Some(e.order_number.clone());
        }
        Event::DeliveryOrderCreated(e) => {
            case.waybill_number = Some(e.waybill_number.clone());
            advance_to(&mut case, CaseState::InTransit);
        }
        Event::TrackingEvent(e) => {
            case.waybill_number.get_or_insert_with(|| e.waybill_number.clone());
            case.tracking_events += 1;
            advance_to(&mut case, CaseState::InTransit);
        }
        Event::DeliveryCompleted(e) => {
            case.delivery_outcome = Some(e.outcome.clone());
            let state = if e.outcome == "signed" { CaseState::Delivered } else { CaseState::DeliveryFailed };
            advance_to(&mut case, state);
        }
        Event::ResultReadyForPickup(e) => {
            case.state = CaseState::AwaitingPickup;
            case.pickup = Some(Pickup { method: e.method.clone(), place: e.place.clone(), code: e.pickup_code.clone() });
        }
        Event::ResultCollected(_) => case.state = CaseState::Collected,
        Event::CaseArchived(_) => case.state = CaseState::Archived,
        Event::DeadlineWarning(e) => case.warnings.push(deadlines::key(e)),
        Event::ReviewSubmitted(e) => {
            case.online_reviewed |= e.channel == "online";
            case.reviews.push(e.grade);
        }
        Event::RectificationOpened(e) => case.rectifications.push(Rectification { item_number: e.item_number.clone(), deadline: e.deadline, closed: false }),
        Event::RectificationClosed(e) => case.rectifications.iter_mut().filter(|r| r.item_number == e.item_number).for_each(|r| r.closed = true),
        Event::CertificateRequested(e) => case.certificate = Some(CaseCertificate { name: e.certificate_name.clone(), certificate_id: None, status: "requested".into() }),
        Event::CertificateIssued(e) => {
            if let Some(certificate) = &mut case.certificate {
                certificate.certificate_id = Some(e.certificate_id.clone());
                // A late issue report never undoes a revocation already asked for.
                if certificate.status == "requested" {
                    certificate.status = e.status.clone();
                }
            }
        }
        Event::CertificateRevocationRequested(_) => case.certificate.iter_mut().for_each(|c| c.status = "revocation_requested".into()),
        Event::FeeOrderRequested(e) => case.fee = Some(CaseFee { order_number: e.order_number.clone(), total_fen: e.total_fen, payment_code: None, payments: Vec::new() }),
        Event::FeeOrderCreated(e) => case.fee.iter_mut().for_each(|fee| fee.payment_code = Some(e.payment_code.clone())),
        Event::PaymentConfirmed(e) => case.fee.iter_mut().for_each(|fee| fee.payments.push((e.payment_id.clone(), e.amount_fen))),
        Event::CertificateRevoked(_) => case.certificate.iter_mut().for_each(|c| c.status = "revoked".into()),
        // Facts about data exchanges and the audit ledger, not about the case.
        Event::DataShared(_) | Event::LedgerCheckpointSigned(_) | Event::AuditAnomalyDetected(_) => {}
    }
    case
}

/// Delivery facts may arrive out of order; the state only moves forward.
fn advance_to(case: &mut Case, state: CaseState) {
    if state.rank() > case.state.rank() {
        case.state = state;
    }
}

/// Grades of a bad review (dissatisfied, very dissatisfied): they open a rectification item.
pub const BAD_GRADES: std::ops::RangeInclusive<i32> = 1..=2;

/// What the hub does next after `event` happened to `case` (already evolved).
pub fn reactions(case: &Case, event: &Event) -> Vec<Command> {
    let delivery = case.application.delivery_method.as_str();
    match event {
        Event::ApplicationSubmitted(_) if case.state == CaseState::Submitted => vec![Command::Examine],
        Event::MaterialsSupplemented(_) if case.state == CaseState::AwaitingSupplement => vec![Command::Examine],
        Event::AcceptanceRefused(_) => vec![Command::Archive],
        Event::CaseAccepted(_) if case.state == CaseState::Accepted => vec![Command::Route],
        Event::CaseDecided(_) if case.state == CaseState::Approved && delivery == "mail" => vec![Command::RequestDelivery],
        Event::CaseDecided(_) if case.state == CaseState::Approved => vec![Command::HoldForPickup { method: delivery.into(), reason: "chosen at acceptance".into() }],
        Event::CaseDecided(_) if case.state == CaseState::Denied => vec![Command::Archive],
        Event::DeliveryCompleted(_) if case.state == CaseState::Delivered => vec![Command::Archive],
        Event::DeliveryCompleted(_) if case.state == CaseState::DeliveryFailed => {
            vec![Command::HoldForPickup { method: "window".into(), reason: "mail delivery failed; returned to the window".into() }]
        }
        Event::ResultCollected(_) => vec![Command::Archive],
        Event::ReviewSubmitted(e) if BAD_GRADES.contains(&e.grade) => vec![Command::OpenRectification { grade: e.grade }],
        _ => vec![],
    }
}

/// Runs every reaction that `causes` call for, and the reactions to what those produce, until
/// the case rests. Reactions need no outside party, so they happen in the same transaction as
/// their cause. Returns the case and the events produced, in order.
pub fn react(mut case: Case, causes: Vec<Event>, ctx: &Context<'_>) -> Result<(Case, Vec<Event>), Rejection> {
    let mut pending: std::collections::VecDeque<Event> = causes.into();
    let mut produced = Vec::new();
    while let Some(cause) = pending.pop_front() {
        for command in reactions(&case, &cause) {
            for event in decide(&case, &command, ctx)? {
                case = evolve(case, &event);
                produced.push(event.clone());
                pending.push_back(event);
            }
        }
    }
    Ok((case, produced))
}

/// Commands that came from a connector's event: record the fact first.
pub fn is_external_fact(event: &Event) -> bool {
    matches!(
        event,
        Event::DeliveryOrderCreated(_)
            | Event::TrackingEvent(_)
            | Event::DeliveryCompleted(_)
            | Event::CertificateIssued(_)
            | Event::CertificateRevoked(_)
            | Event::FeeOrderCreated(_)
            | Event::PaymentConfirmed(_)
    )
}

#[cfg(test)]
#[path = "case_tests.rs"]
mod tests;
