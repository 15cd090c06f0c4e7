//! The steps of a case between acceptance and hand-over, as seed 003 names them (受理—审核—
//! 决定—制作证照—加盖印章—出件): the review steps of the matter's 审查细则 (county data) before the
//! decision, then 制证, 盖章 and 出件 after an approval; and the licensing law's limits on them.
use super::case::{Case, CaseState};
use super::reference::{Reference, ReviewStep};

/// 制证, 盖章, 出件: after an approval, in this order.
pub const RESULT_STEPS: [(&str, &str); 3] = [("make", "制证"), ("seal", "盖章"), ("dispatch", "出件")];

/// Working days from the decision within which the licence is issued or served (第四十四条).
pub const DELIVERY_DAYS: u32 = 10;

/// The general decision limit (第四十二条), and what joint or centralised handling has instead.
pub const GENERAL_LIMIT_DAYS: u32 = 20;
pub const JOINT_LIMIT_DAYS: u32 = 45;

/// Working days one extension adds: 10, or 15 under joint handling (第四十二条).
pub fn extension_days(joint: bool) -> u32 {
    if joint {
        15
    } else {
        10
    }
}

/// The step a case waits on next, with its limit where it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextStep {
    pub step: String,
    pub title: String,
    pub due_date: Option<i32>,
}

/// The step `case` waits on: its next review step while routed, the next of 制证, 盖章, 出件
/// once approved; `None` otherwise.
pub fn next_step(case: &Case, reference: &Reference) -> Option<NextStep> {
    let done = |step: &str| case.steps.iter().any(|s| s.step == step);
    let started = case.steps.last().map(|s| s.day).or(case.accepted_at.map(super::calendar::day_of))?;
    match case.state {
        CaseState::Routed => {
            let next = review_pending(case, reference).next()?;
            Some(NextStep {
                step: next.step.clone(),
                title: next.title.clone(),
                due_date: Some(reference.calendar.add_working_days(started, next.days)),
            })
        }
        CaseState::Approved => {
            let (step, title) = RESULT_STEPS.into_iter().find(|(step, _)| !done(step))?;
            Some(NextStep { step: step.into(), title: title.into(), due_date: delivery_due(case, reference) })
        }
        _ => None,
    }
}

/// The review steps of the matter's 审查细则 the case has not done yet, in order.
pub fn review_pending<'a>(case: &'a Case, reference: &'a Reference) -> impl Iterator<Item = &'a ReviewStep> {
    reference
        .review_steps(&case.application.matter.implementation_code)
        .iter()
        .filter(|s| !case.steps.iter().any(|done| done.step == s.step))
}

/// The last day the result of an approved case may leave (第四十四条), while it has not.
pub fn delivery_due(case: &Case, reference: &Reference) -> Option<i32> {
    let dispatched = case.steps.iter().any(|s| s.step == "dispatch");
    case.decided_day
        .filter(|_| !dispatched && case.decision.as_deref() == Some("approved"))
        .map(|day| reference.calendar.add_working_days(day, DELIVERY_DAYS))
}
