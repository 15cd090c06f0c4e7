//! The integrators' operations on a running hub: consumer offsets, the catalogue sync, the
//! bank reconciliation.
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use bus::Bus;
use hub_core::access::Role::{Integrator, Supervisor};
use hub_core::access::Rule;
use hub_core::fees::Reconciliation;
use hub_web::{ApiError, ApiResult, BadRequest, Route, ValidJson};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::app::catalogue::{CatalogueSync, SyncReport};
use crate::app::reconciliation::{ReconcileError, Reconciler};
use crate::store::Store;

#[derive(Clone)]
pub struct OperationsState {
    pub store: Store,
    pub bus: Arc<Bus>,
    /// The matter catalogue sync with the provincial platform.
    pub catalogue: Arc<CatalogueSync>,
    /// The daily reconciliation with the bank network.
    pub reconciler: Arc<Reconciler>,
}

const OPERATORS: Rule = Rule::Roles(&[Integrator]);

pub fn routes() -> Vec<Route<OperationsState>> {
    const TAG: &str = "integrators";
    vec![
        Route::get("/api/v1/connectors/{name}/offsets", OPERATORS, group_offsets)
            .doc(TAG, "where a consumer group stands on each partition"),
        Route::post("/api/v1/connectors/{name}/offsets/reset", OPERATORS, reset_offsets)
            .doc(TAG, "move a consumer group's offsets")
            .body::<OffsetResetRequest>(),
        Route::post("/api/v1/catalogue/sync", OPERATORS, sync_catalogue)
            .doc(TAG, "synchronise the matter catalogue with the provincial platform now"),
        Route::post("/api/v1/bank/reconciliations", OPERATORS, run_reconciliation)
            .doc(TAG, "reconcile a day's bank statement")
            .body::<ReconciliationRequest>(),
        Route::get("/api/v1/bank/reconciliations/{day}", Rule::Roles(&[Integrator, Supervisor]), read_reconciliation)
            .doc("supervisors", "the latest reconciliation report of a day"),
    ]
}

/// Synchronises the matter catalogue with the provincial platform now.
async fn sync_catalogue(State(state): State<OperationsState>) -> ApiResult<Json<SyncReport>> {
    state.catalogue.run().await.map(Json).map_err(|error| ApiError::Upstream(format!("{error:#}")))
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ReconciliationRequest {
    /// `YYYY-MM-DD`, China Standard Time.
    date: String,
}

/// Reconciles a day's bank statement against the fee orders and payments now.
async fn run_reconciliation(
    State(state): State<OperationsState>,
    ValidJson(request): ValidJson<ReconciliationRequest>,
) -> ApiResult<Json<Reconciliation>> {
    match state.reconciler.run(&request.date).await {
        Ok(report) => Ok(Json(report)),
        Err(ReconcileError::BadDay(_)) => Err(BadRequest::field("date", "date is YYYY-MM-DD").into()),
        Err(error @ ReconcileError::Statement(_)) => Err(ApiError::Upstream(error.to_string())),
        Err(ReconcileError::Store(error)) => Err(error.into()),
    }
}

/// The latest reconciliation report of a day.
async fn read_reconciliation(State(state): State<OperationsState>, Path(day): Path<String>) -> ApiResult<Json<Value>> {
    match state.store.latest_reconciliation(&day).await? {
        Some(report) => Ok(Json(report)),
        None => Err(BadRequest::not_found(format!("no reconciliation of {day} yet")).into()),
    }
}

/// Where a consumer group (a connector or a hub service) stands on each partition it reads.
async fn group_offsets(State(state): State<OperationsState>, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    let topics: Vec<String> = state.bus.catalogue().topics_read_by(&name).map(|t| t.name.clone()).collect();
    if topics.is_empty() {
        return Err(
            BadRequest::not_found(format!("topics/catalogue.toml lists no topic for consumer group {name}")).into()
        );
    }
    let positions = state.bus.group_positions(&name, &topics).await?;
    let lag: i64 = positions.iter().map(|p| p.lag).sum();
    Ok(Json(json!({ "group": name, "lag": lag, "partitions": positions })))
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct OffsetResetRequest {
    /// `earliest`, `latest` or an RFC 3339 instant.
    to: String,
    /// Only this topic; every topic the group reads when absent.
    #[serde(default)]
    topic: Option<String>,
}

/// Moves a consumer group's offsets: `earliest` reads everything held again, `latest` skips the
/// backlog, an instant goes back (or forward) to the first message written from then on.
async fn reset_offsets(
    State(state): State<OperationsState>,
    Path(name): Path<String>,
    ValidJson(request): ValidJson<OffsetResetRequest>,
) -> ApiResult<Json<Value>> {
    let to = bus::ResetTo::parse(&request.to).map_err(|message| BadRequest::field("to", message))?;
    if let Some(topic) = &request.topic {
        let read_by_group = state.bus.catalogue().topic(topic).is_some_and(|t| t.consumers.contains(&name));
        if !read_by_group {
            let message = format!("consumer group {name} does not read topic {topic} (topics/catalogue.toml)");
            return Err(BadRequest::field("topic", message).into());
        }
    }
    match state.bus.resets().reset(&name, to, request.topic).await {
        Ok(partitions) => Ok(Json(json!({ "group": name, "to": request.to, "partitions": partitions }))),
        Err(error @ bus::ResetError::NotRunHere(_)) => Err(BadRequest::not_found(error.to_string()).into()),
        Err(error @ bus::ResetError::Failed { .. }) => Err(BadRequest::conflict(error.to_string()).into()),
    }
}
