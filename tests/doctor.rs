//! `traced-doctor` against Phoenix exits 0 and its trace is found there;
//! against a closed port or a hung collector it exits 1 naming the endpoint
//! and the cause, within the flush budget.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use traced_tests::{HangingCollector, Receivers, closed_port, doctor_binary, unique};

fn doctor(env: &[(&str, &str)]) -> (Output, String) {
    let mut command = Command::new(doctor_binary());
    for (name, _) in std::env::vars() {
        if name.starts_with("OTEL_") || name.starts_with("TRACED_") || name == "ENABLE_TRACING" {
            command.env_remove(name);
        }
    }
    let output = command.envs(env.iter().copied()).output().expect("run traced-doctor");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    println!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    (output, stdout)
}

#[test]
fn delivers_a_test_trace_to_phoenix() {
    let receivers = Receivers::from_env();
    let project = unique("traced-doctor");
    let attributes = format!("openinference.project.name={project}");
    let (output, stdout) = doctor(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &receivers.phoenix),
        ("OTEL_RESOURCE_ATTRIBUTES", &attributes),
        ("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20sup3rsecret"),
    ]);
    assert_eq!(output.status.code(), Some(0));
    assert!(!stdout.contains("sup3rsecret"), "a header value was printed");
    assert!(stdout.contains("otlp.headers") && stdout.contains("authorization=***"), "{stdout}");
    assert!(stdout.contains("[env OTEL_EXPORTER_OTLP_ENDPOINT]"), "{stdout}");
    let trace_id = stdout
        .lines()
        .find_map(|line| line.strip_prefix("ok: trace "))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("an ok line with the trace id");
    let spans = receivers.phoenix_spans(&project, trace_id, 2);
    assert_eq!(spans.len(), 2, "{spans:?}");
}

#[test]
fn a_closed_port_fails_with_the_endpoint_and_the_cause() {
    let endpoint = format!("http://127.0.0.1:{}", closed_port());
    let (output, stdout) = doctor(&[("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)]);
    assert_eq!(output.status.code(), Some(1));
    let failure = stdout.lines().find(|line| line.starts_with("FAILED: ")).expect("a FAILED line");
    assert!(failure.contains(&format!("{endpoint}/v1/traces")), "{failure}");
    assert!(failure.contains("connection refused"), "{failure}");
}

#[test]
fn a_hung_collector_fails_within_the_flush_budget() {
    let collector = HangingCollector::start();
    let started = Instant::now();
    let (output, stdout) =
        doctor(&[("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.url), ("TRACED_FLUSH_BUDGET_MS", "1000")]);
    let took = started.elapsed();
    println!("doctor against a hung collector took {took:?}");
    assert_eq!(output.status.code(), Some(1));
    assert!(took < Duration::from_millis(1500), "{took:?}");
    assert!(stdout.contains("no answer within 1000 ms"), "{stdout}");
}

#[test]
fn a_wrong_path_gets_a_hint() {
    let receivers = Receivers::from_env();
    let doubled = format!("{}/v1/traces", receivers.phoenix);
    let (output, stdout) = doctor(&[("OTEL_EXPORTER_OTLP_ENDPOINT", &doubled)]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout.contains("/v1/traces/v1/traces") && stdout.contains("drop the path"), "{stdout}");
}

#[test]
fn grpc_against_an_http_port_names_the_mismatch() {
    let receivers = Receivers::from_env();
    let (output, stdout) =
        doctor(&[("OTEL_EXPORTER_OTLP_ENDPOINT", &receivers.phoenix), ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout.contains("speaks another protocol"), "{stdout}");
}

#[test]
fn bad_values_are_reported_and_do_not_stop_the_check() {
    let receivers = Receivers::from_env();
    let (output, stdout) = doctor(&[("OTEL_EXPORTER_OTLP_ENDPOINT", &receivers.phoenix), ("OTEL_SAMPLE_RATE", "lots")]);
    assert_eq!(output.status.code(), Some(0));
    assert!(stdout.contains("OTEL_SAMPLE_RATE=\"lots\": expected a number from 0 to 1; using 1"), "{stdout}");
}

#[test]
fn an_untrusted_certificate_points_at_the_ca_setting() {
    let receivers = Receivers::from_env();
    for (protocol, endpoint) in [("http/protobuf", &receivers.phoenix_tls), ("grpc", &receivers.phoenix_tls_grpc)] {
        let (output, stdout) =
            doctor(&[("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint), ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)]);
        assert_eq!(output.status.code(), Some(1), "{protocol}");
        assert!(
            stdout.contains("TLS handshake failed") && stdout.contains("OTEL_EXPORTER_OTLP_CERTIFICATE"),
            "{stdout}"
        );
        let ca = receivers.tls_ca.to_string_lossy().into_owned();
        let (output, stdout) = doctor(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", &ca),
        ]);
        assert_eq!(output.status.code(), Some(0), "{protocol}: {stdout}");
    }
}

#[test]
fn credentials_in_the_endpoint_are_never_printed() {
    let receivers = Receivers::from_env();
    let with_secrets = |base: &str| {
        let (scheme, rest) = base.split_once("://").expect("a URL");
        format!("{scheme}://doctor:hunter2@{rest}/?api_key=hunter3")
    };
    let closed = format!("http://127.0.0.1:{}", closed_port());
    for (variable, endpoint, protocol, delivered) in [
        (
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            format!("{}/v1/traces?api_key=hunter3", receivers.phoenix),
            "http/protobuf",
            true,
        ),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", with_secrets(&closed), "http/protobuf", false),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", with_secrets(&closed), "grpc", false),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", with_secrets(&receivers.phoenix), "grpc", false),
    ] {
        let (output, stdout) = doctor(&[(variable, &endpoint), ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)]);
        let everything = format!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
        assert!(!everything.contains("hunter"), "{endpoint} over {protocol} printed a secret:\n{everything}");
        assert!(everything.contains("api_key=***"), "{everything}");
        assert_eq!(output.status.code(), Some(if delivered { 0 } else { 1 }), "{everything}");
    }
}

#[test]
fn a_receiver_that_requires_mutual_tls_is_named_and_then_reached_with_a_client_certificate() {
    let receivers = Receivers::from_env();
    let ca = receivers.tls_ca.to_string_lossy().into_owned();
    let certificate = receivers.tls_client_cert.to_string_lossy().into_owned();
    let key = receivers.tls_client_key.to_string_lossy().into_owned();
    for (protocol, endpoint) in [("http/protobuf", &receivers.phoenix_mtls), ("grpc", &receivers.phoenix_mtls_grpc)] {
        let base = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", ca.as_str()),
        ];
        let (output, stdout) = doctor(&base);
        assert_eq!(output.status.code(), Some(1), "{protocol}");
        // Under TLS 1.3 the refusal comes after the handshake, as a closed
        // connection: either way the hint names the client certificate.
        let failure = stdout.lines().find(|line| line.starts_with("FAILED: ")).expect("a FAILED line");
        assert!(failure.contains("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"), "{failure}");
        let mut with_identity = base.to_vec();
        with_identity.push(("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", &certificate));
        with_identity.push(("OTEL_EXPORTER_OTLP_CLIENT_KEY", &key));
        let (output, stdout) = doctor(&with_identity);
        assert_eq!(output.status.code(), Some(0), "{protocol}: {stdout}");
        assert!(stdout.contains("otlp.client_certificate"), "{stdout}");
    }
}
