//! The scrape answer: `GET /metrics` on `traced::serve`, and the handler an
//! axum app mounts on a route of its own. It is plain `http`, so it needs no
//! `serve` feature and answers in any server.

use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Response};

use std::collections::HashSet;

use crate::metrics::exposition::{OPENMETRICS, PROMETHEUS_TEXT, render, wants_openmetrics};
use crate::metrics::instrument_exposition::render_instruments;
use crate::metrics::instruments::collect;
use crate::metrics::request_metrics::families;

/// Answers a Prometheus scrape with the request metrics of every
/// [`crate::TraceLayer`] (and `traced::serve` endpoint) in the process,
/// `http_server_request_duration_seconds`, counted before sampling, and the
/// app's own instruments ([`crate::meter`]), in
/// OpenMetrics with exemplars when the scraper asks for it (Prometheus does),
/// else in the classic text format. `traced::serve` answers it on
/// `GET /metrics`; an axum app mounts it on a route outside its traced
/// routes, so that scrapes are neither traced nor counted:
///
/// The answer is a plain `http::Response`, so any server built on the `http`
/// crate can send it.
///
/// ```
/// # #[cfg(feature = "serve")] {
/// use axum::routing::{get, post};
///
/// let traced_routes = axum::Router::new()
///     .route("/generate/{model}", post(|| async { "done" }))
///     .layer(traced::TraceLayer::new());
/// let app: axum::Router = traced_routes.route("/metrics", get(traced::prometheus_metrics));
/// # }
/// ```
pub async fn prometheus_metrics(headers: HeaderMap) -> Response<String> {
    let accept = headers.get(ACCEPT).and_then(|value| value.to_str().ok());
    let openmetrics = wants_openmetrics(accept);
    let mut body = String::new();
    let mut written = HashSet::new();
    for family in families() {
        render(family.name, family.help, &family.snapshot(), openmetrics, &mut body);
        written.insert(family.name.to_string());
    }
    if let Some(instruments) = collect() {
        render_instruments(&instruments, openmetrics, &mut written, &mut body);
    }
    if openmetrics {
        body.push_str("# EOF\n");
    }
    let content_type = if openmetrics { OPENMETRICS } else { PROMETHEUS_TEXT };
    let mut response = Response::new(body);
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
