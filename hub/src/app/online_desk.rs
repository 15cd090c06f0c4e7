//! The hub's side of the provincial platform connector: online applications taken into the
//! same acceptance as counter ones, and the case facts its status reports carry.
use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use connectors::ecert::inbound::{CertificateLookup, LookupError};
use connectors::province::inbound::{ApplicationDesk, Taken};
use connectors::province::outbound::{CaseDirectory, CaseFacts};
use connectors::province::protocol::OnlineApplication;
use hub_core::Reference;
use hub_web::BadRequest;

use super::intake::{verify_presented, DeliveryChoice, Intake, PresentedCertificate, SubmitApplication};
use super::reference::CurrentReference;
use crate::store::Store;

/// Request ids of applications filed online are the platform's project numbers, prefixed.
const PROJECT_PREFIX: &str = "province-";

/// Online applications, taken as the counter's are: validated against the catalogue, the
/// certificates pointed to verified, the case opened through the intake.
pub struct OnlineDesk {
    pub reference: CurrentReference,
    pub intake: Intake,
    pub certificates: Arc<CertificateLookup>,
}

impl OnlineDesk {
    fn application(&self, online: &OnlineApplication, reference: &Reference) -> Result<SubmitApplication, BadRequest> {
        let project_no = online.project_no.trim();
        if project_no.is_empty()
            || project_no.len() > 48
            || !project_no.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(BadRequest::field("project_no", "project_no is 1 to 48 letters, digits or hyphens"));
        }
        let application = SubmitApplication {
            request_id: format!("{PROJECT_PREFIX}{project_no}"),
            matter_code: online.implementation_code.clone(),
            service_point: reference.online_point().code.clone(),
            channel: "online".into(),
            applicant: online.applicant.clone(),
            materials: online.materials.clone(),
            faulty_materials: Vec::new(),
            certificates: online
                .certificates
                .iter()
                .map(|c| PresentedCertificate {
                    material: c.material.clone(),
                    certificate_id: c.certificate_id.clone(),
                })
                .collect(),
            commits_to_supply: false,
            domicile_township: online.domicile_township.clone(),
            // A relief needs its proof checked at a counter.
            fee_relief: None,
            window: None,
            delivery: DeliveryChoice {
                method: online.delivery_method.clone(),
                address: online.delivery_address.clone(),
            },
            // Filed by the applicant: no clerk took it in.
            received_by: String::new(),
        };
        let field = |name: &str| match name {
            "matter_code" => "implementation_code".to_string(),
            "delivery.method" => "delivery_method".to_string(),
            other => other
                .strip_prefix("delivery.address")
                .map_or_else(|| other.to_string(), |rest| format!("delivery_address{rest}")),
        };
        application.validate(reference).map_err(|bad| {
            let name = field(&bad.field);
            BadRequest::invalid(name.clone(), format!("{name}: {}", bad.message))
        })?;
        Ok(application)
    }
}

#[async_trait]
impl ApplicationDesk for OnlineDesk {
    async fn take(&self, applications: &[OnlineApplication]) -> anyhow::Result<Vec<Result<Taken, BadRequest>>> {
        let reference = self.reference.get();
        let mut outcomes = Vec::with_capacity(applications.len());
        for online in applications {
            let mut application = match self.application(online, &reference) {
                Ok(application) => application,
                Err(bad) => {
                    outcomes.push(Err(bad));
                    continue;
                }
            };
            match verify_presented(&reference, &self.certificates, &mut application).await {
                Ok(()) => {}
                Err(LookupError::Bad(bad)) => {
                    outcomes.push(Err(bad));
                    continue;
                }
                Err(other) => anyhow::bail!("{other}"),
            }
            let submitted = self.intake.submit(application).await?;
            outcomes.push(Ok(Taken { case_number: submitted.case.case_number, duplicate: !submitted.created }));
        }
        Ok(outcomes)
    }
}

#[async_trait]
impl CaseDirectory for Store {
    async fn facts(&self, case_numbers: &[&str]) -> anyhow::Result<HashMap<String, CaseFacts>> {
        let cases = self.cases_with_requests(case_numbers).await?;
        Ok(cases
            .into_iter()
            .map(|(request_id, case)| {
                let application = &case.application;
                let facts = CaseFacts {
                    implementation_code: application.matter.implementation_code.clone(),
                    matter_name: application.matter.name.clone(),
                    matter_version: application.matter.version,
                    case_version: case.version,
                    channel: application.channel.clone(),
                    project_no: request_id.strip_prefix(PROJECT_PREFIX).map(str::to_string),
                    applicant: application.applicant.clone(),
                    handler_code: case.handler_code(),
                    handler_name: case
                        .department_name
                        .clone()
                        .unwrap_or_else(|| application.service_point.name.clone()),
                };
                (case.case_number, facts)
            })
            .collect())
    }
}
