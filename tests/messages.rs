//! traced's own messages go where the app's logs go: with a `tracing`
//! subscriber, they are its events (target `traced`), none of them becomes
//! a span or a span event of the `tracing` bridge, and a filter drops them;
//! without one, they reach stderr; `TRACED_LOG=off` silences them.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use opentelemetry_sdk::trace::InMemorySpanExporter;
use traced::{Config, ExporterKind};
use traced_tests::{Service, closed_port, workspace_binary};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt as _};

/// Every event the subscriber saw: target, level, message.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<(String, tracing::Level, String)>>>);

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Seen {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let mut message = Message(String::new());
        event.record(&mut message);
        let metadata = event.metadata();
        self.0.lock().unwrap_or_else(PoisonError::into_inner).push((
            metadata.target().to_string(),
            *metadata.level(),
            message.0,
        ));
    }
}

impl Seen {
    fn traced(&self) -> Vec<(tracing::Level, String)> {
        let seen = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        seen.iter().filter(|(target, ..)| target == "traced").map(|(_, level, text)| (*level, text.clone())).collect()
    }
}

#[traced::span(name = "denoise")]
fn denoise(steps: u32) -> u32 {
    tracing::info!(steps, "denoising");
    steps
}

/// A second `init` inside an app's span: traced's warning is said there,
/// where the bridge would make it the span's event.
#[traced::span(name = "reconfigure")]
fn reconfigure() {
    drop(traced::init(Config::default().with_env_from(|_| None)));
}

#[test]
fn with_a_subscriber_they_are_its_events_and_never_spans() {
    let seen = Seen::default();
    let subscriber = tracing_subscriber::registry().with(seen.clone()).with(traced::tracing_layer());
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber in this test binary");

    let memory = InMemorySpanExporter::default();
    let endpoint = format!("http://127.0.0.1:{}", closed_port());
    let config = Config::default()
        .service_name("messages")
        .otlp_endpoint(endpoint.as_str())
        .exporters([ExporterKind::Otlp])
        .schedule_delay(Duration::from_millis(50))
        .span_exporter(memory.clone())
        .with_env_from(|name| (name == "OTEL_SAMPLE_RATE").then(|| "lots".to_string()));
    let guard = traced::init(config);
    assert_eq!(denoise(4), 4);
    reconfigure();
    // The export to the closed port fails and is said; the spans wait.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !seen.traced().iter().any(|(_, text)| text.contains("its spans wait for it")) {
        assert!(std::time::Instant::now() < deadline, "no export failure event: {:?}", seen.traced());
        std::thread::sleep(Duration::from_millis(50));
    }
    // The in-memory exporter forgets its spans at shutdown: read them first.
    traced::flush(Duration::from_secs(5));
    let spans = memory.get_finished_spans().expect("finished spans");
    let report = guard.shutdown();
    assert!(report.stats.exported >= 1, "the in-memory exporter took the span: {report:?}");

    let events = seen.traced();
    let warned = |text: &str| events.iter().any(|(level, said)| *level == tracing::Level::WARN && said.contains(text));
    assert!(warned("OTEL_SAMPLE_RATE=\"lots\""), "the bad variable, as a WARN event: {events:?}");
    assert!(warned("its spans wait for it"), "{events:?}");
    assert!(
        events.iter().any(|(level, said)| *level == tracing::Level::INFO && said.starts_with("shutdown in")),
        "the shutdown report, as an INFO event: {events:?}"
    );
    // Not one of traced's own events became a span or a span event.
    assert!(spans.iter().any(|span| span.name == "denoise"), "{spans:?}");
    let denoise = spans.iter().find(|span| span.name == "denoise").expect("denoise");
    assert!(
        denoise.events.iter().any(|event| event.name == "denoising"),
        "the app's own event is bridged: {denoise:?}"
    );
    assert!(warned("init called again"), "{events:?}");
    let reconfigure = spans.iter().find(|span| span.name == "reconfigure").expect("reconfigure");
    assert!(reconfigure.events.is_empty(), "traced's warning is not the span's event: {reconfigure:?}");
    for span in &spans {
        assert!(!span.attributes.iter().any(|kv| kv.value.as_str() == "traced"), "{span:?}");
        for event in span.events.iter() {
            assert!(!event.name.contains("its spans wait") && !event.name.contains("OTEL_SAMPLE_RATE"), "{event:?}");
        }
    }
}

#[test]
fn without_a_subscriber_they_reach_stderr_and_traced_log_off_silences_them() {
    let bad = [("OTEL_SAMPLE_RATE", "lots"), ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")];
    let mut said = Service::start(&workspace_binary("test-worker"), &bad);
    assert_eq!(said.terminate().0, Some(0));
    let stderr = said.stderr();
    assert!(stderr.contains("traced: warning: OTEL_SAMPLE_RATE=\"lots\""), "{stderr}");
    assert!(stderr.contains("traced: shutdown in"), "{stderr}");

    let quiet = [bad[0], bad[1], ("TRACED_LOG", "off")];
    let mut silent = Service::start(&workspace_binary("test-worker"), &quiet);
    assert_eq!(silent.terminate().0, Some(0));
    let stderr = silent.stderr();
    assert!(!stderr.contains("warning") && !stderr.contains("shutdown in"), "silenced:\n{stderr}");
    assert!(stderr.contains("serving on"), "the server's own lines stay: {stderr}");
}
