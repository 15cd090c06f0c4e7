//! 办件通报 (seeds 001, 002, 004): the figures a county publishes per period and unit, each
//! defined once here over the cases' histories — what was received, accepted, refused, told to
//! supplement (and more than once: a breach of 一次性告知), decided on time, done at once, how many
//! trips it took, how results went out, how applicants graded it, which cards were raised, how
//! 督办 was answered and what fees came in and went back.
use std::collections::BTreeMap;

use contracts::Event;
use serde::Serialize;

use super::calendar::{self, iso_date, parse_iso_date};
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

    fn holds(&self, at_ms: i64) -> bool {
        (self.first_day..=self.last_day).contains(&calendar::day_of(at_ms))
    }
}

/// Whose figures: the whole county, a township (its centre, villages and outlets), one service
/// point (a village station, a bank outlet, a centre), a deciding department, or one staff
/// member (the token holder who took cases in or decided them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unit {
    County,
    Township(String),
    ServicePoint(String),
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
        } else if reference.authority(code).is_some() {
            Ok(Unit::Department(code.into()))
        } else {
            Err(format!("no unit {code} in county {}", reference.county.code))
        }
    }

    /// Whether the case of `history` (its first event the application) is this unit's.
    fn owns(&self, history: &[Event], reference: &Reference) -> bool {
        let Some(Event::ApplicationSubmitted(app)) = history.first() else { return false };
        let point = &app.service_point.code;
        match self {
            Unit::County => true,
            Unit::ServicePoint(code) => point == code,
            Unit::Township(code) => reference.service_point(point).is_some_and(|p| &p.township_code == code),
            Unit::Department(code) => {
                history.iter().any(|e| matches!(e, Event::CaseRouted(r) if &r.department_code == code))
            }
            Unit::Staff(name) => {
                &app.received_by == name
                    || history.iter().any(|e| matches!(e, Event::CaseDecided(d) if &d.officer == name))
            }
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

/// The report of `period` for `unit` over every case history (each in order, the application
/// first).
pub fn report<'h>(
    period: &Period,
    unit: &Unit,
    histories: impl IntoIterator<Item = &'h [Event]>,
    reference: &Reference,
) -> Report {
    let mut report =
        Report { first_day: iso_date(period.first_day), last_day: iso_date(period.last_day), ..Report::default() };
    let mut tallies = Tallies::default();
    for history in histories.into_iter().filter(|h| unit.owns(h, reference)) {
        tallies.case(period, history, reference);
    }
    tallies.fill(&mut report);
    report
}

/// Counts gathered case by case, turned into shares at the end.
#[derive(Default)]
struct Tallies {
    received: u64,
    online: u64,
    village: u64,
    bank: u64,
    city_wide: u64,
    accepted: u64,
    tolerant: u64,
    refused: u64,
    incomplete: u64,
    repeated: u64,
    commitments: (u64, u64),
    decided: u64,
    on_time: u64,
    instant: (u64, u64),
    working_days: Vec<i32>,
    archived: (u64, u64),
    results_out: BTreeMap<String, u64>,
    reviews: (u64, u64, u64),
    rectified: (u64, u64),
    cards: BTreeMap<String, u64>,
    supervision: (u64, u64),
    fees: (i64, i64, i64, u64),
}

impl Tallies {
    fn case(&mut self, period: &Period, history: &[Event], reference: &Reference) {
        let Some(Event::ApplicationSubmitted(app)) = history.first() else { return };
        let within = |e: &Event| period.holds(e.occurred_at());
        let day = |e: &Event| calendar::day_of(e.occurred_at());
        if within(&history[0]) {
            self.received += 1;
            match app.service_point.tier.as_str() {
                "online" => self.online += 1,
                "village" => self.village += 1,
                "bank" => self.bank += 1,
                _ => {}
            }
            let point_township = reference.service_point(&app.service_point.code).map(|p| p.township_code.as_str());
            if app.domicile_township.as_deref().is_some_and(|home| Some(home) != point_township) {
                self.city_wide += 1;
            }
        }
        let mut accepted_day = None;
        let mut promised = None;
        let mut notices = 0;
        let mut trips = u64::from(app.channel != "online");
        let mut commitment: Option<(i32, bool)> = None;
        let mut rectification_deadlines: BTreeMap<&str, i32> = BTreeMap::new();
        let mut answer_by: BTreeMap<&str, i32> = BTreeMap::new();
        for event in history {
            match event {
                Event::CaseAccepted(e) => {
                    if accepted_day.is_none() && within(event) {
                        self.accepted += 1;
                        self.tolerant += u64::from(e.acceptance == "tolerant");
                    }
                    accepted_day.get_or_insert(day(event));
                    promised = Some(e.promised_date);
                }
                Event::AcceptanceRefused(_) if within(event) => self.refused += 1,
                Event::SupplementRequested(_) => {
                    notices += 1;
                    if within(event) {
                        match notices {
                            1 => self.incomplete += 1,
                            2 => self.repeated += 1,
                            _ => {}
                        }
                    }
                }
                Event::MaterialsSupplemented(_) => trips += 1,
                Event::CommitmentSigned(e) => commitment = Some((e.commitment_date, false)),
                Event::ProcedureCompleted(e) => promised = Some(e.promised_date),
                Event::ExtensionGranted(e) => promised = Some(e.promised_date),
                Event::CaseDecided(_) if within(event) => {
                    self.decided += 1;
                    self.on_time += u64::from(promised.is_some_and(|p| day(event) <= p));
                    if let Some(accepted) = accepted_day {
                        self.working_days.push(reference.calendar.working_days_between(accepted, day(event)));
                        if reference.matter(&app.matter.implementation_code).is_some_and(|m| m.instant) {
                            self.instant.1 += 1;
                            self.instant.0 += u64::from(day(event) == accepted);
                        }
                    }
                }
                Event::DeliveryRequested(_) if within(event) => {
                    *self.results_out.entry("mail".into()).or_default() += 1
                }
                Event::ResultReadyForPickup(e) if within(event) => {
                    *self.results_out.entry(e.method.clone()).or_default() += 1
                }
                Event::ResultCollected(e) => trips += u64::from(!e.handed_out_by.is_empty()),
                Event::CaseArchived(_) if within(event) => {
                    self.archived.1 += 1;
                    self.archived.0 += u64::from(trips <= 1);
                }
                Event::ReviewSubmitted(e) if within(event) => {
                    self.reviews.2 += 1;
                    self.reviews.0 += u64::from(e.grade >= 4);
                    self.reviews.1 += u64::from(e.grade <= 2);
                }
                Event::RectificationOpened(e) => drop(rectification_deadlines.insert(&e.item_number, e.deadline)),
                Event::RectificationClosed(e) if within(event) => {
                    self.rectified.1 += 1;
                    let deadline = rectification_deadlines.get(e.item_number.as_str()).copied().unwrap_or(i32::MAX);
                    self.rectified.0 += u64::from(day(event) <= deadline);
                }
                Event::DeadlineWarning(e) if within(event) => *self.cards.entry(e.level.clone()).or_default() += 1,
                Event::SupervisionOrdered(e) => drop(answer_by.insert(&e.order_number, e.answer_by)),
                Event::SupervisionAnswered(e) if within(event) => {
                    self.supervision.1 += 1;
                    let by = answer_by.get(e.order_number.as_str()).copied().unwrap_or(i32::MAX);
                    self.supervision.0 += u64::from(day(event) <= by);
                }
                Event::PaymentConfirmed(e) if within(event) => self.fees.0 += e.amount_fen,
                Event::RefundConfirmed(e) if within(event) => self.fees.1 += e.amount_fen,
                Event::FeeOrderRequested(e) if within(event) => {
                    if let Some(relief) = &e.relief {
                        self.fees.2 += relief.relieved_fen;
                        self.fees.3 += 1;
                    }
                }
                _ => {}
            }
            // A commitment is kept once nothing is owed by its date.
            if let (Some((due, kept)), Event::MaterialsSupplemented(_)) = (&mut commitment, event) {
                *kept |= day(event) <= *due && owes_nothing_after(history, event);
            }
        }
        if let Some((_, kept)) = commitment.filter(|(due, _)| (period.first_day..=period.last_day).contains(due)) {
            self.commitments.1 += 1;
            self.commitments.0 += u64::from(kept);
        }
    }

    fn fill(self, report: &mut Report) {
        report.received = self.received;
        report.online = Share::of(self.online, self.received);
        report.village_station = Share::of(self.village, self.received);
        report.bank_outlet = Share::of(self.bank, self.received);
        report.city_wide = Share::of(self.city_wide, self.received);
        report.accepted = self.accepted;
        report.tolerant = Share::of(self.tolerant, self.accepted);
        report.refused = self.refused;
        report.incomplete = self.incomplete;
        report.repeated_notices = self.repeated;
        report.commitments_kept = Share::of(self.commitments.0, self.commitments.1);
        report.decided = self.decided;
        report.on_time = Share::of(self.on_time, self.decided);
        report.instant_same_day = Share::of(self.instant.0, self.instant.1);
        let mut days = self.working_days;
        days.sort_unstable();
        report.mean_working_days =
            (!days.is_empty()).then(|| days.iter().map(|d| f64::from(*d)).sum::<f64>() / days.len() as f64);
        report.p90_working_days = (!days.is_empty()).then(|| days[((days.len() - 1) as f64 * 0.9).round() as usize]);
        report.archived = self.archived.1;
        report.one_trip = Share::of(self.archived.0, self.archived.1);
        report.results_out = self.results_out;
        report.reviews = self.reviews.2;
        report.good_reviews = Share::of(self.reviews.0, self.reviews.2);
        report.bad_reviews = self.reviews.1;
        report.rectified_on_time = Share::of(self.rectified.0, self.rectified.1);
        report.cards = self.cards;
        report.supervision_answered_on_time = Share::of(self.supervision.0, self.supervision.1);
        (report.fees_collected_fen, report.fees_refunded_fen, report.fees_relieved_fen, report.reliefs) = self.fees;
    }
}

/// Whether, after `supplement`, nothing the tolerant acceptance left owed is still missing.
fn owes_nothing_after(history: &[Event], supplement: &Event) -> bool {
    let owed: Vec<&String> = history
        .iter()
        .filter_map(|e| match e {
            Event::CaseAccepted(a) => Some(&a.outstanding_materials),
            _ => None,
        })
        .flatten()
        .collect();
    let upto = history.iter().position(|e| e.event_id() == supplement.event_id()).unwrap_or(history.len() - 1);
    let supplied: Vec<&String> = history[..=upto]
        .iter()
        .filter_map(|e| match e {
            Event::MaterialsSupplemented(s) => Some(&s.materials),
            _ => None,
        })
        .flatten()
        .collect();
    owed.iter().all(|m| supplied.contains(m))
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
        let month = Period::parse("2026-11").unwrap();
        let report = report(&month, &Unit::County, cases.iter().map(Vec::as_slice), &reference);
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
        report(&Period::parse(period).unwrap(), unit, cases.iter().map(Vec::as_slice), reference)
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
