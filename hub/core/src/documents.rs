//! The case file: every document a case's events issue (notices, records, decisions,
//! receipts), numbered in the county's style, indexed with page numbers for the archive, and
//! rendered as printable HTML from the event that issued it.
use contracts::Event;
use serde::{Deserialize, Serialize};

use super::calendar::{self, iso_date};
use super::case::{Case, Outcome, NOT_COMPETENT_BASIS};
use super::facts::{DeliveryMethod, DeliveryOutcome};
use super::reference::Reference;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentRef {
    pub kind: String,
    pub title: String,
    pub number: String,
    pub issued_at: i64,
    /// The event that issued it, whose content the document shows.
    pub event_id: String,
    pub pages: u32,
}

/// Title and number prefix of each kind of document.
fn title_and_prefix(kind: &str) -> (&'static str, &'static str) {
    match kind {
        "application" => ("申请表及申请材料", "申"),
        "acceptance_notice" => ("受理通知书", "受"),
        "tolerant_acceptance_notice" => ("容缺受理通知书", "受"),
        "refusal" => ("不予受理通知书", "不受"),
        "one_time_notice" => ("一次性告知单", "补"),
        "site_inspection" => ("现场踏勘通知书", "勘"),
        "site_inspection_record" => ("现场踏勘记录", "勘记"),
        "hearing" => ("听证通知书", "听"),
        "hearing_record" => ("听证笔录", "听记"),
        "expert_review" => ("专家评审通知书", "评"),
        "expert_review_record" => ("专家评审意见", "评记"),
        "supplement" => ("补正材料通知书", "补"),
        "supplement_record" => ("补正材料记录", "补记"),
        "opinion" => ("并联审批部门意见", "意"),
        "approval" => ("准予行政许可决定书", "审许"),
        "denial" => ("不予行政许可决定书", "审不许"),
        "pickup_notice" => ("办件结果领取通知", "领"),
        "pickup_record" => ("办件结果领取签收记录", "领记"),
        "delivery_receipt" => ("送达回证", "送"),
        "archive_index" => ("归档目录", "档"),
        _ => ("文书", "文"),
    }
}

/// The number of a document of `kind` for `case`: 旬受〔2026〕000123号, with the case
/// version appended after a supplement (旬受〔2026〕000123-2号).
pub fn number(reference: &Reference, case: &Case, kind: &str, today: i32) -> String {
    let county = reference.county.name.chars().next().unwrap_or('县');
    let year = &iso_date(today)[..4];
    let version = if case.version > 1 { format!("-{}", case.version) } else { String::new() };
    format!("{county}{}〔{year}〕{}{version}号", title_and_prefix(kind).1, case.serial())
}

fn document(kind: &str, number: &str, event: &Event, pages: u32) -> DocumentRef {
    DocumentRef {
        kind: kind.into(),
        title: title_and_prefix(kind).0.into(),
        number: number.into(),
        issued_at: event.occurred_at(),
        event_id: event.event_id().into(),
        pages,
    }
}

/// The document an event adds to the case file, if any.
pub fn issued_by(case: &Case, event: &Event) -> Option<DocumentRef> {
    Some(match event {
        Event::ApplicationSubmitted(e) => document("application", &e.case_number, event, 1 + e.materials.len() as u32),
        Event::CaseAccepted(e) if e.acceptance == "tolerant" => {
            document("tolerant_acceptance_notice", &e.notice_number, event, 1)
        }
        Event::CaseAccepted(e) => document("acceptance_notice", &e.notice_number, event, 1),
        Event::AcceptanceRefused(e) => document("refusal", &e.notice_number, event, 1),
        Event::SupplementRequested(e) => document("one_time_notice", &e.notice_number, event, 1),
        // One notice to the applicant and one to each interested party.
        Event::ProcedureStarted(e) => document(&e.procedure, &e.notice_number, event, 1 + e.parties.len() as u32),
        Event::ProcedureCompleted(e) => document(&format!("{}_record", e.procedure), &e.record_number, event, 2),
        Event::OpinionGiven(e) => document("opinion", &format!("{}-{}", case.case_number, e.department_code), event, 1),
        Event::CaseDecided(e) => {
            let kind = match Outcome::of(e) {
                Outcome::Approved => "approval",
                Outcome::Denied => "denial",
            };
            document(kind, e.result_document.as_deref().unwrap_or_default(), event, 2)
        }
        Event::DeliveryCompleted(e) if DeliveryOutcome::of(e) == DeliveryOutcome::Signed => {
            document("delivery_receipt", &e.waybill_number, event, 1)
        }
        Event::ResultReadyForPickup(_) => document("pickup_notice", &case.case_number, event, 1),
        Event::ResultCollected(_) => document("pickup_record", &case.case_number, event, 1),
        Event::CaseArchived(_) => document("archive_index", &case.case_number, event, 1),
        _ => return None,
    })
}

/// One line of the archive's page index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IndexLine {
    pub position: usize,
    pub title: String,
    pub number: String,
    pub date: String,
    pub first_page: u32,
    pub last_page: u32,
}

/// The page index of the case file (卷内目录), in the order the documents were issued.
pub fn page_index(case: &Case) -> Vec<IndexLine> {
    let mut next_page = 1;
    case.documents
        .iter()
        .enumerate()
        .map(|(i, doc)| {
            let first_page = next_page;
            next_page += doc.pages;
            IndexLine {
                position: i + 1,
                title: doc.title.clone(),
                number: doc.number.clone(),
                date: iso_date(calendar::day_of(doc.issued_at)),
                first_page,
                last_page: next_page - 1,
            }
        })
        .collect()
}

fn escape(text: &str) -> String {
    text.chars().fold(String::with_capacity(text.len()), |mut out, c| {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
        out
    })
}

fn date_time(millis: i64) -> String {
    let day = calendar::day_of(millis);
    let minutes = (millis + 8 * 3_600_000).rem_euclid(86_400_000) / 60_000;
    format!("{} {:02}:{:02}", iso_date(day), minutes / 60, minutes % 60)
}

/// The lines of a document: label and value, in reading order.
fn lines(case: &Case, doc: &DocumentRef, event: &Event, reference: &Reference) -> Vec<(&'static str, String)> {
    let app = &case.application;
    let mut lines = vec![
        ("办件编号", case.case_number.clone()),
        ("申请人", app.applicant.name.clone()),
        (
            "申请事项",
            format!("{}（实施编码 {}，第 {} 版）", app.matter.name, app.matter.implementation_code, app.matter.version),
        ),
    ];
    let authority = |code: &str| reference.authority(code).map_or_else(|| code.to_string(), |a| a.name);
    match event {
        Event::ApplicationSubmitted(e) => {
            lines.push(("受理点", e.service_point.name.clone()));
            lines.push(("提交材料", e.materials.join("、")));
            lines.push(("提交时间", date_time(e.occurred_at)));
        }
        Event::CaseAccepted(e) => {
            lines.push(("受理时间", date_time(e.occurred_at)));
            lines.push(("承诺办结日期", iso_date(e.promised_date)));
            let pickup = match case.delivery_method() {
                DeliveryMethod::Mail => "邮政快递送达",
                DeliveryMethod::Locker => "自助柜取件",
                DeliveryMethod::Window => "窗口领取",
            };
            lines.push(("取件方式", pickup.into()));
            if !e.outstanding_materials.is_empty() {
                lines.push(("容缺材料", e.outstanding_materials.join("、")));
                lines.push(("承诺补齐日期", e.commitment_date.map(iso_date).unwrap_or_default()));
            }
            lines.push(("咨询电话", reference.county.enquiry_phone.clone()));
        }
        Event::AcceptanceRefused(e) => {
            lines.push(("不予受理理由", e.reason.clone()));
            lines.push(("法律依据", e.legal_basis.clone()));
            if e.legal_basis == NOT_COMPETENT_BASIS {
                lines.push(("告知", "申请事项不属于本机关职权范围，请向有关行政机关申请".into()));
            }
        }
        Event::SupplementRequested(e) => {
            for item in &e.items {
                lines.push(("需补正材料", format!("{}：{}", item.material, item.problem)));
            }
            lines.push(("告知", "以上为需补正的全部内容，一次性告知；补正后原办件继续办理".into()));
        }
        Event::ProcedureStarted(e) => {
            lines.push(("参与部门", e.departments.iter().map(|d| authority(d)).collect::<Vec<_>>().join("、")));
            if !e.parties.is_empty() {
                lines.push(("利害关系人", e.parties.join("、")));
            }
            lines.push(("时限", iso_date(e.limit_date)));
            lines.push(("说明", "特别程序期间不计入办理时限".into()));
        }
        Event::ProcedureCompleted(e) => {
            lines.push(("记录", e.summary.clone()));
            lines.push(("暂停工作日", e.paused_working_days.to_string()));
            lines.push(("顺延后承诺办结日期", iso_date(e.promised_date)));
            lines.push(("经办人", e.officer.clone()));
        }
        Event::OpinionGiven(e) => {
            lines.push(("部门", authority(&e.department_code)));
            lines.push(("意见", if e.opinion == "agree" { "同意".into() } else { format!("不同意：{}", e.remarks) }));
            lines.push(("经办人", e.officer.clone()));
        }
        Event::CaseDecided(e) if Outcome::of(e) == Outcome::Approved => {
            lines.push(("决定", "准予行政许可".into()));
            lines.push(("决定机关", authority(&e.department_code)));
        }
        Event::CaseDecided(e) => {
            lines.push(("决定", "不予行政许可".into()));
            lines.push(("理由", e.reason.clone().unwrap_or_default()));
            lines.push((
                "救济途径",
                format!(
                    "如不服本决定，可自收到之日起六十日内向{}人民政府申请行政复议，或者六个月内向人民法院提起行政诉讼",
                    reference.county.name
                ),
            ));
        }
        Event::DeliveryCompleted(e) => {
            lines.push(("运单号", e.waybill_number.clone()));
            lines.push(("签收人", e.signed_by.clone().unwrap_or_default()));
            lines.push(("签收时间", date_time(e.occurred_at)));
        }
        Event::ResultReadyForPickup(e) => {
            lines.push(("领取地点", e.place.clone()));
            lines.push(("事由", e.reason.clone()));
            if e.pickup_code.is_some() {
                lines.push(("取件码", "已通过短信发送给申请人".into()));
            } else {
                lines.push(("领取要求", "请携带受理通知书和本人身份证件到窗口领取并签字".into()));
            }
        }
        Event::ResultCollected(e) => {
            lines.push(("领取人", e.collected_by.clone()));
            lines.push(("身份核验", if e.id_checked { "已核验".into() } else { "取件码验证".into() }));
            lines.push(("签名记录", e.signature.clone()));
        }
        Event::CaseArchived(e) => {
            lines.push(("办结结果", e.final_outcome.clone()));
            for line in page_index(case) {
                lines.push((
                    "卷内文件",
                    format!(
                        "{}. {} {}（{}）第 {}–{} 页",
                        line.position, line.title, line.number, line.date, line.first_page, line.last_page
                    ),
                ));
            }
        }
        _ => {}
    }
    lines.push(("文书日期", date_time(doc.issued_at)));
    lines
}

/// A printable HTML page of the document, sealed by the approval bureau.
pub fn render(case: &Case, doc: &DocumentRef, event: &Event, reference: &Reference) -> String {
    let rows: String = lines(case, doc, event, reference)
        .into_iter()
        .map(|(label, value)| format!("<tr><th>{}</th><td>{}</td></tr>\n", escape(label), escape(&value)))
        .collect();
    let seal = reference
        .department(&reference.county.approval_bureau)
        .map_or_else(|| reference.county.name.clone(), |d| d.name.clone());
    format!(
        "<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>{title} {number}</title>\n\
         <style>body{{font-family:serif;max-width:180mm;margin:20mm auto}}h1{{text-align:center;letter-spacing:.3em}}\
         .number{{text-align:center}}table{{width:100%;border-collapse:collapse}}th,td{{border:1px solid #000;padding:4px;text-align:left}}\
         th{{width:8em}}.seal{{text-align:right;margin-top:16mm}}@media print{{body{{margin:0}}}}</style></head>\n\
         <body><h1>{title}</h1><p class=\"number\">{number}</p>\n<table>\n{rows}</table>\n<p class=\"seal\">{seal}（印章）</p></body></html>\n",
        title = escape(&doc.title),
        number = escape(&doc.number),
        seal = escape(&seal),
    )
}
