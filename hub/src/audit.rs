//! The data-sharing audit: the ledger's adapter. Data-sharing events from the connectors (topic
//! hub.audit.data-sharing) and the API's administrative actions are appended to the one
//! hash chain; checkpoints are signed at an interval and on demand; `verify` walks it all.
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use connectors::framework::{date_text, BadRequest};
use serde::{Deserialize, Serialize};
use serde_json::json;
use bus::{BatchHandler, Delivery, Rejected};
use contracts::{DataShared, Event, LedgerCheckpointSigned};
use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::{Digest as _, Sha256};
use tokio_util::sync::CancellationToken;

use crate::domain::ledger::{chain_hash, inclusion_proof, ChainCheck, Checkpoint, EntryKind, Hash, InclusionProof, Record, StoredEntry, Verification, GENESIS};
use crate::store::{now_ms, LedgerSearch, Store, LEDGER_PAGE};

/// The consumer group that writes data-sharing events into the ledger.
pub const CONSUMER: &str = "hub-audit";

/// Who the hub is in the ledger, as requester of its own administrative actions.
const HUB_SYSTEM: &str = "county-hub";

/// Most bytes of an administrative request kept in its entry (the reason for a pause, say).
const KEPT_REQUEST_BYTES: usize = 2_000;

/// The hub's Ed25519 signing key, from its 32-byte seed in hex; the development key when unset.
pub fn signing_key(seed_hex: &str) -> anyhow::Result<SigningKey> {
    if seed_hex.is_empty() {
        tracing::warn!("audit.signing_key is not set: ledger checkpoints are signed with the development key");
        return Ok(SigningKey::from_bytes(&Sha256::digest(b"county hub development ledger key").into()));
    }
    let seed: [u8; 32] = hex::decode(seed_hex.trim())
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| anyhow::anyhow!("audit.signing_key must be 64 hex digits (an Ed25519 seed)"))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Reads a public key given as 64 hex digits.
pub fn public_key(hex_text: &str) -> anyhow::Result<VerifyingKey> {
    let bytes: [u8; 32] = hex::decode(hex_text.trim()).ok().and_then(|b| b.try_into().ok()).ok_or_else(|| anyhow::anyhow!("a public key is 64 hex digits"))?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| anyhow::anyhow!("{hex_text} is not an Ed25519 public key"))
}

pub struct Ledger {
    store: Store,
    key: SigningKey,
    /// The county's key naming data subjects (HMAC of the ID number).
    subject_key: Vec<u8>,
    /// One append at a time: each entry chains to the one before.
    appending: tokio::sync::Mutex<()>,
}

impl Ledger {
    pub fn new(store: Store, key: SigningKey, subject_key: Vec<u8>) -> Ledger {
        Ledger { store, key, subject_key, appending: Default::default() }
    }

    pub fn public_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// Appends the records not yet in the ledger; answers how many were new.
    pub async fn record(&self, records: &[Record]) -> anyhow::Result<usize> {
        self.append(records, None).await
    }

    /// Appends records taken from events, marking every event of `applied` as applied by
    /// `consumer` in the same transaction.
    async fn append(&self, records: &[Record], applied: Option<(&str, Vec<&str>)>) -> anyhow::Result<usize> {
        let _turn = self.appending.lock().await;
        let mut tx = self.store.begin().await?;
        let appended = tx.append_ledger(records).await?;
        if let Some((consumer, event_ids)) = applied {
            let applied: Vec<(&str, &str)> = event_ids.into_iter().map(|id| (id, "recorded")).collect();
            tx.mark_applied(consumer, &applied).await?;
        }
        tx.commit().await?;
        Ok(appended)
    }

    async fn hashes(&self) -> anyhow::Result<Vec<Hash>> {
        let mut hashes = Vec::new();
        self.store.walk_ledger(|row| hashes.push(row.hash)).await?;
        Ok(hashes)
    }

    /// Signs a checkpoint over everything recorded so far, unless the newest one already covers
    /// it; answers the newest checkpoint either way (None for an empty ledger).
    pub async fn checkpoint(&self) -> anyhow::Result<Option<Checkpoint>> {
        let _turn = self.appending.lock().await;
        let hashes = self.hashes().await?;
        let newest = self.store.checkpoints().await?.pop();
        if hashes.is_empty() || newest.as_ref().is_some_and(|c| c.size == hashes.len() as i64) {
            return Ok(newest);
        }
        let checkpoint = Checkpoint::sign(&self.key, &hashes, now_ms());
        // Kept and published together (outbox): the bureau's copy on the topic never misses one.
        let published = LedgerCheckpointSigned {
            event_id: format!("ledger-checkpoint/{}", checkpoint.size),
            case_number: String::new(),
            occurred_at: checkpoint.created_at,
            size: checkpoint.size,
            last_hash: hex::encode(checkpoint.last_hash),
            merkle_root: hex::encode(checkpoint.merkle_root),
            public_key: hex::encode(checkpoint.public_key),
            signature: hex::encode(checkpoint.signature),
        };
        let mut tx = self.store.begin().await?;
        tx.save_checkpoint(&checkpoint).await?;
        tx.enqueue(&[published.into()]).await?;
        tx.commit().await?;
        tracing::info!(size = checkpoint.size, root = hex::encode(checkpoint.merkle_root), "ledger checkpoint signed");
        Ok(Some(checkpoint))
    }

    /// Checks the whole chain and every checkpoint against the hub's public key. Pages of rows
    /// are read ahead, on as many connections as reading has, while earlier ones are hashed.
    pub async fn verify(&self) -> anyhow::Result<Verification> {
        const READ_AHEAD: usize = 2;
        let read_page = |from: i64| {
            let store = self.store.clone();
            tokio::spawn(async move { store.ledger_rows(from, LEDGER_PAGE).await })
        };
        let mut starts = self.store.ledger_pages().await?;
        let mut reading: std::collections::VecDeque<_> = starts.by_ref().take(READ_AHEAD).map(read_page).collect();
        let mut check = ChainCheck::new(1, GENESIS);
        while let Some(next) = reading.pop_front() {
            let page = next.await??;
            reading.extend(starts.next().map(read_page));
            check = tokio::task::spawn_blocking(move || {
                check.push_page(&page);
                check
            })
            .await?;
        }
        Ok(check.finish(&self.store.checkpoints().await?, &self.public_key()))
    }

    /// The entries recorded in a period with a checkpoint covering them and the last one's
    /// inclusion proof: a bundle that checks offline with the public key alone (the entries
    /// chain to each other, the last one is in the signed checkpoint).
    pub async fn export(&self, from_ms: i64, until_ms: i64) -> anyhow::Result<Option<ExportBundle>> {
        let entries: Vec<ExportedEntry> = self.store.ledger_rows_recorded(from_ms, until_ms).await?.into_iter().map(ExportedEntry::from).collect();
        let Some(last) = entries.last() else {
            return Ok(None);
        };
        self.checkpoint().await?;
        let Some(EntryProof { proof, checkpoint, .. }) = self.proof(last.seq).await? else {
            anyhow::bail!("the checkpoint just signed does not cover entry {}", last.seq);
        };
        Ok(Some(ExportBundle { from_ms, until_ms, entries, last_entry_proof: proof, checkpoint }))
    }

    /// Proof that entry `seq` is covered by the newest checkpoint, with the entry and that
    /// checkpoint: all anyone needs, with the hub's public key, to check it offline.
    pub async fn proof(&self, seq: i64) -> anyhow::Result<Option<EntryProof>> {
        let Some(checkpoint) = self.store.checkpoints().await?.pop() else {
            return Ok(None);
        };
        let hashes = self.hashes().await?;
        let covered = &hashes[..(checkpoint.size as usize).min(hashes.len())];
        let (Some(proof), Some(entry)) = (inclusion_proof(covered, seq), self.store.ledger_rows(seq, 1).await?.pop()) else {
            return Ok(None);
        };
        let entry = ProvenEntry { body: String::from_utf8(entry.body)?, previous_hash: entry.previous_hash };
        Ok(Some(EntryProof { entry, proof, checkpoint }))
    }
}

/// One entry with its inclusion proof and the checkpoint it is proven against.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EntryProof {
    pub entry: ProvenEntry,
    pub proof: InclusionProof,
    pub checkpoint: Checkpoint,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProvenEntry {
    /// The entry's canonical JSON, as hashed.
    pub body: String,
    #[serde(with = "hex::serde")]
    pub previous_hash: Hash,
}

/// A period of the ledger, exported for the data bureau.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExportBundle {
    pub from_ms: i64,
    pub until_ms: i64,
    pub entries: Vec<ExportedEntry>,
    pub last_entry_proof: InclusionProof,
    pub checkpoint: Checkpoint,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExportedEntry {
    pub seq: i64,
    /// The entry's canonical JSON, as hashed.
    pub body: String,
    #[serde(with = "hex::serde")]
    pub previous_hash: Hash,
    #[serde(with = "hex::serde")]
    pub hash: Hash,
}

impl From<StoredEntry> for ExportedEntry {
    fn from(stored: StoredEntry) -> ExportedEntry {
        ExportedEntry { seq: stored.seq, body: String::from_utf8_lossy(&stored.body).into_owned(), previous_hash: stored.previous_hash, hash: stored.hash }
    }
}

impl ExportBundle {
    fn check(&self, trusted: &VerifyingKey) -> Result<String, String> {
        if !self.checkpoint.signed_by(trusted) {
            return Err("the bundle's checkpoint is not signed by this key".into());
        }
        let mut previous: Option<&ExportedEntry> = None;
        for entry in &self.entries {
            if chain_hash(&entry.previous_hash, entry.body.as_bytes()) != entry.hash || !entry.body.starts_with(&format!("{{\"seq\":{},", entry.seq)) {
                return Err(format!("entry {} does not match its hash", entry.seq));
            }
            // Entries of a period follow each other in the chain.
            if previous.is_some_and(|p| p.seq + 1 != entry.seq || p.hash != entry.previous_hash) {
                return Err(format!("entry {} does not follow the entry before it in the bundle", entry.seq));
            }
            previous = Some(entry);
        }
        let last = previous.ok_or("the bundle holds no entries")?;
        if self.last_entry_proof.seq != last.seq || self.last_entry_proof.entry_hash != last.hash || !self.last_entry_proof.holds_for(&self.checkpoint) {
            return Err(format!("the bundle's last entry {} is not proven in its checkpoint", last.seq));
        }
        Ok(format!("{} entries ({} to {}) chain together and are covered by the checkpoint at {} entries signed by this key", self.entries.len(), self.entries[0].seq, last.seq, self.checkpoint.size))
    }
}

/// Checks, with the hub's public key alone, an exported checkpoint, an entry's proof (the JSON
/// of `GET /api/v1/audit/entries/{seq}/proof`) or a period's bundle (`POST /api/v1/audit/exports`);
/// answers what holds, or what does not.
pub fn check_offline(exported: &str, trusted: &VerifyingKey) -> Result<String, String> {
    if let Ok(bundle) = serde_json::from_str::<ExportBundle>(exported) {
        return bundle.check(trusted);
    }
    if let Ok(proven) = serde_json::from_str::<EntryProof>(exported) {
        if !proven.checkpoint.signed_by(trusted) {
            return Err("the checkpoint is not signed by this key".into());
        }
        if chain_hash(&proven.entry.previous_hash, proven.entry.body.as_bytes()) != proven.proof.entry_hash {
            return Err(format!("entry {}'s content does not match its hash", proven.proof.seq));
        }
        if !proven.proof.holds_for(&proven.checkpoint) {
            return Err(format!("entry {} is not included in the checkpoint at {} entries", proven.proof.seq, proven.checkpoint.size));
        }
        return Ok(format!("entry {} is included, as shown, in the checkpoint at {} entries signed by this key", proven.proof.seq, proven.checkpoint.size));
    }
    let checkpoint: Checkpoint = serde_json::from_str(exported).map_err(|e| format!("neither a checkpoint nor an entry proof: {e}"))?;
    if checkpoint.signed_by(trusted) {
        Ok(format!("the checkpoint at {} entries (Merkle root {}) is signed by this key", checkpoint.size, hex::encode(checkpoint.merkle_root)))
    } else {
        Err("the checkpoint is not signed by this key".into())
    }
}

impl Ledger {
    /// Records that someone read a case's personal data through the API.
    async fn record_read(&self, parts: &axum::http::request::Parts, case_number: String, what: String) {
        let data_subject = match self.store.case(&case_number).await {
            Ok(Some(record)) => Some(contracts::data_subject(&self.subject_key, &record.case.application.applicant.id_number)),
            _ => None,
        };
        let record = Record {
            kind: EntryKind::Read,
            source_id: format!("read/{}", uuid::Uuid::now_v7()),
            occurred_at: now_ms(),
            action: format!("GET {}", parts.uri.path()),
            requester_system: HUB_SYSTEM.into(),
            requester_department: header(parts, "x-department").unwrap_or_default(),
            requester_officer: header(parts, "x-officer"),
            provider: HUB_SYSTEM.into(),
            data_subject,
            data_items: vec![what],
            legal_basis: String::new(),
            purpose: header(parts, "x-purpose").unwrap_or_default(),
            case_number: Some(case_number),
            channel: None,
            document_sha256: None,
            outcome: "200".into(),
        };
        if let Err(error) = self.record(&[record]).await {
            tracing::error!(error = format!("{error:#}"), "a read of personal data could not be written to the audit ledger");
        }
    }
}

/// A data-sharing event as a ledger record.
pub fn exchange_record(shared: &DataShared) -> Record {
    let present = |text: &str| (!text.is_empty()).then(|| text.to_string());
    Record {
        kind: EntryKind::Exchange,
        source_id: shared.event_id.clone(),
        occurred_at: shared.occurred_at,
        action: shared.exchange.clone(),
        requester_system: shared.requester_system.clone(),
        requester_department: shared.requester_department.clone(),
        requester_officer: shared.requester_officer.clone(),
        provider: shared.provider.clone(),
        data_subject: present(&shared.data_subject),
        data_items: shared.data_items.clone(),
        legal_basis: shared.legal_basis.clone(),
        purpose: shared.purpose.clone(),
        case_number: present(&shared.case_number),
        channel: present(&shared.channel),
        document_sha256: shared.document_sha256.clone(),
        outcome: shared.outcome.clone(),
    }
}

/// Writes the connectors' data-sharing events into the ledger, once each.
pub struct AuditRecorder {
    pub ledger: Arc<Ledger>,
}

#[async_trait]
impl BatchHandler for AuditRecorder {
    async fn handle(&self, batch: &[Delivery]) -> anyhow::Result<Vec<Rejected>> {
        // The hub's own checkpoints travel on the topic too; they are marked read, not recorded.
        let records: Vec<Record> = batch
            .iter()
            .filter_map(|delivery| match &delivery.event {
                Event::DataShared(shared) => Some(exchange_record(shared)),
                _ => None,
            })
            .collect();
        let delivered = batch.iter().map(|delivery| delivery.event.event_id()).collect();
        self.ledger.append(&records, Some((CONSUMER, delivered))).await?;
        Ok(Vec::new())
    }
}

/// Signs a checkpoint every `every` until `shutdown`.
pub async fn sign_checkpoints(ledger: Arc<Ledger>, every: Duration, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(every);
    ticks.tick().await;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        if let Err(error) = ledger.checkpoint().await {
            tracing::warn!(error = format!("{error:#}"), "signing a ledger checkpoint failed; trying at the next tick");
        }
    }
}

/// Whether a request is an administrative action the ledger keeps: anything that changes how
/// the hub runs (connectors, offsets, catalogue, reconciliation, the audit itself).
fn is_admin_action(method: &Method, path: &str) -> bool {
    method != Method::GET && ["/api/v1/connectors", "/api/v1/catalogue/", "/api/v1/bank/reconciliations", "/api/v1/audit/"].iter().any(|prefix| path.starts_with(prefix))
}

/// The case whose file (applicant, materials, flow, documents) a request reads, if it does.
fn case_read(method: &Method, path: &str) -> Option<(String, String)> {
    let rest = path.strip_prefix("/api/v1/cases/").filter(|_| method == Method::GET)?;
    let mut segments = rest.split('/');
    let case_number = segments.next().filter(|n| !n.is_empty())?.to_string();
    let what = match segments.next() {
        None => "case file",
        Some("flow") => "flow record",
        Some("documents") => "documents",
        Some(_) => return None,
    };
    Some((case_number, what.to_string()))
}

fn header(parts: &axum::http::request::Parts, name: &str) -> Option<String> {
    // Officers' names are Chinese: header values are read as UTF-8, not only ASCII.
    parts.headers.get(name).and_then(|v| std::str::from_utf8(v.as_bytes()).ok()).map(str::to_string)
}

/// Middleware: every administrative request, whatever its outcome, and every read of a case's
/// personal data becomes a ledger entry naming the officer (`X-Officer`), the department
/// (`X-Department`) and what was asked (or, for reads, the stated `X-Purpose`).
pub async fn record_in_ledger(State(ledger): State<Arc<Ledger>>, request: Request, next: Next) -> Response {
    if let Some((case_number, what)) = case_read(request.method(), request.uri().path()) {
        let (parts, body) = request.into_parts();
        let response = next.run(Request::from_parts(parts.clone(), body)).await;
        if response.status().is_success() {
            ledger.record_read(&parts, case_number, what).await;
        }
        return response;
    }
    if !is_admin_action(request.method(), request.uri().path()) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 1 << 20).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, Json(json!({"error": "an administrative request is at most 1 MiB"}))).into_response();
    };
    let (officer, department) = (header(&parts, "x-officer"), header(&parts, "x-department").unwrap_or_default());
    let action = format!("{} {}", parts.method, parts.uri.path());
    let asked: String = String::from_utf8_lossy(&bytes).chars().take(KEPT_REQUEST_BYTES).collect();
    let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    let record = Record {
        kind: EntryKind::Admin,
        source_id: format!("admin/{}", uuid::Uuid::now_v7()),
        occurred_at: now_ms(),
        action,
        requester_system: HUB_SYSTEM.into(),
        requester_department: department,
        requester_officer: officer,
        provider: HUB_SYSTEM.into(),
        data_subject: None,
        data_items: Vec::new(),
        legal_basis: String::new(),
        purpose: asked,
        case_number: None,
        channel: None,
        document_sha256: None,
        outcome: response.status().as_u16().to_string(),
    };
    if let Err(error) = ledger.record(&[record]).await {
        tracing::error!(error = format!("{error:#}"), "an administrative action could not be written to the audit ledger");
    }
    response
}

#[derive(Clone)]
struct AuditState {
    ledger: Arc<Ledger>,
}

/// The data bureau's routes: verify, checkpoints, public key, searches, inclusion proofs, exports.
pub fn router(ledger: Arc<Ledger>) -> Router {
    Router::new()
        .route("/api/v1/audit/verify", get(verify))
        .route("/api/v1/audit/checkpoints", get(list_checkpoints).post(make_checkpoint))
        .route("/api/v1/audit/public-key", get(|State(state): State<AuditState>| async move { Json(json!({"public_key": hex::encode(state.ledger.public_key().to_bytes())})) }))
        .route("/api/v1/audit/entries", get(search))
        .route("/api/v1/audit/entries/{seq}/proof", get(proof))
        .route("/api/v1/audit/exports", post(export))
        .route("/api/v1/audit/volume", get(volume))
        .with_state(AuditState { ledger })
}

fn failed(error: anyhow::Error) -> Response {
    tracing::error!(error = format!("{error:#}"), "audit request failed");
    (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"error": "internal error"}))).into_response()
}

async fn verify(State(state): State<AuditState>) -> Response {
    match state.ledger.verify().await {
        Ok(verification) => Json(json!({"holds": verification.holds(), "verification": verification})).into_response(),
        Err(error) => failed(error),
    }
}

async fn list_checkpoints(State(state): State<AuditState>) -> Response {
    match state.ledger.store.checkpoints().await {
        Ok(checkpoints) => Json(checkpoints).into_response(),
        Err(error) => failed(error),
    }
}

async fn make_checkpoint(State(state): State<AuditState>) -> Response {
    match state.ledger.checkpoint().await {
        Ok(Some(checkpoint)) => Json(checkpoint).into_response(),
        Ok(None) => BadRequest { status: StatusCode::CONFLICT, field: None, message: "the ledger is empty: nothing to sign".into() }.into_response(),
        Err(error) => failed(error),
    }
}

#[derive(Debug, Deserialize)]
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
        Some(text) => bus::offsets::instant_ms(text).ok_or_else(|| BadRequest::field(field, format!("{field} is an RFC 3339 instant like 2026-11-23T08:00:00+08:00"))),
    }
}

/// Who touched a subject's data, what a department sent and received, exchanges without a case.
async fn search(State(state): State<AuditState>, query: Result<Query<SearchQuery>, QueryRejection>) -> Response {
    let Query(query) = match query {
        Ok(query) => query,
        Err(rejection) => return BadRequest { status: StatusCode::BAD_REQUEST, field: None, message: rejection.body_text() }.into_response(),
    };
    let (from_ms, until_ms) = match period(query.from.as_deref(), query.until.as_deref()) {
        Ok(period) => period,
        Err(bad) => return bad.into_response(),
    };
    let data_subject = query.subject_id.as_deref().map(|id| contracts::data_subject(&state.ledger.subject_key, id.trim())).or(query.subject);
    let search = LedgerSearch { data_subject, department: query.department, from_ms, until_ms, without_case: query.without_case, limit: query.limit.unwrap_or(1_000) };
    match state.ledger.store.ledger_search(&search).await {
        Ok(entries) => Json(entries).into_response(),
        Err(error) => failed(error),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PeriodQuery {
    /// RFC 3339 instants; the last 30 days by default.
    from: Option<String>,
    until: Option<String>,
}

/// Daily volume of exchanges per pair of parties.
async fn volume(State(state): State<AuditState>, query: Result<Query<PeriodQuery>, QueryRejection>) -> Response {
    let Query(query) = match query {
        Ok(query) => query,
        Err(rejection) => return BadRequest { status: StatusCode::BAD_REQUEST, field: None, message: rejection.body_text() }.into_response(),
    };
    let (from_ms, until_ms) = match period(query.from.as_deref(), query.until.as_deref()) {
        Ok(period) => period,
        Err(bad) => return bad.into_response(),
    };
    match state.ledger.store.ledger_volume(from_ms, until_ms).await {
        Ok(rows) => {
            let rows: Vec<_> = rows
                .into_iter()
                .map(|(day, requester, provider, exchanges)| json!({"day": date_text(day), "requester_department": requester, "provider": provider, "exchanges": exchanges}))
                .collect();
            Json(rows).into_response()
        }
        Err(error) => failed(error),
    }
}

/// A period from optional RFC 3339 instants: the last 30 days by default.
fn period(from: Option<&str>, until: Option<&str>) -> Result<(i64, i64), BadRequest> {
    let now = now_ms();
    Ok((instant("from", from, now - 30 * 86_400_000)?, instant("until", until, now + 1)?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportRequest {
    /// RFC 3339 instants.
    from: String,
    until: String,
}

/// A period's entries as a signed bundle; the request itself is an administrative entry.
async fn export(State(state): State<AuditState>, body: axum::body::Bytes) -> Response {
    let request: ExportRequest = match connectors::framework::parse_json(&body) {
        Ok(request) => request,
        Err(bad) => return bad.into_response(),
    };
    let (from_ms, until_ms) = match instant("from", Some(&request.from), 0).and_then(|from| Ok((from, instant("until", Some(&request.until), 0)?))) {
        Ok(period) => period,
        Err(bad) => return bad.into_response(),
    };
    if from_ms >= until_ms {
        return BadRequest::field("until", "until must come after from").into_response();
    }
    match state.ledger.export(from_ms, until_ms).await {
        Ok(Some(bundle)) => Json(bundle).into_response(),
        Ok(None) => BadRequest { status: StatusCode::NOT_FOUND, field: None, message: "no entries were recorded in that period".into() }.into_response(),
        Err(error) => failed(error),
    }
}

async fn proof(State(state): State<AuditState>, Path(seq): Path<i64>) -> Response {
    match state.ledger.proof(seq).await {
        Ok(Some(proven)) => Json(proven).into_response(),
        Ok(None) => BadRequest { status: StatusCode::NOT_FOUND, field: None, message: format!("entry {seq} is not covered by a checkpoint yet") }.into_response(),
        Err(error) => failed(error),
    }
}
