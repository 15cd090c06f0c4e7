//! `decide(case, command) -> events | rejection`: one small function per command, each checking
//! the states it may run in and what it is given.
use contracts::{
    AcceptanceRefused, ApplicationWithdrawn, CaseAccepted, CaseArchived, CaseDecided, CaseRouted, CertificateRequested,
    CertificateRevocationRequested, CommitmentClosed, CommitmentSigned, DeadlineWarning, DeliveryRequested,
    DocumentSealRequested, Event, ExtensionGranted, FeeOrderRequested, FeeRelief, HearingRightsNotified,
    MaterialProblem, MaterialsSupplemented, OpinionGiven, PostalAddress, ProcedureCompleted, ProcedureStarted,
    RectificationClosed, RectificationOpened, RefundRequested, ResultCollected, ResultReadyForPickup, ReviewSubmitted,
    ReviewVerified, SmsRequested, StepCompleted, SupervisionAnswered, SupervisionOrdered, SupplementRequested,
};

use super::{pickup_code, Agent, Case, CaseCertificate, CaseState, Command, Context, Outcome, Rejection};
use crate::facts::DeliveryMethod;
use crate::reference::{CertificateSpec, Matter};
use crate::{calendar, deadlines, documents, ids, routing, steps};

/// Working days between a hearing rights notice and the end of its request window (第四十七条).
pub const HEARING_REQUEST_DAYS: u32 = 5;
/// Working days a hearing is announced ahead (第四十八条).
pub const HEARING_NOTICE_DAYS: u32 = 7;

/// Legal basis of a refusal for want of competence (行政许可法 第三十二条第一款第（二）项).
pub const NOT_COMPETENT_BASIS: &str = "《中华人民共和国行政许可法》第三十二条第一款第（二）项";

/// What `command` decides for `case` now, or why it is refused.
pub fn decide(case: &Case, command: &Command, ctx: &Context<'_>) -> Result<Vec<Event>, Rejection> {
    let d = Decider { case, command, ctx };
    match command {
        Command::Examine => d.examine(),
        Command::Refuse { officer, reason, legal_basis } => d.refuse(officer, reason, legal_basis).map(one),
        Command::Supplement { materials, received_by } => d.supplement(materials, received_by).map(one),
        Command::Route => d.route().map(one),
        Command::StartProcedure { procedure, officer, departments, parties, scheduled_date } => {
            d.start_procedure(procedure, officer, departments, parties, *scheduled_date).map(one)
        }
        Command::NotifyHearingRights { officer, parties } => d.notify_hearing_rights(officer, parties).map(one),
        Command::Extend { officer, approved_by, reason } => d.extend(officer, approved_by, reason).map(one),
        Command::CompleteStep { step, officer, remarks } => d.complete_step(step, officer, remarks),
        Command::Complain { officer, demanded } => d.complain(officer, demanded).map(one),
        Command::OrderSupervision { reason } => Ok(d.order_supervision(reason).into_iter().map(Event::from).collect()),
        Command::AnswerSupervision { order_number, officer, answer } => {
            d.answer_supervision(order_number, officer, answer).map(one)
        }
        Command::CloseCommitment { officer, outcome } => d.close_commitment(officer, outcome).map(one),
        Command::CompleteProcedure { officer, summary } => d.complete_procedure(officer, summary).map(one),
        Command::GiveOpinion { department_code, officer, opinion, remarks } => {
            d.give_opinion(department_code, officer, opinion, remarks).map(one)
        }
        Command::Decide { outcome, officer, department_code, reason } => {
            d.decide(*outcome, officer, department_code, reason)
        }
        Command::RevokeCertificate { officer, reason } => d.revoke_certificate(officer, reason).map(one),
        Command::Record(fact) => d.record(fact).map(one),
        Command::RequestDelivery => d.request_delivery().map(one),
        Command::HoldForPickup { method, reason } => d.hold_for_pickup(*method, reason).map(one),
        Command::Collect { handed_out_by, collected_by, id_number, pickup_code, signature, notice_number, agent } => {
            let presented = Presented {
                id_number: id_number.as_deref(),
                pickup_code: pickup_code.as_deref(),
                signature,
                notice_number: notice_number.as_deref(),
                agent: agent.as_ref(),
            };
            d.collect(handed_out_by, collected_by, presented).map(one)
        }
        Command::Archive => d.archive().map(one),
        Command::SealDocument { issued_by } => Ok(d.seal_document(issued_by).into_iter().map(Event::from).collect()),
        Command::CheckDeadlines => Ok(deadlines::warnings(case, ctx)),
        Command::Review { grade, channel, comment, visit_id } => {
            d.review(*grade, channel, comment, visit_id.as_deref()).map(one)
        }
        Command::VerifyReview { item_number, officer, finding, substantiated, reply } => {
            d.verify_review(item_number, officer, finding, *substantiated, reply).map(one)
        }
        Command::Text { cause_event_id, text } => Ok(one(d.text(cause_event_id, text))),
        Command::RequestRefund => d.request_refund().map(one),
        Command::Withdraw { officer, reason } => d.withdraw(officer, reason).map(one),
        Command::OpenRectification { grade } => Ok(vec![d.open_rectification(*grade)]),
        Command::CloseRectification { item_number, officer, feedback } => {
            d.close_rectification(item_number, officer, feedback).map(one)
        }
    }
}

fn one(event: impl Into<Event>) -> Vec<Event> {
    vec![event.into()]
}

fn not_blank(field: &'static str, value: &str) -> Result<(), Rejection> {
    if value.trim().is_empty() {
        Err(Rejection::Blank(field))
    } else {
        Ok(())
    }
}

/// A decision in the making: the case, the command, the time and the reference data.
struct Decider<'a, 'r> {
    case: &'a Case,
    command: &'a Command,
    ctx: &'a Context<'r>,
}

impl Decider<'_, '_> {
    /// Id of the next event of the case.
    fn next_id(&self) -> String {
        ids::case_event(&self.case.case_number, self.case.seq + 1)
    }

    /// The number of a document of `kind` issued today.
    fn number(&self, kind: &str) -> String {
        documents::number(self.ctx.reference, self.case, kind, self.ctx.today())
    }

    fn case_number(&self) -> String {
        self.case.case_number.clone()
    }

    /// Refused unless the case is in one of `states`.
    fn expect(&self, states: &[CaseState]) -> Result<(), Rejection> {
        if states.contains(&self.case.state) {
            Ok(())
        } else {
            Err(self.case.wrong_state(self.command))
        }
    }

    /// Acceptance: refused when the point may not take the matter, the one-time notice when
    /// materials are missing or faulty, otherwise accepted (fully or tolerantly) with its fee
    /// order.
    fn examine(&self) -> Result<Vec<Event>, Rejection> {
        let (case, ctx) = (self.case, self.ctx);
        self.expect(&[CaseState::Submitted, CaseState::AwaitingSupplement])?;
        let app = &case.application;
        let matter = case.matter(ctx.reference)?;
        let point = ctx.reference.service_point(&app.service_point.code);
        let routed = point
            .ok_or_else(|| format!("no service point {}", app.service_point.code))
            .and_then(|point| routing::route(ctx.reference, matter, point, app.domicile_township.as_deref()));
        let routing = match routed {
            Ok(routing) => routing,
            Err(reason) => {
                let refused = AcceptanceRefused {
                    event_id: self.next_id(),
                    case_number: self.case_number(),
                    occurred_at: ctx.now,
                    case_version: case.version,
                    officer: case.clerk(),
                    reason,
                    legal_basis: NOT_COMPETENT_BASIS.into(),
                    notice_number: self.number("refusal"),
                };
                return Ok(one(refused));
            }
        };
        let today = ctx.today();
        let (acceptance, outstanding, commitment_date) = match examine(
            matter,
            &case.materials,
            &case.faulty,
            app.commits_to_supply,
            ctx.reference.county.policy.commitment_days,
        ) {
            Examination::Incomplete(items) => {
                let notice = SupplementRequested {
                    event_id: self.next_id(),
                    case_number: self.case_number(),
                    occurred_at: ctx.now,
                    case_version: case.version,
                    officer: case.clerk(),
                    notice_number: self.number("one_time_notice"),
                    items,
                };
                return Ok(one(notice));
            }
            Examination::Complete => ("standard", Vec::new(), None),
            Examination::Tolerant(owed, days) => {
                ("tolerant", owed, Some(ctx.reference.calendar.add_working_days(today, days)))
            }
        };
        let accepted = CaseAccepted {
            event_id: self.next_id(),
            case_number: self.case_number(),
            occurred_at: ctx.now,
            case_version: case.version,
            accepted_by: app.service_point.code.clone(),
            matter_implementation_code: matter.implementation_code.clone(),
            matter_version: matter.version,
            promised_date: ctx.reference.calendar.add_working_days(today, matter.promised_days),
            statutory_date: Some(ctx.reference.calendar.add_working_days(today, statutory_days(matter, &routing))),
            acceptance: acceptance.into(),
            outstanding_materials: outstanding,
            commitment_date,
            notice_number: self.number("acceptance_notice"),
        };
        // A case accepted again after a supplement keeps the order it already has.
        let fee = fee_order(case, matter, &accepted, ctx).filter(|_| case.fee.is_none());
        // A tolerant acceptance files the applicant's signed commitment (承诺书).
        let commitment = accepted.commitment_date.map(|commitment_date| CommitmentSigned {
            event_id: ids::commitment_signed(&accepted.event_id),
            case_number: self.case_number(),
            occurred_at: ctx.now,
            materials: accepted.outstanding_materials.clone(),
            commitment_date,
            notice_number: self.number("commitment"),
        });
        Ok(std::iter::once(accepted.into()).chain(fee.map(Event::from)).chain(commitment.map(Event::from)).collect())
    }

    fn refuse(&self, officer: &str, reason: &str, legal_basis: &str) -> Result<AcceptanceRefused, Rejection> {
        self.expect(&[CaseState::Submitted, CaseState::AwaitingSupplement])?;
        not_blank("reason", reason)?;
        not_blank("legal_basis", legal_basis)?;
        Ok(AcceptanceRefused {
            event_id: self.next_id(),
            case_number: self.case_number(),
            occurred_at: self.ctx.now,
            case_version: self.case.version,
            officer: officer.into(),
            reason: reason.into(),
            legal_basis: legal_basis.into(),
            notice_number: self.number("refusal"),
        })
    }

    /// Materials supplied: awaited after a one-time notice, or owed under a tolerant acceptance.
    fn supplement(&self, materials: &[String], received_by: &str) -> Result<MaterialsSupplemented, Rejection> {
        let case = self.case;
        if case.state.is_final() || case.state == CaseState::NotAccepted {
            return Err(case.wrong_state(self.command));
        }
        if case.state != CaseState::AwaitingSupplement && case.outstanding_materials.is_empty() {
            return Err(Rejection::NothingToSupplement);
        }
        let matter = case.matter(self.ctx.reference)?;
        if let Some(unknown) = materials.iter().find(|name| !matter.materials.iter().any(|m| &m.name == *name)) {
            return Err(Rejection::UnknownMaterial(unknown.clone()));
        }
        Ok(MaterialsSupplemented {
            event_id: self.next_id(),
            case_number: self.case_number(),
            occurred_at: self.ctx.now,
            case_version: case.version + 1,
            materials: materials.to_vec(),
            received_by: received_by.into(),
        })
    }

    fn route(&self) -> Result<CaseRouted, Rejection> {
        let (case, ctx) = (self.case, self.ctx);
        self.expect(&[CaseState::Accepted])?;
        let app = &case.application;
        let matter = case.matter(ctx.reference)?;
        let point = ctx
            .reference
            .service_point(&app.service_point.code)
            .ok_or_else(|| Rejection::Unroutable(format!("no service point {}", app.service_point.code)))?;
        let routing = routing::route(ctx.reference, matter, point, app.domicile_township.as_deref())
            .map_err(Rejection::Unroutable)?;
        Ok(CaseRouted {
            event_id: self.next_id(),
            case_number: self.case_number(),
            occurred_at: ctx.now,
            department_code: routing.authority_code,
            department_name: routing.authority_name,
            rule: routing.rule,
            reason: routing.reason,
            consulted_departments: matter.co_departments.iter().chain(&routing.consulted).cloned().collect(),
        })
    }

    fn start_procedure(
        &self,
        procedure: &str,
        officer: &str,
        departments: &[String],
        parties: &[String],
        scheduled_date: Option<i32>,
    ) -> Result<ProcedureStarted, Rejection> {
        let ctx = self.ctx;
        self.expect(&[CaseState::Routed])?;
        let limits = &ctx.reference.county.policy.procedure_days;
        let limit = limits.get(procedure).ok_or_else(|| {
            Rejection::UnknownProcedure(procedure.into(), limits.keys().cloned().collect::<Vec<_>>().join(", "))
        })?;
        not_blank("officer", officer)?;
        let today = ctx.today();
        let limit_date = ctx.reference.calendar.add_working_days(today, *limit);
        let scheduled_date = if procedure == "hearing" {
            // Held on a request made within the window the rights notice opened, announced
            // seven days ahead, within the hearing's own limit (第四十七、四十八条).
            let request_by = self.case.hearing_request_by.ok_or(Rejection::HearingRightsNotTold)?;
            if today > request_by {
                return Err(Rejection::HearingWindowClosed(calendar::iso_date(request_by)));
            }
            let earliest = ctx.reference.calendar.add_working_days(today, HEARING_NOTICE_DAYS);
            match scheduled_date {
                Some(date) if (earliest..=limit_date).contains(&date) => Some(date),
                _ => {
                    return Err(Rejection::HearingDate {
                        earliest: calendar::iso_date(earliest),
                        latest: calendar::iso_date(limit_date),
                    })
                }
            }
        } else {
            None
        };
        let departments = if departments.is_empty() { vec![self.case.handler_code()] } else { departments.to_vec() };
        Ok(ProcedureStarted {
            event_id: self.next_id(),
            case_number: self.case_number(),
            occurred_at: ctx.now,
            procedure: procedure.into(),
            officer: officer.into(),
            departments,
            parties: parties.to_vec(),
            notice_number: self.number(procedure),
            limit_date,
            scheduled_date,
        })
    }

    /// The hearing rights notice to the applicant and the interested parties, opening the
    /// five-day window to ask for a hearing.
    fn notify_hearing_rights(&self, officer: &str, parties: &[String]) -> Result<HearingRightsNotified, Rejection> {
        let ctx = self.ctx;
        self.expect(&[CaseState::Routed])?;
        not_blank("officer", officer)?;
        Ok(HearingRightsNotified {
            event_id: self.next_id(),
            case_number: self.case_number(),
            occurred_at: ctx.now,
            officer: officer.into(),
            parties: parties.to_vec(),
            request_by: ctx.reference.calendar.add_working_days(ctx.today(), HEARING_REQUEST_DAYS),
            notice_number: self.number("hearing_rights"),
        })
    }

    /// One extension of the decision limit, approved by the head of the organ, with the reason
    /// the applicant is told in the 延期告知书.
    fn extend(&self, officer: &str, approved_by: &str, reason: &str) -> Result<ExtensionGranted, Rejection> {
        let (case, ctx) = (self.case, self.ctx);
        self.expect(&[CaseState::Routed, CaseState::Suspended])?;
        if case.extended {
            return Err(Rejection::AlreadyExtended);
        }
        not_blank("approved_by", approved_by)?;
        not_blank("reason", reason)?;
        let joint = case.matter(ctx.reference)?.joint() || !case.opinions_required.is_empty();
        let days = steps::extension_days(joint);
        let calendar = &ctx.reference.calendar;
        let today = ctx.today();
        let statutory = case.statutory_date.unwrap_or(today);
        Ok(ExtensionGranted {
            event_id: self.next_id(),
            case_number: self.case_number(),
            occurred_at: ctx.now,
            officer: officer.into(),
            approved_by: approved_by.into(),
            reason: reason.into(),
            extra_days: days as i32,
            statutory_date: calendar.add_working_days(statutory, days),
            promised_date: calendar.add_working_days(case.promised_date.unwrap_or(today), days),
            notice_number: self.number("extension"),
        })
    }

    /// The step the case waits on, done: a review step while routed; 制证 (which asks the
    /// repository for the electronic certificate), 盖章 (under the result's seal) or 出件 once
    /// approved. Steps go in order; the limit each had is kept with it.
    fn complete_step(&self, step: &str, officer: &str, remarks: &str) -> Result<Vec<Event>, Rejection> {
        let (case, ctx) = (self.case, self.ctx);
        self.expect(&[CaseState::Routed, CaseState::Approved])?;
        not_blank("officer", officer)?;
        let Some(next) = steps::next_step(case, ctx.reference) else {
            return Err(case.wrong_state(self.command));
        };
        if next.step != step {
            return Err(Rejection::WrongStep { given: step.into(), next: format!("{} ({})", next.step, next.title) });
        }
        let seal_name = (step == "seal").then(|| documents::result_seal(case, ctx.reference)).flatten();
        let done = StepCompleted {
            event_id: self.next_id(),
            case_number: self.case_number(),
            occurred_at: ctx.now,
            step: step.into(),
            title: next.title,
            officer: officer.into(),
            remarks: remarks.into(),
            seal_name,
            due_date: next.due_date,
        };
        let certificate = match step {
            "make" => case.matter(ctx.reference)?.certificate.as_ref(),
            _ => None,
        };
        let requested = certificate.map(|spec| certificate_request(case, spec, ctx));
        Ok(std::iter::once(done.into()).chain(requested.map(Event::from)).collect())
    }

    /// A complaint that the counter demanded something outside the guide: a red card for the
    /// unit (seed 001), refused when the guide does ask for it.
    fn complain(&self, officer: &str, demanded: &str) -> Result<DeadlineWarning, Rejection> {
        let (case, ctx) = (self.case, self.ctx);
        if case.state.is_final() {
            return Err(case.wrong_state(self.command));
        }
        not_blank("demanded", demanded)?;
        let matter = case.matter(ctx.reference)?;
        if matter.materials.iter().any(|m| m.name == demanded.trim()) {
            return Err(Rejection::InGuide(demanded.trim().into()));
        }
        let today = ctx.today();
        Ok(DeadlineWarning {
            event_id: self.next_id(),
            case_number: self.case_number(),
            occurred_at: ctx.now,
            level: deadlines::Level::Red.as_str().into(),
            scope: deadlines::OUTSIDE_GUIDE.into(),
            step: Some(demanded.trim().into()),
            due_date: today,
            department_code: case.handler_code(),
            escalate: true,
            message: format!(
                "办件 {}（{}）：申请人反映被要求提交办事指南以外的材料或条件「{}」（{} 记录），红牌",
                case.case_number,
                matter.name,
                demanded.trim(),
                officer
            ),
        })
    }

    /// A red card's supervision order to the unit handling the case, unless one is still
    /// open (one order at a time; its answer or its escalation follows).
    fn order_supervision(&self, reason: &str) -> Option<SupervisionOrdered> {
        let (case, ctx) = (self.case, self.ctx);
        if case.supervisions.iter().any(|s| !s.answered) {
            return None;
        }
        let policy = &ctx.reference.county.policy;
        Some(SupervisionOrdered {
            event_id: self.next_id(),
            case_number: self.case_number(),
            occurred_at: ctx.now,
            order_number: format!(
                "{}-{}",
                self.number("supervision_order").trim_end_matches('号'),
                case.supervisions.len() + 1
            ) + "号",
            department_code: case.handler_code(),
            card: deadlines::Level::Red.as_str().into(),
            reason: reason.into(),
            answer_by: ctx.reference.calendar.add_working_days(ctx.today(), policy.supervision_answer_days),
        })
    }

    fn answer_supervision(
        &self,
        order_number: &str,
        officer: &str,
        answer: &str,
    ) -> Result<SupervisionAnswered, Rejection> {
        if !self.case.supervisions.iter().any(|s| s.order_number == order_number && !s.answered) {
            return Err(Rejection::NoSuchSupervision(order_number.into()));
        }
        not_blank("answer", answer)?;
        Ok(SupervisionAnswered {
            event_id: self.next_id(),
            case_number: self.case_number(),
            occurred_at: self.ctx.now,
            order_number: order_number.into(),
            officer: officer.into(),
            answer: answer.into(),
        })
    }

    /// What became of materials owed past their commitment date.
    fn close_commitment(&self, officer: &str, outcome: &str) -> Result<CommitmentClosed, Rejection> {
        let (case, ctx) = (self.case, self.ctx);
        let overdue = case.commitment_date.is_some_and(|date| ctx.today() > date);
        if !case.owes_materials() || !overdue {
            return Err(Rejection::NoOverdueCommitment);
        }
        not_blank("outcome", outcome)?;
        Ok(CommitmentClosed {
            event_id: self.next_id(),
            case_number: self.case_number(),
            occurred_at: ctx.now,
            officer: officer.into(),
            materials: case.outstanding_materials.clone(),
            outcome: outcome.into(),
        })
    }

    /// The procedure's record; the time limits move on by the working days it took.
    fn complete_procedure(&self, officer: &str, summary: &str) -> Result<ProcedureCompleted, Rejection> {
        let (case, ctx) = (self.case, self.ctx);
        self.expect(&[CaseState::Suspended])?;
        not_blank("summary", summary)?;
        let open = case.procedure.as_ref().ok_or_else(|| case.wrong_state(self.command))?;
        let today = ctx.today();
        let took = ctx.reference.calendar.working_days_between(open.started_day, today).max(0);
        // Each clock stands still only for what its rule leaves out: the county's policy for
        // the promised one, the licensing law's list for the statutory one.
        let paused = if ctx.reference.county.policy.promised_clock_pauses.contains(&open.procedure) { took } else { 0 };
        let statutory_paused = if deadlines::stops_statutory_clock(&open.procedure) { took } else { 0 };
        let promised = case.promised_date.unwrap_or(today);
        Ok(ProcedureCompleted {
            event_id: self.next_id(),
            case_number: self.case_number(),
            occurred_at: ctx.now,
            procedure: open.procedure.clone(),
            officer: officer.into(),
            record_number: self.number(&format!("{}_record", open.procedure)),
            summary: summary.into(),
            paused_working_days: paused,
            promised_date: ctx.reference.calendar.add_working_days(promised, paused as u32),
            statutory_date: case
                .statutory_date
                .map(|date| ctx.reference.calendar.add_working_days(date, statutory_paused as u32)),
        })
    }

    fn give_opinion(
        &self,
        department_code: &str,
        officer: &str,
        opinion: &str,
        remarks: &str,
    ) -> Result<OpinionGiven, Rejection> {
        let case = self.case;
        self.expect(&[CaseState::Routed, CaseState::Suspended])?;
        let pending = case.opinions_required.iter().any(|d| d == department_code)
            && !case.opinions.iter().any(|o| o.department_code == department_code);
        if !pending {
            return Err(Rejection::NotConsulted(department_code.into()));
        }
        if !["agree", "disagree"].contains(&opinion) {
            return Err(Rejection::BadOpinion);
        }
        if opinion == "disagree" {
            not_blank("remarks", remarks)?;
        }
        Ok(OpinionGiven {
            event_id: self.next_id(),
            case_number: self.case_number(),
            occurred_at: self.ctx.now,
            department_code: department_code.into(),
            officer: officer.into(),
            opinion: opinion.into(),
            remarks: remarks.into(),
        })
    }

    /// The competent department's decision, once every consulted department has given its
    /// opinion, every review step of the matter's 审查细则 is done and the fee is paid.
    fn decide(
        &self,
        outcome: Outcome,
        officer: &str,
        department_code: &str,
        reason: &Option<String>,
    ) -> Result<Vec<Event>, Rejection> {
        let (case, ctx) = (self.case, self.ctx);
        self.expect(&[CaseState::Routed])?;
        let competent = case.department_code.clone().unwrap_or_default();
        if department_code != competent {
            return Err(Rejection::NotCompetent { department: department_code.into(), competent });
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
        let review: Vec<&str> = steps::review_pending(case, ctx.reference).map(|s| s.title.as_str()).collect();
        if !review.is_empty() {
            return Err(Rejection::StepPending(review.join("、")));
        }
        if outcome == Outcome::Denied && reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
            return Err(Rejection::MissingReason);
        }
        if let Some(fee) = case.fee.as_ref().filter(|fee| outcome == Outcome::Approved && !fee.is_paid()) {
            return Err(Rejection::FeeUnpaid {
                order: fee.order_number.clone(),
                total_fen: fee.total_fen,
                paid_fen: fee.paid_fen(),
            });
        }
        let document_kind = match outcome {
            Outcome::Approved => "approval",
            Outcome::Denied => "denial",
        };
        Ok(one(CaseDecided {
            event_id: self.next_id(),
            case_number: self.case_number(),
            occurred_at: ctx.now,
            outcome: outcome.as_str().into(),
            department_code: department_code.into(),
            officer: officer.into(),
            result_document: Some(self.number(document_kind)),
            reason: reason.clone(),
        }))
    }

    fn revoke_certificate(&self, officer: &str, reason: &str) -> Result<CertificateRevocationRequested, Rejection> {
        let (case, ctx) = (self.case, self.ctx);
        let certificate_id = match &case.certificate {
            Some(CaseCertificate { certificate_id: Some(id), status, .. }) if status == "valid" => id.clone(),
            _ => return Err(Rejection::NoCertificate),
        };
        if case.state.rank() < CaseState::Approved.rank() {
            return Err(case.wrong_state(self.command));
        }
        not_blank("reason", reason)?;
        not_blank("officer", officer)?;
        Ok(CertificateRevocationRequested {
            event_id: self.next_id(),
            case_number: self.case_number(),
            occurred_at: ctx.now,
            certificate_id,
            reason: reason.into(),
            department_code: case.department_code.clone().unwrap_or_default(),
            officer: officer.into(),
            data_subject: contracts::data_subject(&ctx.reference.subject_key, &case.application.applicant.id_number),
        })
    }

    /// A connector's fact, kept when it is about this case's own certificate, fee order or
    /// delivery order.
    fn record(&self, fact: &Event) -> Result<Event, Rejection> {
        let case = self.case;
        let foreign_certificate =
            |given: &str| Rejection::ForeignCertificate { case: self.case_number(), given: given.into() };
        match fact {
            Event::CertificateIssued(issued) if case.certificate.is_none() => {
                Err(foreign_certificate(&issued.certificate_id))
            }
            Event::CertificateRevoked(revoked)
                if case.certificate.as_ref().and_then(|c| c.certificate_id.as_ref())
                    != Some(&revoked.certificate_id) =>
            {
                Err(foreign_certificate(&revoked.certificate_id))
            }
            Event::CertificateIssued(_) | Event::CertificateRevoked(_) => Ok(fact.clone()),
            Event::DocumentSealed(sealed) if case.documents.iter().any(|d| d.event_id == sealed.document_event_id) => {
                Ok(fact.clone())
            }
            Event::DocumentSealed(sealed) => Err(Rejection::NoSuchDocument(sealed.document_event_id.clone())),
            Event::FeeOrderCreated(_) | Event::PaymentConfirmed(_) => {
                let order = match fact {
                    Event::FeeOrderCreated(e) => &e.order_number,
                    Event::PaymentConfirmed(e) => &e.order_number,
                    _ => unreachable!("matched above"),
                };
                if case.fee.as_ref().map(|fee| &fee.order_number) != Some(order) {
                    return Err(Rejection::ForeignFeeOrder { case: self.case_number(), given: order.clone() });
                }
                Ok(fact.clone())
            }
            Event::RefundConfirmed(e) => match case.fee.as_ref().and_then(|fee| fee.refund.as_ref()) {
                Some(refund) if refund.refund_number == e.refund_number => Ok(fact.clone()),
                _ => Err(Rejection::ForeignFeeOrder { case: self.case_number(), given: e.refund_number.clone() }),
            },
            Event::SmsSent(e) if case.texts.iter().any(|t| t.message_id == e.message_id) => Ok(fact.clone()),
            Event::SmsReplyReceived(e)
                if case
                    .texts
                    .iter()
                    .any(|t| t.message_id == e.message_id && t.template == crate::sms::REVIEW_INVITATION) =>
            {
                Ok(fact.clone())
            }
            Event::SmsSent(contracts::SmsSent { message_id, .. })
            | Event::SmsReplyReceived(contracts::SmsReplyReceived { message_id, .. }) => {
                Err(Rejection::NotOurText(message_id.clone()))
            }
            Event::DeliveryOrderCreated(_) | Event::TrackingEvent(_) | Event::DeliveryCompleted(_) => {
                let order = match fact {
                    Event::DeliveryOrderCreated(e) => &e.order_number,
                    Event::TrackingEvent(e) => &e.order_number,
                    Event::DeliveryCompleted(e) => &e.order_number,
                    _ => unreachable!("matched above"),
                };
                // Facts about the case's own order are always kept, even when they arrive late.
                if case.state.rank() < CaseState::DeliveryRequested.rank() || case.order_number.is_none() {
                    return Err(case.wrong_state(self.command));
                }
                let expected = case.order_number.clone().unwrap_or_default();
                if *order != expected {
                    return Err(Rejection::ForeignOrder { case: self.case_number(), given: order.clone(), expected });
                }
                Ok(fact.clone())
            }
            other => Err(Rejection::NotAFact(other.kind())),
        }
    }

    /// The delivery order to the post, from the deciding department to the applicant's address.
    fn request_delivery(&self) -> Result<DeliveryRequested, Rejection> {
        let (case, ctx) = (self.case, self.ctx);
        self.expect(&[CaseState::Approved])?;
        let app = &case.application;
        let receiver = match (case.delivery_method(), &app.delivery_address) {
            (DeliveryMethod::Mail, Some(address)) => address.clone(),
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
        Ok(DeliveryRequested {
            data_subject: contracts::data_subject(&ctx.reference.subject_key, &app.applicant.id_number),
            event_id: self.next_id(),
            case_number: self.case_number(),
            occurred_at: ctx.now,
            order_number: case.order_number(),
            product: "standard-express-documents".into(),
            contents: "documents".into(),
            sender,
            receiver,
            return_receipt: true,
        })
    }

    /// The result waits at the accepting point's window, or in the locker with a code.
    fn hold_for_pickup(&self, method: DeliveryMethod, reason: &str) -> Result<ResultReadyForPickup, Rejection> {
        let (case, ctx) = (self.case, self.ctx);
        self.expect(&[CaseState::Approved, CaseState::DeliveryFailed])?;
        let point = &case.application.service_point;
        let (place, code) = match method {
            DeliveryMethod::Locker => (
                ctx.reference.locker_for(&point.code).place.clone(),
                Some(pickup_code(&ctx.reference.pickup_secret, &case.case_number)),
            ),
            DeliveryMethod::Station => (point.name.clone(), None),
            DeliveryMethod::Window | DeliveryMethod::Mail => (format!("{}窗口", point.name), None),
        };
        Ok(ResultReadyForPickup {
            event_id: self.next_id(),
            case_number: self.case_number(),
            occurred_at: ctx.now,
            method: method.as_str().into(),
            place,
            pickup_code: code,
            reason: reason.into(),
        })
    }

    /// The hand-over: with the locker's code; or at a window or village station against the
    /// acceptance notice and the applicant's ID, to the applicant, to a (代)取件人 showing their
    /// own ID too, or to an enterprise's agent with its 委托书.
    fn collect(
        &self,
        handed_out_by: &str,
        collected_by: &str,
        presented: Presented,
    ) -> Result<ResultCollected, Rejection> {
        let Presented { id_number, pickup_code: given_code, signature, notice_number, agent } = presented;
        let case = self.case;
        self.expect(&[CaseState::AwaitingPickup])?;
        let pickup = case.pickup.as_ref().ok_or_else(|| case.wrong_state(self.command))?;
        not_blank("collected_by", collected_by)?;
        let at_locker = pickup.code.is_some();
        if let Some(code) = &pickup.code {
            if given_code != Some(code.as_str()) {
                return Err(Rejection::WrongPickupCode);
            }
        } else {
            let expected = case.acceptance_notice.clone().unwrap_or_default();
            match notice_number {
                Some(given) if given.trim() == expected => {}
                given => return Err(Rejection::WrongNotice { given: given.unwrap_or_default().into(), expected }),
            }
            if id_number != Some(case.application.applicant.id_number.as_str()) {
                return Err(Rejection::IdentityMismatch);
            }
            not_blank("signature", signature)?;
            let enterprise = case.application.applicant.id_type == ENTERPRISE_ID_TYPE;
            match agent {
                Some(agent) => {
                    not_blank("agent.id_number", &agent.id_number)?;
                    if enterprise && agent.authorization_number.as_deref().is_none_or(|a| a.trim().is_empty()) {
                        return Err(Rejection::AuthorizationMissing);
                    }
                }
                // An enterprise never collects in person: someone collects for it.
                None if enterprise => return Err(Rejection::AuthorizationMissing),
                None => {}
            }
        }
        Ok(ResultCollected {
            event_id: self.next_id(),
            case_number: self.case_number(),
            occurred_at: self.ctx.now,
            method: pickup.method.clone(),
            collected_by: collected_by.into(),
            id_checked: !at_locker,
            signature: signature.into(),
            handed_out_by: handed_out_by.into(),
            agent: agent.is_some() && !at_locker,
            authorization_number: agent.and_then(|a| a.authorization_number.clone()).filter(|_| !at_locker),
            notice_number: notice_number.filter(|_| !at_locker).unwrap_or_default().trim().into(),
        })
    }

    /// Closes the file: numbered (档号) and kept (保管期限) as the county's archive policy says,
    /// handed to the archive by its unit's archivist.
    fn archive(&self) -> Result<CaseArchived, Rejection> {
        let (case, ctx) = (self.case, self.ctx);
        self.expect(&[
            CaseState::NotAccepted,
            CaseState::Denied,
            CaseState::Withdrawn,
            CaseState::Delivered,
            CaseState::Collected,
        ])?;
        if case.owes_materials() {
            return Err(Rejection::MaterialsOwed(case.outstanding_materials.join("、")));
        }
        let policy = &ctx.reference.county.policy.archive;
        let granted = !matches!(case.state, CaseState::NotAccepted | CaseState::Denied | CaseState::Withdrawn);
        // A kind of matter the policy does not list yet is kept for good rather than too briefly.
        let retention = match case.matter(ctx.reference) {
            Ok(matter) if granted => policy.retention.get(&matter.kind).map_or("Y", String::as_str),
            _ => &policy.retention_not_granted,
        };
        let unit = case.file_unit(ctx.reference);
        let (unit_code, archive_code, archivist) =
            unit.map(|unit| (unit.code, unit.records.archive_code, unit.records.archivist)).unwrap_or_default();
        let year = &calendar::iso_date(ctx.today())[..4];
        // The item number is the case's acceptance date (month, day) and serial: unique in the year.
        let item = &case.case_number[case.case_number.len().saturating_sub(10)..];
        Ok(CaseArchived {
            event_id: self.next_id(),
            case_number: self.case_number(),
            occurred_at: ctx.now,
            final_outcome: match case.state {
                CaseState::NotAccepted => "not_accepted".into(),
                CaseState::Denied => "denied".into(),
                CaseState::Withdrawn => "withdrawn".into(),
                CaseState::Collected => "collected".into(),
                _ => case.delivery_outcome.clone().unwrap_or_default(),
            },
            // The archive index itself is the last document of the file.
            document_count: case.documents.len() as i32 + 1,
            file_number: format!("{}-WS·{year}-{retention}-{archive_code}-{item}", policy.fonds),
            retention: retention.into(),
            archivist,
            unit_code,
        })
    }

    /// The request to seal the document `issued_by` added, with the digest the seal service
    /// signs; none for a document that is not sealed (the applicant's own papers).
    fn seal_document(&self, issued_by: &Event) -> Option<DocumentSealRequested> {
        let (case, ctx) = (self.case, self.ctx);
        let doc = case.documents.iter().find(|d| d.event_id == issued_by.event_id())?;
        let (unit, seal_name) = documents::issuer(case, &doc.kind, issued_by, ctx.reference);
        Some(DocumentSealRequested {
            event_id: self.next_id(),
            case_number: self.case_number(),
            occurred_at: ctx.now,
            document_event_id: doc.event_id.clone(),
            document_kind: doc.kind.clone(),
            document_number: doc.number.clone(),
            unit,
            seal_name: seal_name?,
            document_sha256: documents::sealed_digest(case, doc, issued_by, ctx.reference),
        })
    }

    /// The applicant's review: one per case online (the signed link, its QR code, or a reply
    /// to the SMS invitation), one per visit at the counter on the applicant's own screen.
    fn review(
        &self,
        grade: i32,
        channel: &str,
        comment: &str,
        visit_id: Option<&str>,
    ) -> Result<ReviewSubmitted, Rejection> {
        let case = self.case;
        if case.state == CaseState::Submitted {
            return Err(case.wrong_state(self.command));
        }
        if !(1..=5).contains(&grade) {
            return Err(Rejection::BadGrade);
        }
        match (channel, visit_id) {
            ("online" | "qr" | "sms", _) if case.online_reviewed => return Err(Rejection::AlreadyReviewed),
            ("online" | "qr" | "sms", _) => {}
            ("counter", None) => return Err(Rejection::VisitMissing),
            ("counter", Some(visit)) if case.reviewed_visits.iter().any(|v| v == visit) => {
                return Err(Rejection::VisitReviewed)
            }
            ("counter", Some(_)) => {}
            _ => return Err(Rejection::BadChannel),
        }
        Ok(ReviewSubmitted {
            event_id: self.next_id(),
            case_number: self.case_number(),
            occurred_at: self.ctx.now,
            grade,
            channel: channel.into(),
            comment: comment.into(),
            service_point: case.application.service_point.code.clone(),
            department_code: case.department_code.clone(),
            visit_id: visit_id.filter(|_| channel == "counter").map(String::from),
        })
    }

    /// The supervisor's verification of a bad review: what was found, and the answer the
    /// applicant gets. An unfounded complaint closes its item; a founded one is rectified.
    fn verify_review(
        &self,
        item_number: &str,
        officer: &str,
        finding: &str,
        substantiated: bool,
        reply: &str,
    ) -> Result<ReviewVerified, Rejection> {
        let item = self
            .case
            .rectifications
            .iter()
            .find(|r| r.item_number == item_number && !r.closed)
            .ok_or_else(|| Rejection::NoSuchRectification(item_number.into()))?;
        if item.substantiated.is_some() {
            return Err(Rejection::AlreadyVerified(item_number.into()));
        }
        not_blank("officer", officer)?;
        not_blank("finding", finding)?;
        not_blank("reply", reply)?;
        Ok(ReviewVerified {
            event_id: self.next_id(),
            case_number: self.case_number(),
            occurred_at: self.ctx.now,
            item_number: item_number.into(),
            officer: officer.into(),
            finding: finding.into(),
            substantiated,
            reply: reply.into(),
        })
    }

    /// A text message to the applicant about what `cause_event_id` did; its id comes from
    /// the cause, so the gateway sees the same message id however often it is retried.
    fn text(&self, cause_event_id: &str, text: &crate::sms::Text) -> Event {
        SmsRequested {
            event_id: ids::sms_requested(cause_event_id),
            case_number: self.case_number(),
            occurred_at: self.ctx.now,
            phone: self.case.application.applicant.phone.clone(),
            template: text.template.clone(),
            version: text.version,
            params: text.params.clone(),
        }
        .into()
    }

    /// The applicant withdraws in writing before the decision: handling ends (and what was paid
    /// is refunded, see `react`).
    fn withdraw(&self, officer: &str, reason: &str) -> Result<ApplicationWithdrawn, Rejection> {
        self.expect(&[CaseState::AwaitingSupplement, CaseState::Accepted, CaseState::Routed, CaseState::Suspended])?;
        not_blank("reason", reason)?;
        Ok(ApplicationWithdrawn {
            event_id: self.next_id(),
            case_number: self.case_number(),
            occurred_at: self.ctx.now,
            officer: officer.into(),
            reason: reason.into(),
            notice_number: self.number("withdrawal"),
        })
    }

    /// A denied or withdrawn case pays back what it paid, through the bank that collected it.
    fn request_refund(&self) -> Result<RefundRequested, Rejection> {
        self.expect(&[CaseState::Denied, CaseState::Withdrawn])?;
        let reason = match self.case.state {
            CaseState::Withdrawn => "申请人撤回申请，已缴费用原路退还",
            _ => "不予行政许可，已缴费用原路退还",
        };
        let fee = self.case.fee.as_ref().filter(|fee| fee.refundable_fen() > 0).ok_or(Rejection::NothingToRefund)?;
        Ok(RefundRequested {
            event_id: self.next_id(),
            case_number: self.case_number(),
            occurred_at: self.ctx.now,
            refund_number: format!("{}{}", self.case.case_number, contracts::REFUND_SUFFIX),
            order_number: fee.order_number.clone(),
            amount_fen: fee.refundable_fen(),
            reason: reason.into(),
            department_code: self.case.handler_code(),
        })
    }

    /// A bad review's rectification item, with its deadline.
    fn open_rectification(&self, grade: i32) -> Event {
        let (case, ctx) = (self.case, self.ctx);
        let policy = &ctx.reference.county.policy;
        RectificationOpened {
            event_id: self.next_id(),
            item_number: format!("{}-Z{}", case.case_number, case.rectifications.len() + 1),
            case_number: self.case_number(),
            occurred_at: ctx.now,
            grade,
            deadline: ctx.reference.calendar.add_working_days(ctx.today(), policy.rectification_days),
            department_code: case.handler_code(),
        }
        .into()
    }

    fn close_rectification(
        &self,
        item_number: &str,
        officer: &str,
        feedback: &str,
    ) -> Result<RectificationClosed, Rejection> {
        let Some(item) = self.case.rectifications.iter().find(|r| r.item_number == item_number && !r.closed) else {
            return Err(Rejection::NoSuchRectification(item_number.into()));
        };
        if item.substantiated.is_none() {
            return Err(Rejection::NotVerified(item_number.into()));
        }
        not_blank("feedback", feedback)?;
        Ok(RectificationClosed {
            event_id: self.next_id(),
            case_number: self.case_number(),
            occurred_at: self.ctx.now,
            item_number: item_number.into(),
            officer: officer.into(),
            feedback: feedback.into(),
        })
    }
}

/// What the person collecting a result shows: the applicant's ID number and signature at a
/// window, or the pickup code at a locker.
struct Presented<'a> {
    id_number: Option<&'a str>,
    pickup_code: Option<&'a str>,
    signature: &'a str,
    notice_number: Option<&'a str>,
    agent: Option<&'a Agent>,
}

/// 证件类型 of a unified social credit code: the applicant is an enterprise or organisation.
const ENTERPRISE_ID_TYPE: &str = "001";

/// The statutory limit of a case: the matter's, or 45 days where a matter under the general
/// 20-day limit is handled jointly (第四十二条第二款).
pub(super) fn statutory_days(matter: &Matter, routing: &routing::Routing) -> u32 {
    let joint = matter.joint() || !routing.consulted.is_empty();
    if joint && matter.statutory_days == steps::GENERAL_LIMIT_DAYS {
        steps::JOINT_LIMIT_DAYS
    } else {
        matter.statutory_days
    }
}

/// The outcome of examining the materials at acceptance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Examination {
    Complete,
    /// Primary materials complete; these secondary ones owed under the applicant's commitment,
    /// for so many working days.
    Tolerant(Vec<String>, u32),
    /// Every missing or faulty material, for the one-time notice.
    Incomplete(Vec<MaterialProblem>),
}

/// Checks the materials in hand against the checklist (DOMAIN.md, acceptance outcomes).
pub fn examine(
    matter: &Matter,
    materials: &[String],
    faulty: &[MaterialProblem],
    commits_to_supply: bool,
    default_days: u32,
) -> Examination {
    let missing = |primary: bool| -> Vec<String> {
        matter
            .materials
            .iter()
            .filter(|m| m.primary == primary && !materials.contains(&m.name))
            .map(|m| m.name.clone())
            .collect()
    };
    let (missing_primary, missing_secondary) = (missing(true), missing(false));
    if missing_primary.is_empty() && faulty.is_empty() {
        if missing_secondary.is_empty() {
            return Examination::Complete;
        }
        // Tolerated only when the matter lets every missing one be owed; the shortest period wins.
        let periods: Option<Vec<u32>> =
            missing_secondary.iter().map(|material| matter.tolerated(material, default_days)).collect();
        if let (true, Some(days)) = (commits_to_supply, periods.and_then(|p| p.into_iter().min())) {
            return Examination::Tolerant(missing_secondary, days);
        }
    }
    let absent = missing_primary
        .into_iter()
        .chain(missing_secondary)
        .map(|material| MaterialProblem { material, problem: "未提交".into() });
    Examination::Incomplete(absent.chain(faulty.iter().cloned()).collect())
}

/// The fee order of a case accepted for a matter with fees: every item with its basis, less
/// the waiver or reduction the applicant claimed under a county rule (a claim of a rule the
/// county does not list was refused at the counter).
fn fee_order(case: &Case, matter: &Matter, accepted: &CaseAccepted, ctx: &Context<'_>) -> Option<FeeOrderRequested> {
    (!matter.fees.is_empty()).then(|| {
        let applicant = &case.application.applicant;
        let due: i64 = matter.fees.iter().map(|item| item.amount_fen).sum();
        let relief = case.application.fee_relief.as_ref().and_then(|claim| {
            let rule = ctx.reference.county.policy.fee_relief.iter().find(|r| r.rule == claim.rule)?;
            let payable: i64 =
                matter.fees.iter().map(|item| item.amount_fen * i64::from(rule.payable_percent) / 100).sum();
            Some(FeeRelief {
                rule: rule.rule.clone(),
                name: rule.name.clone(),
                basis: rule.basis.clone(),
                proof_number: claim.proof_number.clone(),
                relieved_fen: due - payable,
            })
        });
        FeeOrderRequested {
            event_id: ids::fee_order_requested(&accepted.event_id),
            case_number: case.case_number.clone(),
            occurred_at: accepted.occurred_at,
            order_number: case.fee_order_number(),
            payer_name: applicant.name.clone(),
            data_subject: contracts::data_subject(&ctx.reference.subject_key, &applicant.id_number),
            department_code: matter.department.clone(),
            items: matter.fees.clone(),
            total_fen: due - relief.as_ref().map_or(0, |r| r.relieved_fen),
            relief,
        }
    })
}

/// The certificate an approval asks the repository to issue, for the applicant.
fn certificate_request(case: &Case, spec: &CertificateSpec, ctx: &Context<'_>) -> CertificateRequested {
    let applicant = &case.application.applicant;
    let issuer = case.department_code.as_deref().and_then(|code| ctx.reference.authority(code));
    let issue_date = ctx.today();
    CertificateRequested {
        // The event after the step that made it (制证).
        event_id: ids::case_event(&case.case_number, case.seq + 2),
        case_number: case.case_number.clone(),
        occurred_at: ctx.now,
        type_code: spec.type_code.clone(),
        certificate_name: spec.name.clone(),
        number: case.result_document.clone().unwrap_or_default(),
        holder_name: applicant.name.clone(),
        holder_code: applicant.id_number.clone(),
        holder_code_kind: applicant.id_type.clone(),
        data_subject: contracts::data_subject(&ctx.reference.subject_key, &applicant.id_number),
        issuer: issuer.as_ref().map_or_else(|| ctx.reference.county.approval_bureau.clone(), |a| a.name.clone()),
        issuer_code: case.handler_code(),
        issue_date,
        valid_until: (spec.valid_years > 0).then(|| calendar::validity_end(issue_date, spec.valid_years)),
        // 行政区划代码: the six-digit county code, without the twelve-digit division's zeros.
        area_code: ctx.reference.county.code.chars().take(6).collect(),
    }
}
