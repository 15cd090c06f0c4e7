//! The inbound halves' pushes: what a counterpart pushed is recorded through the outbox
//! (deduplicated on each effect's source id) before the push is acknowledged.
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bus::{Effect, Outbox};
use hub_web::BadRequest;
use serde::{Deserialize, Serialize};

/// Our answer to a push: 200 with `success` once every item is durably recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushAck {
    pub success: bool,
    /// Items recorded now.
    pub accepted: usize,
    /// Items seen before (retries, duplicates), recorded nothing.
    pub duplicates: usize,
}

/// Records a push's `effects` under `consumer` and answers it: a bad push gets its 400 and
/// records nothing; a push the hub cannot record now gets 503, and the counterpart pushes again,
/// which the source ids make harmless.
pub async fn record_push(outbox: &dyn Outbox, consumer: &str, effects: Result<Vec<Effect>, BadRequest>) -> Response {
    let effects = match effects {
        Ok(effects) => effects,
        Err(bad) => return bad.into_response(),
    };
    match outbox.apply_all(consumer, &effects).await {
        Ok(fresh) => {
            let accepted = fresh.iter().filter(|new| **new).count();
            Json(PushAck { success: true, accepted, duplicates: fresh.len() - accepted }).into_response()
        }
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), consumer, items = effects.len(), "could not record a push");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({"success": false, "error": "temporarily unable to record the push"})),
            )
                .into_response()
        }
    }
}
