//! The case state machine of a case's life in decider style: `decide(case, command) -> events |
//! rejection` (`decide`), `evolve(case, event) -> case` (`evolve`), and `reactions(case, event)
//! -> commands`, the process manager that says what the hub does next (`react`); `handle` runs
//! the three for every caller.
use contracts::{ApplicationSubmitted, CaseDecided, Event, MaterialProblem};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::calendar;
use crate::documents::DocumentRef;
pub use crate::facts::DeliveryMethod;
use crate::reference::{Authority, Matter, Reference};

mod decide;
mod evolve;
mod react;

pub use decide::{decide, examine, Examination, HEARING_NOTICE_DAYS, HEARING_REQUEST_DAYS, NOT_COMPETENT_BASIS};
pub use evolve::evolve;
pub use react::{handle, handle_event, is_external_fact, react, reactions, Handled, BAD_GRADES};

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
    /// Approved: 制证, 盖章 and 出件 follow before the result leaves.
    Approved,
    Denied,
    /// The applicant withdrew before the decision (撤回申请): handling ended.
    Withdrawn,
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
    pub const ALL: [CaseState; 16] = [
        CaseState::Submitted,
        CaseState::AwaitingSupplement,
        CaseState::NotAccepted,
        CaseState::Accepted,
        CaseState::Routed,
        CaseState::Suspended,
        CaseState::Approved,
        CaseState::Denied,
        CaseState::Withdrawn,
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
            CaseState::Withdrawn => "withdrawn",
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

    pub(crate) fn rank(self) -> usize {
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

/// A step done, as the flow record and the clock need it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepDone {
    pub step: String,
    pub title: String,
    pub officer: String,
    pub day: i32,
}

/// A supervision order (督办单) and whether it was answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Supervision {
    pub order_number: String,
    pub department_code: String,
    pub answer_by: i32,
    pub answered: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rectification {
    pub item_number: String,
    pub deadline: i32,
    pub closed: bool,
    /// What the verification (调查核实) found: whether the complaint was borne out.
    #[serde(default)]
    pub substantiated: Option<bool>,
}

/// A text message sent to the applicant: its id (the SmsRequested event's) and template, and
/// whether the gateway took it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentText {
    pub message_id: String,
    pub template: String,
    pub taken: bool,
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
    /// The counter visits reviewed on the applicant's screen: one review per visit.
    #[serde(default)]
    pub reviewed_visits: Vec<String>,
    /// Text messages to the applicant, in the order requested.
    #[serde(default)]
    pub texts: Vec<SentText>,
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
    /// The clerk who last took materials in (接件人): the application's, then a supplement's.
    #[serde(default)]
    pub received_by: String,
    /// The officer who decided.
    #[serde(default)]
    pub decided_by: Option<String>,
    /// The day of the decision, from which the result must be out in ten days (第四十四条).
    #[serde(default)]
    pub decided_day: Option<i32>,
    /// The acceptance notice's number, which the person collecting the result presents.
    #[serde(default)]
    pub acceptance_notice: Option<String>,
    /// Review steps (审查细则) and, after an approval, 制证, 盖章, 出件, in the order done.
    #[serde(default)]
    pub steps: Vec<StepDone>,
    /// The decision limit was extended (once only, 第四十二条).
    #[serde(default)]
    pub extended: bool,
    /// Last day to ask for a hearing, once the rights were told (第四十七条).
    #[serde(default)]
    pub hearing_request_by: Option<i32>,
    #[serde(default)]
    pub supervisions: Vec<Supervision>,
    /// What became of materials owed past their commitment, once recorded.
    #[serde(default)]
    pub commitment_outcome: Option<String>,
    /// Times the applicant came in person: to hand in, to supplement, to collect (最多跑一次).
    #[serde(default)]
    pub trips: u32,
    /// Notices to supplement given (一次性告知: one is the rule).
    #[serde(default)]
    pub supplement_notices: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseFee {
    pub order_number: String,
    pub total_fen: i64,
    /// The bank's payment code (缴款码), once the order is placed.
    pub payment_code: Option<String>,
    /// Every payment confirmed, by the bank's transaction number.
    pub payments: Vec<(String, i64)>,
    /// The waiver or reduction applied, if any.
    #[serde(default)]
    pub relief: Option<contracts::FeeRelief>,
    /// The fee items with their basis.
    #[serde(default)]
    pub items: Vec<contracts::FeeItem>,
    /// 财政电子票据号 of the payments, as the bank network returned them.
    #[serde(default)]
    pub receipts: Vec<String>,
    /// The refund of a denied case, once requested.
    #[serde(default)]
    pub refund: Option<Refund>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    pub refund_number: String,
    pub amount_fen: i64,
    /// The bank's transaction number, once paid back.
    pub refund_id: Option<String>,
}

impl CaseFee {
    pub fn paid_fen(&self) -> i64 {
        self.payments.iter().map(|(_, fen)| fen).sum()
    }

    pub fn is_paid(&self) -> bool {
        self.paid_fen() >= self.total_fen
    }

    /// Paid and not (yet) refunded: what a denial pays back.
    pub fn refundable_fen(&self) -> i64 {
        if self.refund.is_some() {
            0
        } else {
            self.paid_fen()
        }
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

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Approved => "approved",
            Outcome::Denied => "denied",
        }
    }

    /// A decision as its event records it; anything but an approval denies.
    pub fn of(decided: &CaseDecided) -> Outcome {
        if decided.outcome == Outcome::Approved.as_str() {
            Outcome::Approved
        } else {
            Outcome::Denied
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
// Commands are short-lived values handed to `decide`, never kept in bulk; a connector's fact is
// recorded by value.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Examine the materials against the matter's checklist: accept, tolerate, or ask for more.
    Examine,
    /// A clerk refuses to accept (不予受理).
    Refuse {
        officer: String,
        reason: String,
        legal_basis: String,
    },
    Supplement {
        materials: Vec<String>,
        received_by: String,
    },
    Route,
    StartProcedure {
        procedure: String,
        officer: String,
        departments: Vec<String>,
        parties: Vec<String>,
        /// A hearing's date (at least seven days after its notice).
        scheduled_date: Option<i32>,
    },
    /// Tell the applicant and interested parties of their right to a hearing (第四十七条).
    NotifyHearingRights {
        officer: String,
        parties: Vec<String>,
    },
    /// Extend the decision limit once, with the head's approval (第四十二条).
    Extend {
        officer: String,
        approved_by: String,
        reason: String,
    },
    /// The next step of the case done: a review step of its 审查细则, or 制证, 盖章, 出件.
    CompleteStep {
        step: String,
        officer: String,
        remarks: String,
    },
    /// An applicant's complaint at the counter: a material or condition demanded that the
    /// guide does not list (seed 001: a red card).
    Complain {
        officer: String,
        demanded: String,
    },
    /// A red card's supervision order to the handling unit.
    OrderSupervision {
        reason: String,
    },
    AnswerSupervision {
        order_number: String,
        officer: String,
        answer: String,
    },
    /// Record what became of materials owed past their commitment, so the file can close.
    CloseCommitment {
        officer: String,
        outcome: String,
    },
    CompleteProcedure {
        officer: String,
        summary: String,
    },
    GiveOpinion {
        department_code: String,
        officer: String,
        opinion: String,
        remarks: String,
    },
    Decide {
        outcome: Outcome,
        officer: String,
        department_code: String,
        reason: Option<String>,
    },
    RequestDelivery,
    HoldForPickup {
        method: DeliveryMethod,
        reason: String,
    },
    Collect {
        /// The clerk handing the result out (出件人); empty at a locker.
        handed_out_by: String,
        collected_by: String,
        /// The applicant's ID number, as presented.
        id_number: Option<String>,
        pickup_code: Option<String>,
        signature: String,
        /// The acceptance notice presented (受理通知书), at a window or a village station.
        notice_number: Option<String>,
        /// Someone other than the applicant collects: a (代)取件人, or an enterprise's agent.
        agent: Option<Agent>,
    },
    /// Record a fact a connector reported (order created, tracking, delivery outcome, certificate).
    Record(Event),
    RevokeCertificate {
        officer: String,
        reason: String,
    },
    Archive,
    /// Ask the seal service to sign the document `issued_by` added to the case file.
    SealDocument {
        issued_by: Event,
    },
    CheckDeadlines,
    Review {
        grade: i32,
        channel: String,
        comment: String,
        /// The counter visit reviewed on the applicant's screen.
        visit_id: Option<String>,
    },
    /// The supervisor's verification of a bad review (调查核实) and the answer to the applicant.
    VerifyReview {
        item_number: String,
        officer: String,
        finding: String,
        substantiated: bool,
        reply: String,
    },
    /// Tell the applicant by SMS what `cause_event_id` did.
    Text {
        cause_event_id: String,
        text: crate::sms::Text,
    },
    /// Pay back what a denied or withdrawn case paid.
    RequestRefund,
    /// The applicant's written withdrawal before the decision, taken at the counter.
    Withdraw {
        officer: String,
        reason: String,
    },
    OpenRectification {
        grade: i32,
    },
    CloseRectification {
        item_number: String,
        officer: String,
        feedback: String,
    },
}

/// A person collecting for the applicant: their own ID number (checked, not kept in the
/// event) and, for an enterprise, the 委托书.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    pub id_number: String,
    pub authorization_number: Option<String>,
}

impl Command {
    fn action(&self) -> &'static str {
        match self {
            Command::Examine => "examine the materials",
            Command::Refuse { .. } => "refuse acceptance",
            Command::Supplement { .. } => "supplement materials",
            Command::Route => "route",
            Command::StartProcedure { .. } => "start a special procedure",
            Command::NotifyHearingRights { .. } => "tell the hearing rights",
            Command::Extend { .. } => "extend the time limit",
            Command::CompleteStep { .. } => "complete a step",
            Command::Complain { .. } => "record a complaint",
            Command::OrderSupervision { .. } => "order supervision",
            Command::AnswerSupervision { .. } => "answer a supervision order",
            Command::CloseCommitment { .. } => "close the commitment",
            Command::CompleteProcedure { .. } => "complete a special procedure",
            Command::GiveOpinion { .. } => "give an opinion",
            Command::Decide { .. } => "decide",
            Command::RequestDelivery => "request delivery",
            Command::HoldForPickup { .. } => "hold the result for pickup",
            Command::Collect { .. } => "hand over the result",
            Command::Record(_) => "record a connector's fact",
            Command::RevokeCertificate { .. } => "revoke the certificate",
            Command::Archive => "archive",
            Command::SealDocument { .. } => "seal a document",
            Command::CheckDeadlines => "check deadlines",
            Command::Review { .. } => "review",
            Command::OpenRectification { .. } => "open a rectification",
            Command::CloseRectification { .. } => "close a rectification",
            Command::VerifyReview { .. } => "verify a review",
            Command::Text { .. } => "send a text message",
            Command::RequestRefund => "request a refund",
            Command::Withdraw { .. } => "withdraw the application",
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
    #[error("a review channel is counter, online, qr or sms")]
    BadChannel,
    #[error("the case was already reviewed online (one review per case online)")]
    AlreadyReviewed,
    #[error("this counter visit was already reviewed (one review per visit)")]
    VisitReviewed,
    #[error("a counter review is made on the applicant's screen for one visit (visit_id)")]
    VisitMissing,
    #[error("rectification item {0} is verified first (调查核实)")]
    NotVerified(String),
    #[error("rectification item {0} was already verified")]
    AlreadyVerified(String),
    #[error("text message {0} is not one this case sent, or not a review invitation")]
    NotOurText(String),
    #[error("nothing was paid on this case that is not refunded already")]
    NothingToRefund,
    #[error("the case file has no document issued by {0}")]
    NoSuchDocument(String),
    #[error("no open rectification item {0} on this case")]
    NoSuchRectification(String),
    #[error("the case has no valid certificate to revoke")]
    NoCertificate,
    #[error("certificate {given} is not the one issued for case {case}")]
    ForeignCertificate { case: String, given: String },
    #[error("fee order {given} is not the one of case {case}")]
    ForeignFeeOrder { case: String, given: String },
    #[error("{0} must be done first")]
    StepPending(String),
    #[error("unknown step {given}; the next step of this case is {next}")]
    WrongStep { given: String, next: String },
    #[error("the time limit was already extended once (第四十二条 allows one extension)")]
    AlreadyExtended,
    #[error("a hearing needs the hearing rights told first (听证权利告知书, 第四十七条)")]
    HearingRightsNotTold,
    #[error("the hearing request window closed on {0} (第四十七条: five days)")]
    HearingWindowClosed(String),
    #[error("a hearing is announced seven days ahead (第四十八条): not before {earliest}, and held by {latest}")]
    HearingDate { earliest: String, latest: String },
    #[error("{0} is in the matter's guide; a complaint is about what the guide does not ask")]
    InGuide(String),
    #[error("no open supervision order {0} on this case")]
    NoSuchSupervision(String),
    #[error("the acceptance notice {given} is not this case's ({expected})")]
    WrongNotice { given: String, expected: String },
    #[error("an enterprise's result is collected by its agent with a 委托书 (authorization_number)")]
    AuthorizationMissing,
    #[error("materials are still owed under the commitment ({0}); supply them or record the outcome first")]
    MaterialsOwed(String),
    #[error("nothing is owed past its commitment date on this case")]
    NoOverdueCommitment,
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

/// Who took materials in, as documents and the flow record name them: the clerk recorded, or,
/// for an application filed online, the hub's own examination.
pub fn clerk_named(received_by: &str) -> String {
    if received_by.is_empty() {
        "网上申请系统核验".into()
    } else {
        received_by.into()
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
            reviewed_visits: Vec::new(),
            texts: Vec::new(),
            documents: Vec::new(),
            timer_day: None,
            certificate: None,
            fee: None,
            received_by: application.received_by.clone(),
            decided_by: None,
            decided_day: None,
            acceptance_notice: None,
            steps: Vec::new(),
            extended: false,
            hearing_request_by: None,
            supervisions: Vec::new(),
            commitment_outcome: None,
            trips: 0,
            supplement_notices: 0,
        };
        evolve(case, &submitted)
    }

    pub fn order_number(&self) -> String {
        format!("{}-P1", self.case_number)
    }

    /// Number of the case's fee order; the case number is what comes before the suffix.
    pub fn fee_order_number(&self) -> String {
        format!("{}{}", self.case_number, contracts::FEE_ORDER_SUFFIX)
    }

    /// The clerk who took the materials in, for the documents they issue; an application filed
    /// online is examined by the hub itself.
    pub fn clerk(&self) -> String {
        clerk_named(&self.received_by)
    }

    /// The unit whose file the case is: the deciding authority, or, for a case never routed,
    /// the unit that took it in.
    pub fn file_unit(&self, reference: &Reference) -> Option<Authority> {
        match &self.department_code {
            Some(code) => reference.authority(code),
            None => reference.accepting_unit(&self.application.service_point.code),
        }
    }

    /// Serial part of the case number, which numbers the case's documents.
    pub fn serial(&self) -> &str {
        &self.case_number[self.case_number.len().saturating_sub(6)..]
    }

    /// How the applicant takes the result, as chosen at acceptance.
    pub fn delivery_method(&self) -> DeliveryMethod {
        DeliveryMethod::of(&self.application.delivery_method)
    }

    pub(crate) fn wrong_state(&self, command: &Command) -> Rejection {
        Rejection::WrongState { case: self.case_number.clone(), state: self.state, action: command.action() }
    }

    pub(crate) fn matter<'r>(&self, reference: &'r Reference) -> Result<&'r Matter, Rejection> {
        let matter = &self.application.matter;
        reference
            .matter_version(&matter.implementation_code, matter.version)
            .ok_or_else(|| Rejection::UnknownMatter(matter.implementation_code.clone()))
    }

    /// Materials are owed under a tolerant acceptance and no outcome was recorded for them.
    pub fn owes_materials(&self) -> bool {
        !self.outstanding_materials.is_empty() && self.commitment_outcome.is_none()
    }

    /// The authority handling the case, or the accepting point before routing.
    pub fn handler_code(&self) -> String {
        self.department_code.clone().unwrap_or_else(|| self.application.service_point.code.clone())
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

#[cfg(test)]
mod tests;
