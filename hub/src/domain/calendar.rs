//! Working-day arithmetic. Dates are days since 1970-01-01 in China Standard Time (UTC+8).

const MILLIS_PER_DAY: i64 = 86_400_000;
const CST_OFFSET_MILLIS: i64 = 8 * 3_600_000;

/// The local calendar day of an instant.
pub fn day_of(millis: i64) -> i32 {
    (millis + CST_OFFSET_MILLIS).div_euclid(MILLIS_PER_DAY) as i32
}

/// Monday = 0 .. Sunday = 6. 1970-01-01 was a Thursday.
pub fn weekday(day: i32) -> i32 {
    (day + 3).rem_euclid(7)
}

pub fn is_working_day(day: i32) -> bool {
    weekday(day) < 5
}

/// The date `working_days` working days after `day`; the day itself does not count.
pub fn add_working_days(day: i32, working_days: u32) -> i32 {
    let mut date = day;
    let mut left = working_days;
    while left > 0 {
        date += 1;
        if is_working_day(date) {
            left -= 1;
        }
    }
    date
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

    #[test]
    fn skips_weekends() {
        assert_eq!(iso_date(add_working_days(FRI_2026_11_20, 1)), "2026-11-23");
        assert_eq!(iso_date(add_working_days(FRI_2026_11_20, 5)), "2026-11-27");
        assert_eq!(add_working_days(FRI_2026_11_20, 0), FRI_2026_11_20);
    }
}
