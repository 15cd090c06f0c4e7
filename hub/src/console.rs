//! The web console (政务服务协同工作台): static pages served by the hub, in Chinese, one view per
//! role. The pages hold no data; they call the API with the token the user signs in with, so
//! the gate's rules, scopes, masking and audit apply to the console exactly as to any client.
use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

/// The console's files, compiled in so the hub binary serves them from any directory.
const FILES: [(&str, &str, &str); 3] = [
    ("index.html", "text/html; charset=utf-8", include_str!("../console/index.html")),
    ("console.css", "text/css; charset=utf-8", include_str!("../console/console.css")),
    ("console.js", "text/javascript; charset=utf-8", include_str!("../console/console.js")),
];

pub fn router() -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/console/") }))
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route("/console/", get(|| async { file("index.html") }))
        .route("/console/{file}", get(|Path(name): Path<String>| async move { file(&name) }))
}

fn file(name: &str) -> Response {
    match FILES.iter().find(|(file, _, _)| *file == name) {
        Some((_, content_type, body)) => ([(header::CONTENT_TYPE, *content_type), (header::CACHE_CONTROL, "no-cache")], *body).into_response(),
        None => (StatusCode::NOT_FOUND, format!("the console has no file {name}")).into_response(),
    }
}
