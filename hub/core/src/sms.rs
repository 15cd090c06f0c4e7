//! Text messages to applicants (短信): which of a case's events tell the applicant by SMS, and
//! the templates registered with the gateway (`hub/data/sms_templates.toml`). The hub sends a
//! template's name, version and values; rendering them here gives the text on record.
use std::collections::{BTreeMap, HashMap};

use contracts::Event;
use serde::Deserialize;

use super::calendar::iso_date;
use super::case::{Case, Outcome};
use super::reference::Reference;
use super::reviews;

pub const SMS_TEMPLATES_TOML: &str = include_str!("../../data/sms_templates.toml");

/// The review invitation: the applicant answers it with a grade (短信评).
pub const REVIEW_INVITATION: &str = "review-invitation";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateFile {
    signature: String,
    template: Vec<TemplateVersion>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateVersion {
    name: String,
    version: i32,
    text: String,
}

/// Every version of every template, and the county's signature (签名) the gateway prefixes.
#[derive(Debug, Clone)]
pub struct SmsTemplates {
    pub signature: String,
    /// name → version → text.
    texts: HashMap<String, BTreeMap<i32, String>>,
}

/// A message to send: the template, its version and the values of its placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    pub template: String,
    pub version: i32,
    pub params: BTreeMap<String, String>,
}

impl SmsTemplates {
    pub fn builtin() -> SmsTemplates {
        SmsTemplates::parse(SMS_TEMPLATES_TOML).expect("hub/data/sms_templates.toml is valid")
    }

    pub fn parse(toml_text: &str) -> Result<SmsTemplates, String> {
        let file: TemplateFile = toml::from_str(toml_text).map_err(|e| format!("sms templates: {e}"))?;
        let mut texts: HashMap<String, BTreeMap<i32, String>> = HashMap::new();
        for t in file.template {
            placeholders(&t.text).map_err(|e| format!("sms template {} version {}: {e}", t.name, t.version))?;
            if texts.entry(t.name.clone()).or_default().insert(t.version, t.text).is_some() {
                return Err(format!("sms template {} has version {} twice", t.name, t.version));
            }
        }
        Ok(SmsTemplates { signature: file.signature, texts })
    }

    /// The version in use of `name`: its newest.
    pub fn newest(&self, name: &str) -> Option<i32> {
        self.texts.get(name)?.keys().next_back().copied()
    }

    /// The text of `name` at `version` with `params` filled in and the signature before it;
    /// a template or version the gateway does not hold, or a value missing, is an error.
    pub fn render(&self, name: &str, version: i32, params: &BTreeMap<String, String>) -> Result<String, String> {
        let text = self
            .texts
            .get(name)
            .and_then(|versions| versions.get(&version))
            .ok_or_else(|| format!("no template {name} version {version}"))?;
        let mut out = self.signature.clone();
        let mut rest = text.as_str();
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find('}').expect("checked when parsed") + start;
            let key = &rest[start + 2..end];
            out.push_str(params.get(key).ok_or_else(|| format!("template {name} needs a value for {key}"))?);
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// The newest version of `name` with `params`.
    fn text(&self, name: &str, params: &[(&str, String)]) -> Option<Text> {
        Some(Text {
            template: name.into(),
            version: self.newest(name)?,
            params: params.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
        })
    }
}

/// The placeholders of a template's text; an unclosed one is an error.
fn placeholders(text: &str) -> Result<Vec<&str>, String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let end = rest[start..].find('}').ok_or("a ${ is never closed")? + start;
        found.push(&rest[start + 2..end]);
        rest = &rest[end + 1..];
    }
    Ok(found)
}

/// The text `event` sends the applicant of `case` (already evolved), if any: acceptance, the
/// decision, a result ready for pickup, the review invitation once the result reached them,
/// and the answer to a verified review. An applicant without a mobile number gets none.
pub fn message_for(case: &Case, event: &Event, reference: &Reference) -> Option<Text> {
    if case.application.applicant.phone.trim().is_empty() {
        return None;
    }
    let templates = &reference.sms;
    let number = ("case_number", case.case_number.clone());
    let matter = ("matter", case.application.matter.name.clone());
    let phone = ("enquiry_phone", reference.county.enquiry_phone.clone());
    match event {
        Event::CaseAccepted(e) => {
            templates.text("acceptance", &[number, matter, ("promised_date", iso_date(e.promised_date)), phone])
        }
        Event::CaseDecided(e) => {
            let (outcome, next) = match Outcome::of(e) {
                Outcome::Approved => ("准予许可", "结果将按您选择的方式送达。"),
                Outcome::Denied if case.fee.as_ref().is_some_and(|fee| fee.paid_fen() > 0) => {
                    ("不予许可", "决定书将依法送达；已缴费用将原路退还。")
                }
                Outcome::Denied => ("不予许可", "决定书将依法送达。"),
            };
            templates.text("decision", &[number, matter, ("outcome", outcome.into()), ("next", next.into())])
        }
        Event::ApplicationWithdrawn(_) => {
            let paid = case.fee.as_ref().is_some_and(|fee| fee.paid_fen() > 0);
            let next = if paid { "已缴费用将原路退还。" } else { "如需办理可重新申请。" };
            templates.text("withdrawal", &[number, matter, ("next", next.into())])
        }
        Event::ResultReadyForPickup(e) => {
            let how = match &e.pickup_code {
                Some(code) => format!("取件码{code}。"),
                None => "请持受理通知书和身份证件领取。".into(),
            };
            templates.text("pickup", &[number, matter, ("place", e.place.clone()), ("how", how)])
        }
        Event::DeliveryCompleted(e) if e.outcome != "signed" => None,
        Event::DeliveryCompleted(_) | Event::ResultCollected(_) if !case.online_reviewed => {
            let link = reviews::link(reference, &case.case_number, None);
            templates.text(REVIEW_INVITATION, &[number, ("link", link)])
        }
        Event::ReviewVerified(e) => templates.text("review-reply", &[number, ("reply", e.reply.clone()), phone]),
        _ => None,
    }
}

/// The grade in an applicant's reply to the review invitation: one digit 1 to 5, perhaps with
/// words around it ("5 很满意"); anything else is not a review.
pub fn grade_of_reply(text: &str) -> Option<i32> {
    let digits: Vec<i32> = text.chars().filter_map(|c| c.to_digit(10)).map(|d| d as i32).collect();
    match digits.as_slice() {
        [grade] if (1..=5).contains(grade) => Some(*grade),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_render_the_newest_version_and_refuse_what_is_missing() {
        let templates = SmsTemplates::builtin();
        let params: BTreeMap<String, String> =
            [("case_number", "6104"), ("matter", "食品经营许可"), ("place", "取件柜"), ("how", "取件码123456。")]
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .into();
        let text = templates.render("pickup", 1, &params).unwrap();
        assert_eq!(text, "【旬邑政务】您的办件6104（食品经营许可）结果已可领取，地点：取件柜。取件码123456。");
        assert!(templates.render("pickup", 9, &params).unwrap_err().contains("version 9"));
        assert!(templates.render("decision", 1, &params).unwrap_err().contains("outcome"));
        let newer = format!(
            "{SMS_TEMPLATES_TOML}\n[[template]]\nname = \"pickup\"\nversion = 2\ntext = \"v2 ${{case_number}}\"\n"
        );
        let newer = SmsTemplates::parse(&newer).unwrap();
        assert_eq!(newer.newest("pickup"), Some(2));
        assert_eq!(newer.render("pickup", 1, &params).unwrap(), text, "the old version stays for the record");
        let doubled = format!("{SMS_TEMPLATES_TOML}\n[[template]]\nname = \"pickup\"\nversion = 1\ntext = \"x\"\n");
        assert!(SmsTemplates::parse(&doubled).unwrap_err().contains("version 1 twice"));
        let unclosed = format!("{SMS_TEMPLATES_TOML}\n[[template]]\nname = \"x\"\nversion = 1\ntext = \"${{oops\"\n");
        assert!(SmsTemplates::parse(&unclosed).unwrap_err().contains("never closed"));
    }

    #[test]
    fn a_reply_is_a_grade_only_when_it_holds_one_digit_from_one_to_five() {
        assert_eq!(grade_of_reply("5"), Some(5));
        assert_eq!(grade_of_reply(" 2 太慢了"), Some(2));
        for text in ["", "好", "0", "6", "45", "TD"] {
            assert_eq!(grade_of_reply(text), None, "{text}");
        }
    }
}
