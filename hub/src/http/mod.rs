//! The HTTP layer. One route table — every route the hub serves, its own and its connectors',
//! each with its access rule and its description — drives the router, the OpenAPI document and
//! the gate. Handlers only translate between HTTP and the services, returning `ApiError`s.
pub mod audit;
pub mod cases;
pub mod console;
pub mod gate;
pub mod metrics;
pub mod openapi;
pub mod operations;
pub mod reviews;
pub mod schema_registry;
pub mod tokens;

use std::sync::Arc;

use axum::middleware::from_fn_with_state;
use axum::Router;
use hub_web::Route;

use crate::app::audit::Ledger;
use crate::app::tokens::Tokens;

/// The state each group of the hub's own routes needs.
pub struct Services {
    pub cases: cases::CasesState,
    pub operations: operations::OperationsState,
    pub audit: audit::AuditState,
    pub tokens: Tokens,
    pub probe: metrics::Probe,
}

/// The route table: the hub's routes with their state given, the connectors' routes, the
/// console, the schema registry and the OpenAPI document of them all.
pub fn table(services: Services, connector_routes: Vec<Route>) -> Vec<Route> {
    fn given<S: Clone + Send + Sync + 'static>(routes: Vec<Route<S>>, state: &S) -> impl Iterator<Item = Route> + '_ {
        routes.into_iter().map(move |route| route.with_state(state.clone()))
    }
    let mut routes: Vec<Route> = given(cases::routes(), &services.cases)
        .chain(given(reviews::routes(), &services.cases))
        .chain(given(operations::routes(), &services.operations))
        .chain(given(audit::routes(), &services.audit))
        .chain(given(tokens::routes(), &services.tokens))
        .chain(given(metrics::routes(), &services.probe))
        .chain(connector_routes)
        .chain(console::routes())
        .chain(schema_registry::routes())
        .collect();
    openapi::serve(&mut routes);
    routes
}

/// The router of the table behind the gate (outermost: it lets in, names the asker for the
/// ledger's middleware, and masks), with the ledger's middleware when the ledger is kept.
pub fn router(routes: Vec<Route>, tokens: Tokens, ledger: Option<Arc<Ledger>>) -> Router {
    let rules = gate::Rules::of(&routes);
    let mut router = Router::new();
    for route in routes {
        router = router.route(route.path, route.handler);
    }
    if let Some(ledger) = &ledger {
        router = router.layer(from_fn_with_state(ledger.clone(), audit::record_in_ledger));
    }
    let gate = Arc::new(gate::Gate { rules, tokens, ledger });
    router.layer(from_fn_with_state(gate, gate::guard))
}
