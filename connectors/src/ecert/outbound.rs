//! Outbound half: certificates issued for approved cases and revoked on request.
use std::sync::Arc;

use async_trait::async_trait;
use bus::{BatchHandler, Delivery, Outbox, Rejected};
use contracts::{CertificateIssued, CertificateRequested, CertificateRevocationRequested, CertificateRevoked, Event};
use reqwest::Method;

use super::identifier::CertificateId;
use super::protocol::{IssueCertificate, Issued, Revoke, Revoked};
use super::{EcertConfig, CONSUMER, REPOSITORY};
use crate::framework::control::ConnectorControl;
use crate::framework::{
    apply_outbound, date_text, now_ms, with_retry, CallError, CounterpartClient, Exchange, Outcome,
};

/// Why the hub hands holder data to the repository.
const ISSUE_BASIS: &str = "《国务院关于加快推进全国一体化在线政务服务平台建设的指导意见》：审批结果同步生成电子证照";

pub struct EcertOutbound {
    config: EcertConfig,
    client: CounterpartClient,
    outbox: Arc<dyn Outbox>,
    control: Arc<ConnectorControl>,
}

impl EcertOutbound {
    pub fn new(
        config: EcertConfig,
        outbox: Arc<dyn Outbox>,
        control: Arc<ConnectorControl>,
    ) -> anyhow::Result<EcertOutbound> {
        let client =
            CounterpartClient::signed(&config.base_url, &config.app_id, &config.app_secret, config.timeout_ms)?;
        Ok(EcertOutbound { config, client, outbox, control })
    }

    async fn issue(&self, request: &CertificateRequested) -> Outcome {
        let body = issue_for(request);
        // The request's own id is the idempotency key (ASCII, unlike licence numbers): one
        // certificate per request, whatever the retries.
        let headers = [("Idempotency-Key", request.event_id.as_str())];
        let answer = with_retry(&self.config.retry, "e-certificate issue", || {
            self.client.call::<Issued>(Method::POST, "/api/v1/certificates", &headers, Some(&body))
        })
        .await;
        issue_outcome(request, answer, now_ms())
    }

    async fn revoke(&self, request: &CertificateRevocationRequested) -> Outcome {
        let path = format!("/api/v1/certificates/{}/revocation", request.certificate_id);
        let key = format!("{}/revocation", request.certificate_id);
        let body = Revoke { reason: request.reason.clone() };
        let headers = [("Idempotency-Key", key.as_str())];
        let answer = with_retry(&self.config.retry, "e-certificate revocation", || {
            self.client.call::<Revoked>(Method::POST, &path, &headers, Some(&body))
        })
        .await;
        revocation_outcome(request, answer, now_ms())
    }
}

/// An exchange with the repository on behalf of the issuing department.
fn exchange(
    name: &'static str,
    department: &str,
    data_subject: &str,
    data_items: &'static [&'static str],
    purpose: &str,
) -> Exchange {
    Exchange {
        name,
        requester_system: REPOSITORY.into(),
        requester_department: String::new(),
        requester_officer: None,
        provider: department.into(),
        data_subject: data_subject.into(),
        data_items,
        legal_basis: ISSUE_BASIS.into(),
        purpose: purpose.into(),
        channel: CONSUMER,
        document_sha256: None,
    }
}

/// The repository's issue request for a certificate an approval asked for.
pub fn issue_for(request: &CertificateRequested) -> IssueCertificate {
    IssueCertificate {
        type_code: request.type_code.clone(),
        certificate_name: request.certificate_name.clone(),
        number: request.number.clone(),
        holder_name: request.holder_name.clone(),
        holder_code: request.holder_code.clone(),
        holder_code_kind: request.holder_code_kind.clone(),
        issuer: request.issuer.clone(),
        issuer_code: request.issuer_code.clone(),
        issue_date: date_text(request.issue_date),
        valid_until: request.valid_until.map(date_text),
        area_code: request.area_code.clone(),
        case_number: request.case_number.clone(),
    }
}

/// What the repository's answer to an issue request comes to, as of `now`: the certificate
/// with a well-formed identifier, or why there is none.
pub fn issue_outcome(request: &CertificateRequested, answer: Result<Issued, CallError>, now: i64) -> Outcome {
    let exchange = exchange(
        "certificate.issue",
        &request.issuer_code,
        &request.data_subject,
        &["holder_name", "holder_code", "certificate_name", "number", "issue_date", "valid_until"],
        &format!("签发{}", request.certificate_name),
    );
    let issued = match answer {
        Ok(issued) => issued,
        Err(error) => {
            return Outcome::failed(
                format!("repository did not issue {} for case {}", request.number, request.case_number),
                &error,
                &exchange,
                &request.event_id,
                &request.case_number,
                now,
            )
        }
    };
    let shared = exchange.shared(&request.event_id, &request.case_number, "ok", now);
    if let Err(error) = issued.certificate_id.parse::<CertificateId>() {
        return Outcome::refused(
            format!("repository answered a malformed certificate id {}: {error}", issued.certificate_id),
            vec![shared],
        );
    }
    let certificate = CertificateIssued {
        event_id: hub_core::ids::certificate_issued(&request.event_id),
        case_number: request.case_number.clone(),
        occurred_at: now,
        certificate_id: issued.certificate_id,
        type_code: request.type_code.clone(),
        number: request.number.clone(),
        status: issued.status,
    };
    Outcome::done(vec![certificate.into(), shared])
}

/// What the repository's answer to a revocation comes to, as of `now`.
pub fn revocation_outcome(
    request: &CertificateRevocationRequested,
    answer: Result<Revoked, CallError>,
    now: i64,
) -> Outcome {
    let mut exchange = exchange(
        "certificate.revoke",
        &request.department_code,
        &request.data_subject,
        &["certificate_id", "reason"],
        "注销电子证照",
    );
    exchange.requester_officer = Some(request.officer.clone());
    match answer {
        Ok(revoked) => Outcome::done(vec![
            CertificateRevoked {
                event_id: hub_core::ids::certificate_revoked(&request.event_id),
                case_number: request.case_number.clone(),
                occurred_at: now,
                certificate_id: revoked.certificate_id,
                reason: request.reason.clone(),
            }
            .into(),
            exchange.shared(&request.event_id, &request.case_number, "ok", now),
        ]),
        Err(error) => Outcome::failed(
            format!("repository did not revoke {}", request.certificate_id),
            &error,
            &exchange,
            &request.event_id,
            &request.case_number,
            now,
        ),
    }
}

#[async_trait]
impl BatchHandler for EcertOutbound {
    async fn handle(&self, batch: &[Delivery]) -> anyhow::Result<Vec<Rejected>> {
        apply_outbound(&self.control, self.outbox.as_ref(), batch, self.config.concurrency, |event| async move {
            match event {
                Event::CertificateRequested(request) => self.issue(request).await,
                Event::CertificateRevocationRequested(request) => self.revoke(request).await,
                other => Outcome::refused(format!("{} is not a certificate request", other.kind()), Vec::new()),
            }
        })
        .await
    }
}
