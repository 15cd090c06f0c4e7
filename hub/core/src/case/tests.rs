use contracts::{DeliveryCompleted, DeliveryOrderCreated, MaterialProblem, TrackingEvent};

use super::*;
use crate::testing::*;
use crate::{documents, ids, routing, sms, steps};

fn approve(case: &Case) -> Command {
    Command::Decide {
        outcome: Outcome::Approved,
        officer: "王审批".into(),
        department_code: case.department_code.clone().unwrap(),
        reason: None,
    }
}

/// Approves, then 制证, 盖章 and 出件: the events of all four, in order.
fn approve_and_issue(case: Case, reference: &Reference) -> (Case, Vec<Event>) {
    let (mut case, mut events) = run(case.clone(), approve(&case), reference);
    for (step, _) in crate::steps::RESULT_STEPS {
        let done = Command::CompleteStep { step: step.into(), officer: "王出件".into(), remarks: String::new() };
        let (next, more) = run(case, done, reference);
        case = next;
        events.extend(more);
    }
    (case, events)
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
    let (case, events) = run(case, Command::Examine, reference);
    assert_eq!(kinds(&events), ["CaseAccepted", "CaseRouted"]);
    case
}

#[test]
fn a_mailed_case_goes_from_village_station_to_archive() {
    let reference = Reference::builtin();
    let case = to_routed(&reference);
    assert_eq!(case.state, CaseState::Routed);
    assert_eq!(case.department_code.as_deref(), Some("11610429MB2912345A"));

    let (case, events) = approve_and_issue(case.clone(), &reference);
    assert_eq!(
        kinds(&events),
        ["CaseDecided", "StepCompleted", "CertificateRequested", "StepCompleted", "StepCompleted", "DeliveryRequested"]
    );
    assert_eq!(case.state, CaseState::DeliveryRequested);
    let Event::DeliveryRequested(request) = &without_texts(events)[5] else { unreachable!() };
    assert_eq!(request.data_subject, contracts::data_subject(&reference.subject_key, "11010519491231002X"));
    assert_eq!(request.receiver.address, "土桥镇土桥1村3组12号");
    assert_eq!(request.sender.name, "旬邑县行政审批服务局");
    assert!(request.return_receipt);

    let (case, _) = run(case.clone(), Command::Record(fact_order(&case)), &reference);
    assert_eq!(case.state, CaseState::InTransit);
    let (case, events) = run(case.clone(), Command::Record(fact_signed(&case)), &reference);
    assert_eq!(kinds(&events), ["DeliveryCompleted", "CaseArchived"]);
    assert_eq!(case.state, CaseState::Archived);
    assert!(case.state.is_final());
    assert_eq!(texts(&events), ["review-invitation"]);
    let Event::CaseArchived(archived) = &events[1] else { unreachable!() };
    assert_eq!(archived.final_outcome, "signed");
    // Acceptance, decision and invitation texted besides.
    assert_eq!(case.seq, 15);
}

#[test]
fn an_approval_requests_the_matters_certificate_which_can_then_be_revoked() {
    let reference = Reference::builtin();
    let case = to_routed(&reference);
    let ctx = context(&reference);
    let revoke = Command::RevokeCertificate { officer: "王审批".into(), reason: "依法注销".into() };
    assert_eq!(decide(&case, &revoke, &ctx), Err(Rejection::NoCertificate), "nothing issued yet");

    let (case, events) = approve_and_issue(case.clone(), &reference);
    let events = without_texts(events);
    let Event::CertificateRequested(request) = &events[2] else { panic!("{events:?}") };
    assert_eq!((request.type_code.as_str(), request.certificate_name.as_str()), ("11100000MB0308302E001", "营业执照"));
    assert_eq!((request.holder_name.as_str(), request.holder_code_kind.as_str()), ("张三", "111"));
    assert_eq!(Some(&request.number), case.result_document.as_ref(), "the licence number is the decision's");
    assert_eq!((request.issuer_code.as_str(), request.area_code.as_str()), ("11610429MB2912345A", "610429"));
    assert_eq!(request.valid_until, None, "a business licence has no end date");
    assert_ne!(request.data_subject, request.holder_code, "the audit names the holder by keyed hash");
    let seq_of = |e: &Event| e.event_id().rsplit('/').next().unwrap().parse::<u32>().unwrap();
    assert_eq!(seq_of(&events[2]), seq_of(&events[1]) + 1, "its id follows the 制证 step's in the history");
    assert_eq!(case.certificate.as_ref().map(|c| c.status.as_str()), Some("requested"));

    let issued = |id: &str| -> Event {
        contracts::CertificateIssued {
            event_id: "c1".into(),
            case_number: case.case_number.clone(),
            occurred_at: NOW,
            certificate_id: id.into(),
            type_code: "11100000MB0308302E001".into(),
            number: request.number.clone(),
            status: "valid".into(),
        }
        .into()
    };
    let (case, _) = run(
        case.clone(),
        Command::Record(issued("1.2.156.3005.2.11100000MB0308302E001.11610429MB2912345A.202600000001.001.P")),
        &reference,
    );
    let certificate = case.certificate.clone().unwrap();
    assert_eq!(
        (certificate.status.as_str(), certificate.certificate_id.as_deref()),
        ("valid", Some("1.2.156.3005.2.11100000MB0308302E001.11610429MB2912345A.202600000001.001.P"))
    );

    let (case, events) = run(case.clone(), revoke.clone(), &reference);
    let Event::CertificateRevocationRequested(revocation) = &events[0] else { panic!("{events:?}") };
    assert_eq!(
        (revocation.certificate_id.as_str(), revocation.department_code.as_str()),
        (certificate.certificate_id.as_deref().unwrap(), "11610429MB2912345A")
    );
    assert_eq!(decide(&case, &revoke, &ctx), Err(Rejection::NoCertificate), "a revocation is asked once");
    let revoked = |id: &str| -> Event {
        contracts::CertificateRevoked {
            event_id: "r1".into(),
            case_number: case.case_number.clone(),
            occurred_at: NOW,
            certificate_id: id.into(),
            reason: "依法注销".into(),
        }
        .into()
    };
    assert!(matches!(
        decide(&case, &Command::Record(revoked("another")), &ctx),
        Err(Rejection::ForeignCertificate { .. })
    ));
    let (case, _) =
        run(case.clone(), Command::Record(revoked(certificate.certificate_id.as_deref().unwrap())), &reference);
    assert_eq!(case.certificate.unwrap().status, "revoked");
}

#[test]
fn a_fee_is_ordered_at_acceptance_and_an_approval_waits_for_its_payment() {
    let reference = Reference::builtin();
    let mut app = application_for(&reference, "11610429MB291234CH4000105001000");
    // Villages do not take real-estate registrations; the township centre does.
    app.service_point = contracts::ServicePoint {
        code: "610429100000".into(),
        name: "土桥镇便民服务中心".into(),
        tier: "township".into(),
        division_code: "610429100000".into(),
    };
    let (case, events) = run(Case::open(&app), Command::Examine, &reference);
    assert_eq!(kinds(&events), ["CaseAccepted", "FeeOrderRequested", "CaseRouted"]);
    let Event::FeeOrderRequested(order) = &events[1] else { unreachable!() };
    assert_eq!(
        (order.order_number.as_str(), order.total_fen, order.items[0].amount_fen),
        ("61042920261120000001-FEE", 8_000, 8_000)
    );
    assert_eq!(
        order.data_subject,
        contracts::data_subject(&reference.subject_key, "11010519491231002X"),
        "the payer by keyed hash only"
    );
    let ctx = context(&reference);
    assert_eq!(
        decide(&case, &approve(&case), &ctx),
        Err(Rejection::FeeUnpaid { order: order.order_number.clone(), total_fen: 8_000, paid_fen: 0 })
    );

    let case_number = case.case_number.clone();
    let payment = |id: &str, order_number: &str, fen: i64| -> Event {
        contracts::PaymentConfirmed {
            event_id: format!("bank/{id}"),
            case_number: case_number.clone(),
            occurred_at: NOW,
            order_number: order_number.into(),
            payment_id: id.into(),
            amount_fen: fen,
            outlet_code: "BANK-RCC-610429001".into(),
            receipt_number: Some(format!("R-{id}")),
        }
        .into()
    };
    let wrong = decide(&case, &Command::Record(payment("T0", "61042920261120000002-FEE", 8_000)), &ctx);
    assert!(matches!(wrong, Err(Rejection::ForeignFeeOrder { .. })), "{wrong:?}");
    let (case, _) = run(case, Command::Record(payment("T1", &order.order_number, 5_000)), &reference);
    assert!(
        matches!(decide(&case, &approve(&case), &ctx), Err(Rejection::FeeUnpaid { paid_fen: 5_000, .. })),
        "a part payment is not the fee"
    );
    let (case, _) = run(case, Command::Record(payment("T2", &order.order_number, 3_000)), &reference);
    let (case, events) = approve_and_issue(case.clone(), &reference);
    assert_eq!(case.state, CaseState::DeliveryRequested, "{:?}", kinds(&events));
    let denial = Command::Decide {
        outcome: Outcome::Denied,
        officer: "王审批".into(),
        department_code: "11610429MB291234CH".into(),
        reason: Some("权属来源不清".into()),
    };
    let unpaid = run(Case::open(&app), Command::Examine, &reference).0;
    assert!(decide(&unpaid, &denial, &ctx).is_ok(), "a denial does not wait for a fee");
}

/// An application for the real-estate registration (a matter with a fee) at a township centre.
fn fee_application(reference: &Reference, relief: Option<(&str, &str)>) -> contracts::ApplicationSubmitted {
    let mut app = application_for(reference, "11610429MB291234CH4000105001000");
    app.service_point = contracts::ServicePoint {
        code: "610429100000".into(),
        name: "土桥镇便民服务中心".into(),
        tier: "township".into(),
        division_code: "610429100000".into(),
    };
    app.fee_relief =
        relief.map(|(rule, proof)| contracts::FeeReliefClaim { rule: rule.into(), proof_number: proof.into() });
    app
}

#[test]
fn fees_carry_their_basis_and_a_county_rule_waives_or_reduces_them() {
    let reference = Reference::builtin();
    let order_of = |relief| {
        let (case, events) = run(Case::open(&fee_application(&reference, relief)), Command::Examine, &reference);
        let order = events.iter().find_map(|e| match e {
            Event::FeeOrderRequested(order) => Some(order.clone()),
            _ => None,
        });
        (case, order.unwrap())
    };
    let (_, full) = order_of(None);
    assert_eq!((full.total_fen, full.relief.clone()), (8_000, None));
    assert!(full.items[0].basis.contains("发改价格规〔2016〕2559号"), "{:?}", full.items);
    let (_, halved) = order_of(Some(("disability", "残疾人证 61042919700101")));
    let relief = halved.relief.clone().unwrap();
    assert_eq!((halved.total_fen, relief.relieved_fen, relief.name.as_str()), (4_000, 4_000, "重度残疾人家庭"));
    let (waived_case, waived) = order_of(Some(("dibao", "低保证 610429-0001")));
    assert_eq!((waived.total_fen, waived.relief.unwrap().relieved_fen), (0, 8_000));
    let fee = waived_case.fee.clone().unwrap();
    assert!(fee.is_paid(), "nothing to pay: the approval does not wait");
    let (case, events) = approve_and_issue(waived_case, &reference);
    assert!(
        kinds(&events).contains(&"CaseDecided") && case.state.rank() > CaseState::Approved.rank(),
        "{:?}",
        kinds(&events)
    );
}

#[test]
fn a_denied_case_is_refunded_through_the_bank_and_archived_once_paid_back() {
    let reference = Reference::builtin();
    let (case, _) = run(Case::open(&fee_application(&reference, None)), Command::Examine, &reference);
    let order = case.fee.clone().unwrap().order_number;
    let paid = contracts::PaymentConfirmed {
        event_id: "bank/T1".into(),
        case_number: case.case_number.clone(),
        occurred_at: NOW,
        order_number: order.clone(),
        payment_id: "T1".into(),
        amount_fen: 8_000,
        outlet_code: "BANK-RCC-610429001".into(),
        receipt_number: Some("6104292600001".into()),
    };
    let (case, _) = run(case, Command::Record(paid.into()), &reference);
    assert_eq!(case.fee.as_ref().unwrap().receipts, ["6104292600001"]);
    let (case, events) = run(case.clone(), deny(&case, "权属来源不清"), &reference);
    assert_eq!(kinds(&events), ["CaseDecided", "RefundRequested"], "no archive before the money is back");
    let Some(Event::RefundRequested(refund)) = events.get(1) else { unreachable!() };
    assert_eq!(
        (refund.refund_number.as_str(), refund.order_number.as_str(), refund.amount_fen),
        ("61042920261120000001-REF", order.as_str(), 8_000)
    );
    let ctx = context(&reference);
    assert_eq!(decide(&case, &Command::RequestRefund, &ctx), Err(Rejection::NothingToRefund), "refunded once");
    let confirmed = |number: &str| -> Command {
        Command::Record(
            contracts::RefundConfirmed {
                event_id: ids::refund_confirmed("R1"),
                case_number: case.case_number.clone(),
                occurred_at: NOW,
                refund_number: number.into(),
                refund_id: "R1".into(),
                amount_fen: 8_000,
                receipt_number: Some("6104292600002".into()),
            }
            .into(),
        )
    };
    assert!(matches!(decide(&case, &confirmed("X-REF"), &ctx), Err(Rejection::ForeignFeeOrder { .. })));
    let (case, events) = run(case.clone(), confirmed(&refund.refund_number), &reference);
    assert_eq!(kinds(&events), ["RefundConfirmed", "CaseArchived"]);
    assert_eq!(case.fee.unwrap().refund.unwrap().refund_id.as_deref(), Some("R1"));
}

#[test]
fn a_withdrawal_before_the_decision_ends_the_case_and_refunds_what_was_paid() {
    let reference = Reference::builtin();
    let withdraw = Command::Withdraw { officer: "刘代办".into(), reason: "申请人已另行选址".into() };
    let ctx = context(&reference);
    // Unpaid: the file closes at once.
    let case = to_routed(&reference);
    let (case, events) = run(case, withdraw.clone(), &reference);
    assert_eq!(kinds(&events), ["ApplicationWithdrawn", "CaseArchived"]);
    assert_eq!(texts(&events), ["withdrawal"]);
    let Some(Event::CaseArchived(archived)) = events.iter().find(|e| matches!(e, Event::CaseArchived(_))) else {
        unreachable!()
    };
    assert_eq!(archived.final_outcome, "withdrawn");
    assert_eq!(case.documents.iter().map(|d| d.title.as_str()).nth(2), Some("准予撤回申请通知书"));
    // Paid: refunded first.
    let (case, _) = run(Case::open(&fee_application(&reference, None)), Command::Examine, &reference);
    let paid = contracts::PaymentConfirmed {
        event_id: "bank/T1".into(),
        case_number: case.case_number.clone(),
        occurred_at: NOW,
        order_number: case.fee.clone().unwrap().order_number,
        payment_id: "T1".into(),
        amount_fen: 8_000,
        outlet_code: "BANK-RCC-610429001".into(),
        receipt_number: None,
    };
    let (case, _) = run(case, Command::Record(paid.into()), &reference);
    assert_eq!(
        decide(&case, &Command::Withdraw { officer: "刘代办".into(), reason: " ".into() }, &ctx),
        Err(Rejection::Blank("reason"))
    );
    let (case, events) = run(case, withdraw.clone(), &reference);
    assert_eq!(kinds(&events), ["ApplicationWithdrawn", "RefundRequested"]);
    assert_eq!(case.state, CaseState::Withdrawn);
    let Some(Event::RefundRequested(refund)) = events.get(1) else { unreachable!() };
    assert_eq!((refund.amount_fen, refund.reason.contains("撤回")), (8_000, true));
    // Decided cases are past withdrawing.
    let (denied, _) = run(to_routed(&reference), deny(&to_routed(&reference), "不符合条件"), &reference);
    assert!(matches!(decide(&denied, &withdraw, &ctx), Err(Rejection::WrongState { .. })));
}

#[test]
fn a_denial_issues_no_certificate() {
    let reference = Reference::builtin();
    let case = to_routed(&reference);
    let deny = Command::Decide {
        outcome: Outcome::Denied,
        officer: "王审批".into(),
        department_code: case.department_code.clone().unwrap(),
        reason: Some("经营场所不符合要求".into()),
    };
    let (case, events) = run(case, deny, &reference);
    assert!(!kinds(&events).contains(&"CertificateRequested"), "{events:?}");
    assert_eq!(case.certificate, None);
}

#[test]
fn event_ids_follow_the_case_history() {
    let reference = Reference::builtin();
    let case = Case::open(&application(&reference));
    let (_, events) = run(case, Command::Examine, &reference);
    let ids: Vec<&str> = events.iter().map(Event::event_id).collect();
    assert_eq!(ids, ["61042920261120000001/2", "61042920261120000001/3", "61042920261120000001/2/sms"]);
}

#[test]
fn the_promised_date_counts_working_days() {
    let reference = Reference::builtin();
    let case = Case::open(&application(&reference));
    let (case, _) = run(case, Command::Examine, &reference);
    // Friday + 1 working day = Monday (promised); + 3 = Wednesday (the registration regulation's limit).
    assert_eq!(calendar::iso_date(case.promised_date.unwrap()), "2026-11-23");
    assert_eq!(calendar::iso_date(case.statutory_date.unwrap()), "2026-11-25");
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
    let ctx = context(&reference);
    assert!(matches!(decide(&case, &command, &ctx), Err(Rejection::NotCompetent { .. })));
}

#[test]
fn a_denial_needs_reasons_and_is_archived() {
    let reference = Reference::builtin();
    let case = to_routed(&reference);
    let ctx = context(&reference);
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
    let ctx = context(&reference);
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
    let (case, _) = approve_and_issue(case.clone(), &reference);
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
    let (case, _) = approve_and_issue(case.clone(), &reference);
    let Event::DeliveryOrderCreated(mut other) = fact_order(&case) else { unreachable!() };
    other.order_number = "61042920261120000099-P1".into();
    let ctx = context(&reference);
    assert!(matches!(decide(&case, &Command::Record(other.into()), &ctx), Err(Rejection::ForeignOrder { .. })));
    assert_eq!(case_of_order("61042920261120000001-P1"), Some("61042920261120000001"));
}

const CONSTRUCTION_PERMIT: &str = "11610429MB2912345A4000106012000";
const HOMESTEAD: &str = "11610429MB2912349E4000117050000";
const FOOD_WORKSHOP: &str = "11610429MB2912346B4000104120000";
const FOOD: &str = "11610429MB2912345A4000104119000";
const ENTERPRISE: &str = "11610429MB2912345A4000104001000";
const SELF_EMPLOYED_MATTER: &str = "11610429MB2912345A4000104010000";
const SUBSISTENCE_ALLOWANCE: &str = "11610429MB2912348D4000114012000";

fn deny(case: &Case, reason: &str) -> Command {
    Command::Decide {
        outcome: Outcome::Denied,
        officer: "王审批".into(),
        department_code: case.department_code.clone().unwrap(),
        reason: Some(reason.into()),
    }
}

#[test]
fn missing_and_faulty_materials_are_all_on_one_notice_and_a_supplement_resumes_the_case() {
    let reference = Reference::builtin();
    let mut app = application(&reference);
    app.materials = vec!["个体工商户登记申请书".into()];
    app.faulty_materials = vec![MaterialProblem {
        material: "个体工商户登记申请书".into(),
        problem: "缺少经营者签字".into(),
    }];
    let (case, events) = run(Case::open(&app), Command::Examine, &reference);
    assert_eq!(kinds(&events), ["SupplementRequested"]);
    assert_eq!(case.state, CaseState::AwaitingSupplement);
    let Event::SupplementRequested(notice) = &events[0] else { unreachable!() };
    let listed: Vec<&str> = notice.items.iter().map(|i| i.material.as_str()).collect();
    assert_eq!(
        listed,
        ["经营者身份证明", "经营场所使用证明", "个体工商户登记申请书"],
        "every missing and faulty material at once"
    );

    let ctx = context(&reference);
    let unknown = Command::Supplement { materials: vec!["户口本".into()], received_by: "李受理".into() };
    assert_eq!(decide(&case, &unknown, &ctx), Err(Rejection::UnknownMaterial("户口本".into())));
    let supplied = Command::Supplement {
        received_by: "李受理".into(),
        materials: vec!["经营者身份证明".into(), "经营场所使用证明".into(), "个体工商户登记申请书".into()],
    };
    let (case, events) = run(case, supplied, &reference);
    assert_eq!(kinds(&events), ["MaterialsSupplemented", "CaseAccepted", "CaseRouted"]);
    assert_eq!((case.version, case.state), (2, CaseState::Routed));
    let Event::CaseAccepted(accepted) = &events[1] else { unreachable!() };
    assert_eq!(accepted.case_version, 2);
    assert!(accepted.notice_number.ends_with("000001-2号"), "{}", accepted.notice_number);
}

#[test]
fn tolerant_acceptance_needs_complete_primary_materials_and_a_commitment() {
    let reference = Reference::builtin();
    let mut app = application(&reference);
    app.materials.retain(|m| m != "经营场所使用证明");
    let (_, events) = run(Case::open(&app), Command::Examine, &reference);
    assert_eq!(kinds(&events), ["SupplementRequested"], "no commitment, no tolerance");

    app.commits_to_supply = true;
    let (case, events) = run(Case::open(&app), Command::Examine, &reference);
    assert_eq!(kinds(&events), ["CaseAccepted", "CommitmentSigned", "CaseRouted"]);
    assert_eq!(case.acceptance.as_deref(), Some("tolerant"));
    assert_eq!(case.documents[2].title, "容缺受理承诺书", "the applicant's commitment is in the file");
    assert_eq!(case.outstanding_materials, ["经营场所使用证明"]);
    // Friday + 5 working days.
    assert_eq!(case.commitment_date.map(calendar::iso_date).as_deref(), Some("2026-11-27"));
    assert_eq!(case.documents[1].title, "容缺受理通知书");

    // A missed commitment warns once; supplying the material ends the tracking.
    let late = context_at(&reference, case.commitment_date.unwrap() + 1);
    let warnings = decide(&case, &Command::CheckDeadlines, &late).unwrap();
    let scopes: Vec<String> = warnings
        .iter()
        .map(|w| match w {
            Event::DeadlineWarning(w) => w.scope.clone(),
            _ => unreachable!(),
        })
        .collect();
    assert!(scopes.contains(&"commitment".to_string()), "{scopes:?}");
    let (case, _) = run(
        case,
        Command::Supplement { materials: vec!["经营场所使用证明".into()], received_by: "李受理".into() },
        &reference,
    );
    assert!(case.outstanding_materials.is_empty());
    assert_eq!(case.state, CaseState::Routed, "a supplement under tolerance does not re-open acceptance");
}

#[test]
fn an_application_outside_the_authoritys_competence_is_not_accepted_and_archived() {
    let reference = Reference::builtin();
    let mut app = application_for(&reference, HOMESTEAD);
    app.domicile_township = Some("610430100000".into());
    let (case, events) = run(Case::open(&app), Command::Examine, &reference);
    assert_eq!(kinds(&events), ["AcceptanceRefused", "CaseArchived"]);
    let Event::AcceptanceRefused(refusal) = &events[0] else { unreachable!() };
    assert_eq!(refusal.legal_basis, NOT_COMPETENT_BASIS);
    assert_eq!(case.state, CaseState::Archived);
    assert_eq!(
        case.documents.iter().map(|d| d.title.as_str()).collect::<Vec<_>>(),
        ["申请表及申请材料", "不予受理通知书", "归档目录"]
    );
}

#[test]
fn a_clerk_may_refuse_an_incomplete_application_with_reason_and_basis() {
    let reference = Reference::builtin();
    let mut app = application(&reference);
    app.materials.clear();
    let (case, _) = run(Case::open(&app), Command::Examine, &reference);
    let ctx = context(&reference);
    let blank = Command::Refuse { officer: "李受理".into(), reason: " ".into(), legal_basis: "x".into() };
    assert_eq!(decide(&case, &blank, &ctx), Err(Rejection::Blank("reason")));
    let refuse = Command::Refuse {
        officer: "李受理".into(),
        reason: "申请人不具备个体工商户经营资格".into(),
        legal_basis: "《促进个体工商户发展条例》第八条".into(),
    };
    let (case, events) = run(case, refuse, &reference);
    assert_eq!(kinds(&events), ["AcceptanceRefused", "CaseArchived"]);
    assert_eq!(case.state, CaseState::Archived);
}

#[test]
fn a_special_procedure_stops_the_clock_and_blocks_the_decision() {
    let reference = Reference::builtin();
    let case = to_routed(&reference);
    let (promised, statutory) = (case.promised_date.unwrap(), case.statutory_date.unwrap());
    let ctx = context(&reference);
    let unknown = Command::StartProcedure {
        procedure: "lottery".into(),
        officer: "王".into(),
        departments: vec![],
        parties: vec![],
        scheduled_date: None,
    };
    assert!(matches!(decide(&case, &unknown, &ctx), Err(Rejection::UnknownProcedure(..))));
    let hearing_on = |date: i32| Command::StartProcedure {
        procedure: "hearing".into(),
        officer: "王".into(),
        departments: vec![],
        parties: vec!["相邻住户李四".into()],
        scheduled_date: Some(date),
    };
    let week_ahead = reference.calendar.add_working_days(calendar::day_of(NOW), 7);
    assert_eq!(decide(&case, &hearing_on(week_ahead), &ctx), Err(Rejection::HearingRightsNotTold));
    let rights = Command::NotifyHearingRights { officer: "王".into(), parties: vec!["相邻住户李四".into()] };
    let (case, _) = run(case, rights, &reference);
    assert!(
        matches!(decide(&case, &hearing_on(week_ahead - 1), &ctx), Err(Rejection::HearingDate { .. })),
        "announced seven days ahead"
    );
    let (case, _) = run(case, hearing_on(week_ahead), &reference);
    assert_eq!(case.state, CaseState::Suspended);
    assert_eq!(case.documents.last().unwrap().pages, 2, "a notice to the applicant and one to each party");
    assert!(matches!(decide(&case, &approve(&case), &ctx), Err(Rejection::WrongState { .. })));
    // No case warnings while the clock stands, but the step's own limit still counts.
    let open = case.procedure.clone().unwrap();
    let overrun = decide(&case, &Command::CheckDeadlines, &context_at(&reference, open.limit_date + 1)).unwrap();
    let overrun: Vec<(String, String)> = overrun
        .iter()
        .map(|w| match w {
            Event::DeadlineWarning(w) => (w.scope.clone(), w.level.clone()),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(overrun, [("step".to_string(), "yellow".to_string())]);

    // Completed four working days later (Fri -> Thu): the promised date moves four working days.
    let later = context_at(&reference, calendar::day_of(NOW) + 6);
    let (case, events) =
        run_with(case, Command::CompleteProcedure { officer: "王".into(), summary: "听证意见：无异议".into() }, &later);
    let Event::ProcedureCompleted(done) = &events[0] else { unreachable!() };
    assert_eq!(done.paused_working_days, 4);
    assert_eq!(case.promised_date, Some(reference.calendar.add_working_days(promised, 4)));
    assert_eq!(
        case.statutory_date,
        Some(reference.calendar.add_working_days(statutory, 4)),
        "a hearing is on the law's list"
    );
    assert_eq!(case.state, CaseState::Routed);
}

/// 行政许可法 第四十五条: only 听证、招标、拍卖、检验、检测、检疫、鉴定、专家评审 are left out of
/// the statutory limits. A site inspection pauses the county's promise (its policy) but the
/// statutory clock runs on, and warns while the inspection is still open.
#[test]
fn a_site_inspection_pauses_the_promise_but_not_the_statutory_clock() {
    let reference = Reference::builtin();
    let case = to_routed(&reference);
    let (promised, statutory) = (case.promised_date.unwrap(), case.statutory_date.unwrap());
    let inspection = Command::StartProcedure {
        procedure: "site_inspection".into(),
        officer: "赵踏勘".into(),
        departments: vec![],
        parties: vec![],
        scheduled_date: None,
    };
    let (case, events) = run(case, inspection, &reference);
    let notice = case.documents.last().unwrap();
    let html = documents::render(&case, notice, &events[0], &reference);
    assert!(html.contains("所需时间计算在法定办理期限内"), "{html}");
    let past_statutory = context_at(&reference, statutory + 1);
    let warned: Vec<String> = decide(&case, &Command::CheckDeadlines, &past_statutory)
        .unwrap()
        .iter()
        .filter_map(|w| match w {
            Event::DeadlineWarning(w) => Some(w.scope.clone()),
            _ => None,
        })
        .collect();
    assert!(warned.contains(&"statutory".to_string()), "the statutory clock runs during a site inspection: {warned:?}");
    let later = context_at(&reference, calendar::day_of(NOW) + 6);
    let (case, _) = run_with(
        case,
        Command::CompleteProcedure { officer: "赵踏勘".into(), summary: "现场与材料一致".into() },
        &later,
    );
    assert_eq!(case.promised_date, Some(reference.calendar.add_working_days(promised, 4)), "county policy pauses it");
    assert_eq!(case.statutory_date, Some(statutory), "the law does not");
}

#[test]
fn the_lead_department_decides_a_parallel_approval_after_every_opinion() {
    let reference = Reference::builtin();
    let mut app = application_for(&reference, CONSTRUCTION_PERMIT);
    app.service_point = contracts::ServicePoint {
        code: "610429000000".into(),
        name: "旬邑县政务服务中心".into(),
        tier: "county".into(),
        division_code: "610429000000".into(),
    };
    let (case, _) = run(Case::open(&app), Command::Examine, &reference);
    assert_eq!(case.opinions_required, ["11610429MB291234AF", "11610429MB291234CH"]);
    let ctx = context(&reference);
    assert!(matches!(decide(&case, &approve(&case), &ctx), Err(Rejection::OpinionsPending(_))));
    let opinion = |department: &str, opinion: &str| Command::GiveOpinion {
        department_code: department.into(),
        officer: "赵".into(),
        opinion: opinion.into(),
        remarks: String::new(),
    };
    assert_eq!(
        decide(&case, &opinion("11610429MB2912348D", "agree"), &ctx),
        Err(Rejection::NotConsulted("11610429MB2912348D".into()))
    );
    assert_eq!(decide(&case, &opinion("11610429MB291234AF", "disagree"), &ctx), Err(Rejection::Blank("remarks")));
    let (case, _) = run(case, opinion("11610429MB291234AF", "agree"), &reference);
    assert_eq!(
        decide(&case, &opinion("11610429MB291234AF", "agree"), &ctx),
        Err(Rejection::NotConsulted("11610429MB291234AF".into())),
        "one opinion each"
    );
    let (case, _) = run(case, opinion("11610429MB291234CH", "agree"), &reference);
    let (case, events) = approve_and_issue(case.clone(), &reference);
    assert_eq!(kinds(&events), ["CaseDecided", "StepCompleted", "StepCompleted", "StepCompleted", "DeliveryRequested"]);
    assert_eq!(case.opinions.len(), 2);
}

#[test]
fn window_pickup_checks_the_applicants_id_and_records_the_signature() {
    let reference = Reference::builtin();
    let mut app = application(&reference);
    app.delivery_method = "window".into();
    app.delivery_address = None;
    let (case, _) = run(Case::open(&app), Command::Examine, &reference);
    let (case, events) = approve_and_issue(case.clone(), &reference);
    assert_eq!(
        kinds(&events),
        [
            "CaseDecided",
            "StepCompleted",
            "CertificateRequested",
            "StepCompleted",
            "StepCompleted",
            "ResultReadyForPickup"
        ]
    );
    assert_eq!(case.state, CaseState::AwaitingPickup);
    let ctx = context(&reference);
    let notice = case.acceptance_notice.clone();
    let collect = |id: &str| Command::Collect {
        handed_out_by: "王出件".into(),
        collected_by: "张三".into(),
        id_number: Some(id.into()),
        pickup_code: None,
        signature: "签名影像 sha256:ab12".into(),
        notice_number: notice.clone(),
        agent: None,
    };
    assert_eq!(decide(&case, &collect("110105194912310038"), &ctx), Err(Rejection::IdentityMismatch));
    let (case, events) = run(case, collect("11010519491231002X"), &reference);
    assert_eq!(kinds(&events), ["ResultCollected", "CaseArchived"]);
    assert_eq!(case.state, CaseState::Archived);
}

#[test]
fn locker_pickup_needs_the_code_derived_under_the_county_secret() {
    let reference = Reference::builtin();
    let mut app = application(&reference);
    app.delivery_method = "locker".into();
    let (case, _) = run(Case::open(&app), Command::Examine, &reference);
    let (case, _) = approve_and_issue(case.clone(), &reference);
    let code = case.pickup.as_ref().and_then(|p| p.code.clone()).unwrap();
    assert_eq!(code, pickup_code(&reference.pickup_secret, &case.case_number));
    assert_ne!(code, pickup_code(b"another county", &case.case_number));
    let collect = |code: &str| Command::Collect {
        handed_out_by: String::new(),
        collected_by: "张三".into(),
        id_number: None,
        pickup_code: Some(code.into()),
        signature: String::new(),
        notice_number: None,
        agent: None,
    };
    let wrong = if code == "000000" { "000001" } else { "000000" };
    assert_eq!(decide(&case, &collect(wrong), &context(&reference)), Err(Rejection::WrongPickupCode));
    let (case, _) = run(case, collect(&code), &reference);
    assert_eq!(case.state, CaseState::Archived);
}

#[test]
fn a_failed_mail_delivery_returns_the_result_to_the_window() {
    let reference = Reference::builtin();
    let case = to_routed(&reference);
    let (case, _) = approve_and_issue(case.clone(), &reference);
    let Event::DeliveryCompleted(mut failed) = fact_signed(&case) else { unreachable!() };
    failed.outcome = "returned".into();
    failed.signed_by = None;
    let (case, events) = run(case, Command::Record(failed.into()), &reference);
    assert_eq!(kinds(&events), ["DeliveryCompleted", "ResultReadyForPickup"]);
    let Event::ResultReadyForPickup(pickup) = &events[1] else { unreachable!() };
    assert_eq!(pickup.place, "土桥1村便民服务站窗口");
    assert!(pickup.reason.contains("邮寄投递未成功"));
    assert_eq!(case.state, CaseState::AwaitingPickup);
}

#[test]
fn a_bad_review_is_verified_then_rectified_and_an_unfounded_one_closes_with_its_answer() {
    let reference = Reference::builtin();
    let case = to_routed(&reference);
    let (case, _) = run(case.clone(), deny(&case, "经营场所不符合规划用途"), &reference);
    let ctx = context(&reference);
    let review = |grade: i32, channel: &str, visit: Option<&str>| Command::Review {
        grade,
        channel: channel.into(),
        comment: "等了太久".into(),
        visit_id: visit.map(String::from),
    };
    assert_eq!(decide(&case, &review(6, "online", None), &ctx), Err(Rejection::BadGrade));
    assert_eq!(decide(&case, &review(3, "fax", None), &ctx), Err(Rejection::BadChannel));
    let (case, events) = run(case, review(2, "qr", None), &reference);
    assert_eq!(kinds(&events), ["ReviewSubmitted", "RectificationOpened"]);
    for channel in ["online", "qr", "sms"] {
        assert_eq!(decide(&case, &review(5, channel, None), &ctx), Err(Rejection::AlreadyReviewed), "one online");
    }
    assert_eq!(decide(&case, &review(5, "counter", None), &ctx), Err(Rejection::VisitMissing));
    let (case, events) = run(case, review(5, "counter", Some("V1")), &reference);
    assert_eq!(kinds(&events), ["ReviewSubmitted"], "a good review opens nothing");
    assert_eq!(decide(&case, &review(4, "counter", Some("V1")), &ctx), Err(Rejection::VisitReviewed));
    let (case, _) = run(case, review(1, "counter", Some("V2")), &reference);
    assert_eq!(case.rectifications.len(), 2, "one per bad review");
    let (first, second) = (case.rectifications[0].item_number.clone(), case.rectifications[1].item_number.clone());
    // 10 working days after Friday 2026-11-20.
    assert_eq!(calendar::iso_date(case.rectifications[0].deadline), "2026-12-04");
    let close = |item: &str| Command::CloseRectification {
        item_number: item.into(),
        officer: "督办科".into(),
        feedback: "已约谈窗口人员并回访申请人".into(),
    };
    assert_eq!(decide(&case, &close(&first), &ctx), Err(Rejection::NotVerified(first.clone())));
    let verify = |item: &str, substantiated: bool| Command::VerifyReview {
        item_number: item.into(),
        officer: "监察室 李核实".into(),
        finding: if substantiated {
            "调取录像，窗口确有推诿".into()
        } else {
            "按时办结，无拖延".into()
        },
        substantiated,
        reply: "感谢监督，已核实处理。".into(),
    };
    let (case, events) = run(case, verify(&first, true), &reference);
    assert_eq!((kinds(&events), texts(&events)), (vec!["ReviewVerified"], vec!["review-reply"]));
    assert!(!case.rectifications[0].closed, "a founded complaint is rectified");
    assert_eq!(decide(&case, &verify(&first, true), &ctx), Err(Rejection::AlreadyVerified(first.clone())));
    let (case, _) = run(case, close(&first), &reference);
    assert!(case.rectifications[0].closed);
    assert_eq!(decide(&case, &close(&first), &ctx), Err(Rejection::NoSuchRectification(first)));
    let (case, _) = run(case, verify(&second, false), &reference);
    assert!(case.rectifications[1].closed, "an unfounded complaint needs no rectification");
}

#[test]
fn an_overdue_rectification_is_carded_like_any_limit() {
    let reference = Reference::builtin();
    let case = to_routed(&reference);
    let (case, _) = run(case.clone(), deny(&case, "经营场所不符合规划用途"), &reference);
    let bad = Command::Review { grade: 1, channel: "online".into(), comment: "".into(), visit_id: None };
    let (case, _) = run(case, bad, &reference);
    let deadline = case.rectifications[0].deadline;
    assert_eq!(crate::deadlines::next_check(&case, calendar::day_of(NOW), &reference), Some(deadline - 1));
    let cards = |day: i32| -> Vec<(String, String)> {
        crate::deadlines::warnings(&case, &context_at(&reference, day))
            .into_iter()
            .filter_map(|e| match e {
                Event::DeadlineWarning(w) if w.scope == crate::deadlines::RECTIFICATION => Some((w.level, w.message)),
                _ => None,
            })
            .collect()
    };
    assert_eq!(cards(deadline - 1)[0].0, "warning");
    assert_eq!(cards(deadline + 3)[0].0, "yellow");
    let red = cards(deadline + 7);
    assert_eq!(red[0].0, "red");
    assert!(red[0].1.contains("差评整改") && red[0].1.contains(&case.rectifications[0].item_number), "{red:?}");
}

#[test]
fn the_applicant_is_texted_at_each_turn_and_a_reply_to_the_invitation_is_a_review() {
    let reference = Reference::builtin();
    let app = application(&reference);
    let (case, events) = run(Case::open(&app), Command::Examine, &reference);
    assert_eq!(texts(&events), ["acceptance"]);
    let Some(Event::SmsRequested(acceptance)) = events.iter().find(|e| matches!(e, Event::SmsRequested(_))) else {
        unreachable!()
    };
    assert_eq!(acceptance.event_id, ids::sms_requested(events[0].event_id()), "the message id comes from its cause");
    assert_eq!(
        reference.sms.render(&acceptance.template, acceptance.version, &acceptance.params).unwrap(),
        format!(
            "【旬邑政务】您申请的个体工商户设立登记已受理，办件编号{}，承诺2026-11-23前办结。咨询电话{}。",
            case.case_number, reference.county.enquiry_phone
        )
    );
    let (_, events) = run(case.clone(), deny(&case, "经营范围涉及前置许可"), &reference);
    assert_eq!(texts(&events), ["decision"]);
    // An approved case delivered by post: the invitation follows the signature.
    let (case, events) = approve_and_issue(to_routed(&reference), &reference);
    assert!(texts(&events).contains(&"decision"), "{:?}", texts(&events));
    let order = case.order_number.clone().unwrap();
    let signed = DeliveryCompleted {
        event_id: "W1/final".into(),
        case_number: case.case_number.clone(),
        occurred_at: NOW,
        order_number: order,
        waybill_number: "W1".into(),
        outcome: "signed".into(),
        signed_by: Some("张三".into()),
    };
    let (case, events) = run(case, Command::Record(signed.into()), &reference);
    assert_eq!(texts(&events), ["review-invitation"]);
    let Some(Event::SmsRequested(invite)) = events.iter().find(|e| matches!(e, Event::SmsRequested(_))) else {
        unreachable!()
    };
    assert!(invite.params["link"].contains(&format!("/review/{}?t=", case.case_number)), "{invite:?}");
    let case_number = case.case_number.clone();
    let reply = |text: &str, message_id: &str, n: u32| -> Command {
        Command::Record(
            contracts::SmsReplyReceived {
                event_id: ids::sms_reply(&format!("MO{n}")),
                case_number: case_number.clone(),
                occurred_at: NOW,
                message_id: message_id.into(),
                reply_id: format!("MO{n}"),
                text: text.into(),
            }
            .into(),
        )
    };
    let ctx = context(&reference);
    let other = case.texts.iter().find(|t| t.template != sms::REVIEW_INVITATION).unwrap().message_id.clone();
    assert_eq!(decide(&case, &reply("5", &other, 1), &ctx), Err(Rejection::NotOurText(other)));
    let (case, events) = run(case, reply("好", &invite.event_id, 2), &reference);
    assert_eq!(kinds(&events), ["SmsReplyReceived"], "words without a grade are kept, not counted");
    let (case, events) = run(case, reply("2 太慢", &invite.event_id, 3), &reference);
    assert_eq!(kinds(&events), ["SmsReplyReceived", "ReviewSubmitted", "RectificationOpened"]);
    let Some(Event::ReviewSubmitted(review)) = events.get(1) else { unreachable!() };
    assert_eq!((review.grade, review.channel.as_str()), (2, "sms"));
    let (_, events) = run(case, reply("5", &invite.event_id, 4), &reference);
    assert_eq!(kinds(&events), ["SmsReplyReceived"], "one review per case online");
}

#[test]
fn the_archive_holds_every_document_with_a_page_index_and_a_flow_record() {
    let reference = Reference::builtin();
    let app = application(&reference);
    let mut history = vec![Event::ApplicationSubmitted(app.clone())];
    let (case, events) = run(Case::open(&app), Command::Examine, &reference);
    history.extend(events);
    let (case, events) = run(case.clone(), deny(&case, "经营范围<涉及>前置许可"), &reference);
    history.extend(events);
    assert_eq!(case.state, CaseState::Archived);
    let index = documents::page_index(&case);
    let titles: Vec<&str> = index.iter().map(|l| l.title.as_str()).collect();
    assert_eq!(titles, ["申请表及申请材料", "受理通知书", "不予行政许可决定书", "归档目录"]);
    assert_eq!(
        (index[0].first_page, index[0].last_page, index[1].first_page),
        (1, 4, 5),
        "a form and three materials, then the notice"
    );
    let Some(Event::CaseArchived(archived)) = without_texts(history.clone()).pop() else { unreachable!() };
    assert_eq!(archived.document_count, 4);

    let denial = &case.documents[2];
    let event = history.iter().find(|e| e.event_id() == denial.event_id).unwrap();
    let html = documents::render(&case, denial, event, &reference);
    assert!(html.contains("行政复议") && html.contains("行政诉讼"), "the right to reconsideration or litigation");
    assert!(html.contains("经营范围&lt;涉及&gt;前置许可"), "escaped");
    assert!(html.contains("（此处加盖旬邑县行政审批服务局行政审批专用章）"), "{html}");
    for doc in &case.documents {
        let event = history.iter().find(|e| e.event_id() == doc.event_id).unwrap();
        let html = documents::render(&case, doc, event, &reference);
        assert_eq!(documents::missing_parts(&doc.kind, &html), Vec::<String>::new(), "{html}");
    }
    // Filed by the deciding unit's archivist, numbered and kept as the county's policy says.
    assert_eq!(archived.archivist, "马晓燕");
    assert_eq!(archived.retention, "D10", "a denied licence is kept ten years");
    assert_eq!(archived.file_number, "J045-WS·2026-D10-SPJ-1120000001");

    let flow = crate::flow::flow_record(&history, &reference);
    let steps: Vec<[&str; 5]> =
        flow.iter().map(|h| [h.action.as_str(), &h.from, &h.giver, &h.to, &h.receiver]).collect();
    assert_eq!(
        steps,
        [
            ["提交申请", "申请人", "张三", "土桥1村便民服务站", "刘代办"],
            ["受理", "土桥1村便民服务站", "刘代办", "土桥1村便民服务站", "刘代办"],
            ["材料流转（就近办：县级部门审批）", "土桥1村便民服务站", "刘代办", "旬邑县行政审批服务局", "王审批"],
            ["不予许可", "旬邑县行政审批服务局", "王审批", "旬邑县行政审批服务局", "王审批"],
            ["归档", "旬邑县行政审批服务局", "马晓燕", "旬邑县行政审批服务局档案室", "马晓燕"],
        ]
    );
}

#[test]
fn each_result_goes_out_under_the_seal_its_unit_declares() {
    let reference = Reference::builtin();
    let seal_of_decision = |matter: &str, domicile: Option<&str>| {
        let mut app = application_for(&reference, matter);
        app.domicile_township = domicile.map(String::from);
        let (case, _) = run(Case::open(&app), Command::Examine, &reference);
        let (case, events) = run(case.clone(), deny(&case, "不符合法定条件"), &reference);
        let doc = case.documents.iter().find(|d| d.kind == "denial").unwrap();
        let event = events.iter().find(|e| e.event_id() == doc.event_id).unwrap();
        documents::issuer(&case, &doc.kind, event, &reference)
    };
    let unified = Some("旬邑县行政审批服务局行政审批专用章".to_string());
    // 市场监管 is among the departments whose results the county seals centrally (seed 003).
    assert_eq!(seal_of_decision(FOOD_WORKSHOP, None), ("旬邑县市场监督管理局".into(), unified));
    // 民政 keeps its own seal; a township decides under its government's.
    assert_eq!(seal_of_decision(SUBSISTENCE_ALLOWANCE, None).1.as_deref(), Some("旬邑县民政局"));
    assert_eq!(seal_of_decision(HOMESTEAD, Some("610429100000")).1.as_deref(), Some("旬邑县土桥镇人民政府"));
}

#[test]
fn joint_handling_waits_for_the_receiving_townships_opinion() {
    let reference = Reference::builtin();
    let mut app = application_for(&reference, "11610429MB2912348D4000111031000");
    app.delivery_method = "window".into();
    app.delivery_address = None;
    app.domicile_township = Some("610429101000".into());
    let (case, events) = run(Case::open(&app), Command::Examine, &reference);
    let Event::CaseRouted(routed) = &events[1] else { unreachable!() };
    assert_eq!((routed.rule.as_str(), routed.department_code.as_str()), (routing::RULE_JOINT_HANDLING, "610429101000"));
    let ctx = context(&reference);
    assert!(matches!(decide(&case, &approve(&case), &ctx), Err(Rejection::OpinionsPending(_))));
    let verified = Command::GiveOpinion {
        department_code: "610429100000".into(),
        officer: "土桥镇 民政专干".into(),
        opinion: "agree".into(),
        remarks: "已入户核实".into(),
    };
    let (case, _) = run(case, verified, &reference);
    let (case, events) = approve_and_issue(case.clone(), &reference);
    assert_eq!(
        kinds(&events),
        ["CaseDecided", "StepCompleted", "StepCompleted", "StepCompleted", "ResultReadyForPickup"]
    );
    assert_eq!(case.state, CaseState::AwaitingPickup);
}

#[test]
fn a_connectors_fact_is_recorded_then_reacted_to_and_only_the_reactions_are_news() {
    let reference = Reference::builtin();
    let (case, _) = approve_and_issue(to_routed(&reference), &reference);
    let (case, _) = run(case.clone(), Command::Record(fact_order(&case)), &reference);
    let signed = fact_signed(&case);
    let handled = handle_event(case, &signed, &context(&reference)).unwrap();
    assert_eq!(handled.decided, vec![signed], "the fact itself goes into the history");
    assert_eq!(kinds(&handled.reactions), ["CaseArchived"]);
    assert_eq!(handled.case.state, CaseState::Archived);
}

#[test]
fn the_hubs_own_events_are_reacted_to_not_recorded_again() {
    let reference = Reference::builtin();
    let app = application(&reference);
    let handled = handle_event(Case::open(&app), &app.clone().into(), &context(&reference)).unwrap();
    assert!(handled.decided.is_empty());
    assert_eq!(kinds(&handled.reactions), ["CaseAccepted", "CaseRouted"]);
}

#[test]
fn a_rejected_command_changes_nothing() {
    let reference = Reference::builtin();
    let case = to_routed(&reference);
    let wrong = Command::Decide {
        outcome: Outcome::Approved,
        officer: "王审批".into(),
        department_code: "610429100000".into(),
        reason: None,
    };
    assert!(matches!(handle(case.clone(), &wrong, &context(&reference)), Err(Rejection::NotCompetent { .. })));
    let archive = handle(case, &Command::Archive, &context(&reference));
    assert!(
        matches!(archive, Err(Rejection::WrongState { state: CaseState::Routed, action: "archive", .. })),
        "{archive:?}"
    );
}

#[test]
fn event_ids_are_those_already_stored_as_deduplication_keys() {
    use crate::ids;
    assert_eq!(ids::case_event("61042920261120000001", 3), "61042920261120000001/3");
    assert_eq!(ids::fee_order_requested("61042920261120000001/2"), "61042920261120000001/2/fee");
    assert_eq!(ids::fee_order_created("61042920261120000001/2/fee"), "61042920261120000001/2/fee/placed");
    assert_eq!(ids::payment_confirmed("P1"), "bank/P1");
    assert_eq!(ids::delivery_order_created("61042920261120000001-P1"), "61042920261120000001-P1/created");
    assert_eq!(ids::tracking_event("1180000000001", "20", 1_795_140_000_000), "1180000000001/20/1795140000000");
    assert_eq!(ids::delivery_completed("1180000000001"), "1180000000001/final");
    assert_eq!(ids::certificate_issued("c/5"), "c/5/issued");
    assert_eq!(ids::certificate_revoked("c/9"), "c/9/revoked");
    assert_eq!(ids::online_application("SX2026-1"), "province/SX2026-1");
    assert_eq!(ids::data_shared("c/5", "certificate.issue"), "c/5/shared/certificate.issue");
    assert_eq!(ids::ledger_checkpoint(42), "ledger-checkpoint/42");
    assert_eq!(ids::anomaly_alert("read_without_case", 4), "anomaly/read_without_case/4");
}

#[test]
fn with_a_seal_service_each_sealed_document_is_sent_to_be_signed_and_keeps_the_signature() {
    let mut reference = Reference::builtin();
    reference.electronic_seals = true;
    let app = application(&reference);
    let (case, events) = run(Case::open(&app), Command::Examine, &reference);
    let requests: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::DocumentSealRequested(r) => Some(r.clone()),
            _ => None,
        })
        .collect();
    let kinds: Vec<&str> = requests.iter().map(|r| r.document_kind.as_str()).collect();
    assert_eq!(kinds, ["acceptance_notice"], "the applicant's own form is signed, not sealed");
    let request = &requests[0];
    assert_eq!(request.seal_name, "旬邑县土桥镇人民政府", "a village station takes in for its township");
    let notice = case.documents.iter().find(|d| d.event_id == request.document_event_id).unwrap().clone();
    let issuing = events.iter().find(|e| e.event_id() == notice.event_id).unwrap();
    assert_eq!(documents::sealed_digest(&case, &notice, issuing, &reference), request.document_sha256);

    let sealed = contracts::DocumentSealed {
        event_id: crate::ids::document_sealed(&request.event_id),
        case_number: case.case_number.clone(),
        occurred_at: NOW,
        document_event_id: request.document_event_id.clone(),
        document_sha256: request.document_sha256.clone(),
        seal_name: request.seal_name.clone(),
        key_id: "k1".into(),
        signature: "ab".repeat(64),
        signed_at: NOW,
    };
    let (case, _) = run(case, Command::Record(sealed.clone().into()), &reference);
    let notice = case.documents.iter().find(|d| d.event_id == request.document_event_id).unwrap();
    assert_eq!(notice.electronic_seal.as_ref().map(|s| s.key_id.as_str()), Some("k1"));
    let html = documents::render(&case, notice, issuing, &reference);
    assert!(html.contains("电子印章：旬邑县土桥镇人民政府") && !html.contains("此处加盖"), "{html}");
    assert_eq!(
        documents::sealed_digest(&case, notice, issuing, &reference),
        request.document_sha256,
        "the mark is not signed"
    );
    let stray = contracts::DocumentSealed { document_event_id: "nothing/9".into(), ..sealed };
    assert_eq!(
        decide(&case, &Command::Record(stray.into()), &context(&reference)),
        Err(Rejection::NoSuchDocument("nothing/9".into()))
    );
}

/// 容缺受理 per matter: the catalogue lists what each matter lets be owed and for how long; a
/// matter that lists nothing takes no commitment, and one without a list keeps the county's.
#[test]
fn each_matter_tolerates_its_own_materials_for_its_own_period() {
    let reference = Reference::builtin();
    let owing = |matter: &str, owed: &str| {
        let mut app = application_for(&reference, matter);
        app.materials.retain(|m| m != owed);
        app.commits_to_supply = true;
        run(Case::open(&app), Command::Examine, &reference)
    };
    let (case, _) = owing(FOOD, "食品安全管理制度");
    assert_eq!(case.acceptance.as_deref(), Some("tolerant"));
    // Friday + 10 working days, the matter's own period.
    assert_eq!(case.commitment_date.map(calendar::iso_date).as_deref(), Some("2026-12-04"));
    let (case, events) = owing(ENTERPRISE, "住所使用证明");
    assert_eq!(kinds(&events), ["SupplementRequested"], "registration takes no commitment: {:?}", case.acceptance);
    let (case, _) = owing(SELF_EMPLOYED_MATTER, "经营场所使用证明");
    assert_eq!(
        case.commitment_date.map(calendar::iso_date).as_deref(),
        Some("2026-11-27"),
        "no list of its own: the county's five days"
    );
}

fn collect_at_window(case: &Case, id_number: &str, agent: Option<Agent>) -> Command {
    Command::Collect {
        handed_out_by: "王出件".into(),
        collected_by: "李代取".into(),
        id_number: Some(id_number.into()),
        pickup_code: None,
        signature: "签名影像 sha256:cd34".into(),
        notice_number: case.acceptance_notice.clone(),
        agent,
    }
}

fn warned(events: &[Event]) -> Vec<(String, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::DeadlineWarning(w) => Some((w.scope.clone(), w.level.clone())),
            _ => None,
        })
        .collect()
}

/// Seed 000's 审查细则 (county data, keyed by implementation code) and seed 003's 制证 → 盖章 →
/// 出件: each step in order with who and when, the decision only after the review steps, the
/// certificate asked for when it is made, the seal the result's, the result out by 出件.
#[test]
fn a_case_steps_through_its_review_rules_then_make_seal_and_dispatch() {
    let reference = Reference::builtin();
    let app = application_for(&reference, FOOD);
    let (case, _) = run(Case::open(&app), Command::Examine, &reference);
    let ctx = context(&reference);
    let step =
        |step: &str| Command::CompleteStep {
            step: step.into(), officer: "赵初审".into(), remarks: "材料齐全".into()
        };
    assert_eq!(
        decide(&case, &approve(&case), &ctx),
        Err(Rejection::StepPending("初审（材料审查）、复审（审核意见）".into()))
    );
    assert!(matches!(decide(&case, &step("final_review"), &ctx), Err(Rejection::WrongStep { .. })), "in order");
    // The first step's own limit: three working days from routing (Fri -> Wed); warned when missed.
    let late = context_at(&reference, calendar::parse_iso_date("2026-11-26").unwrap());
    assert_eq!(warned(&decide(&case, &Command::CheckDeadlines, &late).unwrap()), [("step".into(), "yellow".into())]);
    let (case, events) = run(case, step("initial_review"), &reference);
    let Event::StepCompleted(done) = &events[0] else { panic!("{events:?}") };
    assert_eq!(
        (done.title.as_str(), done.due_date.map(calendar::iso_date).as_deref()),
        ("初审（材料审查）", Some("2026-11-25"))
    );
    let (case, _) = run(case, step("final_review"), &reference);
    let (case, events) = run(case.clone(), approve(&case), &reference);
    assert_eq!(kinds(&events), ["CaseDecided"], "the result waits for 制证");
    assert_eq!(case.state, CaseState::Approved);
    // 第四十四条: ten working days from the decision to the result going out, watched.
    let decided = calendar::day_of(NOW);
    let overdue = context_at(&reference, reference.calendar.add_working_days(decided, 11));
    assert_eq!(
        warned(&decide(&case, &Command::CheckDeadlines, &overdue).unwrap()),
        [("delivery".into(), "yellow".into())]
    );
    assert!(matches!(decide(&case, &step("seal"), &ctx), Err(Rejection::WrongStep { .. })));
    let (case, events) = run(case, step("make"), &reference);
    assert_eq!(kinds(&events), ["StepCompleted", "CertificateRequested"]);
    let (case, events) = run(case, step("seal"), &reference);
    let Event::StepCompleted(sealed) = &events[0] else { unreachable!() };
    assert_eq!(sealed.seal_name.as_deref(), Some("旬邑县行政审批服务局行政审批专用章"), "the unified approval seal");
    let (case, events) = run(case, step("dispatch"), &reference);
    assert_eq!(kinds(&events), ["StepCompleted", "DeliveryRequested"]);
    let steps: Vec<&str> = case.steps.iter().map(|s| s.title.as_str()).collect();
    assert_eq!(steps, ["初审（材料审查）", "复审（审核意见）", "制证", "盖章", "出件"]);
    assert!(steps::delivery_due(&case, &reference).is_none(), "out: no longer watched");
}

/// 第四十二条: one extension with the head's approval, ten working days (fifteen under joint
/// handling, whose limit is 45 days where the general 20 would apply), with its notice.
#[test]
fn an_extension_is_granted_once_with_approval_and_told_to_the_applicant() {
    let reference = Reference::builtin();
    let (case, _) = run(Case::open(&application_for(&reference, FOOD)), Command::Examine, &reference);
    let statutory = case.statutory_date.unwrap();
    let extend =
        Command::Extend {
            officer: "赵初审".into(), approved_by: "局长 王伟".into(), reason: "需补充现场核查".into()
        };
    let ctx = context(&reference);
    let unapproved = Command::Extend { officer: "赵初审".into(), approved_by: " ".into(), reason: "x".into() };
    assert_eq!(decide(&case, &unapproved, &ctx), Err(Rejection::Blank("approved_by")));
    let (case, events) = run(case, extend.clone(), &reference);
    let Event::ExtensionGranted(granted) = &events[0] else { panic!("{events:?}") };
    assert_eq!(granted.extra_days, 10);
    assert_eq!(case.statutory_date, Some(reference.calendar.add_working_days(statutory, 10)));
    assert_eq!(case.documents.last().unwrap().title, "延长审批期限告知书");
    assert_eq!(decide(&case, &extend, &ctx), Err(Rejection::AlreadyExtended));

    let mut joint = reference.matter(FOOD).unwrap().clone();
    joint.co_departments = vec!["11610429MB291234CH".into()];
    let routing = routing::Routing {
        authority_code: joint.department.clone(),
        authority_name: String::new(),
        tier: "county".into(),
        rule: String::new(),
        reason: String::new(),
        consulted: vec![],
    };
    assert_eq!(super::decide::statutory_days(&joint, &routing), 45, "joint handling: 45 days");
    assert_eq!(crate::steps::extension_days(true), 15);
}

/// Seed 000 and DOMAIN.md: a (代)取件人 collects with the acceptance notice and the applicant's
/// ID; an enterprise sends an agent with a 委托书; the 送达回证 says who collected and how.
#[test]
fn an_agent_collects_with_the_notice_and_ids_and_an_enterprise_needs_its_authorization() {
    let reference = Reference::builtin();
    let mut app = application(&reference);
    app.delivery_method = "window".into();
    let (case, _) = run(Case::open(&app), Command::Examine, &reference);
    let (case, _) = approve_and_issue(case, &reference);
    let ctx = context(&reference);
    let agent = Some(Agent { id_number: "610429199001011234".into(), authorization_number: None });
    let mut wrong_notice = collect_at_window(&case, "11010519491231002X", agent.clone());
    if let Command::Collect { notice_number, .. } = &mut wrong_notice {
        *notice_number = Some("旬受〔2026〕999999号".into());
    }
    assert!(matches!(decide(&case, &wrong_notice, &ctx), Err(Rejection::WrongNotice { .. })));
    let (case, events) = run(case.clone(), collect_at_window(&case, "11010519491231002X", agent), &reference);
    let Event::ResultCollected(collected) = &events[0] else { unreachable!() };
    assert!(collected.agent && collected.id_checked);
    let receipt = case.documents.iter().find(|d| d.kind == "pickup_record").unwrap();
    let html = documents::render(&case, receipt, &events[0], &reference);
    assert!(html.contains("代取件人") && html.contains(case.acceptance_notice.as_deref().unwrap()), "{html}");

    let mut firm = application_for(&reference, ENTERPRISE);
    firm.applicant.id_type = "001".into();
    firm.applicant.id_number = "91610429MA6XYZ1234".into();
    firm.delivery_method = "window".into();
    let (case, _) = run(Case::open(&firm), Command::Examine, &reference);
    let (case, _) = approve_and_issue(case, &reference);
    let unauthorised = Some(Agent { id_number: "610429199001011234".into(), authorization_number: None });
    assert_eq!(
        decide(&case, &collect_at_window(&case, "91610429MA6XYZ1234", None), &ctx),
        Err(Rejection::AuthorizationMissing)
    );
    assert_eq!(
        decide(&case, &collect_at_window(&case, "91610429MA6XYZ1234", unauthorised), &ctx),
        Err(Rejection::AuthorizationMissing)
    );
    let authorised =
        Some(Agent { id_number: "610429199001011234".into(), authorization_number: Some("委托书 2026-118".into()) });
    let (case, _) = run(case.clone(), collect_at_window(&case, "91610429MA6XYZ1234", authorised), &reference);
    assert_eq!(case.state, CaseState::Archived);
}

/// Results go back to the village station that took the application in, or to the locker of
/// the accepting centre (the county hall's where it has none).
#[test]
fn results_go_back_to_the_village_station_or_the_nearest_locker() {
    let reference = Reference::builtin();
    let at = |method: &str, point: &str| {
        let mut app = application(&reference);
        app.delivery_method = method.into();
        app.service_point.code = point.into();
        app.service_point.name = reference.service_point(point).unwrap().name.clone();
        let (case, _) = run(Case::open(&app), Command::Examine, &reference);
        approve_and_issue(case, &reference).0.pickup.unwrap()
    };
    assert_eq!(at("village_station", "610429100201").place, "土桥1村便民服务站");
    assert_eq!(at("locker", "610429100201").place, "旬邑县土桥镇便民服务中心门厅自助取件柜", "its township's locker");
    assert_eq!(at("locker", "610429102201").place, "旬邑县政务服务中心一楼24小时自助取件柜", "none there: the hall's");
}

/// Seed 001: a red card for a material demanded outside the guide, recorded at the counter; a
/// red card sends a 督办单, which the unit answers by its date or the next level is warned.
#[test]
fn a_red_card_orders_supervision_answered_by_a_date_or_escalated() {
    let reference = Reference::builtin();
    let case = to_routed(&reference);
    let ctx = context(&reference);
    let complain = |demanded: &str| Command::Complain { officer: "综合窗口 刘".into(), demanded: demanded.into() };
    assert_eq!(decide(&case, &complain("经营场所使用证明"), &ctx), Err(Rejection::InGuide("经营场所使用证明".into())));
    let (case, events) = run(case, complain("村委会出具的无犯罪证明"), &reference);
    assert_eq!(kinds(&events), ["DeadlineWarning", "SupervisionOrdered"]);
    let Event::SupervisionOrdered(order) = &events[1] else { unreachable!() };
    assert_eq!(
        (order.department_code.as_str(), calendar::iso_date(order.answer_by).as_str()),
        ("11610429MB2912345A", "2026-11-25")
    );
    assert_eq!(case.documents.last().unwrap().title, "督办单");
    // Unanswered past its date: the next level hears, and no second order follows.
    let late = context_at(&reference, order.answer_by + 1);
    let (unanswered, events) = run_with(case.clone(), Command::CheckDeadlines, &late);
    assert!(warned(&events).contains(&("supervision".into(), "red".into())), "{events:?}");
    assert!(!kinds(&events).contains(&"SupervisionOrdered"));
    assert!(unanswered.supervisions.iter().all(|s| !s.answered));
    let answer = Command::AnswerSupervision {
        order_number: order.order_number.clone(),
        officer: "王审批".into(),
        answer: "已约谈窗口人员，退回多收材料".into(),
    };
    let (case, _) = run(case, answer.clone(), &reference);
    let after = warned(&decide(&case, &Command::CheckDeadlines, &late).unwrap());
    assert!(after.iter().all(|(scope, _)| scope != "supervision"), "answered in time: {after:?}");
    assert!(matches!(decide(&case, &answer, &ctx), Err(Rejection::NoSuchSupervision(_))));
}

/// 容缺: the file stays open while materials are owed; supplying them, or recording what became
/// of them once overdue, closes it.
#[test]
fn a_case_owing_materials_is_archived_only_once_they_are_supplied_or_their_outcome_recorded() {
    let reference = Reference::builtin();
    let mut app = application(&reference);
    app.materials.retain(|m| m != "经营场所使用证明");
    app.commits_to_supply = true;
    app.delivery_method = "window".into();
    let (case, _) = run(Case::open(&app), Command::Examine, &reference);
    let (case, _) = approve_and_issue(case, &reference);
    let (case, events) = run(case.clone(), collect_at_window(&case, "11010519491231002X", None), &reference);
    assert_eq!(kinds(&events), ["ResultCollected"], "still owed: not archived");
    assert!(matches!(decide(&case, &Command::Archive, &context(&reference)), Err(Rejection::MaterialsOwed(_))));
    let close = Command::CloseCommitment {
        officer: "李受理".into(), outcome: "逾期未补齐，已记入信用记录".into()
    };
    assert_eq!(decide(&case, &close, &context(&reference)), Err(Rejection::NoOverdueCommitment), "not due yet");
    let supplied =
        Command::Supplement { materials: vec!["经营场所使用证明".into()], received_by: "李受理".into() };
    let (done, events) = run(case.clone(), supplied, &reference);
    assert_eq!((kinds(&events), done.state), (vec!["MaterialsSupplemented", "CaseArchived"], CaseState::Archived));
    let overdue = context_at(&reference, case.commitment_date.unwrap() + 1);
    let (closed, events) = run_with(case, close, &overdue);
    assert_eq!((kinds(&events), closed.state), (vec!["CommitmentClosed", "CaseArchived"], CaseState::Archived));
}
