//! Pipeline → worker over real HTTP, each in its own process: one trace
//! across both services, whether the context travels in headers, in the
//! body, or both. Read back from Phoenix (spans) and rotel (service names).

use traced_tests::{PhoenixSpan, Receivers, Service, by_name, unique, workspace_binary};

fn run_pipeline(propagation: &str) {
    let receivers = Receivers::from_env();
    let project = unique("traced-pipeline");
    let resource = format!("openinference.project.name={project}");
    let common = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receivers.rotel_http.as_str()),
        ("OTEL_RESOURCE_ATTRIBUTES", resource.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ];
    let mut worker = Service::start(&workspace_binary("test-worker"), &common);
    let worker_url = format!("{}/", worker.url);
    let mut env = common.to_vec();
    env.extend([("WORKER_URL", worker_url.as_str()), ("PIPELINE_PROPAGATION", propagation)]);
    let mut pipeline = Service::start(&workspace_binary("image-pipeline"), &env);

    let (status, headers, body) = pipeline.post("/", &serde_json::json!({ "prompt": "  red   circle " }), &[]);
    assert_eq!(status, 200, "{body}\n{}\n{}", pipeline.stderr(), worker.stderr());
    let trace_id = body["trace_id"].as_str().expect("a trace id").to_string();
    assert_eq!(headers.get("x-trace-id").unwrap().to_str().unwrap(), trace_id);
    assert_eq!(body["image"], "<image of red circle>");

    // SIGTERM flushes both within their grace period.
    assert_eq!(pipeline.terminate().0, Some(0), "{}", pipeline.stderr());
    assert_eq!(worker.terminate().0, Some(0), "{}", worker.stderr());

    let spans = receivers.phoenix_spans(&project, &trace_id, 6);
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(spans.len(), 6, "{propagation}: {names:?}");
    let root = by_name(&spans, "image-pipeline");
    let preprocess = by_name(&spans, "preprocess-prompt");
    let call = by_name(&spans, "call-inference-worker");
    let client = by_name(&spans, "POST");
    let worker_root = by_name(&spans, "text-to-image");
    let generate = by_name(&spans, "generate");
    let parent = |span: &PhoenixSpan| span.parent_id.clone();
    assert_eq!(parent(root), None);
    assert_eq!(parent(preprocess).as_ref(), Some(&root.span_id));
    assert_eq!(parent(call).as_ref(), Some(&root.span_id));
    assert_eq!(parent(client).as_ref(), Some(&call.span_id));
    assert_eq!(
        parent(worker_root).as_ref(),
        Some(&client.span_id),
        "{propagation}: the worker continues the client span"
    );
    assert_eq!(parent(generate).as_ref(), Some(&worker_root.span_id));

    let services = receivers.rotel_services(&trace_id, 2);
    assert_eq!(services, ["image-pipeline", "text-to-image-worker"], "{propagation}");
}

#[test]
fn one_trace_with_headers_and_body() {
    run_pipeline("both");
}

#[test]
fn one_trace_with_headers_only() {
    run_pipeline("headers");
}

#[test]
fn one_trace_with_the_body_carrier_only() {
    run_pipeline("body");
}
