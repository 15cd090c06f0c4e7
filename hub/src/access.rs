//! The API's gate: tokens of people and systems (hashed at rest, expiring, revocable), the
//! route rules of `domain::access` applied to every request, each denial written to the audit
//! ledger, and ID numbers masked in the JSON answers of the roles that do not need them.
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use connectors::framework::{parse_json, BadRequest};
use rand::RngCore as _;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use crate::audit::Ledger;
use crate::domain::access::{mask_id_numbers, rule, Role, Rule, Seat, ROUTES};
use crate::province::CurrentReference;
use crate::store::{now_ms, Store, TokenRecord};

/// Every token reads `hubt_<id>_<secret>`: the id finds the record, the secret proves it.
const TOKEN_PREFIX: &str = "hubt";

/// Longest validity a token may be given, in days.
const MAX_VALID_DAYS: u32 = 3_650;

/// Largest JSON answer the gate masks (the longest case lists are far below).
const MASKED_BODY_LIMIT: usize = 64 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// A named officer or clerk.
    Person,
    /// Another system (the postal board, a bank's reconciliation job, an integration).
    System,
}

impl TokenKind {
    fn code(self) -> &'static str {
        match self {
            TokenKind::Person => "person",
            TokenKind::System => "system",
        }
    }
}

/// What an issuer asks for.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    pub holder: String,
    pub kind: TokenKind,
    pub role: Role,
    #[serde(default)]
    pub unit: Option<String>,
    /// Days until it expires: 180 for a person, 365 for a system by default.
    #[serde(default)]
    pub valid_days: Option<u32>,
}

/// A token just issued: its text is shown this once and never kept.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IssuedToken {
    pub token: String,
    #[serde(flatten)]
    pub record: TokenRecord,
}

/// Issues, checks and revokes tokens.
#[derive(Clone)]
pub struct Tokens {
    store: Store,
    reference: CurrentReference,
}

fn secret_digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

impl Tokens {
    pub fn new(store: Store, reference: CurrentReference) -> Tokens {
        Tokens { store, reference }
    }

    /// Issues a token; a bad request names the field at fault.
    pub async fn issue(&self, request: TokenRequest, issued_by: &str) -> Result<IssuedToken, IssueError> {
        if request.holder.trim().is_empty() {
            return Err(IssueError::Bad(BadRequest::field("holder", "name the person or system the token is for")));
        }
        request.role.check_unit(request.unit.as_deref(), &self.reference.get()).map_err(|message| IssueError::Bad(BadRequest::field("unit", message)))?;
        let valid_days = request.valid_days.unwrap_or(match request.kind {
            TokenKind::Person => 180,
            TokenKind::System => 365,
        });
        if !(1..=MAX_VALID_DAYS).contains(&valid_days) {
            return Err(IssueError::Bad(BadRequest::field("valid_days", format!("a token is valid 1 to {MAX_VALID_DAYS} days"))));
        }
        let mut bytes = [0u8; 40];
        rand::rng().fill_bytes(&mut bytes);
        let (token_id, secret) = (hex::encode(&bytes[..8]), hex::encode(&bytes[8..]));
        let now = now_ms();
        let record = TokenRecord {
            token_id: token_id.clone(),
            secret_sha256: secret_digest(&secret),
            holder: request.holder.trim().to_string(),
            kind: request.kind.code().into(),
            role: request.role.code().into(),
            unit: request.unit,
            issued_at: now,
            expires_at: now + i64::from(valid_days) * 86_400_000,
            revoked_at: None,
            issued_by: issued_by.to_string(),
        };
        self.store.insert_token(&record).await.map_err(IssueError::Store)?;
        Ok(IssuedToken { token: format!("{TOKEN_PREFIX}_{token_id}_{secret}"), record })
    }

    /// Every token, newest first.
    pub async fn list(&self) -> anyhow::Result<Vec<TokenRecord>> {
        self.store.tokens().await
    }

    /// Revokes a token (the first revocation stands); None when there is no such token.
    pub async fn revoke(&self, token_id: &str) -> anyhow::Result<Option<TokenRecord>> {
        if !self.store.revoke_token(token_id, now_ms()).await? {
            return Ok(None);
        }
        self.store.token(token_id).await
    }

    /// The seat a presented token gives, or why it gives none.
    pub async fn authenticate(&self, presented: &str) -> Result<Seat, Refusal> {
        let refused = |reason: &str| Refusal { status: StatusCode::UNAUTHORIZED, reason: reason.to_string(), seat: None, field: None };
        let mut parts = presented.splitn(3, '_');
        let (Some(TOKEN_PREFIX), Some(token_id), Some(secret)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(refused("not a hub token (hubt_<id>_<secret>)"));
        };
        let record = match self.store.token(token_id).await {
            Ok(Some(record)) => record,
            Ok(None) => return Err(refused("unknown token")),
            Err(error) => return Err(Refusal { status: StatusCode::SERVICE_UNAVAILABLE, reason: format!("tokens cannot be checked now: {error}"), seat: None, field: None }),
        };
        // Digests of random secrets: comparing them leaks nothing about the secret itself.
        if record.secret_sha256 != secret_digest(secret) {
            return Err(refused("wrong token secret"));
        }
        let role = Role::parse(&record.role).ok_or_else(|| refused("the token's role is no longer known"))?;
        let seat = Seat { token_id: record.token_id.clone(), holder: record.holder.clone(), role, unit: record.unit.clone() };
        let refused_seat = |reason: String| Refusal { status: StatusCode::UNAUTHORIZED, reason, seat: Some(seat.clone()), field: None };
        if let Some(at) = record.revoked_at {
            return Err(refused_seat(format!("token revoked at {}", crate::domain::calendar::local_minute_text(at))));
        }
        if record.expires_at <= now_ms() {
            return Err(refused_seat(format!("token expired at {}", crate::domain::calendar::local_minute_text(record.expires_at))));
        }
        Ok(seat)
    }
}

#[derive(Debug)]
pub enum IssueError {
    Bad(BadRequest),
    Store(anyhow::Error),
}

/// A request turned away: with what status, why, and by whom if the token was known.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub status: StatusCode,
    pub reason: String,
    pub seat: Option<Seat>,
    /// The request field that asked for what is not the seat's (a department code, say).
    pub field: Option<String>,
}

impl Refusal {
    /// A seat asking for a case, a point or a department not its own.
    pub fn not_yours(seat: &Seat, reason: String) -> Refusal {
        Refusal { status: StatusCode::FORBIDDEN, reason, seat: Some(seat.clone()), field: None }
    }

    pub fn on_field(self, field: &str) -> Refusal {
        Refusal { field: Some(field.to_string()), ..self }
    }

    /// The refusal as one result among a batch's.
    pub fn as_result(&self, case_number: &str) -> serde_json::Value {
        serde_json::json!({"case_number": case_number, "status": self.status.as_u16(), "error": self.reason, "field": self.field})
    }

    /// Marks a response as carrying these refusals, for the gate to write down.
    pub fn attach_all(refusals: Vec<Refusal>, mut response: Response) -> Response {
        if !refusals.is_empty() {
            response.extensions_mut().insert(Refusals(refusals));
        }
        response
    }

    /// The answer: the reason as JSON, with the refusal attached for the gate to write down.
    pub fn into_response(self) -> Response {
        let body = match &self.field {
            Some(field) => serde_json::json!({"error": self.reason, "field": field}),
            None => serde_json::json!({"error": self.reason}),
        };
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"county-hub\""));
        }
        Refusal::attach_all(vec![self], response)
    }
}

/// The refusals a response carries (one, or several items of a batch).
#[derive(Debug, Clone)]
struct Refusals(Vec<Refusal>);

/// The gate's state: the tokens, and the ledger that keeps denials (none when auditing is off).
#[derive(Clone)]
pub struct Gate {
    pub tokens: Tokens,
    pub ledger: Option<Arc<Ledger>>,
}

/// Middleware: lets a request through by its route's rule, with the seat in its extensions;
/// writes every refusal (its own, and handlers' refusals of cases not one's own) to the
/// ledger; masks ID numbers in the answers of roles that do not see them.
pub async fn guard(State(gate): State<Arc<Gate>>, mut request: Request, next: Next) -> Response {
    let Some(template) = request.extensions().get::<MatchedPath>().map(|path| path.as_str().to_string()) else {
        return next.run(request).await;
    };
    let method = request.method().as_str().to_string();
    let action = format!("{method} {}", request.uri().path());
    let roles = match rule(&method, &template) {
        Some(Rule::Public | Rule::Signed) => return next.run(request).await,
        Some(Rule::Roles(roles)) => roles,
        None if ROUTES.iter().any(|(_, t, _)| *t == template) => {
            return BadRequest { status: StatusCode::METHOD_NOT_ALLOWED, field: None, message: format!("{method} is not served at {template}") }.into_response();
        }
        None => return gate.refuse(&action, Refusal { status: StatusCode::FORBIDDEN, reason: format!("{template} has no access rule"), seat: None, field: None }).await,
    };
    let presented = request.headers().get(header::AUTHORIZATION).and_then(|value| value.to_str().ok()).and_then(|value| value.strip_prefix("Bearer ")).map(str::trim);
    let Some(presented) = presented else {
        let reason = "this route needs a token: Authorization: Bearer hubt_…".to_string();
        return gate.refuse(&action, Refusal { status: StatusCode::UNAUTHORIZED, reason, seat: None, field: None }).await;
    };
    let seat = match gate.tokens.authenticate(presented).await {
        Ok(seat) => seat,
        Err(refusal) => return gate.refuse(&action, refusal).await,
    };
    if !roles.contains(&seat.role) {
        let allowed: Vec<&str> = roles.iter().map(|role| role.code()).collect();
        let reason = format!("{method} {template} is for {}; this token is {}", allowed.join(", "), seat.role.code());
        return gate.refuse(&action, Refusal::not_yours(&seat, reason)).await;
    }
    let masks = !seat.role.sees_id_numbers();
    request.extensions_mut().insert(seat);
    let mut response = next.run(request).await;
    if let Some(Refusals(refusals)) = response.extensions_mut().remove::<Refusals>() {
        for refusal in &refusals {
            gate.record(&action, refusal).await;
        }
    }
    if masks { mask_response(response).await } else { response }
}

impl Gate {
    async fn refuse(&self, action: &str, refusal: Refusal) -> Response {
        self.record(action, &refusal).await;
        refusal.into_response()
    }

    async fn record(&self, action: &str, refusal: &Refusal) {
        if let Some(ledger) = &self.ledger {
            ledger.record_denial(action, refusal.seat.as_ref(), &refusal.reason, refusal.status.as_str()).await;
        }
    }
}

/// The answer with every ID number field of its JSON masked.
async fn mask_response(response: Response) -> Response {
    let is_json = response.headers().get(header::CONTENT_TYPE).is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    if !is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MASKED_BODY_LIMIT).await else {
        return (StatusCode::INTERNAL_SERVER_ERROR, Json(serde_json::json!({"error": "the answer was too large to mask"}))).into_response();
    };
    let masked = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(mut document) => {
            mask_id_numbers(&mut document);
            Bytes::from(serde_json::to_vec(&document).expect("JSON serialises"))
        }
        Err(_) => bytes,
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(masked))
}

/// The integrators' token routes.
pub fn router(tokens: Tokens) -> Router {
    Router::new()
        .route("/api/v1/tokens", get(list).post(issue))
        .route("/api/v1/tokens/{token_id}/revocation", post(revoke))
        .route("/api/v1/me", get(me))
        .with_state(tokens)
}

/// Who the token speaks for, as the console greets them: holder, role and unit by name.
async fn me(State(tokens): State<Tokens>, Extension(seat): Extension<Seat>) -> Response {
    let reference = tokens.reference.get();
    let unit_name = seat.unit.as_deref().and_then(|code| reference.unit_name(code));
    Json(serde_json::json!({
        "holder": seat.holder,
        "role": seat.role,
        "role_title": seat.role.title(),
        "unit": seat.unit,
        "unit_name": unit_name,
        "county": reference.county.name,
    }))
    .into_response()
}

async fn list(State(tokens): State<Tokens>) -> Response {
    match tokens.list().await {
        Ok(all) => Json(serde_json::json!({ "tokens": all })).into_response(),
        Err(error) => internal(error),
    }
}

async fn issue(State(tokens): State<Tokens>, Extension(seat): Extension<Seat>, body: Bytes) -> Response {
    let request: TokenRequest = match parse_json(&body) {
        Ok(request) => request,
        Err(bad) => return bad.into_response(),
    };
    match tokens.issue(request, &seat.holder).await {
        Ok(issued) => (StatusCode::CREATED, Json(issued)).into_response(),
        Err(IssueError::Bad(bad)) => bad.into_response(),
        Err(IssueError::Store(error)) => internal(error),
    }
}

async fn revoke(State(tokens): State<Tokens>, Path(token_id): Path<String>) -> Response {
    match tokens.revoke(&token_id).await {
        Ok(Some(record)) => Json(record).into_response(),
        Ok(None) => BadRequest { status: StatusCode::NOT_FOUND, field: None, message: format!("no token {token_id}") }.into_response(),
        Err(error) => internal(error),
    }
}

fn internal(error: anyhow::Error) -> Response {
    tracing::error!(error = format!("{error:#}"), "token request failed");
    (StatusCode::INTERNAL_SERVER_ERROR, Json(serde_json::json!({"error": "internal error; the request was not applied"}))).into_response()
}

/// The token routes, for the OpenAPI document.
pub(crate) fn operations(g: &mut schemars::SchemaGenerator) -> Vec<crate::openapi::Operation> {
    use crate::openapi::Operation;
    vec![
        Operation::new("GET", "/api/v1/tokens", "integrators", "every token: holder, role, unit, expiry, revocation (never a secret)"),
        Operation::new("POST", "/api/v1/tokens", "integrators", "issue a token; its text is in this answer only").body::<TokenRequest>(g),
        Operation::new("POST", "/api/v1/tokens/{token_id}/revocation", "integrators", "revoke a token"),
        Operation::new("GET", "/api/v1/me", "service", "who this token speaks for: holder, role, unit"),
    ]
}
