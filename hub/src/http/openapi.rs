//! The API's OpenAPI 3.0 document, served at `/openapi.json`: built from the route table, so
//! every route the router serves is described, with the JSON Schemas (schemars) of the request
//! and query types its handler parses and the roles its rule lets in.
use std::sync::{Arc, OnceLock};

use axum::http::header;
use hub_core::access::Rule;
use hub_web::{Doc, Route};
use schemars::generate::SchemaSettings;
use schemars::Schema;
use serde_json::{json, Map, Value};

/// Adds `GET /openapi.json` to the table, serving the document of the whole table.
pub fn serve(routes: &mut Vec<Route>) {
    let document: Arc<OnceLock<String>> = Arc::default();
    let served = document.clone();
    let handler = move || {
        let served = served.clone();
        async move { ([(header::CONTENT_TYPE, "application/json")], served.get().cloned().unwrap_or_default()) }
    };
    routes.push(Route::get("/openapi.json", Rule::Public, handler).doc("service", "this document"));
    document.set(build(routes).to_string()).expect("the document is built once");
}

/// One operation of the document.
struct Operation<'r> {
    method: &'r str,
    path: &'r str,
    rule: Rule,
    doc: &'r Doc,
    query: Option<Schema>,
    body: Option<Value>,
}

impl Operation<'_> {
    fn parameters(&self) -> Vec<Value> {
        let mut parameters: Vec<Value> = self
            .path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| {
                let schema = if matches!(name, "position" | "seq") {
                    json!({"type": "integer", "minimum": 0})
                } else {
                    json!({"type": "string"})
                };
                json!({"name": name, "in": "path", "required": true, "schema": schema})
            })
            .collect();
        if let Some(query) = &self.query {
            let required: Vec<&str> = query
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            for (name, schema) in query.get("properties").and_then(Value::as_object).into_iter().flatten() {
                parameters.push(json!({"name": name, "in": "query", "required": required.contains(&name.as_str()), "schema": schema}));
            }
        }
        parameters
    }

    fn to_value(&self) -> Value {
        let mut operation = json!({
            "tags": [self.doc.tag],
            "summary": self.doc.summary,
            "operationId": format!("{} {}", self.method, self.path),
            "parameters": self.parameters(),
            "responses": {
                "2XX": {"description": "done", "content": {self.doc.produces: {}}},
                "4XX": {"description": "refused: unreadable (400), no valid token (401), not this role's or not one's own (403), missing (404), out of turn (409), invalid (422)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            },
        });
        match self.rule {
            Rule::Roles(roles) => {
                operation["security"] = json!([{"bearer": []}]);
                operation["x-roles"] = json!(roles.iter().map(|role| role.code()).collect::<Vec<_>>());
            }
            Rule::Signed => {
                operation["security"] = json!([]);
                operation["description"] = json!(
                    "Signed by the counterpart (X-App-Id, X-Timestamp, X-Signature: HMAC-SHA256), not by a token."
                );
            }
            Rule::Public => operation["security"] = json!([]),
        }
        if let Some(body) = &self.body {
            operation["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": body}}});
        }
        operation
    }
}

/// The document of every described route of the table.
fn build(routes: &[Route]) -> Value {
    let mut generator = SchemaSettings::openapi3().into_generator();
    let operations: Vec<Operation> = routes
        .iter()
        .filter_map(|route| {
            let doc = route.doc.as_ref()?;
            Some(Operation {
                method: route.method.as_str(),
                path: route.path,
                rule: route.rule,
                doc,
                query: doc.query.map(|schema| schema(&mut generator)),
                body: doc.body.map(|schema| {
                    schema.map_or_else(|| json!({"type": "object"}), |schema| schema(&mut generator).to_value())
                }),
            })
        })
        .collect();
    let mut paths = Map::new();
    for operation in &operations {
        let path = paths.entry(operation.path).or_insert_with(|| json!({}));
        path[operation.method.to_lowercase()] = operation.to_value();
    }
    let mut schemas = generator.take_definitions(true);
    let error = json!({"type": "object", "required": ["error"], "properties": {
        "success": {"type": "boolean"},
        "error": {"type": "string"},
        "field": {"type": "string", "nullable": true},
    }});
    schemas.insert("Error".into(), error);
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
