//! Warning cards as seed 001 gives them (item 14): a real-time 预警 to the handling unit while
//! a limit is near, a 黄牌 once it is missed, a 红牌 once missed by more than the county's
//! threshold (and a 督办单, see `case::react`); red at once past the statutory limit and for a
//! material demanded outside the guide. Watched: the promised date, the statutory limit, each
//! review step's and special procedure's own limit, the ten days from decision to delivery
//! (第四十四条), a tolerant acceptance's commitment, each supervision order's answer date and
//! each bad review's rectification.
//! Each card is raised once; the day the next falls due is the case's durable timer.
use contracts::{DeadlineWarning, Event};

use super::calendar::{self, iso_date};
use super::case::{Case, CaseState, Context};
use super::reference::Reference;
use super::steps;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// 预警: the limit is near.
    Warning,
    /// 黄牌: the limit is missed.
    Yellow,
    /// 红牌: missed past the county's threshold, the statutory limit broken, or a demand
    /// outside the guide.
    Red,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Warning => "warning",
            Level::Yellow => "yellow",
            Level::Red => "red",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Level::Warning => "预警",
            Level::Yellow => "黄牌",
            Level::Red => "红牌",
        }
    }

    pub fn parse(text: &str) -> Option<Level> {
        [Level::Warning, Level::Yellow, Level::Red].into_iter().find(|l| l.as_str() == text)
    }
}

/// Scope of a red card for a material or condition demanded outside the guide.
pub const OUTSIDE_GUIDE: &str = "outside_guide";
/// Scope of the warning that a supervision order went unanswered: the next level hears.
pub const SUPERVISION: &str = "supervision";

/// Scope of the cards about a bad review's rectification item.
pub const RECTIFICATION: &str = "rectification";

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

/// The card a limit has earned on `today`: 预警 within `warn_within` working days of it,
/// 黄牌 once past, 红牌 once past by more than the county's threshold.
fn card(today: i32, deadline: i32, warn_within: i32, reference: &Reference) -> Option<Level> {
    let calendar = &reference.calendar;
    if today > deadline {
        let overdue = calendar.working_days_between(deadline, today);
        Some(if overdue > reference.county.policy.red_card_after_days as i32 { Level::Red } else { Level::Yellow })
    } else if calendar.working_days_between(today, deadline) <= warn_within {
        Some(Level::Warning)
    } else {
        None
    }
}

/// Where a case stands against its promised date on a day: the working days left and the
/// card it has earned, if any.
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
    let warn_within = ((f64::from(total) * reference.county.policy.warning_share).ceil() as i32).max(1);
    Some(Standing { deadline, working_days_left: left, level: card(today, deadline, warn_within, reference) })
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
    let number = &case.case_number;
    let matter = &case.application.matter.name;
    let deciding = matches!(case.state, CaseState::Accepted | CaseState::Routed);
    let running = case.procedure.as_ref().filter(|_| case.state == CaseState::Suspended);
    let policy = &reference.county.policy;
    let promised_runs = deciding || running.is_some_and(|open| !policy.promised_clock_pauses.contains(&open.procedure));
    let statutory_runs = deciding || running.is_some_and(|open| !stops_statutory_clock(&open.procedure));
    // A card about one limit, unless one as severe was already raised about it.
    let mut raise = |scope: &'static str,
                     step: Option<String>,
                     due_date: i32,
                     level: Option<Level>,
                     message: &dyn Fn(Level) -> String| {
        let Some(level) = level else { return };
        if raised(case, &prefix(scope, due_date, step.as_deref())) < Some(level) {
            due.push(Due { level, scope, step, due_date, message: message(level) });
        }
    };
    if let (true, Some(standing)) = (promised_runs, standing(case, today, reference)) {
        let date = iso_date(standing.deadline);
        let left = standing.working_days_left;
        raise("case", None, standing.deadline, standing.level, &|level| match level {
            Level::Warning => format!("办件 {number}（{matter}）距承诺办结日期 {date} 还有 {left} 个工作日（预警）"),
            level => format!("办件 {number}（{matter}）已超过承诺办结日期 {date}（{}）", level.title()),
        });
    }
    // Past the statutory limit the law, not only the county's promise, is broken: red at once.
    if let (true, Some(statutory)) = (statutory_runs, case.statutory_date) {
        let level = (today > statutory).then_some(Level::Red);
        raise("statutory", None, statutory, level, &|_| {
            format!("办件 {number}（{matter}）已超过法定办结时限 {}（红牌）", iso_date(statutory))
        });
    }
    if let (CaseState::Suspended, Some(open)) = (case.state, &case.procedure) {
        let level = card(today, open.limit_date, 1, reference);
        let title = super::documents::procedure_title(&open.procedure);
        raise("step", Some(open.procedure.clone()), open.limit_date, level, &|level| {
            step_message(number, title, open.limit_date, level)
        });
    }
    // A review step of the 审查细则, or 制证/盖章/出件 within the ten days after the decision.
    if let Some(next) = steps::next_step(case, reference) {
        if let Some(limit) = next.due_date {
            let (scope, what) = match case.state {
                CaseState::Approved => ("delivery", format!("{}（决定之日起十日内送达，第四十四条）", next.title)),
                _ => ("step", next.title.clone()),
            };
            let level = card(today, limit, 1, reference);
            raise(scope, Some(next.step.clone()), limit, level, &|level| step_message(number, &what, limit, level));
        }
    }
    // Owed materials stay owed after the result is out: the commitment is tracked until kept
    // or its outcome recorded.
    if let (true, Some(promised)) = (case.owes_materials(), case.commitment_date) {
        let level = (today > promised).then_some(Level::Yellow);
        raise("commitment", None, promised, level, &|_| {
            format!(
                "办件 {number} 容缺受理承诺 {} 前补齐的材料仍未提交：{}（黄牌）",
                iso_date(promised),
                case.outstanding_materials.join("、")
            )
        });
    }
    // A bad review's rectification (seed 002): warned and carded like any limit until closed.
    for item in case.rectifications.iter().filter(|r| !r.closed) {
        let level = card(today, item.deadline, 1, reference);
        let what = format!("差评整改 {}", item.item_number);
        raise(RECTIFICATION, Some(item.item_number.clone()), item.deadline, level, &|level| {
            step_message(number, &what, item.deadline, level)
        });
    }
    for order in case.supervisions.iter().filter(|s| !s.answered) {
        let level = (today > order.answer_by).then_some(Level::Red);
        raise(SUPERVISION, Some(order.order_number.clone()), order.answer_by, level, &|_| {
            format!(
                "督办单 {} 逾期未反馈（应于 {} 前反馈），办件 {number}，提请上一级督办",
                order.order_number,
                iso_date(order.answer_by)
            )
        });
    }
    due
}

fn step_message(number: &str, what: &str, limit: i32, level: Level) -> String {
    match level {
        Level::Warning => format!("办件 {number} 的{what}将于 {} 到期（预警）", iso_date(limit)),
        level => format!("办件 {number} 的{what}已超过时限 {}（{}）", iso_date(limit), level.title()),
    }
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
    let step_due = steps::next_step(case, reference).and_then(|next| next.due_date);
    let answers = case.supervisions.iter().filter(|s| !s.answered).map(|s| s.answer_by);
    let rectifications = case.rectifications.iter().filter(|r| !r.closed).map(|r| r.deadline);
    let deadlines = [
        case.promised_date,
        case.statutory_date,
        case.procedure.as_ref().map(|p| p.limit_date),
        case.commitment_date,
        step_due,
    ];
    let last = deadlines.into_iter().flatten().chain(answers).chain(rectifications).max()?;
    // A red card comes some working days after the limit: look as far as holidays may stretch them.
    let red_after = reference.county.policy.red_card_after_days as i32;
    (today..=last.max(today) + 2 * red_after + 15).find(|day| !due(case, *day, reference).is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{accepted_case, context_at};

    #[test]
    fn cards_come_warning_then_yellow_then_red_each_once() {
        let reference = Reference::builtin();
        // A 20-working-day matter accepted on Friday 2026-11-20.
        let mut case = accepted_case(&reference, 20);
        let deadline = case.promised_date.unwrap();
        let mut raised = Vec::new();
        for day in calendar::day_of(case.accepted_at.unwrap())..=deadline + 6 {
            for event in warnings(&case, &context_at(&reference, day)) {
                let Event::DeadlineWarning(w) = &event else { unreachable!() };
                raised.push((iso_date(day), w.level.clone(), w.escalate));
                case = crate::evolve(case, &event);
            }
        }
        let levels: Vec<&str> = raised.iter().map(|(_, level, _)| level.as_str()).collect();
        assert_eq!(levels, ["warning", "yellow", "red"], "{raised:?}");
        // 30% of 20 = 6 working days left: 预警; the day after the deadline: 黄牌; more than
        // three working days past it: 红牌, escalated.
        assert_eq!(calendar::iso_date(deadline), "2026-12-18");
        assert_eq!((raised[0].0.as_str(), raised[0].2), ("2026-12-10", false));
        assert_eq!((raised[1].0.as_str(), raised[1].2), ("2026-12-19", false));
        assert_eq!((raised[2].0.as_str(), raised[2].2), ("2026-12-24", true));
    }

    #[test]
    fn the_standing_shows_the_level_a_warning_would_have_each_day() {
        let reference = Reference::builtin();
        let case = accepted_case(&reference, 20);
        let deadline = case.promised_date.unwrap();
        let on = |date: &str| standing(&case, calendar::parse_iso_date(date).unwrap(), &reference).unwrap();
        assert_eq!(on("2026-11-20"), Standing { deadline, working_days_left: 20, level: None });
        assert_eq!((on("2026-12-09").working_days_left, on("2026-12-09").level), (7, None));
        assert_eq!((on("2026-12-10").working_days_left, on("2026-12-10").level), (6, Some(Level::Warning)));
        assert_eq!(on("2026-12-19").level, Some(Level::Yellow));
        assert_eq!(on("2026-12-23").level, Some(Level::Yellow), "three working days past: still yellow");
        assert_eq!(on("2026-12-24").level, Some(Level::Red));
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
        let red_day = calendar::parse_iso_date("2026-12-24").unwrap();
        for day in [case.promised_date.unwrap() + 1, red_day] {
            for event in warnings(&case, &context_at(&reference, day)) {
                case = crate::evolve(case, &event);
            }
        }
        let statutory = case.statutory_date.unwrap();
        assert_eq!(next_check(&case, red_day, &reference), Some(statutory + 1), "the statutory limit is still ahead");
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
        let Some(Event::DeadlineWarning(w)) = due.first() else { panic!("a warning on the day") };
        assert_eq!(w.level, "warning");
        assert_eq!(next_check(&case, today, &reference), Some(today), "checked the same day");
    }
}
