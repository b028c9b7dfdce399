//! The app's routes over HTTP: POST JSON to each endpoint, a health route,
//! a not-found span for a wrong path, and on every answer the `traceparent`
//! and trace id of the request's span.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use opentelemetry::Context;
use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::{SpanContext, TraceContextExt as _};
use tokio::sync::Semaphore;
use traced_core::__private::{Kind, Meta, RequestSlot, SpanHandle, panic_message};

use crate::serve::app::App;
use crate::serve::routes::{Call, Reply, Route};
use crate::serve::w3c::name_in_headers;

const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

pub(crate) fn router<A: App>(app: Arc<A>, max_concurrency: Option<usize>) -> axum::Router {
    let limit = max_concurrency.map(|n| Arc::new(Semaphore::new(n)));
    // Probes are not traced (they would flood the backend); the answer still
    // names the caller's trace when it sent one.
    let mut router = axum::Router::new().route(
        "/health",
        axum::routing::get(|headers: HeaderMap| async move {
            let body = serde_json::json!({ "status": "ok", "service": A::SERVICE_NAME });
            reply_response(Reply::json(&body), caller_span(&headers))
        }),
    );
    for route in A::routes() {
        let app = Arc::clone(&app);
        let limit = limit.clone();
        let path = route.path;
        router = router.route(
            path,
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                handle(route.clone(), Arc::clone(&app), limit.clone(), headers, body)
            }),
        );
    }
    router
        .fallback(|method: http::Method, uri: http::Uri, headers: HeaderMap| async move {
            not_found(&method, &uri, &headers)
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

/// Closes the slot however the request ends, a client that disconnects
/// (axum drops the handler's future) included: the endpoint's span is never
/// left open, and the slot never keeps the context that holds it.
struct CloseOnDrop(RequestSlot);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

async fn handle<A: App>(
    route: Route<A>,
    app: Arc<A>,
    limit: Option<Arc<Semaphore>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let incoming = crate::serve::w3c::extract(&headers);
    let slot = RequestSlot::new(route.path);
    let _close = CloseOnDrop(slot.clone());
    let cx = incoming.with_value(slot.clone());
    let _permit = match &limit {
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
                Err(join) => Reply::error(500, &format!("the handler panicked: {}", join_failure(join))),
            }
        }
        Ok(Call::Async(call)) => match tokio::spawn(call.with_context(cx.clone())).await {
            Ok(reply) => reply,
            Err(join) => Reply::error(500, &format!("the handler panicked: {}", join_failure(join))),
        },
    };
    slot.finish(reply.status);
    let span = slot.span().or_else(|| valid_span(&incoming));
    reply_response(reply, span)
}

/// The caller's span, from its W3C headers.
fn caller_span(headers: &HeaderMap) -> Option<SpanContext> {
    valid_span(&crate::serve::w3c::extract(headers))
}

/// The span of `cx`, unless it has none.
fn valid_span(cx: &Context) -> Option<SpanContext> {
    let span = cx.span();
    let context = span.span_context();
    context.is_valid().then(|| context.clone())
}

/// A call to a path no endpoint serves gets a span, so that a caller with the
/// wrong URL finds its mistake in its own trace.
fn not_found(method: &http::Method, uri: &http::Uri, headers: &HeaderMap) -> Response {
    let _attached = crate::serve::w3c::extract(headers).attach();
    let path = uri.path().to_string();
    let handle = SpanHandle::request(Meta::new("not-found").kind(Kind::Server), None, |attrs| {
        attrs.push("http.request.method", method.as_str().to_string());
        attrs.push("url.path", path);
        attrs.push("http.response.status_code", 404_i64);
    });
    let span = handle.context().and_then(valid_span);
    drop(handle);
    reply_response(Reply::error(404, "no endpoint at this path"), span.or_else(|| caller_span(headers)))
}

/// A request whose body does not parse never reaches the endpoint: its span
/// is made here, with the endpoint's name, marked failed.
fn reject_input(name: &'static str, cx: &Context, message: &str) {
    let _attached = cx.clone().attach();
    let handle = SpanHandle::request(Meta::new(name).kind(Kind::Server), None, |_| {});
    handle.record_exception("invalid input", message, Vec::new(), format!("invalid input: {message}"));
}

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
    let headers = response.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(span) = span {
        name_in_headers(headers, &span);
    }
    response
}

/// What a task that did not return says: its panic's message, or why it
/// was stopped.
pub(crate) fn join_failure(join: tokio::task::JoinError) -> String {
    match join.try_into_panic() {
        Ok(payload) => panic_message(payload.as_ref()),
        Err(join) => join.to_string(),
    }
}
