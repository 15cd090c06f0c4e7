-- API tokens of people and systems (hub/src/access.rs). Only the SHA-256 of each token's
-- secret is kept; a revoked or expired token stays, so the audit can name whose it was.
CREATE TABLE api_tokens (
    token_id      TEXT PRIMARY KEY,
    secret_sha256 TEXT NOT NULL,
    holder        TEXT NOT NULL,
    kind          TEXT NOT NULL,
    role          TEXT NOT NULL,
    unit          TEXT,
    issued_at     BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    revoked_at    BIGINT,
    issued_by     TEXT NOT NULL
);
