//! `traced::TraceLayer` on a plain axum router, recorded in memory: route
//! names, the caller's context, the status, Error on a 5xx, the response
//! headers, gRPC method names, and a request whose client hung up.

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::post;
use opentelemetry::trace::{SpanKind, Status};
use support::{Recorder, attr};
use tower_service::Service as _;

#[traced::span]
fn stage() {}

fn router() -> axum::Router {
    axum::Router::new()
        .route(
            "/generate/{model}",
            post(|| async {
                stage();
                "ok"
            }),
        )
        .route("/fail", post(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
        .route("/slow", post(std::future::pending::<&'static str>))
        .layer(traced::TraceLayer::new())
}

async fn send(router: &mut axum::Router, request: Request<Body>) -> axum::response::Response {
    router.call(request).await.expect("a response")
}

fn post_to(path: &str) -> axum::http::request::Builder {
    Request::builder().method("POST").uri(path)
}

#[tokio::test]
async fn a_request_span_is_named_by_its_route_continues_the_caller_and_names_itself() {
    let recorder = Recorder::start();
    let mut router = router();
    let caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let response =
        send(&mut router, post_to("/generate/tiny-unet").header("traceparent", caller).body(Body::empty()).unwrap())
            .await;
    assert_eq!(response.status(), StatusCode::OK);
    let server = recorder.span("POST /generate/{model}");
    assert_eq!(server.span_kind, SpanKind::Server);
    assert_eq!(server.parent_span_id.to_string(), "00f067aa0ba902b7");
    assert_eq!(attr(&server, "http.route"), Some("/generate/{model}".into()));
    assert_eq!(attr(&server, "url.path"), Some("/generate/tiny-unet".into()));
    assert_eq!(attr(&server, "http.response.status_code"), Some(200_i64.into()));
    assert_eq!(recorder.span("stage").parent_span_id, server.span_context.span_id(), "current across the handler");
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    assert_eq!(header("x-trace-id").as_deref(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
    assert_eq!(header("traceparent"), Some(traced::__private::traceparent(&server.span_context)));
}

#[tokio::test]
async fn a_5xx_marks_the_span_and_an_unrouted_request_is_named_by_its_method() {
    let recorder = Recorder::start();
    let mut router = router();
    let failed = send(&mut router, post_to("/fail").body(Body::empty()).unwrap()).await;
    assert_eq!(failed.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let missing = send(&mut router, post_to("/nowhere").body(Body::empty()).unwrap()).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(recorder.span("POST /fail").status, Status::error("HTTP 500"));
    let unrouted = recorder.span("POST");
    assert_eq!(attr(&unrouted, "http.response.status_code"), Some(404_i64.into()));
    assert_eq!(unrouted.status, Status::Unset);
}

#[tokio::test]
async fn grpc_requests_are_named_by_their_method() {
    let recorder = Recorder::start();
    let mut service = tower_layer::Layer::layer(
        &traced::TraceLayer::new(),
        tower_service_fn(|_request: Request<Body>| async {
            Ok::<_, std::convert::Infallible>(axum::response::Response::new(Body::empty()))
        }),
    );
    let request = post_to("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
        .header("content-type", "application/grpc")
        .body(Body::empty())
        .unwrap();
    std::future::poll_fn(|task| service.poll_ready(task)).await.unwrap();
    service.call(request).await.unwrap();
    let span = recorder.span("opentelemetry.proto.collector.trace.v1.TraceService/Export");
    assert_eq!(attr(&span, "rpc.system"), Some("grpc".into()));
    assert_eq!(attr(&span, "rpc.method"), Some("Export".into()));
}

#[tokio::test]
async fn a_request_dropped_before_it_answers_still_ends_its_span() {
    let recorder = Recorder::start();
    let mut router = router();
    let slow = send(&mut router, post_to("/slow").body(Body::empty()).unwrap());
    assert!(tokio::time::timeout(std::time::Duration::from_millis(50), slow).await.is_err());
    let span = recorder.span("POST /slow");
    assert_eq!(attr(&span, "traced.cancelled"), Some(true.into()));
}

/// A tower service from an async fn, as hyper and tonic users have them.
fn tower_service_fn<F, Fut>(call: F) -> ServiceFn<F>
where
    F: FnMut(Request<Body>) -> Fut,
{
    ServiceFn(call)
}

struct ServiceFn<F>(F);

impl<F, Fut, R, E> tower_service::Service<Request<Body>> for ServiceFn<F>
where
    F: FnMut(Request<Body>) -> Fut,
    Fut: std::future::Future<Output = Result<R, E>>,
{
    type Response = R;
    type Error = E;
    type Future = Fut;

    fn poll_ready(&mut self, _task: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), E>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Fut {
        (self.0)(request)
    }
}
