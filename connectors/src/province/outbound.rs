//! Outbound half: every step of every case reported to the platform with the national exchange
//! fields, a batch's steps in one call, and every review sent up (好差评数据汇聚). The event id
//! is each report's id (a review's idempotency key), so a report repeated after a lost answer
//! or a crash is recorded once at the platform.
use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use bus::{BatchHandler, Delivery, Outbox, Rejected};
use contracts::{Applicant, Event, ReviewSubmitted};
use futures::future::BoxFuture;
use futures::stream::{self, StreamExt as _};
use futures::FutureExt as _;
use reqwest::Method;

use super::protocol::{
    status_of, CaseStatus, Received, ReviewReport, StatusBatch, StatusResult, StatusResults, StatusStep,
    MAX_REPORTS_PER_CALL, RECEIVED,
};
use super::{ProvinceConfig, CONSUMER, PLATFORM};
use crate::framework::control::ConnectorControl;
use crate::framework::{apply_outbound_together, now_ms, with_retry, CallError, CounterpartClient, Exchange, Outcome};

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

/// A step of a case to report, at its place among the batch's requests.
struct Step<'a> {
    index: usize,
    event: &'a Event,
    step: StatusStep,
    facts: &'a CaseFacts,
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

    /// Every request's outcome with its position: the status steps go up `MAX_REPORTS_PER_CALL`
    /// a call, the reviews one a call, several calls at once.
    async fn outcomes(&self, requests: Vec<&Event>, facts: &HashMap<String, CaseFacts>) -> Vec<(usize, Outcome)> {
        let mut answered = Vec::with_capacity(requests.len());
        let (mut steps, mut reviews) = (Vec::new(), Vec::new());
        for (index, event) in requests.into_iter().enumerate() {
            let Some(facts) = facts.get(event.case_number()) else {
                let reason =
                    format!("{} names case {}, which the hub does not hold", event.kind(), event.case_number());
                answered.push((index, Outcome::refused(reason, Vec::new())));
                continue;
            };
            match (event, status_of(event)) {
                (Event::ReviewSubmitted(review), _) => reviews.push((index, review, facts)),
                (_, Some(step)) => steps.push(Step { index, event, step, facts }),
                // Steps the platform does not follow are done with nothing to send.
                (_, None) => answered.push((index, Outcome::done(Vec::new()))),
            }
        }
        // Loops, not closures over references: async_trait's Send bound defeats inference.
        let mut calls: Vec<BoxFuture<'_, Vec<(usize, Outcome)>>> = Vec::new();
        for (index, review, facts) in reviews {
            calls.push(async move { vec![(index, self.review(review, facts).await)] }.boxed());
        }
        for chunk in steps.chunks(MAX_REPORTS_PER_CALL) {
            calls.push(self.report(chunk).boxed());
        }
        let called: Vec<_> = stream::iter(calls).buffer_unordered(self.config.concurrency.max(1)).collect().await;
        answered.extend(called.into_iter().flatten());
        answered
    }

    /// Reports the steps in one call; answers each step's outcome with its place in the batch.
    async fn report(&self, steps: &[Step<'_>]) -> Vec<(usize, Outcome)> {
        let body = StatusBatch { reports: steps.iter().map(|s| status_for(s.event, &s.step, s.facts)).collect() };
        let answer = with_retry(&self.config.retry, "case status reports", || {
            self.client.call::<StatusResults>(Method::POST, "/api/v1/case-status", &[], Some(&body))
        })
        .await;
        let results: HashMap<&str, &StatusResult> = match &answer {
            Ok(answer) => answer.results.iter().map(|result| (result.report_id.as_str(), result)).collect(),
            Err(_) => HashMap::new(),
        };
        let now = now_ms();
        steps
            .iter()
            .map(|step| {
                let (id, case_number) = (step.event.event_id(), step.event.case_number());
                let taken = match (&answer, results.get(id)) {
                    (Err(error), _) => Err(error.clone()),
                    (Ok(_), Some(StatusResult { error: None, .. })) => Ok(()),
                    (Ok(_), Some(StatusResult { error: Some(error), field, .. })) => {
                        Err(CallError::Permanent(format!("{error} ({})", field.as_deref().unwrap_or("no field named"))))
                    }
                    (Ok(_), None) => Err(CallError::Permanent("the platform's answer leaves this report out".into())),
                };
                let exchange = status_exchange(&step.step, step.facts, &self.subject_key);
                let what = format!("platform did not take status {} of case {case_number}", step.step.code);
                (step.index, reported(what, &exchange, id, case_number, taken, now))
            })
            .collect()
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
        report_id: event.event_id().into(),
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
        apply_outbound_together(&self.control, self.outbox.as_ref(), batch, |requests| self.outcomes(requests, &facts))
            .await
    }
}
