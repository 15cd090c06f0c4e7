//! `evolve(case, event) -> case`: what each event does to the case. Never fails: an event
//! happened.
use contracts::Event;

use super::{
    Case, CaseCertificate, CaseFee, CaseState, OpenProcedure, Opinion, Outcome, Pickup, Rectification, Refund,
    SentText, StepDone, Supervision,
};
use crate::documents::ElectronicSeal;
use crate::facts::DeliveryOutcome;
use crate::{calendar, deadlines, documents};

/// The case after `event`.
pub fn evolve(mut case: Case, event: &Event) -> Case {
    case.seq += 1;
    if let Some(document) = documents::issued_by(&case, event) {
        case.documents.push(document);
    }
    match event {
        Event::ApplicationSubmitted(e) => case.trips = u32::from(e.channel != "online"),
        Event::SupplementRequested(_) => {
            case.state = CaseState::AwaitingSupplement;
            case.supplement_notices += 1;
        }
        Event::MaterialsSupplemented(e) => {
            case.trips += 1;
            case.version = e.case_version;
            case.received_by = e.received_by.clone();
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
            case.acceptance_notice = Some(e.notice_number.clone());
        }
        Event::CaseRouted(e) => {
            case.state = CaseState::Routed;
            case.department_code = Some(e.department_code.clone());
            case.department_name = Some(e.department_name.clone());
            case.opinions_required = e.consulted_departments.clone();
        }
        Event::ProcedureStarted(e) => {
            case.state = CaseState::Suspended;
            case.procedure = Some(OpenProcedure {
                procedure: e.procedure.clone(),
                started_day: calendar::day_of(e.occurred_at),
                limit_date: e.limit_date,
            });
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
            case.state = match Outcome::of(e) {
                Outcome::Approved => CaseState::Approved,
                Outcome::Denied => CaseState::Denied,
            };
            case.decision = Some(e.outcome.clone());
            case.decided_by = Some(e.officer.clone());
            case.decided_day = Some(calendar::day_of(e.occurred_at));
            case.result_document = e.result_document.clone();
        }
        Event::StepCompleted(e) => case.steps.push(StepDone {
            step: e.step.clone(),
            title: e.title.clone(),
            officer: e.officer.clone(),
            day: calendar::day_of(e.occurred_at),
        }),
        Event::ExtensionGranted(e) => {
            case.extended = true;
            case.statutory_date = Some(e.statutory_date);
            case.promised_date = Some(e.promised_date);
        }
        Event::HearingRightsNotified(e) => case.hearing_request_by = Some(e.request_by),
        Event::SupervisionOrdered(e) => case.supervisions.push(Supervision {
            order_number: e.order_number.clone(),
            department_code: e.department_code.clone(),
            answer_by: e.answer_by,
            answered: false,
        }),
        Event::SupervisionAnswered(e) => {
            case.supervisions.iter_mut().filter(|s| s.order_number == e.order_number).for_each(|s| s.answered = true)
        }
        Event::CommitmentClosed(e) => case.commitment_outcome = Some(e.outcome.clone()),
        // The 承诺书 is filed; what it promises the acceptance already recorded.
        Event::CommitmentSigned(_) => {}
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
            let state = match DeliveryOutcome::of(e) {
                DeliveryOutcome::Signed => CaseState::Delivered,
                DeliveryOutcome::Failed => CaseState::DeliveryFailed,
            };
            advance_to(&mut case, state);
        }
        Event::ResultReadyForPickup(e) => {
            case.state = CaseState::AwaitingPickup;
            case.pickup =
                Some(Pickup { method: e.method.clone(), place: e.place.clone(), code: e.pickup_code.clone() });
        }
        Event::ResultCollected(e) => {
            case.state = CaseState::Collected;
            // Collected from a person at a window or station, not from a locker.
            case.trips += u32::from(!e.handed_out_by.is_empty());
        }
        Event::CaseArchived(_) => case.state = CaseState::Archived,
        Event::ApplicationWithdrawn(_) => case.state = CaseState::Withdrawn,
        Event::DeadlineWarning(e) => case.warnings.push(deadlines::key(e)),
        Event::ReviewSubmitted(e) => {
            case.online_reviewed |= e.channel != "counter";
            case.reviewed_visits.extend(e.visit_id.clone());
            case.reviews.push(e.grade);
        }
        Event::RectificationOpened(e) => case.rectifications.push(Rectification {
            item_number: e.item_number.clone(),
            deadline: e.deadline,
            closed: false,
            substantiated: None,
        }),
        // An unfounded complaint needs no rectification: its item closes with the answer.
        Event::ReviewVerified(e) => {
            case.rectifications.iter_mut().filter(|r| r.item_number == e.item_number).for_each(|r| {
                r.substantiated = Some(e.substantiated);
                r.closed |= !e.substantiated;
            })
        }
        Event::SmsRequested(e) => {
            case.texts.push(SentText { message_id: e.event_id.clone(), template: e.template.clone(), taken: false })
        }
        Event::SmsSent(e) => {
            case.texts.iter_mut().filter(|t| t.message_id == e.message_id).for_each(|t| t.taken = true)
        }
        // The reply is recorded; the review it carries is its reaction.
        Event::SmsReplyReceived(_) => {}
        Event::RectificationClosed(e) => {
            case.rectifications.iter_mut().filter(|r| r.item_number == e.item_number).for_each(|r| r.closed = true)
        }
        Event::CertificateRequested(e) => {
            case.certificate = Some(CaseCertificate {
                name: e.certificate_name.clone(),
                certificate_id: None,
                status: "requested".into(),
            })
        }
        Event::CertificateIssued(e) => {
            if let Some(certificate) = &mut case.certificate {
                certificate.certificate_id = Some(e.certificate_id.clone());
                // A late issue report never undoes a revocation already asked for.
                if certificate.status == "requested" {
                    certificate.status = e.status.clone();
                }
            }
        }
        Event::DocumentSealed(e) => {
            let signed = ElectronicSeal {
                seal_name: e.seal_name.clone(),
                key_id: e.key_id.clone(),
                signature: e.signature.clone(),
                document_sha256: e.document_sha256.clone(),
                signed_at: e.signed_at,
            };
            case.documents.iter_mut().filter(|d| d.event_id == e.document_event_id).for_each(|d| {
                d.electronic_seal.get_or_insert_with(|| signed.clone());
            })
        }
        Event::CertificateRevocationRequested(_) => {
            case.certificate.iter_mut().for_each(|c| c.status = "revocation_requested".into())
        }
        Event::FeeOrderRequested(e) => {
            case.fee = Some(CaseFee {
                order_number: e.order_number.clone(),
                total_fen: e.total_fen,
                payment_code: None,
                payments: Vec::new(),
                relief: e.relief.clone(),
                items: e.items.clone(),
                receipts: Vec::new(),
                refund: None,
            })
        }
        Event::FeeOrderCreated(e) => {
            case.fee.iter_mut().for_each(|fee| fee.payment_code = Some(e.payment_code.clone()))
        }
        Event::PaymentConfirmed(e) => case.fee.iter_mut().for_each(|fee| {
            fee.payments.push((e.payment_id.clone(), e.amount_fen));
            fee.receipts.extend(e.receipt_number.clone());
        }),
        Event::RefundRequested(e) => case.fee.iter_mut().for_each(|fee| {
            fee.refund =
                Some(Refund { refund_number: e.refund_number.clone(), amount_fen: e.amount_fen, refund_id: None })
        }),
        Event::RefundConfirmed(e) => {
            case.fee
                .iter_mut()
                .filter_map(|fee| fee.refund.as_mut())
                .for_each(|r| r.refund_id = Some(e.refund_id.clone()));
            case.fee.iter_mut().for_each(|fee| fee.receipts.extend(e.receipt_number.clone()));
        }
        Event::CertificateRevoked(_) => case.certificate.iter_mut().for_each(|c| c.status = "revoked".into()),
        // The document is signed when the seal service answers.
        Event::DocumentSealRequested(_) => {}
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
