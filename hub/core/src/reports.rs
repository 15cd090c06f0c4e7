//! 办件通报 (seeds 001, 002, 004): the figures a county publishes per period and unit, each
//! defined once here over the cases' histories — what was received, accepted, refused, told to
//! supplement (and more than once: a breach of 一次性告知), decided on time, done at once, how many
//! trips it took, how results went out, how applicants graded it, which cards were raised, how
//! 督办 was answered and what fees came in and went back.
use std::collections::BTreeMap;

use contracts::Event;
use serde::Serialize;

use super::calendar::{self, iso_date, parse_iso_date};
use super::case::{evolve, Case};
use super::reference::Reference;

/// A reporting period: a day, a month, a quarter or a year (China Standard Time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Period {
    pub first_day: i32,
    pub last_day: i32,
}

impl Period {
    /// `2026-12-02`, `2026-12`, `2026-Q4` or `2026`.
    pub fn parse(text: &str) -> Result<Period, String> {
        let bad = || format!("a period is YYYY-MM-DD, YYYY-MM, YYYY-Qn or YYYY, not {text:?}");
        let first_of = |year: i32, month: u32| parse_iso_date(&format!("{year:04}-{month:02}-01")).ok_or_else(bad);
        let months = |year: i32, first: u32, count: u32| -> Result<Period, String> {
            let next = if first + count > 12 { first_of(year + 1, 1)? } else { first_of(year, first + count)? };
            Ok(Period { first_day: first_of(year, first)?, last_day: next - 1 })
        };
        let year = |y: &str| {
            y.parse::<i32>().ok().filter(|y| (1900..=9999).contains(y) && text.starts_with(&format!("{y:04}")))
        };
        match text.split('-').collect::<Vec<_>>().as_slice() {
            [y] => months(year(y).ok_or_else(bad)?, 1, 12),
            [y, q] if q.len() == 2 && q.starts_with('Q') => match q[1..].parse::<u32>() {
                Ok(n @ 1..=4) => months(year(y).ok_or_else(bad)?, 3 * n - 2, 3),
                _ => Err(bad()),
            },
            [y, m] if m.len() == 2 => match m.parse::<u32>() {
                Ok(m @ 1..=12) => months(year(y).ok_or_else(bad)?, m, 1),
                _ => Err(bad()),
            },
            [_, _, _] => parse_iso_date(text).map(|day| Period { first_day: day, last_day: day }).ok_or_else(bad),
            _ => Err(bad()),
        }
    }
}

/// Whose figures: the whole county, a township (its centre, villages and outlets), one service
/// point (a village station, a bank outlet, a centre), a window (窗口) of a hall or centre, a
/// deciding department, or one staff member (the token holder who took cases in or decided them).
/// A case is the unit's, and every figure of it counts there, when the case went through it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unit {
    County,
    Township(String),
    ServicePoint(String),
    Window(String),
    Department(String),
    Staff(String),
}

impl Unit {
    /// The unit a code names in the county's reference data.
    pub fn of_code(reference: &Reference, code: &str) -> Result<Unit, String> {
        if code == reference.county.code {
            Ok(Unit::County)
        } else if reference.county.townships.iter().any(|t| t.code == code) {
            Ok(Unit::Township(code.into()))
        } else if reference.service_point(code).is_some() {
            Ok(Unit::ServicePoint(code.into()))
        } else if reference.window(code).is_some() {
            Ok(Unit::Window(code.into()))
        } else if reference.authority(code).is_some() {
            Ok(Unit::Department(code.into()))
        } else {
            Err(format!("no unit {code} in county {}", reference.county.code))
        }
    }

    /// Whether a case of these units is this unit's.
    pub fn holds(&self, units: &CaseUnits) -> bool {
        match self {
            Unit::County => true,
            Unit::ServicePoint(code) => &units.point == code,
            Unit::Township(code) => &units.township == code,
            Unit::Window(code) => units.window.as_ref() == Some(code),
            Unit::Department(code) => units.department.as_ref() == Some(code),
            Unit::Staff(name) => &units.receiver == name || units.decider.as_ref() == Some(name),
        }
    }
}

/// The units a case went through: where and by whom it was taken in, who decided it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaseUnits {
    pub point: String,
    pub township: String,
    pub window: Option<String>,
    pub receiver: String,
    pub department: Option<String>,
    pub decider: Option<String>,
}

impl CaseUnits {
    pub fn of(case: &Case, reference: &Reference) -> CaseUnits {
        let app = &case.application;
        let township = reference.service_point(&app.service_point.code).map(|p| p.township_code.clone());
        CaseUnits {
            point: app.service_point.code.clone(),
            township: township.unwrap_or_else(|| reference.county.code.clone()),
            window: app.window.clone(),
            receiver: app.received_by.clone(),
            department: case.department_code.clone(),
            decider: case.decided_by.clone(),
        }
    }
}

/// A share: how many of how many, and the ratio (none of none: no ratio).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Share {
    pub count: u64,
    pub of: u64,
    pub rate: Option<f64>,
}

impl Share {
    fn of(count: u64, of: u64) -> Share {
        Share { count, of, rate: (of > 0).then(|| count as f64 / of as f64) }
    }
}

/// The figures of one period and unit. Each counts the events that fall in the period.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    pub first_day: String,
    pub last_day: String,
    /// Applications handed in (ApplicationSubmitted).
    pub received: u64,
    /// By channel, of those received: online, village station, bank outlet, centre counter; and
    /// 全城通办 (the applicant's domicile township is not the accepting point's).
    pub online: Share,
    pub village_station: Share,
    pub bank_outlet: Share,
    pub city_wide: Share,
    /// First acceptances, and the tolerant ones (容缺受理) among them.
    pub accepted: u64,
    pub tolerant: Share,
    /// Not accepted (不予受理).
    pub refused: u64,
    /// Cases told to supplement, and those told more than once (a breach of 一次性告知), counted
    /// on their first and second notice.
    pub incomplete: u64,
    pub repeated_notices: u64,
    /// Commitments (容缺) falling due in the period, and those kept: everything owed supplied by
    /// the commitment date.
    pub commitments_kept: Share,
    /// Decisions, and those made by the promised date in force when made.
    pub decided: u64,
    pub on_time: Share,
    /// 即办件 decided, and decided the day they were accepted (即时办结率).
    pub instant_same_day: Share,
    /// Working days from acceptance to decision: mean and 90th percentile.
    pub mean_working_days: Option<f64>,
    pub p90_working_days: Option<i32>,
    /// Files closed, and those whose applicant came in person at most once (最多跑一次): an
    /// in-person submission, supplement or collection is a trip.
    pub archived: u64,
    pub one_trip: Share,
    /// How results left: mail, window, locker, village station.
    pub results_out: BTreeMap<String, u64>,
    /// Reviews, the good ones (4–5: 好评率) and the bad ones (1–2).
    pub reviews: u64,
    pub good_reviews: Share,
    pub bad_reviews: u64,
    /// Rectifications closed, and those closed by their deadline.
    pub rectified_on_time: Share,
    /// Cards raised, by level (warning, yellow, red).
    pub cards: BTreeMap<String, u64>,
    /// 督办单 answered, and answered by their date.
    pub supervision_answered_on_time: Share,
    /// Fees paid in, paid back, and waived or reduced, in fen; fee orders reliefs applied to.
    pub fees_collected_fen: i64,
    pub fees_refunded_fen: i64,
    pub fees_relieved_fen: i64,
    pub reliefs: u64,
}

/// One counted fact of a case: a figure, the day it counts on, and its amount (1 for a count;
/// working days; fen).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub figure: String,
    pub day: i32,
    pub amount: i64,
}

/// The figures' names, as lines carry them.
pub mod figure {
    pub const RECEIVED: &str = "received";
    pub const ONLINE: &str = "online";
    pub const VILLAGE_STATION: &str = "village_station";
    pub const BANK_OUTLET: &str = "bank_outlet";
    pub const CITY_WIDE: &str = "city_wide";
    pub const ACCEPTED: &str = "accepted";
    pub const TOLERANT: &str = "tolerant";
    pub const REFUSED: &str = "refused";
    pub const INCOMPLETE: &str = "incomplete";
    pub const REPEATED_NOTICE: &str = "repeated_notice";
    pub const COMMITMENT_DUE: &str = "commitment_due";
    pub const COMMITMENT_KEPT: &str = "commitment_kept";
    pub const DECIDED: &str = "decided";
    pub const ON_TIME: &str = "on_time";
    pub const INSTANT: &str = "instant";
    pub const INSTANT_SAME_DAY: &str = "instant_same_day";
    pub const WORKING_DAYS: &str = "working_days";
    pub const ARCHIVED: &str = "archived";
    pub const ONE_TRIP: &str = "one_trip";
    /// Followed by the way: `out:mail`, `out:window`, `out:locker`, `out:village_station`.
    pub const OUT: &str = "out:";
    pub const REVIEW: &str = "review";
    pub const GOOD_REVIEW: &str = "good_review";
    pub const BAD_REVIEW: &str = "bad_review";
    pub const RECTIFIED: &str = "rectified";
    pub const RECTIFIED_ON_TIME: &str = "rectified_on_time";
    /// Followed by the level: `card:warning`, `card:yellow`, `card:red`.
    pub const CARD: &str = "card:";
    pub const SUPERVISION_ANSWERED: &str = "supervision_answered";
    pub const SUPERVISION_ON_TIME: &str = "supervision_on_time";
    pub const FEE_COLLECTED: &str = "fee_collected";
    pub const FEE_REFUNDED: &str = "fee_refunded";
    pub const FEE_RELIEVED: &str = "fee_relieved";
}

/// What `event` counts for, given the case as it stood before it: the one definition of every
/// figure. Pass the opened case with its application.
pub fn lines_of(before: &Case, event: &Event, reference: &Reference) -> Vec<Line> {
    use figure::*;
    let day = calendar::day_of(event.occurred_at());
    let mut lines = Lines { day, lines: Vec::new() };
    match event {
        Event::ApplicationSubmitted(app) => {
            lines.count(RECEIVED, true);
            let tier = app.service_point.tier.as_str();
            lines.count(ONLINE, tier == "online");
            lines.count(VILLAGE_STATION, tier == "village");
            lines.count(BANK_OUTLET, tier == "bank");
            // 全城通办: the applicant lives in another township than the point's.
            let point_township = reference.service_point(&app.service_point.code).map(|p| p.township_code.as_str());
            lines.count(CITY_WIDE, app.domicile_township.as_deref().is_some_and(|home| Some(home) != point_township));
        }
        Event::CaseAccepted(e) if before.accepted_at.is_none() => {
            lines.count(ACCEPTED, true);
            lines.count(TOLERANT, e.acceptance == "tolerant");
        }
        Event::AcceptanceRefused(_) => lines.count(REFUSED, true),
        Event::SupplementRequested(_) => {
            lines.count(INCOMPLETE, before.supplement_notices == 0);
            lines.count(REPEATED_NOTICE, before.supplement_notices == 1);
        }
        // A commitment counts on the day it falls due; it is kept by the supplement that leaves
        // nothing owed on or before that day.
        Event::CommitmentSigned(e) => lines.put(COMMITMENT_DUE, e.commitment_date, 1),
        Event::MaterialsSupplemented(e) => {
            if let Some(due) = before.commitment_date {
                let owed = &before.outstanding_materials;
                if !owed.is_empty() && owed.iter().all(|m| e.materials.contains(m)) && day <= due {
                    lines.put(COMMITMENT_KEPT, due, 1);
                }
            }
        }
        Event::CaseDecided(_) => {
            lines.count(DECIDED, true);
            lines.count(ON_TIME, before.promised_date.is_some_and(|promised| day <= promised));
            if let Some(accepted) = before.accepted_at.map(calendar::day_of) {
                let days = reference.calendar.working_days_between(accepted, day);
                lines.put(WORKING_DAYS, day, i64::from(days));
                let instant =
                    reference.matter(&before.application.matter.implementation_code).is_some_and(|m| m.instant);
                lines.count(INSTANT, instant);
                lines.count(INSTANT_SAME_DAY, instant && day == accepted);
            }
        }
        Event::DeliveryRequested(_) => lines.count(&format!("{OUT}mail"), true),
        Event::ResultReadyForPickup(e) => lines.count(&format!("{OUT}{}", e.method), true),
        Event::CaseArchived(_) => {
            lines.count(ARCHIVED, true);
            lines.count(ONE_TRIP, before.trips <= 1);
        }
        Event::ReviewSubmitted(e) => {
            lines.count(REVIEW, true);
            lines.count(GOOD_REVIEW, e.grade >= 4);
            lines.count(BAD_REVIEW, e.grade <= 2);
        }
        Event::RectificationClosed(e) => {
            let deadline = before.rectifications.iter().find(|r| r.item_number == e.item_number).map(|r| r.deadline);
            lines.count(RECTIFIED, true);
            lines.count(RECTIFIED_ON_TIME, deadline.is_some_and(|deadline| day <= deadline));
        }
        Event::DeadlineWarning(e) => lines.count(&format!("{CARD}{}", e.level), true),
        Event::SupervisionAnswered(e) => {
            let by = before.supervisions.iter().find(|s| s.order_number == e.order_number).map(|s| s.answer_by);
            lines.count(SUPERVISION_ANSWERED, true);
            lines.count(SUPERVISION_ON_TIME, by.is_some_and(|by| day <= by));
        }
        Event::PaymentConfirmed(e) => lines.put(FEE_COLLECTED, day, e.amount_fen),
        Event::RefundConfirmed(e) => lines.put(FEE_REFUNDED, day, e.amount_fen),
        Event::FeeOrderRequested(e) => {
            if let Some(relief) = &e.relief {
                lines.put(FEE_RELIEVED, day, relief.relieved_fen);
            }
        }
        _ => {}
    }
    lines.lines
}

/// The lines of one event as they are counted.
struct Lines {
    day: i32,
    lines: Vec<Line>,
}

impl Lines {
    fn put(&mut self, figure: &str, day: i32, amount: i64) {
        self.lines.push(Line { figure: figure.into(), day, amount });
    }

    /// Counts the event's day for `figure` when `counted`.
    fn count(&mut self, figure: &str, counted: bool) {
        if counted {
            self.put(figure, self.day, 1);
        }
    }
}

/// The lines of `events` as they follow on `case`, each with its position among them, and the
/// case they leave.
pub fn lines_after(mut case: Case, events: &[Event], reference: &Reference) -> (Case, Vec<(usize, Line)>) {
    let mut lines = Vec::new();
    for (position, event) in events.iter().enumerate() {
        lines.extend(lines_of(&case, event, reference).into_iter().map(|line| (position, line)));
        case = evolve(case, event);
    }
    (case, lines)
}

/// Lines gathered for a report: per figure, how many lines of each amount — what a grouped
/// query over the kept lines returns, and what a recount from the histories adds up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally(BTreeMap<String, BTreeMap<i64, u64>>);

impl Tally {
    pub fn add(&mut self, figure: &str, amount: i64, lines: u64) {
        match self.0.get_mut(figure) {
            Some(amounts) => *amounts.entry(amount).or_default() += lines,
            None => drop(self.0.insert(figure.into(), BTreeMap::from([(amount, lines)]))),
        }
    }

    pub fn merge(&mut self, other: Tally) {
        for (figure, amounts) in other.0 {
            for (amount, lines) in amounts {
                self.add(&figure, amount, lines);
            }
        }
    }

    fn count(&self, figure: &str) -> u64 {
        self.0.get(figure).map_or(0, |amounts| amounts.values().sum())
    }

    fn sum(&self, figure: &str) -> i64 {
        self.0.get(figure).map_or(0, |amounts| amounts.iter().map(|(amount, n)| amount * *n as i64).sum())
    }

    fn share(&self, figure: &str, of: &str) -> Share {
        Share::of(self.count(figure), self.count(of))
    }

    /// The counts of the figures starting with `prefix`, by what follows it.
    fn counts_after(&self, prefix: &str) -> BTreeMap<String, u64> {
        self.0
            .keys()
            .filter_map(|figure| figure.strip_prefix(prefix).map(|rest| (rest.to_string(), self.count(figure))))
            .collect()
    }

    /// The `q` quantile of a figure's amounts (nearest rank).
    fn quantile(&self, figure: &str, q: f64) -> Option<i64> {
        let amounts = self.0.get(figure)?;
        let total: u64 = amounts.values().sum();
        let rank = ((total.checked_sub(1)?) as f64 * q).round() as u64;
        let mut seen = 0;
        amounts.iter().find_map(|(amount, n)| {
            seen += n;
            (seen > rank).then_some(*amount)
        })
    }
}

/// A period's lines of the cases of a unit, replayed from the histories (each in order, the
/// application first): what the kept lines must add up to.
pub fn recount<'h>(
    period: &Period,
    unit: &Unit,
    histories: impl IntoIterator<Item = &'h [Event]>,
    reference: &Reference,
) -> Tally {
    let mut tally = Tally::default();
    for history in histories {
        let Some(Event::ApplicationSubmitted(app)) = history.first() else { continue };
        let opened = Case::open(app);
        let submitted = lines_of(&opened, &history[0], reference);
        let (case, later) = lines_after(opened, &history[1..], reference);
        if unit.holds(&CaseUnits::of(&case, reference)) {
            let lines = submitted.into_iter().chain(later.into_iter().map(|(_, line)| line));
            for line in lines.filter(|l| (period.first_day..=period.last_day).contains(&l.day)) {
                tally.add(&line.figure, line.amount, 1);
            }
        }
    }
    tally
}

impl Report {
    /// The report of a period from its lines.
    pub fn of(period: &Period, tally: &Tally) -> Report {
        use figure::*;
        let decided = tally.count(WORKING_DAYS);
        Report {
            first_day: iso_date(period.first_day),
            last_day: iso_date(period.last_day),
            received: tally.count(RECEIVED),
            online: tally.share(ONLINE, RECEIVED),
            village_station: tally.share(VILLAGE_STATION, RECEIVED),
            bank_outlet: tally.share(BANK_OUTLET, RECEIVED),
            city_wide: tally.share(CITY_WIDE, RECEIVED),
            accepted: tally.count(ACCEPTED),
            tolerant: tally.share(TOLERANT, ACCEPTED),
            refused: tally.count(REFUSED),
            incomplete: tally.count(INCOMPLETE),
            repeated_notices: tally.count(REPEATED_NOTICE),
            commitments_kept: tally.share(COMMITMENT_KEPT, COMMITMENT_DUE),
            decided: tally.count(DECIDED),
            on_time: tally.share(ON_TIME, DECIDED),
            instant_same_day: tally.share(INSTANT_SAME_DAY, INSTANT),
            mean_working_days: (decided > 0).then(|| tally.sum(WORKING_DAYS) as f64 / decided as f64),
            p90_working_days: tally.quantile(WORKING_DAYS, 0.9).map(|days| days as i32),
            archived: tally.count(ARCHIVED),
            one_trip: tally.share(ONE_TRIP, ARCHIVED),
            results_out: tally.counts_after(OUT),
            reviews: tally.count(REVIEW),
            good_reviews: tally.share(GOOD_REVIEW, REVIEW),
            bad_reviews: tally.count(BAD_REVIEW),
            rectified_on_time: tally.share(RECTIFIED_ON_TIME, RECTIFIED),
            cards: tally.counts_after(CARD),
            supervision_answered_on_time: tally.share(SUPERVISION_ON_TIME, SUPERVISION_ANSWERED),
            fees_collected_fen: tally.sum(FEE_COLLECTED),
            fees_refunded_fen: tally.sum(FEE_REFUNDED),
            fees_relieved_fen: tally.sum(FEE_RELIEVED),
            reliefs: tally.count(FEE_RELIEVED),
        }
    }
}

#[cfg(test)]
mod tests {
    use contracts::ApplicationSubmitted;

    use super::*;
    use crate::case::{Case, Command, Outcome};
    use crate::testing::*;

    const HOMESTEAD: &str = "11610429MB2912349E4000117050000";
    const DEPARTMENT: &str = "11610429MB2912345A";

    /// The history of an application and of `commands` given on it in turn, as the hub keeps it.
    fn history(app: ApplicationSubmitted, commands: Vec<Command>, reference: &Reference) -> Vec<Event> {
        let mut case = Case::open(&app);
        let mut events = vec![Event::from(app)];
        for command in commands {
            let (next, produced) = run(case, command, reference);
            case = next;
            events.extend(produced);
        }
        events
    }

    fn decide(outcome: Outcome) -> Command {
        let reason = (outcome == Outcome::Denied).then(|| "经营场所不符合要求".to_string());
        Command::Decide { outcome, officer: "王审批".into(), department_code: DEPARTMENT.into(), reason }
    }

    fn step(step: &str) -> Command {
        Command::CompleteStep { step: step.into(), officer: "王出件".into(), remarks: String::new() }
    }

    fn review(grade: i32, channel: &str) -> Command {
        let visit_id = (channel == "counter").then(|| "V1".to_string());
        Command::Review { grade, channel: channel.into(), comment: String::new(), visit_id }
    }

    /// Four cases handed in at 土桥1村 on Friday 2026-11-20, counted by hand:
    /// A approved and mailed, reviewed 5 at the counter; B told twice to supplement, then
    /// denied, reviewed 1 online, the complaint verified and rectified; C a homestead for a
    /// domicile outside the county, not accepted; D denied.
    fn county_day(reference: &Reference) -> Vec<Vec<Event>> {
        let a = history(
            application(reference),
            vec![
                Command::Examine,
                decide(Outcome::Approved),
                step("make"),
                step("seal"),
                step("dispatch"),
                review(5, "counter"),
            ],
            reference,
        );
        let mut incomplete = application(reference);
        incomplete.case_number = "61042920261120000002".into();
        let all = incomplete.materials.clone();
        incomplete.materials.truncate(1);
        let supplement = |materials: Vec<String>| Command::Supplement { materials, received_by: "刘代办".into() };
        let b = history(
            incomplete,
            vec![
                Command::Examine,
                supplement(vec![all[1].clone()]),
                supplement(all.clone()),
                decide(Outcome::Denied),
                review(1, "online"),
                Command::VerifyReview {
                    item_number: "61042920261120000002-Z1".into(),
                    officer: "监察室".into(),
                    finding: "属实".into(),
                    substantiated: true,
                    reply: "已整改".into(),
                },
                Command::CloseRectification {
                    item_number: "61042920261120000002-Z1".into(),
                    officer: "监察室".into(),
                    feedback: "已回访".into(),
                },
            ],
            reference,
        );
        let mut homestead = application_for(reference, HOMESTEAD);
        homestead.case_number = "61042920261120000003".into();
        homestead.domicile_township = Some("610428100000".into());
        let c = history(homestead, vec![Command::Examine], reference);
        let mut denied = application(reference);
        denied.case_number = "61042920261120000004".into();
        let d = history(denied, vec![Command::Examine, decide(Outcome::Denied)], reference);
        vec![a, b, c, d]
    }

    #[test]
    fn the_figures_of_a_hand_counted_day() {
        let reference = Reference::builtin();
        let cases = county_day(&reference);
        let kinds_of = |i: usize| kinds(&cases[i]);
        assert_eq!(kinds_of(1).iter().filter(|k| **k == "SupplementRequested").count(), 2, "{:?}", kinds_of(1));
        assert!(kinds_of(2).contains(&"AcceptanceRefused"));
        let report = report_for("2026-11", &Unit::County, &cases, &reference);
        assert_eq!((report.first_day.as_str(), report.last_day.as_str()), ("2026-11-01", "2026-11-30"));
        assert_eq!(report.received, 4);
        assert_eq!(report.village_station, Share::of(4, 4));
        assert_eq!((report.online.count, report.bank_outlet.count), (0, 0));
        assert_eq!(report.city_wide, Share::of(1, 4), "C's domicile is in 长武");
        assert_eq!((report.accepted, report.refused, report.tolerant.count), (3, 1, 0));
        assert_eq!((report.incomplete, report.repeated_notices), (1, 1), "B was told twice");
        assert_eq!((report.decided, report.on_time), (3, Share::of(3, 3)));
        assert_eq!((report.mean_working_days, report.p90_working_days), (Some(0.0), Some(0)));
        assert_eq!(report.instant_same_day, Share::of(0, 0), "no 即办件 among them");
        assert_eq!(report.archived, 3, "B, C and D; A is still in the post");
        assert_eq!(report.one_trip, Share::of(2, 3), "B came three times");
        assert_eq!(report.results_out, BTreeMap::from([("mail".to_string(), 1)]));
        assert_eq!((report.reviews, report.good_reviews, report.bad_reviews), (2, Share::of(1, 2), 1));
        assert_eq!(report.rectified_on_time, Share::of(1, 1));
        assert_eq!(report.commitments_kept, Share::of(0, 0));
        assert_eq!((report.fees_collected_fen, report.fees_refunded_fen, report.reliefs), (0, 0, 0));

        let december = report_for("2026-12", &Unit::County, &cases, &reference);
        assert_eq!((december.received, december.decided, december.reviews), (0, 0, 0), "nothing happened in December");
        let township = Unit::of_code(&reference, "610429100000").unwrap();
        assert_eq!(township, Unit::Township("610429100000".into()));
        assert_eq!(report_for("2026-Q4", &township, &cases, &reference).received, 4, "土桥1村 is 土桥镇's");
        assert_eq!(report_for("2026", &Unit::Township("610429101000".into()), &cases, &reference).received, 0);
        let department = Unit::of_code(&reference, DEPARTMENT).unwrap();
        assert_eq!(report_for("2026-11-20", &department, &cases, &reference).received, 3, "C never reached it");
        assert_eq!(report_for("2026-11-20", &Unit::Staff("王审批".into()), &cases, &reference).decided, 3);
        assert!(Unit::of_code(&reference, "nowhere").is_err());
    }

    fn report_for(period: &str, unit: &Unit, cases: &[Vec<Event>], reference: &Reference) -> Report {
        let period = Period::parse(period).unwrap();
        Report::of(&period, &recount(&period, unit, cases.iter().map(Vec::as_slice), reference))
    }

    #[test]
    fn a_window_counts_what_was_taken_in_there() {
        let reference = Reference::builtin();
        let window = "610429100000-W01";
        assert_eq!(Unit::of_code(&reference, window), Ok(Unit::Window(window.into())));
        let mut app = application(&reference);
        app.window = Some(window.into());
        let at_window = history(app, vec![Command::Examine], &reference);
        let elsewhere = history(application(&reference), vec![Command::Examine], &reference);
        let cases = vec![at_window, elsewhere];
        let report = report_for("2026-11", &Unit::Window(window.into()), &cases, &reference);
        assert_eq!((report.received, report.accepted), (1, 1));
        assert_eq!(report_for("2026-11", &Unit::County, &cases, &reference).received, 2);
    }

    #[test]
    fn quantiles_and_means_come_from_the_amounts_counted() {
        let mut tally = Tally::default();
        for (days, cases) in [(0, 5), (2, 3), (7, 2)] {
            tally.add(figure::WORKING_DAYS, days, cases);
            tally.add(figure::DECIDED, 1, cases);
        }
        let period = Period::parse("2026-12").unwrap();
        let report = Report::of(&period, &tally);
        assert_eq!(report.decided, 10);
        assert_eq!(report.mean_working_days, Some(2.0), "(0·5 + 2·3 + 7·2) / 10");
        assert_eq!(report.p90_working_days, Some(7), "the 9th of 10, nearest rank");
        assert_eq!(Report::of(&period, &Tally::default()).p90_working_days, None);
    }

    #[test]
    fn periods_are_days_months_quarters_and_years() {
        let span = |text: &str| Period::parse(text).map(|p| (iso_date(p.first_day), iso_date(p.last_day)));
        let days = |a: &str, b: &str| Ok((a.to_string(), b.to_string()));
        assert_eq!(span("2026-12-02"), days("2026-12-02", "2026-12-02"));
        assert_eq!(span("2026-02"), days("2026-02-01", "2026-02-28"));
        assert_eq!(span("2026-12"), days("2026-12-01", "2026-12-31"));
        assert_eq!(span("2026-Q4"), days("2026-10-01", "2026-12-31"));
        assert_eq!(span("2026-Q1"), days("2026-01-01", "2026-03-31"));
        assert_eq!(span("2026"), days("2026-01-01", "2026-12-31"));
        for bad in ["2026-13", "2026-Q5", "26-12", "2026-1", "2026-12-32", "", "Q4"] {
            assert!(Period::parse(bad).is_err(), "{bad}");
        }
    }
}
