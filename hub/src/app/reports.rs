//! The reports (办件通报): a period's figures for a unit, summed from the lines each case event
//! counted (`hub_core::reports::lines_of`, the one definition of each figure), kept in the
//! transaction that stored the event; a recount replays the histories to check them.
use contracts::Event;
use hub_core::bulletin::{Bulletin, Cell, Section, UnitRow};
use hub_core::reports::{lines_after, lines_of, recount, CaseUnits, Period, Report, Tally, Unit};
use hub_core::{Case, Reference};
use rust_xlsxwriter::{Chart, ChartType, Format, Workbook};

use crate::store::{KeptLine, Store, StoreTx, UnitKind};

/// What a transaction appends to one case's history.
pub struct Appended<'c> {
    /// The case as loaded; for a case just opened, the opened case, its history starting with
    /// its application.
    pub loaded: &'c Case,
    /// The sequence number of the first entry appended.
    pub first_seq: u32,
    pub history: &'c [Event],
    /// The case as the transaction leaves it.
    pub now: &'c Case,
}

/// Keeps the lines of what a transaction appends, in that transaction.
pub async fn keep_lines(tx: &mut StoreTx<'_>, appended: &[Appended<'_>], reference: &Reference) -> anyhow::Result<()> {
    let mut counted = Vec::with_capacity(appended.len());
    let mut moved = Vec::new();
    for case in appended {
        let units = CaseUnits::of(case.now, reference);
        // A case just opened has no lines stored yet to move.
        let opened = matches!(case.history.first(), Some(Event::ApplicationSubmitted(_)));
        if !opened
            && (case.loaded.department_code != case.now.department_code
                || case.loaded.decided_by != case.now.decided_by)
        {
            moved.push((case.now.case_number.as_str(), units.clone()));
        }
        // A case just opened is loaded as opened: its application counts on it, the rest after.
        let (mut lines, later, skipped): (Vec<_>, _, _) = match case.history {
            [submitted @ Event::ApplicationSubmitted(_), later @ ..] => {
                (lines_of(case.loaded, submitted, reference).into_iter().map(|line| (0, line)).collect(), later, 1)
            }
            later => (Vec::new(), later, 0),
        };
        let (_, after) = lines_after(case.loaded.clone(), later, reference);
        lines.extend(after.into_iter().map(|(position, line)| (position + skipped, line)));
        counted.push((case, units, lines));
    }
    let kept: Vec<KeptLine> = counted
        .iter()
        .flat_map(|(case, units, lines)| {
            lines.iter().map(move |(position, line)| KeptLine {
                case_number: &case.now.case_number,
                seq: case.first_seq + *position as u32,
                units,
                line: line.clone(),
            })
        })
        .collect();
    tx.move_report_lines(&moved).await?;
    tx.keep_report_lines(&kept).await
}

/// A report request's period and unit (the county's by default, or one staff member's);
/// `Err((field, why))` for a bad one.
pub fn scope_of(
    reference: &Reference,
    period: &str,
    unit: Option<&str>,
    staff: Option<&str>,
) -> Result<(Period, Unit), (&'static str, String)> {
    let period = Period::parse(period).map_err(|why| ("period", why))?;
    let unit = match (unit, staff) {
        (Some(_), Some(_)) => return Err(("staff", "name a unit or a staff member, not both".into())),
        (_, Some(name)) => Unit::Staff(name.into()),
        (Some(code), None) => Unit::of_code(reference, code).map_err(|why| ("unit", why))?,
        (None, None) => Unit::County,
    };
    Ok((period, unit))
}

/// The report of a period and unit from the kept lines.
pub async fn report_of(store: &Store, period: &Period, unit: &Unit) -> anyhow::Result<Report> {
    Ok(Report::of(period, &store.report_tally(period, unit).await?))
}

/// The same report recounted from every case's history, one case at a time.
pub async fn recount_of(store: &Store, reference: &Reference, period: &Period, unit: &Unit) -> anyhow::Result<Report> {
    let mut tally = Tally::default();
    store.each_history(|history| tally.merge(recount(period, unit, [history], reference))).await?;
    Ok(Report::of(period, &tally))
}

/// The 办件通报 of a period (`as_asked` is the period as written): the county's figures, then
/// every township (the county hall first), the departments that had cases, and every window.
pub async fn bulletin_of(
    store: &Store,
    reference: &Reference,
    as_asked: &str,
    period: &Period,
) -> anyhow::Result<Bulletin> {
    let totals = report_of(store, period, &Unit::County).await?;
    let mut by_township = store.report_tallies_by(period, UnitKind::Township).await?;
    let mut by_department = store.report_tallies_by(period, UnitKind::Department).await?;
    let mut by_window = store.report_tallies_by(period, UnitKind::Window).await?;
    let row = |tallies: &mut std::collections::BTreeMap<String, Tally>, code: &str, name: String| UnitRow {
        code: code.to_string(),
        name,
        report: Report::of(period, &tallies.remove(code).unwrap_or_default()),
    };
    let county = &reference.county;
    let townships = std::iter::once((county.code.as_str(), format!("{}政务服务中心（含网上申请）", county.name)))
        .chain(county.townships.iter().map(|t| (t.code.as_str(), t.name.clone())))
        .map(|(code, name)| row(&mut by_township, code, name))
        .collect();
    let departments: Vec<String> = by_department.keys().cloned().collect();
    let departments = departments
        .iter()
        .map(|code| row(&mut by_department, code, reference.unit_name(code).unwrap_or_else(|| code.clone())))
        .collect();
    let windows = county.windows.iter().map(|w| row(&mut by_window, &w.code, w.name.clone())).collect();
    Ok(Bulletin {
        county: county.name.clone(),
        period: as_asked.to_string(),
        totals,
        sections: vec![
            Section { heading: "各镇（街道）及县政务服务中心".into(), rows: townships },
            Section { heading: "各审批部门".into(), rows: departments },
            Section { heading: "各窗口".into(), rows: windows },
        ],
    })
}

/// The bulletin as a spreadsheet: the county's figures, then a sheet per comparison with a
/// chart of what each unit received.
pub fn bulletin_xlsx(bulletin: &Bulletin) -> anyhow::Result<Vec<u8>> {
    let mut workbook = Workbook::new();
    let bold = Format::new().set_bold();
    let percent = Format::new().set_num_format("0.0%");
    let days = Format::new().set_num_format("0.0");
    let sheet = workbook.add_worksheet().set_name("全县")?;
    sheet.write_with_format(0, 0, bulletin.title(), &bold)?;
    for (column, heading) in ["指标", "数值", "口径"].into_iter().enumerate() {
        sheet.write_with_format(2, column as u16, heading, &bold)?;
    }
    for (i, (name, value, note)) in bulletin.figures().into_iter().enumerate() {
        let row = 3 + i as u32;
        sheet.write(row, 0, name)?.write(row, 1, value)?.write(row, 2, note)?;
    }
    sheet.set_column_width(0, 24)?.set_column_width(1, 22)?.set_column_width(2, 30)?;
    for section in &bulletin.sections {
        let name = section.heading.chars().take(31).collect::<String>();
        let sheet = workbook.add_worksheet().set_name(&name)?;
        sheet.write_with_format(0, 0, "单位", &bold)?;
        for (column, heading) in Bulletin::columns().into_iter().enumerate() {
            sheet.write_with_format(0, 1 + column as u16, heading, &bold)?;
        }
        for (i, unit) in section.rows.iter().enumerate() {
            let row = 1 + i as u32;
            sheet.write(row, 0, &unit.name)?;
            for (column, cell) in Bulletin::cells(&unit.report).into_iter().enumerate() {
                let column = 1 + column as u16;
                match cell {
                    Cell::Count(n) => drop(sheet.write(row, column, n as f64)?),
                    Cell::Rate(Some(rate)) => drop(sheet.write_with_format(row, column, rate, &percent)?),
                    Cell::Days(Some(value)) => drop(sheet.write_with_format(row, column, value, &days)?),
                    Cell::Rate(None) | Cell::Days(None) => drop(sheet.write(row, column, "—")?),
                }
            }
        }
        sheet.set_column_width(0, 36)?;
        if !section.rows.is_empty() {
            let last = section.rows.len() as u32;
            let mut chart = Chart::new(ChartType::Bar);
            chart.add_series().set_name("收件").set_categories((name.as_str(), 1, 0, last, 0)).set_values((
                name.as_str(),
                1,
                1,
                last,
                1,
            ));
            chart.title().set_name(&format!("{}收件量", section.heading));
            chart.legend().set_hidden();
            sheet.insert_chart(last + 2, 0, &chart)?;
        }
    }
    Ok(workbook.save_to_buffer()?)
}
