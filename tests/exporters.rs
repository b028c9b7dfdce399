//! Spans exported over OTLP http/protobuf, http/json and gRPC arrive in rotel
//! and in Phoenix with the right service name, resource attributes and
//! parent/child links, read back through Phoenix's REST API.

use opentelemetry::KeyValue;
use opentelemetry::trace::{SpanKind, TraceContextExt as _, Tracer as _};
use traced::{Config, ExporterKind, Protocol};
use traced_tests::{
    FlakyFront, PartialGrpcReceiver, PartialReceiver, Receivers, by_name, one_provider_at_a_time, unique,
};

// The root is an SDK span, its children are traced's own (sync fns): over
// http/protobuf and gRPC they travel in requests traced encodes itself, the
// root through the OTLP library, so each test covers both.
#[traced::span(args)]
fn inference(num_inference_steps: i64) {
    std::hint::black_box(num_inference_steps);
    unet_step();
}

#[traced::span(name = "unet-step")]
fn unet_step() {}

/// Sends root > inference > unet-step and returns (project, trace id).
fn send_trace(endpoint: &str, protocol: Protocol, gzip: bool) -> (String, String) {
    send_trace_with(Config::default(), endpoint, protocol, gzip)
}

fn send_trace_with(config: Config, endpoint: &str, protocol: Protocol, gzip: bool) -> (String, String) {
    let (project, config) = in_new_project(config, endpoint, protocol, gzip);
    let guard = traced::init(config);
    let tracer = opentelemetry::global::tracer("exporters-test");
    let trace_id = tracer.in_span("text-to-image", |cx| {
        cx.span().set_attribute(KeyValue::new("model.name", "tiny-unet"));
        inference(4);
        traced::current_trace_id().expect("a current span")
    });
    let report = guard.shutdown();
    assert_eq!(report.stats.exported, 3, "{report}");
    assert_eq!(report.stats.dropped(), 0, "{report}");
    (project, trace_id)
}

/// `config` exporting to `endpoint` under a project of its own, and the
/// project's name.
fn in_new_project(config: Config, endpoint: &str, protocol: Protocol, gzip: bool) -> (String, Config) {
    // Phoenix files spans under the project named by this resource attribute,
    // so finding them there proves resource attributes arrived.
    let project = unique("traced-export");
    let mut env = vec![(
        "OTEL_RESOURCE_ATTRIBUTES",
        format!("openinference.project.name={project},deployment.environment=ci%20test"),
    )];
    if gzip {
        env.push(("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip".to_string()));
    }
    let config = config
        .service_name(&project)
        .otlp_endpoint(endpoint)
        .otlp_protocol(protocol)
        .exporters([ExporterKind::Otlp])
        .with_env_from(move |name| env.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone()));
    assert!(config.get_warnings().is_empty(), "{:?}", config.get_warnings());
    (project, config)
}

fn assert_arrived_in_phoenix(receivers: &Receivers, project: &str, trace_id: &str) {
    assert_tree(&receivers.phoenix_spans(project, trace_id, 3), project, trace_id);
}

fn assert_tree(spans: &[traced_tests::PhoenixSpan], project: &str, trace_id: &str) {
    assert_eq!(spans.len(), 3, "trace {trace_id} in project {project}: {spans:?}");
    let root = by_name(spans, "text-to-image");
    let inference = by_name(spans, "inference");
    let step = by_name(spans, "unet-step");
    assert_eq!(root.parent_id, None);
    assert_eq!(inference.parent_id.as_deref(), Some(root.span_id.as_str()));
    assert_eq!(step.parent_id.as_deref(), Some(inference.span_id.as_str()));
    assert_eq!(root.attributes["model.name"], "tiny-unet", "{:?}", root.attributes);
    assert_eq!(inference.attributes["num_inference_steps"], 4);
}

fn assert_arrived_in_rotel(receivers: &Receivers, project: &str, trace_id: &str) {
    let resource = receivers.rotel_resource(trace_id).unwrap_or_else(|| panic!("trace {trace_id} not in rotel's log"));
    let get = |key: &str| resource.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    assert_eq!(get("service.name"), Some(project), "{resource:?}");
    assert_eq!(get("deployment.environment"), Some("ci test"), "{resource:?}");
    assert_eq!(get("telemetry.sdk.language"), Some("rust"), "{resource:?}");
}

#[test]
fn http_protobuf_to_phoenix() {
    let _turn = one_provider_at_a_time();
    let receivers = Receivers::from_env();
    let (project, trace_id) = send_trace(&receivers.phoenix, Protocol::HttpProtobuf, false);
    assert_arrived_in_phoenix(&receivers, &project, &trace_id);
}

#[test]
fn grpc_to_phoenix() {
    let _turn = one_provider_at_a_time();
    let receivers = Receivers::from_env();
    let (project, trace_id) = send_trace(&receivers.phoenix_grpc, Protocol::Grpc, false);
    assert_arrived_in_phoenix(&receivers, &project, &trace_id);
}

#[test]
fn http_protobuf_through_rotel() {
    let _turn = one_provider_at_a_time();
    let receivers = Receivers::from_env();
    let (project, trace_id) = send_trace(&receivers.rotel_http, Protocol::HttpProtobuf, false);
    assert_arrived_in_rotel(&receivers, &project, &trace_id);
    assert_arrived_in_phoenix(&receivers, &project, &trace_id);
}

#[test]
fn http_json_through_rotel() {
    let _turn = one_provider_at_a_time();
    let receivers = Receivers::from_env();
    let (project, trace_id) = send_trace(&receivers.rotel_http, Protocol::HttpJson, false);
    assert_arrived_in_rotel(&receivers, &project, &trace_id);
    assert_arrived_in_phoenix(&receivers, &project, &trace_id);
}

#[test]
fn nan_and_infinite_values_arrive_as_text_over_http_json() {
    let _turn = one_provider_at_a_time();
    let receivers = Receivers::from_env();
    let (project, config) = in_new_project(Config::default(), &receivers.rotel_http, Protocol::HttpJson, false);
    let guard = traced::init(config);
    let trace_id = opentelemetry::global::tracer("exporters-test").in_span("evaluate", |cx| {
        cx.span().set_attribute(KeyValue::new("eval.loss", f64::NAN));
        cx.span().set_attribute(KeyValue::new("eval.ceiling", f64::INFINITY));
        cx.span().set_attribute(KeyValue::new("eval.score", 0.25));
        traced::current_trace_id().expect("a current span")
    });
    let report = guard.shutdown();
    assert_eq!((report.stats.exported, report.stats.dropped()), (1, 0), "{report}");
    // The library alone writes them as `null`, and rotel refuses the whole
    // request: the span would not arrive at all.
    let spans = receivers.phoenix_spans(&project, &trace_id, 1);
    let attributes = &by_name(&spans, "evaluate").attributes;
    assert_eq!(attributes["eval.loss"], "NaN", "{attributes:?}");
    assert_eq!(attributes["eval.ceiling"], "Infinity", "{attributes:?}");
    assert_eq!(attributes["eval.score"], 0.25, "{attributes:?}");
}

#[test]
fn grpc_through_rotel() {
    let _turn = one_provider_at_a_time();
    let receivers = Receivers::from_env();
    let (project, trace_id) = send_trace(&receivers.rotel_grpc, Protocol::Grpc, false);
    assert_arrived_in_rotel(&receivers, &project, &trace_id);
    assert_arrived_in_phoenix(&receivers, &project, &trace_id);
}

#[test]
fn one_grpc_connection_carries_the_librarys_requests_and_traceds_own() {
    let _turn = one_provider_at_a_time();
    let receivers = Receivers::from_env();
    let front = FlakyFront::start(&receivers.rotel_grpc, 0, None);
    // The root goes through the library's exporter, its children in a
    // request traced encodes: one channel, so one connection, carries both.
    let (project, trace_id) = send_trace_with(Config::default().metrics(false), &front.url, Protocol::Grpc, false);
    assert_arrived_in_rotel(&receivers, &project, &trace_id);
    assert_eq!(front.relayed(), 1, "the exporter opened more than one connection");
}

#[test]
fn gzip_compressed_bodies_arrive() {
    let _turn = one_provider_at_a_time();
    let receivers = Receivers::from_env();
    let (project, trace_id) = send_trace(&receivers.rotel_http, Protocol::HttpProtobuf, true);
    assert_arrived_in_rotel(&receivers, &project, &trace_id);
    let (project, trace_id) = send_trace(&receivers.phoenix_grpc, Protocol::Grpc, true);
    assert_arrived_in_phoenix(&receivers, &project, &trace_id);
}

#[test]
fn server_kind_and_error_status_arrive() {
    let _turn = one_provider_at_a_time();
    let receivers = Receivers::from_env();
    let project = unique("traced-status");
    let config = Config::default()
        .service_name(&project)
        .resource_attribute("openinference.project.name", &project)
        .otlp_endpoint(&receivers.phoenix)
        .exporters([ExporterKind::Otlp])
        .with_env_from(|_| None);
    let guard = traced::init(config);
    let tracer = opentelemetry::global::tracer("exporters-test");
    let span = tracer.span_builder("failing-request").with_kind(SpanKind::Server).start(&tracer);
    let cx = opentelemetry::Context::current_with_span(span);
    cx.span().add_event("exception", vec![KeyValue::new("exception.message", "out of memory")]);
    cx.span().set_status(opentelemetry::trace::Status::error("out of memory"));
    let trace_id = cx.span().span_context().trace_id().to_string();
    cx.span().end();
    drop(cx);
    drop(guard);
    let spans = receivers.phoenix_spans(&project, &trace_id, 1);
    assert_eq!(spans.len(), 1, "{spans:?}");
    assert_eq!(spans[0].status_code, "ERROR");
    assert_eq!(spans[0].events.len(), 1);
}

#[test]
fn https_to_a_collector_behind_a_private_ca() {
    let _turn = one_provider_at_a_time();
    let receivers = Receivers::from_env();
    let config = Config::default().otlp_certificate(&receivers.tls_ca);
    let (project, trace_id) = send_trace_with(config, &receivers.phoenix_tls, Protocol::HttpProtobuf, false);
    assert_tree(&receivers.phoenix_tls_spans(&project, &trace_id, 3), &project, &trace_id);
}

#[test]
fn grpc_with_tls_to_a_collector_behind_a_private_ca() {
    let _turn = one_provider_at_a_time();
    let receivers = Receivers::from_env();
    let config = Config::default().otlp_certificate(&receivers.tls_ca);
    let (project, trace_id) = send_trace_with(config, &receivers.phoenix_tls_grpc, Protocol::Grpc, true);
    assert_tree(&receivers.phoenix_tls_spans(&project, &trace_id, 3), &project, &trace_id);
}

#[test]
fn mutual_tls_over_http_and_grpc_to_a_collector_that_requires_a_client_certificate() {
    let _turn = one_provider_at_a_time();
    let receivers = Receivers::from_env();
    for (endpoint, protocol) in
        [(&receivers.phoenix_mtls, Protocol::HttpProtobuf), (&receivers.phoenix_mtls_grpc, Protocol::Grpc)]
    {
        let config = Config::default()
            .otlp_certificate(&receivers.tls_ca)
            .otlp_client_identity(&receivers.tls_client_cert, &receivers.tls_client_key);
        let (project, trace_id) = send_trace_with(config, endpoint, protocol, false);
        assert_tree(&receivers.phoenix_mtls_spans(&project, &trace_id, 3), &project, &trace_id);
    }
}

#[test]
fn without_a_client_certificate_the_mutual_tls_collector_takes_nothing() {
    let _turn = one_provider_at_a_time();
    let receivers = Receivers::from_env();
    for (endpoint, protocol) in
        [(&receivers.phoenix_mtls, Protocol::HttpProtobuf), (&receivers.phoenix_mtls_grpc, Protocol::Grpc)]
    {
        let config = Config::default()
            .otlp_certificate(&receivers.tls_ca)
            .otlp_endpoint(endpoint.as_str())
            .otlp_protocol(protocol)
            .exporters([ExporterKind::Otlp])
            .flush_budget(std::time::Duration::from_millis(1500))
            .with_env_from(|_| None);
        let guard = traced::init(config);
        // One span through the library, one in a request traced encodes.
        opentelemetry::global::tracer("exporters-test").in_span("text-to-image", |_| unet_step());
        let report = guard.shutdown();
        assert_eq!((report.stats.exported, report.stats.dropped()), (0, 2), "{}: {report}", protocol.as_str());
    }
}

#[test]
fn a_collector_that_asks_for_a_retry_gets_the_batch_again() {
    let _turn = one_provider_at_a_time();
    let receivers = Receivers::from_env();
    // Refused once without a hint: sent again after the backoff.
    let front = FlakyFront::start(&receivers.phoenix, 1, None);
    let (project, trace_id) = send_trace(&front.url, Protocol::HttpProtobuf, false);
    assert_eq!(front.refused(), 1);
    assert_arrived_in_phoenix(&receivers, &project, &trace_id);

    // Refused twice, each time asked to wait a second: waited as asked.
    let front = FlakyFront::start(&receivers.phoenix, 2, Some(1));
    let started = std::time::Instant::now();
    let (project, trace_id) = send_trace(&front.url, Protocol::HttpProtobuf, false);
    println!("two refusals, the second with Retry-After: 1, delivered in {:?}", started.elapsed());
    assert_eq!(front.refused(), 2);
    assert!(started.elapsed() >= std::time::Duration::from_secs(2), "waited as asked");
    assert_arrived_in_phoenix(&receivers, &project, &trace_id);

    // The refusals above met the request traced encoded (its own spans go
    // first); a trace of SDK spans alone is retried by the OTLP library.
    let front = FlakyFront::start(&receivers.phoenix, 1, None);
    let project = unique("traced-retry-sdk");
    let config = Config::default()
        .service_name(&project)
        .otlp_endpoint(front.url.as_str())
        .otlp_protocol(Protocol::HttpProtobuf)
        .exporters([ExporterKind::Otlp])
        .resource_attribute("openinference.project.name", &project)
        .with_env_from(|_| None);
    let guard = traced::init(config);
    let trace_id = opentelemetry::global::tracer("exporters-test")
        .in_span("sdk-only", |_| traced::current_trace_id().expect("a current span"));
    let report = guard.shutdown();
    assert_eq!((report.stats.exported, report.stats.dropped()), (1, 0), "{report}");
    assert_eq!(front.refused(), 1);
    assert_eq!(receivers.phoenix_spans(&project, &trace_id, 1).len(), 1);
}

/// Which spans carry the images, and the transport they take.
#[derive(Clone, Copy, Debug)]
enum Large {
    /// SDK spans over gRPC (4 MiB a request), through the OTLP library.
    SdkOverGrpc,
    /// traced's own spans over http/protobuf, requests set to 1 MiB (lighter
    /// on Phoenix than HTTP's default 8 MiB), in requests traced encodes; one
    /// too large for any request takes the library's path, where it is cut.
    TracedOverHttp,
}

impl Large {
    fn request_limit(self) -> usize {
        match self {
            Large::SdkOverGrpc => 4 * 1024 * 1024,
            Large::TracedOverHttp => 1024 * 1024,
        }
    }
}

#[traced::span(name = "thumbnail")]
fn thumbnail(index: i64, image: &str) {
    traced::set_attribute("image.base64", image.to_string());
    traced::set_attribute("image.index", index);
}

/// Exports a root and `children` children, each with a `bytes`-long
/// `image.base64` attribute, to Phoenix; returns (project, trace id).
fn send_large_spans(receivers: &Receivers, children: usize, bytes: usize, large: Large) -> (String, String) {
    let project = unique("traced-large");
    let attributes = format!("openinference.project.name={project}");
    let config = Config::default()
        .service_name(&project)
        .exporters([ExporterKind::Otlp])
        .with_env_from(move |name| (name == "OTEL_RESOURCE_ATTRIBUTES").then(|| attributes.clone()));
    let config = match large {
        Large::SdkOverGrpc => config.otlp_endpoint(&receivers.phoenix_grpc).otlp_protocol(Protocol::Grpc),
        Large::TracedOverHttp => config
            .otlp_endpoint(&receivers.phoenix)
            .otlp_protocol(Protocol::HttpProtobuf)
            .otlp_max_request_bytes(large.request_limit()),
    };
    assert_eq!(config.otlp_request_limit(), large.request_limit());
    let guard = traced::init(config);
    let tracer = opentelemetry::global::tracer("exporters-test");
    let image = "A".repeat(bytes);
    let trace_id = tracer.in_span("batch", |_| {
        for index in 0..children {
            match large {
                Large::SdkOverGrpc => tracer.in_span("thumbnail", |cx| {
                    cx.span().set_attribute(KeyValue::new("image.base64", image.clone()));
                    cx.span().set_attribute(KeyValue::new("image.index", index as i64));
                }),
                Large::TracedOverHttp => thumbnail(index as i64, &image),
            }
        }
        traced::current_trace_id().expect("a current span")
    });
    let report = guard.shutdown();
    assert_eq!(report.stats.exported, children as u64 + 1, "{large:?}: {report}");
    assert_eq!(report.stats.dropped(), 0, "{large:?}: {report}");
    (project, trace_id)
}

#[test]
fn a_batch_larger_than_a_request_arrives_whole_in_several() {
    let _turn = one_provider_at_a_time();
    let receivers = Receivers::from_env();
    // 300 spans of 100 KB (30 MB) over gRPC's 4 MiB; 30 (3 MB) over 1 MiB.
    for (large, children) in [(Large::SdkOverGrpc, 300), (Large::TracedOverHttp, 30)] {
        let (project, trace_id) = send_large_spans(&receivers, children, 100_000, large);
        let spans = receivers.phoenix_spans(&project, &trace_id, children + 1);
        assert_eq!(spans.len(), children + 1, "{large:?}");
        let thumbnails: Vec<_> = spans.iter().filter(|span| span.name == "thumbnail").collect();
        assert!(
            thumbnails.iter().all(|span| span.attributes["image.base64"].as_str().map(str::len) == Some(100_000)),
            "{large:?}"
        );
        let mut indexes: Vec<i64> =
            thumbnails.iter().filter_map(|span| span.attributes["image.index"].as_i64()).collect();
        indexes.sort_unstable();
        assert_eq!(indexes, (0..children as i64).collect::<Vec<_>>(), "{large:?}");
    }
}

#[test]
fn a_span_too_large_for_any_request_arrives_cut_with_a_marker() {
    let _turn = one_provider_at_a_time();
    let receivers = Receivers::from_env();
    for (large, bytes) in [(Large::SdkOverGrpc, 6_000_000), (Large::TracedOverHttp, 2_000_000)] {
        let limit = large.request_limit();
        let (project, trace_id) = send_large_spans(&receivers, 1, bytes, large);
        let spans = receivers.phoenix_spans(&project, &trace_id, 2);
        let image =
            by_name(&spans, "thumbnail").attributes["image.base64"].as_str().expect("the image attribute").to_string();
        let tail = &image[image.len().saturating_sub(80)..];
        assert!(image.len() < limit && image.starts_with("AAAA"), "{large:?}: {} bytes", image.len());
        let kept = format!("of {bytes} bytes kept]");
        assert!(tail.contains("[truncated by traced:") && tail.ends_with(&kept), "{large:?}: {tail}");
    }
}

/// Sends `trace` over HTTP and over gRPC to receivers that reject 2 spans
/// of every request (partial success); returns each protocol's report.
fn reports_from_partial_receivers(trace: impl Fn()) -> Vec<(&'static str, traced::ShutdownReport)> {
    let http = PartialReceiver::start(2, "spans older than 24h");
    let grpc = PartialGrpcReceiver::start(2, "spans older than 24h");
    [(&http.url, Protocol::HttpProtobuf), (&grpc.url, Protocol::Grpc)]
        .into_iter()
        .map(|(url, protocol)| {
            let config = Config::default()
                .otlp_endpoint(url.as_str())
                .otlp_protocol(protocol)
                .exporters([ExporterKind::Otlp])
                .with_env_from(|_| None);
            let guard = traced::init(config);
            trace();
            (protocol.as_str(), guard.shutdown())
        })
        .collect()
}

#[test]
fn spans_a_receiver_rejects_are_counted_as_dropped_and_the_rest_as_exported() {
    let _turn = one_provider_at_a_time();
    let reports = reports_from_partial_receivers(|| {
        let tracer = opentelemetry::global::tracer("exporters-test");
        tracer.in_span("text-to-image", |_| {
            tracer.in_span("inference", |_| {});
            tracer.in_span("upload", |_| {});
        });
    });
    for (protocol, report) in reports {
        assert_eq!((report.stats.exported, report.stats.dropped_rejected), (1, 2), "{protocol}: {report}");
        assert_eq!(report.stats.dropped(), 2, "{protocol}: {report}");
        assert!(report.complete, "{protocol}: {report}");
        assert!(report.to_string().contains("rejected by the receiver 2"), "{protocol}: {report}");
    }

    // traced's own spans, in a request traced encodes: 3 spans, 2 rejected;
    // then the SDK root alone, in the library's request: 1 span, 1 rejected.
    let reports = reports_from_partial_receivers(|| {
        opentelemetry::global::tracer("exporters-test").in_span("text-to-image", |_| {
            inference(4);
            unet_step();
        });
    });
    for (protocol, report) in reports {
        assert_eq!((report.stats.exported, report.stats.dropped_rejected), (1, 3), "{protocol}: {report}");
    }
}
