//! The notifier: e-mails time-limit warnings to the handling authority (red ones also to the
//! supervisor), the audit ledger's anomaly alerts to the county data bureau, and notices to
//! applicants who gave an e-mail address (acceptance, one-time notice, refusal, decision,
//! delivery, pickup), over SMTP (lettre), from the versioned
//! templates in `hub/data/mail_templates.toml`. Every send is recorded with its template and
//! version and outcome; a message already sent to a recipient is not sent again when Kafka
//! redelivers.
use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use bus::{BatchHandler, Delivery, Rejected};
use contracts::{AuditAnomalyDetected, DeadlineWarning, Event, SupervisionOrdered};
use lettre::message::{header::ContentType, Mailbox};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use minijinja::{context, Environment, Value};
use serde::{Deserialize, Serialize};

use crate::store::Store;
use hub_core::calendar::{day_of, iso_date, local_minute_text};
use hub_core::{Case, Reference};

pub const CONSUMER: &str = "hub-notifier";

const TEMPLATES_TOML: &str = include_str!("../../data/mail_templates.toml");

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailConfig {
    /// `smtp://host:port` of the county mail relay (plain SMTP inside the government network);
    /// empty: notices are recorded as not mailed.
    pub smtp_url: String,
    pub from: String,
}

impl Default for MailConfig {
    fn default() -> Self {
        MailConfig { smtp_url: String::new(), from: "政务服务中枢 <hub@xunyi.gov.cn>".into() }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateVersion {
    name: String,
    version: i64,
    /// `staff` or `applicant`: who the template writes to.
    to: String,
    subject: String,
    body: String,
}

#[derive(Debug, Deserialize)]
struct TemplateFile {
    template: Vec<TemplateVersion>,
}

/// The newest version of every template, ready to render.
pub struct Templates {
    environment: Environment<'static>,
    versions: HashMap<String, i64>,
}

impl Templates {
    pub fn builtin() -> Templates {
        Templates::parse(TEMPLATES_TOML).expect("hub/data/mail_templates.toml is valid")
    }

    pub fn parse(toml_text: &str) -> Result<Templates, String> {
        let file: TemplateFile = toml::from_str(toml_text).map_err(|e| format!("mail templates: {e}"))?;
        let mut newest: HashMap<String, TemplateVersion> = HashMap::new();
        let mut seen = std::collections::HashSet::new();
        for template in file.template {
            if !seen.insert((template.name.clone(), template.version)) {
                return Err(format!("template {} has version {} twice", template.name, template.version));
            }
            if !["staff", "applicant"].contains(&template.to.as_str()) {
                return Err(format!("template {} writes to staff or applicant, not {}", template.name, template.to));
            }
            if newest.get(&template.name).is_none_or(|current| current.version < template.version) {
                newest.insert(template.name.clone(), template);
            }
        }
        let mut environment = Environment::new();
        for template in newest.values() {
            for (part, text) in [("subject", &template.subject), ("body", &template.body)] {
                environment
                    .add_template_owned(format!("{}/{part}", template.name), text.clone())
                    .map_err(|e| format!("template {} {part}: {e}", template.name))?;
            }
        }
        Ok(Templates { environment, versions: newest.into_iter().map(|(name, t)| (name, t.version)).collect() })
    }

    /// Subject, body and version of `name` rendered with `values`.
    pub fn render(&self, name: &str, values: &Value) -> Result<(String, String, i64), String> {
        let version = *self.versions.get(name).ok_or_else(|| format!("no template {name}"))?;
        let values = context! { template => name, version => version, ..values.clone() };
        let render = |part: &str| {
            self.environment
                .get_template(&format!("{name}/{part}"))
                .and_then(|t| t.render(&values))
                .map_err(|e| format!("template {name} {part}: {e}"))
        };
        Ok((render("subject")?, render("body")?, version))
    }
}

/// One message to send: to whom, from which template, with what.
struct Mail {
    to: String,
    template: &'static str,
    values: Value,
}

pub struct Notifier {
    store: Store,
    reference: Arc<Reference>,
    templates: Templates,
    transport: Option<AsyncSmtpTransport<Tokio1Executor>>,
    from: Mailbox,
}

impl Notifier {
    pub fn new(config: &MailConfig, store: Store, reference: Arc<Reference>) -> anyhow::Result<Notifier> {
        let transport = if config.smtp_url.is_empty() {
            tracing::warn!("mail.smtp_url is not set: warnings and notices are published and recorded, not e-mailed");
            None
        } else {
            let url = url::Url::parse(&config.smtp_url)?;
            let host = url.host_str().filter(|_| url.scheme() == "smtp");
            let host = host
                .ok_or_else(|| anyhow::anyhow!("mail.smtp_url must be smtp://host[:port], got {}", config.smtp_url))?;
            Some(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host).port(url.port().unwrap_or(25)).build())
        };
        Ok(Notifier { store, reference, templates: Templates::builtin(), transport, from: config.from.parse()? })
    }

    /// A warning goes to the handlers, and to the supervisor when it escalates.
    fn warning_mails(&self, warning: &DeadlineWarning) -> Vec<Mail> {
        let level = match warning.level.as_str() {
            "red" => "红牌",
            "yellow" => "黄牌",
            _ => "预警",
        };
        let values = context! {
            level,
            message => warning.message,
            case_number => warning.case_number,
            due_date => iso_date(warning.due_date),
            handler => self.reference.authority(&warning.department_code).map_or_else(|| warning.department_code.clone(), |a| a.name),
        };
        let mut to = vec![self.reference.handler_email(&warning.department_code)];
        let policy = &self.reference.county.policy;
        if warning.escalate {
            to.push(policy.supervisor_email.clone());
        }
        // An unanswered supervision order goes up a level.
        if warning.scope == hub_core::deadlines::SUPERVISION {
            to.push(policy.escalation_email.clone());
        }
        to.into_iter().map(|to| Mail { to, template: "deadline-warning", values: values.clone() }).collect()
    }

    /// A supervision order (督办单) goes to the unit that must answer it.
    fn supervision_mail(&self, order: &SupervisionOrdered) -> Mail {
        let values = context! {
            order_number => order.order_number,
            case_number => order.case_number,
            reason => order.reason,
            answer_by => iso_date(order.answer_by),
            handler => self.reference.authority(&order.department_code).map_or_else(|| order.department_code.clone(), |a| a.name),
        };
        Mail { to: self.reference.handler_email(&order.department_code), template: "supervision-order", values }
    }

    /// An anomaly of the audit ledger goes to the county data bureau.
    fn anomaly_mail(&self, alert: &AuditAnomalyDetected) -> Mail {
        let rule_name = match alert.rule.as_str() {
            "bulk_reads_off_hours" => "非工作时间批量调取",
            "read_without_case" => "无办件依据调取个人数据",
            "volume_above_norm" => "数据交换量异常",
            other => other,
        };
        let entries: Vec<String> = alert.entries.iter().map(i64::to_string).collect();
        let values = context! {
            rule_name,
            requester => alert.requester,
            provider => alert.provider,
            occurred_at => local_minute_text(alert.occurred_at),
            message => alert.message,
            entries => entries.join("、"),
        };
        Mail { to: self.reference.county.policy.data_bureau_email.clone(), template: "audit-anomaly", values }
    }

    /// The notice an applicant gets for `case`, of the kind `notice` says, if the applicant
    /// gave an e-mail address.
    fn applicant_mail(&self, event: &Event, case: &Case, notice: Notice) -> Option<Mail> {
        let application = &case.application;
        let to = application.applicant.email.clone()?;
        let common = context! {
            case_number => case.case_number,
            applicant => application.applicant.name,
            matter => application.matter.name,
            date => iso_date(day_of(event.occurred_at())),
            enquiry_phone => self.reference.county.enquiry_phone,
        };
        let (template, values) = notice;
        Some(Mail { to, template, values: context! { ..common, ..values } })
    }

    /// The message for `mail` about `event_id`. Its Message-ID is made from the two, so a send
    /// repeated after a crash (mailed, not yet recorded) carries the same one and the county's
    /// mail relay can drop it.
    fn message(&self, event_id: &str, mail: &Mail) -> anyhow::Result<(Message, i64)> {
        use sha2::{Digest as _, Sha256};
        let (subject, body, version) =
            self.templates.render(mail.template, &mail.values).map_err(anyhow::Error::msg)?;
        let digest = hex::encode(&Sha256::digest(format!("{event_id}\n{}", mail.to))[..16]);
        let domain = self.from.email.domain().to_string();
        let message = Message::builder()
            .message_id(Some(format!("<{digest}.{}@{domain}>", mail.template)))
            .from(self.from.clone())
            .to(mail.to.parse()?)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)?;
        Ok((message, version))
    }
}

/// An applicant's notice: its template and what the event says in it.
type Notice = (&'static str, Value);

/// The notice `event` gives its applicant, if any: told from the event alone, so the cases
/// are read only for the events that mail someone (most of what the notifier reads does not).
fn applicant_notice(event: &Event) -> Option<Notice> {
    Some(match event {
        Event::CaseAccepted(e) => (
            "acceptance",
            context! {
                notice_number => e.notice_number,
                promised_date => iso_date(e.promised_date),
                outstanding => e.outstanding_materials.join("、"),
                commitment_date => e.commitment_date.map(iso_date),
            },
        ),
        Event::SupplementRequested(e) => {
            ("one-time-notice", context! { notice_number => e.notice_number, items => e.items })
        }
        Event::AcceptanceRefused(e) => (
            "not-accepted",
            context! { notice_number => e.notice_number, reason => e.reason, legal_basis => e.legal_basis },
        ),
        Event::CaseDecided(e) => (
            "decision",
            context! { approved => e.outcome == "approved", document => e.result_document, reason => e.reason },
        ),
        Event::DeliveryCompleted(e) => (
            "delivery",
            context! { signed => e.outcome == "signed", waybill => e.waybill_number, signed_by => e.signed_by },
        ),
        Event::ResultReadyForPickup(e) => ("pickup", context! { place => e.place, pickup_code => e.pickup_code }),
        _ => return None,
    })
}

#[async_trait]
impl BatchHandler for Notifier {
    /// Sends outside any transaction (the SQLite writer is not held across SMTP), then records
    /// the sends and the applied events together. An SMTP server that is down fails the batch,
    /// which the consumer retries; a recipient it refuses for good is recorded and skipped.
    async fn handle(&self, batch: &[Delivery]) -> anyhow::Result<Vec<Rejected>> {
        let ids: Vec<&str> = batch.iter().map(|d| d.event.event_id()).collect();
        let mut sent = self.store.notifications_sent(&ids).await?;
        let notices: Vec<Option<Notice>> = batch.iter().map(|d| applicant_notice(&d.event)).collect();
        let about: Vec<&str> = batch
            .iter()
            .zip(&notices)
            .filter(|(_, notice)| notice.is_some())
            .map(|(d, _)| d.event.case_number())
            .filter(|number| !number.is_empty())
            .collect();
        let cases: HashMap<String, Case> = self
            .store
            .cases_with_requests(&about)
            .await?
            .into_iter()
            .map(|(_, case)| (case.case_number.clone(), case))
            .collect();
        let mut outcomes: Vec<(String, String, &'static str, i64, String)> = Vec::new();
        for (delivery, notice) in batch.iter().zip(notices) {
            let event = &delivery.event;
            let mails = match event {
                Event::DeadlineWarning(warning) => self.warning_mails(warning),
                Event::SupervisionOrdered(order) => vec![self.supervision_mail(order)],
                Event::AuditAnomalyDetected(alert) => vec![self.anomaly_mail(alert)],
                other => notice
                    .zip(cases.get(other.case_number()))
                    .and_then(|(notice, case)| self.applicant_mail(other, case, notice))
                    .into_iter()
                    .collect(),
            };
            for mail in mails {
                // Sent before, or earlier in this batch (a redelivered event): once is enough.
                if !sent.insert((event.event_id().to_string(), mail.to.clone())) {
                    continue;
                }
                let (outcome, version) = match (&self.transport, self.message(event.event_id(), &mail)) {
                    (_, Err(error)) => (format!("not sent: {error}"), 0),
                    (None, Ok((_, version))) => ("not sent: no SMTP server configured".to_string(), version),
                    (Some(transport), Ok((message, version))) => match transport.send(message).await {
                        Ok(_) => ("sent".to_string(), version),
                        Err(error) if error.is_permanent() => (format!("refused: {error}"), version),
                        Err(error) => anyhow::bail!("SMTP relay unavailable: {error}"),
                    },
                };
                outcomes.push((event.event_id().to_string(), mail.to, mail.template, version, outcome));
            }
        }
        let mut tx = self.store.begin().await?;
        let rows: Vec<(&str, &str, &str, i64, &str)> = outcomes
            .iter()
            .map(|(id, to, template, version, outcome)| {
                (id.as_str(), to.as_str(), *template, *version, outcome.as_str())
            })
            .collect();
        tx.record_notifications(&rows).await?;
        let marks: Vec<(&str, &str)> = ids.iter().map(|id| (*id, "notified")).collect();
        tx.mark_applied(CONSUMER, &marks).await?;
        tx.commit().await?;
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_renders_and_versions_are_checked() {
        let templates = Templates::builtin();
        let (subject, body, version) = templates
            .render("one-time-notice", &context! { applicant => "张三", matter => "食品经营许可", case_number => "6104", notice_number => "N1", enquiry_phone => "029", items => vec![context! { material => "营业执照", problem => "未提交" }, context! { material => "平面图", problem => "模糊" }] })
            .unwrap();
        assert!(subject.contains("一次性告知") && subject.contains("6104"), "{subject}");
        assert!(
            body.contains("1. 营业执照：未提交") && body.contains("2. 平面图：模糊") && body.contains("第 1 版"),
            "{body}"
        );
        assert_eq!(version, 1);
        let (subject, body, _) = templates.render("decision", &context! { approved => false, matter => "m", case_number => "c", reason => "不符合条件", document => "D1" }).unwrap();
        assert!(subject.starts_with("不予许可") && body.contains("行政复议"), "{subject} {body}");
        for name in ["deadline-warning", "acceptance", "not-accepted", "delivery", "pickup"] {
            assert!(templates.render(name, &context! {}).is_ok(), "{name}");
        }
        let newer = format!("{TEMPLATES_TOML}\n[[template]]\nname = \"pickup\"\nversion = 2\nto = \"applicant\"\nsubject = \"v2 {{{{ case_number }}}}\"\nbody = \"b\"\n");
        assert_eq!(
            Templates::parse(&newer).unwrap().render("pickup", &context! { case_number => "c" }).unwrap(),
            ("v2 c".to_string(), "b".to_string(), 2),
            "the newest version is used"
        );
        let doubled = format!("{TEMPLATES_TOML}\n[[template]]\nname = \"pickup\"\nversion = 1\nto = \"applicant\"\nsubject = \"s\"\nbody = \"b\"\n");
        assert!(Templates::parse(&doubled).err().is_some_and(|e| e.contains("version 1 twice")));
    }
}
