use contracts::{Applicant, DeliveryCompleted, DeliveryOrderCreated, MatterRef, ServicePoint, TrackingEvent};

use super::*;

// 2026-11-20 10:00 Beijing time, a Friday.
const NOW: i64 = 1_795_140_000_000;

fn application(reference: &Reference) -> ApplicationSubmitted {
    let matter = reference.matter("11610429MB2912345A4000104010000").unwrap();
    ApplicationSubmitted {
        event_id: "61042920261120000001/1".into(),
        case_number: "61042920261120000001".into(),
        occurred_at: NOW,
        case_version: 1,
        channel: "counter".into(),
        matter: MatterRef {
            basic_code: matter.basic_code.clone(),
            implementation_code: matter.implementation_code.clone(),
            name: matter.name.clone(),
            version: matter.version,
        },
        applicant: Applicant {
            name: "张三".into(),
            id_type: "111".into(),
            id_number: "11010519491231002X".into(),
            phone: "13912345678".into(),
        },
        service_point: ServicePoint {
            code: "610429100201".into(),
            name: "土桥1村便民服务站".into(),
            tier: "village".into(),
            division_code: "610429100201".into(),
        },
        materials: matter.materials.iter().map(|m| m.name.clone()).collect(),
        delivery_method: "mail".into(),
        delivery_address: Some(PostalAddress {
            name: "张三".into(),
            phone: "13912345678".into(),
            province: "陕西省".into(),
            city: "咸阳市".into(),
            county: "旬邑县".into(),
            address: "土桥镇土桥1村3组12号".into(),
            post_code: "711300".into(),
        }),
    }
}

/// Applies a command and everything the hub does in reaction, as the hub's services do.
fn run(case: Case, command: Command, reference: &Reference) -> (Case, Vec<Event>) {
    let ctx = Context { now: NOW, reference };
    let events = decide(&case, &command, &ctx).unwrap_or_else(|r| panic!("{command:?} rejected: {r}"));
    let decided = events.iter().fold(case, evolve);
    let (case, reactions) = react(decided, events.clone(), &ctx).unwrap_or_else(|r| panic!("a reaction was rejected: {r}"));
    (case, events.into_iter().chain(reactions).collect())
}

fn kinds(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(Event::kind).collect()
}

fn approve(case: &Case) -> Command {
    Command::Decide {
        outcome: Outcome::Approved,
        officer: "王审批".into(),
        department_code: case.department_code.clone().unwrap(),
        reason: None,
    }
}

fn fact_order(case: &Case) -> Event {
    DeliveryOrderCreated {
        event_id: "o1".into(),
        case_number: case.case_number.clone(),
        occurred_at: NOW,
        order_number: case.order_number(),
        waybill_number: "1180000000001".into(),
    }
    .into()
}

fn fact_signed(case: &Case) -> Event {
    DeliveryCompleted {
        event_id: "d1".into(),
        case_number: case.case_number.clone(),
        occurred_at: NOW,
        order_number: case.order_number(),
        waybill_number: "1180000000001".into(),
        outcome: "signed".into(),
        signed_by: Some("张三".into()),
    }
    .into()
}

fn to_routed(reference: &Reference) -> Case {
    let app = application(reference);
    let case = Case::open(&app);
    let (case, events) = run(case, Command::Accept, reference);
    assert_eq!(kinds(&events), ["CaseAccepted", "CaseRouted"]);
    case
}

#[test]
fn a_mailed_case_goes_from_village_station_to_archive() {
    let reference = Reference::builtin();
    let case = to_routed(&reference);
    assert_eq!(case.state, CaseState::Routed);
    assert_eq!(case.department_code.as_deref(), Some("11610429MB2912345A"));

    let (case, events) = run(case.clone(), approve(&case), &reference);
    assert_eq!(kinds(&events), ["CaseDecided", "DeliveryRequested"]);
    assert_eq!(case.state, CaseState::DeliveryRequested);
    let Event::DeliveryRequested(request) = &events[1] else { unreachable!() };
    assert_eq!(request.receiver.address, "土桥镇土桥1村3组12号");
    assert_eq!(request.sender.name, "旬邑县行政审批服务局");
    assert!(request.return_receipt);

    let (case, _) = run(case.clone(), Command::Record(fact_order(&case)), &reference);
    assert_eq!(case.state, CaseState::InTransit);
    let (case, events) = run(case.clone(), Command::Record(fact_signed(&case)), &reference);
    assert_eq!(kinds(&events), ["DeliveryCompleted", "CaseArchived"]);
    assert_eq!(case.state, CaseState::Archived);
    assert!(case.state.is_final());
    let Event::CaseArchived(archived) = &events[1] else { unreachable!() };
    assert_eq!(archived.final_outcome, "signed");
    assert_eq!(case.seq, 8);
}

#[test]
fn event_ids_follow_the_case_history() {
    let reference = Reference::builtin();
    let case = Case::open(&application(&reference));
    let (_, events) = run(case, Command::Accept, &reference);
    let ids: Vec<&str> = events.iter().map(Event::event_id).collect();
    assert_eq!(ids, ["61042920261120000001/2", "61042920261120000001/3"]);
}

#[test]
fn the_promised_date_counts_working_days() {
    let reference = Reference::builtin();
    let case = Case::open(&application(&reference));
    let (case, _) = run(case, Command::Accept, &reference);
    // Friday + 3 working days = Wednesday.
    assert_eq!(calendar::iso_date(case.promised_date.unwrap()), "2026-11-25");
}

#[test]
fn only_the_competent_department_decides() {
    let reference = Reference::builtin();
    let case = to_routed(&reference);
    let command = Command::Decide {
        outcome: Outcome::Approved,
        officer: "李".into(),
        department_code: "11610429MB2912348D".into(),
        reason: None,
    };
    let ctx = Context { now: NOW, reference: &reference };
    assert!(matches!(decide(&case, &command, &ctx), Err(Rejection::NotCompetent { .. })));
}

#[test]
fn a_denial_needs_reasons_and_is_archived() {
    let reference = Reference::builtin();
    let case = to_routed(&reference);
    let ctx = Context { now: NOW, reference: &reference };
    let deny = |reason: Option<&str>| Command::Decide {
        outcome: Outcome::Denied,
        officer: "王审批".into(),
        department_code: case.department_code.clone().unwrap(),
        reason: reason.map(Into::into),
    };
    assert_eq!(decide(&case, &deny(Some(" ")), &ctx), Err(Rejection::MissingReason));
    let (case, events) = run(case.clone(), deny(Some("经营场所不符合规划用途")), &reference);
    assert_eq!(kinds(&events), ["CaseDecided", "CaseArchived"]);
    assert_eq!(case.state, CaseState::Archived);
}

#[test]
fn commands_out_of_turn_are_rejected() {
    let reference = Reference::builtin();
    let case = Case::open(&application(&reference));
    let ctx = Context { now: NOW, reference: &reference };
    for command in [Command::Route, Command::RequestDelivery, Command::Archive, approve_any()] {
        assert!(matches!(decide(&case, &command, &ctx), Err(Rejection::WrongState { .. })), "{command:?}");
    }
    // Delivery facts before a delivery was requested are refused too.
    assert!(decide(&case, &Command::Record(fact_order(&case)), &ctx).is_err());
}

fn approve_any() -> Command {
    Command::Decide { outcome: Outcome::Approved, officer: "x".into(), department_code: "x".into(), reason: None }
}

#[test]
fn late_delivery_facts_are_kept_but_never_move_the_case_back() {
    let reference = Reference::builtin();
    let case = to_routed(&reference);
    let (case, _) = run(case.clone(), approve(&case), &reference);
    let (case, _) = run(case.clone(), Command::Record(fact_signed(&case)), &reference);
    assert_eq!(case.state, CaseState::Archived);
    let tracking: Event = TrackingEvent {
        event_id: "t1".into(),
        case_number: case.case_number.clone(),
        occurred_at: NOW,
        order_number: case.order_number(),
        waybill_number: "1180000000001".into(),
        op_code: "20".into(),
        op_name: "经转".into(),
        office: "咸阳邮区中心".into(),
        operator: "赵".into(),
    }
    .into();
    let (case, events) = run(case.clone(), Command::Record(tracking), &reference);
    assert_eq!(kinds(&events), ["TrackingEvent"]);
    let (case, _) = run(case.clone(), Command::Record(fact_order(&case)), &reference);
    assert_eq!(case.state, CaseState::Archived);
    assert_eq!(case.waybill_number.as_deref(), Some("1180000000001"));
}

#[test]
fn facts_about_another_order_are_refused() {
    let reference = Reference::builtin();
    let case = to_routed(&reference);
    let (case, _) = run(case.clone(), approve(&case), &reference);
    let Event::DeliveryOrderCreated(mut other) = fact_order(&case) else { unreachable!() };
    other.order_number = "61042920261120000099-P1".into();
    let ctx = Context { now: NOW, reference: &reference };
    assert!(matches!(decide(&case, &Command::Record(other.into()), &ctx), Err(Rejection::ForeignOrder { .. })));
    assert_eq!(case_of_order("61042920261120000001-P1"), Some("61042920261120000001"));
}
