//! `#[span]` against the SDK's in-memory exporter: names, parents,
//! attributes, status, exception and panic events, cancellation, streams.

use std::time::Duration;

use futures_core::Stream as _;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt as _};
use opentelemetry::{KeyValue, Value};
use traced::{Config, span};

mod support;
use support::{Recorder, attr, event_attr};

#[span]
fn encode_prompt(prompt: &str) -> usize {
    prompt.len()
}

#[span("text-to-image")]
fn handle(prompt: &str) -> usize {
    encode_prompt(prompt) + decode()
}

#[span(name = "decode")]
fn decode() -> usize {
    1
}

#[test]
fn names_and_parents() {
    let recorder = Recorder::start();
    assert_eq!(handle("red circle"), 11);
    let root = recorder.span("text-to-image");
    let encode = recorder.span("encode_prompt");
    let decode = recorder.span("decode");
    assert_eq!(encode.parent_span_id, root.span_context.span_id());
    assert_eq!(decode.parent_span_id, root.span_context.span_id());
    assert_eq!(encode.span_context.trace_id(), root.span_context.trace_id());
    assert_eq!(root.span_kind, SpanKind::Internal);
    assert_eq!(root.status, Status::Unset);
}

#[span(attrs(model.name = "tiny-unet", "num_inference_steps" = steps * 2, prompt.length = prompt.len()))]
fn infer(prompt: &str, steps: u32) {
    let _ = (prompt, steps);
}

#[test]
fn attrs_with_dotted_and_quoted_keys() {
    let recorder = Recorder::start();
    infer("a secret prompt", 4);
    let span = recorder.span("infer");
    assert_eq!(attr(&span, "model.name"), Some(Value::from("tiny-unet")));
    assert_eq!(attr(&span, "num_inference_steps"), Some(Value::I64(8)));
    assert_eq!(attr(&span, "prompt.length"), Some(Value::I64(15)));
    assert!(span.attributes.iter().all(|kv| kv.value.as_str() != "a secret prompt"));
}

#[span(args(steps, guidance))]
fn sample(prompt: &str, steps: u32, guidance: Option<f64>, seed: Option<u64>) {
    let _ = (prompt, steps, guidance, seed);
}

#[span(args, skip(api_key))]
fn upload(bucket: &str, size: usize, api_key: &str) {
    let _ = (bucket, size, api_key);
}

#[test]
fn named_and_all_arguments() {
    let recorder = Recorder::start();
    sample("secret", 30, Some(7.5), Some(42));
    upload("images", 1024, "sk-123");
    let sampled = recorder.span("sample");
    let captured: Vec<_> =
        sampled.attributes.iter().filter(|kv| kv.key.as_str() != "openinference.span.kind").collect();
    assert_eq!(captured.len(), 2, "only the named arguments: {:?}", sampled.attributes);
    assert_eq!(attr(&sampled, "steps"), Some(Value::I64(30)));
    assert_eq!(attr(&sampled, "guidance"), Some(Value::F64(7.5)));
    let uploaded = recorder.span("upload");
    assert_eq!(attr(&uploaded, "bucket"), Some(Value::from("images")));
    assert_eq!(attr(&uploaded, "size"), Some(Value::I64(1024)));
    assert_eq!(attr(&uploaded, "api_key"), None);
}

static EVALUATED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn expensive() -> i64 {
    EVALUATED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    7
}

#[span(attrs(cost = expensive()))]
fn maybe_sampled() {}

#[test]
fn attributes_are_computed_only_when_recording() {
    let recorder = Recorder::with(Config::default().sample_rate(0.0));
    let before = EVALUATED.load(std::sync::atomic::Ordering::SeqCst);
    maybe_sampled();
    assert_eq!(EVALUATED.load(std::sync::atomic::Ordering::SeqCst), before);
    assert!(recorder.spans().is_empty());
    drop(recorder);
    let recorder = Recorder::start();
    maybe_sampled();
    assert_eq!(EVALUATED.load(std::sync::atomic::Ordering::SeqCst), before + 1);
    assert_eq!(attr(&recorder.span("maybe_sampled"), "cost"), Some(Value::I64(7)));
}

#[derive(Debug)]
struct Inner;
impl std::fmt::Display for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("disk full")
    }
}
impl std::error::Error for Inner {}

#[derive(Debug)]
struct UploadError(Inner);
impl std::fmt::Display for UploadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("upload failed")
    }
}
impl std::error::Error for UploadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

type UploadResult<T> = Result<T, UploadError>;

#[span]
fn failing_upload(fail: bool) -> UploadResult<u32> {
    if fail { Err(UploadError(Inner)) } else { Ok(3) }
}

#[span]
fn display_only() -> Result<(), DisplayOnly> {
    Err(DisplayOnly)
}
struct DisplayOnly;
impl std::fmt::Display for DisplayOnly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("shown")
    }
}

#[span]
fn debug_only() -> Result<(), DebugOnly> {
    Err(DebugOnly { code: 7 })
}
#[derive(Debug)]
#[allow(dead_code)]
struct DebugOnly {
    code: u32,
}

#[span]
fn boxed() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    Err(Box::new(UploadError(Inner)))
}

#[test]
fn errors_set_status_and_add_exception_events() {
    let recorder = Recorder::start();
    assert!(failing_upload(true).is_err());
    let span = recorder.span("failing_upload");
    assert_eq!(span.status, Status::error("upload failed"));
    let event = span.events.events.iter().find(|e| e.name == "exception").expect("an exception event");
    let get = |key: &str| event.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| kv.value.to_string());
    assert!(get("exception.type").unwrap().ends_with("UploadError"), "{:?}", get("exception.type"));
    assert_eq!(get("exception.message").as_deref(), Some("upload failed"));
    assert_eq!(get("exception.source_chain").as_deref(), Some("[\"disk full\"]"));

    assert_eq!(failing_upload(false).unwrap(), 3);
    let spans = recorder.spans();
    let ok = spans.iter().find(|s| s.name == "failing_upload" && s.events.events.is_empty()).expect("the Ok call");
    assert_eq!(ok.status, Status::Unset);

    let _ = display_only();
    assert_eq!(recorder.span("display_only").status, Status::error("shown"));
    let _ = debug_only();
    assert_eq!(recorder.span("debug_only").status, Status::error("DebugOnly { code: 7 }"));
    let _ = boxed();
    let span = recorder.span("boxed");
    assert_eq!(span.status, Status::error("upload failed"));
    assert_eq!(
        event_attr(&span, "exception", "exception.source_chain").map(|v| v.to_string()).as_deref(),
        Some("[\"disk full\"]")
    );
}

#[span]
fn panics(message: &str) -> u32 {
    panic!("{message}")
}

#[test]
fn panics_are_recorded_then_resumed() {
    let recorder = Recorder::start();
    let result = std::panic::catch_unwind(|| panics("out of memory"));
    assert!(result.is_err());
    let span = recorder.span("panics");
    assert_eq!(span.status, Status::error("panicked: out of memory"));
    assert_eq!(event_attr(&span, "exception", "exception.message"), Some(Value::from("out of memory")));
    assert_eq!(event_attr(&span, "exception", "exception.type"), Some(Value::from("panic")));
}

#[span(kind = client)]
fn call_worker() {}

#[span(kind = server, sync)]
fn server_side() {}

#[test]
fn kinds() {
    let recorder = Recorder::start();
    call_worker();
    server_side();
    assert_eq!(recorder.span("call_worker").span_kind, SpanKind::Client);
    assert_eq!(recorder.span("server_side").span_kind, SpanKind::Server);
}

#[span(follows_from(first, second))]
fn batch(first: &opentelemetry::Context, second: &traced::Carrier) {}

#[test]
fn links_to_the_spans_a_batch_stems_from() {
    let recorder = Recorder::start();
    let carrier: traced::Carrier =
        [("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")].into_iter().collect();
    let first = traced::extract(&carrier);
    let other: traced::Carrier =
        [("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")].into_iter().collect();
    batch(&first, &other);
    let span = recorder.span("batch");
    let linked: Vec<String> = span.links.links.iter().map(|l| l.span_context.trace_id().to_string()).collect();
    assert_eq!(linked, ["0af7651916cd43dd8448eb211c80319c", "4bf92f3577b34da6a3ce929d0e0e4736"]);
    assert_eq!(span.parent_span_id, opentelemetry::trace::SpanId::INVALID);
}

#[span]
async fn denoise(steps: u32) -> u32 {
    let mut done = 0;
    for _ in 0..steps {
        tokio::task::yield_now().await;
        unet_step();
        done += 1;
    }
    done
}

#[span]
fn unet_step() {}

#[span]
async fn fallible_async(fail: bool) -> Result<u32, UploadError> {
    tokio::task::yield_now().await;
    let value: u32 = if fail { Err(UploadError(Inner))? } else { 1 };
    Ok(value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_spans_stay_current_across_awaits() {
    let recorder = Recorder::start();
    assert_eq!(denoise(3).await, 3);
    let parent = recorder.span("denoise");
    let steps: Vec<_> = recorder.spans().into_iter().filter(|s| s.name == "unet_step").collect();
    assert_eq!(steps.len(), 3);
    assert!(steps.iter().all(|s| s.parent_span_id == parent.span_context.span_id()));
    assert!(fallible_async(true).await.is_err());
    assert_eq!(recorder.span("fallible_async").status, Status::error("upload failed"));
}

#[span]
async fn never_finishes() {
    std::future::pending::<()>().await;
}

#[tokio::test]
async fn a_future_dropped_early_is_marked_cancelled() {
    let recorder = Recorder::start();
    let result = tokio::time::timeout(Duration::from_millis(20), never_finishes()).await;
    assert!(result.is_err());
    let span = recorder.span("never_finishes");
    assert_eq!(attr(&span, "traced.cancelled"), Some(Value::Bool(true)));
    assert!(span.events.events.iter().any(|e| e.name == "cancelled"));
    assert_eq!(span.status, Status::Unset);
}

#[span(stream(events))]
fn tokens(count: u32) -> impl Iterator<Item = u32> {
    (0..count).inspect(|_| unet_step())
}

#[span(stream)]
fn frames() -> impl Iterator<Item = u32> {
    0..10
}

#[test]
fn stream_spans_cover_the_iteration() {
    let recorder = Recorder::start();
    let collected: Vec<u32> = tokens(4).collect();
    assert_eq!(collected, [0, 1, 2, 3]);
    let span = recorder.span("tokens");
    assert_eq!(attr(&span, "stream.items"), Some(Value::I64(4)));
    assert_eq!(attr(&span, "stream.complete"), Some(Value::Bool(true)));
    assert!(attr(&span, "gen_ai.response.time_to_first_chunk").is_some());
    assert_eq!(span.events.events.iter().filter(|e| e.name == "item").count(), 4);
    let steps: Vec<_> = recorder.spans().into_iter().filter(|s| s.name == "unet_step").collect();
    assert!(steps.iter().all(|s| s.parent_span_id == span.span_context.span_id()), "items run inside the span");

    let first_three: Vec<u32> = frames().take(3).collect();
    assert_eq!(first_three, [0, 1, 2]);
    let span = recorder.span("frames");
    assert_eq!(attr(&span, "stream.items"), Some(Value::I64(3)));
    assert_eq!(attr(&span, "stream.complete"), Some(Value::Bool(false)));
    let events: Vec<&str> = span.events.events.iter().map(|e| e.name.as_ref()).collect();
    assert_eq!(events, ["first-item"], "one event at the first item, none per item unless asked");
}

#[span(stream)]
fn chunks() -> impl futures_core::Stream<Item = u8> {
    Chunks(3)
}

struct Chunks(u8);
impl futures_core::Stream for Chunks {
    type Item = u8;
    fn poll_next(mut self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<Option<u8>> {
        if self.0 == 0 {
            return std::task::Poll::Ready(None);
        }
        self.0 -= 1;
        std::task::Poll::Ready(Some(self.0))
    }
}

#[tokio::test]
async fn stream_spans_cover_a_stream() {
    let recorder = Recorder::start();
    let mut stream = std::pin::pin!(chunks());
    let mut seen = Vec::new();
    while let Some(item) = std::future::poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
        seen.push(item);
    }
    assert_eq!(seen, [2, 1, 0]);
    let span = recorder.span("chunks");
    assert_eq!(attr(&span, "stream.items"), Some(Value::I64(3)));
    assert_eq!(attr(&span, "stream.complete"), Some(Value::Bool(true)));
}

static SYNCS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

#[span(sync)]
fn launch_kernels() {}

#[test]
fn sync_waits_for_the_device_before_the_span_ends() {
    traced::set_device_sync(|| {
        SYNCS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    });
    let recorder = Recorder::start();
    launch_kernels();
    assert_eq!(SYNCS.load(std::sync::atomic::Ordering::SeqCst), 1);
    recorder.span("launch_kernels");
    drop(recorder);
    launch_kernels();
    assert_eq!(SYNCS.load(std::sync::atomic::Ordering::SeqCst), 1, "no sync with tracing off");
}

#[test]
fn current_trace_id_inside_a_span() {
    let recorder = Recorder::start();
    #[span]
    fn inside() -> Option<String> {
        traced::current_trace_id()
    }
    let id = inside().expect("a trace id");
    assert_eq!(recorder.span("inside").span_context.trace_id().to_string(), id);
    assert!(opentelemetry::Context::current().span().span_context().trace_id().to_string() != id);
    let _ = KeyValue::new("unused", 1);
}

#[span]
fn outer_unsampled() -> (Option<String>, Option<String>, Option<String>) {
    (traced::current_trace_id(), inner_unsampled(), traced::inject().get("traceparent").map(str::to_string))
}

#[span]
fn inner_unsampled() -> Option<String> {
    traced::current_trace_id()
}

#[test]
fn children_of_an_unsampled_span_stay_in_its_unsampled_trace() {
    let recorder = Recorder::with(Config::default().sample_rate(0.0));
    let (outer, inner, traceparent) = outer_unsampled();
    assert!(outer.is_some());
    assert_eq!(outer, inner, "the child was not made a new root");
    assert!(traceparent.unwrap().ends_with("-00"), "callees are told the trace is not sampled");
    assert!(recorder.spans().is_empty());
}

#[span(ai_kind = llm)]
fn unet() {}

#[span(name = "embed-prompt", ai_kind = embedding, kind = client)]
fn embed_prompt() {}

#[span]
fn plain_stage() {}

#[test]
fn every_span_has_an_openinference_kind_chain_unless_given() {
    let recorder = Recorder::start();
    unet();
    embed_prompt();
    plain_stage();
    let kind = |name: &str| attr(&recorder.span(name), "openinference.span.kind");
    assert_eq!(kind("unet"), Some(Value::from("LLM")));
    assert_eq!(kind("embed-prompt"), Some(Value::from("EMBEDDING")));
    assert_eq!(kind("plain_stage"), Some(Value::from("CHAIN")));
    assert_eq!(recorder.span("embed-prompt").span_kind, opentelemetry::trace::SpanKind::Client);
}

#[span(name = "generate")]
fn generate() {
    traced::GenAiRequest::new("generate_content", "tiny-unet").output_type("image").seed(3).record();
}

#[test]
fn gen_ai_request_attributes_land_on_the_current_span() {
    let recorder = Recorder::start();
    generate();
    let span = recorder.span("generate");
    assert_eq!(attr(&span, "gen_ai.operation.name"), Some(Value::from("generate_content")));
    assert_eq!(attr(&span, "gen_ai.request.model"), Some(Value::from("tiny-unet")));
    assert_eq!(attr(&span, "gen_ai.output.type"), Some(Value::from("image")));
    assert_eq!(attr(&span, "gen_ai.request.seed"), Some(Value::I64(3)));
}

/// An async fn's attribute that runs traced code: a sync span of its own.
#[span(attrs(steps_done = unet_step_counted()))]
async fn denoise_counting_in_its_attributes() -> u32 {
    tokio::task::yield_now().await;
    1
}

#[span]
fn unet_step_counted() -> u32 {
    7
}

#[tokio::test]
async fn an_async_fns_attribute_may_run_traced_code() {
    let recorder = Recorder::start();
    let tracer = opentelemetry::global::tracer("hand-written");
    let request = opentelemetry::trace::Tracer::start(&tracer, "request");
    let cx = opentelemetry::Context::current_with_span(request);
    let trace_id = cx.span().span_context().trace_id();
    let _attached = cx.attach();
    assert_eq!(denoise_counting_in_its_attributes().await, 1);
    let span = recorder.span("denoise_counting_in_its_attributes");
    assert_eq!(attr(&span, "steps_done"), Some(7_i64.into()));
    assert_eq!(recorder.span("unet_step_counted").span_context.trace_id(), trace_id);
}
