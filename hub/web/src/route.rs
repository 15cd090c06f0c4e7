//! One route as the table lists it: method, path, who may call it, what the OpenAPI document
//! says of it, and its handler. The router, the document and the gate all read the same table.
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{self, MethodRouter};
use hub_core::access::Rule;
use schemars::{JsonSchema, Schema, SchemaGenerator};

/// How a type's JSON Schema is made, for the document (called only when it is built).
pub type SchemaOf = fn(&mut SchemaGenerator) -> Schema;

/// A route's entry in the OpenAPI document.
#[derive(Clone)]
pub struct Doc {
    pub tag: &'static str,
    pub summary: &'static str,
    /// The query parameters: the fields of the type the handler reads them into.
    pub query: Option<SchemaOf>,
    /// The JSON body: the type the handler parses; `Some(None)` for a body the document does
    /// not model (a counterpart's signed push).
    pub body: Option<Option<SchemaOf>>,
    /// The media type of a success.
    pub produces: &'static str,
}

/// One route of the table. `S` is the state its handler still needs; the table's routes have
/// theirs given (`Route<()>`).
pub struct Route<S = ()> {
    pub method: Method,
    pub path: &'static str,
    pub rule: Rule,
    /// None for routes that are not API operations (the console's files, the schema registry).
    pub doc: Option<Doc>,
    pub handler: MethodRouter<S>,
}

impl<S: Clone + Send + Sync + 'static> Route<S> {
    pub fn get<H: Handler<T, S>, T: 'static>(path: &'static str, rule: Rule, handler: H) -> Route<S> {
        Route { method: Method::GET, path, rule, doc: None, handler: routing::get(handler) }
    }

    pub fn post<H: Handler<T, S>, T: 'static>(path: &'static str, rule: Rule, handler: H) -> Route<S> {
        Route { method: Method::POST, path, rule, doc: None, handler: routing::post(handler) }
    }

    /// Described in the document under `tag`.
    pub fn doc(self, tag: &'static str, summary: &'static str) -> Route<S> {
        Route { doc: Some(Doc { tag, summary, query: None, body: None, produces: "application/json" }), ..self }
    }

    pub fn query<T: JsonSchema>(self) -> Route<S> {
        self.described(|doc| doc.query = Some(|generator| T::json_schema(generator)))
    }

    pub fn body<T: JsonSchema>(self) -> Route<S> {
        self.described(|doc| doc.body = Some(Some(|generator| generator.subschema_for::<T>())))
    }

    /// A body the document does not model (a counterpart's signed push).
    pub fn any_body(self) -> Route<S> {
        self.described(|doc| doc.body = Some(None))
    }

    pub fn produces(self, media_type: &'static str) -> Route<S> {
        self.described(|doc| doc.produces = media_type)
    }

    fn described(mut self, change: impl FnOnce(&mut Doc)) -> Route<S> {
        change(self.doc.as_mut().expect("describe a route (doc) before its query, body or media type"));
        self
    }

    /// The route with its handler's state given.
    pub fn with_state<S2>(self, state: S) -> Route<S2> {
        Route {
            method: self.method,
            path: self.path,
            rule: self.rule,
            doc: self.doc,
            handler: self.handler.with_state(state),
        }
    }
}
