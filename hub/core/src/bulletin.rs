//! The 办件通报 a county publishes each month (seeds 001, 002, 004): the county's figures, then
//! each township, department and window side by side, as a printable A4 page with its charts.
//! The spreadsheet export lays out the same rows (`Bulletin::columns`, `Bulletin::figures`).
use std::fmt::Write as _;

use serde::Serialize;

use super::documents::escape;
use super::reports::{Report, Share};

/// One unit's row: its code, its name, its figures.
#[derive(Debug, Clone, Serialize)]
pub struct UnitRow {
    pub code: String,
    pub name: String,
    pub report: Report,
}

/// The units of one kind compared.
#[derive(Debug, Clone, Serialize)]
pub struct Section {
    pub heading: String,
    pub rows: Vec<UnitRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Bulletin {
    pub county: String,
    /// As asked: `2026-12`, `2026-Q4`, …
    pub period: String,
    pub totals: Report,
    pub sections: Vec<Section>,
}

/// A cell of the comparison tables.
pub enum Cell {
    Count(u64),
    Rate(Option<f64>),
    Days(Option<f64>),
}

impl Cell {
    pub fn text(&self) -> String {
        match self {
            Cell::Count(n) => n.to_string(),
            Cell::Rate(Some(rate)) => format!("{:.1}%", rate * 100.0),
            Cell::Days(Some(days)) => format!("{days:.1}"),
            Cell::Rate(None) | Cell::Days(None) => "—".into(),
        }
    }
}

impl Bulletin {
    pub fn title(&self) -> String {
        format!("{}政务服务办件通报（{}）", self.county, period_text(&self.period))
    }

    /// The comparison tables' columns.
    pub fn columns() -> [&'static str; 13] {
        [
            "收件",
            "受理",
            "不予受理",
            "补正告知",
            "多次补正",
            "办结",
            "按时办结率",
            "即办件当日办结率",
            "平均用时（工作日）",
            "一次办结率",
            "好评率",
            "差评",
            "黄牌/红牌",
        ]
    }

    /// A unit's row of the comparison tables, column by column.
    pub fn cells(report: &Report) -> Vec<Cell> {
        let cards = |level: &str| report.cards.get(level).copied().unwrap_or(0);
        vec![
            Cell::Count(report.received),
            Cell::Count(report.accepted),
            Cell::Count(report.refused),
            Cell::Count(report.incomplete),
            Cell::Count(report.repeated_notices),
            Cell::Count(report.decided),
            Cell::Rate(report.on_time.rate),
            Cell::Rate(report.instant_same_day.rate),
            Cell::Days(report.mean_working_days),
            Cell::Rate(report.one_trip.rate),
            Cell::Rate(report.good_reviews.rate),
            Cell::Count(report.bad_reviews),
            Cell::Count(cards("yellow") + cards("red")),
        ]
    }

    /// The county's figures, each with its name and how it is counted.
    pub fn figures(&self) -> Vec<(&'static str, String, &'static str)> {
        let r = &self.totals;
        let share = |s: &Share| format!("{} / {}（{}）", s.count, s.of, Cell::Rate(s.rate).text());
        let yuan = |fen: i64| format!("{:.2} 元", fen as f64 / 100.0);
        let out = |way: &str| r.results_out.get(way).copied().unwrap_or(0);
        let cards = |level: &str| r.cards.get(level).copied().unwrap_or(0);
        vec![
            ("收件量", r.received.to_string(), "提交的申请"),
            ("网上申请", share(&r.online), "占收件"),
            ("村（社区）便民服务站收件", share(&r.village_station), "占收件"),
            ("银行网点代办", share(&r.bank_outlet), "占收件"),
            ("全城通办", share(&r.city_wide), "申请人户籍乡镇与受理点不同"),
            ("受理", r.accepted.to_string(), "首次受理"),
            ("容缺受理", share(&r.tolerant), "占受理"),
            ("不予受理", r.refused.to_string(), ""),
            ("一次性告知补正", r.incomplete.to_string(), "首次补正告知"),
            ("多次告知补正", r.repeated_notices.to_string(), "违反一次性告知"),
            ("容缺承诺按期补齐", share(&r.commitments_kept), "本期到期的承诺"),
            ("办结", r.decided.to_string(), "作出决定"),
            ("按时办结", share(&r.on_time), "不晚于决定时的承诺日期"),
            ("即办件当日办结", share(&r.instant_same_day), "即时办结率"),
            ("平均用时", Cell::Days(r.mean_working_days).text(), "受理至决定，工作日"),
            ("90% 办件用时不超过", r.p90_working_days.map_or("—".into(), |d| format!("{d} 个工作日")), ""),
            ("归档", r.archived.to_string(), ""),
            ("最多跑一次", share(&r.one_trip), "归档件中申请人到场不超过一次"),
            ("邮寄送达", out("mail").to_string(), ""),
            ("窗口领取", out("window").to_string(), ""),
            ("智能柜自取", out("locker").to_string(), ""),
            ("村站领取", out("village_station").to_string(), ""),
            ("评价", r.reviews.to_string(), ""),
            ("好评率", share(&r.good_reviews), "4–5 分"),
            ("差评", r.bad_reviews.to_string(), "1–2 分"),
            ("差评按期整改", share(&r.rectified_on_time), ""),
            ("预警 / 黄牌 / 红牌", format!("{} / {} / {}", cards("warning"), cards("yellow"), cards("red")), ""),
            ("督办按期反馈", share(&r.supervision_answered_on_time), ""),
            ("收费", yuan(r.fees_collected_fen), "银行到账"),
            ("退费", yuan(r.fees_refunded_fen), ""),
            ("减免", format!("{}（{} 笔）", yuan(r.fees_relieved_fen), r.reliefs), ""),
        ]
    }

    /// The printable page: A4, in Chinese, with a bar chart per comparison.
    pub fn html(&self) -> String {
        let mut page = String::new();
        let title = escape(&self.title());
        let _ = write!(
            page,
            "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>{title}</title><style>{STYLE}</style></head><body>\
             <h1>{title}</h1><p class=\"span\">统计期间：{} 至 {}（北京时间）。数据来源：县乡村三级政务服务协同平台办件记录。</p>",
            self.totals.first_day, self.totals.last_day
        );
        page.push_str("<h2>一、全县总体情况</h2><table class=\"figures\"><thead><tr><th>指标</th><th>数值</th><th>口径</th></tr></thead><tbody>");
        for (name, value, note) in self.figures() {
            let _ =
                write!(page, "<tr><th>{}</th><td>{}</td><td>{}</td></tr>", escape(name), escape(&value), escape(note));
        }
        page.push_str("</tbody></table>");
        for (index, section) in self.sections.iter().enumerate() {
            let _ = write!(
                page,
                "<section><h2>{}、{}</h2>",
                NUMERALS[(index + 1) % NUMERALS.len()],
                escape(&section.heading)
            );
            if section.rows.is_empty() {
                page.push_str("<p>本期无办件。</p></section>");
                continue;
            }
            page.push_str(&bars(
                "收件量",
                section
                    .rows
                    .iter()
                    .map(|row| (row.name.as_str(), row.report.received as f64, row.report.received.to_string())),
            ));
            page.push_str(&bars(
                "按时办结率",
                section.rows.iter().map(|row| {
                    let rate = row.report.on_time.rate;
                    (row.name.as_str(), rate.unwrap_or(0.0), Cell::Rate(rate).text())
                }),
            ));
            page.push_str("<table class=\"compare\"><thead><tr><th>单位</th>");
            for column in Bulletin::columns() {
                let _ = write!(page, "<th>{column}</th>");
            }
            page.push_str("</tr></thead><tbody>");
            for row in &section.rows {
                let _ = write!(page, "<tr data-unit=\"{}\"><th>{}</th>", escape(&row.code), escape(&row.name));
                for cell in Bulletin::cells(&row.report) {
                    let _ = write!(page, "<td>{}</td>", cell.text());
                }
                page.push_str("</tr>");
            }
            page.push_str("</tbody></table></section>");
        }
        page.push_str("</body></html>");
        page
    }
}

const NUMERALS: [&str; 10] = ["", "一", "二", "三", "四", "五", "六", "七", "八", "九"];

const STYLE: &str = "@page{size:A4;margin:16mm 14mm}body{font-family:'WenQuanYi Zen Hei','Noto Sans CJK SC',sans-serif;font-size:10.5pt;color:#111;max-width:182mm;margin:0 auto}\
h1{font-size:18pt;text-align:center;color:#b71c1c;border-bottom:2px solid #b71c1c;padding-bottom:4mm}h2{font-size:13pt;margin:6mm 0 2mm}\
.span{text-align:center;color:#444}table{border-collapse:collapse;width:100%;margin:2mm 0}th,td{border:1px solid #999;padding:1mm 1.5mm;text-align:center}\
.figures th{text-align:left;width:40%}.compare{font-size:8pt}.compare th:first-child{text-align:left}svg{width:100%;height:auto}\
section{break-inside:avoid-page}@media print{section{page-break-inside:avoid}}";

/// A horizontal bar per unit, scaled to the largest value.
fn bars<'a>(caption: &str, values: impl Iterator<Item = (&'a str, f64, String)>) -> String {
    let values: Vec<(&str, f64, String)> = values.collect();
    let top = values.iter().map(|(_, value, _)| *value).fold(0.0, f64::max);
    let (row, label, width) = (16.0, 150.0, 520.0);
    let height = row * values.len() as f64 + 22.0;
    let mut svg = format!(
        "<svg class=\"chart\" role=\"img\" aria-label=\"{caption}\" viewBox=\"0 0 {} {height}\" xmlns=\"http://www.w3.org/2000/svg\"><text x=\"0\" y=\"12\" font-size=\"11\" font-weight=\"bold\">{caption}</text>",
        label + width + 60.0,
    );
    for (i, (name, value, text)) in values.iter().enumerate() {
        let y = 20.0 + row * i as f64;
        let length = if top > 0.0 { value / top * width } else { 0.0 };
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"end\">{}</text><rect x=\"{label}\" y=\"{y}\" width=\"{length:.1}\" height=\"{}\" fill=\"#1c4fa1\"/><text x=\"{:.1}\" y=\"{}\" font-size=\"10\">{}</text>",
            label - 4.0,
            y + 11.0,
            escape(name),
            row - 4.0,
            label + length + 4.0,
            y + 11.0,
            escape(text)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// `2026-12` → `2026年12月`, `2026-Q4` → `2026年第四季度`, `2026` → `2026年度`.
fn period_text(period: &str) -> String {
    match period.split('-').collect::<Vec<_>>().as_slice() {
        [year] => format!("{year}年度"),
        [year, quarter] if quarter.starts_with('Q') => {
            let n: usize = quarter[1..].parse().unwrap_or(0);
            format!("{year}年第{}季度", NUMERALS.get(n).copied().unwrap_or(""))
        }
        [year, month] => format!("{year}年{}月", month.trim_start_matches('0')),
        [year, month, day] => format!("{year}年{}月{}日", month.trim_start_matches('0'), day.trim_start_matches('0')),
        _ => period.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(received: u64, on_time: u64, decided: u64) -> Report {
        let mut report = Report { received, decided, ..Report::default() };
        report.on_time =
            Share { count: on_time, of: decided, rate: (decided > 0).then(|| on_time as f64 / decided as f64) };
        report
    }

    #[test]
    fn the_page_names_the_period_and_compares_the_units() {
        let bulletin = Bulletin {
            county: "旬邑县".into(),
            period: "2026-11".into(),
            totals: report(30, 18, 20),
            sections: vec![Section {
                heading: "各镇（街道）".into(),
                rows: vec![
                    UnitRow { code: "610429100000".into(), name: "土桥镇".into(), report: report(20, 9, 20) },
                    UnitRow { code: "610429101000".into(), name: "职田镇<b>".into(), report: report(10, 9, 10) },
                ],
            }],
        };
        let page = bulletin.html();
        assert!(page.contains("旬邑县政务服务办件通报（2026年11月）"), "{page}");
        assert!(page.contains("<tr data-unit=\"610429100000\"><th>土桥镇</th><td>20</td>"));
        assert!(page.contains("90.0%") && page.contains("45.0%"), "each township's on-time rate");
        assert!(page.contains("职田镇&lt;b&gt;") && !page.contains("职田镇<b>"), "names are escaped");
        assert!(page.contains("18 / 20（90.0%）"), "the county's on-time share");
        assert_eq!(page.matches("<svg").count(), 2, "a chart per comparison: received and on time");
        assert_eq!(period_text("2026-Q4"), "2026年第四季度");
        assert_eq!(period_text("2026-12-02"), "2026年12月2日");
        assert_eq!(Bulletin::columns().len(), Bulletin::cells(&bulletin.totals).len());
    }
}
