//! Outbound half: every step of every case reported to the platform with the national exchange
//! fields, and every review sent up (好差评数据汇聚). The event id is the idempotency key, so
//! a report repeated after a lost answer or a crash is recorded once at the platform.
use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use bus::{BatchHandler, Delivery, Outbox, Rejected};
use contracts::{Applicant, Event, ReviewSubmitted};
use reqwest::Method;

use super::protocol::{status_of, CaseStatus, Received, ReviewReport, StatusStep, RECEIVED};
use super::{ProvinceConfig, CONSUMER, PLATFORM};
use crate::framework::control::ConnectorControl;
use crate::framework::{apply_outbound, now_ms, with_retry, CallError, CounterpartClient, Exchange, Outcome};

/// Why case data goes to the platform: it aggregates every case of the province.
const REPORT_BASIS: &str =
    "《国务院关于在线政务服务的若干规定》第九条：政务服务事项办理数据汇聚至全国一体化在线政务服务平台";

/// What a report needs to know of a case beyond the event; the hub answers from its records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseFacts {
    pub implementation_code: String,
    pub matter_name: String,
    pub matter_version: i32,
    pub case_version: i32,
    pub channel: String,
    /// The platform's number, for applications filed online.
    pub project_no: Option<String>,
    pub applicant: Applicant,
    /// The deciding authority once routed, else the accepting point.
    pub handler_code: String,
    pub handler_name: String,
}

/// The hub's case records, as the outbound half reads them.
#[async_trait]
pub trait CaseDirectory: Send + Sync {
    /// The facts of the cases among `case_numbers` that exist.
    async fn facts(&self, case_numbers: &[&str]) -> anyhow::Result<HashMap<String, CaseFacts>>;
}

pub struct ProvinceOutbound {
    config: ProvinceConfig,
    client: CounterpartClient,
    outbox: Arc<dyn Outbox>,
    control: Arc<ConnectorControl>,
    cases: Arc<dyn CaseDirectory>,
    subject_key: Vec<u8>,
}

impl ProvinceOutbound {
    pub fn new(
        config: ProvinceConfig,
        outbox: Arc<dyn Outbox>,
        control: Arc<ConnectorControl>,
        cases: Arc<dyn CaseDirectory>,
        subject_key: Vec<u8>,
    ) -> anyhow::Result<ProvinceOutbound> {
        let client =
            CounterpartClient::signed(&config.base_url, &config.app_id, &config.app_secret, config.timeout_ms)?;
        Ok(ProvinceOutbound { config, client, outbox, control, cases, subject_key })
    }

    async fn report(&self, event: &Event, step: StatusStep, facts: &CaseFacts) -> Outcome {
        let body = status_for(event, &step, facts);
        let headers = [("Idempotency-Key", event.event_id())];
        let answer = with_retry(&self.config.retry, "case status report", || {
            self.client.call::<Received>(Method::POST, "/api/v1/case-status", &headers, Some(&body))
        })
        .await;
        let exchange = status_exchange(&step, facts, &self.subject_key);
        let what = format!("platform did not take status {} of case {}", step.code, event.case_number());
        reported(what, &exchange, event.event_id(), event.case_number(), answer.map(drop), now_ms())
    }

    async fn review(&self, review: &ReviewSubmitted, facts: &CaseFacts) -> Outcome {
        let body = review_for(review, facts);
        let headers = [("Idempotency-Key", review.event_id.as_str())];
        let answer = with_retry(&self.config.retry, "review report", || {
            self.client.call::<Received>(Method::POST, "/api/v1/reviews", &headers, Some(&body))
        })
        .await;
        let exchange =
            exchange("review.report", facts, &self.subject_key, &["case_number", "grade", "comment"], "好差评数据汇聚");
        let what = format!("platform did not take review {}", review.event_id);
        reported(what, &exchange, &review.event_id, &review.case_number, answer.map(drop), now_ms())
    }
}

/// An exchange with the platform about a case.
fn exchange(
    name: &'static str,
    facts: &CaseFacts,
    subject_key: &[u8],
    data_items: &'static [&'static str],
    purpose: &str,
) -> Exchange {
    Exchange {
        name,
        requester_system: PLATFORM.into(),
        requester_department: String::new(),
        requester_officer: None,
        provider: facts.handler_code.clone(),
        data_subject: contracts::data_subject(subject_key, &facts.applicant.id_number),
        data_items,
        legal_basis: REPORT_BASIS.into(),
        purpose: purpose.into(),
        channel: CONSUMER,
        document_sha256: None,
    }
}

/// The status report of one step of a case; the applicant's data goes up with the first only.
pub fn status_for(event: &Event, step: &StatusStep, facts: &CaseFacts) -> CaseStatus {
    let case_version = match event {
        Event::ApplicationSubmitted(e) => e.case_version,
        Event::MaterialsSupplemented(e) => e.case_version,
        _ => facts.case_version,
    };
    CaseStatus {
        case_number: event.case_number().into(),
        project_no: facts.project_no.clone(),
        implementation_code: facts.implementation_code.clone(),
        matter_name: facts.matter_name.clone(),
        matter_version: facts.matter_version,
        case_version,
        channel: facts.channel.clone(),
        event_code: step.code,
        event_name: step.name.into(),
        event_time: event.occurred_at(),
        handler_code: facts.handler_code.clone(),
        handler_name: facts.handler_name.clone(),
        result_type: step.result_type.clone(),
        applicant: (step.code == RECEIVED).then(|| facts.applicant.clone()),
    }
}

fn status_exchange(step: &StatusStep, facts: &CaseFacts, subject_key: &[u8]) -> Exchange {
    let data_items: &'static [&'static str] = if step.code == RECEIVED {
        &["case_number", "matter", "status", "applicant_name", "applicant_id_number", "applicant_phone"]
    } else {
        &["case_number", "matter", "status"]
    };
    exchange("case.status", facts, subject_key, data_items, &format!("办件状态汇聚：{}", step.name))
}

/// The review as the platform aggregates it (好差评数据汇聚).
pub fn review_for(review: &ReviewSubmitted, facts: &CaseFacts) -> ReviewReport {
    ReviewReport {
        review_id: review.event_id.clone(),
        case_number: review.case_number.clone(),
        project_no: facts.project_no.clone(),
        implementation_code: facts.implementation_code.clone(),
        grade: review.grade,
        channel: review.channel.clone(),
        comment: review.comment.clone(),
        service_point: review.service_point.clone(),
        department_code: review.department_code.clone(),
        reviewed_at: review.occurred_at,
    }
}

/// What the platform's answer to a report comes to, as of `now`.
fn reported(
    what: String,
    exchange: &Exchange,
    source_event_id: &str,
    case_number: &str,
    answer: Result<(), CallError>,
    now: i64,
) -> Outcome {
    match answer {
        Ok(()) => Outcome::done(vec![exchange.shared(source_event_id, case_number, "ok", now)]),
        Err(error) => Outcome::failed(what, &error, exchange, source_event_id, case_number, now),
    }
}

#[async_trait]
impl BatchHandler for ProvinceOutbound {
    async fn handle(&self, batch: &[Delivery]) -> anyhow::Result<Vec<Rejected>> {
        let numbers: Vec<&str> = batch.iter().map(|d| d.event.case_number()).collect();
        let facts = self.cases.facts(&numbers).await?;
        apply_outbound(&self.control, self.outbox.as_ref(), batch, self.config.concurrency, |event| {
            let facts = facts.get(event.case_number());
            async move {
                let Some(facts) = facts else {
                    return Outcome::refused(
                        format!("{} names case {}, which the hub does not hold", event.kind(), event.case_number()),
                        Vec::new(),
                    );
                };
                match (event, status_of(event)) {
                    (Event::ReviewSubmitted(review), _) => self.review(review, facts).await,
                    (_, Some(step)) => self.report(event, step, facts).await,
                    // Steps the platform does not follow are done with nothing to send.
                    (_, None) => Outcome::done(Vec::new()),
                }
            }
        })
        .await
    }
}
