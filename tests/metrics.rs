//! Request metrics read back from a real Prometheus scraping a served app:
//! at a 1 % sample rate every request is counted, failures are counted by
//! `error.type`, a histogram quantile of a known latency mix falls in the
//! bucket of the truth, every exemplar Prometheus stored names a trace that
//! Phoenix has, and the app's own counter arrives as `probe_items_total`.

use traced_tests::{HistogramPoint, MetricsReceiver, Prometheus, Receivers, Service, unique, workspace_binary};

#[test]
fn prometheus_counts_every_request_at_one_percent_sampling_and_its_exemplars_are_in_phoenix() {
    let receivers = Receivers::from_env();
    let project = unique("traced-metrics");
    let resource = format!("openinference.project.name={project}");
    let mut worker = Service::start(
        &workspace_binary("test-worker"),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &receivers.phoenix),
            ("OTEL_RESOURCE_ATTRIBUTES", &resource),
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.01"),
            ("OTEL_BSP_SCHEDULE_DELAY", "200"),
        ],
    );
    let prometheus = Prometheus::scraping(&worker.url);
    let prompt = serde_json::json!({ "prompt": "a red circle" });
    for _ in 0..1000 {
        assert_eq!(worker.post("/", &prompt, &[]).0, 200);
    }
    // Callers whose traces are sampled: their requests are the exemplars
    // Phoenix is sure to have.
    let salt = u128::from(std::process::id()) << 64;
    for caller in 1..=20u128 {
        let traceparent = format!("00-{:032x}-{:016x}-01", salt | caller, caller);
        assert_eq!(worker.post("/", &prompt, &[("traceparent", &traceparent)]).0, 200);
    }
    // Streams that fail at their second item: answered 200, counted failed.
    for _ in 0..5 {
        let (status, _, _) = worker.post("/stream", &serde_json::json!({ "count": 3, "fail_at": 1 }), &[]);
        assert_eq!(status, 200);
    }

    // A known latency mix: 20 answers of about 30 ms, 10 of about 300 ms.
    for pause_ms in std::iter::repeat_n(30, 20).chain(std::iter::repeat_n(300, 10)) {
        let (status, _, _) = worker.post("/stream", &serde_json::json!({ "count": 1, "pause_ms": pause_ms }), &[]);
        assert_eq!(status, 200);
    }

    let counted = prometheus.wait_for(r#"sum(http_server_request_duration_seconds_count{http_route="/"})"#, 1020.0);
    assert_eq!(counted, Some(1020.0), "every request, sampled or not\n{}", prometheus.log());
    let failed = r#"sum(http_server_request_duration_seconds_count{http_route="/stream",error_type="_OTHER"})"#;
    assert_eq!(prometheus.wait_for(failed, 5.0), Some(5.0), "failed streams by error.type");
    let succeeded = r#"sum(http_server_request_duration_seconds_count{http_route="/",error_type!=""})"#;
    assert_eq!(prometheus.value(succeeded), None, "no error.type on a success");

    let mix = r#"http_server_request_duration_seconds_count{http_route="/stream",error_type=""}"#;
    assert_eq!(prometheus.wait_for(&format!("sum({mix})"), 30.0), Some(30.0));
    let quantile = |q: f64| {
        let buckets = r#"http_server_request_duration_seconds_bucket{http_route="/stream",error_type=""}"#;
        prometheus.value(&format!("histogram_quantile({q}, sum by (le) ({buckets}))")).expect("a quantile")
    };
    let (median, p90) = (quantile(0.5), quantile(0.9));
    assert!((0.025..=0.05).contains(&median), "the median of the mix is in the 30 ms bucket: {median}");
    assert!((0.25..=0.5).contains(&p90), "the 90th percentile in the 300 ms bucket: {p90}");

    let own = r#"sum(probe_items_total{kind="image"})"#;
    assert_eq!(prometheus.wait_for(own, 1020.0), Some(1020.0), "the app's own counter, scraped beside them");

    let exemplars = prometheus.exemplar_traces(r#"http_server_request_duration_seconds_bucket{http_route="/"}"#);
    assert!(!exemplars.is_empty(), "Prometheus stored exemplars from the OpenMetrics scrape");
    assert_eq!(worker.terminate().0, Some(0), "{}", worker.stderr());
    for trace in &exemplars {
        let spans = receivers.phoenix_spans(&project, trace, 1);
        assert!(!spans.is_empty(), "the exemplar's trace {trace} is in Phoenix");
    }
}

#[test]
fn metrics_are_pushed_over_otlp_with_exemplars_and_the_apps_own_counter() {
    let receiver = MetricsReceiver::start();
    let mut worker = Service::start(
        &workspace_binary("test-worker"),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.url),
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.01"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "200"),
        ],
    );
    let prompt = serde_json::json!({ "prompt": "a red circle" });
    for _ in 0..100 {
        assert_eq!(worker.post("/", &prompt, &[]).0, 200);
    }
    let sampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    assert_eq!(worker.post("/", &prompt, &[("traceparent", sampled)]).0, 200);
    let counted = |points: &[HistogramPoint]| {
        points.iter().filter(|p| p.attributes.contains(&"http.route=/".to_string())).map(|p| p.count).sum::<u64>()
    };
    let points = receiver.histogram("http.server.request.duration", |points| counted(points) == 101);
    assert_eq!(counted(&points), 101, "every request, at 1 % sampling: {points:?}");
    let route = points.iter().find(|p| p.attributes.contains(&"http.route=/".to_string())).unwrap();
    for expected in ["http.request.method=POST", "http.response.status_code=200"] {
        assert!(route.attributes.contains(&expected.to_string()), "{:?}", route.attributes);
    }
    assert!(
        route.exemplar_traces.contains(&"4bf92f3577b34da6a3ce929d0e0e4736".to_string()),
        "the sampled caller's trace is an exemplar: {route:?}"
    );
    assert_eq!(receiver.sum("probe.items"), Some(101.0), "the app's own counter");
    // The last push at shutdown carries what came after the previous one.
    assert_eq!(worker.post("/", &prompt, &[]).0, 200);
    assert_eq!(worker.terminate().0, Some(0), "{}", worker.stderr());
    let points = receiver.histogram("http.server.request.duration", |points| counted(points) == 102);
    assert_eq!(counted(&points), 102, "pushed once more at shutdown");
    assert!(!worker.stderr().contains("metrics not sent"), "{}", worker.stderr());
}

/// Two workers pushing metrics every 100 ms for a second, one to Phoenix
/// (which takes none), one to rotel (which does), over `protocol`; `wire`
/// adds variables.
fn said_once_to_phoenix_and_taken_by_rotel(protocol: &str, wire: &[(&str, &str)], phoenix: &str, rotel: &str) {
    let start = |endpoint: &str| {
        let mut env = vec![
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
            ("OTEL_METRIC_EXPORT_INTERVAL", "100"),
        ];
        env.extend_from_slice(wire);
        Service::start(&workspace_binary("test-worker"), &env)
    };
    let (mut to_phoenix, mut to_rotel) = (start(phoenix), start(rotel));
    let prompt = serde_json::json!({ "prompt": "a red circle" });
    for _ in 0..5 {
        assert_eq!(to_phoenix.post("/", &prompt, &[]).0, 200);
        assert_eq!(to_rotel.post("/", &prompt, &[]).0, 200);
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(to_phoenix.terminate().0, Some(0));
    assert_eq!(to_rotel.terminate().0, Some(0));
    let said = to_phoenix.stderr();
    assert_eq!(said.matches("takes no metrics").count(), 1, "{protocol}: said once, over ten intervals:\n{said}");
    assert!(!said.contains("metrics not sent"), "{said}");
    let said = to_rotel.stderr();
    assert!(!said.contains("takes no metrics") && !said.contains("metrics not sent"), "rotel took them:\n{said}");
}

#[test]
fn a_trace_backend_that_takes_no_metrics_is_said_once_and_rotel_takes_them() {
    let receivers = Receivers::from_env();
    said_once_to_phoenix_and_taken_by_rotel("http/protobuf", &[], &receivers.phoenix, &receivers.rotel_http);
}

#[test]
fn over_http_json_too_a_backend_without_metrics_is_said_once_and_rotel_takes_them() {
    let receivers = Receivers::from_env();
    let json = [("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/json")];
    said_once_to_phoenix_and_taken_by_rotel("http/protobuf", &json, &receivers.phoenix, &receivers.rotel_http);
}

#[test]
fn metrics_take_their_own_protocol_compression_headers_and_endpoint() {
    let receiver = MetricsReceiver::start();
    let traces_only = MetricsReceiver::start();
    let traces_url = format!("{}/v1/traces", traces_only.url);
    let mut worker = Service::start(
        &workspace_binary("test-worker"),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.url),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &traces_url),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-shared=both"),
            ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-traces-only=1"),
            ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/json"),
            ("OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "gzip"),
            ("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "3000"),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "200"),
        ],
    );
    let prompt = serde_json::json!({ "prompt": "a red circle" });
    let sampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    for _ in 0..4 {
        assert_eq!(worker.post("/", &prompt, &[]).0, 200);
    }
    assert_eq!(worker.post("/", &prompt, &[("traceparent", sampled)]).0, 200);
    let counted = |points: &[HistogramPoint]| {
        points.iter().filter(|p| p.attributes.contains(&"http.route=/".to_string())).map(|p| p.count).sum::<u64>()
    };
    let points = receiver.histogram("http.server.request.duration", |points| counted(points) == 5);
    assert_eq!(counted(&points), 5, "{points:?}\n{}", worker.stderr());
    assert!(
        points.iter().any(|p| p.exemplar_traces.contains(&"4bf92f3577b34da6a3ce929d0e0e4736".to_string())),
        "the exemplar's trace id survives OTLP JSON's hex: {points:?}"
    );
    assert_eq!(receiver.sum("probe.items"), Some(5.0));
    assert_eq!(worker.terminate().0, Some(0), "{}", worker.stderr());

    let metrics_heads: Vec<String> =
        receiver.heads().into_iter().filter(|head| head.starts_with("post /v1/metrics")).collect();
    assert!(!metrics_heads.is_empty());
    for head in &metrics_heads {
        assert!(head.contains("content-type: application/json"), "{head}");
        assert!(head.contains("content-encoding: gzip"), "{head}");
        assert!(head.contains("x-shared: both"), "the generic headers: {head}");
        assert!(!head.contains("x-traces-only"), "not the traces' own: {head}");
    }
    assert!(!receiver.heads().iter().any(|head| head.starts_with("post /v1/traces")), "traces go to their own URL");
    let trace_heads = traces_only.heads();
    assert!(trace_heads.iter().any(|head| head.starts_with("post /v1/traces")), "{trace_heads:?}");
    for head in &trace_heads {
        assert!(head.contains("x-traces-only: 1") && !head.contains("x-shared"), "the traces' own headers: {head}");
        assert!(head.contains("content-type: application/x-protobuf"), "{head}");
    }
}

#[test]
fn metrics_go_over_grpc_when_the_traces_do() {
    let receiver = MetricsReceiver::start_grpc();
    let mut worker = Service::start(
        &workspace_binary("test-worker"),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.url),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "200"),
        ],
    );
    let prompt = serde_json::json!({ "prompt": "a red circle" });
    for _ in 0..10 {
        assert_eq!(worker.post("/", &prompt, &[]).0, 200);
    }
    let counted = |points: &[HistogramPoint]| {
        points.iter().filter(|p| p.attributes.contains(&"http.route=/".to_string())).map(|p| p.count).sum::<u64>()
    };
    let points = receiver.histogram("http.server.request.duration", |points| counted(points) == 10);
    assert_eq!(counted(&points), 10, "{points:?}\n{}", worker.stderr());
    assert_eq!(receiver.sum("probe.items"), Some(10.0));
    assert_eq!(worker.terminate().0, Some(0));
    assert!(!worker.stderr().contains("metrics not sent"), "{}", worker.stderr());
}

#[test]
fn over_grpc_too_a_backend_without_metrics_is_said_once_and_rotel_takes_them() {
    let receivers = Receivers::from_env();
    said_once_to_phoenix_and_taken_by_rotel("grpc", &[], &receivers.phoenix_grpc, &receivers.rotel_grpc);
}

#[test]
fn with_delta_preferred_each_push_carries_what_came_since_the_last() {
    use opentelemetry_proto::tonic::metrics::v1::{AggregationTemporality, metric, number_data_point};

    let receiver = MetricsReceiver::start();
    let mut worker = Service::start(
        &workspace_binary("test-worker"),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.url),
            ("OTEL_METRIC_EXPORT_INTERVAL", "300"),
            ("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "delta"),
        ],
    );
    let prompt = serde_json::json!({ "prompt": "a red circle" });
    for _ in 0..10 {
        assert_eq!(worker.post("/", &prompt, &[]).0, 200);
    }
    std::thread::sleep(std::time::Duration::from_millis(900));
    for _ in 0..5 {
        assert_eq!(worker.post("/", &prompt, &[]).0, 200);
    }
    assert_eq!(worker.terminate().0, Some(0), "{}", worker.stderr());
    let (mut requests_counted, mut pushes_with_requests, mut items) = (0, 0, 0);
    for request in receiver.requests() {
        let metrics = request.resource_metrics.iter().flat_map(|r| &r.scope_metrics).flat_map(|s| &s.metrics);
        for metric in metrics {
            match (&metric.data, metric.name.as_str()) {
                (Some(metric::Data::Histogram(histogram)), "http.server.request.duration") => {
                    assert_eq!(histogram.aggregation_temporality, AggregationTemporality::Delta as i32);
                    let routed =
                        histogram.data_points.iter().filter(|p| p.attributes.iter().any(|kv| kv.key == "http.route"));
                    let counted: u64 = routed.map(|p| p.count).sum();
                    requests_counted += counted;
                    pushes_with_requests += usize::from(counted > 0);
                }
                (Some(metric::Data::Sum(sum)), "probe.items") => {
                    assert_eq!(sum.aggregation_temporality, AggregationTemporality::Delta as i32);
                    items += sum
                        .data_points
                        .iter()
                        .map(|p| match p.value {
                            Some(number_data_point::Value::AsInt(v)) => v,
                            _ => 0,
                        })
                        .sum::<i64>();
                }
                _ => {}
            }
        }
    }
    assert_eq!(requests_counted, 15, "the deltas add up to every request, each counted once");
    assert!(pushes_with_requests >= 2, "before and after the pause: {pushes_with_requests}");
    assert_eq!(items, 15, "the app's own counter, in deltas too");
}
