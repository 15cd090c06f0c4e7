//! Inbound half: online applications pushed by the platform enter the hub's acceptance like
//! counter ones (channel `online`), each answered with its case number; the matter catalogue
//! is read from the platform. A pushed application is recorded as a data-sharing event.
use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bus::{Effect, Outbox};
use reqwest::Method as CallMethod;

use super::protocol::{
    ApplicationPush, MatterCatalogue, MatterGuide, OnlineApplication, PushResult, PushResults,
    MAX_APPLICATIONS_PER_PUSH,
};
use super::{ProvinceConfig, PLATFORM, PUSH_CONSUMER, PUSH_PATH};
use crate::framework::{check_signature, now_ms, with_retry, CallError, CounterpartClient, Exchange};
use hub_core::access::Rule;
use hub_web::{parse_json, BadRequest, Route};

/// Why the platform hands applicant data to the county.
const RECEIVE_BASIS: &str = "《国务院关于在线政务服务的若干规定》第六条：网上申请由有权机关受理办理";

/// An application the hub took: its case, and whether an earlier push had opened it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    pub case_number: String,
    pub duplicate: bool,
}

/// The hub's acceptance desk, as the inbound half hands it applications.
#[async_trait]
pub trait ApplicationDesk: Send + Sync {
    /// Opens a case for each application (or finds the one its project number opened before);
    /// an application the hub cannot take is refused with the field at fault. `Err` only when
    /// nothing could be recorded.
    async fn take(&self, applications: &[OnlineApplication]) -> anyhow::Result<Vec<Result<Taken, BadRequest>>>;
}

struct Push {
    config: ProvinceConfig,
    desk: Arc<dyn ApplicationDesk>,
    outbox: Arc<dyn Outbox>,
    subject_key: Vec<u8>,
}

/// The inbound half's route: the platform's signed pushes of online applications.
pub fn routes(
    config: ProvinceConfig,
    desk: Arc<dyn ApplicationDesk>,
    outbox: Arc<dyn Outbox>,
    subject_key: Vec<u8>,
) -> Vec<Route> {
    let push = Arc::new(Push { config, desk, outbox, subject_key });
    vec![Route::post(PUSH_PATH, Rule::Signed, receive_push)
        .doc("counterparts", "the provincial platform pushes online applications")
        .any_body()
        .with_state(push)]
}

async fn receive_push(
    State(push): State<Arc<Push>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    if let Err(bad) =
        check_signature(&headers, method.as_str(), path, &body, &push.config.app_id, &push.config.app_secret, now_ms())
    {
        return bad.into_response();
    }
    let applications = match parse_json::<ApplicationPush>(&body) {
        Ok(batch) if (1..=MAX_APPLICATIONS_PER_PUSH).contains(&batch.applications.len()) => batch.applications,
        Ok(batch) => {
            return BadRequest::field(
                "applications",
                format!(
                    "a push carries 1 to {MAX_APPLICATIONS_PER_PUSH} applications, not {}",
                    batch.applications.len()
                ),
            )
            .into_response()
        }
        Err(bad) => return bad.into_response(),
    };
    let taken = match push.desk.take(&applications).await {
        Ok(taken) => taken,
        Err(error) => return unavailable(&error),
    };
    let effects: Vec<Effect> = applications
        .iter()
        .zip(&taken)
        .filter_map(|(application, taken)| {
            let case_number = &taken.as_ref().ok()?.case_number;
            let source = hub_core::ids::online_application(&application.project_no);
            Some(Effect {
                events: vec![push.exchange(application).shared(&source, case_number, "ok", now_ms())],
                source_event_id: source,
            })
        })
        .collect();
    if let Err(error) = push.outbox.apply_all(PUSH_CONSUMER, &effects).await {
        return unavailable(&error);
    }
    let results: Vec<PushResult> = applications
        .iter()
        .zip(taken)
        .enumerate()
        .map(|(index, (application, taken))| match taken {
            Ok(taken) => PushResult {
                project_no: application.project_no.clone(),
                case_number: Some(taken.case_number),
                duplicate: taken.duplicate,
                error: None,
                field: None,
            },
            Err(bad) => {
                let bad = bad.within(&format!("applications[{index}]"));
                PushResult {
                    project_no: application.project_no.clone(),
                    case_number: None,
                    duplicate: false,
                    error: Some(bad.message),
                    field: bad.field,
                }
            }
        })
        .collect();
    let success = results.iter().all(|r| r.error.is_none());
    let status = if success { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    (status, Json(PushResults { success, results })).into_response()
}

/// Not acknowledged: the platform pushes again, and the project numbers make that harmless.
fn unavailable(error: &anyhow::Error) -> Response {
    tracing::error!(error = format!("{error:#}"), "could not record an application push");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(serde_json::json!({"success": false, "error": "temporarily unable to record the push"})),
    )
        .into_response()
}

impl Push {
    fn exchange(&self, application: &OnlineApplication) -> Exchange {
        Exchange {
            name: "application.receive",
            requester_system: "hub".into(),
            requester_department: String::new(),
            requester_officer: None,
            provider: PLATFORM.into(),
            data_subject: contracts::data_subject(&self.subject_key, &application.applicant.id_number),
            data_items: &["applicant_name", "applicant_id_number", "applicant_phone", "materials", "delivery_address"],
            legal_basis: RECEIVE_BASIS.into(),
            purpose: "受理网上申请".into(),
            channel: super::CONSUMER,
            document_sha256: None,
        }
    }
}

/// The platform's matter guides, read for the catalogue sync.
pub struct CatalogueSource {
    config: ProvinceConfig,
    client: CounterpartClient,
}

impl CatalogueSource {
    pub fn new(config: ProvinceConfig) -> anyhow::Result<CatalogueSource> {
        let client =
            CounterpartClient::signed(&config.base_url, &config.app_id, &config.app_secret, config.timeout_ms)?;
        Ok(CatalogueSource { config, client })
    }

    /// The guides of the configured region, as the platform holds them now.
    pub async fn fetch(&self) -> Result<Vec<MatterGuide>, CallError> {
        let path = format!("/api/v1/matters?region={}", self.config.region_code);
        let catalogue = with_retry(&self.config.retry, "matter catalogue", || {
            self.client.call::<MatterCatalogue>(CallMethod::GET, &path, &[], None::<&()>)
        })
        .await?;
        Ok(catalogue.matters)
    }
}
