//! Extractors whose rejections are `BadRequest`s naming the field at fault.
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::BadRequest;

/// A JSON body, deserialised; when it does not fit, the 400 names the path of the field.
pub struct ValidJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ValidJson<T> {
    type Rejection = BadRequest;

    async fn from_request(request: Request, state: &S) -> Result<Self, BadRequest> {
        let body = Bytes::from_request(request, state).await.map_err(|rejection| BadRequest {
            status: rejection.status(),
            field: None,
            message: rejection.body_text(),
        })?;
        parse_json(&body).map(ValidJson)
    }
}

/// A request's query string, deserialised; when it does not fit, the 400 says why.
pub struct ValidQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ValidQuery<T> {
    type Rejection = BadRequest;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, BadRequest> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(query)) => Ok(ValidQuery(query)),
            Err(rejection) => {
                Err(BadRequest { status: StatusCode::BAD_REQUEST, field: None, message: rejection.body_text() })
            }
        }
    }
}

/// Parses a JSON body; on failure the error names the path of the offending field.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, BadRequest> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let field = if path == "." { None } else { Some(path) };
        let message = match &field {
            Some(field) => format!("{field}: {inner}"),
            None => format!("body is not valid JSON for this request: {inner}"),
        };
        BadRequest { status: StatusCode::BAD_REQUEST, field, message }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)] // read only through the errors
    struct Outer {
        inner: Inner,
    }
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        count: u32,
    }

    #[test]
    fn parse_errors_name_the_field() {
        let error = parse_json::<Outer>(br#"{"inner": {"count": "x"}}"#).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("inner.count"));
        let error = parse_json::<Outer>(br#"{"inner": {}}"#).unwrap_err();
        assert!(error.message.contains("count"), "{}", error.message);
        assert!(parse_json::<Outer>(b"not json").is_err());
    }
}
