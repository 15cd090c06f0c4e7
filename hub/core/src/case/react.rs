//! What the hub does next by itself (`reactions`), and `handle`: decide → evolve → react, the
//! one loop every caller runs, for a command and for an event consumed from the bus.
use std::collections::VecDeque;

use contracts::Event;

use super::decide::decide;
use super::evolve::evolve;
use super::{Case, CaseState, Command, Context, Rejection};
use crate::deadlines::{self, Level};
use crate::facts::DeliveryMethod;
use crate::sms;

/// Grades of a bad review (dissatisfied, very dissatisfied): they open a rectification item.
pub const BAD_GRADES: std::ops::RangeInclusive<i32> = 1..=2;

/// What the hub does next after `event` happened to `case` (already evolved).
pub fn reactions(case: &Case, event: &Event) -> Vec<Command> {
    let delivery = case.delivery_method();
    match event {
        Event::ApplicationSubmitted(_) if case.state == CaseState::Submitted => vec![Command::Examine],
        Event::MaterialsSupplemented(_) if case.state == CaseState::AwaitingSupplement => vec![Command::Examine],
        Event::AcceptanceRefused(_) => vec![Command::Archive],
        Event::CaseAccepted(_) if case.state == CaseState::Accepted => vec![Command::Route],
        // 出件: the result leaves by the way the applicant chose at acceptance.
        Event::StepCompleted(e) if e.step == "dispatch" && delivery == DeliveryMethod::Mail => {
            vec![Command::RequestDelivery]
        }
        Event::StepCompleted(e) if e.step == "dispatch" => {
            vec![Command::HoldForPickup { method: delivery, reason: "申请人受理时选择的领取方式".into() }]
        }
        // A denied or withdrawn case pays back what it paid, and its file closes once the bank has.
        Event::CaseDecided(_) | Event::ApplicationWithdrawn(_) if ends_unpaid_back(case) => {
            vec![Command::RequestRefund]
        }
        Event::CaseDecided(_) | Event::ApplicationWithdrawn(_) | Event::RefundConfirmed(_)
            if matches!(case.state, CaseState::Denied | CaseState::Withdrawn) =>
        {
            vec![Command::Archive]
        }
        // A file closes once the result is out and nothing is owed (or what became of it is
        // recorded): supplying the last owed material, or recording its outcome, closes it too.
        Event::DeliveryCompleted(_)
        | Event::ResultCollected(_)
        | Event::MaterialsSupplemented(_)
        | Event::CommitmentClosed(_)
            if matches!(case.state, CaseState::Delivered | CaseState::Collected) && !case.owes_materials() =>
        {
            vec![Command::Archive]
        }
        Event::DeadlineWarning(e) if e.level == Level::Red.as_str() && e.scope != deadlines::SUPERVISION => {
            vec![Command::OrderSupervision { reason: e.message.clone() }]
        }
        Event::DeliveryCompleted(_) if case.state == CaseState::DeliveryFailed => {
            vec![Command::HoldForPickup {
                method: DeliveryMethod::Window,
                reason: "邮寄投递未成功，退回窗口领取".into(),
            }]
        }
        Event::ReviewSubmitted(e) if BAD_GRADES.contains(&e.grade) => {
            vec![Command::OpenRectification { grade: e.grade }]
        }
        // 短信评: a reply that holds a grade is the applicant's review of the case.
        Event::SmsReplyReceived(e) => sms::grade_of_reply(&e.text)
            .filter(|_| !case.online_reviewed)
            .map(|grade| Command::Review { grade, channel: "sms".into(), comment: e.text.clone(), visit_id: None })
            .into_iter()
            .collect(),
        _ => vec![],
    }
}

/// A case that ended without a grant (denied, withdrawn) and holds money not yet paid back.
fn ends_unpaid_back(case: &Case) -> bool {
    matches!(case.state, CaseState::Denied | CaseState::Withdrawn)
        && case.fee.as_ref().is_some_and(|fee| fee.refundable_fen() > 0)
}

/// Runs every reaction that `causes` call for, and the reactions to what those produce, until
/// the case rests. Reactions need no outside party, so they happen in the same transaction as
/// their cause. Returns the case and the events produced, in order.
pub fn react(mut case: Case, causes: Vec<Event>, ctx: &Context<'_>) -> Result<(Case, Vec<Event>), Rejection> {
    let mut pending: VecDeque<Event> = causes.into();
    let mut produced = Vec::new();
    while let Some(cause) = pending.pop_front() {
        // A document the cause added to the case file goes to the seal service, if there is one.
        let issued = ctx.reference.electronic_seals && case.documents.iter().any(|d| d.event_id == cause.event_id());
        let seal = issued.then(|| Command::SealDocument { issued_by: cause.clone() });
        // What the applicant is told by SMS.
        let text = sms::message_for(&case, &cause, ctx.reference)
            .map(|text| Command::Text { cause_event_id: cause.event_id().to_string(), text });
        for command in reactions(&case, &cause).into_iter().chain(seal).chain(text) {
            let (next, decided) = decide_and_evolve(case, &command, ctx)?;
            case = next;
            produced.extend(decided.iter().cloned());
            pending.extend(decided);
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
            | Event::DocumentSealed(_)
            | Event::RefundConfirmed(_)
            | Event::SmsSent(_)
            | Event::SmsReplyReceived(_)
    )
}

/// What handling a command or a consumed event did: the case after it, the events the command
/// decided (or the fact recorded), and the events the hub's reactions produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Handled {
    pub case: Case,
    pub decided: Vec<Event>,
    pub reactions: Vec<Event>,
}

/// Decide → evolve → react: `command` on `case`, and everything the hub does next by itself.
pub fn handle(case: Case, command: &Command, ctx: &Context<'_>) -> Result<Handled, Rejection> {
    let (decided_case, decided) = decide_and_evolve(case, command, ctx)?;
    let (case, reactions) = react(decided_case, decided.clone(), ctx)?;
    Ok(Handled { case, decided, reactions })
}

/// An event consumed from the bus: a connector's fact is recorded (and reacted to); the hub's
/// own events, decided elsewhere, are only reacted to.
pub fn handle_event(case: Case, event: &Event, ctx: &Context<'_>) -> Result<Handled, Rejection> {
    if is_external_fact(event) {
        return handle(case, &Command::Record(event.clone()), ctx);
    }
    let (case, reactions) = react(case, vec![event.clone()], ctx)?;
    Ok(Handled { case, decided: Vec::new(), reactions })
}

/// The events `command` decides, and the case after them.
fn decide_and_evolve(case: Case, command: &Command, ctx: &Context<'_>) -> Result<(Case, Vec<Event>), Rejection> {
    let decided = decide(&case, command, ctx)?;
    let case = decided.iter().fold(case, evolve);
    Ok((case, decided))
}
