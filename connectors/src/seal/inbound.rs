//! Inbound half: the seals' public keys, fetched from the service once per key and kept, to
//! verify a document's signature whenever the document is read.
use std::collections::HashMap;
use std::sync::Mutex;

use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use reqwest::Method;

use super::protocol::SealKey;
use super::SealConfig;
use crate::framework::{with_retry, CallError, CounterpartClient};
use bus::RetryPolicy;

/// Why a signature does not verify now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealProblem {
    /// The signature, the key or the digest is wrong: the document is not what was sealed.
    #[error("{0}")]
    Broken(String),
    /// The service could not be asked for the key.
    #[error("the seal service is unavailable: {0}")]
    Unavailable(String),
}

pub struct SealKeys {
    client: CounterpartClient,
    retry: RetryPolicy,
    known: Mutex<HashMap<String, SealKey>>,
}

impl SealKeys {
    pub fn new(config: &SealConfig) -> anyhow::Result<SealKeys> {
        let client =
            CounterpartClient::signed(&config.base_url, &config.app_id, &config.app_secret, config.timeout_ms)?;
        Ok(SealKeys { client, retry: config.retry, known: Mutex::default() })
    }

    async fn key(&self, key_id: &str) -> Result<SealKey, SealProblem> {
        if let Some(key) = self.known.lock().expect("seal keys lock").get(key_id) {
            return Ok(key.clone());
        }
        let path = format!("/api/v1/keys/{key_id}");
        let fetched =
            with_retry(&self.retry, "seal key", || self.client.call(Method::GET, &path, &[], None::<&()>)).await;
        let key: SealKey = match fetched {
            Ok(key) => key,
            Err(error) if error.is_not_found() => {
                return Err(SealProblem::Broken(format!("the seal service knows no key {key_id}")))
            }
            Err(error @ (CallError::Permanent(_) | CallError::Transient(_))) => {
                return Err(SealProblem::Unavailable(error.to_string()))
            }
        };
        self.known.lock().expect("seal keys lock").insert(key_id.to_string(), key.clone());
        Ok(key)
    }

    /// Whether `signature` (hex) by the key `key_id` of the seal `seal_name` holds over the
    /// digest `document_sha256` (hex).
    pub async fn verify(
        &self,
        seal_name: &str,
        key_id: &str,
        signature: &str,
        document_sha256: &str,
    ) -> Result<(), SealProblem> {
        let key = self.key(key_id).await?;
        if key.seal_name != seal_name {
            return Err(SealProblem::Broken(format!(
                "key {key_id} is the key of {}, not of {seal_name}",
                key.seal_name
            )));
        }
        check(&key, signature, document_sha256).map_err(SealProblem::Broken)
    }
}

/// The Ed25519 check itself, on hex-encoded key, signature and digest.
pub fn check(key: &SealKey, signature: &str, document_sha256: &str) -> Result<(), String> {
    let bytes = |text: &str, what: &str| hex::decode(text).map_err(|_| format!("the {what} is not hex"));
    let public: [u8; 32] =
        bytes(&key.public_key, "public key")?.try_into().map_err(|_| "the public key is not 32 bytes")?;
    let signature: [u8; 64] = bytes(signature, "signature")?.try_into().map_err(|_| "the signature is not 64 bytes")?;
    let digest = bytes(document_sha256, "digest")?;
    let verifying = VerifyingKey::from_bytes(&public).map_err(|e| format!("the public key is invalid: {e}"))?;
    verifying
        .verify(&digest, &Signature::from_bytes(&signature))
        .map_err(|_| "the signature does not match the document".to_string())
}
