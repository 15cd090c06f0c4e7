//! The case file: every document a case's events issue (notices, records, decisions,
//! receipts), numbered in the county's style, indexed with page numbers for the archive, and
//! rendered as printable A4 HTML from the event that issued it. Each document names the unit
//! that issues it, the person answerable for it and the seal it goes out under; the parts each
//! kind must show are listed in `parts.toml` beside this file.
use contracts::Event;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::calendar::{self, iso_date, local_minute_text};
use super::case::{Case, Outcome, NOT_COMPETENT_BASIS};
use super::deadlines;
use super::facts::{DeliveryMethod, DeliveryOutcome};
use super::reference::{Authority, Reference};
use super::reviews;

/// The parts each kind of document must show, by label (`印章` is the seal block).
pub const PARTS_TOML: &str = include_str!("parts.toml");

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentRef {
    pub kind: String,
    pub title: String,
    pub number: String,
    pub issued_at: i64,
    /// The event that issued it, whose content the document shows.
    pub event_id: String,
    pub pages: u32,
    /// The person answerable for it: the clerk, the officer, the archivist.
    #[serde(default)]
    pub officer: String,
    /// The electronic seal's signature, once the seal service signed the document.
    #[serde(default)]
    pub electronic_seal: Option<ElectronicSeal>,
}

/// A seal service's signature over a document: Ed25519 over the SHA-256 of the document as
/// rendered without this mark.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElectronicSeal {
    pub seal_name: String,
    pub key_id: String,
    pub signature: String,
    pub document_sha256: String,
    pub signed_at: i64,
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
        "pickup_record" => ("送达回证（当面领取）", "领记"),
        "delivery_receipt" => ("送达回证", "送"),
        "archive_index" => ("归档目录", "档"),
        "commitment" => ("容缺受理承诺书", "诺"),
        "extension" => ("延长审批期限告知书", "延"),
        "hearing_rights" => ("听证权利告知书", "听告"),
        "supervision_order" => ("督办单", "督"),
        "supervision_answer" => ("督办反馈单", "督复"),
        "withdrawal" => ("准予撤回申请通知书", "撤"),
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

/// Who issues a document and under which seal.
enum IssuedBy {
    /// The applicant's own papers: signed, not sealed.
    Applicant,
    /// The unit in whose name the application was taken in (委托受理 included).
    AcceptingUnit,
    /// The deciding unit in its own name (procedures, its file).
    DecidingUnit,
    /// The deciding unit's results: under the unified approval seal where the county
    /// centralises approval (seed 003, 统一印章), otherwise its own.
    Result,
    /// Another unit in its own name (a parallel-approval opinion).
    Unit(String),
    /// The county's supervision of all units (电子监察), in the approval bureau's name.
    Supervisor,
}

fn issued_by_whom(kind: &str, event: &Event) -> IssuedBy {
    match (kind, event) {
        ("application" | "commitment", _) => IssuedBy::Applicant,
        ("supervision_order", _) => IssuedBy::Supervisor,
        ("acceptance_notice" | "tolerant_acceptance_notice" | "refusal" | "one_time_notice", _) => {
            IssuedBy::AcceptingUnit
        }
        (_, Event::OpinionGiven(e)) => IssuedBy::Unit(e.department_code.clone()),
        ("approval" | "denial" | "delivery_receipt" | "pickup_notice" | "pickup_record", _) => IssuedBy::Result,
        _ => IssuedBy::DecidingUnit,
    }
}

/// The issuing unit's name and the legend of the seal it goes out under (none for the
/// applicant's own papers), for a document of `kind` on `case`.
pub fn issuer(case: &Case, kind: &str, event: &Event, reference: &Reference) -> (String, Option<String>) {
    let deciding = || case.department_code.as_deref().and_then(|code| reference.authority(code));
    let accepting = || reference.accepting_unit(&case.application.service_point.code);
    let own = |unit: Option<Authority>| unit.map(|u| (u.name, Some(u.records.seal)));
    let found = match issued_by_whom(kind, event) {
        IssuedBy::Applicant => return (format!("申请人 {}", case.application.applicant.name), None),
        IssuedBy::AcceptingUnit => own(accepting()),
        IssuedBy::DecidingUnit => own(deciding().or_else(accepting)),
        IssuedBy::Unit(code) => own(reference.authority(&code)),
        IssuedBy::Supervisor => own(reference.authority(&reference.county.approval_bureau)),
        IssuedBy::Result => deciding().map(|unit| (unit.name, Some(unit.seal))),
    };
    found.unwrap_or_else(|| (reference.county.name.clone(), None))
}

/// The seal a case's result goes out under (盖章): the deciding unit's, or the county's unified
/// approval seal where that unit's approvals are centralised.
pub fn result_seal(case: &Case, reference: &Reference) -> Option<String> {
    case.department_code.as_deref().and_then(|code| reference.authority(code)).map(|unit| unit.seal)
}

/// The person answerable for the document an event issues.
fn officer(case: &Case, event: &Event) -> String {
    let decider = || case.decided_by.clone().unwrap_or_default();
    match event {
        Event::ApplicationSubmitted(_) | Event::CaseAccepted(_) => case.clerk(),
        Event::AcceptanceRefused(e) => e.officer.clone(),
        Event::SupplementRequested(e) => e.officer.clone(),
        Event::ProcedureStarted(e) => e.officer.clone(),
        Event::ProcedureCompleted(e) => e.officer.clone(),
        Event::OpinionGiven(e) => e.officer.clone(),
        Event::CaseDecided(e) => e.officer.clone(),
        Event::ResultCollected(e) if !e.handed_out_by.is_empty() => e.handed_out_by.clone(),
        Event::CommitmentSigned(_) => case.application.applicant.name.clone(),
        Event::ExtensionGranted(e) => e.officer.clone(),
        Event::HearingRightsNotified(e) => e.officer.clone(),
        Event::SupervisionOrdered(_) => SUPERVISION_SYSTEM.into(),
        Event::SupervisionAnswered(e) => e.officer.clone(),
        Event::ApplicationWithdrawn(e) => e.officer.clone(),
        Event::CaseArchived(e) => e.archivist.clone(),
        _ => decider(),
    }
}

/// Who issues a supervision order: the county's electronic supervision, on a red card.
pub const SUPERVISION_SYSTEM: &str = "电子监察系统（红牌自动督办）";

fn document(case: &Case, kind: &str, number: &str, event: &Event, pages: u32) -> DocumentRef {
    DocumentRef {
        kind: kind.into(),
        title: title_and_prefix(kind).0.into(),
        number: number.into(),
        issued_at: event.occurred_at(),
        event_id: event.event_id().into(),
        pages,
        officer: officer(case, event),
        electronic_seal: None,
    }
}

/// The document an event adds to the case file, if any.
pub fn issued_by(case: &Case, event: &Event) -> Option<DocumentRef> {
    let doc = |kind: &str, number: &str, pages: u32| document(case, kind, number, event, pages);
    Some(match event {
        Event::ApplicationSubmitted(e) => doc("application", &e.case_number, 1 + e.materials.len() as u32),
        Event::CaseAccepted(e) if e.acceptance == "tolerant" => doc("tolerant_acceptance_notice", &e.notice_number, 1),
        Event::CaseAccepted(e) => doc("acceptance_notice", &e.notice_number, 1),
        Event::AcceptanceRefused(e) => doc("refusal", &e.notice_number, 1),
        Event::SupplementRequested(e) => doc("one_time_notice", &e.notice_number, 1),
        // One notice to the applicant and one to each interested party.
        Event::ProcedureStarted(e) => doc(&e.procedure, &e.notice_number, 1 + e.parties.len() as u32),
        Event::ProcedureCompleted(e) => doc(&format!("{}_record", e.procedure), &e.record_number, 2),
        Event::OpinionGiven(e) => doc("opinion", &format!("{}-{}", case.case_number, e.department_code), 1),
        Event::CaseDecided(e) => {
            let kind = match Outcome::of(e) {
                Outcome::Approved => "approval",
                Outcome::Denied => "denial",
            };
            doc(kind, e.result_document.as_deref().unwrap_or_default(), 2)
        }
        Event::DeliveryCompleted(e) if DeliveryOutcome::of(e) == DeliveryOutcome::Signed => {
            doc("delivery_receipt", &e.waybill_number, 1)
        }
        Event::ResultReadyForPickup(_) => doc("pickup_notice", &case.case_number, 1),
        Event::ResultCollected(_) => doc("pickup_record", &case.case_number, 1),
        Event::CaseArchived(_) => doc("archive_index", &case.case_number, 1),
        Event::CommitmentSigned(e) => doc("commitment", &e.notice_number, 1),
        Event::ExtensionGranted(e) => doc("extension", &e.notice_number, 1),
        // One notice to the applicant and one to each interested party.
        Event::HearingRightsNotified(e) => doc("hearing_rights", &e.notice_number, 1 + e.parties.len() as u32),
        Event::SupervisionOrdered(e) => doc("supervision_order", &e.order_number, 1),
        Event::SupervisionAnswered(e) => doc("supervision_answer", &format!("{}-复", e.order_number), 1),
        Event::ApplicationWithdrawn(e) => doc("withdrawal", &e.notice_number, 1),
        _ => return None,
    })
}

/// How the examination of an application came out, as the notice handed over at the counter
/// says: accepted (受理通知书, or 容缺受理通知书), materials to supply (一次性告知书), or
/// refused (不予受理通知书). The latest such notice, with its position (from 1) in the case file.
pub fn acceptance_outcome(case: &Case) -> Option<(&'static str, usize, &DocumentRef)> {
    case.documents.iter().enumerate().rev().find_map(|(i, doc)| {
        let outcome = match doc.kind.as_str() {
            "acceptance_notice" | "tolerant_acceptance_notice" => "accepted",
            "one_time_notice" => "supplement_requested",
            "refusal" => "refused",
            _ => return None,
        };
        Some((outcome, i + 1, doc))
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

/// Text made safe to print inside HTML (documents and the review page).
pub fn escape(text: &str) -> String {
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

/// A special procedure as it is named on paper.
pub fn procedure_title(procedure: &str) -> &'static str {
    match procedure {
        "site_inspection" => "现场踏勘",
        "hearing" => "听证",
        "expert_review" => "专家评审",
        "supplement" => "补正材料",
        _ => "特别程序",
    }
}

fn delivery_title(method: DeliveryMethod) -> &'static str {
    match method {
        DeliveryMethod::Mail => "邮政快递送达",
        DeliveryMethod::Locker => "自助柜取件",
        DeliveryMethod::Window => "窗口领取",
        DeliveryMethod::Station => "受理的村（社区）便民服务站领取",
    }
}

/// A retention code (保管期限) as printed: 永久, 定期30年.
pub fn retention_title(code: &str) -> String {
    match code {
        "Y" => "永久".into(),
        code => code.strip_prefix('D').map_or_else(|| code.to_string(), |years| format!("定期{years}年")),
    }
}

/// Why an application complete in form is accepted (行政许可法 §32(1)(5)).
const ACCEPTANCE_BASIS: &str = "《中华人民共和国行政许可法》第三十二条第一款第（五）项";

/// Where to turn against a decision (行政复议 or 行政诉讼), told on every refusal and denial.
fn remedy(reference: &Reference) -> String {
    format!(
        "如不服本决定，可自收到之日起六十日内向{}人民政府申请行政复议，或者六个月内向人民法院提起行政诉讼",
        reference.county.name
    )
}

/// The lines of a document: label and value, in reading order.
fn lines(
    case: &Case,
    doc: &DocumentRef,
    event: &Event,
    reference: &Reference,
    issuing_unit: String,
) -> Vec<(&'static str, String)> {
    let app = &case.application;
    let matter = reference.matter_version(&app.matter.implementation_code, app.matter.version);
    let legal_basis = matter.map(|m| m.legal_basis.clone()).unwrap_or_default();
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
            lines.push(("提交时间", local_minute_text(e.occurred_at)));
            lines.push(("接件人", doc.officer.clone()));
            lines.push(("申请人签字", format!("{}（签字）", app.applicant.name)));
        }
        Event::CaseAccepted(e) => {
            lines.push(("受理机关", issuing_unit));
            lines.push(("受理人", doc.officer.clone()));
            lines.push(("受理时间", local_minute_text(e.occurred_at)));
            lines.push(("法律依据", ACCEPTANCE_BASIS.into()));
            lines.push(("承诺办结日期", iso_date(e.promised_date)));
            lines.push(("法定办结期限", e.statutory_date.map(iso_date).unwrap_or_default()));
            lines.push(("取件方式", delivery_title(case.delivery_method()).into()));
            if !e.outstanding_materials.is_empty() {
                lines.push(("容缺材料", e.outstanding_materials.join("、")));
                lines.push(("承诺补齐日期", e.commitment_date.map(iso_date).unwrap_or_default()));
                lines.push((
                    "告知",
                    "申请人已签署容缺承诺书，请于承诺补齐日期前补齐上述材料；逾期未补齐的，依法处理".into(),
                ));
            }
            lines.push(("咨询电话", reference.county.enquiry_phone.clone()));
            lines.push((
                "服务评价",
                format!(
                    "扫描下方二维码或打开 {} 对本次服务评价（一事一评，无需注册）",
                    reviews::link(reference, &case.case_number, None)
                ),
            ));
        }
        Event::AcceptanceRefused(e) => {
            lines.push(("不予受理理由", e.reason.clone()));
            lines.push(("法律依据", e.legal_basis.clone()));
            let told = if e.legal_basis == NOT_COMPETENT_BASIS {
                "申请事项依法不属于本机关职权范围，请向有关行政机关申请".into()
            } else {
                remedy(reference)
            };
            lines.push(("告知", told));
            lines.push(("受理机关", issuing_unit));
            lines.push(("经办人", doc.officer.clone()));
        }
        Event::SupplementRequested(e) => {
            for item in &e.items {
                lines.push(("需补正材料", format!("{}：{}", item.material, item.problem)));
            }
            lines.push(("告知", "以上为需补正的全部内容，一次性告知；补正后原办件继续办理".into()));
            lines.push(("法律依据", "《中华人民共和国行政许可法》第三十二条第一款第（四）项".into()));
            lines.push(("受理机关", issuing_unit));
            lines.push(("经办人", doc.officer.clone()));
        }
        Event::ProcedureStarted(e) => {
            lines.push(("程序", procedure_title(&e.procedure).into()));
            lines.push(("参与部门", e.departments.iter().map(|d| authority(d)).collect::<Vec<_>>().join("、")));
            if !e.parties.is_empty() {
                lines.push(("利害关系人", e.parties.join("、")));
            }
            if let Some(date) = e.scheduled_date {
                lines.push(("听证日期", format!("{}（提前七日通知，第四十八条）", iso_date(date))));
            }
            lines.push(("时限", iso_date(e.limit_date)));
            let counted = if deadlines::stops_statutory_clock(&e.procedure) {
                "依《中华人民共和国行政许可法》第四十五条，所需时间不计算在法定办理期限内"
            } else {
                "所需时间计算在法定办理期限内"
            };
            lines.push(("期限计算", counted.into()));
            lines.push(("法律依据", legal_basis.clone()));
            lines.push(("承办机关", issuing_unit));
            lines.push(("经办人", doc.officer.clone()));
        }
        Event::ProcedureCompleted(e) => {
            lines.push(("程序", procedure_title(&e.procedure).into()));
            lines.push(("记录", e.summary.clone()));
            lines.push(("暂停工作日", e.paused_working_days.to_string()));
            lines.push(("顺延后承诺办结日期", iso_date(e.promised_date)));
            lines.push(("承办机关", issuing_unit));
            lines.push(("经办人", doc.officer.clone()));
        }
        Event::OpinionGiven(e) => {
            lines.push(("部门", authority(&e.department_code)));
            lines.push(("意见", if e.opinion == "agree" { "同意".into() } else { format!("不同意：{}", e.remarks) }));
            lines.push(("经办人", doc.officer.clone()));
        }
        Event::CaseDecided(e) if Outcome::of(e) == Outcome::Approved => {
            let issued_on = calendar::day_of(e.occurred_at);
            let certificate = matter.and_then(|m| m.certificate.as_ref());
            lines.push(("决定", "准予行政许可".into()));
            lines.push(("法律依据", legal_basis));
            let content = match certificate {
                Some(spec) => format!("准予{}{}，核发《{}》", app.applicant.name, app.matter.name, spec.name),
                None => format!("准予{}{}", app.applicant.name, app.matter.name),
            };
            lines.push(("许可内容", content));
            let (number, validity) = match certificate {
                Some(spec) => (
                    format!("《{}》{}", spec.name, e.result_document.clone().unwrap_or_default()),
                    if spec.valid_years == 0 {
                        "长期有效".into()
                    } else {
                        format!(
                            "{} 至 {}",
                            iso_date(issued_on),
                            iso_date(calendar::validity_end(issued_on, spec.valid_years))
                        )
                    },
                ),
                None => ("不核发证照，本决定书即为许可凭证".into(), "长期有效".into()),
            };
            lines.push(("证照编号", number));
            lines.push(("有效期限", validity));
            lines.push(("决定机关", issuing_unit));
            lines.push(("承办人", doc.officer.clone()));
        }
        Event::CaseDecided(e) => {
            lines.push(("决定", "不予行政许可".into()));
            lines.push(("理由", e.reason.clone().unwrap_or_default()));
            lines.push(("法律依据", format!("{legal_basis}；《中华人民共和国行政许可法》第三十八条第二款")));
            lines.push(("救济途径", remedy(reference)));
            if let Some(fee) = case.fee.as_ref().filter(|fee| fee.paid_fen() > 0) {
                lines.push(("退费", format!("已缴费用 {} 通过原缴费银行原路退还", yuan(fee.paid_fen()))));
            }
            lines.push(("决定机关", issuing_unit));
            lines.push(("承办人", doc.officer.clone()));
        }
        Event::DeliveryCompleted(e) => {
            let decision = case.documents.iter().rev().find(|d| d.kind == "approval" || d.kind == "denial");
            lines.push(("送达文书", decision.map(|d| format!("{} {}", d.title, d.number)).unwrap_or_default()));
            lines.push(("送达机关", issuing_unit));
            lines.push(("送达方式", "邮政快递送达".into()));
            lines.push(("运单号", e.waybill_number.clone()));
            lines.push(("受送达人", app.applicant.name.clone()));
            lines.push(("签收人", e.signed_by.clone().unwrap_or_default()));
            lines.push(("签收时间", local_minute_text(e.occurred_at)));
            lines.extend(fee_lines(case));
        }
        Event::ResultReadyForPickup(e) => {
            lines.push(("领取地点", e.place.clone()));
            lines.push(("事由", e.reason.clone()));
            // The pickup text message carries the code (`sms::message_for`), and so does the
            // e-mail to an applicant who gave an address.
            let told = match (&e.pickup_code, &app.applicant.email) {
                (Some(_), Some(_)) => "取件码已通过短信发送至申请人手机，并发送至申请人预留邮箱".to_string(),
                (Some(_), None) => format!(
                    "取件码已通过短信发送至申请人手机；未收到的，请携带身份证件到窗口或致电{}查询",
                    reference.county.enquiry_phone
                ),
                (None, _) if app.applicant.id_type == "001" => {
                    "由委托代理人持受理通知书、营业执照（或统一社会信用代码证明）复印件、委托书和本人身份证件领取并签字"
                        .into()
                }
                (None, _) => "请持受理通知书和本人身份证件领取并签字；代取件人另持申请人身份证件和本人身份证件".into(),
            };
            lines.push(("领取要求", told));
            lines.push(("出件机关", issuing_unit));
            lines.push(("承办人", doc.officer.clone()));
        }
        Event::ResultCollected(e) => {
            lines.push(("领取人", e.collected_by.clone()));
            let who = match (e.agent, e.authorization_number.as_deref()) {
                (false, _) => "申请人本人",
                (true, None) => "代取件人（持受理通知书及申请人身份证件）",
                (true, Some(_)) => "委托代理人（持受理通知书、申请人证照及委托书）",
            };
            lines.push(("领取人身份", who.into()));
            if !e.notice_number.is_empty() {
                lines.push(("受理通知书", e.notice_number.clone()));
            }
            if let Some(authorization) = &e.authorization_number {
                lines.push(("委托书", authorization.clone()));
            }
            lines.push(("身份核验", if e.id_checked { "已核验".into() } else { "取件码验证".into() }));
            lines.push(("签名记录", e.signature.clone()));
            lines.extend(fee_lines(case));
            let handed = if e.handed_out_by.is_empty() { "自助取件柜".into() } else { e.handed_out_by.clone() };
            lines.push(("出件人", handed));
            lines.push(("出件机关", issuing_unit));
        }
        Event::CommitmentSigned(e) => {
            lines.push(("容缺材料", e.materials.join("、")));
            lines.push(("承诺补齐日期", iso_date(e.commitment_date)));
            lines.push((
                "承诺内容",
                "本人承诺所提交材料真实有效，并于承诺补齐日期前补齐上述材料；逾期未补齐的，愿意承担相应责任，\
                 同意有关部门依法撤销或记入信用记录"
                    .into(),
            ));
            lines.push(("申请人签字", format!("{}（签字）", app.applicant.name)));
        }
        Event::ExtensionGranted(e) => {
            lines.push(("延期理由", e.reason.clone()));
            lines.push(("批准人", format!("{}（本机关负责人）", e.approved_by)));
            lines.push(("延长期限", format!("{} 个工作日", e.extra_days)));
            lines.push(("延长后法定办结期限", iso_date(e.statutory_date)));
            lines.push(("延长后承诺办结日期", iso_date(e.promised_date)));
            lines.push(("法律依据", "《中华人民共和国行政许可法》第四十二条".into()));
            lines.push(("决定机关", issuing_unit));
            lines.push(("经办人", doc.officer.clone()));
        }
        Event::HearingRightsNotified(e) => {
            let told = std::iter::once(app.applicant.name.clone()).chain(e.parties.iter().cloned());
            lines.push(("告知对象", told.collect::<Vec<_>>().join("、")));
            lines.push((
                "告知",
                "该许可事项直接涉及申请人与他人之间重大利益关系，申请人、利害关系人有权要求听证；\
                 逾期未提出的，视为放弃听证权利"
                    .into(),
            ));
            lines.push(("申请听证截止日期", iso_date(e.request_by)));
            lines.push(("法律依据", "《中华人民共和国行政许可法》第四十七条".into()));
            lines.push(("承办机关", issuing_unit));
            lines.push(("经办人", doc.officer.clone()));
        }
        Event::SupervisionOrdered(e) => {
            lines.push(("被督办单位", authority(&e.department_code)));
            lines.push(("督办事由", e.reason.clone()));
            lines.push((
                "反馈期限",
                format!("{} 前书面反馈办理情况；逾期未反馈的，提请上一级督办", iso_date(e.answer_by)),
            ));
            lines.push(("督办机关", issuing_unit));
        }
        Event::SupervisionAnswered(e) => {
            lines.push(("督办单号", e.order_number.clone()));
            lines.push(("反馈内容", e.answer.clone()));
            lines.push(("反馈单位", issuing_unit));
            lines.push(("经办人", doc.officer.clone()));
        }
        Event::ApplicationWithdrawn(e) => {
            lines.push(("撤回理由", e.reason.clone()));
            let refund = match case.fee.as_ref().filter(|fee| fee.paid_fen() > 0) {
                Some(fee) => format!("；已缴费用 {} 通过原缴费银行原路退还", yuan(fee.paid_fen())),
                None => String::new(),
            };
            lines.push((
                "告知",
                format!("申请人在作出行政许可决定前书面申请撤回，准予撤回，本申请终止办理{refund}；申请人可依法重新提出申请"),
            ));
            lines.push(("承办机关", issuing_unit));
            lines.push(("经办人", doc.officer.clone()));
        }
        Event::CaseArchived(e) => {
            lines.push(("办结结果", outcome_title(&e.final_outcome).into()));
            lines.push(("档号", e.file_number.clone()));
            lines.push(("保管期限", retention_title(&e.retention)));
            lines.push(("立档单位", issuing_unit));
            lines.push(("归档人", doc.officer.clone()));
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
    lines.push(("文书日期", local_minute_text(doc.issued_at)));
    lines
}

/// An amount in fen as money is written: 80.00 元.
fn yuan(fen: i64) -> String {
    format!("{}.{:02} 元", fen / 100, fen % 100)
}

/// What the applicant was charged (一窗收费), on the 送达回证: each item with its basis, the
/// waiver or reduction, what was paid and the fiscal e-receipt (财政电子票据) the bank returned.
fn fee_lines(case: &Case) -> Vec<(&'static str, String)> {
    let Some(fee) = &case.fee else { return Vec::new() };
    let mut lines: Vec<(&'static str, String)> = fee
        .items
        .iter()
        .map(|item| ("收费项目", format!("{} {}（收费依据：{}）", item.name, yuan(item.amount_fen), item.basis)))
        .collect();
    if let Some(relief) = &fee.relief {
        lines.push((
            "收费减免",
            format!(
                "{}，减免 {}（依据：{}；证明：{}）",
                relief.name,
                yuan(relief.relieved_fen),
                relief.basis,
                relief.proof_number
            ),
        ));
    }
    lines.push(("实收金额", yuan(fee.paid_fen())));
    let receipts = match (fee.receipts.is_empty(), fee.total_fen) {
        (false, _) => fee.receipts.join("、"),
        (true, 0) => "依规免收，不开具票据".into(),
        (true, _) => "银行尚未返回".into(),
    };
    lines.push(("财政电子票据", receipts));
    lines
}

fn outcome_title(outcome: &str) -> &'static str {
    match outcome {
        "not_accepted" => "不予受理",
        "denied" => "不予许可",
        "withdrawn" => "申请人撤回申请，终止办理",
        "collected" => "准予许可，已领取",
        "signed" => "准予许可，已送达",
        _ => "已办结",
    }
}

/// Print rules for one A4 page: 20 mm margins, the seal block to the right, no page break
/// inside a line.
const PRINT_CSS: &str = "@page{size:A4;margin:20mm}\
body{font-family:'SimSun','Songti SC','WenQuanYi Zen Hei',serif;max-width:170mm;margin:0 auto}\
h1{text-align:center;letter-spacing:.3em}.number{text-align:center}\
table{width:100%;border-collapse:collapse}th,td{border:1px solid #000;padding:4px;text-align:left}\
th{width:8em}tr{break-inside:avoid}.seal{text-align:right;margin-top:16mm;line-height:2}\
@media print{body{margin:0}}";

/// The SHA-256 (hex) of a document as the seal service signs it: rendered without its seal mark.
pub fn sealed_digest(case: &Case, doc: &DocumentRef, event: &Event, reference: &Reference) -> String {
    let unsealed = DocumentRef { electronic_seal: None, ..doc.clone() };
    hex::encode(Sha256::digest(render(case, &unsealed, event, reference).as_bytes()))
}

/// A printable A4 HTML page of the document, with its issuing unit and its seal: the
/// electronic seal's signature once signed (the caller verifies it), otherwise where the seal
/// goes.
pub fn render(case: &Case, doc: &DocumentRef, event: &Event, reference: &Reference) -> String {
    let (issuing_unit, seal) = issuer(case, &doc.kind, event, reference);
    // The acceptance notice carries the review link as a QR code (扫码评).
    let qr = match event {
        Event::CaseAccepted(_) => format!(
            "<figure class=\"qr\" data-part=\"评价二维码\">{}<figcaption>扫码评价</figcaption></figure>\n",
            reviews::qr_svg(&format!("{}&via=qr", reviews::link(reference, &case.case_number, None)))
        ),
        _ => String::new(),
    };
    let rows: String = lines(case, doc, event, reference, issuing_unit.clone())
        .into_iter()
        .map(|(label, value)| format!("<tr><th>{}</th><td>{}</td></tr>\n", escape(label), escape(&value)))
        .collect();
    let date = iso_date(calendar::day_of(doc.issued_at));
    let seal = match (seal, &doc.electronic_seal) {
        (Some(_), Some(signed)) => format!(
            "<p class=\"seal\" data-part=\"印章\">{}<br>（电子印章：{}；签章密钥 {}；签名 {}）<br>{date}</p>",
            escape(&issuing_unit),
            escape(&signed.seal_name),
            escape(&signed.key_id),
            escape(&signed.signature)
        ),
        (Some(seal), None) => format!(
            "<p class=\"seal\" data-part=\"印章\">{}<br>（此处加盖{}）<br>{date}</p>",
            escape(&issuing_unit),
            escape(&seal)
        ),
        (None, _) => format!("<p class=\"seal\" data-part=\"印章\">{}（签字）<br>{date}</p>", escape(&issuing_unit)),
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>{title} {number}</title>\n\
         <style>{PRINT_CSS}</style></head>\n\
         <body><h1>{title}</h1><p class=\"number\">{number}</p>\n<table>\n{rows}</table>\n{qr}{seal}</body></html>\n",
        title = escape(&doc.title),
        number = escape(&doc.number),
    )
}

/// The parts a rendered document of `kind` lacks (absent, or printed without a value), by
/// `parts.toml`; an unlisted kind lacks everything.
pub fn missing_parts(kind: &str, html: &str) -> Vec<String> {
    let parts: std::collections::BTreeMap<String, Vec<String>> =
        toml::from_str(PARTS_TOML).expect("documents/parts.toml is valid");
    let Some(wanted) = parts.get(kind) else { return vec![format!("{kind}: not in parts.toml")] };
    let shown: Vec<&str> = html
        .split("<tr><th>")
        .skip(1)
        .filter_map(|row| {
            let (label, rest) = row.split_once("</th><td>")?;
            let value = rest.split("</td>").next()?;
            (!value.trim().is_empty()).then_some(label)
        })
        .collect();
    wanted
        .iter()
        .filter(|part| match part.as_str() {
            "印章" | "评价二维码" => !html.contains(&format!("data-part=\"{part}\"")),
            label => !shown.contains(&label),
        })
        .cloned()
        .collect()
}
