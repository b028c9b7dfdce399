//! Interop with the reference OpenTelemetry Python SDK, both ways: a Python
//! client's traceparent header continued by a traced endpoint, and a traced
//! client's body carrier continued by a Python worker written as the
//! platform page shows. Each must be one trace in Phoenix.

use std::process::Command;

use traced_tests::{Receivers, Service, by_name, closed_port, unique, workspace_binary};

fn python() -> String {
    std::env::var("TRACED_RECEIVERS_PYTHON").expect("TRACED_RECEIVERS_PYTHON is set by scripts/receivers.sh")
}

fn script(name: &str) -> String {
    format!("{}/python/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn a_python_client_header_is_continued_by_a_traced_endpoint() {
    let receivers = Receivers::from_env();
    let project = unique("traced-interop-in");
    let resource = format!("openinference.project.name={project}");
    let mut worker = Service::start(
        &workspace_binary("test-worker"),
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", &receivers.phoenix), ("OTEL_RESOURCE_ATTRIBUTES", &resource)],
    );
    let output = Command::new(python())
        .args([
            script("client.py"),
            format!("{}/v1/traces", receivers.phoenix),
            project.clone(),
            format!("{}/", worker.url),
        ])
        .output()
        .expect("run the Python client");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let fields: Vec<&str> = stdout.split_whitespace().collect();
    let (trace_id, python_span, status) = (fields[0], fields[1], fields[2]);
    assert_eq!(status, "200");
    assert_eq!(worker.terminate().0, Some(0));

    let spans = receivers.phoenix_spans(&project, trace_id, 3);
    assert_eq!(spans.len(), 3, "{spans:?}");
    let client = by_name(&spans, "python-client");
    let served = by_name(&spans, "text-to-image");
    assert_eq!(client.span_id, python_span);
    assert_eq!(served.parent_id.as_deref(), Some(python_span));
    assert_eq!(by_name(&spans, "generate").parent_id.as_ref(), Some(&served.span_id));
}

#[test]
fn a_traced_body_carrier_is_continued_by_a_python_worker() {
    let receivers = Receivers::from_env();
    let project = unique("traced-interop-out");
    let resource = format!("openinference.project.name={project}");
    let port = closed_port();
    let mut python_worker = Command::new(python())
        .args([script("worker.py"), format!("{}/v1/traces", receivers.phoenix), project.clone(), port.to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the Python worker");
    let mut ready = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(python_worker.stdout.take().unwrap()), &mut ready)
        .unwrap();
    assert_eq!(ready.trim(), "ready");

    let worker_url = format!("http://127.0.0.1:{port}/");
    let mut pipeline = Service::start(
        &workspace_binary("image-pipeline"),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &receivers.phoenix),
            ("OTEL_RESOURCE_ATTRIBUTES", &resource),
            ("WORKER_URL", &worker_url),
            // Only the body carries the context: the Python worker reads it there.
            ("PIPELINE_PROPAGATION", "body"),
        ],
    );
    let (status, _, body) = pipeline.post("/", &serde_json::json!({ "prompt": "blue square" }), &[]);
    let _ = python_worker.kill();
    let _ = python_worker.wait();
    assert_eq!(status, 200, "{body}\n{}", pipeline.stderr());
    assert_eq!(body["image"], "<python image of blue square>");
    let trace_id = body["trace_id"].as_str().unwrap().to_string();
    assert_eq!(pipeline.terminate().0, Some(0));

    let spans = receivers.phoenix_spans(&project, &trace_id, 5);
    assert_eq!(spans.len(), 5, "{:?}", spans.iter().map(|s| &s.name).collect::<Vec<_>>());
    let client = by_name(&spans, "POST");
    let inference = by_name(&spans, "inference");
    assert_eq!(inference.parent_id.as_ref(), Some(&client.span_id), "the Python span continues the traced client span");
}
