//! A stand-in for the seal service: one Ed25519 key per seal, derived from the simulator's
//! secret and the seal's legend; signs a document's digest (idempotent by key), publishes each
//! seal's public key, and checks every request's signature. Faults through `PUT /admin/faults`.
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use ed25519_dalek::{Signer, SigningKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::protocol::{SealKey, SignRequest, Signed};
use crate::framework::now_ms;
pub use crate::simulation::RunningSimulator;
use crate::simulation::{error, idempotency_key, serve, Faults, GateCounts, SignedGate};
use hub_web::BadRequest;

#[derive(Debug, Clone)]
pub struct SimulatorConfig {
    /// The application allowed in, and its secret.
    pub app_id: String,
    pub app_secret: String,
    /// Whence the seals' keys derive: the same secret gives the same keys after a restart.
    pub key_secret: String,
    pub faults: Faults,
}

/// One signing as the service registered it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SigningRecord {
    pub seal_name: String,
    pub document_number: String,
    pub case_number: String,
    pub document_sha256: String,
    pub key_id: String,
    pub signature: String,
    /// Calls that found this signing already made (idempotent replays).
    pub replays: u32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Stats {
    pub signings: usize,
    pub sign_calls: u64,
    pub replays: u64,
    pub key_lookups: u64,
    #[serde(flatten)]
    pub calls: GateCounts,
}

#[derive(Default)]
struct Register {
    /// Each signing by its idempotency key.
    by_key: BTreeMap<String, SigningRecord>,
    sign_calls: u64,
    replays: u64,
    key_lookups: u64,
}

struct Simulator {
    gate: SignedGate,
    key_secret: String,
    register: Mutex<Register>,
}

impl Simulator {
    fn seal_key(&self, seal_name: &str) -> SigningKey {
        let seed: [u8; 32] = Sha256::digest(format!("{}\u{0}{seal_name}", self.key_secret).as_bytes()).into();
        SigningKey::from_bytes(&seed)
    }

    /// Every seal's key id is the first 16 hex digits of the SHA-256 of its public key.
    fn key_id(key: &SigningKey) -> String {
        hex::encode(Sha256::digest(key.verifying_key().as_bytes()))[..16].to_string()
    }
}

pub fn spawn(listener: TcpListener, config: SimulatorConfig) -> anyhow::Result<RunningSimulator> {
    let shutdown = CancellationToken::new();
    let gate = SignedGate::new(&config.app_id, &config.app_secret, config.faults);
    let faults = gate.faults.clone();
    let simulator = Arc::new(Simulator { gate, key_secret: config.key_secret, register: Default::default() });
    let app = Router::new()
        .route("/api/v1/seals/sign", post(sign))
        .route("/api/v1/keys/{key_id}", get(key))
        .route("/admin/signings", get(signings))
        .route("/admin/stats", get(stats))
        .with_state(simulator)
        .merge(faults.routes());
    serve(listener, app, shutdown, "seal service")
}

fn check_sign(request: &SignRequest) -> Result<(), BadRequest> {
    if request.seal_name.trim().is_empty() {
        return Err(BadRequest::field("seal_name", "seal_name must not be empty"));
    }
    if request.document_sha256.len() != 64 || hex::decode(&request.document_sha256).is_err() {
        return Err(BadRequest::field("document_sha256", "document_sha256 is 64 hex digits"));
    }
    Ok(())
}

async fn sign(
    State(sim): State<Arc<Simulator>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (faults, request) = match sim.gate.admit_json::<SignRequest>(&method, &uri, &headers, &body, check_sign).await {
        Ok(admitted) => admitted,
        Err(answer) => return answer,
    };
    let idempotency_key = match idempotency_key(&headers) {
        Ok(key) => key,
        Err(bad) => return sim.gate.reject(bad),
    };
    let signed = {
        let mut register = sim.register.lock().expect("register lock");
        register.sign_calls += 1;
        if let Some(record) = register.by_key.get_mut(&idempotency_key) {
            record.replays += 1;
            let (key_id, signature) = (record.key_id.clone(), record.signature.clone());
            register.replays += 1;
            Signed { key_id, signature, signed_at: now_ms(), duplicate: true }
        } else {
            let key = sim.seal_key(&request.seal_name);
            let digest = hex::decode(&request.document_sha256).expect("checked above");
            let record = SigningRecord {
                seal_name: request.seal_name.clone(),
                document_number: request.document_number.clone(),
                case_number: request.case_number.clone(),
                document_sha256: request.document_sha256.clone(),
                key_id: Simulator::key_id(&key),
                signature: hex::encode(key.sign(&digest).to_bytes()),
                replays: 0,
            };
            let signed = Signed {
                key_id: record.key_id.clone(),
                signature: record.signature.clone(),
                signed_at: now_ms(),
                duplicate: false,
            };
            register.by_key.insert(idempotency_key, record);
            signed
        }
    };
    sim.gate.answer(&faults, StatusCode::OK, signed)
}

/// A seal's public key, for any seal that signed here: no key is given out for a seal the
/// service never used.
async fn key(
    State(sim): State<Arc<Simulator>>,
    Path(key_id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let faults = match sim.gate.admit(&method, &uri, &headers, &[]).await {
        Ok(faults) => faults,
        Err(answer) => return answer,
    };
    let seal_name = {
        let mut register = sim.register.lock().expect("register lock");
        register.key_lookups += 1;
        register.by_key.values().find(|r| r.key_id == key_id).map(|r| r.seal_name.clone())
    };
    let Some(seal_name) = seal_name else {
        return error(StatusCode::NOT_FOUND, "K404", &format!("no seal key {key_id}"));
    };
    let public_key = hex::encode(sim.seal_key(&seal_name).verifying_key().as_bytes());
    sim.gate.answer(&faults, StatusCode::OK, SealKey { key_id, seal_name, algorithm: "Ed25519".into(), public_key })
}

async fn signings(State(sim): State<Arc<Simulator>>) -> Json<Vec<SigningRecord>> {
    Json(sim.register.lock().expect("register lock").by_key.values().cloned().collect())
}

async fn stats(State(sim): State<Arc<Simulator>>) -> Json<Stats> {
    let register = sim.register.lock().expect("register lock");
    Json(Stats {
        signings: register.by_key.len(),
        sign_calls: register.sign_calls,
        replays: register.replays,
        key_lookups: register.key_lookups,
        calls: sim.gate.counts(),
    })
}
