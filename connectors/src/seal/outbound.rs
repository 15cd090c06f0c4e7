//! Outbound half: each document's digest signed with its issuing unit's seal.
use std::sync::Arc;

use async_trait::async_trait;
use bus::{BatchHandler, Delivery, Outbox, Rejected};
use contracts::{DocumentSealRequested, DocumentSealed, Event};
use reqwest::Method;

use super::protocol::{SignRequest, Signed};
use super::{SealConfig, CONSUMER, SERVICE};
use crate::framework::control::ConnectorControl;
use crate::framework::{apply_outbound, now_ms, with_retry, CallError, CounterpartClient, Exchange, Outcome};

/// Why the hub hands a document's digest to the seal service.
const SEAL_BASIS: &str = "《中华人民共和国电子签名法》第十四条：可靠的电子签名与手写签名或者盖章具有同等的法律效力";

pub struct SealOutbound {
    config: SealConfig,
    client: CounterpartClient,
    outbox: Arc<dyn Outbox>,
    control: Arc<ConnectorControl>,
}

impl SealOutbound {
    pub fn new(
        config: SealConfig,
        outbox: Arc<dyn Outbox>,
        control: Arc<ConnectorControl>,
    ) -> anyhow::Result<SealOutbound> {
        let client =
            CounterpartClient::signed(&config.base_url, &config.app_id, &config.app_secret, config.timeout_ms)?;
        Ok(SealOutbound { config, client, outbox, control })
    }

    async fn sign(&self, request: &DocumentSealRequested) -> Outcome {
        let body = SignRequest {
            seal_name: request.seal_name.clone(),
            document_sha256: request.document_sha256.clone(),
            document_number: request.document_number.clone(),
            case_number: request.case_number.clone(),
        };
        // The request's id is the idempotency key: one signature per document, whatever the retries.
        let headers = [("Idempotency-Key", request.event_id.as_str())];
        let answer = with_retry(&self.config.retry, "document seal", || {
            self.client.call::<Signed>(Method::POST, "/api/v1/seals/sign", &headers, Some(&body))
        })
        .await;
        sign_outcome(request, answer, now_ms())
    }
}

/// What the seal service's answer to a signing comes to, as of `now`: the signature, or why
/// there is none. A signature that is not 64 bytes of hex is refused.
pub fn sign_outcome(request: &DocumentSealRequested, answer: Result<Signed, CallError>, now: i64) -> Outcome {
    let exchange = Exchange {
        name: "document.seal",
        requester_system: SERVICE.into(),
        requester_department: String::new(),
        requester_officer: None,
        provider: request.unit.clone(),
        data_subject: String::new(),
        data_items: &["document_sha256", "document_number", "seal_name"],
        legal_basis: SEAL_BASIS.into(),
        purpose: format!("加盖{}", request.seal_name),
        channel: CONSUMER,
        document_sha256: Some(request.document_sha256.clone()),
    };
    let signed = match answer {
        Ok(signed) => signed,
        Err(error) => {
            let what = format!("seal service did not sign {} of case {}", request.document_number, request.case_number);
            return Outcome::failed(what, &error, &exchange, &request.event_id, &request.case_number, now);
        }
    };
    let shared = exchange.shared(&request.event_id, &request.case_number, "ok", now);
    if hex::decode(&signed.signature).map_or(true, |bytes| bytes.len() != 64) {
        return Outcome::refused(
            format!(
                "seal service answered a malformed signature for {}: {}",
                request.document_number, signed.signature
            ),
            vec![shared],
        );
    }
    let sealed = DocumentSealed {
        event_id: hub_core::ids::document_sealed(&request.event_id),
        case_number: request.case_number.clone(),
        occurred_at: now,
        document_event_id: request.document_event_id.clone(),
        document_sha256: request.document_sha256.clone(),
        seal_name: request.seal_name.clone(),
        key_id: signed.key_id,
        signature: signed.signature,
        signed_at: signed.signed_at,
    };
    Outcome::done(vec![sealed.into(), shared])
}

#[async_trait]
impl BatchHandler for SealOutbound {
    async fn handle(&self, batch: &[Delivery]) -> anyhow::Result<Vec<Rejected>> {
        apply_outbound(&self.control, self.outbox.as_ref(), batch, self.config.concurrency, |event| async move {
            match event {
                Event::DocumentSealRequested(request) => self.sign(request).await,
                other => Outcome::refused(format!("{} is not a seal request", other.kind()), Vec::new()),
            }
        })
        .await
    }
}
