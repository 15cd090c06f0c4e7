//! API tokens at rest: the secret's SHA-256, never the secret.
use serde::Serialize;
use sqlx::Row as _;

use super::Store;

/// A token as kept: who holds it, with which role and unit, for how long.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenRecord {
    pub token_id: String,
    #[serde(skip)]
    pub secret_sha256: String,
    pub holder: String,
    /// `person` or `system`.
    pub kind: String,
    pub role: String,
    pub unit: Option<String>,
    pub window: Option<String>,
    pub issued_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub issued_by: String,
}

const COLUMNS: &str =
    "token_id, secret_sha256, holder, kind, role, unit, issued_at, expires_at, revoked_at, issued_by, window_code";

fn token_of(row: &sqlx::any::AnyRow) -> TokenRecord {
    TokenRecord {
        token_id: row.get(0),
        secret_sha256: row.get(1),
        holder: row.get(2),
        kind: row.get(3),
        role: row.get(4),
        unit: row.get(5),
        issued_at: row.get(6),
        expires_at: row.get(7),
        revoked_at: row.get(8),
        issued_by: row.get(9),
        window: row.get(10),
    }
}

impl Store {
    pub async fn insert_token(&self, token: &TokenRecord) -> anyhow::Result<()> {
        sqlx::query(&format!(
            "INSERT INTO api_tokens ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        ))
        .bind(&token.token_id)
        .bind(&token.secret_sha256)
        .bind(&token.holder)
        .bind(&token.kind)
        .bind(&token.role)
        .bind(&token.unit)
        .bind(token.issued_at)
        .bind(token.expires_at)
        .bind(token.revoked_at)
        .bind(&token.issued_by)
        .bind(&token.window)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn token(&self, token_id: &str) -> anyhow::Result<Option<TokenRecord>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM api_tokens WHERE token_id = $1"))
            .bind(token_id)
            .fetch_optional(&self.reads)
            .await?;
        Ok(row.as_ref().map(token_of))
    }

    /// Every token, newest first.
    pub async fn tokens(&self) -> anyhow::Result<Vec<TokenRecord>> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM api_tokens ORDER BY issued_at DESC, token_id"))
            .fetch_all(&self.reads)
            .await?;
        Ok(rows.iter().map(token_of).collect())
    }

    /// Revokes a token; the first revocation stands. False when there is no such token.
    pub async fn revoke_token(&self, token_id: &str, at: i64) -> anyhow::Result<bool> {
        let done = sqlx::query("UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $2) WHERE token_id = $1")
            .bind(token_id)
            .bind(at)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
