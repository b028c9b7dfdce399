//! `traced::TraceLayer` on a plain axum router, recorded in memory: route
//! names, the caller's context, the status, Error on a 5xx, the response
//! headers, gRPC method names, a request whose client hung up, and bodies
//! that stream: the span lives to their last byte.

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::response::sse::{Event, Sse};
use axum::routing::post;
use bytes::Bytes;
use http_body::Body as _;
use opentelemetry::trace::{SpanKind, Status};
use std::task::Poll;
use std::time::{Duration, SystemTime};
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
        .route("/context", post(|| async { serde_json::to_string(&traced::inject()).unwrap_or_default() }))
        .route(
            "/events",
            post(|| async {
                let frames = (0..3).map(|step| {
                    Ok::<_, std::convert::Infallible>(Event::default().data(format!("{{\"step\":{step}}}")))
                });
                Sse::new(paced(frames.collect()))
            }),
        )
        .route(
            "/broken",
            post(|| async {
                let chunks = vec![Ok(Bytes::from_static(b"first")), Err(std::io::Error::other("the disk went away"))];
                Body::from_stream(paced(chunks))
            }),
        )
        .layer(traced::TraceLayer::new())
}

/// Items handed out one every 20 ms, as a model makes them.
fn paced<T: Send + 'static>(items: Vec<T>) -> impl futures_core::Stream<Item = T> + Send {
    let (sender, receiver) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        for item in items {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if sender.send(item).await.is_err() {
                break;
            }
        }
    });
    Receiver(receiver)
}

struct Receiver<T>(tokio::sync::mpsc::Receiver<T>);

impl<T> futures_core::Stream for Receiver<T> {
    type Item = T;

    fn poll_next(mut self: std::pin::Pin<&mut Self>, task: &mut std::task::Context<'_>) -> Poll<Option<T>> {
        self.0.poll_recv(task)
    }
}

/// The next data frame of a body, when it came, or `None` at its end.
async fn next_frame(body: &mut Body) -> Option<(Result<Bytes, axum::Error>, SystemTime)> {
    let frame = std::future::poll_fn(|task| std::pin::Pin::new(&mut *body).poll_frame(task)).await?;
    Some((frame.map(|frame| frame.into_data().unwrap_or_default()), SystemTime::now()))
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
    let written = format!("00-{}-{}-01", server.span_context.trace_id(), server.span_context.span_id());
    assert_eq!(header("traceparent"), Some(written));
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

#[tokio::test]
async fn a_streamed_body_keeps_the_span_open_to_its_last_byte() {
    let recorder = Recorder::start();
    let mut router = router();
    let response = send(&mut router, post_to("/events").body(Body::empty()).unwrap()).await;
    assert!(recorder.spans().is_empty(), "not ended with the head");
    let mut body = response.into_body();
    let mut frames = Vec::new();
    while let Some((frame, at)) = next_frame(&mut body).await {
        frames.push((frame.unwrap(), at));
    }
    let text: Vec<u8> = frames.iter().flat_map(|(bytes, _)| bytes.to_vec()).collect();
    assert_eq!(String::from_utf8(text).unwrap(), "data: {\"step\":0}\n\ndata: {\"step\":1}\n\ndata: {\"step\":2}\n\n");
    let span = recorder.span("POST /events");
    assert!(span.end_time >= frames.last().unwrap().1, "ended after the last frame was handed out");
    let duration = span.end_time.duration_since(span.start_time).unwrap();
    assert!(duration >= Duration::from_millis(60), "covers the three 20 ms steps: {duration:?}");
    assert_eq!(attr(&span, "http.response.status_code"), Some(200_i64.into()));
    assert_eq!(attr(&span, "http.response.body.size"), Some((3 * 18_i64).into()));
    let Some(opentelemetry::Value::F64(first_byte)) = attr(&span, "traced.time_to_first_byte") else {
        panic!("the time to the first byte: {:?}", span.attributes)
    };
    assert!((0.02..duration.as_secs_f64()).contains(&first_byte), "{first_byte}");
    assert_eq!(span.status, Status::Unset);
}

#[tokio::test]
async fn a_body_that_fails_or_is_dropped_ends_the_span_so() {
    let recorder = Recorder::start();
    let mut router = router();
    let mut body = send(&mut router, post_to("/broken").body(Body::empty()).unwrap()).await.into_body();
    assert_eq!(next_frame(&mut body).await.unwrap().0.unwrap(), "first");
    assert!(next_frame(&mut body).await.unwrap().0.is_err());
    let broken = recorder.span("POST /broken");
    assert!(
        matches!(&broken.status, Status::Error { description } if description.contains("the disk went away")),
        "{:?}",
        broken.status
    );
    assert_eq!(attr(&broken, "http.response.body.size"), Some(5_i64.into()));

    // The client hangs up after the first event: the body is dropped.
    let mut body = send(&mut router, post_to("/events").body(Body::empty()).unwrap()).await.into_body();
    assert!(next_frame(&mut body).await.is_some());
    drop(body);
    let span = recorder.span("POST /events");
    assert_eq!(attr(&span, "traced.cancelled"), Some(true.into()));
    assert_eq!(attr(&span, "http.response.body.size"), Some(18_i64.into()));
}

#[tokio::test]
async fn a_whole_body_ends_the_span_with_the_head() {
    let recorder = Recorder::start();
    let mut router = router();
    let response = send(&mut router, post_to("/generate/tiny-unet").body(Body::empty()).unwrap()).await;
    let span = recorder.span("POST /generate/{model}");
    assert_eq!(attr(&span, "http.response.body.size"), Some(2_i64.into()), "ended before the body was read");
    assert_eq!(attr(&span, "traced.time_to_first_byte"), None);
    drop(response);
}

#[tokio::test]
async fn an_unsampled_random_caller_goes_on_with_its_flag_and_whole_tracestate() {
    let _recorder = Recorder::start();
    let mut router = router();
    let caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02";
    let tracestate = format!("foo@=1,{}@{}=2", "t".repeat(241), "s".repeat(14));
    let request = post_to("/context").header("traceparent", caller).header("tracestate", &tracestate);
    let response = send(&mut router, request.body(Body::empty()).unwrap()).await;
    assert_eq!(response.headers()["traceparent"], caller, "the caller's own, flags and all: nothing was sampled");
    let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    let carrier: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(carrier["traceparent"], caller);
    assert_eq!(carrier["tracestate"], tracestate.as_str());
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
