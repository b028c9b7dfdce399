//! traced's own span core for sync fns (frames on a thread-local stack,
//! finished spans collected to the exporters), as seen from outside: it
//! nests with SDK spans both ways, propagation sees its spans, a head-dropped
//! new trace records nothing yet propagates, threads' spans arrive, a span
//! that outlives its provider is not handed to the next one, and an
//! attribute's expression may run traced code, or panic.

use std::time::{Duration, SystemTime};

use opentelemetry::trace::{SpanKind, TraceContextExt as _, Tracer as _};
use traced::{Config, Sampler, span};

mod support;
use support::{Recorder, attr};

#[span(args)]
fn stage(step: u64) -> Option<String> {
    traced::set_attribute("stage.note", "inside");
    traced::current_trace_id()
}

#[span]
fn stage_that_injects() -> traced::Carrier {
    traced::inject()
}

#[span]
fn outer_with_an_sdk_child() -> u64 {
    let tracer = opentelemetry::global::tracer("hand-written");
    tracer.in_span("sdk-child", |_| stage(7).map_or(0, |id| id.len() as u64))
}

#[test]
fn a_sync_span_nests_under_an_sdk_span_and_an_sdk_span_under_it() {
    let recorder = Recorder::start();
    let tracer = opentelemetry::global::tracer("hand-written");
    let trace_id = tracer.in_span("request", |cx| {
        assert!(outer_with_an_sdk_child() > 0);
        cx.span().span_context().trace_id()
    });
    let request = recorder.span("request");
    let outer = recorder.span("outer_with_an_sdk_child");
    let sdk_child = recorder.span("sdk-child");
    let inner = recorder.span("stage");
    for span in [&request, &outer, &sdk_child, &inner] {
        assert_eq!(span.span_context.trace_id(), trace_id, "{}", span.name);
    }
    assert_eq!(outer.parent_span_id, request.span_context.span_id());
    assert_eq!(sdk_child.parent_span_id, outer.span_context.span_id());
    assert_eq!(inner.parent_span_id, sdk_child.span_context.span_id());
    assert!(!outer.parent_span_is_remote && !sdk_child.parent_span_is_remote);
    assert_eq!(attr(&inner, "step"), Some(7_i64.into()));
    assert_eq!(attr(&inner, "stage.note"), Some("inside".into()), "set_attribute reaches the frame");
    assert_eq!(inner.span_kind, SpanKind::Internal);
    assert_eq!(inner.instrumentation_scope.name(), "traced");
    let now = SystemTime::now();
    assert!(inner.start_time <= inner.end_time);
    assert!(now.duration_since(inner.end_time).unwrap_or_default() < Duration::from_secs(5), "wall-clock times");
    assert!(outer.start_time <= inner.start_time && inner.end_time <= outer.end_time, "nested in time");
}

#[test]
fn inject_and_the_trace_id_inside_a_sync_span_name_that_span() {
    let recorder = Recorder::start();
    let tracer = opentelemetry::global::tracer("hand-written");
    let carrier = tracer.in_span("request", |_| stage_that_injects());
    let span = recorder.span("stage_that_injects");
    let expected = format!("00-{}-{}-01", span.span_context.trace_id(), span.span_context.span_id());
    assert_eq!(carrier.get("traceparent"), Some(expected.as_str()));
}

#[test]
fn a_new_trace_head_sampling_drops_records_nothing_but_still_propagates() {
    let recorder = Recorder::with(Config::default().sampler(Sampler::ParentBasedTraceIdRatio(0.0)));
    let carrier = stage_that_injects();
    let traceparent = carrier.get("traceparent").expect("a traceparent for the unsampled trace").to_string();
    assert!(traceparent.ends_with("-00"), "{traceparent}");
    assert_ne!(&traceparent[3..35], "00000000000000000000000000000000");
    assert!(stage(1).is_some(), "the trace id is known inside");
    assert!(recorder.spans().is_empty(), "{:?}", recorder.spans());
}

#[test]
fn spans_made_on_other_threads_arrive() {
    let recorder = Recorder::start();
    let tracer = opentelemetry::global::tracer("hand-written");
    tracer.in_span("request", |cx| {
        std::thread::scope(|scope| {
            for step in 0..4 {
                let cx = cx.clone();
                scope.spawn(move || {
                    let _attached = cx.attach();
                    stage(step)
                });
            }
        });
    });
    let request = recorder.span("request");
    let stages: Vec<_> = recorder.spans().into_iter().filter(|s| s.name == "stage").collect();
    assert_eq!(stages.len(), 4);
    assert!(stages.iter().all(|s| s.parent_span_id == request.span_context.span_id()));
}

#[test]
fn a_span_that_outlives_its_provider_is_not_handed_to_the_next() {
    let (started, finish) = std::sync::mpsc::channel::<()>();
    let (ready, wait) = std::sync::mpsc::channel::<()>();
    let first = Recorder::start();
    let tracer = opentelemetry::global::tracer("hand-written");
    let cx = opentelemetry::Context::current_with_span(tracer.start("request"));
    let straggler = std::thread::spawn(move || {
        let _attached = cx.attach();
        late_stage(&ready, &finish);
    });
    drop(started);
    wait.recv().expect("the stage started");
    drop(first);
    let second = Recorder::start();
    straggler.join().expect("the stage ends");
    assert!(second.spans().iter().all(|s| s.name != "late_stage"), "{:?}", second.spans());
}

#[span]
fn late_stage(ready: &std::sync::mpsc::Sender<()>, finish: &std::sync::mpsc::Receiver<()>) {
    let _ = ready.send(());
    // Ends once the first provider is gone (its sender dropped).
    let _ = finish.recv_timeout(Duration::from_secs(2));
}

#[span(args)]
fn quiet_stage(step: u64) -> u64 {
    step + 1
}

struct StageOnDrop;

impl Drop for StageOnDrop {
    fn drop(&mut self) {
        assert_eq!(quiet_stage(1), 2);
    }
}

thread_local! {
    static STAGE_ON_DROP: StageOnDrop = const { StageOnDrop };
}

#[test]
fn a_span_made_while_its_thread_is_torn_down_does_not_panic() {
    let _recorder = Recorder::start();
    let finished = std::thread::spawn(|| {
        // Registered before the span core's own thread-locals, so dropped
        // after them.
        STAGE_ON_DROP.with(|_| {});
        quiet_stage(0)
    })
    .join();
    assert_eq!(finished.expect("the thread ends without a panic"), 1);
}

/// Each attribute runs traced code: a span of its own, the trace id, an
/// attribute set on the current span.
#[span(attrs(
    inner = stage(3).map_or(0, |id| id.len() as u64),
    trace = traced::current_trace_id().unwrap_or_default(),
    noted = { traced::set_attribute("set.meanwhile", true); 1_u64 },
))]
fn stage_whose_attributes_run_traced_code() -> u64 {
    1
}

#[test]
fn an_attribute_may_run_traced_code_inside_its_span() {
    let recorder = Recorder::start();
    let tracer = opentelemetry::global::tracer("hand-written");
    tracer.in_span("request", |_| stage_whose_attributes_run_traced_code());
    let span = recorder.span("stage_whose_attributes_run_traced_code");
    let inner = recorder.span("stage");
    assert_eq!(attr(&span, "inner"), Some(32_i64.into()));
    assert_eq!(attr(&span, "trace"), Some(span.span_context.trace_id().to_string().into()));
    assert_eq!(attr(&span, "noted"), Some(1_i64.into()));
    assert_eq!(attr(&span, "set.meanwhile"), Some(true.into()), "set while its attributes were collected");
    assert_eq!(inner.parent_span_id, span.span_context.span_id(), "the attribute's span is the span's child");
}

#[span(attrs(index = [1_u64, 2][usize::from(std::hint::black_box(true)) * 2]))]
fn stage_whose_attribute_panics() -> u64 {
    1
}

#[test]
fn an_attribute_that_panics_leaves_the_stack_as_it_was() {
    let recorder = Recorder::start();
    let tracer = opentelemetry::global::tracer("hand-written");
    let request = tracer.in_span("request", |cx| {
        let panicked = std::panic::catch_unwind(stage_whose_attribute_panics);
        assert!(panicked.is_err());
        assert!(stage(5).is_some());
        cx.span().span_context().span_id()
    });
    assert_eq!(recorder.span("stage").parent_span_id, request, "the next span's parent is the request's");
    assert!(recorder.spans().iter().all(|s| s.name != "stage_whose_attribute_panics"));
}
