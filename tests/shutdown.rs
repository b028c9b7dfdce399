//! A collector that accepts connections and never answers, and one that
//! cannot be reached: shutdown still returns within its budget + 0.5 s, and
//! what could not be delivered is counted. A collector slower than the
//! flush budget but within the OTLP timeout gets every span while the app
//! runs.

use std::time::{Duration, Instant};

use opentelemetry::trace::Tracer as _;
use traced::{Config, ExporterKind, Protocol};
use traced_tests::{HangingCollector, Receivers, SlowFront, closed_port, one_provider_at_a_time, unique};

const SPANS: u64 = 20;
const SLACK: Duration = Duration::from_millis(500);

/// Sends SPANS spans and times the shutdown under `budget` (None: default).
fn timed_shutdown(endpoint: &str, protocol: Protocol, budget: Option<Duration>) -> (Duration, traced::ShutdownReport) {
    let mut config = Config::default().otlp_endpoint(endpoint).otlp_protocol(protocol).exporters([ExporterKind::Otlp]);
    if let Some(budget) = budget {
        config = config.flush_budget(budget);
    }
    let config = config.with_env_from(|_| None);
    let budget = config.get_flush_budget().value;
    let guard = traced::init(config);
    let tracer = opentelemetry::global::tracer("shutdown-test");
    for _ in 0..SPANS {
        tracer.in_span("request", |_| {});
    }
    let started = Instant::now();
    let report = guard.shutdown();
    let took = started.elapsed();
    println!("{} {endpoint}: shutdown took {took:?} with a budget of {budget:?}: {report}", protocol.as_str());
    assert!(took < budget + SLACK, "shutdown took {took:?}, budget {budget:?}");
    (took, report)
}

#[test]
fn a_hung_http_collector_with_the_default_ten_second_otlp_timeout() {
    let _turn = one_provider_at_a_time();
    let collector = HangingCollector::start();
    // The defaults: 10 s OTLP timeout, 4 s flush budget.
    let (took, report) = timed_shutdown(&collector.url, Protocol::HttpProtobuf, None);
    assert!(collector.connections() >= 1, "the exporter never connected");
    assert!(took >= Duration::from_millis(3500), "gave up early: {took:?}");
    assert!(!report.complete);
    assert_eq!(report.stats.exported, 0);
    assert_eq!(report.stats.dropped(), SPANS, "{report}");
}

#[test]
fn a_hung_grpc_collector() {
    let _turn = one_provider_at_a_time();
    let collector = HangingCollector::start();
    let (_, report) = timed_shutdown(&collector.url, Protocol::Grpc, Some(Duration::from_millis(1500)));
    assert!(collector.connections() >= 1, "the exporter never connected");
    assert!(!report.complete);
    assert_eq!(report.stats.dropped(), SPANS, "{report}");
}

#[test]
fn a_hung_json_collector_with_a_short_budget() {
    let _turn = one_provider_at_a_time();
    let collector = HangingCollector::start();
    let (_, report) = timed_shutdown(&collector.url, Protocol::HttpJson, Some(Duration::from_millis(800)));
    assert_eq!(report.stats.dropped(), SPANS, "{report}");
}

#[test]
fn an_unreachable_collector() {
    let _turn = one_provider_at_a_time();
    for protocol in [Protocol::HttpProtobuf, Protocol::Grpc] {
        let endpoint = format!("http://127.0.0.1:{}", closed_port());
        let (took, report) = timed_shutdown(&endpoint, protocol, None);
        // Refused at once: no reason to sit out the budget.
        assert!(took < Duration::from_secs(1), "{took:?}");
        assert_eq!(report.stats.exported, 0);
        assert_eq!(report.stats.dropped_export_failed, SPANS, "{report}");
    }
}

// The turn lock is held across awaits on purpose: it orders whole tests.
#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "current_thread")]
async fn dropping_the_guard_on_a_current_thread_runtime_with_a_hung_collector() {
    let _turn = one_provider_at_a_time();
    let collector = HangingCollector::start();
    let budget = Duration::from_millis(1000);
    let config = Config::default()
        .otlp_endpoint(&collector.url)
        .exporters([ExporterKind::Otlp])
        .flush_budget(budget)
        .with_env_from(|_| None);
    let guard = traced::init(config);
    opentelemetry::global::tracer("shutdown-test").in_span("request", |_| {});
    tokio::task::yield_now().await;
    let started = Instant::now();
    drop(guard);
    let took = started.elapsed();
    println!("guard drop on a current-thread runtime took {took:?} with a budget of {budget:?}");
    assert!(took < budget + SLACK, "{took:?}");
    assert!(took >= budget - Duration::from_millis(100), "returned before the budget: {took:?}");
    assert!(!traced::is_enabled());
}

#[test]
fn a_slow_collector_gets_every_span_while_the_app_runs_and_shutdown_keeps_its_budget() {
    let _turn = one_provider_at_a_time();
    let receivers = Receivers::from_env();
    // Slower than the 4 s flush budget, within the 10 s OTLP timeout.
    let front = SlowFront::start(&receivers.phoenix, Duration::from_secs(6));
    let project = unique("traced-slow");
    let env = [
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "10000".to_string()),
        ("OTEL_RESOURCE_ATTRIBUTES", format!("openinference.project.name={project}")),
    ];
    let config = Config::default()
        .service_name(&project)
        .otlp_endpoint(&front.url)
        .exporters([ExporterKind::Otlp])
        .schedule_delay(Duration::from_millis(100))
        .with_env_from(move |name| env.iter().find(|(key, _)| *key == name).map(|(_, value)| value.clone()));
    let budget = config.get_flush_budget().value;
    let guard = traced::init(config);
    let tracer = opentelemetry::global::tracer("shutdown-test");
    let trace_id = tracer.in_span("text-to-image", |_| {
        tracer.in_span("inference", |_| {});
        tracer.in_span("upload", |_| {});
        traced::current_trace_id().expect("a current span")
    });
    let waited = Instant::now();
    while traced::stats().exported < 3 && waited.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let stats = traced::stats();
    println!("while running, after {:?}: {stats:?}", waited.elapsed());
    assert_eq!((stats.exported, stats.dropped()), (3, 0), "{stats:?}");
    assert!(front.answered() >= 1);

    // A second trace is still on its way when the shutdown starts: the
    // shutdown gives up on it at the budget rather than waiting 6 s.
    tracer.in_span("text-to-image", |_| {});
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let report = guard.shutdown();
    let took = started.elapsed();
    println!("shutdown against a 6 s collector took {took:?} with a budget of {budget:?}: {report}");
    assert!(took < budget + SLACK, "{took:?}");
    assert_eq!(report.stats.exported, 3, "{report}");
    assert_eq!(report.stats.dropped(), 1, "{report}");

    let spans = receivers.phoenix_spans(&project, &trace_id, 3);
    assert_eq!(spans.len(), 3, "{spans:?}");
}
