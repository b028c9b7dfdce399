//! Streamed answers against Phoenix, called by the reference Python
//! OpenTelemetry SDK reading Server-Sent Events with httpx and the httpx-sse
//! parser: the endpoint's span covers the stream to its last event, with its
//! items and time to first chunk; a client that hangs up, an `Err` item and
//! a panic each end it so; and an axum SSE route under `TraceLayer` keeps
//! its server span to the end of the body.

use std::process::Command;

use serde_json::Value;
use traced_tests::{PhoenixSpan, Receivers, Service, by_name, unique, workspace_binary};

fn python() -> String {
    std::env::var("TRACED_RECEIVERS_PYTHON").expect("TRACED_RECEIVERS_PYTHON is set by scripts/receivers.sh")
}

/// Runs the Python streaming caller; its report.
fn python_stream(receivers: &Receivers, project: &str, url: &str, body: &Value, hang_up_after: Option<usize>) -> Value {
    let script = format!("{}/python/stream_client.py", env!("CARGO_MANIFEST_DIR"));
    let mut command = Command::new(python());
    command.args([script, format!("{}/v1/traces", receivers.phoenix), project.to_string(), url.to_string()]);
    command.arg(body.to_string());
    if let Some(after) = hang_up_after {
        command.arg(after.to_string());
    }
    let output = command.output().expect("run the Python streaming client");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("the client's JSON report")
}

fn events(report: &Value) -> &Vec<Value> {
    report["events"].as_array().expect("events")
}

fn started_worker(receivers: &Receivers, project: &str) -> Service {
    let resource = format!("openinference.project.name={project}");
    Service::start(
        &workspace_binary("test-worker"),
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", &receivers.phoenix), ("OTEL_RESOURCE_ATTRIBUTES", &resource)],
    )
}

fn trace_spans(receivers: &Receivers, project: &str, report: &Value, expected: usize) -> Vec<PhoenixSpan> {
    let trace_id = report["trace_id"].as_str().unwrap();
    receivers.phoenix_spans(project, trace_id, expected)
}

#[test]
fn a_python_caller_reads_a_stream_whose_span_covers_it_to_the_last_event() {
    let receivers = Receivers::from_env();
    let project = unique("traced-stream");
    let mut worker = started_worker(&receivers, &project);
    let url = format!("{}/stream", worker.url);
    let report = python_stream(&receivers, &project, &url, &serde_json::json!({"count": 5, "pause_ms": 50}), None);
    assert_eq!(report["status"], 200);
    assert!(report["content_type"].as_str().unwrap().starts_with("text/event-stream"));
    let received = events(&report);
    assert_eq!(received.len(), 5);
    for (index, event) in received.iter().enumerate() {
        assert_eq!(event["event"], "message");
        let token: Value = serde_json::from_str(event["data"].as_str().unwrap()).unwrap();
        assert_eq!(token["index"], index);
    }

    let spans = trace_spans(&receivers, &project, &report, 2);
    let caller = by_name(&spans, "python-client");
    let endpoint = by_name(&spans, "stream-tokens");
    assert_eq!(endpoint.parent_id.as_deref(), Some(caller.span_id.as_str()), "one trace, both sides");
    assert_eq!(endpoint.span_kind, "LLM");
    assert_eq!(endpoint.attributes["stream.items"], 5);
    assert_eq!(endpoint.attributes["http.response.status_code"], 200);
    assert!(endpoint.attributes["http.response.body.size"].as_i64().unwrap() > 0);
    let first = endpoint.attributes["gen_ai.response.time_to_first_chunk"].as_f64().expect("ttfc");
    assert!(first >= 0.05 && first < endpoint.seconds(), "{first} against {}", endpoint.seconds());
    assert!(endpoint.events.iter().any(|e| e["name"] == "first-item"), "{:?}", endpoint.events);
    assert_eq!(endpoint.status_code, "UNSET");
    // The span ends once the last event is out: after the last token was
    // made, after the client had the one before, and no earlier than
    // loopback delivery allows before it had the last.
    let made_last: Value = serde_json::from_str(received[4]["data"].as_str().unwrap()).unwrap();
    assert!(endpoint.end_ns >= made_last["made_ns"].as_u64().unwrap() as u128, "ended after the last was made");
    let arrived = |index: usize| received[index]["received_ns"].as_u64().unwrap() as u128;
    assert!(endpoint.end_ns >= arrived(3), "ended after the client had the fourth event");
    assert!(endpoint.end_ns + 5_000_000 >= arrived(4), "ended with the last event");
    assert_eq!(worker.terminate().0, Some(0));
}

#[test]
fn a_hang_up_an_error_item_and_a_panic_each_end_the_stream_and_its_span() {
    let receivers = Receivers::from_env();
    let project = unique("traced-stream-ends");
    let mut worker = started_worker(&receivers, &project);
    let url = format!("{}/stream", worker.url);

    let ask = serde_json::json!({"count": 1000, "pause_ms": 20});
    let report = python_stream(&receivers, &project, &url, &ask, Some(3));
    assert_eq!(events(&report).len(), 3);
    let spans = trace_spans(&receivers, &project, &report, 2);
    let endpoint = by_name(&spans, "stream-tokens");
    assert_eq!(endpoint.attributes["traced.cancelled"], true, "{:?}", endpoint.attributes);
    assert_eq!(endpoint.attributes["http.response.status_code"], 200, "the head had gone out");
    let made = endpoint.attributes["stream.items"].as_i64().unwrap();
    assert!((3..=3 + 4).contains(&made), "{made} made for 3 read: the producer stopped");

    let report = python_stream(&receivers, &project, &url, &serde_json::json!({"count": 5, "fail_at": 2}), None);
    let received = events(&report);
    assert_eq!(received.len(), 3, "two tokens, then the error");
    assert_eq!(received[2]["event"], "error");
    let told: Value = serde_json::from_str(received[2]["data"].as_str().unwrap()).unwrap();
    assert_eq!(told["error"], "the sampler diverged at token 2");
    assert_eq!(told["trace_id"], report["trace_id"], "the error names the trace");
    let endpoint = by_name(&trace_spans(&receivers, &project, &report, 2), "stream-tokens").clone();
    assert_eq!(endpoint.status_code, "ERROR");
    assert!(endpoint.events.iter().any(|e| e["name"] == "exception"));

    let report = python_stream(&receivers, &project, &url, &serde_json::json!({"count": 5, "panic_at": 1}), None);
    let received = events(&report);
    assert_eq!(received.len(), 2);
    assert_eq!(received[1]["event"], "error");
    assert!(received[1]["data"].as_str().unwrap().contains("the handler panicked: CUDA error"));
    assert_eq!(by_name(&trace_spans(&receivers, &project, &report, 2), "stream-tokens").status_code, "ERROR");

    let report = python_stream(&receivers, &project, &url, &serde_json::json!({"count": 2}), None);
    assert_eq!(events(&report).len(), 2, "still serving");
    assert_eq!(worker.terminate().0, Some(0));
}

#[test]
fn an_axum_sse_route_under_the_layer_keeps_its_span_to_the_end_of_the_body() {
    let receivers = Receivers::from_env();
    let project = unique("traced-axum-sse");
    let resource = format!("openinference.project.name={project}");
    let mut app = Service::start(
        &workspace_binary("axum-app"),
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", &receivers.phoenix), ("OTEL_RESOURCE_ATTRIBUTES", &resource)],
    );
    let url = format!("{}/generate/tiny-unet/stream", app.url);
    let report =
        python_stream(&receivers, &project, &url, &serde_json::json!({"prompt": "a red circle", "steps": 4}), None);
    let received = events(&report);
    assert_eq!(received.len(), 4);
    assert_eq!(serde_json::from_str::<Value>(received[3]["data"].as_str().unwrap()).unwrap()["step"], 4);
    assert_eq!(app.terminate().0, Some(0), "{}", app.stderr());

    let spans = trace_spans(&receivers, &project, &report, 7);
    let server = by_name(&spans, "POST /generate/{model}/stream");
    assert_eq!(server.parent_id.as_deref(), Some(by_name(&spans, "python-client").span_id.as_str()));
    assert!(server.seconds() >= 0.08, "covers the four 20 ms steps: {} s", server.seconds());
    let arrived = |index: usize| received[index]["received_ns"].as_u64().unwrap() as u128;
    assert!(server.end_ns >= arrived(2), "ended after the client had the third event");
    assert!(server.end_ns + 5_000_000 >= arrived(3), "ended with the last event");
    assert!(server.attributes["http.response.body.size"].as_i64().unwrap() > 0);
    assert!(server.attributes["traced.time_to_first_byte"].as_f64().unwrap() < server.seconds());
    let steps: Vec<&PhoenixSpan> = spans.iter().filter(|s| s.name == "denoise").collect();
    assert_eq!(steps.len(), 4, "a step per event");
    assert!(steps.iter().all(|s| s.parent_id.as_deref() == Some(server.span_id.as_str())), "made inside the span");
}

#[test]
fn a_pipeline_relaying_a_workers_stream_is_one_trace_to_the_last_event() {
    let receivers = Receivers::from_env();
    let project = unique("traced-stream-pipeline");
    let mut worker = started_worker(&receivers, &project);
    let resource = format!("openinference.project.name={project}");
    let worker_url = format!("{}/", worker.url);
    let mut pipeline = Service::start(
        &workspace_binary("image-pipeline"),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &receivers.phoenix),
            ("OTEL_RESOURCE_ATTRIBUTES", &resource),
            ("WORKER_URL", &worker_url),
        ],
    );
    let url = format!("{}/stream", pipeline.url);
    let report = python_stream(&receivers, &project, &url, &serde_json::json!({"tokens": 4, "pause_ms": 20}), None);
    assert_eq!(report["status"], 200, "{}", pipeline.stderr());
    let received = events(&report);
    let indices: Vec<Value> = received
        .iter()
        .map(|event| serde_json::from_str::<Value>(event["data"].as_str().unwrap()).unwrap()["index"].clone())
        .collect();
    assert_eq!(indices, [0, 1, 2, 3], "the worker's tokens, relayed in order");

    let spans = trace_spans(&receivers, &project, &report, 4);
    let caller = by_name(&spans, "python-client");
    let relay = by_name(&spans, "image-pipeline-stream");
    let client = by_name(&spans, "POST");
    let producer = by_name(&spans, "stream-tokens");
    assert_eq!(relay.parent_id.as_deref(), Some(caller.span_id.as_str()));
    assert_eq!(client.parent_id.as_deref(), Some(relay.span_id.as_str()));
    assert_eq!(producer.parent_id.as_deref(), Some(client.span_id.as_str()), "the worker continues the client span");
    for span in [relay, client, producer] {
        assert_eq!(span.attributes["stream.items"], 4, "{}", span.name);
        assert!(span.attributes["gen_ai.response.time_to_first_chunk"].as_f64().is_some(), "{}", span.name);
    }
    assert!(client.end_ns >= producer.end_ns, "the client span covers the worker's stream");
    assert!(relay.end_ns >= client.end_ns, "the relay's span covers its client's");
    let last = received[3]["received_ns"].as_u64().unwrap() as u128;
    assert!(relay.end_ns + 5_000_000 >= last, "the relay's span ends with the last event");
    assert_eq!(pipeline.terminate().0, Some(0), "{}", pipeline.stderr());
    assert_eq!(worker.terminate().0, Some(0));
}
