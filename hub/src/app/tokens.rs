//! Tokens of people and systems: issued with a role bound to a unit, hashed at rest, expiring,
//! revocable; a presented token gives a seat or the reason it gives none.
use std::time::Duration;

use hub_core::access::{Role, Seat};
use hub_web::BadRequest;
use rand::RngCore as _;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use crate::app::reference::CurrentReference;
use crate::store::{now_ms, Store, TokenRecord};

/// Every token reads `hubt_<id>_<secret>`: the id finds the record, the secret proves it.
const TOKEN_PREFIX: &str = "hubt";

/// Longest validity a token may be given, in days.
const MAX_VALID_DAYS: u32 = 3_650;

/// How long a token record read is trusted before it is read again: how late another
/// instance's revocation takes hold here (this instance's own holds at once).
pub const TOKEN_RECHECK: Duration = Duration::from_secs(1);

/// Token records kept at most between reads (a county has a few thousand people and systems).
const RECENT_TOKENS: u64 = 10_000;

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
    /// The counter (窗口) the clerk works, from the county's reference data: its cases are
    /// counted in its report.
    #[serde(default)]
    pub window: Option<String>,
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
    pub reference: CurrentReference,
    /// Records read in the last `TOKEN_RECHECK`: every request is checked, and under load a
    /// check waited for a read connection behind the lists and reports.
    recent: moka::sync::Cache<String, TokenRecord>,
}

fn secret_digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

impl Tokens {
    pub fn new(store: Store, reference: CurrentReference) -> Tokens {
        let recent = moka::sync::Cache::builder().max_capacity(RECENT_TOKENS).time_to_live(TOKEN_RECHECK).build();
        Tokens { store, reference, recent }
    }

    /// Issues a token; a bad request names the field at fault.
    pub async fn issue(&self, request: TokenRequest, issued_by: &str) -> Result<IssuedToken, IssueError> {
        if request.holder.trim().is_empty() {
            return Err(IssueError::Bad(BadRequest::field("holder", "name the person or system the token is for")));
        }
        request
            .role
            .check_unit(request.unit.as_deref(), &self.reference.get())
            .map_err(|message| IssueError::Bad(BadRequest::field("unit", message)))?;
        if let Some(window) = &request.window {
            hub_core::access::check_window(request.role, request.unit.as_deref(), window, &self.reference.get())
                .map_err(|message| IssueError::Bad(BadRequest::field("window", message)))?;
        }
        let valid_days = request.valid_days.unwrap_or(match request.kind {
            TokenKind::Person => 180,
            TokenKind::System => 365,
        });
        if !(1..=MAX_VALID_DAYS).contains(&valid_days) {
            return Err(IssueError::Bad(BadRequest::field(
                "valid_days",
                format!("a token is valid 1 to {MAX_VALID_DAYS} days"),
            )));
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
            window: request.window,
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
        self.recent.invalidate(token_id);
        self.store.token(token_id).await
    }

    /// The seat a presented token gives, or why it gives none.
    pub async fn authenticate(&self, presented: &str) -> Result<Seat, Unauthenticated> {
        let refused = |reason: &str| Unauthenticated::Refused { reason: reason.to_string(), seat: None };
        let mut parts = presented.splitn(3, '_');
        let (Some(TOKEN_PREFIX), Some(token_id), Some(secret)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(refused("not a hub token (hubt_<id>_<secret>)"));
        };
        let record = match self.recent.get(token_id) {
            Some(record) => record,
            None => match self.store.token(token_id).await {
                Ok(Some(record)) => {
                    self.recent.insert(token_id.to_string(), record.clone());
                    record
                }
                Ok(None) => return Err(refused("unknown token")),
                Err(error) => {
                    return Err(Unauthenticated::Unavailable(format!("tokens cannot be checked now: {error}")))
                }
            },
        };
        // Digests of random secrets: comparing them leaks nothing about the secret itself.
        if record.secret_sha256 != secret_digest(secret) {
            return Err(refused("wrong token secret"));
        }
        let role = Role::parse(&record.role).ok_or_else(|| refused("the token's role is no longer known"))?;
        let seat = Seat {
            token_id: record.token_id.clone(),
            holder: record.holder.clone(),
            role,
            unit: record.unit.clone(),
            window: record.window.clone(),
        };
        let refused_seat = |reason: String| Unauthenticated::Refused { reason, seat: Some(seat.clone()) };
        if let Some(at) = record.revoked_at {
            return Err(refused_seat(format!("token revoked at {}", hub_core::calendar::local_minute_text(at))));
        }
        if record.expires_at <= now_ms() {
            return Err(refused_seat(format!(
                "token expired at {}",
                hub_core::calendar::local_minute_text(record.expires_at)
            )));
        }
        Ok(seat)
    }
}

#[derive(Debug)]
pub enum IssueError {
    Bad(BadRequest),
    Store(anyhow::Error),
}

/// Why a presented token gives no seat.
#[derive(Debug)]
pub enum Unauthenticated {
    /// Not a valid token; the seat when the token was known (revoked, expired).
    Refused { reason: String, seat: Option<Seat> },
    /// The token store cannot be read now.
    Unavailable(String),
}
