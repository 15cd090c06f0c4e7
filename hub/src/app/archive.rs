//! The archive's monthly hand-in lists, read off the cases' archive events.
use contracts::Event;
use hub_core::archive::{hand_in_lists, month_bounds, HandInList};
use hub_core::Reference;

use crate::store::Store;

/// The hand-in lists of `month` (`YYYY-MM`), of one unit or of all; `Err` names what is wrong
/// with the month.
pub async fn hand_in(
    store: &Store,
    reference: &Reference,
    month: &str,
    unit: Option<&str>,
) -> anyhow::Result<Result<Vec<HandInList>, String>> {
    let (from, until) = match month_bounds(month) {
        Ok(bounds) => bounds,
        Err(problem) => return Ok(Err(problem)),
    };
    let archived: Vec<_> = store
        .events_between("CaseArchived", from, until)
        .await?
        .into_iter()
        .filter_map(|event| match event {
            Event::CaseArchived(archived) if unit.is_none_or(|unit| archived.unit_code == unit) => Some(archived),
            _ => None,
        })
        .collect();
    let numbers: Vec<&str> = archived.iter().map(|e| e.case_number.as_str()).collect();
    let mut cases: std::collections::HashMap<String, hub_core::Case> = store
        .cases_with_requests(&numbers)
        .await?
        .into_iter()
        .map(|(_, case)| (case.case_number.clone(), case))
        .collect();
    let files: Vec<_> =
        archived.into_iter().filter_map(|event| cases.remove(&event.case_number).map(|case| (event, case))).collect();
    Ok(Ok(hand_in_lists(month, &files, unit, reference)))
}
