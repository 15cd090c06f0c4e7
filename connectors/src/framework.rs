//! What every connector shares: classifying counterpart errors, retrying transient ones, signed
//! calls, the outbound half's batch handling, data-sharing events, and parsing request bodies
//! with errors that name the field.
use std::future::Future;
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bus::{Delivery, Effect, Outbox, Rejected, RetryPolicy};
use contracts::{DataShared, Event};

use crate::control::ConnectorControl;
use futures::stream::{self, StreamExt as _};
use hmac::{Hmac, Mac as _};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest as _, Sha256};

/// How a call to a counterpart failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// Worth retrying: network trouble, timeouts, 5xx, 429.
    #[error("transient: {0}")]
    Transient(String),
    /// Retrying cannot help: the counterpart refused the data (4xx). Goes to the dead-letter topic.
    #[error("permanent: {0}")]
    Permanent(String),
}

impl CallError {
    /// Classifies an HTTP status with the body the counterpart sent.
    pub fn from_status(status: reqwest::StatusCode, body: &str) -> CallError {
        let message = format!("HTTP {status}: {body}");
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS || status == reqwest::StatusCode::REQUEST_TIMEOUT {
            CallError::Transient(message)
        } else {
            CallError::Permanent(message)
        }
    }

    /// How the exchange ended, as its data-sharing event records it: the data may have reached
    /// the counterpart either way.
    pub fn audit_outcome(&self) -> &'static str {
        match self {
            CallError::Permanent(_) => "refused",
            CallError::Transient(_) => "failed",
        }
    }

    /// The counterpart does not know what was asked for (HTTP 404).
    pub fn is_not_found(&self) -> bool {
        matches!(self, CallError::Permanent(message) if message.starts_with("HTTP 404"))
    }

    pub fn from_reqwest(error: &reqwest::Error) -> CallError {
        if error.is_decode() {
            CallError::Permanent(format!("unreadable response: {error}"))
        } else {
            CallError::Transient(error.to_string())
        }
    }
}

/// Calls `attempt` until it succeeds, fails permanently, or the policy runs out of attempts.
pub async fn with_retry<T, F, Fut>(policy: &RetryPolicy, what: &str, mut attempt: F) -> Result<T, CallError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, CallError>>,
{
    let mut attempts = 0;
    loop {
        attempts += 1;
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(CallError::Transient(reason)) if !policy.exhausted(attempts) => {
                tracing::debug!(what, attempts, reason, "transient failure; backing off");
                tokio::time::sleep(policy.delay(attempts)).await;
            }
            Err(error) => return Err(error),
        }
    }
}

/// A request error answered with a 4xx status and a JSON body naming the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRequest {
    pub status: StatusCode,
    pub field: Option<String>,
    pub message: String,
}

impl BadRequest {
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> BadRequest {
        BadRequest { status: StatusCode::BAD_REQUEST, field: Some(field.into()), message: message.into() }
    }

    /// The same error for a field of an element inside a larger body, e.g. `traces[3]`.
    pub fn within(self, path: &str) -> BadRequest {
        let field = Some(self.field.map_or_else(|| path.to_string(), |field| format!("{path}.{field}")));
        BadRequest { message: format!("{path}: {}", self.message), field, ..self }
    }
}

impl IntoResponse for BadRequest {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "success": false, "error": self.message, "field": self.field });
        (self.status, Json(body)).into_response()
    }
}

/// A request's query string, deserialised; when it does not fit, the 400 says why.
pub struct ValidQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S> for ValidQuery<T> {
    type Rejection = BadRequest;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, BadRequest> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(query)) => Ok(ValidQuery(query)),
            Err(rejection) => Err(BadRequest { status: StatusCode::BAD_REQUEST, field: None, message: rejection.body_text() }),
        }
    }
}

/// Parses a JSON body; on failure the error names the path of the offending field.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, BadRequest> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let field = if path == "." { None } else { Some(path) };
        let message = match &field {
            Some(field) => format!("{field}: {inner}"),
            None => format!("body is not valid JSON for this request: {inner}"),
        };
        BadRequest { status: StatusCode::BAD_REQUEST, field, message }
    })
}

/// Signature of a request: hex HMAC-SHA256 under the shared secret over the method, the path
/// with its query, the timestamp (epoch milliseconds) and the hex SHA-256 of the body, one per line.
pub fn signature(secret: &str, method: &str, path_and_query: &str, timestamp: i64, body: &[u8]) -> String {
    hex::encode(signing_mac(secret, method, path_and_query, timestamp, body).finalize().into_bytes())
}

fn signing_mac(secret: &str, method: &str, path_and_query: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(format!("{method}\n{path_and_query}\n{timestamp}\n{}", hex::encode(Sha256::digest(body))).as_bytes());
    mac
}

/// Headers carrying a signed request's application id, timestamp and signature.
pub const APP_ID_HEADER: &str = "X-App-Id";
pub const TIMESTAMP_HEADER: &str = "X-Timestamp";
pub const SIGNATURE_HEADER: &str = "X-Signature";
/// How far a signed request's timestamp may stray from the receiver's clock.
pub const SIGNATURE_WINDOW_MS: i64 = 5 * 60 * 1000;

/// Checks a signed request as a counterpart does: known app, fresh timestamp, right signature.
pub fn check_signature(headers: &HeaderMap, method: &str, path_and_query: &str, body: &[u8], app_id: &str, secret: &str, now_ms: i64) -> Result<(), BadRequest> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let unauthorized = |message: &str| BadRequest { status: StatusCode::UNAUTHORIZED, field: None, message: message.into() };
    if header(APP_ID_HEADER) != app_id {
        return Err(unauthorized("unknown application id"));
    }
    let timestamp: i64 = header(TIMESTAMP_HEADER).parse().map_err(|_| unauthorized("X-Timestamp must be epoch milliseconds"))?;
    if (now_ms - timestamp).abs() > SIGNATURE_WINDOW_MS {
        return Err(unauthorized("X-Timestamp is more than five minutes off"));
    }
    let given = hex::decode(header(SIGNATURE_HEADER)).map_err(|_| unauthorized("X-Signature must be hex"))?;
    // Compared in constant time, so the answer's timing tells nothing about the right signature.
    signing_mac(secret, method, path_and_query, timestamp, body).verify_slice(&given).map_err(|_| unauthorized("signature does not match"))
}

/// An HTTP client for one counterpart that signs every request and classifies every failure.
pub struct SignedClient {
    client: reqwest::Client,
    base_url: String,
    app_id: String,
    secret: String,
}

impl SignedClient {
    pub fn new(base_url: &str, app_id: &str, secret: &str, timeout_ms: u64) -> anyhow::Result<SignedClient> {
        let client = reqwest::Client::builder().timeout(Duration::from_millis(timeout_ms)).build()?;
        Ok(SignedClient { client, base_url: base_url.trim_end_matches('/').to_string(), app_id: app_id.into(), secret: secret.into() })
    }

    /// One call: `path_and_query` below the base URL, extra headers, an optional JSON body;
    /// the answer read as JSON.
    pub async fn call<T: DeserializeOwned>(&self, method: reqwest::Method, path_and_query: &str, headers: &[(&str, &str)], body: Option<&impl Serialize>) -> Result<T, CallError> {
        self.send(method, path_and_query, headers, body).await?.json().await.map_err(|e| CallError::from_reqwest(&e))
    }

    /// A call without a body whose answer is text (a statement file).
    pub async fn call_text(&self, method: reqwest::Method, path_and_query: &str) -> Result<String, CallError> {
        self.send(method, path_and_query, &[], None::<&()>).await?.text().await.map_err(|e| CallError::from_reqwest(&e))
    }

    async fn send(&self, method: reqwest::Method, path_and_query: &str, headers: &[(&str, &str)], body: Option<&impl Serialize>) -> Result<reqwest::Response, CallError> {
        let body = body.map(serde_json::to_vec).transpose().map_err(|e| CallError::Permanent(format!("request not serialisable: {e}")))?.unwrap_or_default();
        let timestamp = now_ms();
        let mut request = self
            .client
            .request(method.clone(), format!("{}{path_and_query}", self.base_url))
            .header(APP_ID_HEADER, &self.app_id)
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signature(&self.secret, method.as_str(), path_and_query, timestamp, &body));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if !body.is_empty() {
            request = request.header(reqwest::header::CONTENT_TYPE, "application/json").body(body);
        }
        let response = request.send().await.map_err(|e| CallError::from_reqwest(&e))?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            return Err(CallError::from_status(status, &text));
        }
        Ok(response)
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// What one outbound request came to: the events to record, the reason when the counterpart
/// refused it for good (the request then also goes to the dead-letter topic), or the reason it
/// stayed unreachable past the retry policy (nothing is recorded: the batch waits for it).
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub events: Vec<Event>,
    pub refused: Option<String>,
    pub unreachable: Option<String>,
}

impl Outcome {
    pub fn done(events: Vec<Event>) -> Outcome {
        Outcome { events, refused: None, unreachable: None }
    }

    pub fn refused(reason: String, events: Vec<Event>) -> Outcome {
        Outcome { events, refused: Some(reason), unreachable: None }
    }

    /// A call that failed: refused for good (the exchange is recorded, the data went out), or
    /// unreachable past the retry policy.
    pub fn failed(what: String, error: &CallError, exchange: &Exchange, source_event_id: &str, case_number: &str) -> Outcome {
        match error {
            CallError::Permanent(_) => Outcome::refused(format!("{what}: {error}"), vec![exchange.shared(source_event_id, case_number, error.audit_outcome())]),
            CallError::Transient(_) => Outcome { events: Vec::new(), refused: None, unreachable: Some(format!("{what}: {error}")) },
        }
    }
}

/// The outbound half's batch handling, the same for every connector: waits while the connector
/// is paused, skips requests already applied, makes the calls several at once, then records
/// every outcome in one transaction. A crash in between only repeats calls, which the
/// idempotency keys make harmless. A counterpart unreachable past the retry policy raises an
/// incident and fails the batch, which the consumer hands back once the connector restarts.
pub async fn apply_outbound<'a, F, Fut>(control: &ConnectorControl, outbox: &dyn Outbox, batch: &'a [Delivery], concurrency: usize, call: F) -> anyhow::Result<Vec<Rejected>>
where
    F: Fn(&'a Event) -> Fut,
    Fut: Future<Output = Outcome>,
{
    control.until_running().await;
    let consumer = control.name();
    let ids: Vec<&str> = batch.iter().map(|d| d.event.event_id()).collect();
    let mut skip = outbox.applied_among(consumer, &ids).await?;
    let calls: Vec<_> = batch
        .iter()
        .enumerate()
        .filter(|(_, delivery)| skip.insert(delivery.event.event_id().to_string()))
        .map(|(index, delivery)| {
            let call = call(&delivery.event);
            async move { (index, delivery.event.event_id(), call.await) }
        })
        .collect();
    let results: Vec<_> = stream::iter(calls).buffer_unordered(concurrency.max(1)).collect().await;
    if let Some(reason) = results.iter().find_map(|(_, _, outcome)| outcome.unreachable.clone()) {
        control.raise_incident(&reason);
        anyhow::bail!("{consumer}: counterpart unreachable past the retry policy: {reason}");
    }
    let mut rejected = Vec::new();
    let mut effects = Vec::with_capacity(results.len());
    for (index, source_event_id, outcome) in results {
        if let Some(reason) = outcome.refused {
            rejected.push(Rejected { index, reason });
        }
        effects.push(Effect { source_event_id: source_event_id.to_string(), events: outcome.events });
    }
    outbox.apply_all(consumer, &effects).await?;
    control.applied();
    Ok(rejected)
}

/// One exchange of data with a counterpart, described for the data-sharing audit.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// What was exchanged, e.g. `certificate.issue`.
    pub name: &'static str,
    pub requester_system: String,
    pub requester_department: String,
    pub requester_officer: Option<String>,
    pub provider: String,
    pub data_subject: String,
    pub data_items: &'static [&'static str],
    pub legal_basis: String,
    pub purpose: String,
    pub channel: &'static str,
    pub document_sha256: Option<String>,
}

impl Exchange {
    /// The data-sharing event for this exchange made on behalf of `source_event_id`; its id is
    /// derived from the source, so a repeated exchange is recorded once.
    pub fn shared(&self, source_event_id: &str, case_number: &str, outcome: &str) -> Event {
        DataShared {
            event_id: format!("{source_event_id}/shared/{}", self.name),
            case_number: case_number.into(),
            occurred_at: now_ms(),
            exchange: self.name.into(),
            requester_system: self.requester_system.clone(),
            requester_department: self.requester_department.clone(),
            requester_officer: self.requester_officer.clone(),
            provider: self.provider.clone(),
            data_subject: self.data_subject.clone(),
            data_items: self.data_items.iter().map(|item| item.to_string()).collect(),
            legal_basis: self.legal_basis.clone(),
            purpose: self.purpose.clone(),
            channel: self.channel.into(),
            document_sha256: self.document_sha256.clone(),
            outcome: outcome.into(),
        }
        .into()
    }
}

/// An Avro `date` (days since 1970-01-01) as `YYYY-MM-DD`.
pub fn date_text(days: i32) -> String {
    const UNIX_EPOCH_JULIAN_DAY: i32 = 2_440_588;
    time::Date::from_julian_day(days + UNIX_EPOCH_JULIAN_DAY).map_or_else(|_| format!("day {days}"), |date| date.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Outer {
        inner: Inner,
    }
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        count: u32,
    }

    #[test]
    fn parse_errors_name_the_field() {
        let error = parse_json::<Outer>(br#"{"inner": {"count": "x"}}"#).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("inner.count"));
        let error = parse_json::<Outer>(br#"{"inner": {}}"#).unwrap_err();
        assert!(error.message.contains("count"), "{}", error.message);
        assert!(parse_json::<Outer>(b"not json").is_err());
    }

    #[test]
    fn signatures_are_checked_as_the_counterpart_does() {
        let body = br#"{"reason":"r"}"#;
        let now = 1_763_604_000_000;
        let headers = |app: &str, at: i64, sig: String| {
            let mut headers = HeaderMap::new();
            headers.insert(APP_ID_HEADER, app.parse().unwrap());
            headers.insert(TIMESTAMP_HEADER, at.to_string().parse().unwrap());
            headers.insert(SIGNATURE_HEADER, sig.parse().unwrap());
            headers
        };
        let good = signature("s3cret", "POST", "/api/v1/x?y=1", now, body);
        assert!(check_signature(&headers("app", now, good.clone()), "POST", "/api/v1/x?y=1", body, "app", "s3cret", now + 1_000).is_ok());
        let refused = |h: HeaderMap, path: &str, body: &[u8]| check_signature(&h, "POST", path, body, "app", "s3cret", now).unwrap_err().status;
        assert_eq!(refused(headers("app", now, good.clone()), "/api/v1/x?y=2", body), StatusCode::UNAUTHORIZED, "another path");
        assert_eq!(refused(headers("app", now, good.clone()), "/api/v1/x?y=1", b"{}"), StatusCode::UNAUTHORIZED, "another body");
        assert_eq!(refused(headers("other", now, good.clone()), "/api/v1/x?y=1", body), StatusCode::UNAUTHORIZED, "another app");
        let stale = signature("s3cret", "POST", "/api/v1/x?y=1", now - SIGNATURE_WINDOW_MS - 1, body);
        assert_eq!(refused(headers("app", now - SIGNATURE_WINDOW_MS - 1, stale), "/api/v1/x?y=1", body), StatusCode::UNAUTHORIZED, "replayed late");
        let wrong_key = signature("guess", "POST", "/api/v1/x?y=1", now, body);
        assert_eq!(refused(headers("app", now, wrong_key), "/api/v1/x?y=1", body), StatusCode::UNAUTHORIZED, "another key");
    }

    #[test]
    fn avro_dates_are_written_as_iso_dates() {
        assert_eq!(date_text(0), "1970-01-01");
        assert_eq!(date_text(20_777), "2026-11-20");
    }

    #[test]
    fn statuses_are_classified() {
        assert!(matches!(CallError::from_status(reqwest::StatusCode::SERVICE_UNAVAILABLE, ""), CallError::Transient(_)));
        assert!(matches!(CallError::from_status(reqwest::StatusCode::TOO_MANY_REQUESTS, ""), CallError::Transient(_)));
        assert!(matches!(CallError::from_status(reqwest::StatusCode::BAD_REQUEST, ""), CallError::Permanent(_)));
    }

    #[tokio::test]
    async fn retries_transient_failures_and_stops_at_permanent_ones() {
        let policy = RetryPolicy { initial_ms: 1, max_ms: 2, multiplier: 2.0, max_attempts: 5 };
        let mut calls = 0;
        let result = with_retry(&policy, "test", || {
            calls += 1;
            let n = calls;
            async move { if n < 3 { Err(CallError::Transient("down".into())) } else { Ok(n) } }
        })
        .await;
        assert_eq!(result, Ok(3));
        let mut calls = 0;
        let result: Result<(), _> = with_retry(&policy, "test", || {
            calls += 1;
            async { Err(CallError::Permanent("bad".into())) }
        })
        .await;
        assert_eq!(calls, 1);
        assert!(result.is_err());
        let result: Result<(), _> = with_retry(&policy, "test", || async { Err(CallError::Transient("down".into())) }).await;
        assert!(matches!(result, Err(CallError::Transient(_))));
    }
}
