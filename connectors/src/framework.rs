//! What every connector shares: classifying counterpart errors, retrying transient ones, and
//! parsing request bodies with errors that name the field.
use std::future::Future;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bus::RetryPolicy;
use serde::de::DeserializeOwned;

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
