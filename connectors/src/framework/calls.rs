//! Calls to counterparts: failures classified as transient or permanent, retries of the
//! transient ones, and requests signed (and checked) with the counterpart's shared secret.
use std::future::Future;
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use bus::RetryPolicy;
use hmac::{Hmac, Mac as _};
use hub_web::BadRequest;
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
        if status.is_server_error()
            || status == reqwest::StatusCode::TOO_MANY_REQUESTS
            || status == reqwest::StatusCode::REQUEST_TIMEOUT
        {
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
pub fn check_signature(
    headers: &HeaderMap,
    method: &str,
    path_and_query: &str,
    body: &[u8],
    app_id: &str,
    secret: &str,
    now_ms: i64,
) -> Result<(), BadRequest> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let unauthorized =
        |message: &str| BadRequest { status: StatusCode::UNAUTHORIZED, field: None, message: message.into() };
    if header(APP_ID_HEADER) != app_id {
        return Err(unauthorized("unknown application id"));
    }
    let timestamp: i64 =
        header(TIMESTAMP_HEADER).parse().map_err(|_| unauthorized("X-Timestamp must be epoch milliseconds"))?;
    if (now_ms - timestamp).abs() > SIGNATURE_WINDOW_MS {
        return Err(unauthorized("X-Timestamp is more than five minutes off"));
    }
    let given = hex::decode(header(SIGNATURE_HEADER)).map_err(|_| unauthorized("X-Signature must be hex"))?;
    // Compared in constant time, so the answer's timing tells nothing about the right signature.
    signing_mac(secret, method, path_and_query, timestamp, body)
        .verify_slice(&given)
        .map_err(|_| unauthorized("signature does not match"))
}

/// The HTTP client every connector calls its counterpart with: JSON in and out, every failure
/// classified, and every request signed where the counterpart's protocol signs.
pub struct CounterpartClient {
    client: reqwest::Client,
    base_url: String,
    /// The application id and shared secret; none for an unsigned protocol (the postal one).
    signing: Option<(String, String)>,
}

impl CounterpartClient {
    /// A counterpart that checks the signature of every request.
    pub fn signed(base_url: &str, app_id: &str, secret: &str, timeout_ms: u64) -> anyhow::Result<CounterpartClient> {
        CounterpartClient::with(base_url, Some((app_id.into(), secret.into())), timeout_ms)
    }

    /// A counterpart whose protocol signs nothing.
    pub fn unsigned(base_url: &str, timeout_ms: u64) -> anyhow::Result<CounterpartClient> {
        CounterpartClient::with(base_url, None, timeout_ms)
    }

    fn with(base_url: &str, signing: Option<(String, String)>, timeout_ms: u64) -> anyhow::Result<CounterpartClient> {
        let client = reqwest::Client::builder().timeout(Duration::from_millis(timeout_ms)).build()?;
        Ok(CounterpartClient { client, base_url: base_url.trim_end_matches('/').to_string(), signing })
    }

    /// One call: `path_and_query` below the base URL, extra headers, an optional JSON body;
    /// the answer read as JSON.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: Option<&impl Serialize>,
    ) -> Result<T, CallError> {
        self.send(method, path_and_query, headers, body).await?.json().await.map_err(|e| CallError::from_reqwest(&e))
    }

    /// A call without a body whose answer is text (a statement file).
    pub async fn call_text(&self, method: reqwest::Method, path_and_query: &str) -> Result<String, CallError> {
        self.send(method, path_and_query, &[], None::<&()>).await?.text().await.map_err(|e| CallError::from_reqwest(&e))
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: Option<&impl Serialize>,
    ) -> Result<reqwest::Response, CallError> {
        let body = body
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|e| CallError::Permanent(format!("request not serialisable: {e}")))?
            .unwrap_or_default();
        let mut request = self.client.request(method.clone(), format!("{}{path_and_query}", self.base_url));
        if let Some((app_id, secret)) = &self.signing {
            let timestamp = now_ms();
            request = request
                .header(APP_ID_HEADER, app_id)
                .header(TIMESTAMP_HEADER, timestamp.to_string())
                .header(SIGNATURE_HEADER, signature(secret, method.as_str(), path_and_query, timestamp, &body));
        }
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

/// The wall clock in epoch milliseconds, as the counterparts' protocols stamp requests.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(check_signature(
            &headers("app", now, good.clone()),
            "POST",
            "/api/v1/x?y=1",
            body,
            "app",
            "s3cret",
            now + 1_000
        )
        .is_ok());
        let refused = |h: HeaderMap, path: &str, body: &[u8]| {
            check_signature(&h, "POST", path, body, "app", "s3cret", now).unwrap_err().status
        };
        assert_eq!(
            refused(headers("app", now, good.clone()), "/api/v1/x?y=2", body),
            StatusCode::UNAUTHORIZED,
            "another path"
        );
        assert_eq!(
            refused(headers("app", now, good.clone()), "/api/v1/x?y=1", b"{}"),
            StatusCode::UNAUTHORIZED,
            "another body"
        );
        assert_eq!(
            refused(headers("other", now, good.clone()), "/api/v1/x?y=1", body),
            StatusCode::UNAUTHORIZED,
            "another app"
        );
        let stale = signature("s3cret", "POST", "/api/v1/x?y=1", now - SIGNATURE_WINDOW_MS - 1, body);
        assert_eq!(
            refused(headers("app", now - SIGNATURE_WINDOW_MS - 1, stale), "/api/v1/x?y=1", body),
            StatusCode::UNAUTHORIZED,
            "replayed late"
        );
        let wrong_key = signature("guess", "POST", "/api/v1/x?y=1", now, body);
        assert_eq!(
            refused(headers("app", now, wrong_key), "/api/v1/x?y=1", body),
            StatusCode::UNAUTHORIZED,
            "another key"
        );
    }

    #[test]
    fn statuses_are_classified() {
        assert!(matches!(
            CallError::from_status(reqwest::StatusCode::SERVICE_UNAVAILABLE, ""),
            CallError::Transient(_)
        ));
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
            async move {
                if n < 3 {
                    Err(CallError::Transient("down".into()))
                } else {
                    Ok(n)
                }
            }
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
        let result: Result<(), _> =
            with_retry(&policy, "test", || async { Err(CallError::Transient("down".into())) }).await;
        assert!(matches!(result, Err(CallError::Transient(_))));
    }
}
