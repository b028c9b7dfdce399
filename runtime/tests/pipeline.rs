//! The provider and batch processor against the SDK's in-memory exporter and
//! exporters that misbehave on purpose.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use opentelemetry::trace::{TraceContextExt as _, Tracer as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SpanData, SpanExporter};
use traced::{Carrier, Config, ExporterKind};

/// The provider is process-global: tests that install one take turns.
static ONE_PROVIDER_AT_A_TIME: Mutex<()> = Mutex::new(());

fn exclusive() -> MutexGuard<'static, ()> {
    ONE_PROVIDER_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner)
}

fn isolated(config: Config) -> Config {
    config.exporters([ExporterKind::None]).with_env_from(|_| None)
}

fn tracer() -> opentelemetry::global::BoxedTracer {
    opentelemetry::global::tracer("pipeline-test")
}

/// A collector that takes the request and never answers.
#[derive(Debug)]
struct Hanging;

impl SpanExporter for Hanging {
    async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
        std::future::pending().await
    }
}

#[test]
fn long_values_are_cut_to_the_length_limit() {
    let _turn = exclusive();
    let memory = InMemorySpanExporter::default();
    let guard = traced::init(isolated(Config::default().attribute_value_length_limit(5).span_exporter(memory.clone())));
    tracer().in_span("stage", |cx| {
        cx.span().set_attribute(KeyValue::new("prompt", "a red circle on blue"));
        cx.span().set_attribute(KeyValue::new("steps", 40));
        cx.span().add_event("step", vec![KeyValue::new("note", "ünïcödé text")]);
    });
    assert!(traced::flush(Duration::from_secs(2)));
    let spans = memory.get_finished_spans().unwrap();
    assert_eq!(spans.len(), 1);
    let prompt = spans[0].attributes.iter().find(|kv| kv.key.as_str() == "prompt").unwrap();
    assert_eq!(prompt.value.as_str(), "a red");
    assert!(spans[0].attributes.contains(&KeyValue::new("steps", 40)));
    assert_eq!(spans[0].events.events[0].attributes[0].value.as_str(), "ünïcö");
    let report = guard.shutdown();
    assert_eq!(report.stats.exported, 1);
    assert!(report.complete);
}

#[test]
fn a_hung_exporter_cannot_hold_shutdown_past_its_budget() {
    let _turn = exclusive();
    let budget = Duration::from_millis(600);
    let guard = traced::init(isolated(
        Config::default().flush_budget(budget).schedule_delay(Duration::from_millis(10)).span_exporter(Hanging),
    ));
    for _ in 0..10 {
        tracer().in_span("request", |_| {});
    }
    // Let the worker pick the batch up and hang in export.
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    let report = guard.shutdown();
    let took = started.elapsed();
    println!("shutdown with a hung exporter took {took:?} (budget {budget:?})");
    assert!(took < budget + Duration::from_millis(500), "{took:?}");
    assert!(!report.complete);
    assert_eq!(report.stats.exported, 0);
    assert_eq!(report.stats.dropped(), 10, "{report}");
}

#[test]
fn spans_beyond_the_queue_are_dropped_and_counted() {
    let _turn = exclusive();
    let guard = traced::init(isolated(
        Config::default()
            .max_queue_size(4)
            .max_export_batch_size(4)
            .flush_budget(Duration::from_millis(300))
            .span_exporter(Hanging),
    ));
    for _ in 0..50 {
        tracer().in_span("burst", |_| {});
    }
    let live = traced::stats();
    assert!(live.dropped_queue_full >= 50 - 8, "{live:?}");
    let report = guard.shutdown();
    assert_eq!(report.stats.dropped(), 50, "{report}");
    assert!(report.to_string().contains("50 dropped"), "{report}");
}

// The turn lock is held across awaits on purpose: it orders whole tests.
#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "current_thread")]
async fn shutdown_works_from_inside_a_current_thread_runtime() {
    let _turn = exclusive();
    let memory = InMemorySpanExporter::default();
    let guard = traced::init(isolated(Config::default().span_exporter(memory.clone())));
    let span = tracer().start("async-stage");
    let cx = Context::current_with_span(span);
    tokio::task::yield_now().await;
    cx.span().end();
    assert!(traced::flush(Duration::from_secs(2)));
    assert_eq!(memory.get_finished_spans().unwrap().len(), 1);
    let report = guard.shutdown();
    assert_eq!(report.stats.exported, 1);
    assert!(report.elapsed < Duration::from_secs(1), "{report}");
}

#[test]
fn with_tracing_off_nothing_is_installed_but_context_passes_through() {
    let _turn = exclusive();
    let memory = InMemorySpanExporter::default();
    let config = Config::default()
        .span_exporter(memory.clone())
        .with_env_from(|name| (name == "ENABLE_TRACING").then(|| "false".to_string()));
    let guard = traced::init(config);
    assert!(!traced::is_enabled());
    let incoming: Carrier =
        [("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")].into_iter().collect();
    let parent = traced::extract(&incoming);
    let _attached = parent.attach();
    tracer().in_span("not-recorded", |cx| {
        assert!(!cx.span().is_recording());
        assert_eq!(traced::current_trace_id().as_deref(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        assert_eq!(traced::inject().get("traceparent"), incoming.get("traceparent"));
    });
    let report = guard.shutdown();
    assert_eq!(report.stats.exported, 0);
    assert!(memory.get_finished_spans().unwrap().is_empty());
}

#[test]
fn roots_follow_the_ratio_and_children_follow_their_parent() {
    let _turn = exclusive();
    let memory = InMemorySpanExporter::default();
    let guard = traced::init(isolated(Config::default().sample_rate(0.0).span_exporter(memory.clone())));
    tracer().in_span("unsampled-root", |_| {});
    let sampled: Carrier =
        [("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")].into_iter().collect();
    let _attached = traced::extract(&sampled).attach();
    tracer().in_span("child-of-sampled-caller", |_| {});
    assert!(traced::flush(Duration::from_secs(2)));
    let names: Vec<String> = memory.get_finished_spans().unwrap().iter().map(|s| s.name.to_string()).collect();
    assert_eq!(names, ["child-of-sampled-caller"]);
    drop(guard);
}

#[test]
fn a_second_shutdown_is_a_no_op() {
    let _turn = exclusive();
    let guard = traced::init(isolated(Config::default()));
    let first = guard.shutdown();
    assert!(first.complete);
    let again = traced::shutdown(Duration::from_secs(5));
    assert_eq!(again.elapsed, Duration::ZERO);
}

#[test]
fn malformed_traceparents_yield_no_parent() {
    for bad in [
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e473z-00f067aa0ba902b7-01",
        "",
    ] {
        let carrier: Carrier = [("traceparent", bad)].into_iter().collect();
        let cx = traced::extract(&carrier);
        assert!(!cx.span().span_context().is_valid(), "{bad}");
    }
}
