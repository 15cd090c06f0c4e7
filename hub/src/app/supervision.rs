//! 电子监察: the board of what supervisors must look at now, from the cases under watch and the
//! refusals of the last month, each judged by `hub_core::supervision`.
use std::collections::HashMap;

use hub_core::calendar;
use hub_core::supervision::{items_of, unfounded_refusal, BoardItem};
use hub_core::Reference;

use crate::store::{now_ms, Store};

/// Days back the board looks at closed files (late reviews) and at refusals.
const LOOKBACK_DAYS: i64 = 60;

/// What narrows the board: a unit (service point, township or department code), a card, a kind.
#[derive(Debug, Default, Clone)]
pub struct BoardFilter {
    pub unit: Option<String>,
    pub level: Option<String>,
    pub kind: Option<String>,
}

impl BoardFilter {
    fn keeps(&self, item: &BoardItem) -> bool {
        let unit = self
            .unit
            .as_deref()
            .is_none_or(|code| item.point == code || item.township == code || item.department.as_deref() == Some(code));
        unit && self.level.as_deref().is_none_or(|level| item.level == level)
            && self.kind.as_deref().is_none_or(|kind| item.kind == kind)
    }
}

/// The board now; a step with no event for `stalled_after` working days counts as stalled.
pub async fn board(
    store: &Store,
    reference: &Reference,
    filter: &BoardFilter,
    stalled_after: i32,
) -> anyhow::Result<Vec<BoardItem>> {
    let now = now_ms();
    let since = now - LOOKBACK_DAYS * 86_400_000;
    let today = calendar::day_of(now);
    let watched = store.cases_under_watch(since).await?;
    let mut items: Vec<BoardItem> = watched
        .iter()
        .flat_map(|(case, last)| items_of(case, calendar::day_of(*last), today, stalled_after, reference))
        .collect();
    let cases: HashMap<&str, _> = watched.iter().map(|(case, _)| (case.case_number.as_str(), case)).collect();
    for kind in ["AcceptanceRefused", "CaseDecided"] {
        for event in store.events_between(kind, since, now + 1).await? {
            if let Some(case) = cases.get(event.case_number()) {
                items.extend(unfounded_refusal(case, &event, reference));
            }
        }
    }
    items.retain(|item| filter.keeps(item));
    // The worst first, then the case.
    let rank = |level: &str| match level {
        "red" => 0,
        "yellow" => 1,
        _ => 2,
    };
    items.sort_by(|a, b| (rank(a.level), &a.case_number).cmp(&(rank(b.level), &b.case_number)));
    Ok(items)
}
