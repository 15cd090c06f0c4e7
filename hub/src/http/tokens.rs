//! The integrators' token routes, and `me`: who a token speaks for.
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse as _, Response};
use axum::{Extension, Json};
use hub_core::access::{Role, Rule, Seat};
use hub_web::{ApiResult, BadRequest, Route, ValidJson};
use serde_json::{json, Value};

use crate::app::tokens::{IssueError, TokenRequest, Tokens};

const OPERATORS: Rule = Rule::Roles(&[Role::Integrator]);

pub fn routes() -> Vec<Route<Tokens>> {
    const TAG: &str = "integrators";
    vec![
        Route::get("/api/v1/tokens", OPERATORS, list)
            .doc(TAG, "every token: holder, role, unit, expiry, revocation (never a secret)"),
        Route::post("/api/v1/tokens", OPERATORS, issue)
            .doc(TAG, "issue a token; its text is in this answer only")
            .body::<TokenRequest>(),
        Route::post("/api/v1/tokens/{token_id}/revocation", OPERATORS, revoke).doc(TAG, "revoke a token"),
        Route::get("/api/v1/me", Rule::Roles(&Role::ALL), me)
            .doc("service", "who this token speaks for: holder, role, unit"),
    ]
}

/// Who the token speaks for, as the console greets them: holder, role and unit by name.
async fn me(State(tokens): State<Tokens>, Extension(seat): Extension<Seat>) -> Json<Value> {
    let reference = tokens.reference.get();
    let unit_name = seat.unit.as_deref().and_then(|code| reference.unit_name(code));
    Json(json!({
        "holder": seat.holder,
        "role": seat.role,
        "role_title": seat.role.title(),
        "unit": seat.unit,
        "unit_name": unit_name,
        "window": seat.window,
        "window_name": seat.window.as_deref().and_then(|code| reference.window(code)).map(|w| w.name.clone()),
        "county": reference.county.name,
    }))
}

async fn list(State(tokens): State<Tokens>) -> ApiResult<Json<Value>> {
    Ok(Json(json!({ "tokens": tokens.list().await? })))
}

async fn issue(
    State(tokens): State<Tokens>,
    Extension(seat): Extension<Seat>,
    ValidJson(request): ValidJson<TokenRequest>,
) -> ApiResult<Response> {
    match tokens.issue(request, &seat.holder).await {
        Ok(issued) => Ok((StatusCode::CREATED, Json(issued)).into_response()),
        Err(IssueError::Bad(bad)) => Err(bad.into()),
        Err(IssueError::Store(error)) => Err(error.into()),
    }
}

async fn revoke(State(tokens): State<Tokens>, Path(token_id): Path<String>) -> ApiResult<Response> {
    match tokens.revoke(&token_id).await? {
        Some(record) => Ok(Json(record).into_response()),
        None => Err(BadRequest::not_found(format!("no token {token_id}")).into()),
    }
}
