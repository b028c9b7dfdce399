//! `traced::TraceLayer`: traced's request handling for any tower service an
//! app already has (axum, hyper, tonic). Per request a Server span that
//! continues the caller's W3C context, named by the route template (axum's
//! `MatchedPath`), the gRPC method, or else the HTTP method; the HTTP
//! semantic-convention attributes and the response status; Error on a 5xx;
//! `traceparent` and `x-trace-id` on the response; and the span current
//! across every poll of the handler, so `#[span]` fns nest under it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use http::{Request, Response};
use opentelemetry::trace::{Status, TraceContextExt as _};
use opentelemetry::{Context, KeyValue};
use traced_core::__private::{Kind, start_bridged_span};

use crate::serve::w3c::{self, name_in_headers};

/// A `tower::Layer` that traces every request of the service it wraps.
///
/// ```
/// use axum::routing::post;
///
/// #[traced::span]
/// fn denoise(steps: u32) -> u32 {
///     steps
/// }
///
/// let app: axum::Router = axum::Router::new()
///     .route("/generate/{model}", post(|| async { denoise(4).to_string() }))
///     .layer(traced::TraceLayer::new());
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct TraceLayer {
    _private: (),
}

impl TraceLayer {
    /// The layer; add it with `Router::layer` (or `ServiceBuilder::layer`).
    pub fn new() -> Self {
        TraceLayer::default()
    }
}

impl<S> tower_layer::Layer<S> for TraceLayer {
    type Service = TraceService<S>;

    fn layer(&self, inner: S) -> TraceService<S> {
        TraceService { inner }
    }
}

/// A service wrapped by [`TraceLayer`].
#[derive(Clone, Debug)]
pub struct TraceService<S> {
    inner: S,
}

impl<S, B, R> tower_service::Service<Request<B>> for TraceService<S>
where
    S: tower_service::Service<Request<B>, Response = Response<R>>,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = TracedResponse<S::Future>;

    fn poll_ready(&mut self, task: &mut TaskContext<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(task)
    }

    fn call(&mut self, request: Request<B>) -> TracedResponse<S::Future> {
        let parent = w3c::extract(request.headers());
        let (name, attributes) = describe(&request);
        let cx = start_bridged_span(name, Kind::Server, &parent, || attributes);
        let inner = {
            let _current = cx.as_ref().map(|cx| cx.clone().attach());
            self.inner.call(request)
        };
        TracedResponse { inner, cx, caller: parent }
    }
}

/// The span's name and attributes: `POST /generate/{model}` for a matched
/// axum route, `pkg.Service/Method` for gRPC, else the method.
fn describe<B>(request: &Request<B>) -> (String, Vec<KeyValue>) {
    let method = request.method().as_str().to_string();
    let path = request.uri().path().to_string();
    let mut attributes =
        vec![KeyValue::new("http.request.method", method.clone()), KeyValue::new("url.path", path.clone())];
    let grpc = request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/grpc"));
    let name = if let Some(route) = request.extensions().get::<axum::extract::MatchedPath>() {
        attributes.push(KeyValue::new("http.route", route.as_str().to_string()));
        format!("{method} {}", route.as_str())
    } else if grpc {
        let rpc = path.trim_start_matches('/').to_string();
        attributes.push(KeyValue::new("rpc.system", "grpc"));
        if let Some((service, method)) = rpc.split_once('/') {
            attributes.push(KeyValue::new("rpc.service", service.to_string()));
            attributes.push(KeyValue::new("rpc.method", method.to_string()));
        }
        rpc
    } else {
        method
    };
    (name, attributes)
}

pin_project_lite::pin_project! {
    /// The wrapped service's response future, inside its request's span.
    pub struct TracedResponse<F> {
        #[pin]
        inner: F,
        cx: Option<Context>,
        caller: Context,
    }

    impl<F> PinnedDrop for TracedResponse<F> {
        fn drop(this: Pin<&mut Self>) {
            // Dropped before it answered: the client went away.
            if let Some(cx) = this.project().cx.take() {
                let span = cx.span();
                span.set_attribute(KeyValue::new("traced.cancelled", true));
                span.end();
            }
        }
    }
}

impl<F, R, E> Future for TracedResponse<F>
where
    F: Future<Output = Result<Response<R>, E>>,
{
    type Output = Result<Response<R>, E>;

    fn poll(self: Pin<&mut Self>, task: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let polled = {
            let _current = this.cx.as_ref().map(|cx| cx.clone().attach());
            this.inner.poll(task)
        };
        let Poll::Ready(mut result) = polled else { return Poll::Pending };
        let cx = this.cx.take();
        match (&mut result, &cx) {
            (Ok(response), cx) => {
                if let Some(cx) = cx {
                    answer(cx, response);
                }
                // The request's span, or the caller's when none was made
                // (tracing off, unsampled).
                let named = cx.as_ref().unwrap_or(this.caller).span();
                if named.span_context().is_valid() {
                    name_in_headers(response.headers_mut(), named.span_context());
                }
            }
            (Err(_), Some(cx)) => cx.span().set_status(Status::error("the service failed without a response")),
            (Err(_), None) => {}
        }
        if let Some(cx) = cx {
            cx.span().end();
        }
        Poll::Ready(result)
    }
}

/// The response status on the span; a 5xx marks it.
fn answer<R>(cx: &Context, response: &mut Response<R>) {
    let span = cx.span();
    let status = response.status().as_u16();
    span.set_attribute(KeyValue::new("http.response.status_code", i64::from(status)));
    if status >= 500 {
        span.set_status(Status::error(format!("HTTP {status}")));
    }
}
