//! The case state machine of a case's life in decider style:
//! `decide(case, command) -> events | rejection`, `evolve(case, event) -> case`, and
//! `reactions(case, event) -> commands`, the process manager that says what the hub does next.
use contracts::{
    ApplicationSubmitted, CaseAccepted, CaseArchived, CaseDecided, CaseRouted, DeliveryRequested, Event, PostalAddress,
};
use serde::{Deserialize, Serialize};

use super::calendar;
use super::routing;
use super::reference::Reference;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseState {
    Submitted,
    Accepted,
    Routed,
    Approved,
    Denied,
    DeliveryRequested,
    InTransit,
    Delivered,
    DeliveryFailed,
    Archived,
}

impl CaseState {
    pub const ALL: [CaseState; 10] = [
        CaseState::Submitted,
        CaseState::Accepted,
        CaseState::Routed,
        CaseState::Approved,
        CaseState::Denied,
        CaseState::DeliveryRequested,
        CaseState::InTransit,
        CaseState::Delivered,
        CaseState::DeliveryFailed,
        CaseState::Archived,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CaseState::Submitted => "submitted",
            CaseState::Accepted => "accepted",
            CaseState::Routed => "routed",
            CaseState::Approved => "approved",
            CaseState::Denied => "denied",
            CaseState::DeliveryRequested => "delivery_requested",
            CaseState::InTransit => "in_transit",
            CaseState::Delivered => "delivered",
            CaseState::DeliveryFailed => "delivery_failed",
            CaseState::Archived => "archived",
        }
    }

    pub fn parse(text: &str) -> Option<CaseState> {
        CaseState::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// A case in a final state never changes state again.
    pub fn is_final(self) -> bool {
        self == CaseState::Archived
    }
}

impl std::fmt::Display for CaseState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the hub knows of a case: the application as handed in, and what happened since.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    pub case_number: String,
    pub state: CaseState,
    /// Number of events in the case's history.
    pub seq: u32,
    pub application: ApplicationSubmitted,
    pub accepted_at: Option<i64>,
    pub promised_date: Option<i32>,
    pub department_code: Option<String>,
    pub department_name: Option<String>,
    pub decision: Option<String>,
    pub result_document: Option<String>,
    pub order_number: Option<String>,
    pub waybill_number: Option<String>,
    pub delivery_outcome: Option<String>,
    pub tracking_events: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Approved,
    Denied,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Accept,
    Route,
    Decide { outcome: Outcome, officer: String, department_code: String, reason: Option<String> },
    RequestDelivery,
    /// Record a fact a connector reported (order created, tracking, delivery outcome).
    Record(Event),
    Archive,
}

impl Command {
    fn action(&self) -> &'static str {
        match self {
            Command::Accept => "accept",
            Command::Route => "route",
            Command::Decide { .. } => "decide",
            Command::RequestDelivery => "request delivery",
            Command::Record(_) => "record a delivery fact",
            Command::Archive => "archive",
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
    #[error("the case chose {0} delivery; nothing to mail")]
    NoMailDelivery(String),
    #[error("order {given} does not belong to case {case} (its order is {expected})")]
    ForeignOrder { case: String, given: String, expected: String },
    #[error("{0} is not a fact a connector reports")]
    NotAFact(&'static str),
}

/// What a decision may look at besides the case: the time and the reference data.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub now: i64,
    pub reference: &'a Reference,
}

impl Case {
    /// A case as opened by its submission.
    pub fn open(application: &ApplicationSubmitted) -> Case {
        Case {
            case_number: application.case_number.clone(),
            state: CaseState::Submitted,
            seq: 1,
            application: application.clone(),
            accepted_at: None,
            promised_date: None,
            department_code: None,
            department_name: None,
            decision: None,
            result_document: None,
            order_number: None,
            waybill_number: None,
            delivery_outcome: None,
            tracking_events: 0,
        }
    }

    /// Id of the `n`-th event of this case (1-based), stable across retries.
    pub fn event_id(case_number: &str, n: u32) -> String {
        format!("{case_number}/{n}")
    }

    pub fn order_number(&self) -> String {
        format!("{}-P1", self.case_number)
    }

    fn wrong_state(&self, command: &Command) -> Rejection {
        Rejection::WrongState { case: self.case_number.clone(), state: self.state, action: command.action() }
    }
}

/// The case number an order number belongs to.
pub fn case_of_order(order_number: &str) -> Option<&str> {
    order_number.rsplit_once('-').map(|(case, _)| case)
}

pub fn decide(case: &Case, command: &Command, ctx: &Context<'_>) -> Result<Vec<Event>, Rejection> {
    let next_id = || Case::event_id(&case.case_number, case.seq + 1);
    let case_number = case.case_number.clone();
    let app = &case.application;
    let event: Event = match (case.state, command) {
        (CaseState::Submitted, Command::Accept) => {
            let matter = ctx
                .reference
                .matter_version(&app.matter.implementation_code, app.matter.version)
                .ok_or_else(|| Rejection::UnknownMatter(app.matter.implementation_code.clone()))?;
            let today = calendar::day_of(ctx.now);
            CaseAccepted {
                event_id: next_id(),
                case_number,
                occurred_at: ctx.now,
                case_version: app.case_version,
                accepted_by: app.service_point.code.clone(),
                matter_implementation_code: matter.implementation_code.clone(),
                matter_version: matter.version,
                promised_date: ctx.reference.calendar.add_working_days(today, matter.promised_days),
            }
            .into()
        }
        (CaseState::Accepted, Command::Route) => {
            let matter = ctx
                .reference
                .matter_version(&app.matter.implementation_code, app.matter.version)
                .ok_or_else(|| Rejection::UnknownMatter(app.matter.implementation_code.clone()))?;
            let point = ctx.reference.service_point(&app.service_point.code).ok_or_else(|| Rejection::Unroutable(format!("no service point {}", app.service_point.code)))?;
            let routing = routing::route(ctx.reference, matter, point, None).map_err(Rejection::Unroutable)?;
            CaseRouted {
                event_id: next_id(),
                case_number,
                occurred_at: ctx.now,
                department_code: routing.authority_code,
                department_name: routing.authority_name,
                rule: routing.rule,
                reason: routing.reason,
            }
            .into()
        }
        (CaseState::Routed, Command::Decide { outcome, officer, department_code, reason }) => {
            let competent = case.department_code.clone().unwrap_or_default();
            if *department_code != competent {
                return Err(Rejection::NotCompetent { department: department_code.clone(), competent });
            }
            if *outcome == Outcome::Denied && reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
                return Err(Rejection::MissingReason);
            }
            let year = calendar::iso_date(calendar::day_of(ctx.now))[..4].to_string();
            let serial = &case.case_number[case.case_number.len().saturating_sub(6)..];
            let document = match outcome {
                Outcome::Approved => format!("旬审许〔{year}〕{serial}号"),
                Outcome::Denied => format!("旬审不许〔{year}〕{serial}号"),
            };
            CaseDecided {
                event_id: next_id(),
                case_number,
                occurred_at: ctx.now,
                outcome: match outcome {
                    Outcome::Approved => "approved",
                    Outcome::Denied => "denied",
                }
                .into(),
                department_code: department_code.clone(),
                officer: officer.clone(),
                result_document: Some(document),
                reason: reason.clone(),
            }
            .into()
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
        (state, Command::Record(fact)) => {
            let order = match fact {
                Event::DeliveryOrderCreated(e) => &e.order_number,
                Event::TrackingEvent(e) => &e.order_number,
                Event::DeliveryCompleted(e) => &e.order_number,
                other => return Err(Rejection::NotAFact(other.kind())),
            };
            // Facts about the case's own order are always kept, even when they arrive late.
            let requested = matches!(
                state,
                CaseState::DeliveryRequested | CaseState::InTransit | CaseState::Delivered | CaseState::DeliveryFailed | CaseState::Archived
            );
            if !requested || case.order_number.is_none() {
                return Err(case.wrong_state(command));
            }
            let expected = case.order_number.clone().unwrap_or_default();
            if *order != expected {
                return Err(Rejection::ForeignOrder { case: case_number, given: order.clone(), expected });
            }
            fact.clone()
        }
        (CaseState::Denied | CaseState::Delivered | CaseState::DeliveryFailed, Command::Archive) => CaseArchived {
            event_id: next_id(),
            case_number,
            occurred_at: ctx.now,
            final_outcome: match case.state {
                CaseState::Denied => "denied".into(),
                _ => case.delivery_outcome.clone().unwrap_or_default(),
            },
            document_count: document_count(case),
        }
        .into(),
        _ => return Err(case.wrong_state(command)),
    };
    Ok(vec![event])
}

/// Documents in the case file: application form, acceptance notice, decision, delivery receipt.
fn document_count(case: &Case) -> i32 {
    let delivered = i32::from(case.delivery_outcome.is_some());
    3 + delivered
}

pub fn evolve(mut case: Case, event: &Event) -> Case {
    case.seq += 1;
    match event {
        Event::ApplicationSubmitted(_) => {}
        Event::CaseAccepted(e) => {
            case.state = CaseState::Accepted;
            case.accepted_at = Some(e.occurred_at);
            case.promised_date = Some(e.promised_date);
        }
        Event::CaseRouted(e) => {
            case.state = CaseState::Routed;
            case.department_code = Some(e.department_code.clone());
            case.department_name = Some(e.department_name.clone());
        }
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
        Event::CaseArchived(_) => case.state = CaseState::Archived,
    }
    case
}

/// Delivery facts may arrive out of order; the state only moves forward.
fn advance_to(case: &mut Case, state: CaseState) {
    let rank = |s: CaseState| CaseState::ALL.iter().position(|x| *x == s);
    if rank(state) > rank(case.state) {
        case.state = state;
    }
}

/// What the hub does next after `event` happened to `case` (already evolved).
pub fn reactions(case: &Case, event: &Event) -> Vec<Command> {
    match event {
        Event::ApplicationSubmitted(_) if case.state == CaseState::Submitted => vec![Command::Accept],
        Event::CaseAccepted(_) if case.state == CaseState::Accepted => vec![Command::Route],
        Event::CaseDecided(_) if case.state == CaseState::Approved && case.application.delivery_method == "mail" => {
            vec![Command::RequestDelivery]
        }
        Event::CaseDecided(_) if case.state == CaseState::Denied => vec![Command::Archive],
        Event::DeliveryCompleted(_) if matches!(case.state, CaseState::Delivered | CaseState::DeliveryFailed) => {
            vec![Command::Archive]
        }
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
    matches!(event, Event::DeliveryOrderCreated(_) | Event::TrackingEvent(_) | Event::DeliveryCompleted(_))
}

#[cfg(test)]
#[path = "case_tests.rs"]
mod tests;
