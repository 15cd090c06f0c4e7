//! What every counterpart simulator shares: the faults it can inject into its API and the shape
//! of its error answers.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use rand::Rng as _;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::framework::{check_signature, now_ms, signature, APP_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use hub_web::{parse_json, BadRequest};

/// A simulator's fault settings, whatever extra faults its counterpart knows.
pub trait FaultSettings: Clone + Serialize + DeserializeOwned + Send + Sync + 'static {
    /// Refuses settings out of range, naming the field.
    fn check(&self) -> Result<(), BadRequest>;
}

/// The faults in force, changed at run time through `GET|PUT /admin/faults`.
pub struct FaultSwitch<F>(RwLock<F>);

impl<F: FaultSettings> FaultSwitch<F> {
    pub fn new(faults: F) -> Arc<FaultSwitch<F>> {
        Arc::new(FaultSwitch(RwLock::new(faults)))
    }

    pub fn current(&self) -> F {
        self.0.read().expect("faults lock").clone()
    }

    /// The `/admin/faults` routes, to be merged into the simulator's router.
    pub fn routes(self: &Arc<Self>) -> Router {
        Router::new().route("/admin/faults", get(get_faults::<F>).put(set_faults::<F>)).with_state(self.clone())
    }
}

async fn get_faults<F: FaultSettings>(State(switch): State<Arc<FaultSwitch<F>>>) -> Json<F> {
    Json(switch.current())
}

async fn set_faults<F: FaultSettings>(State(switch): State<Arc<FaultSwitch<F>>>, body: Bytes) -> Response {
    match parse_json::<F>(&body).and_then(|faults| faults.check().map(|_| faults)) {
        Ok(faults) => {
            *switch.0.write().expect("faults lock") = faults.clone();
            Json(faults).into_response()
        }
        Err(bad) => bad.into_response(),
    }
}

/// Refuses a share outside 0..=1, naming the field.
pub fn check_rates(rates: &[(&str, f64)]) -> Result<(), BadRequest> {
    for (field, rate) in rates {
        if !(0.0..=1.0).contains(rate) {
            return Err(BadRequest::field(*field, format!("{field} must be between 0 and 1")));
        }
    }
    Ok(())
}

/// Faults a simulator injects, set at start or at run time through `PUT /admin/faults`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Share of calls answered with HTTP 500 without doing anything, 0.0..=1.0.
    pub error_rate: f64,
    /// Added latency of every call.
    pub delay_ms: u64,
    /// Share of calls carried out but answered with 504, as if the answer were lost on the way:
    /// the caller retries something already done (for a pushing counterpart: pushes sent twice).
    pub duplicate_rate: f64,
    /// Answer every call with 503.
    pub outage: bool,
}

impl Faults {
    /// Applies the delay, then answers for the outage or a simulated error, if one strikes.
    pub async fn before_call(&self) -> Option<Response> {
        if self.outage {
            return Some(error(StatusCode::SERVICE_UNAVAILABLE, "S503", "service unavailable (simulated outage)"));
        }
        if self.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(self.delay_ms)).await;
        }
        strikes(self.error_rate).then(|| error(StatusCode::INTERNAL_SERVER_ERROR, "S500", "internal error (simulated)"))
    }

    /// Whether this call's answer is to be lost after the work was done.
    pub fn loses_answer(&self) -> bool {
        strikes(self.duplicate_rate)
    }
}

impl FaultSettings for Faults {
    fn check(&self) -> Result<(), BadRequest> {
        check_rates(&[("error_rate", self.error_rate), ("duplicate_rate", self.duplicate_rate)])
    }
}

/// A running simulator; it stops when dropped.
pub struct RunningSimulator {
    pub base_url: String,
    shutdown: CancellationToken,
}

impl Drop for RunningSimulator {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Serves a simulator's `app` on `listener` until the returned handle is dropped; `shutdown`
/// also stops the simulator's own tasks.
pub fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: CancellationToken,
    name: &'static str,
) -> anyhow::Result<RunningSimulator> {
    let base_url = format!("http://{}", listener.local_addr()?);
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let served = axum::serve(listener, app).with_graceful_shutdown(async move { stop.cancelled().await });
        if let Err(error) = served.await {
            tracing::error!(%error, simulator = name, "simulator stopped");
        }
    });
    Ok(RunningSimulator { base_url, shutdown })
}

/// True with probability `rate`.
pub fn strikes(rate: f64) -> bool {
    rate > 0.0 && rand::rng().random_bool(rate.clamp(0.0, 1.0))
}

/// The answer a lost acknowledgement gets.
pub fn lost_answer() -> Response {
    error(StatusCode::GATEWAY_TIMEOUT, "S504", "gateway timeout (simulated: the work was done, the answer lost)")
}

/// An error answer in the counterparts' common shape.
pub fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(serde_json::json!({"success": false, "code": code, "error": message}))).into_response()
}

/// Sends a push until the hub answers it for good: a success or a refusal (4xx), not a 5xx or
/// silence. Waits out the simulator's own outage and backs off between tries; `tried` hears
/// of every try and whether it was answered. `None` when the simulator is shutting down.
pub async fn push_until_answered(
    request: impl Fn() -> reqwest::RequestBuilder,
    outage: impl Fn() -> bool,
    shutdown: &CancellationToken,
    mut tried: impl FnMut(bool),
) -> Option<(StatusCode, Bytes)> {
    let retry = bus::RetryPolicy { initial_ms: 50, max_ms: 2_000, multiplier: 2.0, max_attempts: 0 };
    let mut attempt = 0;
    loop {
        while outage() {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = shutdown.cancelled() => return None,
            }
        }
        attempt += 1;
        if let Ok(response) = request().send().await {
            let status = response.status();
            if status.is_success()
                || (status.is_client_error()
                    && status != StatusCode::TOO_MANY_REQUESTS
                    && status != StatusCode::REQUEST_TIMEOUT)
            {
                if let Ok(body) = response.bytes().await {
                    tried(true);
                    return Some((status, body));
                }
            }
        }
        tried(false);
        if retry.wait(attempt, shutdown).await {
            return None;
        }
    }
}

/// A call's `Idempotency-Key`, which the counterparts require of every creating call.
pub fn idempotency_key(headers: &HeaderMap) -> Result<String, BadRequest> {
    headers
        .get("Idempotency-Key")
        .and_then(|v| v.to_str().ok())
        .filter(|k| !k.is_empty())
        .map(str::to_string)
        .ok_or_else(|| BadRequest::field("Idempotency-Key", "header Idempotency-Key is required"))
}

/// The door of a counterpart API whose calls are signed: the faults in force strike first, then
/// the signature is checked. It counts the calls it turned away and the answers it lost.
pub struct SignedGate {
    app_id: String,
    app_secret: String,
    pub faults: Arc<FaultSwitch<Faults>>,
    rejected_calls: AtomicU64,
    failed_calls: AtomicU64,
    lost_answers: AtomicU64,
}

/// What a gate counted, as a simulator's statistics show it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateCounts {
    /// Refused for a bad signature or bad data (4xx).
    pub rejected_calls: u64,
    /// Failed by a simulated error or outage, nothing done.
    pub failed_calls: u64,
    /// Done, but answered as if the answer were lost.
    pub lost_answers: u64,
}

impl SignedGate {
    pub fn new(app_id: &str, app_secret: &str, faults: Faults) -> SignedGate {
        SignedGate {
            app_id: app_id.into(),
            app_secret: app_secret.into(),
            faults: FaultSwitch::new(faults),
            rejected_calls: AtomicU64::new(0),
            failed_calls: AtomicU64::new(0),
            lost_answers: AtomicU64::new(0),
        }
    }

    /// Faults, then the signature: the faults in force to serve the call under, or the answer
    /// to give instead.
    pub async fn admit(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Faults, Response> {
        let faults = self.faults.current();
        if let Some(failure) = faults.before_call().await {
            self.failed_calls.fetch_add(1, Ordering::Relaxed);
            return Err(failure);
        }
        let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
        check_signature(headers, method.as_str(), path, body, &self.app_id, &self.app_secret, now_ms())
            .map_err(|bad| self.reject(bad))?;
        Ok(faults)
    }

    /// Faults, the signature, then the JSON body and `check` on it: the faults in force and the
    /// request, or the answer to give instead (bad data refused naming the field).
    pub async fn admit_json<T: DeserializeOwned>(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
        check: impl FnOnce(&T) -> Result<(), BadRequest>,
    ) -> Result<(Faults, T), Response> {
        let faults = self.admit(method, uri, headers, body).await?;
        let request = parse_json::<T>(body).and_then(|request| check(&request).map(|_| request));
        request.map(|request| (faults, request)).map_err(|bad| self.reject(bad))
    }

    /// Refuses a call for bad data, naming the field.
    pub fn reject(&self, bad: BadRequest) -> Response {
        self.rejected_calls.fetch_add(1, Ordering::Relaxed);
        bad.into_response()
    }

    /// The lost answer to give instead, if the faults lose this call's answer (the work is done).
    pub fn lose(&self, faults: &Faults) -> Option<Response> {
        faults.loses_answer().then(|| {
            self.lost_answers.fetch_add(1, Ordering::Relaxed);
            lost_answer()
        })
    }

    /// The JSON answer to a call whose work is done, unless the faults lose it.
    pub fn answer(&self, faults: &Faults, status: StatusCode, body: impl Serialize) -> Response {
        self.lose(faults).unwrap_or_else(|| (status, Json(body)).into_response())
    }

    pub fn counts(&self) -> GateCounts {
        GateCounts {
            rejected_calls: self.rejected_calls.load(Ordering::Relaxed),
            failed_calls: self.failed_calls.load(Ordering::Relaxed),
            lost_answers: self.lost_answers.load(Ordering::Relaxed),
        }
    }
}

/// The pushes of a counterpart that signs them (the platform's applications, the bank's
/// payments): batches of whatever is waiting, each pushed until the hub answers it for good.
/// The faults in force apply: `duplicate_rate` pushes a batch twice, `outage` holds them.
pub struct SignedPusher {
    client: reqwest::Client,
    url: String,
    path: String,
    app_id: String,
    app_secret: String,
    faults: Arc<FaultSwitch<Faults>>,
    shutdown: CancellationToken,
    sent: AtomicU64,
    answered: AtomicU64,
}

impl SignedPusher {
    pub fn new(
        url: &str,
        app_id: &str,
        app_secret: &str,
        faults: Arc<FaultSwitch<Faults>>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<SignedPusher> {
        let path = url::Url::parse(url)?.path().to_string();
        Ok(SignedPusher {
            client: reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?,
            url: url.into(),
            path,
            app_id: app_id.into(),
            app_secret: app_secret.into(),
            faults,
            shutdown,
            sent: AtomicU64::new(0),
            answered: AtomicU64::new(0),
        })
    }

    /// A pusher to `push_url`, if the simulator was given one.
    pub fn to(
        push_url: Option<&str>,
        app_id: &str,
        app_secret: &str,
        faults: Arc<FaultSwitch<Faults>>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Option<Arc<SignedPusher>>> {
        push_url.map(|url| SignedPusher::new(url, app_id, app_secret, faults, shutdown).map(Arc::new)).transpose()
    }

    /// Pushes sent and pushes the hub answered, counting every try.
    pub fn counts(&self) -> (u64, u64) {
        (self.sent.load(Ordering::Relaxed), self.answered.load(Ordering::Relaxed))
    }

    /// Until shutdown: takes up to `max` waiting items, pushes the JSON `body` made of them, and
    /// hands each answer to `answered` with the batch.
    pub async fn run<T, B: Serialize>(
        &self,
        mut waiting: mpsc::UnboundedReceiver<T>,
        max: usize,
        body: impl Fn(&[T]) -> B,
        answered: impl Fn(&[T], StatusCode, &[u8]),
    ) {
        loop {
            let first = tokio::select! {
                first = waiting.recv() => first,
                _ = self.shutdown.cancelled() => None,
            };
            let Some(first) = first else { return };
            let mut batch = vec![first];
            while batch.len() < max {
                match waiting.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            let bytes = serde_json::to_vec(&body(&batch)).expect("a push body is serialisable");
            for _ in 0..1 + usize::from(strikes(self.faults.current().duplicate_rate)) {
                let request = || {
                    let timestamp = now_ms();
                    self.client
                        .post(&self.url)
                        .header(APP_ID_HEADER, &self.app_id)
                        .header(TIMESTAMP_HEADER, timestamp.to_string())
                        .header(SIGNATURE_HEADER, signature(&self.app_secret, "POST", &self.path, timestamp, &bytes))
                        .header(reqwest::header::CONTENT_TYPE, "application/json")
                        .body(bytes.clone())
                };
                let tried = |ok: bool| {
                    self.sent.fetch_add(1, Ordering::Relaxed);
                    self.answered.fetch_add(u64::from(ok), Ordering::Relaxed);
                };
                let Some((status, answer)) =
                    push_until_answered(request, || self.faults.current().outage, &self.shutdown, tried).await
                else {
                    return;
                };
                answered(&batch, status, &answer);
            }
        }
    }
}
