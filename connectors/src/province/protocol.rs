//! Wire types of the provincial platform's exchange API, shared by the connector and the
//! simulator, and the mapping of hub events to the platform's status codes. Every request is
//! signed both ways (see `crate::framework::signature`).
use contracts::{Applicant, Event, PostalAddress};
use serde::{Deserialize, Serialize};

/// An application filed online, as the platform pushes it (`POST /connectors/province/applications`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnlineApplication {
    /// 申办流水号: the platform's number of the application; pushes are deduplicated on it.
    pub project_no: String,
    /// 实施编码 of the matter applied for.
    pub implementation_code: String,
    pub applicant: Applicant,
    /// Division code of the applicant's township of domicile, for township-decided matters.
    #[serde(default)]
    pub domicile_township: Option<String>,
    /// Names of the materials uploaded.
    pub materials: Vec<String>,
    /// Electronic certificates the applicant pointed to instead of uploads (免提交).
    #[serde(default)]
    pub certificates: Vec<CertificateRef>,
    /// `mail`, `window` or `locker`.
    pub delivery_method: String,
    #[serde(default)]
    pub delivery_address: Option<PostalAddress>,
    /// When the applicant submitted, epoch milliseconds.
    pub submitted_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateRef {
    pub material: String,
    pub certificate_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplicationPush {
    pub applications: Vec<OnlineApplication>,
}

/// Most applications in one push.
pub const MAX_APPLICATIONS_PER_PUSH: usize = 100;

/// The hub's answer to a push: one result per application, in order. HTTP 200 when every
/// application was taken, 422 when any was refused (the others are taken all the same).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushResults {
    pub success: bool,
    pub results: Vec<PushResult>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushResult {
    pub project_no: String,
    /// The county case number (办件编号), when taken.
    pub case_number: Option<String>,
    /// Taken before: the same case number as the first time.
    pub duplicate: bool,
    /// Why it was refused, naming the field; a refused application is not to be pushed again.
    pub error: Option<String>,
    pub field: Option<String>,
}

/// `POST /api/v1/case-status`: steps of cases, 1 to [`MAX_REPORTS_PER_CALL`] a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusBatch {
    pub reports: Vec<CaseStatus>,
}

/// Most status reports in one call.
pub const MAX_REPORTS_PER_CALL: usize = 100;

/// One step of a case, with the national exchange fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseStatus {
    /// The hub's event id: the platform takes each report once, whatever the retries.
    pub report_id: String,
    pub case_number: String,
    /// The platform's 申办流水号 for applications filed online.
    pub project_no: Option<String>,
    pub implementation_code: String,
    pub matter_name: String,
    pub matter_version: i32,
    /// Incremented by every supplement.
    pub case_version: i32,
    /// `counter`, `online` or `bank`.
    pub channel: String,
    /// See [`status_of`].
    pub event_code: u8,
    pub event_name: String,
    /// Epoch milliseconds.
    pub event_time: i64,
    /// Code and name of the authority or point that took the step.
    pub handler_code: String,
    pub handler_name: String,
    /// On completion (11): `approved` or `denied`.
    pub result_type: Option<String>,
    /// On receipt (1) only: who applied, so that the platform can follow counter cases too.
    pub applicant: Option<Applicant>,
}

/// The platform's answer to a batch of status reports (HTTP 200): one result per report, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusResults {
    pub results: Vec<StatusResult>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusResult {
    pub report_id: String,
    /// Taken before under the same id.
    pub duplicate: bool,
    /// Why the report was refused, naming the field; a refused report is not to be sent again.
    pub error: Option<String>,
    pub field: Option<String>,
}

/// Answer to a review: 201 when new, 200 with `duplicate` when the key was seen before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Received {
    pub duplicate: bool,
}

/// `POST /api/v1/reviews`, with `Idempotency-Key: <review id>`: one review (好差评).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewReport {
    pub review_id: String,
    pub case_number: String,
    pub project_no: Option<String>,
    pub implementation_code: String,
    /// 5 very satisfied … 1 very dissatisfied.
    pub grade: i32,
    /// `online` (一事一评) or `counter` (一次一评).
    pub channel: String,
    pub comment: String,
    pub service_point: String,
    pub department_code: Option<String>,
    pub reviewed_at: i64,
}

/// `GET /api/v1/matters?region=<6-digit code>`: the matter guides (办事指南) the platform holds
/// for the region. Local arrangements (which tiers accept, who decides) are the county's own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatterCatalogue {
    pub matters: Vec<MatterGuide>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatterGuide {
    pub implementation_code: String,
    pub basic_code: String,
    pub name: String,
    pub kind: String,
    /// Unified social credit code of the implementing department.
    pub department_code: String,
    pub legal_basis: String,
    pub statutory_days: u32,
    pub promised_days: u32,
    pub instant: bool,
    /// `county`, `city`, `province` or `nation`.
    pub scope: String,
    pub mail_allowed: bool,
    /// 收费项目 with their amounts (fen) and 收费依据; empty for a free matter.
    pub fees: Vec<contracts::FeeItem>,
    pub materials: Vec<GuideMaterial>,
    /// When the platform last changed the guide, epoch milliseconds.
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuideMaterial {
    pub name: String,
    pub primary: bool,
    pub original: bool,
    pub count: u32,
    pub ecert: bool,
}

/// A step of a case in the platform's status codes: code, name and result type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusStep {
    pub code: u8,
    pub name: &'static str,
    pub result_type: Option<String>,
}

pub const RECEIVED: u8 = 1;
pub const ACCEPTED: u8 = 3;
pub const NOT_ACCEPTED: u8 = 4;
pub const SUPPLEMENT_REQUESTED: u8 = 6;
pub const DEPARTMENT_HANDLING: u8 = 8;
pub const SPECIAL_PROCEDURE_START: u8 = 9;
pub const SPECIAL_PROCEDURE_END: u8 = 10;
pub const COMPLETED: u8 = 11;

/// The platform's status for a hub event; `None` for the steps the platform does not follow
/// (opinions, pickup, archiving, warnings).
pub fn status_of(event: &Event) -> Option<StatusStep> {
    let step = |code, name| Some(StatusStep { code, name, result_type: None });
    match event {
        Event::ApplicationSubmitted(_) => step(RECEIVED, "收件"),
        Event::MaterialsSupplemented(_) => step(RECEIVED, "补正收件"),
        Event::CaseAccepted(_) => step(ACCEPTED, "受理"),
        Event::AcceptanceRefused(_) => step(NOT_ACCEPTED, "不予受理"),
        Event::SupplementRequested(_) => step(SUPPLEMENT_REQUESTED, "补正告知"),
        Event::CaseRouted(_) => step(DEPARTMENT_HANDLING, "部门办理"),
        Event::ProcedureStarted(_) => step(SPECIAL_PROCEDURE_START, "特别程序开始"),
        Event::ProcedureCompleted(_) => step(SPECIAL_PROCEDURE_END, "特别程序结束"),
        Event::CaseDecided(decided) => {
            Some(StatusStep { code: COMPLETED, name: "办结", result_type: Some(decided.outcome.clone()) })
        }
        _ => None,
    }
}
