//! One error type for every handler, answered with one body shape:
//! `{"success": false, "error": "…", "field": "…" | null}`.
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hub_core::access::Seat;

/// What a handler returns: its answer, or why there is none.
pub type ApiResult<T = Response> = Result<T, ApiError>;

/// Why a request got no answer of its own.
#[derive(Debug)]
pub enum ApiError {
    /// Unreadable, invalid, missing or out of turn: a 4xx naming the field at fault.
    Bad(BadRequest),
    /// A seat asking for what is not its own: a 401/403 that the gate writes to the ledger.
    Refused(Refusal),
    /// A counterpart the answer depends on cannot answer now: 502, try again later.
    Upstream(String),
    /// The hub cannot serve this now (its store is unreachable, say): 503, try again later.
    Unavailable(String),
    /// The hub failed: logged with its cause, answered 500 without it; nothing was applied.
    Internal(anyhow::Error),
}

impl From<BadRequest> for ApiError {
    fn from(bad: BadRequest) -> ApiError {
        ApiError::Bad(bad)
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> ApiError {
        ApiError::Refused(refusal)
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(error: anyhow::Error) -> ApiError {
        if database_unavailable(&error) {
            tracing::warn!(error = format!("{error:#}"), "the database is unavailable");
            return ApiError::Unavailable("the database is unavailable now; try again".into());
        }
        ApiError::Internal(error)
    }
}

/// The database cannot be reached now (restarting, failing over, its pool exhausted, the
/// transaction chosen to yield): the request may be made again, which a client retrying with the
/// same request id does safely, rather than being told the hub failed.
fn database_unavailable(error: &anyhow::Error) -> bool {
    error.chain().filter_map(|cause| cause.downcast_ref::<sqlx::Error>()).any(|error| match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        // Connection exceptions (08), operator intervention such as a shutdown (57P),
        // serialization failures and deadlocks (40001, 40P01).
        sqlx::Error::Database(error) => error.code().is_some_and(|code| {
            code.starts_with("08") || code.starts_with("57P") || code == "40001" || code == "40P01"
        }),
        _ => false,
    })
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Bad(bad) => bad.into_response(),
            ApiError::Refused(refusal) => refusal.into_response(),
            ApiError::Upstream(message) => error_body(StatusCode::BAD_GATEWAY, &message, None),
            ApiError::Unavailable(message) => {
                let mut response = error_body(StatusCode::SERVICE_UNAVAILABLE, &message, None);
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                response
            }
            ApiError::Internal(error) => {
                tracing::error!(error = format!("{error:#}"), "request failed");
                error_body(StatusCode::INTERNAL_SERVER_ERROR, "internal error; the request was not applied", None)
            }
        }
    }
}

fn error_body(status: StatusCode, message: &str, field: Option<&str>) -> Response {
    (status, Json(serde_json::json!({ "success": false, "error": message, "field": field }))).into_response()
}

/// A request error answered with a 4xx status and a JSON body naming the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRequest {
    pub status: StatusCode,
    pub field: Option<String>,
    pub message: String,
}

impl BadRequest {
    /// 400: the field cannot be read as this request needs it.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> BadRequest {
        BadRequest { status: StatusCode::BAD_REQUEST, field: Some(field.into()), message: message.into() }
    }

    /// 422: the field reads well but its value is not acceptable.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> BadRequest {
        BadRequest { status: StatusCode::UNPROCESSABLE_ENTITY, ..BadRequest::field(field, message) }
    }

    /// 404: no such thing.
    pub fn not_found(message: impl Into<String>) -> BadRequest {
        BadRequest { status: StatusCode::NOT_FOUND, field: None, message: message.into() }
    }

    /// 409: not now, in this state.
    pub fn conflict(message: impl Into<String>) -> BadRequest {
        BadRequest { status: StatusCode::CONFLICT, field: None, message: message.into() }
    }

    /// The same error for a field of an element inside a larger body, e.g. `traces[3]`.
    pub fn within(self, path: &str) -> BadRequest {
        let field = Some(self.field.map_or_else(|| path.to_string(), |field| format!("{path}.{field}")));
        BadRequest { message: format!("{path}: {}", self.message), field, ..self }
    }
}

impl IntoResponse for BadRequest {
    fn into_response(self) -> Response {
        error_body(self.status, &self.message, self.field.as_deref())
    }
}

/// A request turned away: with what status, why, and by whom if the token was known.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub status: StatusCode,
    pub reason: String,
    pub seat: Option<Seat>,
    /// The request field that asked for what is not the seat's (a department code, say).
    pub field: Option<String>,
}

/// The refusals a response carries (one, or several items of a batch), for the gate to write
/// down.
#[derive(Debug, Clone)]
pub struct Refusals(pub Vec<Refusal>);

impl Refusal {
    /// A seat asking for a case, a point or a department not its own.
    pub fn not_yours(seat: &Seat, reason: String) -> Refusal {
        Refusal { status: StatusCode::FORBIDDEN, reason, seat: Some(seat.clone()), field: None }
    }

    /// No valid token.
    pub fn unauthenticated(reason: String, seat: Option<Seat>) -> Refusal {
        Refusal { status: StatusCode::UNAUTHORIZED, reason, seat, field: None }
    }

    pub fn on_field(self, field: &str) -> Refusal {
        Refusal { field: Some(field.to_string()), ..self }
    }

    /// The refusal as one result among a batch's.
    pub fn as_result(&self, case_number: &str) -> serde_json::Value {
        serde_json::json!({"case_number": case_number, "status": self.status.as_u16(), "error": self.reason, "field": self.field})
    }

    /// Marks a response as carrying these refusals, for the gate to write down.
    pub fn attach_all(refusals: Vec<Refusal>, mut response: Response) -> Response {
        if !refusals.is_empty() {
            response.extensions_mut().insert(Refusals(refusals));
        }
        response
    }
}

impl IntoResponse for Refusal {
    /// The reason as JSON, with the refusal attached for the gate to write down.
    fn into_response(self) -> Response {
        let mut response = error_body(self.status, &self.reason, self.field.as_deref());
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"county-hub\""));
        }
        Refusal::attach_all(vec![self], response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_of(error: anyhow::Error) -> StatusCode {
        ApiError::from(error).into_response().status()
    }

    #[test]
    fn a_database_that_cannot_be_reached_is_unavailable_not_a_failure() {
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        let unavailable = ApiError::from(anyhow::Error::from(sqlx::Error::Io(reset)).context("opening cases"));
        let response = unavailable.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        assert_eq!(status_of(sqlx::Error::PoolTimedOut.into()), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(status_of(sqlx::Error::RowNotFound.into()), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(status_of(anyhow::anyhow!("a bug")), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
