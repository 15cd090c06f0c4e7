//! A stand-in for the e-certificate repository: issues certificates with GB/T 36904-style
//! identifiers (idempotent by key), answers lookups only with a stated purpose, revokes, and
//! checks every request's signature. Faults through `PUT /admin/faults`.
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::identifier::CertificateId;
use super::protocol::{Certificate, CertificateList, IssueCertificate, Issued, LookupQuery, Revoke, Revoked};
pub use crate::simulation::RunningSimulator;
use crate::simulation::{error, idempotency_key, serve, Faults, GateCounts, SignedGate};
use hub_web::{parse_json, BadRequest};

#[derive(Debug, Clone)]
pub struct SimulatorConfig {
    /// The application allowed in, and its secret.
    pub app_id: String,
    pub app_secret: String,
    pub faults: Faults,
}

/// What the repository holds of one certificate, for tests and operators.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CertificateRecord {
    pub certificate: Certificate,
    /// Issue calls that found the certificate already there (idempotent replays).
    pub replays: u32,
    pub revocation_reason: Option<String>,
}

/// One lookup as the repository logged it: who asked, why, for which case.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LookupRecord {
    pub requester: String,
    pub purpose: String,
    pub case_number: Option<String>,
    pub found: usize,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Stats {
    pub certificates: usize,
    pub issue_calls: u64,
    pub replays: u64,
    pub revocations: u64,
    pub lookups: u64,
    #[serde(flatten)]
    pub calls: GateCounts,
}

#[derive(Default)]
struct Holdings {
    certificates: BTreeMap<String, CertificateRecord>,
    /// Idempotency key of each issue, and the certificate it made.
    issued_by_key: BTreeMap<String, String>,
    lookups: Vec<LookupRecord>,
    serial: u64,
}

struct Simulator {
    gate: SignedGate,
    holdings: Mutex<Holdings>,
    counters: Mutex<Stats>,
}

pub fn spawn(listener: TcpListener, config: SimulatorConfig) -> anyhow::Result<RunningSimulator> {
    let shutdown = CancellationToken::new();
    let gate = SignedGate::new(&config.app_id, &config.app_secret, config.faults);
    let faults = gate.faults.clone();
    let simulator = Arc::new(Simulator { gate, holdings: Default::default(), counters: Default::default() });
    let app = Router::new()
        .route("/api/v1/certificates", post(issue).get(find))
        .route("/api/v1/certificates/{id}", get(fetch))
        .route("/api/v1/certificates/{id}/revocation", post(revoke))
        .route("/admin/certificates", get(list).post(seed))
        .route("/admin/lookups", get(lookups))
        .route("/admin/stats", get(stats))
        .with_state(simulator)
        .merge(faults.routes());
    serve(listener, app, shutdown, "e-certificate")
}

impl Simulator {
    fn make_certificate(&self, holdings: &mut Holdings, request: &IssueCertificate) -> Result<Certificate, BadRequest> {
        holdings.serial += 1;
        let year = request.issue_date.get(..4).unwrap_or("2026");
        let id =
            CertificateId::new(&request.type_code, &request.issuer_code, &format!("{year}{:08}", holdings.serial), 1)
                .map_err(|e| BadRequest::field("type_code", e.to_string()))?;
        Ok(Certificate {
            certificate_id: id.to_string(),
            type_code: request.type_code.clone(),
            certificate_name: request.certificate_name.clone(),
            number: request.number.clone(),
            holder_name: request.holder_name.clone(),
            holder_code: request.holder_code.clone(),
            holder_code_kind: request.holder_code_kind.clone(),
            issuer: request.issuer.clone(),
            issuer_code: request.issuer_code.clone(),
            issue_date: request.issue_date.clone(),
            valid_until: request.valid_until.clone(),
            area_code: request.area_code.clone(),
            status: "valid".into(),
        })
    }
}

fn check_issue(request: &IssueCertificate) -> Result<(), BadRequest> {
    let required = [
        ("type_code", &request.type_code),
        ("certificate_name", &request.certificate_name),
        ("number", &request.number),
        ("holder_name", &request.holder_name),
        ("holder_code", &request.holder_code),
        ("issuer", &request.issuer),
        ("issuer_code", &request.issuer_code),
        ("area_code", &request.area_code),
    ];
    for (field, value) in required {
        if value.trim().is_empty() {
            return Err(BadRequest::field(field, format!("{field} must not be empty")));
        }
    }
    if !["111", "001"].contains(&request.holder_code_kind.as_str()) {
        return Err(BadRequest::field(
            "holder_code_kind",
            "holder_code_kind is 111 (resident ID) or 001 (unified social credit code)",
        ));
    }
    for (field, date) in [("issue_date", Some(&request.issue_date)), ("valid_until", request.valid_until.as_ref())] {
        if let Some(date) = date {
            if time::Date::parse(date, time::macros::format_description!("[year]-[month]-[day]")).is_err() {
                return Err(BadRequest::field(field, format!("{field} must be YYYY-MM-DD, not {date:?}")));
            }
        }
    }
    Ok(())
}

async fn issue(
    State(sim): State<Arc<Simulator>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (faults, request) =
        match sim.gate.admit_json::<IssueCertificate>(&method, &uri, &headers, &body, check_issue).await {
            Ok(admitted) => admitted,
            Err(answer) => return answer,
        };
    let key = match idempotency_key(&headers) {
        Ok(key) => key,
        Err(bad) => return sim.gate.reject(bad),
    };
    let (status, issued) = {
        let mut holdings = sim.holdings.lock().expect("holdings lock");
        let mut counters = sim.counters.lock().expect("stats lock");
        counters.issue_calls += 1;
        match holdings.issued_by_key.get(&key).cloned() {
            Some(id) => {
                counters.replays += 1;
                let record = holdings.certificates.get_mut(&id).expect("issued certificates are held");
                record.replays += 1;
                (
                    StatusCode::OK,
                    Issued { certificate_id: id, status: record.certificate.status.clone(), duplicate: true },
                )
            }
            None => {
                let certificate = match sim.make_certificate(&mut holdings, &request) {
                    Ok(certificate) => certificate,
                    Err(bad) => {
                        drop(counters);
                        return sim.gate.reject(bad);
                    }
                };
                let id = certificate.certificate_id.clone();
                holdings.issued_by_key.insert(key, id.clone());
                holdings
                    .certificates
                    .insert(id.clone(), CertificateRecord { certificate, replays: 0, revocation_reason: None });
                (StatusCode::CREATED, Issued { certificate_id: id, status: "valid".into(), duplicate: false })
            }
        }
    };
    sim.gate.answer(&faults, status, issued)
}

/// Who asks and why: a lookup without a purpose is refused.
fn lookup_record(
    query: &Result<Query<LookupQuery>, QueryRejection>,
) -> Result<(&LookupQuery, LookupRecord), BadRequest> {
    let Query(query) = query.as_ref().map_err(|rejection| BadRequest::field("query", rejection.body_text()))?;
    let given = |value: &Option<String>| value.as_ref().map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let purpose = given(&query.purpose)
        .ok_or_else(|| BadRequest::field("purpose", "every lookup must state its purpose (用证事由)"))?;
    let requester = given(&query.requester)
        .ok_or_else(|| BadRequest::field("requester", "a lookup names the requesting department"))?;
    Ok((query, LookupRecord { requester, purpose, case_number: given(&query.case_number), found: 0 }))
}

/// Logs a lookup with what it found.
fn log_lookup(holdings: &mut Holdings, mut record: LookupRecord, found: usize) {
    record.found = found;
    holdings.lookups.push(record);
}

async fn fetch(
    State(sim): State<Arc<Simulator>>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    query: Result<Query<LookupQuery>, QueryRejection>,
) -> Response {
    let faults = match sim.gate.admit(&method, &uri, &headers, b"").await {
        Ok(faults) => faults,
        Err(answer) => return answer,
    };
    let record = match lookup_record(&query) {
        Ok((_, record)) => record,
        Err(bad) => return sim.gate.reject(bad),
    };
    let found = {
        let mut holdings = sim.holdings.lock().expect("holdings lock");
        let found = holdings.certificates.get(&id).map(|r| r.certificate.clone());
        log_lookup(&mut holdings, record, usize::from(found.is_some()));
        found
    };
    sim.counters.lock().expect("stats lock").lookups += 1;
    match found {
        Some(certificate) => sim.gate.answer(&faults, StatusCode::OK, certificate),
        None => error(StatusCode::NOT_FOUND, "C404", &format!("no certificate {id}")),
    }
}

async fn find(
    State(sim): State<Arc<Simulator>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    query: Result<Query<LookupQuery>, QueryRejection>,
) -> Response {
    let faults = match sim.gate.admit(&method, &uri, &headers, b"").await {
        Ok(faults) => faults,
        Err(answer) => return answer,
    };
    let (query, record) = match lookup_record(&query) {
        Ok(found) => found,
        Err(bad) => return sim.gate.reject(bad),
    };
    let Some(holder_code) = query.holder_code.clone().filter(|h| !h.is_empty()) else {
        return sim.gate.reject(BadRequest::field("holder_code", "a lookup by holder names the holder_code"));
    };
    let type_code = query.type_code.clone();
    let certificates: Vec<Certificate> = {
        let mut holdings = sim.holdings.lock().expect("holdings lock");
        let found: Vec<Certificate> = holdings
            .certificates
            .values()
            .map(|r| &r.certificate)
            .filter(|c| c.holder_code == holder_code && type_code.as_ref().is_none_or(|t| *t == c.type_code))
            .cloned()
            .collect();
        log_lookup(&mut holdings, record, found.len());
        found
    };
    sim.counters.lock().expect("stats lock").lookups += 1;
    sim.gate.answer(&faults, StatusCode::OK, CertificateList { certificates })
}

async fn revoke(
    State(sim): State<Arc<Simulator>>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let faults = match sim.gate.admit(&method, &uri, &headers, &body).await {
        Ok(faults) => faults,
        Err(answer) => return answer,
    };
    let request = match parse_json::<Revoke>(&body) {
        Ok(request) if !request.reason.trim().is_empty() => request,
        Ok(_) => return sim.gate.reject(BadRequest::field("reason", "a revocation states its reason")),
        Err(bad) => return sim.gate.reject(bad),
    };
    let revoked = {
        let mut holdings = sim.holdings.lock().expect("holdings lock");
        let Some(record) = holdings.certificates.get_mut(&id) else {
            return error(StatusCode::NOT_FOUND, "C404", &format!("no certificate {id}"));
        };
        if record.revocation_reason.is_none() {
            record.revocation_reason = Some(request.reason);
            record.certificate.status = "revoked".into();
            sim.counters.lock().expect("stats lock").revocations += 1;
        }
        Revoked { certificate_id: id, status: record.certificate.status.clone() }
    };
    sim.gate.answer(&faults, StatusCode::OK, revoked)
}

/// Puts a certificate into the repository directly, as if another authority had issued it.
async fn seed(State(sim): State<Arc<Simulator>>, body: Bytes) -> Response {
    let request: IssueCertificate = match parse_json(&body).and_then(|r: IssueCertificate| check_issue(&r).map(|_| r)) {
        Ok(request) => request,
        Err(bad) => return bad.into_response(),
    };
    let mut holdings = sim.holdings.lock().expect("holdings lock");
    match sim.make_certificate(&mut holdings, &request) {
        Ok(certificate) => {
            holdings.certificates.insert(
                certificate.certificate_id.clone(),
                CertificateRecord { certificate: certificate.clone(), replays: 0, revocation_reason: None },
            );
            (StatusCode::CREATED, Json(certificate)).into_response()
        }
        Err(bad) => bad.into_response(),
    }
}

async fn list(State(sim): State<Arc<Simulator>>) -> Json<Vec<CertificateRecord>> {
    Json(sim.holdings.lock().expect("holdings lock").certificates.values().cloned().collect())
}

async fn lookups(State(sim): State<Arc<Simulator>>) -> Json<Vec<LookupRecord>> {
    Json(sim.holdings.lock().expect("holdings lock").lookups.clone())
}

async fn stats(State(sim): State<Arc<Simulator>>) -> Json<Stats> {
    let mut stats = sim.counters.lock().expect("stats lock").clone();
    stats.calls = sim.gate.counts();
    stats.certificates = sim.holdings.lock().expect("holdings lock").certificates.len();
    Json(stats)
}
