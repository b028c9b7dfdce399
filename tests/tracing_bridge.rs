//! `tracing` spans and events in traced's traces, read back from Phoenix: a
//! `#[tracing::instrument]` fn and a `tracing::info!` inside a `#[span]` fn,
//! and a `#[span]` fn inside a `tracing` span, each with the right parent in
//! one trace; an ERROR event marks its span; a log line names the trace.

use std::io::Write as _;
use std::sync::{Arc, Mutex, PoisonError};

use traced::{Config, ExporterKind};
use traced_tests::{Receivers, by_name, one_provider_at_a_time, unique};
use tracing_subscriber::layer::SubscriberExt as _;

#[tracing::instrument]
fn tokenize(prompt: &str) -> usize {
    tracing::info!(tokens = prompt.len(), "tokenized");
    prompt.len()
}

#[traced::span(name = "encode-prompt")]
fn encode(prompt: &str) -> usize {
    tracing::info!(model = "tiny-clip", "encoding");
    tokenize(prompt)
}

#[traced::span(name = "denoise")]
fn denoise(steps: u32) -> u32 {
    tracing::error!(step = 3, "latents went NaN");
    steps
}

/// A writer the fmt layer writes log lines into, for the test to read.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Lines {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn tracing_spans_and_events_join_the_trace_with_the_right_parents() {
    let _turn = one_provider_at_a_time();
    let receivers = Receivers::from_env();
    let project = unique("traced-tracing");
    let attributes = format!("openinference.project.name={project}");
    let config = Config::default()
        .service_name(&project)
        .otlp_endpoint(&receivers.phoenix)
        .exporters([ExporterKind::Otlp])
        .with_env_from(move |name| (name == "OTEL_RESOURCE_ATTRIBUTES").then(|| attributes.clone()));
    let guard = traced::init(config);
    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber = tracing_subscriber::registry().with(traced::tracing_layer()).with(
        tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .event_format(traced::with_trace_ids(tracing_subscriber::fmt::format()))
            .with_writer(move || writer.clone()),
    );
    let trace_id = tracing::subscriber::with_default(subscriber, || {
        let request = tracing::info_span!("request", route = "/");
        let _entered = request.enter();
        let trace_id = traced::current_trace_id().expect("the tracing span is current");
        assert_eq!(encode("a red circle"), 12);
        assert_eq!(denoise(4), 4);
        trace_id
    });
    let report = guard.shutdown();
    assert_eq!(report.stats.exported, 4, "{report}");

    let spans = receivers.phoenix_spans(&project, &trace_id, 4);
    assert_eq!(spans.len(), 4, "{spans:?}");
    let request = by_name(&spans, "request");
    let encode = by_name(&spans, "encode-prompt");
    let tokenize = by_name(&spans, "tokenize");
    let denoise = by_name(&spans, "denoise");
    assert_eq!(request.parent_id, None);
    assert_eq!(request.attributes["route"], "/");
    assert_eq!(encode.parent_id.as_deref(), Some(request.span_id.as_str()), "a #[span] fn inside a tracing span");
    assert_eq!(tokenize.parent_id.as_deref(), Some(encode.span_id.as_str()), "an instrumented fn inside a #[span] fn");
    assert_eq!(tokenize.attributes["prompt"], "a red circle");
    let names = |span: &traced_tests::PhoenixSpan| -> Vec<String> {
        span.events.iter().filter_map(|event| event["name"].as_str().map(str::to_string)).collect()
    };
    assert_eq!(names(encode), ["encoding"]);
    assert_eq!(names(tokenize), ["tokenized"]);
    assert_eq!(denoise.status_code, "ERROR");
    assert_eq!(names(denoise), ["latents went NaN"]);

    let logged = String::from_utf8(lines.0.lock().unwrap_or_else(PoisonError::into_inner).clone()).unwrap();
    std::io::stdout().write_all(logged.as_bytes()).unwrap();
    let line = logged.lines().find(|line| line.contains("tokenized")).expect("a log line for the event");
    assert!(line.starts_with(&format!("trace_id={trace_id} span_id={} ", tokenize.span_id)), "{line}");
}

#[traced::span(name = "sampled-out-root")]
fn sampled_out_root() {
    let inner = tracing::info_span!("inner");
    let _entered = inner.enter();
    tokenize("x");
    tracing::warn!("nobody records this");
}

#[test]
fn an_unsampled_trace_records_nothing_from_tracing_either() {
    let _turn = one_provider_at_a_time();
    let receivers = Receivers::from_env();
    // Every new root is kept: only the caller's decision can drop this trace.
    let config =
        Config::default().otlp_endpoint(&receivers.phoenix).exporters([ExporterKind::Otlp]).with_env_from(|_| None);
    let guard = traced::init(config);
    let caller: traced::Carrier =
        [("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")].into_iter().collect();
    let subscriber = tracing_subscriber::registry().with(traced::tracing_layer());
    tracing::subscriber::with_default(subscriber, || {
        let _caller = traced::extract(&caller).attach();
        let outer = tracing::info_span!("outer");
        let _entered = outer.enter();
        sampled_out_root();
    });
    let report = guard.shutdown();
    assert_eq!((report.stats.exported, report.stats.dropped()), (0, 0), "{report}");
}
