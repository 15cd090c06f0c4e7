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
use crate::framework::{apply_outbound, date_text, with_retry, Exchange, Outcome, SignedClient};

/// Why the hub hands holder data to the repository.
const ISSUE_BASIS: &str = "《国务院关于加快推进全国一体化在线政务服务平台建设的指导意见》：审批结果同步生成电子证照";

pub struct EcertOutbound {
    config: EcertConfig,
    client: SignedClient,
    outbox: Arc<dyn Outbox>,
    control: Arc<ConnectorControl>,
}

impl EcertOutbound {
    pub fn new(
        config: EcertConfig,
        outbox: Arc<dyn Outbox>,
        control: Arc<ConnectorControl>,
    ) -> anyhow::Result<EcertOutbound> {
        let client = SignedClient::new(&config.base_url, &config.app_id, &config.app_secret, config.timeout_ms)?;
        Ok(EcertOutbound { config, client, outbox, control })
    }

    fn exchange(
        &self,
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

    async fn issue(&self, request: &CertificateRequested) -> Outcome {
        let body = IssueCertificate {
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
        };
        // The request's own id is the idempotency key (ASCII, unlike licence numbers): one
        // certificate per request, whatever the retries.
        let key = request.event_id.clone();
        let exchange = self.exchange(
            "certificate.issue",
            &request.issuer_code,
            &request.data_subject,
            &["holder_name", "holder_code", "certificate_name", "number", "issue_date", "valid_until"],
            &format!("签发{}", request.certificate_name),
        );
        let headers = [("Idempotency-Key", key.as_str())];
        let called = with_retry(&self.config.retry, "e-certificate issue", || {
            self.client.call::<Issued>(Method::POST, "/api/v1/certificates", &headers, Some(&body))
        })
        .await;
        let issued = match called {
            Ok(issued) => issued,
            Err(error) => {
                return Outcome::failed(
                    format!("repository did not issue {} for case {}", request.number, request.case_number),
                    &error,
                    &exchange,
                    &request.event_id,
                    &request.case_number,
                )
            }
        };
        let shared = exchange.shared(&request.event_id, &request.case_number, "ok");
        if let Err(error) = issued.certificate_id.parse::<CertificateId>() {
            return Outcome::refused(
                format!("repository answered a malformed certificate id {}: {error}", issued.certificate_id),
                vec![shared],
            );
        }
        let certificate = CertificateIssued {
            event_id: hub_core::ids::certificate_issued(&request.event_id),
            case_number: request.case_number.clone(),
            occurred_at: crate::framework::now_ms(),
            certificate_id: issued.certificate_id,
            type_code: request.type_code.clone(),
            number: request.number.clone(),
            status: issued.status,
        };
        Outcome::done(vec![certificate.into(), shared])
    }

    async fn revoke(&self, request: &CertificateRevocationRequested) -> Outcome {
        let path = format!("/api/v1/certificates/{}/revocation", request.certificate_id);
        let key = format!("{}/revocation", request.certificate_id);
        let body = Revoke { reason: request.reason.clone() };
        let mut exchange = self.exchange(
            "certificate.revoke",
            &request.department_code,
            &request.data_subject,
            &["certificate_id", "reason"],
            "注销电子证照",
        );
        exchange.requester_officer = Some(request.officer.clone());
        let headers = [("Idempotency-Key", key.as_str())];
        let called = with_retry(&self.config.retry, "e-certificate revocation", || {
            self.client.call::<Revoked>(Method::POST, &path, &headers, Some(&body))
        })
        .await;
        match called {
            Ok(revoked) => Outcome::done(vec![
                CertificateRevoked {
                    event_id: hub_core::ids::certificate_revoked(&request.event_id),
                    case_number: request.case_number.clone(),
                    occurred_at: crate::framework::now_ms(),
                    certificate_id: revoked.certificate_id,
                    reason: request.reason.clone(),
                }
                .into(),
                exchange.shared(&request.event_id, &request.case_number, "ok"),
            ]),
            Err(error) => Outcome::failed(
                format!("repository did not revoke {}", request.certificate_id),
                &error,
                &exchange,
                &request.event_id,
                &request.case_number,
            ),
        }
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
