//! The API's gate: each request let in by its route's rule from the route table, each denial
//! written to the audit ledger, and ID numbers masked in the JSON answers of the roles that do
//! not need them.
use std::collections::HashMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use axum::Json;
use hub_core::access::{mask_id_numbers, Rule};
use hub_web::{ApiError, BadRequest, Refusal, Refusals, Route};

use crate::app::audit::Ledger;
use crate::app::tokens::{Tokens, Unauthenticated};

/// Largest JSON answer the gate masks (the longest case lists are far below).
const MASKED_BODY_LIMIT: usize = 64 << 20;

/// The gate's state: each route's rule from the table, the tokens, and the ledger that keeps
/// denials (none when auditing is off).
pub struct Gate {
    pub rules: Rules,
    pub tokens: Tokens,
    pub ledger: Option<Arc<Ledger>>,
}

/// Each route's rule, by method and path template, as the route table gives them.
#[derive(Default)]
pub struct Rules(HashMap<&'static str, HashMap<Method, Rule>>);

impl Rules {
    pub fn of(routes: &[Route]) -> Rules {
        let mut rules = Rules::default();
        for route in routes {
            rules.0.entry(route.path).or_default().insert(route.method.clone(), route.rule);
        }
        rules
    }
}

/// Middleware: lets a request through by its route's rule, with the seat in its extensions;
/// writes every refusal (its own, and handlers' refusals of cases not one's own) to the
/// ledger; masks ID numbers in the answers of roles that do not see them.
pub async fn guard(State(gate): State<Arc<Gate>>, mut request: Request, next: Next) -> Response {
    let Some(template) = request.extensions().get::<MatchedPath>().map(|path| path.as_str().to_string()) else {
        return next.run(request).await;
    };
    let method = request.method().clone();
    let action = format!("{method} {}", request.uri().path());
    let roles = match gate.rules.0.get(template.as_str()).map(|by_method| by_method.get(&method)) {
        Some(Some(Rule::Public | Rule::Signed)) => return next.run(request).await,
        Some(Some(Rule::Roles(roles))) => *roles,
        Some(None) => {
            let message = format!("{method} is not served at {template}");
            return BadRequest { status: StatusCode::METHOD_NOT_ALLOWED, field: None, message }.into_response();
        }
        None => {
            let refusal = Refusal {
                status: StatusCode::FORBIDDEN,
                reason: format!("{template} has no access rule"),
                seat: None,
                field: None,
            };
            return gate.refuse(&action, refusal).await;
        }
    };
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(presented) = presented else {
        let reason = "this route needs a token: Authorization: Bearer hubt_…".to_string();
        return gate.refuse(&action, Refusal::unauthenticated(reason, None)).await;
    };
    let seat = match gate.tokens.authenticate(presented).await {
        Ok(seat) => seat,
        Err(Unauthenticated::Refused { reason, seat }) => {
            return gate.refuse(&action, Refusal::unauthenticated(reason, seat)).await
        }
        Err(Unauthenticated::Unavailable(reason)) => return ApiError::Unavailable(reason).into_response(),
    };
    if !roles.contains(&seat.role) {
        let allowed: Vec<&str> = roles.iter().map(|role| role.code()).collect();
        let reason = format!("{method} {template} is for {}; this token is {}", allowed.join(", "), seat.role.code());
        return gate.refuse(&action, Refusal::not_yours(&seat, reason)).await;
    }
    let masks = !seat.role.sees_id_numbers();
    request.extensions_mut().insert(seat);
    let mut response = next.run(request).await;
    if let Some(Refusals(refusals)) = response.extensions_mut().remove::<Refusals>() {
        for refusal in &refusals {
            gate.record(&action, refusal).await;
        }
    }
    if masks {
        mask_response(response).await
    } else {
        response
    }
}

impl Gate {
    async fn refuse(&self, action: &str, refusal: Refusal) -> Response {
        self.record(action, &refusal).await;
        refusal.into_response()
    }

    async fn record(&self, action: &str, refusal: &Refusal) {
        if let Some(ledger) = &self.ledger {
            ledger.record_denial(action, refusal.seat.as_ref(), &refusal.reason, refusal.status.as_str()).await;
        }
    }
}

/// The answer with every ID number field of its JSON masked.
async fn mask_response(response: Response) -> Response {
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    if !is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MASKED_BODY_LIMIT).await else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(serde_json::json!({"error": "the answer was too large to mask"})),
        )
            .into_response();
    };
    let masked = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(mut document) => {
            mask_id_numbers(&mut document);
            Bytes::from(serde_json::to_vec(&document).expect("JSON serialises"))
        }
        Err(_) => bytes,
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(masked))
}
