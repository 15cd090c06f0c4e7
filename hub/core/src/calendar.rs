//! Working-day arithmetic on the national calendar (public holidays and make-up working days
//! as data, `hub/data/calendar.toml`). Dates are days since 1970-01-01 in China Standard Time
//! (UTC+8).
use std::collections::BTreeSet;
use std::ops::Bound;

use serde::Deserialize;

pub use contracts::day_of;

/// The last day of a validity of `years` years starting on `day`: the day before the same date
/// `years` later (29 February, where that year has none, counts as 28 February).
pub fn validity_end(day: i32, years: u32) -> i32 {
    let date = iso_date(day);
    let (year, month_day) = date.split_at(4);
    let year = year.parse::<i32>().expect("iso_date writes four-digit years") + years as i32;
    let anniversary = parse_iso_date(&format!("{year:04}{month_day}"))
        .or_else(|| parse_iso_date(&format!("{year:04}-02-28")))
        .expect("a valid date");
    anniversary - 1
}

/// Monday = 0 .. Sunday = 6. 1970-01-01 was a Thursday.
pub fn weekday(day: i32) -> i32 {
    (day + 3).rem_euclid(7)
}

const CALENDAR_TOML: &str = include_str!("../../data/calendar.toml");

/// Which days are worked: weekdays, less public holidays, plus the weekend days worked in
/// exchange. Years the data does not cover count weekdays only.
#[derive(Debug, Clone)]
pub struct Calendar {
    holidays: BTreeSet<i32>,
    working_weekends: BTreeSet<i32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CalendarFile {
    year: Vec<YearFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct YearFile {
    year: i32,
    #[allow(dead_code)] // documentation carried with the data
    arrangement: String,
    #[allow(dead_code)]
    source: String,
    holidays: Vec<[String; 2]>,
    working_weekends: Vec<String>,
}

impl Calendar {
    /// The national calendar shipped with the hub.
    pub fn builtin() -> Calendar {
        Calendar::parse(CALENDAR_TOML).expect("hub/data/calendar.toml is valid")
    }

    /// Reads a calendar file, refusing dates outside their year, holidays given twice, and
    /// "working weekends" that are weekdays or holidays.
    pub fn parse(text: &str) -> Result<Calendar, String> {
        let file: CalendarFile = toml::from_str(text).map_err(|e| format!("calendar: {e}"))?;
        let (mut holidays, mut working_weekends) = (BTreeSet::new(), BTreeSet::new());
        for year in &file.year {
            let in_year = |date: &str| -> Result<i32, String> {
                let day =
                    parse_iso_date(date).ok_or_else(|| format!("calendar {}: {date} is not a date", year.year))?;
                if !date.starts_with(&format!("{}-", year.year)) {
                    return Err(format!("calendar {}: {date} is outside the year", year.year));
                }
                Ok(day)
            };
            for [first, last] in &year.holidays {
                let (first, last) = (in_year(first)?, in_year(last)?);
                if last < first {
                    return Err(format!("calendar {}: holiday {} ends before it starts", year.year, iso_date(first)));
                }
                for day in first..=last {
                    if !holidays.insert(day) {
                        return Err(format!("calendar {}: {} is listed as a holiday twice", year.year, iso_date(day)));
                    }
                }
            }
            for date in &year.working_weekends {
                let day = in_year(date)?;
                if weekday(day) < 5 || holidays.contains(&day) {
                    return Err(format!("calendar {}: working weekend {date} is a weekday or a holiday", year.year));
                }
                working_weekends.insert(day);
            }
        }
        Ok(Calendar { holidays, working_weekends })
    }

    pub fn is_working_day(&self, day: i32) -> bool {
        self.working_weekends.contains(&day) || (weekday(day) < 5 && !self.holidays.contains(&day))
    }

    /// The date `working_days` working days after `day`; the day itself does not count.
    pub fn add_working_days(&self, day: i32, working_days: u32) -> i32 {
        let mut date = day;
        let mut left = working_days;
        while left > 0 {
            date += 1;
            if self.is_working_day(date) {
                left -= 1;
            }
        }
        date
    }
}

impl Calendar {
    /// Working days in `(from, to]`; negative when `to` is before `from`. Counted by weeks and
    /// the calendar's exceptions in the span, not day by day: every open case asks it at every
    /// deadline sweep and report.
    pub fn working_days_between(&self, from: i32, to: i32) -> i32 {
        let count = |a: i32, b: i32| {
            let span = (Bound::Excluded(a), Bound::Included(b));
            let weekdays = weekdays_through(b) - weekdays_through(a);
            let weekday_holidays = self.holidays.range(span).filter(|d| weekday(**d) < 5).count() as i32;
            let worked_weekends = self.working_weekends.range(span).count() as i32;
            weekdays - weekday_holidays + worked_weekends
        };
        if to >= from {
            count(from, to)
        } else {
            -count(to, from)
        }
    }
}

/// Monday-to-Friday days from an arbitrary origin up to and including `day`: the difference of
/// two is the weekdays between them.
fn weekdays_through(day: i32) -> i32 {
    // Days counted from the Monday of 1969-12-29, so that whole weeks hold five weekdays each.
    let since_monday = day + 3;
    5 * since_monday.div_euclid(7) + (since_monday.rem_euclid(7) + 1).min(5)
}

/// Minutes since midnight, China Standard Time, of an instant in milliseconds.
pub fn minute_of_day(at_ms: i64) -> i64 {
    (at_ms + 8 * 3_600_000).rem_euclid(86_400_000) / 60_000
}

/// `YYYY-MM-DD HH:MM`, China Standard Time, of an instant in milliseconds.
pub fn local_minute_text(at_ms: i64) -> String {
    let minute = minute_of_day(at_ms);
    format!("{} {:02}:{:02}", iso_date(day_of(at_ms)), minute / 60, minute % 60)
}

/// Day number of an ISO `YYYY-MM-DD` date (days-from-civil, proleptic Gregorian).
pub fn parse_iso_date(text: &str) -> Option<i32> {
    let mut parts = text.splitn(3, '-');
    let (y, m, d): (i64, i64, i64) =
        (parts.next()?.parse().ok()?, parts.next()?.parse().ok()?, parts.next()?.parse().ok()?);
    if text.len() != 10 || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let y_adj = if m <= 2 { y - 1 } else { y };
    let era = y_adj.div_euclid(400);
    let yoe = y_adj - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let day = (era * 146_097 + doe - 719_468) as i32;
    // 2026-02-30 and the like do not survive the round trip.
    (iso_date(day) == text).then_some(day)
}

/// ISO `YYYY-MM-DD` of a day number (civil-from-days, proleptic Gregorian).
pub fn iso_date(day: i32) -> String {
    let z = day as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-11-20 is a Friday.
    const FRI_2026_11_20: i32 = 20_777;

    #[test]
    fn knows_the_date_and_weekday() {
        assert_eq!(iso_date(0), "1970-01-01");
        assert_eq!(iso_date(FRI_2026_11_20), "2026-11-20");
        assert_eq!(weekday(FRI_2026_11_20), 4);
        // 23:30 UTC on the 19th is already the 20th in Beijing.
        assert_eq!(day_of(1_795_131_000_000), 20_777);
    }

    fn day(date: &str) -> i32 {
        parse_iso_date(date).unwrap()
    }

    #[test]
    fn dates_round_trip() {
        for date in ["1970-01-01", "2000-02-29", "2026-11-20", "2027-12-31"] {
            assert_eq!(iso_date(day(date)), date);
        }
        assert_eq!(day("2026-11-20"), FRI_2026_11_20);
        for bad in ["2026-02-30", "2026-13-01", "2026-1-5", "yesterday", "2025-02-29"] {
            assert_eq!(parse_iso_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn validity_ends_the_day_before_the_anniversary() {
        assert_eq!(iso_date(validity_end(day("2026-11-20"), 5)), "2031-11-19");
        assert_eq!(iso_date(validity_end(day("2028-02-29"), 1)), "2029-02-27");
        assert_eq!(iso_date(validity_end(day("2026-01-01"), 1)), "2026-12-31");
    }

    #[test]
    fn skips_weekends() {
        let calendar = Calendar::builtin();
        assert_eq!(iso_date(calendar.add_working_days(FRI_2026_11_20, 1)), "2026-11-23");
        assert_eq!(iso_date(calendar.add_working_days(FRI_2026_11_20, 5)), "2026-11-27");
        assert_eq!(calendar.add_working_days(FRI_2026_11_20, 0), FRI_2026_11_20);
    }

    #[test]
    fn knows_the_2026_holidays_and_make_up_days() {
        let calendar = Calendar::builtin();
        // National Day week: 1-7 October off, Saturday 10 October worked.
        assert!(!calendar.is_working_day(day("2026-10-05")));
        assert!(calendar.is_working_day(day("2026-10-10")));
        assert_eq!(iso_date(calendar.add_working_days(day("2026-09-30"), 1)), "2026-10-08");
        // Sunday 20 September is worked before the Mid-Autumn Festival.
        assert_eq!(iso_date(calendar.add_working_days(day("2026-09-18"), 1)), "2026-09-20");
        // Spring Festival: Saturday 14 February worked, 15-23 February off.
        assert_eq!(iso_date(calendar.add_working_days(day("2026-02-13"), 2)), "2026-02-24");
        // Six working days from Thursday 24 December 2026 step over New Year's Day 2027.
        assert_eq!(iso_date(calendar.add_working_days(day("2026-12-24"), 6)), "2027-01-04");
        // 2027 carries its statutory holidays until its arrangement is published.
        assert!(!calendar.is_working_day(day("2027-02-08")));
    }

    #[test]
    fn counts_working_days_as_a_walk_over_the_days_would() {
        let calendar = Calendar::builtin();
        let walked = |from: i32, to: i32| (from + 1..=to).filter(|d| calendar.is_working_day(*d)).count() as i32;
        // Across the 2026 holidays and make-up days, into 2027, and in uncovered years.
        for from in (day("2025-12-20")..day("2027-02-20")).step_by(3).chain([0, -400, day("2031-06-01")]) {
            for span in [0, 1, 2, 6, 7, 8, 13, 30, 61, 200] {
                assert_eq!(
                    calendar.working_days_between(from, from + span),
                    walked(from, from + span),
                    "{from}+{span}"
                );
                assert_eq!(calendar.working_days_between(from + span, from), -walked(from, from + span));
            }
        }
        // National Day week: 2026-09-30 to 2026-10-10 holds 8 October, 9 October and Saturday 10 October.
        assert_eq!(calendar.working_days_between(day("2026-09-30"), day("2026-10-10")), 3);
    }

    #[test]
    fn refuses_inconsistent_data() {
        let year = |holidays: &str, weekends: &str| {
            format!("[[year]]\nyear = 2026\narrangement = \"announced\"\nsource = \"t\"\nholidays = [{holidays}]\nworking_weekends = [{weekends}]\n")
        };
        assert!(Calendar::parse(&year(r#"["2026-10-01", "2026-10-07"]"#, r#""2026-10-10""#)).is_ok());
        assert!(Calendar::parse(&year(r#"["2026-10-07", "2026-10-01"]"#, "")).unwrap_err().contains("ends before"));
        assert!(Calendar::parse(&year(r#"["2027-01-01", "2027-01-01"]"#, ""))
            .unwrap_err()
            .contains("outside the year"));
        assert!(Calendar::parse(&year("", r#""2026-10-09""#)).unwrap_err().contains("weekday"));
        assert!(Calendar::parse(&year(r#"["2026-10-01", "2026-10-03"], ["2026-10-03", "2026-10-04"]"#, ""))
            .unwrap_err()
            .contains("twice"));
    }
}
