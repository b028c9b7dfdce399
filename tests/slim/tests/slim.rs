//! `traced` without its default features: no server, no gRPC, no JSON. It
//! still exports over OTLP/HTTP (protobuf) to a real receiver and to the
//! console, answers a Prometheus scrape, and refuses a protocol it was built
//! without by naming the feature that brings it.

use traced::otlp::OtlpExporter;
use traced::{Config, ExporterKind, Protocol, span};

#[span]
fn encode(prompt: &str) -> usize {
    denoise(prompt.len())
}

#[span]
fn denoise(steps: usize) -> usize {
    steps * 2
}

/// The README's test command starts rotel and names its OTLP/HTTP port.
fn rotel_http() -> String {
    std::env::var("TRACED_ROTEL_HTTP").expect(
        "TRACED_ROTEL_HTTP is not set: this test exports to a real receiver. Run the README's test command \
         (scripts/test.sh), which starts one",
    )
}

fn only(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
    move |name| vars.iter().find(|(key, _)| *key == name).map(|(_, value)| (*value).to_string())
}

#[test]
fn spans_reach_a_real_receiver_over_http_protobuf_and_the_console() {
    let config = Config::default()
        .service_name("slim")
        .exporters([ExporterKind::Otlp, ExporterKind::Console])
        .otlp_endpoint(rotel_http());
    assert_eq!(config.get_otlp().protocol.value, Protocol::HttpProtobuf);
    let guard = traced::init(config);
    assert_eq!(encode("an astronaut"), 24);
    let report = guard.shutdown();
    assert!(report.complete, "{report:?}");
    assert_eq!(report.exporters.len(), 2, "{report:?}");
    for (exporter, stats) in &report.exporters {
        assert_eq!(stats.exported, 2, "{exporter}: {report:?}");
        assert_eq!(stats.dropped(), 0, "{exporter}: {report:?}");
    }
}

#[test]
fn a_protocol_left_out_of_the_build_is_refused_from_the_environment() {
    for (vars, feature) in [
        (&[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")][..], "`grpc` feature"),
        (&[("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json")][..], "`http-json` feature"),
    ] {
        let config = Config::default().exporters([ExporterKind::Otlp]).with_env_from(only(vars));
        assert_eq!(config.get_otlp().protocol.value, Protocol::HttpProtobuf, "the protocol stays one this build has");
        assert_eq!(config.otlp_traces_url().as_deref(), Some("http://localhost:4318/v1/traces"));
        let warning = config.get_warnings().iter().map(ToString::to_string).collect::<Vec<_>>().join("\n");
        assert!(warning.contains(feature), "{warning}");
        assert!(warning.contains(vars[0].0), "the warning names the variable: {warning}");
    }
}

#[test]
fn a_protocol_left_out_of_the_build_is_an_error_from_code() {
    for (protocol, feature) in [(Protocol::Grpc, "`grpc` feature"), (Protocol::HttpJson, "`http-json` feature")] {
        let config = Config::default().otlp_endpoint("http://127.0.0.1:4317").otlp_protocol(protocol);
        let error = OtlpExporter::from_config(&config).expect_err("this build has no such transport");
        assert!(error.contains(feature), "{error}");
    }
}

#[test]
fn the_scrape_answers_without_the_server() {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::ACCEPT, http::HeaderValue::from_static("application/openmetrics-text"));
    let response = runtime.block_on(traced::prometheus_metrics(headers));
    assert_eq!(response.status(), http::StatusCode::OK);
    let content_type = response.headers()[http::header::CONTENT_TYPE].to_str().unwrap();
    assert!(content_type.starts_with("application/openmetrics-text"), "{content_type}");
    assert!(response.body().ends_with("# EOF\n"), "{}", response.body());
}
