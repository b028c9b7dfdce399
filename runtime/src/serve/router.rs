//! The app's routes over HTTP: POST JSON to each endpoint, a health route,
//! the Prometheus scrape (`GET /metrics`),
//! a not-found span for a wrong path; the request handling every traced
//! service shares (the caller's context, the response status on the span,
//! the `traceparent` and trace id on every answer) is [`TraceLayer`]'s.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use opentelemetry::Context;
use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::SpanContext;
use tokio::sync::Semaphore;
use traced_core::__layers::{Kind, Meta, RequestSlot, SpanHandle};

use crate::metrics::scrape::prometheus_metrics;
use crate::serve::app::App;
use crate::serve::event_sink::EventSink;
use crate::serve::reply::Reply;
use crate::serve::routes::{Call, Route};
use crate::serve::stream_response::stream_response;
use crate::serve::trace_layer::TraceLayer;
use crate::serve::w3c::valid_span;

const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

pub(crate) fn router<A: App>(app: Arc<A>, max_concurrency: Option<usize>) -> axum::Router {
    let limit = max_concurrency.map(|n| Arc::new(Semaphore::new(n)));
    // Probes are not traced (they would flood the backend); the answer still
    // names the caller's trace when it sent one.
    let mut router = axum::Router::new()
        .route(
            "/health",
            axum::routing::get(|| async move {
                let body = serde_json::json!({ "status": "ok", "service": A::SERVICE_NAME });
                reply_response(Reply::json(&body), None)
            }),
        )
        .route("/metrics", axum::routing::get(prometheus_metrics));
    for route in A::routes() {
        let app = Arc::clone(&app);
        let limit = limit.clone();
        let path = route.path;
        router = router.route(
            path,
            axum::routing::post(move |body: Bytes| handle(route.clone(), Arc::clone(&app), limit.clone(), body)),
        );
    }
    router
        .fallback(|| async move { not_found() })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TraceLayer::for_endpoints())
}

/// Runs on the context [`TraceLayer`] made current: the caller's, holding
/// the request's slot, where the endpoint's span leaves itself.
async fn handle<A: App>(route: Route<A>, app: Arc<A>, limit: Option<Arc<Semaphore>>, body: Bytes) -> Response {
    let cx = Context::current();
    let permit = match &limit {
        Some(limit) => limit.clone().acquire_owned().await.ok(),
        None => None,
    };
    let reply = match route.prepare(app, body.to_vec()) {
        Err(message) => {
            reject_input(route.name, &cx, &message);
            Reply::error(422, &format!("invalid input: {message}"))
        }
        Ok(Call::Blocking(call)) => {
            let cx = cx.clone();
            match tokio::task::spawn_blocking(move || {
                let _attached = cx.attach();
                call()
            })
            .await
            {
                Ok(reply) => reply,
                Err(join) => Reply::panicked(join),
            }
        }
        Ok(Call::Async(call)) => match tokio::spawn(call.with_context(cx.clone())).await {
            Ok(reply) => reply,
            Err(join) => Reply::panicked(join),
        },
        Ok(Call::BlockingStream(produce)) => {
            let (sink, opened) = EventSink::new();
            let producer_cx = cx.clone();
            let producer = tokio::task::spawn_blocking(move || {
                let _attached = producer_cx.attach();
                produce(sink);
            });
            match stream_response(opened, producer, permit).await {
                Ok(response) => return response,
                Err(reply) => reply,
            }
        }
        Ok(Call::AsyncStream(produce)) => {
            let (sink, opened) = EventSink::new();
            let producer = tokio::spawn(produce(sink).with_context(cx.clone()));
            match stream_response(opened, producer, permit).await {
                Ok(response) => return response,
                Err(reply) => reply,
            }
        }
    };
    let span = cx.get::<RequestSlot>().and_then(RequestSlot::span).or_else(|| valid_span(&cx));
    reply_response(reply, span)
}

/// A call to a path no endpoint serves gets a span, so that a caller with the
/// wrong URL finds its mistake in its own trace.
fn not_found() -> Response {
    let handle = SpanHandle::request(Meta::new("not-found").kind(Kind::Server), None, |_| {});
    let span = handle.context().and_then(valid_span).or_else(|| valid_span(&Context::current()));
    drop(handle);
    reply_response(Reply::error(404, "no endpoint at this path"), span)
}

/// A request whose body does not parse never reaches the endpoint: its span
/// is made here, with the endpoint's name, marked failed.
fn reject_input(name: &'static str, cx: &Context, message: &str) {
    let _attached = cx.clone().attach();
    let handle = SpanHandle::request(Meta::new(name).kind(Kind::Server), None, |_| {});
    handle.record_exception("invalid input", message, Vec::new(), format!("invalid input: {message}"));
}

/// The response; `span` names the request in an error's body (the layer
/// puts it in the headers).
fn reply_response(reply: Reply, span: Option<SpanContext>) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let trace_id = span.as_ref().map(|s| s.trace_id().to_string());
    let body = match reply.error {
        Some(message) => {
            serde_json::to_vec(&serde_json::json!({ "error": message, "trace_id": trace_id })).unwrap_or_default()
        }
        None => reply.body,
    };
    let mut response = (status, body).into_response();
    response.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
