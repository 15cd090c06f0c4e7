//! 电子监察 (seeds 001, 004): what a supervisor must look at today, case by case — limits near or
//! missed, steps stalled, applicants told more than once to supplement, refusals without their
//! legal basis, fees outside the guide, bad reviews not yet looked into, 督办 past its date.
use contracts::Event;
use serde::Serialize;

use super::calendar;
use super::case::{Case, CaseState};
use super::deadlines::{standing, Level};
use super::reference::Reference;
use super::reports::CaseUnits;

/// The kinds of item on the board.
pub const KINDS: [&str; 7] = [
    "deadline",
    "stalled",
    "repeated_supplements",
    "refusal_without_basis",
    "fee_outside_guide",
    "bad_review_unanswered",
    "supervision_overdue",
];

/// One thing on the board.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BoardItem {
    pub case_number: String,
    /// One of `KINDS`.
    pub kind: &'static str,
    /// The card it earns.
    pub level: Level,
    pub detail: String,
    /// The units the case went through, so that the board filters as the reports count.
    #[serde(flatten)]
    pub units: CaseUnits,
}

/// What a case still open (or just closed) puts on the board `today`; `last_event_day` is the
/// day of its latest event, and a step with no event for `stalled_after` working days is stalled.
pub fn items_of(
    case: &Case,
    last_event_day: i32,
    today: i32,
    stalled_after: i32,
    reference: &Reference,
) -> Vec<BoardItem> {
    let mut items = Vec::new();
    let mut put = |kind: &'static str, level: Level, detail: String| {
        items.push(item(case, kind, level, detail, reference));
    };
    let undecided = case.decision.is_none() && !matches!(case.state, CaseState::NotAccepted | CaseState::Withdrawn);
    if undecided {
        if let Some(stand) = standing(case, today, reference) {
            if let Some(level) = stand.level {
                let left = stand.working_days_left;
                let when = if left >= 0 {
                    format!("剩余 {left} 个工作日")
                } else {
                    format!("已超期 {} 个工作日", -left)
                };
                put("deadline", level, format!("承诺办结日期 {}，{when}", calendar::iso_date(stand.deadline)));
            }
        }
    }
    let idle = reference.calendar.working_days_between(last_event_day, today);
    if !case.state.is_final() && idle >= stalled_after {
        let level = if idle >= 2 * stalled_after { Level::Red } else { Level::Warning };
        put("stalled", level, format!("{} 个工作日无办理记录（状态：{}）", idle, case.state));
    }
    if case.supplement_notices >= 2 {
        put("repeated_supplements", Level::Yellow, format!("告知补正 {} 次，违反一次性告知", case.supplement_notices));
    }
    if let Some(fee) = &case.fee {
        let matter = &case.application.matter;
        let guide = reference.matter_version(&matter.implementation_code, matter.version).map(|m| &m.fees);
        if guide.is_some_and(|guide| &fee.items != guide) {
            let charged: i64 = fee.items.iter().map(|i| i.amount_fen).sum();
            put(
                "fee_outside_guide",
                Level::Red,
                format!("收费项目或金额（{:.2} 元）与办事指南不符", charged as f64 / 100.0),
            );
        }
    }
    for rectification in case.rectifications.iter().filter(|r| !r.closed && r.substantiated.is_none()) {
        let overdue = today > rectification.deadline;
        put(
            "bad_review_unanswered",
            if overdue { Level::Red } else { Level::Yellow },
            format!(
                "差评 {} 未核实，整改期限 {}",
                rectification.item_number,
                calendar::iso_date(rectification.deadline)
            ),
        );
    }
    for order in case.supervisions.iter().filter(|s| !s.answered && s.answer_by < today) {
        put(
            "supervision_overdue",
            Level::Red,
            format!("督办单 {} 应于 {} 前反馈，至今未反馈", order.order_number, calendar::iso_date(order.answer_by)),
        );
    }
    items
}

/// A refusal or denial given without its legal basis or reason, as its event records it.
pub fn unfounded_refusal(case: &Case, event: &Event, reference: &Reference) -> Option<BoardItem> {
    let detail = match event {
        Event::AcceptanceRefused(e) if e.legal_basis.trim().is_empty() => "不予受理未载明法律依据",
        Event::CaseDecided(e) if e.outcome == "denied" && e.reason.as_deref().is_none_or(|r| r.trim().is_empty()) => {
            "不予许可未说明理由"
        }
        _ => return None,
    };
    Some(item(case, "refusal_without_basis", Level::Red, detail.into(), reference))
}

fn item(case: &Case, kind: &'static str, level: Level, detail: String, reference: &Reference) -> BoardItem {
    debug_assert!(KINDS.contains(&kind), "{kind} is listed in KINDS");
    BoardItem { case_number: case.case_number.clone(), kind, level, detail, units: CaseUnits::of(case, reference) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::Command;
    use crate::testing::*;

    #[test]
    fn an_idle_case_told_twice_is_on_the_board_twice() {
        let reference = Reference::builtin();
        let mut app = application(&reference);
        let all = app.materials.clone();
        app.materials.truncate(1);
        let case = Case::open(&app);
        let (case, _) = run(case, Command::Examine, &reference);
        let supplement = |materials: Vec<String>| Command::Supplement { materials, received_by: "刘代办".into() };
        let (case, _) = run(case, supplement(vec![all[1].clone()]), &reference);
        assert_eq!(case.supplement_notices, 2, "told once on examining, again after a partial supplement");
        let day = calendar::day_of(app.occurred_at);
        let kinds = |today: i32| {
            items_of(&case, day, today, 3, &reference).iter().map(|i| (i.kind, i.level.as_str())).collect::<Vec<_>>()
        };
        assert_eq!(kinds(day), vec![("repeated_supplements", "yellow")]);
        let later = day + 5; // Friday + 5 days: three working days on
        assert_eq!(kinds(later), vec![("stalled", "warning"), ("repeated_supplements", "yellow")]);
        assert_eq!(kinds(day + 14)[0], ("stalled", "red"), "twice the idle limit");
    }
}
