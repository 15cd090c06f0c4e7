//! The web console (政务服务协同工作台): static pages served by the hub, in Chinese, one view per
//! role. The pages hold no data; they call the API with the token the user signs in with, so
//! the gate's rules, scopes, masking and audit apply to the console exactly as to any client.
use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use hub_core::access::Rule;
use hub_web::Route;

/// The console's files, compiled in so the hub binary serves them from any directory.
const FILES: [(&str, &str, &str); 3] = [
    ("index.html", "text/html; charset=utf-8", include_str!("../../console/index.html")),
    ("console.css", "text/css; charset=utf-8", include_str!("../../console/console.css")),
    ("console.js", "text/javascript; charset=utf-8", include_str!("../../console/console.js")),
];

/// Public: the pages hold no data of their own; everything they show they ask the API for with
/// the user's token. Not API operations, so not in the OpenAPI document.
pub fn routes() -> Vec<Route> {
    vec![
        Route::get("/", Rule::Public, || async { Redirect::to("/console/") }),
        Route::get("/console", Rule::Public, || async { Redirect::to("/console/") }),
        Route::get("/console/", Rule::Public, || async { file("index.html") }),
        Route::get("/console/{file}", Rule::Public, |Path(name): Path<String>| async move { file(&name) }),
    ]
}

fn file(name: &str) -> Response {
    match FILES.iter().find(|(file, _, _)| *file == name) {
        Some((_, content_type, body)) => {
            ([(header::CONTENT_TYPE, *content_type), (header::CACHE_CONTROL, "no-cache")], *body).into_response()
        }
        None => (StatusCode::NOT_FOUND, format!("the console has no file {name}")).into_response(),
    }
}
