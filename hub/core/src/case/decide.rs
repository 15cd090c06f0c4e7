//! `decide(case, command) -> events | rejection`: one small function per command, each checking
//! the states it may run in and what it is given.
use contracts::{
    AcceptanceRefused, CaseAccepted, CaseArchived, CaseDecided, CaseRouted, CertificateRequested,
    CertificateRevocationRequested, DeliveryRequested, DocumentSealRequested, Event, FeeItem, FeeOrderRequested,
    MaterialProblem, MaterialsSupplemented, OpinionGiven, PostalAddress, ProcedureCompleted, ProcedureStarted,
    RectificationClosed, RectificationOpened, ResultCollected, ResultReadyForPickup, ReviewSubmitted,
    SupplementRequested,
};

use super::{pickup_code, Case, CaseCertificate, CaseState, Command, Context, Outcome, Rejection};
use crate::facts::DeliveryMethod;
use crate::reference::{CertificateSpec, Matter};
use crate::{calendar, deadlines, documents, ids, routing};

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
        Command::StartProcedure { procedure, officer, departments, parties } => {
            d.start_procedure(procedure, officer, departments, parties).map(one)
        }
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
        Command::Collect { handed_out_by, collected_by, id_number, pickup_code, signature } => {
            let presented =
                Presented { id_number: id_number.as_deref(), pickup_code: pickup_code.as_deref(), signature };
            d.collect(handed_out_by, collected_by, presented).map(one)
        }
        Command::Archive => d.archive().map(one),
        Command::SealDocument { issued_by } => Ok(d.seal_document(issued_by).into_iter().map(Event::from).collect()),
        Command::CheckDeadlines => Ok(deadlines::warnings(case, ctx)),
        Command::Review { grade, channel, comment } => d.review(*grade, channel, comment).map(one),
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
        if let Err(reason) = routed {
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
            statutory_date: Some(ctx.reference.calendar.add_working_days(today, matter.statutory_days)),
            acceptance: acceptance.into(),
            outstanding_materials: outstanding,
            commitment_date,
            notice_number: self.number("acceptance_notice"),
        };
        // A case accepted again after a supplement keeps the order it already has.
        let fee = fee_order(case, matter, &accepted, ctx).filter(|_| case.fee.is_none());
        Ok(std::iter::once(accepted.into()).chain(fee.map(Event::from)).collect())
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
    ) -> Result<ProcedureStarted, Rejection> {
        let ctx = self.ctx;
        self.expect(&[CaseState::Routed])?;
        let limits = &ctx.reference.county.policy.procedure_days;
        let limit = limits.get(procedure).ok_or_else(|| {
            Rejection::UnknownProcedure(procedure.into(), limits.keys().cloned().collect::<Vec<_>>().join(", "))
        })?;
        not_blank("officer", officer)?;
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
            limit_date: ctx.reference.calendar.add_working_days(ctx.today(), *limit),
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
    /// opinion and the fee is paid; an approval also asks for the certificate.
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
        let decided = CaseDecided {
            event_id: self.next_id(),
            case_number: self.case_number(),
            occurred_at: ctx.now,
            outcome: outcome.as_str().into(),
            department_code: department_code.into(),
            officer: officer.into(),
            result_document: Some(self.number(document_kind)),
            reason: reason.clone(),
        };
        let certificate = case.matter(ctx.reference)?.certificate.as_ref().filter(|_| outcome == Outcome::Approved);
        let requested = certificate.map(|spec| certificate_request(case, spec, &decided, ctx));
        Ok(std::iter::once(decided.into()).chain(requested.map(Event::from)).collect())
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
        let (place, code) = match method {
            DeliveryMethod::Locker => (
                ctx.reference.county.policy.locker_place.clone(),
                Some(pickup_code(&ctx.reference.pickup_secret, &case.case_number)),
            ),
            DeliveryMethod::Window | DeliveryMethod::Mail => {
                (format!("{}窗口", case.application.service_point.name), None)
            }
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

    /// The hand-over: with the locker's code, or at the window to the applicant, by ID number.
    fn collect(
        &self,
        handed_out_by: &str,
        collected_by: &str,
        presented: Presented,
    ) -> Result<ResultCollected, Rejection> {
        let Presented { id_number, pickup_code: given_code, signature } = presented;
        let case = self.case;
        self.expect(&[CaseState::AwaitingPickup])?;
        let pickup = case.pickup.as_ref().ok_or_else(|| case.wrong_state(self.command))?;
        let id_checked = match &pickup.code {
            Some(code) => {
                if given_code != Some(code.as_str()) {
                    return Err(Rejection::WrongPickupCode);
                }
                false
            }
            None => {
                if id_number != Some(case.application.applicant.id_number.as_str()) {
                    return Err(Rejection::IdentityMismatch);
                }
                not_blank("signature", signature)?;
                true
            }
        };
        not_blank("collected_by", collected_by)?;
        Ok(ResultCollected {
            event_id: self.next_id(),
            case_number: self.case_number(),
            occurred_at: self.ctx.now,
            method: pickup.method.clone(),
            collected_by: collected_by.into(),
            id_checked,
            signature: signature.into(),
            handed_out_by: handed_out_by.into(),
        })
    }

    /// Closes the file: numbered (档号) and kept (保管期限) as the county's archive policy says,
    /// handed to the archive by its unit's archivist.
    fn archive(&self) -> Result<CaseArchived, Rejection> {
        let (case, ctx) = (self.case, self.ctx);
        self.expect(&[CaseState::NotAccepted, CaseState::Denied, CaseState::Delivered, CaseState::Collected])?;
        let policy = &ctx.reference.county.policy.archive;
        let granted = !matches!(case.state, CaseState::NotAccepted | CaseState::Denied);
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

    /// The applicant's review: one per case online, one per visit at the counter.
    fn review(&self, grade: i32, channel: &str, comment: &str) -> Result<ReviewSubmitted, Rejection> {
        let case = self.case;
        if case.state == CaseState::Submitted {
            return Err(case.wrong_state(self.command));
        }
        if !(1..=5).contains(&grade) {
            return Err(Rejection::BadGrade);
        }
        match channel {
            "online" if case.online_reviewed => return Err(Rejection::AlreadyReviewed),
            "online" | "counter" => {}
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
        if !self.case.rectifications.iter().any(|r| r.item_number == item_number && !r.closed) {
            return Err(Rejection::NoSuchRectification(item_number.into()));
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

/// The fee order of a case accepted for a matter with fees, to be paid by the applicant.
fn fee_order(case: &Case, matter: &Matter, accepted: &CaseAccepted, ctx: &Context<'_>) -> Option<FeeOrderRequested> {
    (matter.fee_fen > 0).then(|| {
        let applicant = &case.application.applicant;
        FeeOrderRequested {
            event_id: ids::fee_order_requested(&accepted.event_id),
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
fn certificate_request(
    case: &Case,
    spec: &CertificateSpec,
    decided: &CaseDecided,
    ctx: &Context<'_>,
) -> CertificateRequested {
    let applicant = &case.application.applicant;
    let issuer = case.department_code.as_deref().and_then(|code| ctx.reference.authority(code));
    let issue_date = ctx.today();
    CertificateRequested {
        // The event after the decision.
        event_id: ids::case_event(&case.case_number, case.seq + 2),
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
