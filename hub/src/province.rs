//! The hub's side of the provincial platform connector: online applications taken into the
//! same acceptance as counter ones, case facts for the status reports, and the matter
//! catalogue sync, where a changed guide becomes a new matter version.
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use axum::http::StatusCode;
use connectors::ecert::inbound::{CertificateLookup, LookupError};
use connectors::framework::BadRequest;
use connectors::province::inbound::{ApplicationDesk, CatalogueSource, Taken};
use connectors::province::outbound::{CaseDirectory, CaseFacts};
use connectors::province::protocol::{MatterGuide, OnlineApplication};
use serde::Serialize;

use crate::api::verify_presented;
use crate::domain::reference::{Material, Matter};
use crate::domain::Reference;
use crate::store::Store;
use crate::workflow::{DeliveryChoice, Intake, PresentedCertificate, SubmitApplication};

/// Request ids of applications filed online are the platform's project numbers, prefixed.
const PROJECT_PREFIX: &str = "province-";

/// The reference data in force. The catalogue sync replaces it with one that holds the new
/// matter versions; every unit of work takes the current one when it starts.
#[derive(Clone)]
pub struct CurrentReference(Arc<RwLock<Arc<Reference>>>);

impl CurrentReference {
    pub fn new(reference: Reference) -> CurrentReference {
        CurrentReference(Arc::new(RwLock::new(Arc::new(reference))))
    }

    pub fn get(&self) -> Arc<Reference> {
        self.0.read().expect("reference lock").clone()
    }

    fn replace(&self, reference: Reference) {
        *self.0.write().expect("reference lock") = Arc::new(reference);
    }
}

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
        if project_no.is_empty() || project_no.len() > 48 || !project_no.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
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
            certificates: online.certificates.iter().map(|c| PresentedCertificate { material: c.material.clone(), certificate_id: c.certificate_id.clone() }).collect(),
            commits_to_supply: false,
            domicile_township: online.domicile_township.clone(),
            delivery: DeliveryChoice { method: online.delivery_method.clone(), address: online.delivery_address.clone() },
        };
        let field = |name: &str| match name {
            "matter_code" => "implementation_code".to_string(),
            "delivery.method" => "delivery_method".to_string(),
            other => other.strip_prefix("delivery.address").map_or_else(|| other.to_string(), |rest| format!("delivery_address{rest}")),
        };
        application.validate(reference).map_err(|bad| {
            let name = field(&bad.field);
            BadRequest { status: StatusCode::UNPROCESSABLE_ENTITY, message: format!("{name}: {}", bad.message), field: Some(name) }
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
                    handler_name: case.department_name.clone().unwrap_or_else(|| application.service_point.name.clone()),
                };
                (case.case_number, facts)
            })
            .collect())
    }
}

/// What one catalogue sync did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncReport {
    pub guides: usize,
    pub unchanged: usize,
    /// Matters that became a new version: code, name, new version.
    pub revised: Vec<(String, String, i32)>,
    /// Guides not taken, with the reason.
    pub skipped: Vec<(String, String)>,
}

/// Synchronises the matter catalogue with the platform's guides: each guide that differs from
/// the newest local version becomes the next version, kept in the database (so cases accepted
/// under it find it after a restart) and put in force. One sync at a time.
pub struct CatalogueSync {
    pub source: CatalogueSource,
    pub store: Store,
    pub reference: CurrentReference,
    pub running: tokio::sync::Mutex<()>,
}

impl CatalogueSync {
    pub async fn run(&self) -> anyhow::Result<SyncReport> {
        let _one_at_a_time = self.running.lock().await;
        let guides = self.source.fetch().await.map_err(|error| anyhow::anyhow!("reading the platform's catalogue: {error}"))?;
        let current = self.reference.get();
        let mut report = SyncReport { guides: guides.len(), ..SyncReport::default() };
        let mut candidates = Vec::new();
        for guide in guides {
            match local_matter(&current, guide) {
                Ok(matter) => candidates.push(matter),
                Err(skipped) => report.skipped.push(skipped),
            }
        }
        let mut next = (*current).clone();
        let revised = next.revise(candidates.clone());
        report.unchanged = candidates.len() - revised.len();
        report.revised = revised.iter().map(|m| (m.implementation_code.clone(), m.name.clone(), m.version)).collect();
        if !revised.is_empty() {
            self.store.save_matter_versions(&revised).await?;
            self.reference.replace(next);
            tracing::info!(revised = revised.len(), "matter catalogue revised from the provincial platform");
        }
        Ok(report)
    }
}

/// The guide as a local matter: the platform's guide fields on the county's arrangements
/// (accepting and deciding tiers, joint handling, certificate) of the newest version.
fn local_matter(reference: &Reference, guide: MatterGuide) -> Result<Matter, (String, String)> {
    let code = guide.implementation_code.clone();
    let Some(local) = reference.matter(&code) else {
        return Err((code, "not offered in this county: no local arrangement for it".into()));
    };
    if reference.department(&guide.department_code).is_none() {
        return Err((code, format!("implementing department {} is not one of the county's", guide.department_code)));
    }
    Ok(Matter {
        basic_code: guide.basic_code,
        name: guide.name,
        kind: guide.kind,
        department: guide.department_code,
        legal_basis: guide.legal_basis,
        statutory_days: guide.statutory_days,
        promised_days: guide.promised_days,
        instant: guide.instant,
        scope: guide.scope,
        mail_allowed: guide.mail_allowed,
        fee_fen: guide.fee_fen,
        materials: guide.materials.into_iter().map(|m| Material { name: m.name, primary: m.primary, original: m.original, count: m.count, ecert: m.ecert }).collect(),
        ..local.clone()
    })
}

/// The catalogue as the platform would hold it: the guide fields of each matter's newest version
/// (how the demo and the tests seed the simulator).
pub fn guides_of(reference: &Reference) -> Vec<MatterGuide> {
    reference
        .matters()
        .map(|m| MatterGuide {
            implementation_code: m.implementation_code.clone(),
            basic_code: m.basic_code.clone(),
            name: m.name.clone(),
            kind: m.kind.clone(),
            department_code: m.department.clone(),
            legal_basis: m.legal_basis.clone(),
            statutory_days: m.statutory_days,
            promised_days: m.promised_days,
            instant: m.instant,
            scope: m.scope.clone(),
            mail_allowed: m.mail_allowed,
            fee_fen: m.fee_fen,
            materials: m.materials.iter().map(|x| connectors::province::protocol::GuideMaterial { name: x.name.clone(), primary: x.primary, original: x.original, count: x.count, ecert: x.ecert }).collect(),
            updated_at: 0,
        })
        .collect()
}
