//! The flow record (流转表) of a case: each hand-over, with its time, the unit and the person
//! who gave (给件人) and the unit and the person who received (接件人), read off the case's
//! history. Units and people are named as they are printed, never by a code or a rule id.
use contracts::Event;
use serde::Serialize;

use super::case::{clerk_named, Outcome};
use super::documents::{procedure_title, SUPERVISION_SYSTEM};
use super::facts::DeliveryOutcome;
use super::reference::Reference;
use super::routing;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Handover {
    pub at: i64,
    pub action: String,
    /// The unit (or the applicant, or the carrier) that hands over.
    pub from: String,
    pub giver: String,
    pub to: String,
    pub receiver: String,
}

const CARRIER: &str = "中国邮政";

/// Shown where the receiving unit has not taken the case up yet.
const NOT_YET_TAKEN_UP: &str = "待接件";

/// The hand-overs in a case's history, in order. Events that hand nothing over (tracking
/// scans, warnings, reviews) are not in the flow record.
pub fn flow_record(history: &[Event], reference: &Reference) -> Vec<Handover> {
    let Some(Event::ApplicationSubmitted(app)) = history.first() else { return Vec::new() };
    let name = |code: &str| reference.authority(code).map_or_else(|| code.to_string(), |a| a.name);
    let applicant_unit = "申请人".to_string();
    let applicant = app.applicant.name.clone();
    let point = app.service_point.name.clone();
    let mut clerk = clerk_named(&app.received_by);
    let mut department = point.clone();
    let mut decider = String::new();
    let mut window = point.clone();
    let mut courier = NOT_YET_TAKEN_UP.to_string();
    let mut awaiting_carrier: Option<usize> = None;
    let archive = reference.authority(&reference.county.approval_bureau);
    let mut record: Vec<Handover> = Vec::new();
    // Hand-overs to the deciding unit wait for the first of its officers who acts on the case.
    let mut awaiting_receiver: Vec<usize> = Vec::new();
    for event in history {
        let at = event.occurred_at();
        let mut hand = |action: String, from: &str, giver: &str, to: &str, receiver: &str| {
            record.push(Handover {
                at,
                action,
                from: from.into(),
                giver: giver.into(),
                to: to.into(),
                receiver: receiver.into(),
            });
            record.len() - 1
        };
        let acting = match event {
            Event::ApplicationSubmitted(e) => {
                hand("提交申请".into(), &applicant_unit, &applicant, &point, &clerk_named(&e.received_by));
                None
            }
            Event::SupplementRequested(e) => {
                hand("一次性告知补正".into(), &point, &e.officer, &applicant_unit, &applicant);
                None
            }
            Event::MaterialsSupplemented(e) => {
                clerk = clerk_named(&e.received_by);
                hand("补正材料".into(), &applicant_unit, &applicant, &point, &clerk);
                None
            }
            Event::AcceptanceRefused(e) => {
                hand("不予受理".into(), &point, &e.officer, &applicant_unit, &applicant);
                None
            }
            Event::CaseAccepted(_) => {
                hand("受理".into(), &point, &clerk, &point, &clerk);
                None
            }
            Event::CaseRouted(e) => {
                department = e.department_name.clone();
                let action = format!("材料流转（{}）", routing::rule_title(&e.rule));
                let index = hand(action, &point, &clerk, &department, NOT_YET_TAKEN_UP);
                awaiting_receiver.push(index);
                None
            }
            Event::ProcedureStarted(e) => {
                let to = e.departments.iter().map(|d| name(d)).collect::<Vec<_>>().join("、");
                let action = format!("{}开始", procedure_title(&e.procedure));
                hand(action, &department, &e.officer, &to, &e.officer);
                Some(e.officer.clone())
            }
            Event::ProcedureCompleted(e) => {
                let action = format!("{}结束", procedure_title(&e.procedure));
                hand(action, &department, &e.officer, &department, &e.officer);
                Some(e.officer.clone())
            }
            Event::OpinionGiven(e) => {
                let index =
                    hand("并联审批意见".into(), &name(&e.department_code), &e.officer, &department, NOT_YET_TAKEN_UP);
                awaiting_receiver.push(index);
                None
            }
            Event::CaseDecided(e) => {
                let decision = match Outcome::of(e) {
                    Outcome::Approved => "准予许可",
                    Outcome::Denied => "不予许可",
                };
                decider = e.officer.clone();
                hand(decision.into(), &department, &e.officer, &department, &e.officer);
                Some(e.officer.clone())
            }
            // A step is done inside the unit; what 出件 hands on shows in the next hand-over.
            Event::StepCompleted(e) => {
                hand(e.title.clone(), &department, &e.officer, &department, &e.officer);
                Some(e.officer.clone())
            }
            Event::ExtensionGranted(e) => {
                hand("延期告知".into(), &department, &e.officer, &applicant_unit, &applicant);
                Some(e.officer.clone())
            }
            Event::HearingRightsNotified(e) => {
                hand("听证权利告知".into(), &department, &e.officer, &applicant_unit, &applicant);
                Some(e.officer.clone())
            }
            Event::CommitmentSigned(_) => {
                hand("签署容缺承诺书".into(), &applicant_unit, &applicant, &point, &clerk);
                None
            }
            Event::CommitmentClosed(e) => {
                hand("容缺承诺处理".into(), &point, &e.officer, &department, &e.officer);
                None
            }
            Event::SupervisionOrdered(e) => {
                let supervisor = archive.as_ref().map_or_else(String::new, |a| a.name.clone());
                hand("督办".into(), &supervisor, SUPERVISION_SYSTEM, &name(&e.department_code), NOT_YET_TAKEN_UP);
                None
            }
            Event::SupervisionAnswered(e) => {
                let supervisor = archive.as_ref().map_or_else(String::new, |a| a.name.clone());
                hand("督办反馈".into(), &department, &e.officer, &supervisor, SUPERVISION_SYSTEM);
                None
            }
            Event::DeliveryOrderCreated(_) => {
                // The carrier's receiver is named by its first scan.
                awaiting_carrier = Some(hand("交邮寄送".into(), &department, &decider, CARRIER, NOT_YET_TAKEN_UP));
                None
            }
            Event::TrackingEvent(e) => {
                courier = format!("{} {}", e.office, e.operator);
                if let Some(index) = awaiting_carrier.take() {
                    record[index].receiver = courier.clone();
                }
                None
            }
            Event::DeliveryCompleted(e) if DeliveryOutcome::of(e) == DeliveryOutcome::Signed => {
                hand("签收".into(), CARRIER, &courier, &applicant_unit, e.signed_by.as_deref().unwrap_or(&applicant));
                None
            }
            Event::DeliveryCompleted(_) => {
                hand("投递失败退回".into(), CARRIER, &courier, &window, &clerk);
                None
            }
            Event::ResultReadyForPickup(e) => {
                window = e.place.clone();
                hand("待领取".into(), &department, &decider, &window, &window_keeper(&e.method));
                None
            }
            Event::ResultCollected(e) => {
                let giver =
                    if e.handed_out_by.is_empty() { "自助取件柜".to_string() } else { e.handed_out_by.clone() };
                hand("领取".into(), &window, &giver, &applicant_unit, &e.collected_by);
                None
            }
            Event::CaseArchived(e) => {
                let (to, receiver) = archive
                    .as_ref()
                    .map(|a| (format!("{}档案室", a.name), a.records.archivist.clone()))
                    .unwrap_or_default();
                hand("归档".into(), &department, &e.archivist, &to, &receiver);
                None
            }
            _ => None,
        };
        if let Some(officer) = acting {
            for index in awaiting_receiver.drain(..) {
                record[index].receiver = officer.clone();
            }
        }
    }
    record
}

/// Who holds a result waiting to be collected: the window's clerk, the village station's, or
/// the locker.
fn window_keeper(method: &str) -> String {
    match method {
        "locker" => "自助取件柜".into(),
        "village_station" => "便民服务站代办员".into(),
        _ => "出件窗口".into(),
    }
}
