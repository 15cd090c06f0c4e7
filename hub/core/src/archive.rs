//! The monthly archive hand-in (归档移交清单, seed 000): each unit's archivist hands the files
//! its cases closed in a month to the archive, listed by archive number with their pages, kept
//! for as long as the county's policy says.
use contracts::CaseArchived;
use serde::Serialize;

use super::calendar::{iso_date, parse_iso_date};
use super::case::Case;
use super::documents::{page_index, retention_title};
use super::reference::Reference;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HandInLine {
    pub position: usize,
    /// 档号.
    pub file_number: String,
    pub case_number: String,
    /// 题名: the matter and the case, never the applicant (the list leaves the unit).
    pub title: String,
    pub documents: usize,
    pub pages: u32,
    pub archived_on: String,
    /// 保管期限, as printed.
    pub retention: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HandInList {
    pub month: String,
    pub unit_code: String,
    pub unit_name: String,
    /// 移交人: the unit's archivist.
    pub handed_in_by: String,
    /// 接收人: the keeper of the archive the files go to (the approval bureau's archivist).
    pub received_by: String,
    pub files: usize,
    pub pages: u32,
    pub lines: Vec<HandInLine>,
}

/// The first instant of a month `YYYY-MM` and of the month after, China Standard Time.
pub fn month_bounds(month: &str) -> Result<(i64, i64), String> {
    let malformed = || format!("month: {month:?} is not a month written YYYY-MM");
    let (year, number) = month.split_once('-').ok_or_else(malformed)?;
    let (year, number): (i32, u32) = (year.parse().map_err(|_| malformed())?, number.parse().map_err(|_| malformed())?);
    if month.len() != 7 || !(1..=12).contains(&number) {
        return Err(malformed());
    }
    let (next_year, next) = if number == 12 { (year + 1, 1) } else { (year, number + 1) };
    let first = parse_iso_date(&format!("{year:04}-{number:02}-01")).ok_or_else(malformed)?;
    let after = parse_iso_date(&format!("{next_year:04}-{next:02}-01")).ok_or_else(malformed)?;
    let instant = |day: i32| i64::from(day) * 86_400_000 - 8 * 3_600_000;
    Ok((instant(first), instant(after)))
}

/// The hand-in lists of `month`, one per unit (only `unit`'s when given), from the month's
/// archive events and their cases, ordered by unit and archive number.
pub fn hand_in_lists(
    month: &str,
    archived: &[(CaseArchived, Case)],
    unit: Option<&str>,
    reference: &Reference,
) -> Vec<HandInList> {
    let keeper = reference
        .authority(&reference.county.approval_bureau)
        .map(|bureau| bureau.records.archivist)
        .unwrap_or_default();
    let mut files: Vec<&(CaseArchived, Case)> =
        archived.iter().filter(|(event, _)| unit.is_none_or(|unit| event.unit_code == unit)).collect();
    files.sort_by(|a, b| (&a.0.unit_code, &a.0.file_number).cmp(&(&b.0.unit_code, &b.0.file_number)));
    let mut lists: Vec<HandInList> = Vec::new();
    for (event, case) in files {
        if lists.last().is_none_or(|list| list.unit_code != event.unit_code) {
            let unit_name = reference.authority(&event.unit_code).map(|a| a.name).unwrap_or_default();
            lists.push(HandInList {
                month: month.into(),
                unit_code: event.unit_code.clone(),
                unit_name,
                handed_in_by: event.archivist.clone(),
                received_by: keeper.clone(),
                files: 0,
                pages: 0,
                lines: Vec::new(),
            });
        }
        let list = lists.last_mut().expect("pushed above");
        let index = page_index(case);
        let pages = index.last().map_or(0, |line| line.last_page);
        list.files += 1;
        list.pages += pages;
        list.lines.push(HandInLine {
            position: list.lines.len() + 1,
            file_number: event.file_number.clone(),
            case_number: case.case_number.clone(),
            title: format!("{}办件（{}）", case.application.matter.name, case.case_number),
            documents: index.len(),
            pages,
            archived_on: iso_date(contracts::day_of(event.occurred_at)),
            retention: retention_title(&event.retention),
        });
    }
    lists
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use crate::{handle, Command};

    #[test]
    fn a_month_runs_from_its_first_midnight_in_china_to_the_next_months() {
        let (from, until) = month_bounds("2026-12").unwrap();
        assert_eq!(
            (iso_date(contracts::day_of(from)), iso_date(contracts::day_of(until))),
            ("2026-12-01".into(), "2027-01-01".into())
        );
        assert_eq!(contracts::day_of(from - 1), contracts::day_of(from) - 1, "a minute before is November");
        for bad in ["2026-13", "2026-1", "12-2026", "2026"] {
            assert!(month_bounds(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn each_unit_hands_in_its_own_files_numbered_with_their_pages() {
        let reference = Reference::builtin();
        let app = application(&reference);
        let ctx = context(&reference);
        let examined = handle(Case::open(&app), &Command::Examine, &ctx).unwrap();
        let department = examined.case.department_code.clone().unwrap();
        let deny = Command::Decide {
            outcome: crate::Outcome::Denied,
            officer: "王审批".into(),
            department_code: department.clone(),
            reason: Some("不符合法定条件".into()),
        };
        let denied = handle(examined.case, &deny, &ctx).unwrap();
        let archived = denied.reactions.iter().find_map(|e| match e {
            contracts::Event::CaseArchived(e) => Some(e.clone()),
            _ => None,
        });
        let archived = vec![(archived.unwrap(), denied.case)];
        let lists = hand_in_lists("2026-11", &archived, None, &reference);
        assert_eq!(lists.len(), 1);
        let list = &lists[0];
        assert_eq!((list.unit_name.as_str(), list.handed_in_by.as_str()), ("旬邑县行政审批服务局", "马晓燕"));
        assert_eq!((list.files, list.lines[0].documents), (1, 4));
        assert_eq!(list.pages, list.lines[0].pages);
        assert_eq!(list.lines[0].retention, "定期10年");
        assert!(!list.lines[0].title.contains("张三"), "the list leaves the unit without the applicant's name");
        assert!(hand_in_lists("2026-11", &archived, Some("610429100000"), &reference).is_empty());
    }
}
