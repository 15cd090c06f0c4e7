//! 电子监察: the board of what supervisors must look at now, from the cases under watch and the
//! refusals of the last month, each judged by `hub_core::supervision`.
use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};

use hub_core::calendar;
use hub_core::deadlines::Level;
use hub_core::reports::Unit;
use hub_core::supervision::{items_of, unfounded_refusal, BoardItem};
use hub_core::Reference;

use crate::store::{now_ms, Store};

/// Days back the board looks at closed files (late reviews) and at refusals.
const LOOKBACK_DAYS: i64 = 60;

/// What narrows the board: a unit (as the reports name it), a card, a kind.
#[derive(Debug, Clone)]
pub struct BoardFilter {
    pub unit: Unit,
    pub level: Option<Level>,
    pub kind: Option<&'static str>,
}

impl BoardFilter {
    fn keeps(&self, item: &BoardItem) -> bool {
        self.unit.holds(&item.units)
            && self.level.is_none_or(|level| item.level == level)
            && self.kind.is_none_or(|kind| item.kind == kind)
    }
}

/// The board as shown: the items, the worst first, and how many of each card and kind.
pub struct Board {
    pub items: Vec<BoardItem>,
    pub by_level: BTreeMap<&'static str, usize>,
    pub by_kind: BTreeMap<&'static str, usize>,
}

/// The board now; a step with no event for `stalled_after` working days counts as stalled.
pub async fn board(
    store: &Store,
    reference: &Reference,
    filter: &BoardFilter,
    stalled_after: i32,
) -> anyhow::Result<Board> {
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
    items.sort_by(|a, b| (Reverse(a.level), &a.case_number).cmp(&(Reverse(b.level), &b.case_number)));
    let mut by_level = BTreeMap::new();
    let mut by_kind = BTreeMap::new();
    for item in &items {
        *by_level.entry(item.level.as_str()).or_default() += 1;
        *by_kind.entry(item.kind).or_default() += 1;
    }
    Ok(Board { items, by_level, by_kind })
}
