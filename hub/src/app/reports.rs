//! The reports (办件通报): a period's figures for a unit, from the cases' histories, by the one
//! definition of each figure in `hub_core::reports`.
use hub_core::reports::{report, Period, Report, Unit};
use hub_core::Reference;

use crate::store::Store;

/// The report of `period` (`2026-12-02`, `2026-12`, `2026-Q4`, `2026`) for the unit a code names
/// (the county's by default) or one staff member; `Ok(Err((field, why)))` for a bad request.
pub async fn report_of(
    store: &Store,
    reference: &Reference,
    period: &str,
    unit: Option<&str>,
    staff: Option<&str>,
) -> anyhow::Result<Result<Report, (&'static str, String)>> {
    let period = match Period::parse(period) {
        Ok(period) => period,
        Err(why) => return Ok(Err(("period", why))),
    };
    let unit = match (unit, staff) {
        (Some(_), Some(_)) => return Ok(Err(("staff", "name a unit or a staff member, not both".into()))),
        (_, Some(name)) => Unit::Staff(name.into()),
        (Some(code), None) => match Unit::of_code(reference, code) {
            Ok(unit) => unit,
            Err(why) => return Ok(Err(("unit", why))),
        },
        (None, None) => Unit::County,
    };
    let histories = store.histories().await?;
    Ok(Ok(report(&period, &unit, histories.iter().map(Vec::as_slice), reference)))
}
