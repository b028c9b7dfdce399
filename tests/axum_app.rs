//! `examples/axum-app`, an ordinary axum service with traced added by one
//! layer: a request's Server span is named by its route, continues the
//! caller's trace, carries the HTTP attributes, names itself in the
//! response headers, and has the `#[span]` stages as children, in Phoenix.

use traced_tests::{Receivers, Service, by_name, unique, workspace_binary};

#[test]
fn the_layer_traces_an_existing_axum_service() {
    let receivers = Receivers::from_env();
    let project = unique("traced-axum");
    let resource = format!("openinference.project.name={project}");
    let mut app = Service::start(
        &workspace_binary("axum-app"),
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", &receivers.phoenix), ("OTEL_RESOURCE_ATTRIBUTES", &resource)],
    );
    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller = format!("00-{caller_trace}-00f067aa0ba902b7-01");
    let (status, headers, body) = app.post(
        "/generate/tiny-unet",
        &serde_json::json!({ "prompt": "a red circle", "steps": 4 }),
        &[("traceparent", &caller)],
    );
    assert_eq!(status, 200, "{body}\n{}", app.stderr());
    assert_eq!(body["trace_id"], caller_trace, "the handler runs inside the caller's trace");
    assert_eq!(headers.get("x-trace-id").and_then(|v| v.to_str().ok()), Some(caller_trace));
    let traceparent = headers.get("traceparent").and_then(|v| v.to_str().ok()).expect("a traceparent").to_string();
    let server_span_id = traceparent.split('-').nth(2).expect("a span id").to_string();

    let (status, _, _) = app.post("/generate/tiny-unet", &serde_json::json!({ "prompt": " ", "steps": 4 }), &[]);
    assert_eq!(status, 422);
    let (code, _) = app.terminate();
    assert_eq!(code, Some(0), "{}", app.stderr());

    let spans = receivers.phoenix_spans(&project, caller_trace, 3);
    assert_eq!(spans.len(), 3, "{:?}", spans.iter().map(|s| &s.name).collect::<Vec<_>>());
    let server = by_name(&spans, "POST /generate/{model}");
    assert_eq!(server.span_id, server_span_id);
    assert_eq!(server.parent_id.as_deref(), Some("00f067aa0ba902b7"), "the caller's span is the parent");
    assert_eq!(server.attributes["http.route"], "/generate/{model}");
    assert_eq!(server.attributes["http.request.method"], "POST");
    assert_eq!(server.attributes["url.path"], "/generate/tiny-unet");
    assert_eq!(server.attributes["http.response.status_code"], 200);
    for stage in ["encode-prompt", "denoise"] {
        assert_eq!(by_name(&spans, stage).parent_id.as_deref(), Some(server_span_id.as_str()), "{stage}");
    }
    assert_eq!(by_name(&spans, "denoise").span_kind, "LLM");
    assert_eq!(by_name(&spans, "denoise").attributes["steps"], 4);
}
