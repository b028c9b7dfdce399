//! `traced::serve` over real HTTP on loopback: routes, status codes, trace
//! headers, bad input, handler errors and panics, and the shutdown sequence.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::trace::{SpanId, SpanKind, Status};
use traced::{Carrier, HttpError, SpanAttributes};

mod support;
use support::served::Served;
use support::{Recorder, attr, event_attr};

#[derive(serde::Deserialize, SpanAttributes)]
struct Input {
    #[span_attr(name = "prompt.length", with = str::len)]
    prompt: String,
    #[serde(default)]
    trace_context: Carrier,
}

#[derive(serde::Serialize)]
struct Output {
    image: String,
    trace_id: Option<String>,
}

#[derive(Debug)]
struct Refused(&'static str);
impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}
impl std::error::Error for Refused {}

#[derive(Debug)]
struct TooLong;
impl std::fmt::Display for TooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the prompt is too long")
    }
}
impl HttpError for TooLong {
    fn status(&self) -> u16 {
        400
    }
}

static EXIT_CALLED: AtomicBool = AtomicBool::new(false);
static IN_FLIGHT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static MOST_IN_FLIGHT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static TORN_DOWN: AtomicBool = AtomicBool::new(false);

struct Worker;

#[traced::traced_app(service = "worker")]
impl Worker {
    fn setup() -> Self {
        Worker
    }

    #[endpoint("/", name = "text-to-image")]
    fn generate(&self, input: Input) -> Result<Output, Refused> {
        match input.prompt.as_str() {
            "fail" => Err(Refused("the sampler diverged")),
            "panic" => panic!("CUDA out of memory"),
            prompt => Ok(Output { image: prompt.to_uppercase(), trace_id: traced::current_trace_id() }),
        }
    }

    #[endpoint("/strict")]
    fn strict(&self, input: Input) -> Result<usize, TooLong> {
        if input.prompt.len() > 5 { Err(TooLong) } else { Ok(input.prompt.len()) }
    }

    #[endpoint("/async")]
    async fn generate_async(&self, input: Input) -> Output {
        tokio::task::yield_now().await;
        Output { image: input.prompt, trace_id: traced::current_trace_id() }
    }

    #[endpoint("/slow")]
    fn slow(&self) -> usize {
        let now = IN_FLIGHT.fetch_add(1, Ordering::SeqCst) + 1;
        MOST_IN_FLIGHT.fetch_max(now, Ordering::SeqCst);
        std::thread::sleep(std::time::Duration::from_millis(30));
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
        now
    }

    fn handle_exit(&self) {
        EXIT_CALLED.store(true, Ordering::SeqCst);
    }

    fn teardown(&mut self) {
        TORN_DOWN.store(true, Ordering::SeqCst);
    }
}

/// The server span the response's `traceparent` names.
fn served_span(recorder: &Recorder, headers: &reqwest::header::HeaderMap) -> opentelemetry_sdk::trace::SpanData {
    let span_id = header(headers, "traceparent").split('-').nth(2).unwrap_or_default().to_string();
    recorder.spans().into_iter().find(|s| s.span_context.span_id().to_string() == span_id).expect("the served span")
}

fn header(headers: &reqwest::header::HeaderMap, name: &str) -> String {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
}

// The recorder's turn lock orders whole tests, across awaits on purpose.
#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_endpoints_with_trace_headers_and_clear_errors() {
    let recorder = Recorder::start();
    let served = Served::start::<Worker>(&[]).await;

    let (status, headers, body) = served.post("/", r#"{"prompt":"red circle"}"#, &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["image"], "RED CIRCLE");
    let trace_id = header(&headers, "x-trace-id");
    assert_eq!(body["trace_id"], trace_id.as_str());
    assert!(header(&headers, "traceparent").starts_with(&format!("00-{trace_id}-")));
    let span = recorder.span("text-to-image");
    assert_eq!(span.span_kind, SpanKind::Server);
    assert_eq!(span.parent_span_id, SpanId::INVALID);
    assert_eq!(header(&headers, "traceparent"), format!("00-{trace_id}-{}-01", span.span_context.span_id()));
    assert_eq!(attr(&span, "http.request.method"), Some("POST".into()));
    assert_eq!(attr(&span, "http.route"), Some("/".into()));
    assert_eq!(attr(&span, "http.response.status_code"), Some(200_i64.into()));

    let caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let (status, headers, _) = served.post("/async", r#"{"prompt":"x"}"#, &[("traceparent", caller)]).await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "x-trace-id"), "0af7651916cd43dd8448eb211c80319c");
    let span = recorder.span("generate_async");
    assert_eq!(span.parent_span_id.to_string(), "b7ad6b7169203331");
    assert_eq!(attr(&span, "http.route"), Some("/async".into()));

    // A caller whose trace id is random (level 2 flag 0x02) hears it back,
    // and its several tracestate headers are one list.
    let random = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-03";
    let headers_sent = [("traceparent", random), ("tracestate", "a=1"), ("tracestate", "b=2,a=3")];
    let (status, headers, _) = served.post("/async", r#"{"prompt":"x"}"#, &headers_sent).await;
    assert_eq!(status, 200);
    assert!(header(&headers, "traceparent").ends_with("-03"), "{}", header(&headers, "traceparent"));
    let span = served_span(&recorder, &headers);
    assert_eq!(span.span_context.trace_state().header(), "a=1,b=2");

    for malformed in [
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
        "00-zz-yy-01",
        "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    ] {
        let (status, headers, _) = served.post("/strict", r#"{"prompt":"ok"}"#, &[("traceparent", malformed)]).await;
        assert_eq!(status, 200, "{malformed}");
        assert_ne!(header(&headers, "x-trace-id"), "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(header(&headers, "x-trace-id").len(), 32, "served under a new root");
    }

    let (status, headers, body) = served.post("/", r#"{"prompt": 12"#, &[]).await;
    assert_eq!(status, 422);
    assert!(body["error"].as_str().unwrap().starts_with("invalid input: "), "{body}");
    assert_eq!(body["trace_id"], header(&headers, "x-trace-id").as_str());
    let rejected =
        recorder.spans().into_iter().find(|s| s.name == "text-to-image" && s.status != Status::Unset).unwrap();
    assert!(matches!(rejected.status, Status::Error { .. }));
    assert_eq!(event_attr(&rejected, "exception", "exception.type").unwrap().as_str(), "invalid input");
    assert_eq!(attr(&rejected, "http.response.status_code"), Some(422_i64.into()));

    let (status, headers, body) = served.post("/", r#"{"prompt":"fail"}"#, &[]).await;
    assert_eq!(status, 500);
    assert_eq!(body["error"], "the sampler diverged");
    assert_eq!(body["trace_id"], header(&headers, "x-trace-id").as_str());
    let failed = served_span(&recorder, &headers);
    assert_eq!(attr(&failed, "http.response.status_code"), Some(500_i64.into()));
    assert!(matches!(failed.status, Status::Error { .. }));

    let (status, headers, body) = served.post("/strict", r#"{"prompt":"far too long"}"#, &[]).await;
    assert_eq!(status, 400, "the error's own status");
    assert_eq!(body["error"], "the prompt is too long");
    assert_eq!(attr(&served_span(&recorder, &headers), "http.response.status_code"), Some(400_i64.into()));

    let (status, headers, body) = served.post("/", r#"{"prompt":"panic"}"#, &[]).await;
    assert_eq!(status, 500);
    assert!(body["error"].as_str().unwrap().contains("CUDA out of memory"), "{body}");
    let panicked_trace = header(&headers, "x-trace-id");
    let panicked =
        recorder.spans().into_iter().find(|s| s.span_context.trace_id().to_string() == panicked_trace).unwrap();
    assert_eq!(panicked.status, Status::error("panicked: CUDA out of memory"));
    assert_eq!(attr(&panicked, "http.response.status_code"), Some(500_i64.into()));

    // Still serving after all of that.
    let (status, _, body) = served.post("/", r#"{"prompt":"again"}"#, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(body["image"], "AGAIN");
    let health = served.client.get(served.url("/health")).header("traceparent", caller).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    assert_eq!(header(health.headers(), "x-trace-id"), "0af7651916cd43dd8448eb211c80319c", "names the caller's trace");
    assert!(!recorder.spans().iter().any(|s| s.name.contains("health")), "probes are not traced");
    let (status, headers, body) = served.post("/nowhere", "{}", &[]).await;
    assert_eq!(status, 404);
    let not_found = recorder.span("not-found");
    assert_eq!(header(&headers, "x-trace-id"), not_found.span_context.trace_id().to_string());
    assert_eq!(body["trace_id"], header(&headers, "x-trace-id").as_str());
    assert_eq!(attr(&not_found, "url.path"), Some("/nowhere".into()));
    assert_eq!(attr(&not_found, "http.response.status_code"), Some(404_i64.into()));

    assert_eq!(served.stop().await, ExitCode::SUCCESS);
    assert!(EXIT_CALLED.load(Ordering::SeqCst), "handle_exit ran");
    assert!(TORN_DOWN.load(Ordering::SeqCst), "teardown ran");
    assert!(recorder.exported().iter().any(|s| s.name == "teardown"));
}

#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_concurrency_limit_holds_requests_back() {
    let _recorder = Recorder::start();
    let served = Served::start::<Worker>(&[("TRACED_MAX_CONCURRENCY", "1")]).await;
    let calls: Vec<_> = (0..4).map(|_| served.post("/slow", "", &[])).collect();
    for (status, _, _) in futures_join(calls).await {
        assert_eq!(status, 200);
    }
    assert_eq!(MOST_IN_FLIGHT.load(Ordering::SeqCst), 1, "one at a time");
    assert_eq!(served.stop().await, ExitCode::SUCCESS);
}

async fn futures_join<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs = Vec::new();
    // Poll them together: each request must be in flight at once.
    let mut done: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        for (index, future) in pinned.iter_mut().enumerate() {
            if done[index].is_none()
                && let std::task::Poll::Ready(output) = future.as_mut().poll(cx)
            {
                done[index] = Some(output);
            }
        }
        if done.iter().all(Option::is_some) { std::task::Poll::Ready(()) } else { std::task::Poll::Pending }
    })
    .await;
    outputs.extend(done.into_iter().flatten());
    outputs
}

#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_hangs_up_still_gets_its_span_ended() {
    let recorder = Recorder::start();
    let served = Served::start::<Worker>(&[]).await;
    let gave_up = served
        .client
        .post(served.url("/slow"))
        // A caller's context: the span's context then also holds the server's
        // request state, the cycle a forgotten span would leak through.
        .header("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
        .timeout(std::time::Duration::from_millis(5))
        .send()
        .await;
    assert!(gave_up.is_err(), "the client hung up before the 30 ms handler answered");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let span = recorder.span("slow");
    assert_eq!(attr(&span, "http.route"), Some("/slow".into()));
    assert_eq!(attr(&span, "http.response.status_code"), None, "no response was sent");
    assert_eq!(attr(&span, "traced.cancelled"), Some(true.into()), "the client went away first");
    assert_eq!(served.stop().await, ExitCode::SUCCESS);
}
