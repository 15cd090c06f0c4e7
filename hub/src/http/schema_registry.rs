//! The hub's schemas served through the read API of the Confluent Schema Registry, so standard
//! clients (Confluent's serdes in Java, Python, Go, …) decode the hub's topics: the schema id in
//! each message's wire format resolves at `GET /schema-registry/schemas/ids/{id}`. Subjects are
//! record names (Confluent's RecordNameStrategy: several record types share a topic). Read-only:
//! the contract is `schemas/registry.toml`, changed by commit, not by clients.
use apache_avro::schema_compatibility::SchemaCompatibility;
use apache_avro::Schema;
use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use contracts::{Registry, SchemaEntry};
use hub_core::access::Rule;
use hub_web::Route;
use serde::Deserialize;
use serde_json::{json, Value};

const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// Every version of a record reads and is read by every other (the contract tests hold it).
const COMPATIBILITY: &str = "FULL_TRANSITIVE";

/// Public: the registry serves the contracts, which are no one's data. Confluent's API, not the
/// hub's own operations, so not in the OpenAPI document.
pub fn routes() -> Vec<Route> {
    vec![
        Route::get("/schema-registry/subjects", Rule::Public, || async { answer(json!(subjects())) }),
        Route::get("/schema-registry/subjects/{subject}/versions", Rule::Public, versions),
        Route::get("/schema-registry/subjects/{subject}/versions/{version}", Rule::Public, version),
        Route::get("/schema-registry/subjects/{subject}/versions/{version}/schema", Rule::Public, version_schema),
        Route::get("/schema-registry/schemas/ids/{id}", Rule::Public, schema_by_id),
        Route::get("/schema-registry/schemas/ids/{id}/versions", Rule::Public, versions_of_id),
        Route::get("/schema-registry/schemas/types", Rule::Public, || async { answer(json!(["AVRO"])) }),
        Route::get("/schema-registry/config", Rule::Public, || async {
            answer(json!({ "compatibilityLevel": COMPATIBILITY }))
        }),
        Route::get("/schema-registry/config/{subject}", Rule::Public, subject_config),
        Route::post(
            "/schema-registry/compatibility/subjects/{subject}/versions/{version}",
            Rule::Public,
            compatibility,
        ),
    ]
}

fn answer(body: Value) -> Response {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], body.to_string()).into_response()
}

/// An error as Confluent's clients expect it: HTTP status, `error_code`, `message`.
struct Refused {
    status: StatusCode,
    error_code: u32,
    message: String,
}

fn refuse(status: StatusCode, error_code: u32, message: String) -> Refused {
    Refused { status, error_code, message }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let body = json!({ "error_code": self.error_code, "message": self.message }).to_string();
        (self.status, [(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response()
    }
}

type Answer = Result<Response, Refused>;

fn subjects() -> Vec<String> {
    let mut subjects: Vec<String> = Registry::global().entries().iter().map(|entry| entry.record.clone()).collect();
    subjects.sort();
    subjects.dedup();
    subjects
}

fn subject_versions(subject: &str) -> Result<Vec<&'static SchemaEntry>, Refused> {
    let versions = Registry::global().versions(subject);
    if versions.is_empty() {
        return Err(refuse(StatusCode::NOT_FOUND, 40401, format!("Subject '{subject}' not found.")));
    }
    Ok(versions)
}

/// A subject's version by number, `latest` or -1.
fn subject_version(subject: &str, version: &str) -> Result<&'static SchemaEntry, Refused> {
    let versions = subject_versions(subject)?;
    let found = match version {
        "latest" | "-1" => versions.last().copied(),
        number => match number.parse::<u32>() {
            Ok(number) => versions.iter().copied().find(|entry| entry.version == number),
            Err(_) => return Err(refuse(StatusCode::UNPROCESSABLE_ENTITY, 42202, format!("The specified version '{version}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\""))),
        },
    };
    found.ok_or_else(|| refuse(StatusCode::NOT_FOUND, 40402, format!("Version {version} not found.")))
}

fn described(entry: &SchemaEntry) -> Value {
    json!({ "subject": entry.record, "version": entry.version, "id": entry.id, "schema": compact(entry) })
}

/// The schema as compact JSON text, as the registry stores it.
fn compact(entry: &SchemaEntry) -> String {
    serde_json::from_str::<Value>(entry.text).map(|value| value.to_string()).unwrap_or_else(|_| entry.text.to_string())
}

async fn versions(Path(subject): Path<String>) -> Answer {
    let versions = subject_versions(&subject)?;
    Ok(answer(json!(versions.iter().map(|entry| entry.version).collect::<Vec<_>>())))
}

async fn version(Path((subject, version)): Path<(String, String)>) -> Answer {
    Ok(answer(described(subject_version(&subject, &version)?)))
}

async fn version_schema(Path((subject, version)): Path<(String, String)>) -> Answer {
    let entry = subject_version(&subject, &version)?;
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], compact(entry)).into_response())
}

fn entry_by_id(id: &str) -> Result<&'static SchemaEntry, Refused> {
    id.parse()
        .ok()
        .and_then(|id| Registry::global().by_id(id))
        .ok_or_else(|| refuse(StatusCode::NOT_FOUND, 40403, format!("Schema {id} not found")))
}

async fn schema_by_id(Path(id): Path<String>) -> Answer {
    Ok(answer(json!({ "schema": compact(entry_by_id(&id)?) })))
}

async fn versions_of_id(Path(id): Path<String>) -> Answer {
    let entry = entry_by_id(&id)?;
    Ok(answer(json!([{ "subject": entry.record, "version": entry.version }])))
}

async fn subject_config(Path(subject): Path<String>) -> Answer {
    subject_versions(&subject)?;
    Ok(answer(json!({ "compatibilityLevel": COMPATIBILITY })))
}

#[derive(Deserialize)]
struct CandidateSchema {
    schema: String,
    #[serde(rename = "schemaType", default)]
    schema_type: Option<String>,
}

/// Whether a candidate schema could be a new version: it must read and be read by the version
/// named (both directions, as the hub's contract requires of every version).
async fn compatibility(Path((subject, version)): Path<(String, String)>, body: axum::body::Bytes) -> Answer {
    let existing = subject_version(&subject, &version)?;
    let invalid = |message: String| refuse(StatusCode::UNPROCESSABLE_ENTITY, 42201, message);
    let candidate: CandidateSchema =
        serde_json::from_slice(&body).map_err(|error| invalid(format!("Invalid request: {error}")))?;
    if candidate.schema_type.as_deref().is_some_and(|kind| kind != "AVRO") {
        return Err(invalid("Only AVRO schemas are registered here".into()));
    }
    let parsed = Schema::parse_str(&candidate.schema).map_err(|error| invalid(format!("Invalid schema: {error}")))?;
    Ok(match SchemaCompatibility::mutual_read(&existing.schema, &parsed) {
        Ok(()) => answer(json!({ "is_compatible": true })),
        Err(error) => answer(json!({ "is_compatible": false, "messages": [error.to_string()] })),
    })
}
