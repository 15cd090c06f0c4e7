//! Inbound half: certificates fetched from the repository and verified, instead of paper copies.
//! Every lookup states its purpose and is recorded as a data-sharing event through the outbox,
//! whether or not it found anything.
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use bus::{Effect, Outbox, RetryPolicy};
use hub_core::access::{Rule, CERTIFICATE_USERS};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::identifier::CertificateId;
use super::protocol::{Certificate, CertificateList};
use super::{EcertConfig, CONSUMER, LOOKUP_CONSUMER, REPOSITORY};
use crate::framework::{date_text, now_ms, with_retry, CallError, CounterpartClient, Exchange};
use hub_web::{ApiError, ApiResult, BadRequest, Route, ValidQuery};

/// The legal basis of every lookup: the requesting department performs its statutory duties.
const LOOKUP_BASIS: &str = "依法履行法定职责（《政务数据共享条例》）";
/// A clerk is waiting at the counter: a few quick attempts, then an answer.
const LOOKUP_RETRY: RetryPolicy = RetryPolicy { initial_ms: 50, max_ms: 500, multiplier: 2.0, max_attempts: 3 };

/// Who looks a certificate up and why.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LookupPurpose {
    /// 用证事由, e.g. "办理食品经营许可：核验营业执照". Required.
    pub purpose: String,
    pub officer: Option<String>,
    pub case_number: Option<String>,
}

/// A certificate and whether it may stand in for the paper: the identifier's check character,
/// its status and its validity date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    pub certificate: Certificate,
    pub valid: bool,
    pub problems: Vec<String>,
}

pub fn verify(certificate: Certificate, today_days: i32) -> Verification {
    let mut problems = Vec::new();
    if let Err(error) = certificate.certificate_id.parse::<CertificateId>() {
        problems.push(format!("identifier {}: {error}", certificate.certificate_id));
    }
    if certificate.status != "valid" {
        problems.push(format!("status is {}", certificate.status));
    }
    if let Some(until) = &certificate.valid_until {
        if *until < date_text(today_days) {
            problems.push(format!("expired on {until}"));
        }
    }
    Verification { valid: problems.is_empty(), certificate, problems }
}

#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("{}", .0.message)]
    Bad(BadRequest),
    #[error("no certificate {0}")]
    NotFound(String),
    #[error("the repository cannot answer now: {0}")]
    Unavailable(String),
}

impl From<LookupError> for ApiError {
    fn from(error: LookupError) -> ApiError {
        match error {
            LookupError::Bad(bad) => ApiError::Bad(bad),
            LookupError::NotFound(_) => ApiError::Bad(BadRequest::not_found(error.to_string())),
            LookupError::Unavailable(_) => ApiError::Upstream(error.to_string()),
        }
    }
}

pub struct CertificateLookup {
    config: EcertConfig,
    client: CounterpartClient,
    outbox: Arc<dyn Outbox>,
    subject_key: Vec<u8>,
}

impl CertificateLookup {
    pub fn new(
        config: EcertConfig,
        outbox: Arc<dyn Outbox>,
        subject_key: Vec<u8>,
    ) -> anyhow::Result<CertificateLookup> {
        let client =
            CounterpartClient::signed(&config.base_url, &config.app_id, &config.app_secret, config.timeout_ms)?;
        Ok(CertificateLookup { config, client, outbox, subject_key })
    }

    /// One certificate by its identifier, verified.
    pub async fn fetch(&self, certificate_id: &str, why: &LookupPurpose) -> Result<Verification, LookupError> {
        if let Err(error) = certificate_id.parse::<CertificateId>() {
            return Err(LookupError::Bad(BadRequest::field("certificate_id", error.to_string())));
        }
        let found = self.ask::<Certificate>(&format!("/api/v1/certificates/{certificate_id}"), &[], why).await;
        let holder = found.as_ref().map(|c| c.holder_code.clone()).unwrap_or_default();
        let documents = found.as_ref().ok().map(|c| vec![c.clone()]).unwrap_or_default();
        self.record(why, &holder, &documents, &found).await?;
        match found {
            Ok(certificate) => Ok(verify(certificate, today())),
            Err(error) if error.is_not_found() => Err(LookupError::NotFound(certificate_id.into())),
            Err(error) => Err(called_error(error)),
        }
    }

    /// A holder's certificates, of one type when given, each verified.
    pub async fn find(
        &self,
        holder_code: &str,
        type_code: Option<&str>,
        why: &LookupPurpose,
    ) -> Result<Vec<Verification>, LookupError> {
        if holder_code.trim().is_empty() {
            return Err(LookupError::Bad(BadRequest::field("holder_code", "holder_code must not be empty")));
        }
        let mut selection = vec![("holder_code", holder_code)];
        selection.extend(type_code.map(|t| ("type_code", t)));
        let found =
            self.ask::<CertificateList>("/api/v1/certificates", &selection, why).await.map(|list| list.certificates);
        self.record(why, holder_code, found.as_deref().unwrap_or_default(), &found).await?;
        Ok(found.map_err(called_error)?.into_iter().map(|c| verify(c, today())).collect())
    }

    /// A lookup at `path` with the `selection` and who asks and why as its query.
    async fn ask<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        selection: &[(&str, &str)],
        why: &LookupPurpose,
    ) -> Result<T, CallError> {
        if why.purpose.trim().is_empty() {
            return Err(CallError::Permanent("every lookup must state its purpose".into()));
        }
        let query = {
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            query
                .extend_pairs(selection)
                .append_pair("purpose", &why.purpose)
                .append_pair("requester", &self.config.requester_department);
            if let Some(case) = &why.case_number {
                query.append_pair("case_number", case);
            }
            query.finish()
        };
        let path_and_query = format!("{path}?{query}");
        with_retry(&LOOKUP_RETRY, "e-certificate lookup", || {
            self.client.call::<T>(Method::GET, &path_and_query, &[], None::<&()>)
        })
        .await
    }

    /// Records the lookup as a data-sharing event before anything is answered.
    async fn record<T>(
        &self,
        why: &LookupPurpose,
        holder_code: &str,
        documents: &[Certificate],
        found: &Result<T, CallError>,
    ) -> Result<(), LookupError> {
        let lookup_id = uuid::Uuid::now_v7().to_string();
        let exchange = Exchange {
            name: "certificate.fetch",
            requester_system: "hub".into(),
            requester_department: self.config.requester_department.clone(),
            requester_officer: why.officer.clone(),
            provider: REPOSITORY.into(),
            data_subject: if holder_code.is_empty() {
                String::new()
            } else {
                contracts::data_subject(&self.subject_key, holder_code)
            },
            data_items: &[
                "certificate_id",
                "certificate_name",
                "number",
                "holder_name",
                "holder_code",
                "issuer",
                "issue_date",
                "valid_until",
                "status",
            ],
            legal_basis: LOOKUP_BASIS.into(),
            purpose: why.purpose.clone(),
            channel: CONSUMER,
            document_sha256: (!documents.is_empty())
                .then(|| hex::encode(Sha256::digest(serde_json::to_vec(documents).unwrap_or_default()))),
        };
        let outcome = found.as_ref().map_or_else(CallError::audit_outcome, |_| "ok");
        let shared = exchange.shared(&lookup_id, why.case_number.as_deref().unwrap_or_default(), outcome, now_ms());
        self.outbox
            .apply_all(LOOKUP_CONSUMER, &[Effect { source_event_id: lookup_id, events: vec![shared] }])
            .await
            .map_err(|error| {
                LookupError::Unavailable(format!("the lookup could not be recorded for the audit: {error}"))
            })?;
        Ok(())
    }
}

fn called_error(error: CallError) -> LookupError {
    match error {
        CallError::Permanent(reason) => LookupError::Bad(BadRequest::field("certificate", reason)),
        CallError::Transient(reason) => LookupError::Unavailable(reason),
    }
}

/// Today in China Standard Time, where validity dates are set.
fn today() -> i32 {
    contracts::day_of(now_ms())
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FindQuery {
    pub holder_code: String,
    pub type_code: Option<String>,
    pub purpose: String,
    pub officer: Option<String>,
    pub case_number: Option<String>,
}

/// The inbound half's routes: the counter's lookups, each with its purpose.
pub fn routes(lookup: Arc<CertificateLookup>) -> Vec<Route> {
    vec![
        Route::get("/api/v1/certificates", Rule::Roles(CERTIFICATE_USERS), find)
            .doc("certificates", "a holder's e-certificates, verified")
            .query::<FindQuery>(),
        Route::get("/api/v1/certificates/{certificate_id}", Rule::Roles(CERTIFICATE_USERS), fetch)
            .doc("certificates", "fetch and verify an e-certificate")
            .query::<LookupPurpose>(),
    ]
    .into_iter()
    .map(|route| route.with_state(lookup.clone()))
    .collect()
}

async fn fetch(
    State(lookup): State<Arc<CertificateLookup>>,
    Path(certificate_id): Path<String>,
    query: Result<ValidQuery<LookupPurpose>, BadRequest>,
) -> ApiResult<Json<Verification>> {
    let ValidQuery(why) =
        query.map_err(|_| BadRequest::field("purpose", "state the purpose of the lookup: ?purpose=…"))?;
    if why.purpose.trim().is_empty() {
        return Err(BadRequest::field("purpose", "every lookup must state its purpose (用证事由)").into());
    }
    Ok(Json(lookup.fetch(&certificate_id, &why).await?))
}

async fn find(
    State(lookup): State<Arc<CertificateLookup>>,
    query: Result<ValidQuery<FindQuery>, BadRequest>,
) -> ApiResult<Json<Vec<Verification>>> {
    let ValidQuery(query) =
        query.map_err(|_| BadRequest::field("holder_code", "give holder_code and purpose, and type_code if wanted"))?;
    let why = LookupPurpose { purpose: query.purpose, officer: query.officer, case_number: query.case_number };
    if why.purpose.trim().is_empty() {
        return Err(BadRequest::field("purpose", "every lookup must state its purpose (用证事由)").into());
    }
    Ok(Json(lookup.find(&query.holder_code, query.type_code.as_deref(), &why).await?))
}
