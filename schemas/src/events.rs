//! Event records, one Rust type per Avro record. Field names match the `.avsc` files exactly.
use serde::{Deserialize, Serialize};

/// Namespace of every record of the hub.
pub const NAMESPACE: &str = "cn.gov.county.hub";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatterRef {
    pub basic_code: String,
    pub implementation_code: String,
    pub name: String,
    pub version: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Applicant {
    pub name: String,
    pub id_type: String,
    pub id_number: String,
    pub phone: String,
    /// Where notices are e-mailed, if the applicant wants them (added in ApplicationSubmitted v3).
    #[serde(default)]
    pub email: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServicePoint {
    pub code: String,
    pub name: String,
    pub tier: String,
    pub division_code: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PostalAddress {
    pub name: String,
    pub phone: String,
    pub province: String,
    pub city: String,
    pub county: String,
    pub address: String,
    pub post_code: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplicationSubmitted {
    pub event_id: String,
    pub case_number: String,
    pub occurred_at: i64,
    pub case_version: i32,
    pub channel: String,
    pub matter: MatterRef,
    pub applicant: Applicant,
    pub service_point: ServicePoint,
    pub materials: Vec<String>,
    pub delivery_method: String,
    pub delivery_address: Option<PostalAddress>,
    #[serde(default)]
    pub faulty_materials: Vec<MaterialProblem>,
    #[serde(default)]
    pub commits_to_supply: bool,
    #[serde(default)]
    pub domicile_township: Option<String>,
    /// The clerk who took it in (v4); empty when the applicant filed online.
    #[serde(default)]
    pub received_by: String,
    /// A fee waiver or reduction claimed (v5).
    #[serde(default)]
    pub fee_relief: Option<FeeReliefClaim>,
    /// The counter (窗口) it was taken in at, when the clerk's token is bound to one.
    #[serde(default)]
    pub window: Option<String>,
}

/// A fee waiver or reduction claimed at the counter: the county's rule and the proof shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FeeReliefClaim {
    /// The rule's code in the county's policy (`fee_relief`).
    pub rule: String,
    /// The document proving eligibility (e.g. 低保证号).
    pub proof_number: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MaterialProblem {
    pub material: String,
    pub problem: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseAccepted {
    pub event_id: String,
    pub case_number: String,
    pub occurred_at: i64,
    pub case_version: i32,
    pub accepted_by: String,
    pub matter_implementation_code: String,
    pub matter_version: i32,
    /// Days since 1970-01-01 (Avro `date`).
    pub promised_date: i32,
    // Fields added in v2 default when absent, as in the schema, so JSON written before reads too.
    /// `standard`, or `tolerant` (容缺受理).
    #[serde(default)]
    pub acceptance: String,
    #[serde(default)]
    pub outstanding_materials: Vec<String>,
    #[serde(default)]
    pub commitment_date: Option<i32>,
    #[serde(default)]
    pub notice_number: String,
    #[serde(default)]
    pub statutory_date: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseRouted {
    pub event_id: String,
    pub case_number: String,
    pub occurred_at: i64,
    pub department_code: String,
    pub department_name: String,
    pub rule: String,
    pub reason: String,
    #[serde(default)]
    pub consulted_departments: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseDecided {
    pub event_id: String,
    pub case_number: String,
    pub occurred_at: i64,
    pub outcome: String,
    pub department_code: String,
    pub officer: String,
    pub result_document: Option<String>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRequested {
    pub event_id: String,
    pub case_number: String,
    pub occurred_at: i64,
    pub order_number: String,
    pub product: String,
    pub contents: String,
    pub sender: PostalAddress,
    pub receiver: PostalAddress,
    pub return_receipt: bool,
    /// Keyed hash of the applicant's ID number, for the data-sharing audit (added in v2).
    #[serde(default)]
    pub data_subject: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryOrderCreated {
    pub event_id: String,
    pub case_number: String,
    pub occurred_at: i64,
    pub order_number: String,
    pub waybill_number: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackingEvent {
    pub event_id: String,
    pub case_number: String,
    pub occurred_at: i64,
    pub order_number: String,
    pub waybill_number: String,
    pub op_code: String,
    pub op_name: String,
    pub office: String,
    pub operator: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryCompleted {
    pub event_id: String,
    pub case_number: String,
    pub occurred_at: i64,
    pub order_number: String,
    pub waybill_number: String,
    pub outcome: String,
    pub signed_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseArchived {
    pub event_id: String,
    pub case_number: String,
    pub occurred_at: i64,
    pub final_outcome: String,
    pub document_count: i32,
    // Added in v2: the archive's own record of the file (归档人, 档号, 保管期限, its unit).
    #[serde(default)]
    pub archivist: String,
    #[serde(default)]
    pub file_number: String,
    #[serde(default)]
    pub retention: String,
    #[serde(default)]
    pub unit_code: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptanceRefused {
    pub event_id: String,
    pub case_number: String,
    pub occurred_at: i64,
    pub case_version: i32,
    pub officer: String,
    pub reason: String,
    pub legal_basis: String,
    pub notice_number: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupplementRequested {
    pub event_id: String,
    pub case_number: String,
    pub occurred_at: i64,
    pub case_version: i32,
    pub officer: String,
    pub notice_number: String,
    pub items: Vec<MaterialProblem>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaterialsSupplemented {
    pub event_id: String,
    pub case_number: String,
    pub occurred_at: i64,
    pub case_version: i32,
    pub materials: Vec<String>,
    /// The clerk who took the supplement in (v2).
    #[serde(default)]
    pub received_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcedureStarted {
    pub event_id: String,
    pub case_number: String,
    pub occurred_at: i64,
    pub procedure: String,
    pub officer: String,
    pub departments: Vec<String>,
    pub parties: Vec<String>,
    pub notice_number: String,
    pub limit_date: i32,
    /// A hearing's date, announced at least 7 days ahead (v2).
    #[serde(default)]
    pub scheduled_date: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcedureCompleted {
    pub event_id: String,
    pub case_number: String,
    pub occurred_at: i64,
    pub procedure: String,
    pub officer: String,
    pub record_number: String,
    pub summary: String,
    pub paused_working_days: i32,
    pub promised_date: i32,
    pub statutory_date: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpinionGiven {
    pub event_id: String,
    pub case_number: String,
    pub occurred_at: i64,
    pub department_code: String,
    pub officer: String,
    pub opinion: String,
    pub remarks: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultReadyForPickup {
    pub event_id: String,
    pub case_number: String,
    pub occurred_at: i64,
    pub method: String,
    pub place: String,
    pub pickup_code: Option<String>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultCollected {
    pub event_id: String,
    pub case_number: String,
    pub occurred_at: i64,
    pub method: String,
    pub collected_by: String,
    pub id_checked: bool,
    pub signature: String,
    /// The clerk who handed the result out (v2); empty for a locker.
    #[serde(default)]
    pub handed_out_by: String,
    /// Collected by a (代)取件人 or an enterprise's agent (v3).
    #[serde(default)]
    pub agent: bool,
    /// The 委托书 presented, where one is needed (v3).
    #[serde(default)]
    pub authorization_number: Option<String>,
    /// The acceptance notice presented (v3).
    #[serde(default)]
    pub notice_number: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadlineWarning {
    pub event_id: String,
    pub case_number: String,
    pub occurred_at: i64,
    pub level: String,
    pub scope: String,
    pub step: Option<String>,
    pub due_date: i32,
    pub department_code: String,
    pub escalate: bool,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewSubmitted {
    pub event_id: String,
    pub case_number: String,
    pub occurred_at: i64,
    pub grade: i32,
    pub channel: String,
    pub comment: String,
    pub service_point: String,
    pub department_code: Option<String>,
    /// The counter visit reviewed (v2).
    #[serde(default)]
    pub visit_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RectificationOpened {
    pub event_id: String,
    pub case_number: String,
    pub occurred_at: i64,
    pub item_number: String,
    pub grade: i32,
    pub deadline: i32,
    pub department_code: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RectificationClosed {
    pub event_id: String,
    pub case_number: String,
    pub occurred_at: i64,
    pub item_number: String,
    pub officer: String,
    pub feedback: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateRequested {
    pub event_id: String,
    pub case_number: String,
    pub occurred_at: i64,
    pub type_code: String,
    pub certificate_name: String,
    pub number: String,
    pub holder_name: String,
    pub holder_code: String,
    pub holder_code_kind: String,
    pub data_subject: String,
    pub issuer: String,
    pub issuer_code: String,
    /// Days since 1970-01-01 (Avro `date`).
    pub issue_date: i32,
    pub valid_until: Option<i32>,
    pub area_code: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateRevocationRequested {
    pub event_id: String,
    pub case_number: String,
    pub occurred_at: i64,
    pub certificate_id: String,
    pub reason: String,
    pub department_code: String,
    pub officer: String,
    pub data_subject: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateIssued {
    pub event_id: String,
    pub case_number: String,
    pub occurred_at: i64,
    pub certificate_id: String,
    pub type_code: String,
    pub number: String,
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateRevoked {
    pub event_id: String,
    pub case_number: String,
    pub occurred_at: i64,
    pub certificate_id: String,
    pub reason: String,
}

/// One exchange of personal or case data with another system; `case_number` is empty when no
/// case is behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataShared {
    pub event_id: String,
    pub case_number: String,
    pub occurred_at: i64,
    pub exchange: String,
    pub requester_system: String,
    pub requester_department: String,
    pub requester_officer: Option<String>,
    pub provider: String,
    pub data_subject: String,
    pub data_items: Vec<String>,
    pub legal_basis: String,
    pub purpose: String,
    pub channel: String,
    pub document_sha256: Option<String>,
    pub outcome: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerCheckpointSigned {
    pub event_id: String,
    pub case_number: String,
    pub occurred_at: i64,
    pub first_seq: i64,
    pub size: i64,
    pub last_hash: String,
    pub merkle_root: String,
    pub public_key: String,
    pub signature: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditAnomalyDetected {
    pub event_id: String,
    pub case_number: String,
    pub occurred_at: i64,
    pub rule: String,
    pub requester: String,
    pub provider: String,
    pub count: i64,
    pub entries: Vec<i64>,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeItem {
    pub name: String,
    pub amount_fen: i64,
    /// 收费依据: the document and article that set the fee (v2).
    #[serde(default)]
    pub basis: String,
}

/// A waiver or reduction (减免) applied to a fee order by a county rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeRelief {
    pub rule: String,
    pub name: String,
    pub basis: String,
    pub proof_number: String,
    pub relieved_fen: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeOrderRequested {
    pub event_id: String,
    pub case_number: String,
    pub occurred_at: i64,
    pub order_number: String,
    pub payer_name: String,
    pub data_subject: String,
    pub department_code: String,
    pub items: Vec<FeeItem>,
    pub total_fen: i64,
    #[serde(default)]
    pub relief: Option<FeeRelief>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeOrderCreated {
    pub event_id: String,
    pub case_number: String,
    pub occurred_at: i64,
    pub order_number: String,
    pub payment_code: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentConfirmed {
    pub event_id: String,
    pub case_number: String,
    pub occurred_at: i64,
    pub order_number: String,
    pub payment_id: String,
    pub amount_fen: i64,
    pub outlet_code: String,
    /// 财政电子票据号 (v2).
    #[serde(default)]
    pub receipt_number: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplicationWithdrawn {
    pub event_id: String,
    pub case_number: String,
    pub occurred_at: i64,
    pub officer: String,
    pub reason: String,
    pub notice_number: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRequested {
    pub event_id: String,
    pub case_number: String,
    pub occurred_at: i64,
    pub refund_number: String,
    pub order_number: String,
    pub amount_fen: i64,
    pub reason: String,
    pub department_code: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundConfirmed {
    pub event_id: String,
    pub case_number: String,
    pub occurred_at: i64,
    pub refund_number: String,
    pub refund_id: String,
    pub amount_fen: i64,
    pub receipt_number: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmsRequested {
    pub event_id: String,
    pub case_number: String,
    pub occurred_at: i64,
    pub phone: String,
    pub template: String,
    pub version: i32,
    pub params: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmsSent {
    pub event_id: String,
    pub case_number: String,
    pub occurred_at: i64,
    pub message_id: String,
    pub gateway_id: String,
    pub template: String,
    pub version: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmsReplyReceived {
    pub event_id: String,
    pub case_number: String,
    pub occurred_at: i64,
    pub message_id: String,
    pub reply_id: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewVerified {
    pub event_id: String,
    pub case_number: String,
    pub occurred_at: i64,
    pub item_number: String,
    pub officer: String,
    pub finding: String,
    pub substantiated: bool,
    pub reply: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentSealRequested {
    pub event_id: String,
    pub case_number: String,
    pub occurred_at: i64,
    pub document_event_id: String,
    pub document_kind: String,
    pub document_number: String,
    pub unit: String,
    pub seal_name: String,
    pub document_sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentSealed {
    pub event_id: String,
    pub case_number: String,
    pub occurred_at: i64,
    pub document_event_id: String,
    pub document_sha256: String,
    pub seal_name: String,
    pub key_id: String,
    pub signature: String,
    pub signed_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepCompleted {
    pub event_id: String,
    pub case_number: String,
    pub occurred_at: i64,
    pub step: String,
    pub title: String,
    pub officer: String,
    pub remarks: String,
    pub seal_name: Option<String>,
    pub due_date: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtensionGranted {
    pub event_id: String,
    pub case_number: String,
    pub occurred_at: i64,
    pub officer: String,
    pub approved_by: String,
    pub reason: String,
    pub extra_days: i32,
    pub statutory_date: i32,
    pub promised_date: i32,
    pub notice_number: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HearingRightsNotified {
    pub event_id: String,
    pub case_number: String,
    pub occurred_at: i64,
    pub officer: String,
    pub parties: Vec<String>,
    pub request_by: i32,
    pub notice_number: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupervisionOrdered {
    pub event_id: String,
    pub case_number: String,
    pub occurred_at: i64,
    pub order_number: String,
    pub department_code: String,
    pub card: String,
    pub reason: String,
    pub answer_by: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupervisionAnswered {
    pub event_id: String,
    pub case_number: String,
    pub occurred_at: i64,
    pub order_number: String,
    pub officer: String,
    pub answer: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitmentSigned {
    pub event_id: String,
    pub case_number: String,
    pub occurred_at: i64,
    pub materials: Vec<String>,
    pub commitment_date: i32,
    pub notice_number: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitmentClosed {
    pub event_id: String,
    pub case_number: String,
    pub occurred_at: i64,
    pub officer: String,
    pub materials: Vec<String>,
    pub outcome: String,
}

/// Declares the `Event` enum over the record types, with the accessors every record shares.
macro_rules! events {
    ($($record:ident),+ $(,)?) => {
        /// Any event the hub knows, tagged by its Avro record.
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(tag = "type")]
        // The application is the largest record by a few hundred bytes; boxing it would change
        // every place that builds or matches one, for events that are built once and moved.
        #[allow(clippy::large_enum_variant)]
        pub enum Event {
            $($record($record),)+
        }

        impl Event {
            /// Short record name, e.g. `CaseAccepted`.
            pub fn kind(&self) -> &'static str {
                match self { $(Event::$record(_) => stringify!($record),)+ }
            }
            pub fn event_id(&self) -> &str {
                match self { $(Event::$record(e) => &e.event_id,)+ }
            }
            pub fn case_number(&self) -> &str {
                match self { $(Event::$record(e) => &e.case_number,)+ }
            }
            pub fn occurred_at(&self) -> i64 {
                match self { $(Event::$record(e) => e.occurred_at,)+ }
            }
            pub(crate) fn to_avro_value(&self) -> Result<apache_avro::types::Value, apache_avro::Error> {
                match self { $(Event::$record(e) => apache_avro::to_value(e),)+ }
            }
            pub(crate) fn from_avro_value(kind: &str, value: &apache_avro::types::Value) -> Option<Result<Event, apache_avro::Error>> {
                match kind {
                    $(stringify!($record) => Some(apache_avro::from_value::<$record>(value).map(Event::$record)),)+
                    _ => None,
                }
            }
        }

        $(impl From<$record> for Event {
            fn from(e: $record) -> Self { Event::$record(e) }
        })+
    };
}

events!(
    ApplicationSubmitted,
    CaseAccepted,
    CaseRouted,
    CaseDecided,
    DeliveryRequested,
    DeliveryOrderCreated,
    TrackingEvent,
    DeliveryCompleted,
    CaseArchived,
    AcceptanceRefused,
    SupplementRequested,
    MaterialsSupplemented,
    ProcedureStarted,
    ProcedureCompleted,
    OpinionGiven,
    ResultReadyForPickup,
    ResultCollected,
    DeadlineWarning,
    ReviewSubmitted,
    RectificationOpened,
    RectificationClosed,
    CertificateRequested,
    CertificateRevocationRequested,
    CertificateIssued,
    CertificateRevoked,
    DataShared,
    FeeOrderRequested,
    FeeOrderCreated,
    PaymentConfirmed,
    LedgerCheckpointSigned,
    AuditAnomalyDetected,
    DocumentSealRequested,
    DocumentSealed,
    StepCompleted,
    ExtensionGranted,
    HearingRightsNotified,
    SupervisionOrdered,
    SupervisionAnswered,
    CommitmentSigned,
    CommitmentClosed,
    RefundRequested,
    RefundConfirmed,
    SmsRequested,
    SmsSent,
    SmsReplyReceived,
    ReviewVerified,
    ApplicationWithdrawn,
);

impl Event {
    /// Full Avro record name, e.g. `cn.gov.county.hub.CaseAccepted`.
    pub fn record_name(&self) -> String {
        format!("{NAMESPACE}.{}", self.kind())
    }
}
