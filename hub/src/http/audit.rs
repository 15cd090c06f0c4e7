//! The data bureau's routes (verify, checkpoints, public key, searches, inclusion proofs,
//! exports, archives) and the middleware that writes administrative requests and reads of
//! personal data to the ledger.
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use axum::Json;
use connectors::framework::date_text;
use hub_core::access::Role::{DataBureau, Integrator};
use hub_core::access::{Rule, Seat};
use hub_web::{ApiResult, BadRequest, Route, ValidJson, ValidQuery};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::app::audit::{Asker, Ledger, PersonalDataShown};
use crate::app::reference::CurrentReference;
use crate::store::{now_ms, LedgerSearch};

#[derive(Clone)]
pub struct AuditState {
    pub ledger: Arc<Ledger>,
    /// Names the parties of the volume figures and the alerts.
    pub reference: CurrentReference,
}

const BUREAU: Rule = Rule::Roles(&[DataBureau]);
const OPERATORS: Rule = Rule::Roles(&[Integrator]);

pub fn routes() -> Vec<Route<AuditState>> {
    const TAG: &str = "data bureau";
    vec![
        Route::get("/api/v1/audit/verify", BUREAU, verify)
            .doc(TAG, "check the whole ledger and every checkpoint; names the first bad entry"),
        Route::get("/api/v1/audit/checkpoints", BUREAU, list_checkpoints).doc(TAG, "the signed checkpoints"),
        Route::post("/api/v1/audit/checkpoints", OPERATORS, make_checkpoint)
            .doc("integrators", "sign a checkpoint now"),
        Route::get("/api/v1/audit/public-key", Rule::Public, public_key)
            .doc(TAG, "the hub's Ed25519 public key, for checking offline"),
        Route::get("/api/v1/audit/entries", BUREAU, search)
            .doc(TAG, "entries about a person, a department's exchanges, exchanges with no case")
            .query::<SearchQuery>(),
        Route::get("/api/v1/audit/entries/{seq}/proof", BUREAU, proof).doc(TAG, "one entry with its inclusion proof"),
        // An export changes nothing: it signs what the ledger holds for the bureau to take away.
        Route::post("/api/v1/audit/exports", BUREAU, export)
            .doc(TAG, "a period's entries as a bundle that checks offline")
            .body::<ExportRequest>(),
        Route::get("/api/v1/audit/volume", BUREAU, volume)
            .doc(TAG, "exchanges per day and pair of parties")
            .query::<PeriodQuery>(),
        Route::get("/api/v1/audit/alerts", BUREAU, alerts).doc(TAG, "the anomaly rules' alerts").query::<PeriodQuery>(),
        Route::get("/api/v1/audit/archives", BUREAU, list_archives).doc(TAG, "the archive files of old entries"),
        Route::post("/api/v1/audit/archives", OPERATORS, make_archive)
            .doc("integrators", "archive the entries recorded before an instant now")
            .body::<ArchiveRequest>(),
    ]
}

impl PersonalDataShown {
    /// The response, marked as showing this, for `record_in_ledger` to write down.
    pub fn attach(self, mut response: Response) -> Response {
        response.extensions_mut().insert(self);
        response
    }
}

/// Whether a request is an administrative action the ledger keeps: anything that changes how
/// the hub runs (connectors, offsets, tokens, catalogue, reconciliation, the audit itself).
fn is_admin_action(method: &Method, path: &str) -> bool {
    method != Method::GET
        && [
            "/api/v1/connectors",
            "/api/v1/tokens",
            "/api/v1/catalogue/",
            "/api/v1/bank/reconciliations",
            "/api/v1/audit/",
        ]
        .iter()
        .any(|prefix| path.starts_with(prefix))
}

/// Who asks: the seat the gate found (never headers the caller could set), and the purpose the
/// caller states (`X-Purpose`, UTF-8: Chinese).
fn asker_of(request: &Request) -> Asker {
    let purpose =
        request.headers().get("x-purpose").and_then(|v| std::str::from_utf8(v.as_bytes()).ok()).unwrap_or_default();
    Asker::of(request.extensions().get::<Seat>(), purpose.to_string())
}

/// Middleware: every administrative request, whatever its outcome, and every response that
/// showed cases' personal data (`PersonalDataShown`) becomes a ledger entry naming the token's
/// holder, their unit and what was asked (or, for reads, the stated `X-Purpose`).
pub async fn record_in_ledger(State(ledger): State<Arc<Ledger>>, request: Request, next: Next) -> Response {
    let asker = asker_of(&request);
    if !is_admin_action(request.method(), request.uri().path()) {
        let path = request.uri().path().to_string();
        let mut response = next.run(request).await;
        if let Some(shown) = response.extensions_mut().remove::<PersonalDataShown>() {
            ledger.record_reads(&asker, &path, shown).await;
        }
        return response;
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 1 << 20).await else {
        return BadRequest {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            field: None,
            message: "an administrative request is at most 1 MiB".into(),
        }
        .into_response();
    };
    let action = format!("{} {}", parts.method, parts.uri.path());
    let response = next.run(Request::from_parts(parts, Body::from(bytes.clone()))).await;
    ledger.record_admin_request(&action, asker, &bytes, response.status().as_str()).await;
    response
}

async fn verify(State(state): State<AuditState>) -> ApiResult<Json<Value>> {
    let verification = state.ledger.verify().await?;
    Ok(Json(json!({"holds": verification.holds(), "verification": verification})))
}

async fn list_checkpoints(State(state): State<AuditState>) -> ApiResult<Response> {
    Ok(Json(state.ledger.checkpoints().await?).into_response())
}

async fn make_checkpoint(State(state): State<AuditState>) -> ApiResult<Response> {
    match state.ledger.checkpoint().await? {
        Some(checkpoint) => Ok(Json(checkpoint).into_response()),
        None => Err(BadRequest::conflict("the ledger is empty: nothing to sign").into()),
    }
}

async fn public_key(State(state): State<AuditState>) -> Json<Value> {
    Json(json!({"public_key": hex::encode(state.ledger.public_key().to_bytes())}))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct SearchQuery {
    /// The subject's ID number; the hub hashes it with the county key, the ledger never holds it.
    subject_id: Option<String>,
    /// The subject's keyed hash, as the data-sharing events carry it.
    subject: Option<String>,
    /// A department (or system) as requester or provider.
    department: Option<String>,
    /// Period, RFC 3339 instants; the last 30 days by default.
    from: Option<String>,
    until: Option<String>,
    /// Only exchanges with no case behind them.
    #[serde(default)]
    without_case: bool,
    limit: Option<i64>,
}

fn instant(field: &str, text: Option<&str>, default: i64) -> Result<i64, BadRequest> {
    match text {
        None => Ok(default),
        Some(text) => bus::offsets::instant_ms(text).ok_or_else(|| {
            BadRequest::field(field, format!("{field} is an RFC 3339 instant like 2026-11-23T08:00:00+08:00"))
        }),
    }
}

/// A period from optional RFC 3339 instants: the last 30 days by default.
fn period(from: Option<&str>, until: Option<&str>) -> Result<(i64, i64), BadRequest> {
    let now = now_ms();
    Ok((instant("from", from, now - 30 * 86_400_000)?, instant("until", until, now + 1)?))
}

/// Who touched a subject's data, what a department sent and received, exchanges without a case.
async fn search(State(state): State<AuditState>, ValidQuery(query): ValidQuery<SearchQuery>) -> ApiResult<Response> {
    let (from_ms, until_ms) = period(query.from.as_deref(), query.until.as_deref())?;
    let data_subject = query.subject_id.as_deref().map(|id| state.ledger.subject_of(id)).or(query.subject);
    let search = LedgerSearch {
        data_subject,
        department: query.department,
        from_ms,
        until_ms,
        without_case: query.without_case,
        limit: query.limit.unwrap_or(1_000),
    };
    Ok(Json(state.ledger.search(&search).await?).into_response())
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct PeriodQuery {
    /// RFC 3339 instants; the last 30 days by default.
    from: Option<String>,
    until: Option<String>,
}

/// Daily volume of exchanges per pair of parties, the parties named.
async fn volume(
    State(state): State<AuditState>,
    ValidQuery(query): ValidQuery<PeriodQuery>,
) -> ApiResult<Json<Vec<Value>>> {
    let (from_ms, until_ms) = period(query.from.as_deref(), query.until.as_deref())?;
    let reference = state.reference.get();
    let rows = state.ledger.volume(from_ms, until_ms).await?;
    Ok(Json(
        rows.into_iter()
            .map(|(day, requester, provider, exchanges)| {
                json!({
                    "day": date_text(day),
                    "requester_department": requester,
                    "requester_name": reference.unit_name(&requester),
                    "provider": provider,
                    "provider_name": reference.unit_name(&provider),
                    "exchanges": exchanges,
                })
            })
            .collect(),
    ))
}

/// The anomaly rules' alerts in a period, newest first, the parties named.
async fn alerts(
    State(state): State<AuditState>,
    ValidQuery(query): ValidQuery<PeriodQuery>,
) -> ApiResult<Json<Vec<Value>>> {
    let (from_ms, until_ms) = period(query.from.as_deref(), query.until.as_deref())?;
    let reference = state.reference.get();
    let alerts = state.ledger.alerts(from_ms, until_ms).await?;
    Ok(Json(
        alerts
            .iter()
            .map(|alert| {
                let mut named = serde_json::to_value(alert).expect("an alert serialises");
                named["requester_name"] = json!(reference.unit_name(&alert.requester));
                named["provider_name"] = json!(reference.unit_name(&alert.provider));
                named
            })
            .collect(),
    ))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct ExportRequest {
    /// RFC 3339 instants.
    from: String,
    until: String,
}

/// A period's entries as a signed bundle; the request itself is an administrative entry.
async fn export(State(state): State<AuditState>, ValidJson(request): ValidJson<ExportRequest>) -> ApiResult<Response> {
    let (from_ms, until_ms) = (instant("from", Some(&request.from), 0)?, instant("until", Some(&request.until), 0)?);
    if from_ms >= until_ms {
        return Err(BadRequest::field("until", "until must come after from").into());
    }
    match state.ledger.export(from_ms, until_ms).await? {
        Some(bundle) => Ok(Json(bundle).into_response()),
        None => Err(BadRequest::not_found("no entries were recorded in that period").into()),
    }
}

async fn list_archives(State(state): State<AuditState>) -> ApiResult<Response> {
    Ok(Json(state.ledger.archives().await?).into_response())
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct ArchiveRequest {
    /// RFC 3339 instant: entries recorded before it are archived.
    before: String,
}

/// Archives the entries recorded before an instant now, rather than at the retention's hour.
async fn make_archive(
    State(state): State<AuditState>,
    ValidJson(request): ValidJson<ArchiveRequest>,
) -> ApiResult<Response> {
    let before_ms = instant("before", Some(&request.before), 0)?;
    if before_ms > now_ms() {
        return Err(BadRequest::field("before", "before must not be in the future").into());
    }
    match state.ledger.archive(before_ms).await? {
        Some(archive) => Ok(Json(archive).into_response()),
        None => Err(BadRequest::not_found("no entry held was recorded before that instant").into()),
    }
}

async fn proof(State(state): State<AuditState>, Path(seq): Path<i64>) -> ApiResult<Response> {
    match state.ledger.proof(seq).await? {
        Some(proven) => Ok(Json(proven).into_response()),
        None => Err(BadRequest::not_found(format!("entry {seq} is not covered by a checkpoint yet")).into()),
    }
}
