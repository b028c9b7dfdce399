//! `traced::TraceLayer`: traced's request handling, for any tower service an
//! app already has (axum, hyper, tonic) and for `traced::serve` alike. Per
//! request a Server span that continues the caller's W3C context, named by
//! the route template (axum's `MatchedPath`), the gRPC method, or else the
//! HTTP method; the HTTP semantic-convention attributes and the response
//! status; Error on a 5xx; `traceparent` and `x-trace-id` on the response;
//! and the span current across every poll of the handler (and of a streamed
//! body), so `#[span]` fns nest under it. A streamed body keeps the span
//! open to its last byte ([`TracedBody`]).
//!
//! `traced::serve` lets each `#[endpoint]` make the request's span once the
//! body is parsed (a `Carrier` in the body can be its parent): the layer then
//! only puts a [`RequestSlot`] on the handler's context and does the rest
//! with whatever span the endpoint left there.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Instant;

use http::{Request, Response};
use opentelemetry::{Context, KeyValue};
use traced_core::__layers::{Kind, RequestSlot, start_request_span};

use crate::metrics::request_measure::RequestMeasure;
use crate::serve::response_body::{Answer, TracedBody};
use crate::serve::route_names::{method_name, route_name};
use crate::serve::w3c::{self, name_in_headers, valid_span};

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
    spans_by: SpansBy,
}

/// Who makes a request's span.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum SpansBy {
    #[default]
    Layer,
    /// The `#[endpoint]` the request reaches (or the server's fallback).
    Endpoint,
}

impl TraceLayer {
    /// The layer; add it with `Router::layer` (or `ServiceBuilder::layer`).
    pub fn new() -> Self {
        TraceLayer::default()
    }

    /// The layer `traced::serve` uses: each endpoint makes its own span.
    pub(crate) fn for_endpoints() -> Self {
        TraceLayer { spans_by: SpansBy::Endpoint }
    }
}

impl<S> tower_layer::Layer<S> for TraceLayer {
    type Service = TraceService<S>;

    fn layer(&self, inner: S) -> TraceService<S> {
        TraceService { inner, spans_by: self.spans_by }
    }
}

/// A service wrapped by [`TraceLayer`].
#[derive(Clone, Debug)]
pub struct TraceService<S> {
    inner: S,
    spans_by: SpansBy,
}

impl<S, B, R> tower_service::Service<Request<B>> for TraceService<S>
where
    S: tower_service::Service<Request<B>, Response = Response<R>>,
    R: http_body::Body,
{
    type Response = Response<TracedBody<R>>;
    type Error = S::Error;
    type Future = TracedResponse<S::Future>;

    fn poll_ready(&mut self, task: &mut TaskContext<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(task)
    }

    fn call(&mut self, request: Request<B>) -> TracedResponse<S::Future> {
        let arrived = Instant::now();
        let caller = w3c::extract(request.headers());
        let Described { name, attributes, method, route } = describe(&request);
        // `traced::serve`'s probes are neither traced nor counted.
        let probe = self.spans_by == SpansBy::Endpoint && matches!(route.as_deref(), Some("/health" | "/metrics"));
        let measure = (!probe).then_some(RequestMeasure { method, route, arrived });
        let (current, slot) = match self.spans_by {
            SpansBy::Layer => {
                let slot = RequestSlot::new(Vec::new());
                match start_request_span(name, Kind::Server, &caller, attributes) {
                    Some(cx) => {
                        slot.fill(&cx);
                        slot.hold(cx.clone(), false);
                        // What runs under it can add to the request's metrics.
                        (cx.with_value(slot.clone()), slot)
                    }
                    // Still current, so that an unsampled caller's children
                    // are skipped too.
                    None => (caller.with_value(slot.clone()), slot),
                }
            }
            SpansBy::Endpoint => {
                let slot = RequestSlot::new(attributes);
                (caller.with_value(slot.clone()), slot)
            }
        };
        let inner = {
            let _current = current.clone().attach();
            self.inner.call(request)
        };
        TracedResponse { inner, current, slot: Some(slot), caller, arrived, measure }
    }
}

/// What names a request: its span's name and attributes, and the method and
/// route template its metrics are counted by.
struct Described {
    name: Cow<'static, str>,
    attributes: Vec<KeyValue>,
    method: Cow<'static, str>,
    route: Option<Cow<'static, str>>,
}

/// The span's name and attributes: `POST /generate/{model}` for a matched
/// axum route, `pkg.Service/Method` for gRPC, else the method.
fn describe<B>(request: &Request<B>) -> Described {
    let method = method_name(request.method());
    let path = request.uri().path();
    let mut attributes = Vec::with_capacity(5);
    attributes.push(KeyValue::new("http.request.method", method.clone()));
    attributes.push(KeyValue::new("url.path", path.to_string()));
    let grpc = request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/grpc"));
    let mut template = None;
    let name = if let Some(route) = request.extensions().get::<axum::extract::MatchedPath>() {
        let (name, route) = match route_name(request.method(), route.as_str()) {
            Some(kept) => (Cow::Borrowed(kept.span), Cow::Borrowed(kept.route)),
            None => (Cow::Owned(format!("{method} {}", route.as_str())), Cow::Owned(route.as_str().to_string())),
        };
        attributes.push(KeyValue::new("http.route", route.clone()));
        template = Some(route);
        name
    } else if grpc {
        let rpc = path.trim_start_matches('/').to_string();
        attributes.push(KeyValue::new("rpc.system", "grpc"));
        if let Some((service, method)) = rpc.split_once('/') {
            attributes.push(KeyValue::new("rpc.service", service.to_string()));
            attributes.push(KeyValue::new("rpc.method", method.to_string()));
        }
        Cow::Owned(rpc)
    } else {
        method.clone()
    };
    Described { name, attributes, method, route: template }
}

pin_project_lite::pin_project! {
    /// The wrapped service's response future, inside its request's span.
    pub struct TracedResponse<F> {
        #[pin]
        inner: F,
        current: Context,
        // Taken when the service answers.
        slot: Option<RequestSlot>,
        caller: Context,
        arrived: Instant,
        // None for a probe.
        measure: Option<RequestMeasure>,
    }

    impl<F> PinnedDrop for TracedResponse<F> {
        fn drop(this: Pin<&mut Self>) {
            // Dropped before it answered: the client went away.
            if let Some(slot) = this.project().slot.take() {
                slot.cancel(Vec::new());
            }
        }
    }
}

impl<F, R, E> Future for TracedResponse<F>
where
    F: Future<Output = Result<Response<R>, E>>,
    R: http_body::Body,
{
    type Output = Result<Response<TracedBody<R>>, E>;

    fn poll(self: Pin<&mut Self>, task: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let polled = {
            let _current = this.current.clone().attach();
            this.inner.poll(task)
        };
        let Poll::Ready(result) = polled else { return Poll::Pending };
        let Some(slot) = this.slot.take() else { return Poll::Ready(result.map(|r| r.map(TracedBody::untraced))) };
        let measure = this.measure.take();
        match result {
            Ok(mut response) => {
                // The request's span, or the caller's when none was made
                // (tracing off, unsampled, an untraced route).
                let named = slot.span().or_else(|| valid_span(this.caller));
                if let Some(named) = named {
                    name_in_headers(response.headers_mut(), &named);
                }
                let status = response.status().as_u16();
                let (current, arrived) = (this.current.clone(), *this.arrived);
                let body = |body| TracedBody::new(body, slot, Answer { status, current, arrived, measure });
                Poll::Ready(Ok(response.map(body)))
            }
            Err(error) => {
                if let Some(measure) = measure {
                    measure.record(500, true, &slot);
                }
                slot.fail("the service failed without a response", Vec::new());
                Poll::Ready(Err(error))
            }
        }
    }
}
