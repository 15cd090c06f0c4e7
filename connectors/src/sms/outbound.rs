//! Outbound half: each requested text message sent once; its id (derived from the event that
//! caused it) is the gateway's idempotency key, so a retry or a redelivery after a crash sends
//! nothing twice.
use std::sync::Arc;

use async_trait::async_trait;
use bus::{BatchHandler, Delivery, Outbox, Rejected};
use contracts::{Event, SmsRequested, SmsSent};
use reqwest::Method;

use super::protocol::{MessageTaken, SendMessage};
use super::{SmsConfig, CONSUMER, GATEWAY};
use crate::framework::control::ConnectorControl;
use crate::framework::{apply_outbound, now_ms, with_retry, CallError, CounterpartClient, Exchange, Outcome};

/// Why the applicant's mobile number goes to the gateway.
const NOTICE_BASIS: &str =
    "《国务院关于加快推进全国一体化在线政务服务平台建设的指导意见》：办理进度和结果及时告知申请人";

pub struct SmsOutbound {
    config: SmsConfig,
    client: CounterpartClient,
    outbox: Arc<dyn Outbox>,
    control: Arc<ConnectorControl>,
}

impl SmsOutbound {
    pub fn new(
        config: SmsConfig,
        outbox: Arc<dyn Outbox>,
        control: Arc<ConnectorControl>,
    ) -> anyhow::Result<SmsOutbound> {
        let client =
            CounterpartClient::signed(&config.base_url, &config.app_id, &config.app_secret, config.timeout_ms)?;
        Ok(SmsOutbound { config, client, outbox, control })
    }

    async fn send(&self, request: &SmsRequested) -> Outcome {
        let body = message_for(request);
        let headers = [("Idempotency-Key", request.event_id.as_str())];
        let answer = with_retry(&self.config.retry, "text message", || {
            self.client.call::<MessageTaken>(Method::POST, "/api/v1/messages", &headers, Some(&body))
        })
        .await;
        send_outcome(request, answer, now_ms())
    }
}

/// The gateway's message for a requested one.
pub fn message_for(request: &SmsRequested) -> SendMessage {
    SendMessage {
        message_id: request.event_id.clone(),
        phone: request.phone.clone(),
        template: request.template.clone(),
        version: request.version,
        params: request.params.clone(),
        reference: request.case_number.clone(),
    }
}

/// What the gateway's answer comes to, as of `now`: the message taken, or why it was not.
pub fn send_outcome(request: &SmsRequested, answer: Result<MessageTaken, CallError>, now: i64) -> Outcome {
    let exchange = Exchange {
        name: "sms.send",
        requester_system: GATEWAY.into(),
        requester_department: String::new(),
        requester_officer: None,
        provider: "hub".into(),
        data_subject: String::new(),
        data_items: &["phone", "template", "params"],
        legal_basis: NOTICE_BASIS.into(),
        purpose: format!("短信告知申请人（{}）", request.template),
        channel: CONSUMER,
        document_sha256: None,
    };
    match answer {
        Ok(taken) => Outcome::done(vec![
            SmsSent {
                event_id: hub_core::ids::sms_sent(&request.event_id),
                case_number: request.case_number.clone(),
                occurred_at: now,
                message_id: request.event_id.clone(),
                gateway_id: taken.gateway_id,
                template: request.template.clone(),
                version: request.version,
            }
            .into(),
            exchange.shared(&request.event_id, &request.case_number, "ok", now),
        ]),
        Err(error) => Outcome::failed(
            format!("SMS gateway did not take message {} of case {}", request.event_id, request.case_number),
            &error,
            &exchange,
            &request.event_id,
            &request.case_number,
            now,
        ),
    }
}

#[async_trait]
impl BatchHandler for SmsOutbound {
    async fn handle(&self, batch: &[Delivery]) -> anyhow::Result<Vec<Rejected>> {
        apply_outbound(&self.control, self.outbox.as_ref(), batch, self.config.concurrency, |event| async move {
            match event {
                Event::SmsRequested(request) => self.send(request).await,
                other => Outcome::refused(format!("{} is not a text message", other.kind()), Vec::new()),
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_goes_out_under_its_own_id_and_comes_back_as_sent() {
        let request = SmsRequested {
            event_id: "61042920261120000001/9/sms".into(),
            case_number: "61042920261120000001".into(),
            occurred_at: 1,
            phone: "13912345678".into(),
            template: "pickup".into(),
            version: 1,
            params: [("case_number".to_string(), "61042920261120000001".to_string())].into(),
        };
        let message = message_for(&request);
        assert_eq!(
            (message.message_id.as_str(), message.reference.as_str()),
            (request.event_id.as_str(), "61042920261120000001")
        );
        let taken = MessageTaken { message_id: request.event_id.clone(), gateway_id: "G1".into(), duplicate: true };
        let done = send_outcome(&request, Ok(taken), 5);
        let [Event::SmsSent(sent), Event::DataShared(shared)] = done.events.as_slice() else { panic!("{done:?}") };
        assert_eq!((sent.event_id.as_str(), sent.gateway_id.as_str()), ("61042920261120000001/9/sms/sent", "G1"));
        assert_eq!(shared.exchange, "sms.send");
    }
}
