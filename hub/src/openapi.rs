//! The API's OpenAPI 3.0 document, served at `/openapi.json`. Each module describes its own
//! routes next to its router, with the request and query types its handlers parse (their JSON
//! Schemas derived by schemars, so a field cannot change without the document changing); the
//! rule of each route (`domain::access::ROUTES`) adds who may call it. A test holds the
//! described routes and the rule table to the same set.
use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{json, Map, Value};

use crate::domain::access::{rule, Rule};

/// One route as the document describes it.
pub struct Operation {
    pub method: &'static str,
    pub path: &'static str,
    pub tag: &'static str,
    pub summary: &'static str,
    query: Option<Schema>,
    body: Option<Value>,
    /// The media type of a success (JSON unless said otherwise).
    produces: &'static str,
}

impl Operation {
    pub fn new(method: &'static str, path: &'static str, tag: &'static str, summary: &'static str) -> Operation {
        Operation { method, path, tag, summary, query: None, body: None, produces: "application/json" }
    }

    /// The query parameters: the fields of the type the handler reads them into.
    pub fn query<T: JsonSchema>(self, generator: &mut SchemaGenerator) -> Operation {
        Operation { query: Some(T::json_schema(generator)), ..self }
    }

    /// The JSON body: the type the handler parses.
    pub fn body<T: JsonSchema>(self, generator: &mut SchemaGenerator) -> Operation {
        Operation { body: Some(generator.subschema_for::<T>().to_value()), ..self }
    }

    /// A body the document does not model (a counterpart's signed push).
    pub fn any_body(self) -> Operation {
        Operation { body: Some(json!({"type": "object"})), ..self }
    }

    pub fn produces(self, media_type: &'static str) -> Operation {
        Operation { produces: media_type, ..self }
    }

    fn parameters(&self) -> Vec<Value> {
        let mut parameters: Vec<Value> = self
            .path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| {
                let schema = if matches!(name, "position" | "seq") { json!({"type": "integer", "minimum": 0}) } else { json!({"type": "string"}) };
                json!({"name": name, "in": "path", "required": true, "schema": schema})
            })
            .collect();
        if let Some(query) = &self.query {
            let required: Vec<&str> = query.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
            for (name, schema) in query.get("properties").and_then(Value::as_object).into_iter().flatten() {
                parameters.push(json!({"name": name, "in": "query", "required": required.contains(&name.as_str()), "schema": schema}));
            }
        }
        parameters
    }

    fn to_value(&self) -> Value {
        let mut operation = json!({
            "tags": [self.tag],
            "summary": self.summary,
            "operationId": format!("{} {}", self.method, self.path),
            "parameters": self.parameters(),
            "responses": {
                "2XX": {"description": "done", "content": {self.produces: {}}},
                "4XX": {"description": "refused: unreadable (400), no valid token (401), not this role's or not one's own (403), missing (404), out of turn (409), invalid (422)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            },
        });
        match rule(self.method, self.path) {
            Some(Rule::Roles(roles)) => {
                operation["security"] = json!([{"bearer": []}]);
                operation["x-roles"] = json!(roles.iter().map(|role| role.code()).collect::<Vec<_>>());
            }
            Some(Rule::Signed) => {
                operation["security"] = json!([]);
                operation["description"] = json!("Signed by the counterpart (X-App-Id, X-Timestamp, X-Signature: HMAC-SHA256), not by a token.");
            }
            Some(Rule::Public) | None => operation["security"] = json!([]),
        }
        if let Some(body) = &self.body {
            operation["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": body}}});
        }
        operation
    }
}

fn build() -> Value {
    let mut generator = SchemaSettings::openapi3().into_generator();
    let mut operations = crate::api::operations(&mut generator);
    operations.extend(crate::audit::operations(&mut generator));
    operations.extend(crate::access::operations(&mut generator));
    operations.extend(crate::metrics::operations());
    operations.extend(connector_operations(&mut generator));
    operations.push(Operation::new("GET", "/openapi.json", "service", "this document"));
    let mut paths = Map::new();
    for operation in &operations {
        let path = paths.entry(operation.path).or_insert_with(|| json!({}));
        path[operation.method.to_lowercase()] = operation.to_value();
    }
    let mut schemas = generator.take_definitions(true);
    schemas.insert("Error".into(), json!({"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}, "field": {"type": "string", "nullable": true}}}));
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "County hub API (county · township · village government services)",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Service points, approvers, supervisors, postal, the data bureau and integrators. Every /api/v1 route takes a bearer token of one role (x-roles lists them); the counterparts' pushes are signed instead.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "hubt_<id>_<secret>"}},
        },
    })
}

/// The document, built once.
pub fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(build)
}

/// The routes the connectors crate serves inside the hub.
fn connector_operations(generator: &mut SchemaGenerator) -> Vec<Operation> {
    use connectors::control::PauseRequest;
    use connectors::ecert::inbound::{FindQuery, LookupPurpose};
    vec![
        Operation::new("POST", "/connectors/province/applications", "counterparts", "the provincial platform pushes online applications").any_body(),
        Operation::new("POST", "/connectors/bank/payments", "counterparts", "the bank pushes payment confirmations").any_body(),
        Operation::new("POST", "/connectors/postal/tracking", "counterparts", "the carrier pushes tracking events").any_body(),
        Operation::new("GET", "/api/v1/certificates", "certificates", "a holder's e-certificates, verified").query::<FindQuery>(generator),
        Operation::new("GET", "/api/v1/certificates/{certificate_id}", "certificates", "fetch and verify an e-certificate").query::<LookupPurpose>(generator),
        Operation::new("GET", "/api/v1/connectors", "integrators", "each connector's state, applied batches and incidents"),
        Operation::new("GET", "/api/v1/connectors/{name}", "integrators", "one connector's state"),
        Operation::new("POST", "/api/v1/connectors/{name}/pause", "integrators", "pause a connector").body::<PauseRequest>(generator),
        Operation::new("POST", "/api/v1/connectors/{name}/resume", "integrators", "resume a connector; resolves its open incidents"),
        Operation::new("POST", "/api/v1/connectors/{name}/restart", "integrators", "let a connector try again now"),
    ]
}

pub fn router() -> Router {
    Router::new().route("/openapi.json", get(|| async { ([(header::CONTENT_TYPE, "application/json")], document().to_string()).into_response() }))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::domain::access::ROUTES;

    #[test]
    fn the_document_describes_exactly_the_routes_that_have_rules() {
        let document = document();
        let mut described = BTreeSet::new();
        for (path, operations) in document["paths"].as_object().unwrap() {
            for method in operations.as_object().unwrap().keys() {
                described.insert((method.to_uppercase(), path.clone()));
            }
        }
        let ruled: BTreeSet<(String, String)> = ROUTES.iter().map(|(method, path, _)| (method.to_string(), path.to_string())).collect();
        assert_eq!(described.difference(&ruled).collect::<Vec<_>>(), Vec::<&(String, String)>::new(), "described but without a rule");
        assert_eq!(ruled.difference(&described).collect::<Vec<_>>(), Vec::<&(String, String)>::new(), "ruled but not described");
    }

    #[test]
    fn every_reference_resolves_and_bodies_refuse_unknown_fields() {
        let document = document();
        let text = document.to_string();
        let schemas = document["components"]["schemas"].as_object().unwrap();
        for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = &reference[..reference.find('"').unwrap()];
            assert!(schemas.contains_key(name), "{name} is referenced but not defined");
        }
        assert_eq!(schemas["DecisionRequest"]["additionalProperties"], false);
        assert_eq!(schemas["DecisionRequest"]["required"], json!(["outcome", "officer", "department_code"]));
        let submit = &document["paths"]["/api/v1/applications"]["post"];
        assert_eq!(submit["x-roles"], json!(["village_clerk", "township_clerk", "bank_outlet"]));
        let listing = &document["paths"]["/api/v1/cases"]["get"]["parameters"];
        assert!(listing.as_array().unwrap().iter().any(|p| p["name"] == "state" && p["required"] == true), "{listing}");
    }
}
