//! Time-limit warnings (超时预警): a prompt one working day before the promised date, yellow
//! once the working days left fall to the county's share of the promised ones, red when
//! overdue and again past the statutory limit; red also when a special procedure overruns its
//! own limit, and yellow when a tolerant acceptance's commitment is missed. Each warning is raised once; the day the next
//! one falls due is the case's durable timer.
use contracts::{DeadlineWarning, Event};

use super::calendar::{self, iso_date};
use super::case::{Case, CaseState, Context};
use super::reference::Reference;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Yellow,
    Prompt,
    Red,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Yellow => "yellow",
            Level::Prompt => "prompt",
            Level::Red => "red",
        }
    }

    fn parse(text: &str) -> Option<Level> {
        [Level::Yellow, Level::Prompt, Level::Red].into_iter().find(|l| l.as_str() == text)
    }
}

/// A warning that is due.
struct Due {
    level: Level,
    scope: &'static str,
    step: Option<String>,
    due_date: i32,
    message: String,
}

/// Identity of a raised warning: scope, the deadline it is about, the step, the level. A moved
/// deadline (after a pause) is a new deadline and may warn again.
pub fn key(warning: &DeadlineWarning) -> String {
    format!("{}:{}:{}:{}", warning.scope, warning.due_date, warning.step.as_deref().unwrap_or(""), warning.level)
}

fn prefix(scope: &str, due_date: i32, step: Option<&str>) -> String {
    format!("{scope}:{due_date}:{}:", step.unwrap_or(""))
}

/// The most severe level already raised about one deadline.
fn raised(case: &Case, prefix: &str) -> Option<Level> {
    case.warnings.iter().filter_map(|k| k.strip_prefix(prefix)).filter_map(Level::parse).max()
}

/// Where a case stands against its promised date on a day: the working days left and the
/// warning level it has reached, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub deadline: i32,
    pub working_days_left: i32,
    pub level: Option<Level>,
}

/// The standing of an accepted case with a promised date; `None` before acceptance.
pub fn standing(case: &Case, today: i32, reference: &Reference) -> Option<Standing> {
    let (deadline, accepted_at) = (case.promised_date?, case.accepted_at?);
    let calendar = &reference.calendar;
    let left = calendar.working_days_between(today, deadline);
    let total = calendar.working_days_between(calendar::day_of(accepted_at), deadline).max(1);
    let level = if today > deadline {
        Some(Level::Red)
    } else if left <= 1 {
        Some(Level::Prompt)
    } else if f64::from(left) <= (f64::from(total) * reference.county.policy.yellow_share).ceil() {
        Some(Level::Yellow)
    } else {
        None
    };
    Some(Standing { deadline, working_days_left: left, level })
}

/// Procedures whose time the licensing law leaves out of its limits (第四十五条: 听证、招标、
/// 拍卖、检验、检测、检疫、鉴定、专家评审), as the hub names the ones it runs. Site inspection
/// and supplement after acceptance are not among them.
pub const STATUTORY_CLOCK_PAUSES: &[&str] = &["hearing", "expert_review"];

/// Whether the statutory clock stands still while `procedure` runs.
pub fn stops_statutory_clock(procedure: &str) -> bool {
    STATUTORY_CLOCK_PAUSES.contains(&procedure)
}

fn due(case: &Case, today: i32, reference: &Reference) -> Vec<Due> {
    let mut due = Vec::new();
    let matter = &case.application.matter.name;
    let deciding = matches!(case.state, CaseState::Accepted | CaseState::Routed);
    let running = case.procedure.as_ref().filter(|_| case.state == CaseState::Suspended);
    let policy = &reference.county.policy;
    let promised_runs = deciding || running.is_some_and(|open| !policy.promised_clock_pauses.contains(&open.procedure));
    let statutory_runs = deciding || running.is_some_and(|open| !stops_statutory_clock(&open.procedure));
    if let (true, Some(Standing { deadline, working_days_left: left, level })) =
        (promised_runs, standing(case, today, reference))
    {
        let due_date = iso_date(deadline);
        if let Some(level) = level.filter(|level| raised(case, &prefix("case", deadline, None)) < Some(*level)) {
            let message = match level {
                Level::Red => format!("办件 {}（{matter}）已超过承诺办结日期 {due_date}", case.case_number),
                _ => format!("办件 {}（{matter}）距承诺办结日期 {due_date} 还有 {left} 个工作日", case.case_number),
            };
            due.push(Due { level, scope: "case", step: None, due_date: deadline, message });
        }
    }
    // Past the statutory limit the promised one was long missed: escalated on its own, as the
    // law's limit, not the county's promise, is what was broken.
    if let (true, Some(statutory)) = (statutory_runs, case.statutory_date) {
        if today > statutory && raised(case, &prefix("statutory", statutory, None)).is_none() {
            let message = format!("办件 {}（{matter}）已超过法定办结时限 {}", case.case_number, iso_date(statutory));
            due.push(Due { level: Level::Red, scope: "statutory", step: None, due_date: statutory, message });
        }
    }
    if let (CaseState::Suspended, Some(open)) = (case.state, &case.procedure) {
        if today > open.limit_date && raised(case, &prefix("step", open.limit_date, Some(&open.procedure))).is_none() {
            let message = format!(
                "办件 {} 的特别程序 {} 已超过时限 {}",
                case.case_number,
                open.procedure,
                iso_date(open.limit_date)
            );
            due.push(Due {
                level: Level::Red,
                scope: "step",
                step: Some(open.procedure.clone()),
                due_date: open.limit_date,
                message,
            });
        }
    }
    // Owed materials stay owed after the result is out: the commitment is tracked until kept.
    if let (false, Some(promised)) = (case.outstanding_materials.is_empty(), case.commitment_date) {
        if today > promised && raised(case, &prefix("commitment", promised, None)).is_none() {
            let message = format!(
                "办件 {} 容缺受理承诺 {} 前补齐的材料仍未提交：{}",
                case.case_number,
                iso_date(promised),
                case.outstanding_materials.join("、")
            );
            due.push(Due { level: Level::Yellow, scope: "commitment", step: None, due_date: promised, message });
        }
    }
    due
}

/// The warnings due now and not yet raised, as events of the case.
pub fn warnings(case: &Case, ctx: &Context<'_>) -> Vec<Event> {
    due(case, ctx.today(), ctx.reference)
        .into_iter()
        .zip(case.seq + 1..)
        .map(|(due, n)| {
            DeadlineWarning {
                event_id: crate::ids::case_event(&case.case_number, n),
                case_number: case.case_number.clone(),
                occurred_at: ctx.now,
                level: due.level.as_str().into(),
                scope: due.scope.into(),
                step: due.step,
                due_date: due.due_date,
                department_code: case.handler_code(),
                escalate: due.level == Level::Red,
                message: due.message,
            }
            .into()
        })
        .collect()
}

/// The first day, from today on, on which a warning falls due; `None` when none ever will.
pub fn next_check(case: &Case, today: i32, reference: &Reference) -> Option<i32> {
    let deadlines =
        [case.promised_date, case.statutory_date, case.procedure.as_ref().map(|p| p.limit_date), case.commitment_date];
    let last = deadlines.into_iter().flatten().max()?;
    (today..=last.max(today) + 1).find(|day| !due(case, *day, reference).is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{accepted_case, context_at};

    #[test]
    fn warnings_come_yellow_then_prompt_then_red_each_once() {
        let reference = Reference::builtin();
        // A 20-working-day matter accepted on Friday 2026-11-20.
        let mut case = accepted_case(&reference, 20);
        let deadline = case.promised_date.unwrap();
        let mut raised = Vec::new();
        for day in calendar::day_of(case.accepted_at.unwrap())..=deadline + 3 {
            for event in warnings(&case, &context_at(&reference, day)) {
                let Event::DeadlineWarning(w) = &event else { unreachable!() };
                raised.push((iso_date(day), w.level.clone(), w.escalate));
                case = crate::evolve(case, &event);
            }
        }
        let levels: Vec<&str> = raised.iter().map(|(_, level, _)| level.as_str()).collect();
        assert_eq!(levels, ["yellow", "prompt", "red"], "{raised:?}");
        // 30% of 20 = 6 working days left: yellow; 1 left: prompt; the day after: red, escalated.
        assert_eq!(calendar::iso_date(deadline), "2026-12-18");
        assert_eq!(raised[0].0, "2026-12-10");
        assert_eq!(raised[1].0, "2026-12-17");
        assert_eq!((raised[2].0.as_str(), raised[2].2), ("2026-12-19", true));
    }

    #[test]
    fn the_standing_shows_the_level_a_warning_would_have_each_day() {
        let reference = Reference::builtin();
        let case = accepted_case(&reference, 20);
        let deadline = case.promised_date.unwrap();
        let on = |date: &str| standing(&case, calendar::parse_iso_date(date).unwrap(), &reference).unwrap();
        assert_eq!(on("2026-11-20"), Standing { deadline, working_days_left: 20, level: None });
        assert_eq!((on("2026-12-10").working_days_left, on("2026-12-10").level), (6, Some(Level::Yellow)));
        assert_eq!(on("2026-12-17").level, Some(Level::Prompt));
        assert_eq!(on("2026-12-19").level, Some(Level::Red));
        let mut submitted = case.clone();
        submitted.promised_date = None;
        assert_eq!(standing(&submitted, deadline, &reference), None, "no promise, no standing");
    }

    #[test]
    fn the_timer_points_at_the_next_warning_and_stops_after_the_last() {
        let reference = Reference::builtin();
        let mut case = accepted_case(&reference, 20);
        let accepted = calendar::day_of(case.accepted_at.unwrap());
        assert_eq!(next_check(&case, accepted, &reference).map(iso_date).as_deref(), Some("2026-12-10"));
        for event in warnings(&case, &context_at(&reference, case.promised_date.unwrap() + 1)) {
            case = crate::evolve(case, &event);
        }
        let statutory = case.statutory_date.unwrap();
        assert_eq!(
            next_check(&case, case.promised_date.unwrap() + 1, &reference),
            Some(statutory + 1),
            "the statutory limit is still ahead"
        );
        let past = warnings(&case, &context_at(&reference, statutory + 1));
        let Some(Event::DeadlineWarning(w)) = past.first() else { panic!("a statutory warning") };
        assert_eq!((w.scope.as_str(), w.level.as_str(), w.escalate), ("statutory", "red", true));
        for event in past {
            case = crate::evolve(case, &event);
        }
        assert_eq!(next_check(&case, statutory + 1, &reference), None, "nothing left to warn about");
    }

    #[test]
    fn an_instant_matter_is_due_the_day_it_is_accepted() {
        let reference = Reference::builtin();
        let case = accepted_case(&reference, 0);
        let today = calendar::day_of(case.accepted_at.unwrap());
        assert_eq!(case.promised_date, Some(today));
        let due = warnings(&case, &context_at(&reference, today));
        let Some(Event::DeadlineWarning(w)) = due.first() else { panic!("a prompt on the day") };
        assert_eq!(w.level, "prompt");
        assert_eq!(next_check(&case, today, &reference), Some(today), "checked the same day");
    }
}
