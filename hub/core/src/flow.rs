//! The flow record (流转表) of a case: each hand-over, with time, from, to and handler, read
//! off the case's history.
use contracts::Event;
use serde::Serialize;

use super::case::Outcome;
use super::facts::DeliveryOutcome;
use super::reference::Reference;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Handover {
    pub at: i64,
    pub action: String,
    pub from: String,
    pub to: String,
    pub handler: String,
}

/// The hand-overs in a case's history, in order. Events that hand nothing over (tracking
/// scans, warnings, reviews) are not in the flow record.
pub fn flow_record(history: &[Event], reference: &Reference) -> Vec<Handover> {
    let Some(Event::ApplicationSubmitted(app)) = history.first() else { return Vec::new() };
    let name = |code: &str| reference.authority(code).map_or_else(|| code.to_string(), |a| a.name);
    let applicant = format!("申请人 {}", app.applicant.name);
    let point = app.service_point.name.clone();
    let mut department = point.clone();
    let mut window = point.clone();
    let mut record = Vec::new();
    let mut hand = |at: i64, action: &str, from: &str, to: &str, handler: &str| {
        record.push(Handover { at, action: action.into(), from: from.into(), to: to.into(), handler: handler.into() });
    };
    for event in history {
        let at = event.occurred_at();
        match event {
            Event::ApplicationSubmitted(e) => hand(at, "提交申请", &applicant, &point, &e.service_point.code),
            Event::SupplementRequested(e) => hand(at, "一次性告知补正", &point, &applicant, &e.officer),
            Event::MaterialsSupplemented(_) => hand(at, "补正材料", &applicant, &point, &app.service_point.code),
            Event::AcceptanceRefused(e) => hand(at, "不予受理", &point, &applicant, &e.officer),
            Event::CaseAccepted(e) => hand(at, "受理", &point, &point, &e.accepted_by),
            Event::CaseRouted(e) => {
                department = e.department_name.clone();
                hand(at, "材料流转", &point, &department, &e.rule);
            }
            Event::ProcedureStarted(e) => {
                let to = e.departments.iter().map(|d| name(d)).collect::<Vec<_>>().join("、");
                hand(at, &format!("特别程序开始：{}", e.procedure), &department, &to, &e.officer);
            }
            Event::ProcedureCompleted(e) => {
                hand(at, &format!("特别程序结束：{}", e.procedure), &department, &department, &e.officer)
            }
            Event::OpinionGiven(e) => hand(at, "并联审批意见", &name(&e.department_code), &department, &e.officer),
            Event::CaseDecided(e) => {
                let decision = match Outcome::of(e) {
                    Outcome::Approved => "准予许可",
                    Outcome::Denied => "不予许可",
                };
                hand(at, decision, &department, &applicant, &e.officer)
            }
            Event::DeliveryRequested(_) => hand(at, "交邮寄送", &department, "邮政", ""),
            Event::DeliveryCompleted(e) if DeliveryOutcome::of(e) == DeliveryOutcome::Signed => {
                hand(at, "签收", "邮政", &applicant, e.signed_by.as_deref().unwrap_or(""))
            }
            Event::DeliveryCompleted(_) => hand(at, "投递失败退回", "邮政", &point, ""),
            Event::ResultReadyForPickup(e) => {
                window = e.place.clone();
                hand(at, "待领取", &department, &window, "");
            }
            Event::ResultCollected(e) => hand(at, "领取", &window, &applicant, &e.collected_by),
            Event::CaseArchived(_) => hand(at, "归档", &department, "档案室", ""),
            _ => {}
        }
    }
    record
}
