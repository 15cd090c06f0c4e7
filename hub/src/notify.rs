//! The warning notifier: consumes time-limit warnings and e-mails each to the handling
//! authority's mailbox, and red ones also to the supervisor, over SMTP (lettre). Every send is
//! recorded; a message already sent to a recipient is not sent again when Kafka redelivers.
use std::sync::Arc;

use async_trait::async_trait;
use bus::{BatchHandler, Delivery, Rejected};
use contracts::{DeadlineWarning, Event};
use lettre::message::{header::ContentType, Mailbox};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};

use crate::domain::calendar::iso_date;
use crate::domain::Reference;
use crate::store::Store;

pub const CONSUMER: &str = "hub-notifier";
const TEMPLATE: &str = "deadline-warning";
const TEMPLATE_VERSION: i64 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailConfig {
    /// `smtp://host:port` of the county mail relay (plain SMTP inside the government network);
    /// empty: warnings are recorded as not mailed.
    pub smtp_url: String,
    pub from: String,
}

impl Default for MailConfig {
    fn default() -> Self {
        MailConfig { smtp_url: String::new(), from: "政务服务中枢 <hub@xunyi.gov.cn>".into() }
    }
}

pub struct WarningMailer {
    store: Store,
    reference: Arc<Reference>,
    transport: Option<AsyncSmtpTransport<Tokio1Executor>>,
    from: Mailbox,
}

impl WarningMailer {
    pub fn new(config: &MailConfig, store: Store, reference: Arc<Reference>) -> anyhow::Result<WarningMailer> {
        let transport = if config.smtp_url.is_empty() {
            tracing::warn!("mail.smtp_url is not set: warnings are published and recorded, not e-mailed");
            None
        } else {
            let url = url::Url::parse(&config.smtp_url)?;
            let host = url.host_str().filter(|_| url.scheme() == "smtp");
            let host = host.ok_or_else(|| anyhow::anyhow!("mail.smtp_url must be smtp://host[:port], got {}", config.smtp_url))?;
            Some(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host).port(url.port().unwrap_or(25)).build())
        };
        Ok(WarningMailer { store, reference, transport, from: config.from.parse()? })
    }

    /// Who gets a warning: the handlers, and the supervisor when it escalates.
    fn recipients(&self, warning: &DeadlineWarning) -> Vec<String> {
        let mut to = vec![self.reference.handler_email(&warning.department_code)];
        if warning.escalate {
            to.push(self.reference.county.policy.supervisor_email.clone());
        }
        to
    }

    fn message(&self, warning: &DeadlineWarning, recipient: &str) -> anyhow::Result<Message> {
        let level = match warning.level.as_str() {
            "red" => "红色预警",
            "yellow" => "黄色预警",
            _ => "到期提醒",
        };
        let body = format!(
            "{message}\n\n办件编号：{case}\n预警级别：{level}\n时限：{due}\n经办单位：{handler}\n\n请登录政务服务中枢处理。此邮件由系统发送（模板 {TEMPLATE} 第 {TEMPLATE_VERSION} 版）。\n",
            message = warning.message,
            case = warning.case_number,
            due = iso_date(warning.due_date),
            handler = self.reference.authority(&warning.department_code).map_or_else(|| warning.department_code.clone(), |a| a.name),
        );
        Ok(Message::builder()
            .from(self.from.clone())
            .to(recipient.parse()?)
            .subject(format!("【{level}】办件 {}", warning.case_number))
            .header(ContentType::TEXT_PLAIN)
            .body(body)?)
    }
}

#[async_trait]
impl BatchHandler for WarningMailer {
    /// Sends outside any transaction (the SQLite writer is not held across SMTP), then records
    /// the sends and the applied events together. An SMTP server that is down fails the batch,
    /// which the consumer retries; a recipient it refuses for good is recorded and skipped.
    async fn handle(&self, batch: &[Delivery]) -> anyhow::Result<Vec<Rejected>> {
        let ids: Vec<&str> = batch.iter().map(|d| d.event.event_id()).collect();
        let sent = self.store.notifications_sent(&ids).await?;
        let mut outcomes: Vec<(String, String, String)> = Vec::new();
        let mut rejected = Vec::new();
        for (index, delivery) in batch.iter().enumerate() {
            let Event::DeadlineWarning(warning) = &delivery.event else {
                rejected.push(Rejected { index, reason: format!("{} is not a warning", delivery.event.kind()) });
                continue;
            };
            for recipient in self.recipients(warning) {
                if sent.contains(&(warning.event_id.clone(), recipient.clone())) {
                    continue;
                }
                let outcome = match (&self.transport, self.message(warning, &recipient)) {
                    (_, Err(error)) => format!("not sent: {error}"),
                    (None, Ok(_)) => "not sent: no SMTP server configured".to_string(),
                    (Some(transport), Ok(message)) => match transport.send(message).await {
                        Ok(_) => "sent".to_string(),
                        Err(error) if error.is_permanent() => format!("refused: {error}"),
                        Err(error) => anyhow::bail!("SMTP relay unavailable: {error}"),
                    },
                };
                outcomes.push((warning.event_id.clone(), recipient, outcome));
            }
        }
        let mut tx = self.store.begin().await?;
        let rows: Vec<(&str, &str, &str, i64, &str)> = outcomes.iter().map(|(id, to, outcome)| (id.as_str(), to.as_str(), TEMPLATE, TEMPLATE_VERSION, outcome.as_str())).collect();
        tx.record_notifications(&rows).await?;
        let marks: Vec<(&str, &str)> = ids.iter().map(|id| (*id, "notified")).collect();
        tx.mark_applied(CONSUMER, &marks).await?;
        tx.commit().await?;
        Ok(rejected)
    }
}
