//! The report lines (办件通报): every case event's counted facts, kept with the case's units in
//! the transaction that appends the event, and summed per period and unit by one grouped query.
use std::collections::BTreeMap;

use contracts::Event;
use futures::TryStreamExt as _;
use hub_core::reports::{CaseUnits, Line, Period, Tally, Unit};
use sqlx::Row as _;

use super::{text, Param, Store, StoreTx};

/// The units a bulletin compares, by the column that holds them.
#[derive(Debug, Clone, Copy)]
pub enum UnitKind {
    Township,
    Department,
    Window,
}

impl UnitKind {
    fn column(self) -> &'static str {
        match self {
            UnitKind::Township => "township",
            UnitKind::Department => "department",
            UnitKind::Window => "window_code",
        }
    }
}

/// A line to keep: the case, the history entry that counted it, the case's units.
pub struct KeptLine<'a> {
    pub case_number: &'a str,
    pub seq: u32,
    pub units: &'a CaseUnits,
    pub line: Line,
}

impl StoreTx<'_> {
    pub async fn keep_report_lines(&mut self, lines: &[KeptLine<'_>]) -> anyhow::Result<()> {
        let rows = lines
            .iter()
            .map(|kept| {
                let units = kept.units;
                vec![
                    text(kept.case_number),
                    Param::Int(i64::from(kept.seq)),
                    text(&kept.line.figure),
                    Param::Int(i64::from(kept.line.day)),
                    Param::Int(kept.line.amount),
                    text(&units.point),
                    text(&units.township),
                    Param::MaybeText(units.window.clone()),
                    text(&units.receiver),
                    Param::MaybeText(units.department.clone()),
                    Param::MaybeText(units.decider.clone()),
                ]
            })
            .collect();
        self.execute_rows(
            "INSERT INTO report_lines (case_number, seq, figure, day, amount, point, township, window_code, receiver, department, decider)",
            "",
            rows,
        )
        .await
    }

    /// The department and decider become known as a case goes on: its lines kept so far move
    /// to them, so every figure of the case counts where it went. One statement for the cases
    /// of a transaction (VALUES columns are column1, column2, … on SQLite and PostgreSQL alike).
    pub async fn move_report_lines(&mut self, cases: &[(&str, CaseUnits)]) -> anyhow::Result<()> {
        let rows = cases
            .iter()
            .map(|(case_number, units)| {
                vec![
                    text(case_number),
                    Param::MaybeText(units.department.clone()),
                    Param::MaybeText(units.decider.clone()),
                ]
            })
            .collect();
        self.execute_rows(
            "UPDATE report_lines SET department = moved.column2, decider = moved.column3 FROM (",
            ") AS moved WHERE report_lines.case_number = moved.column1",
            rows,
        )
        .await
    }
}

impl Store {
    /// The kept lines of a period and unit, grouped by figure and amount.
    pub async fn report_tally(&self, period: &Period, unit: &Unit) -> anyhow::Result<Tally> {
        let (filter, value) = match unit {
            Unit::County => ("", None),
            Unit::Township(code) => ("AND township = $3", Some(code)),
            Unit::ServicePoint(code) => ("AND point = $3", Some(code)),
            Unit::Window(code) => ("AND window_code = $3", Some(code)),
            Unit::Department(code) => ("AND department = $3", Some(code)),
            Unit::Staff(name) => ("AND (receiver = $3 OR decider = $3)", Some(name)),
        };
        let sql = format!(
            "SELECT figure, amount, COUNT(*) FROM report_lines WHERE day >= $1 AND day <= $2 {filter} GROUP BY figure, amount"
        );
        let mut query = sqlx::query(&sql).bind(period.first_day).bind(period.last_day);
        if let Some(value) = value {
            query = query.bind(value);
        }
        let mut tally = Tally::default();
        for row in query.fetch_all(&self.reads).await? {
            tally.add(row.get::<String, _>(0).as_str(), row.get(1), row.get::<i64, _>(2) as u64);
        }
        Ok(tally)
    }

    /// The kept lines of a period per unit of one kind (`township`, `point`, `window_code` or
    /// `department`), in one grouped scan.
    pub async fn report_tallies_by(&self, period: &Period, kind: UnitKind) -> anyhow::Result<BTreeMap<String, Tally>> {
        let column = kind.column();
        let sql = format!(
            "SELECT {column}, figure, amount, COUNT(*) FROM report_lines WHERE day >= $1 AND day <= $2 AND {column} IS NOT NULL GROUP BY {column}, figure, amount"
        );
        let rows = sqlx::query(&sql).bind(period.first_day).bind(period.last_day).fetch_all(&self.reads).await?;
        let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
        for row in rows {
            let tally = tallies.entry(row.get(0)).or_default();
            tally.add(row.get::<String, _>(1).as_str(), row.get(2), row.get::<i64, _>(3) as u64);
        }
        Ok(tallies)
    }

    pub async fn report_line_count(&self) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM report_lines").fetch_one(&self.reads).await?)
    }

    /// Hands every case's history, in order, to `each`, one case at a time: a recount reads the
    /// whole store without holding it in memory.
    pub async fn each_history(&self, mut each: impl FnMut(&[Event])) -> anyhow::Result<()> {
        let mut rows =
            sqlx::query("SELECT case_number, body FROM case_events ORDER BY case_number, seq").fetch(&self.reads);
        let mut case = String::new();
        let mut history: Vec<Event> = Vec::new();
        while let Some(row) = rows.try_next().await? {
            let number: String = row.get(0);
            if number != case {
                if !history.is_empty() {
                    each(&history);
                }
                history.clear();
                case = number;
            }
            history.push(serde_json::from_str(row.get::<String, _>(1).as_str())?);
        }
        if !history.is_empty() {
            each(&history);
        }
        Ok(())
    }
}
