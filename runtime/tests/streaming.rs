//! Streaming endpoints served by `traced::serve` over real HTTP on loopback,
//! read by `traced::Client::stream`, recorded in memory: events as they are
//! made, the endpoint's span over the whole stream, failures mid-stream, a
//! client that hangs up, a client that reads slowly, one trace across the
//! call.

use std::pin::Pin;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{SpanKind, Status, TraceContextExt as _};
use traced::HttpError;

mod support;
use support::served::Served;
use support::{Recorder, attr};

#[derive(serde::Deserialize)]
struct Ask {
    count: u64,
    #[serde(default)]
    pause_ms: u64,
    #[serde(default)]
    fail_at: Option<u64>,
    #[serde(default)]
    panic_at: Option<u64>,
    #[serde(default)]
    padding: usize,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Token {
    index: u64,
    text: String,
}

#[derive(Debug)]
struct TooMany;
impl std::fmt::Display for TooMany {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("at most 10000 tokens")
    }
}
impl HttpError for TooMany {
    fn status(&self) -> u16 {
        400
    }
}

#[derive(Debug)]
struct Diverged(u64);
impl std::fmt::Display for Diverged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the sampler diverged at token {}", self.0)
    }
}

#[derive(serde::Deserialize)]
struct Relay {
    to: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Relayed {
    called: traced::Carrier,
    streamed: Vec<traced::Carrier>,
}

/// Items the producers made, for the tests that bound them.
static MADE: AtomicU64 = AtomicU64::new(0);

fn token(index: u64, ask: &Ask) -> Token {
    if ask.panic_at == Some(index) {
        panic!("CUDA error: an illegal memory access at token {index}");
    }
    std::thread::sleep(Duration::from_millis(ask.pause_ms));
    MADE.fetch_add(1, Ordering::SeqCst);
    Token { index, text: format!("t{index}{}", "x".repeat(ask.padding)) }
}

/// An async producer's tokens, as an engine hands them over: a channel.
struct Tokens(tokio::sync::mpsc::Receiver<Token>);

impl futures_core::Stream for Tokens {
    type Item = Token;

    fn poll_next(mut self: Pin<&mut Self>, task: &mut std::task::Context<'_>) -> Poll<Option<Token>> {
        self.0.poll_recv(task)
    }
}

struct Generator;

#[traced::traced_app(service = "generator")]
impl Generator {
    fn setup() -> Self {
        Generator
    }

    #[endpoint("/tokens")]
    fn tokens(&self, ask: Ask) -> Result<impl Iterator<Item = Result<Token, Diverged>> + use<>, TooMany> {
        if ask.count > 10_000 {
            return Err(TooMany);
        }
        Ok((0..ask.count).map(move |index| match ask.fail_at {
            Some(at) if at == index => Err(Diverged(index)),
            _ => Ok(token(index, &ask)),
        }))
    }

    #[endpoint("/async-tokens")]
    async fn async_tokens(&self, ask: Ask) -> impl futures_core::Stream<Item = Token> + use<> {
        let (sender, receiver) = tokio::sync::mpsc::channel(1);
        tokio::spawn(async move {
            for index in 0..ask.count {
                tokio::time::sleep(Duration::from_millis(ask.pause_ms)).await;
                MADE.fetch_add(1, Ordering::SeqCst);
                if sender.send(Token { index, text: format!("t{index}") }).await.is_err() {
                    break;
                }
            }
        });
        Tokens(receiver)
    }

    #[endpoint("/async-iter")]
    async fn async_iter(&self, ask: Ask) -> impl Iterator<Item = u64> + use<> {
        tokio::task::yield_now().await;
        0..ask.count
    }

    /// The context the stream's items are made in, as the next call would
    /// carry it.
    #[endpoint("/context")]
    fn context(&self) -> impl Iterator<Item = traced::Carrier> {
        std::iter::repeat_with(traced::inject).take(2)
    }

    /// The context this request continued, as the next call would carry it.
    #[endpoint("/carrier")]
    fn carrier(&self) -> traced::Carrier {
        traced::inject()
    }

    /// Calls `/carrier` and streams `/context` on `to` through the Client:
    /// what the callee heard, each way.
    #[endpoint("/relay")]
    async fn relay(&self, to: Relay) -> Result<Relayed, traced::ClientError> {
        let client = traced::Client::new();
        let called = client.call(&format!("{}/carrier", to.to), &()).await?;
        let mut events = client.stream::<_, traced::Carrier>(&format!("{}/context", to.to), &()).await?;
        let mut streamed = Vec::new();
        while let Some(carrier) = events.next().await {
            streamed.push(carrier?);
        }
        Ok(Relayed { called, streamed })
    }

    #[endpoint("/evented", stream(events))]
    fn evented(&self, ask: Ask) -> impl Iterator<Item = u64> + use<> {
        0..ask.count
    }

    #[endpoint("/whole")]
    fn whole(&self, ask: Ask) -> u64 {
        ask.count
    }
}

/// Every item of a stream, with when each arrived.
async fn read_all<T: serde::de::DeserializeOwned>(
    mut events: traced::EventStream<T>,
) -> Vec<(Result<T, traced::ClientError>, SystemTime)> {
    let mut items = Vec::new();
    while let Some(item) = events.next().await {
        items.push((item, SystemTime::now()));
    }
    items
}

fn server_span(recorder: &Recorder, name: &str) -> opentelemetry_sdk::trace::SpanData {
    recorder.spans().into_iter().rfind(|s| s.name == name && s.span_kind == SpanKind::Server).expect("the span")
}

/// The latest server span named `name` that `matches`, waited for: the
/// server ends its span as its body ends, which may be after the client has
/// read the last event.
fn server_span_where(
    recorder: &Recorder,
    name: &str,
    matches: impl Fn(&opentelemetry_sdk::trace::SpanData) -> bool,
) -> opentelemetry_sdk::trace::SpanData {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let spans = recorder.spans();
        if let Some(span) = spans.iter().rfind(|s| s.name == name && s.span_kind == SpanKind::Server && matches(s)) {
            return span.clone();
        }
        assert!(std::time::Instant::now() < deadline, "no such {name} span among {spans:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn seconds(span: &opentelemetry_sdk::trace::SpanData) -> f64 {
    span.end_time.duration_since(span.start_time).unwrap().as_secs_f64()
}

// The recorder's turn lock orders whole tests, across awaits on purpose.
#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_is_answered_as_events_and_its_span_covers_it() {
    let recorder = Recorder::start();
    let served = Served::start::<Generator>(&[]).await;
    let client = traced::Client::new();

    // The wire: an event stream, one `data:` line of JSON per item.
    let raw = reqwest::Client::new().post(served.url("/tokens")).body(r#"{"count": 2}"#).send().await.unwrap();
    assert_eq!(raw.headers()["content-type"], "text/event-stream");
    assert!(raw.headers().contains_key("traceparent"));
    assert_eq!(
        raw.text().await.unwrap(),
        "data: {\"index\":0,\"text\":\"t0\"}\n\ndata: {\"index\":1,\"text\":\"t1\"}\n\n"
    );

    let events = client
        .stream::<_, Token>(&served.url("/tokens"), &serde_json::json!({"count": 5, "pause_ms": 40}))
        .await
        .unwrap();
    let items = read_all(events).await;
    let tokens: Vec<Token> = items.iter().map(|(item, _)| item.clone().unwrap()).collect();
    assert_eq!(tokens.iter().map(|t| t.index).collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
    let first_arrived = items[0].1;
    let last_arrived = items[4].1;
    assert!(last_arrived.duration_since(first_arrived).unwrap() >= Duration::from_millis(120), "as they are made");

    let span = server_span(&recorder, "tokens");
    assert_eq!(attr(&span, "stream.items"), Some(5_i64.into()));
    assert_eq!(attr(&span, "stream.complete"), Some(true.into()));
    assert_eq!(attr(&span, "http.response.status_code"), Some(200_i64.into()));
    assert_eq!(span.status, Status::Unset);
    let bytes = attr(&span, "http.response.body.size").expect("the bytes sent");
    assert_eq!(bytes, opentelemetry::Value::I64(5 * r#"data: {"index":0,"text":"t0"}"#.len() as i64 + 10));
    let Some(opentelemetry::Value::F64(first)) = attr(&span, "gen_ai.response.time_to_first_chunk") else {
        panic!("time to first chunk: {:?}", span.attributes)
    };
    assert!(first >= 0.04 && first < seconds(&span), "{first} against {}", seconds(&span));
    assert!(span.events.events.iter().any(|e| e.name == "first-item"));
    // The span ends once the last event has gone out: after the client had
    // the first four, and no earlier than loopback delivery allows before
    // the fifth arrived.
    assert!(span.end_time >= items[3].1, "ended after the fourth event arrived");
    assert!(span.end_time + Duration::from_millis(5) >= last_arrived, "ended with the last event");

    // An async fn's `Stream`, and an async fn's iterator.
    let events =
        client.stream::<_, Token>(&served.url("/async-tokens"), &serde_json::json!({"count": 3})).await.unwrap();
    assert_eq!(read_all(events).await.len(), 3);
    assert_eq!(attr(&server_span(&recorder, "async_tokens"), "stream.items"), Some(3_i64.into()));
    let events = client.stream::<_, u64>(&served.url("/async-iter"), &serde_json::json!({"count": 4})).await.unwrap();
    let numbers: Vec<u64> = read_all(events).await.into_iter().map(|(n, _)| n.unwrap()).collect();
    assert_eq!(numbers, [0, 1, 2, 3]);

    // `stream(events)`: an event per item besides.
    let events = client.stream::<_, u64>(&served.url("/evented"), &serde_json::json!({"count": 3})).await.unwrap();
    assert_eq!(read_all(events).await.len(), 3);
    let evented = server_span(&recorder, "evented");
    assert_eq!(evented.events.iter().filter(|e| e.name == "item").count(), 3);

    // A whole answer keeps its span to the head, with its size.
    let whole = reqwest::Client::new().post(served.url("/whole")).body(r#"{"count": 7}"#).send().await.unwrap();
    assert_eq!(whole.text().await.unwrap(), "7");
    assert_eq!(attr(&server_span(&recorder, "whole"), "http.response.body.size"), Some(1_i64.into()));

    assert_eq!(served.stop().await, ExitCode::SUCCESS);
}

#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_before_and_during_a_stream_are_told_and_recorded() {
    let recorder = Recorder::start();
    let served = Served::start::<Generator>(&[]).await;
    let client = traced::Client::new();

    // Before the first item: an ordinary error answer.
    let refused = client.stream::<_, Token>(&served.url("/tokens"), &serde_json::json!({"count": 20000})).await;
    let refused = refused.expect_err("refused before streaming");
    assert_eq!(refused.status, Some(400));
    assert!(refused.body.contains("at most 10000 tokens"), "{}", refused.body);
    assert!(matches!(server_span(&recorder, "tokens").status, Status::Error { .. }));

    // An `Err` item: an `error` event ends the stream, with the trace id.
    let events = client
        .stream::<_, Token>(&served.url("/tokens"), &serde_json::json!({"count": 5, "fail_at": 2}))
        .await
        .unwrap();
    let items = read_all(events).await;
    assert_eq!(items.len(), 3, "two tokens, then the error");
    let error = items[2].0.as_ref().expect_err("the error event");
    let told: serde_json::Value = serde_json::from_str(&error.body).unwrap();
    assert_eq!(told["error"], "the sampler diverged at token 2");
    let span = server_span(&recorder, "tokens");
    assert_eq!(told["trace_id"], span.span_context.trace_id().to_string().as_str());
    assert_eq!(span.status, Status::error("the sampler diverged at token 2"));
    assert!(span.events.events.iter().any(|e| e.name == "exception"));
    assert_eq!(attr(&span, "stream.items"), Some(3_i64.into()), "the failed item counts as made");
    assert_eq!(attr(&span, "stream.complete"), Some(false.into()));

    // A panic mid-stream: the same, and the server lives on.
    let events = client
        .stream::<_, Token>(&served.url("/tokens"), &serde_json::json!({"count": 5, "panic_at": 1}))
        .await
        .unwrap();
    let items = read_all(events).await;
    assert_eq!(items.len(), 2);
    let error = items[1].0.as_ref().expect_err("the error event");
    assert!(error.body.contains("the handler panicked: CUDA error"), "{}", error.body);
    // Fails by its deadline when the span never records the panic.
    server_span_where(
        &recorder,
        "tokens",
        |span| matches!(&span.status, Status::Error { description } if description.contains("CUDA error")),
    );
    let client_span = recorder.spans().into_iter().rfind(|s| s.span_kind == SpanKind::Client).unwrap();
    assert!(matches!(client_span.status, Status::Error { .. }), "the caller's span is marked too");

    let events = client.stream::<_, Token>(&served.url("/tokens"), &serde_json::json!({"count": 2})).await.unwrap();
    assert_eq!(read_all(events).await.len(), 2, "still serving");
    assert_eq!(served.stop().await, ExitCode::SUCCESS);
}

#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_hangs_up_stops_the_producer() {
    let recorder = Recorder::start();
    let served = Served::start::<Generator>(&[]).await;
    let client = traced::Client::new();
    for path in ["/tokens", "/async-tokens"] {
        MADE.store(0, Ordering::SeqCst);
        let ask = serde_json::json!({"count": 1000, "pause_ms": 20});
        let mut events = client.stream::<_, Token>(&served.url(path), &ask).await.unwrap();
        for expected in 0..3 {
            assert_eq!(events.next().await.unwrap().unwrap().index, expected);
        }
        drop(events);
        tokio::time::sleep(Duration::from_millis(400)).await;
        let made = MADE.load(Ordering::SeqCst);
        assert!(made <= 3 + 4, "{path}: {made} made for 3 read");
        let name = path.trim_start_matches('/').replace('-', "_");
        let span = server_span(&recorder, &name);
        assert_eq!(attr(&span, "traced.cancelled"), Some(true.into()), "{path}");
        assert_eq!(attr(&span, "stream.complete"), Some(false.into()), "{path}");
        assert!(attr(&span, "http.response.body.size").is_some(), "{path}");
    }
    assert_eq!(served.stop().await, ExitCode::SUCCESS);
}

#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_holds_the_producer_back() {
    let _recorder = Recorder::start();
    let served = Served::start::<Generator>(&[]).await;
    MADE.store(0, Ordering::SeqCst);
    // 64 KiB items and a client that reads nothing: once the socket's
    // buffers are full the producer waits; memory does not grow with it.
    let response = reqwest::Client::new()
        .post(served.url("/tokens"))
        .body(r#"{"count": 10000, "padding": 65536}"#)
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stalled = MADE.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(MADE.load(Ordering::SeqCst), stalled, "the producer waits for the reader");
    assert!(stalled < 1000, "{stalled} items made ahead of a reader that read none");
    drop(response);
    assert_eq!(served.stop().await, ExitCode::SUCCESS);
}

#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streaming_call_is_one_trace_with_the_caller() {
    let recorder = Recorder::start();
    let served = Served::start::<Generator>(&[]).await;
    let client = traced::Client::new();
    let root = traced::__private::SpanHandle::root(traced::__private::Meta::new("pipeline"));
    let root_cx = root.context().cloned().unwrap();
    let items = {
        let events = opentelemetry::context::FutureExt::with_context(
            client.stream::<_, Token>(&served.url("/tokens"), &serde_json::json!({"count": 3})),
            root_cx.clone(),
        )
        .await
        .unwrap();
        read_all(events).await
    };
    assert_eq!(items.len(), 3);
    drop(root);
    let spans = recorder.spans();
    let trace_id = root_cx.span().span_context().trace_id();
    let call = spans.iter().find(|s| s.span_kind == SpanKind::Client && s.span_context.trace_id() == trace_id);
    let call = call.expect("the Client span, in the caller's trace");
    assert_eq!(call.parent_span_id, root_cx.span().span_context().span_id());
    assert_eq!(attr(call, "stream.items"), Some(3_i64.into()));
    let server = spans.iter().find(|s| s.name == "tokens" && s.span_context.trace_id() == trace_id).unwrap();
    assert_eq!(server.parent_span_id, call.span_context.span_id());
    assert!(call.end_time >= server.end_time, "the Client span covers the stream");
    assert_eq!(served.stop().await, ExitCode::SUCCESS);
}

/// A caller whose trace id is random and not sampled (flags 02), with
/// `tracestate` members only level 2 allows: `foo@` and a 256-character
/// key with 14 characters after its `@`.
fn level_2_caller() -> (&'static str, String) {
    let long_key = format!("{}@{}", "t".repeat(241), "s".repeat(14));
    ("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-02", format!("foo@=1,{long_key}=2,vendor=abc"))
}

#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_context_goes_on_to_the_letter_unsampled_and_level_2_included() {
    let _recorder = Recorder::start();
    let served = Served::start::<Generator>(&[]).await;
    // Random trace id, not sampled: the response and every call made while
    // streaming keep flags 02.
    let (caller, tracestate) = level_2_caller();
    let response = reqwest::Client::new()
        .post(served.url("/context"))
        .header("traceparent", caller)
        .header("tracestate", &tracestate)
        .send()
        .await
        .unwrap();
    let answered = response.headers()["traceparent"].to_str().unwrap().to_string();
    assert!(answered.starts_with("00-0af7651916cd43dd8448eb211c80319c-") && answered.ends_with("-02"), "{answered}");
    let text = response.text().await.unwrap();
    let carriers: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .map(|data| serde_json::from_str(data).unwrap())
        .collect();
    assert_eq!(carriers.len(), 2, "{text}");
    for carrier in carriers {
        let traceparent = carrier["traceparent"].as_str().unwrap();
        assert!(traceparent.ends_with("-02"), "{traceparent}");
        assert_eq!(carrier["tracestate"], tracestate.as_str(), "every member, in order");
    }
    assert_eq!(served.stop().await, ExitCode::SUCCESS);
}

#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_carries_the_context_to_the_letter_unsampled_and_level_2_included() {
    let _recorder = Recorder::start();
    let served = Served::start::<Generator>(&[]).await;
    let (caller, tracestate) = level_2_caller();
    let response = reqwest::Client::new()
        .post(served.url("/relay"))
        .header("traceparent", caller)
        .header("tracestate", &tracestate)
        .json(&serde_json::json!({ "to": served.url("") }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let relayed: Relayed = response.json().await.unwrap();
    let heard: Vec<&traced::Carrier> = std::iter::once(&relayed.called).chain(&relayed.streamed).collect();
    assert_eq!(heard.len(), 3, "one call, two streamed events");
    for carrier in heard {
        let json = serde_json::to_value(carrier).unwrap();
        let traceparent = json["traceparent"].as_str().unwrap();
        assert!(
            traceparent.starts_with("00-0af7651916cd43dd8448eb211c80319c-") && traceparent.ends_with("-02"),
            "the callee continued the random, unsampled trace: {traceparent}"
        );
        assert_eq!(json["tracestate"], tracestate.as_str(), "every member, in order, through the Client");
    }
    assert_eq!(served.stop().await, ExitCode::SUCCESS);
}
