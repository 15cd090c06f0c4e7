//! The HTTP kit every endpoint of the hub shares, the API's and the connectors' alike: one error
//! type with one body shape (`ApiError`), extractors whose rejections name the field
//! (`ValidJson`, `ValidQuery`), and the description of a route (`Route`) that the router, the
//! OpenAPI document and the access rules all read.
mod error;
mod extract;
mod route;

pub use error::{ApiError, ApiResult, BadRequest, Refusal, Refusals};
pub use extract::{parse_json, ValidJson, ValidQuery};
pub use route::{Doc, Route, SchemaOf};
