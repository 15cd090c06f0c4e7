//! The seal service's API (`connectors/docs/seal.md`), shared with its simulator. Calls are
//! signed like the repository's (app id, timestamp, HMAC-SHA256).
use serde::{Deserialize, Serialize};

/// `POST /api/v1/seals/sign` with an `Idempotency-Key`: sign a document's digest with a seal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignRequest {
    /// The legend of the seal, as registered at the service.
    pub seal_name: String,
    /// SHA-256 of the document, 64 hex digits: what is signed (its 32 bytes).
    pub document_sha256: String,
    /// The document's number (文号) and case, for the service's own register.
    pub document_number: String,
    pub case_number: String,
}

/// The answer to a signing: the seal's key and the Ed25519 signature (128 hex digits).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signed {
    pub key_id: String,
    pub signature: String,
    pub signed_at: i64,
    /// The same key signed this digest before (an idempotent replay).
    #[serde(default)]
    pub duplicate: bool,
}

/// `GET /api/v1/keys/{key_id}`: a seal's public key, to verify its signatures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealKey {
    pub key_id: String,
    pub seal_name: String,
    /// Always `Ed25519`.
    pub algorithm: String,
    /// The 32-byte public key, hex.
    pub public_key: String,
}
