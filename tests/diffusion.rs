//! The flagship example on CPU: a request returns a PNG that decodes, its
//! trace (every stage, an event per denoising step, no prompt text) arrives
//! in Phoenix apart from the setup trace, and SIGTERM ends the process inside
//! the grace period.

use std::time::Duration;

use base64::Engine as _;
use traced_tests::{Receivers, Service, by_name, unique, workspace_binary};

fn decode_png(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().expect("a PNG header");
    let mut pixels = vec![0; reader.output_buffer_size().expect("a buffer size")];
    let info = reader.next_frame(&mut pixels).expect("PNG pixels");
    assert_eq!(info.color_type, png::ColorType::Rgb);
    pixels.truncate(info.buffer_size());
    (info.width, info.height, pixels)
}

#[test]
fn a_request_returns_a_png_and_its_trace_arrives_whole() {
    let receivers = Receivers::from_env();
    let project = unique("traced-diffusion");
    let resource = format!("openinference.project.name={project}");
    let output = std::env::temp_dir().join(unique("traced-images"));
    let output = output.to_string_lossy().into_owned();
    let mut app = Service::start(
        &workspace_binary("text-to-image"),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &receivers.phoenix),
            ("OTEL_RESOURCE_ATTRIBUTES", &resource),
            ("TEXT_TO_IMAGE_OUTPUT", &output),
        ],
    );
    let prompt = "a red circle on black";
    let (status, headers, body) =
        app.post("/", &serde_json::json!({ "prompt": prompt, "num_inference_steps": 4, "seed": 3 }), &[]);
    assert_eq!(status, 200, "{body}\n{}", app.stderr());
    let trace_id = body["trace_id"].as_str().unwrap().to_string();
    assert_eq!(headers.get("x-trace-id").unwrap().to_str().unwrap(), trace_id);
    let png = base64::engine::general_purpose::STANDARD.decode(body["image"].as_str().unwrap()).unwrap();
    let (width, height, pixels) = decode_png(&png);
    assert_eq!((width, height), (256, 256));
    assert_eq!(pixels.len(), 256 * 256 * 3);
    assert_eq!(std::fs::read(body["path"].as_str().unwrap()).unwrap(), png, "the upload wrote the same PNG");

    let (status, _, body) = app.post("/", &serde_json::json!({ "prompt": prompt, "num_inference_steps": 0 }), &[]);
    assert_eq!(status, 400, "{body}");

    // The same image, streamed: a progress event per step, the image last.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let events: Vec<serde_json::Value> = runtime.block_on(async {
        let input = serde_json::json!({ "prompt": prompt, "num_inference_steps": 4, "seed": 3 });
        let mut stream = traced::Client::new().stream(&format!("{}/stream", app.url), &input).await.unwrap();
        let mut events = Vec::new();
        while let Some(event) = stream.next().await {
            events.push(event.unwrap());
        }
        events
    });
    assert_eq!(events.len(), 5, "{events:?}");
    for (index, event) in events[..4].iter().enumerate() {
        assert_eq!((&event["event"], &event["step"], &event["of"]), (&"step".into(), &(index + 1).into(), &4.into()));
    }
    assert_eq!(events[4]["event"], "image");
    let streamed = base64::engine::general_purpose::STANDARD.decode(events[4]["image"].as_str().unwrap()).unwrap();
    assert_eq!(streamed, png, "the same seed draws the same image, streamed or not");
    let stream_trace = events[4]["trace_id"].as_str().unwrap().to_string();

    let (code, took) = app.terminate();
    println!("text-to-image exited {code:?} {took:?} after SIGTERM");
    assert_eq!(code, Some(0), "{}", app.stderr());
    assert!(took < Duration::from_secs(5));

    let streamed = receivers.phoenix_spans(&project, &stream_trace, 8);
    assert_eq!(streamed.len(), 8, "{:?}", streamed.iter().map(|s| &s.name).collect::<Vec<_>>());
    let endpoint = by_name(&streamed, "text-to-image-stream");
    assert_eq!(endpoint.attributes["stream.items"], 5);
    assert!(endpoint.attributes["gen_ai.response.time_to_first_chunk"].as_f64().unwrap() < endpoint.seconds());
    let steps: Vec<_> = streamed.iter().filter(|s| s.name == "denoise-step").collect();
    assert_eq!(steps.len(), 4);
    assert!(
        steps.iter().all(|s| s.parent_id.as_ref() == Some(&endpoint.span_id)),
        "each step inside the stream's span"
    );

    let spans = receivers.phoenix_spans(&project, &trace_id, 5);
    assert_eq!(spans.len(), 5, "{:?}", spans.iter().map(|s| &s.name).collect::<Vec<_>>());
    let root = by_name(&spans, "text-to-image");
    for stage in ["encode-prompt", "inference", "decode", "upload"] {
        assert_eq!(by_name(&spans, stage).parent_id.as_ref(), Some(&root.span_id), "{stage}");
    }
    assert_eq!(root.attributes["prompt.length"], prompt.len());
    assert_eq!(root.attributes["num_inference_steps"], 4);
    assert_eq!(root.attributes["model.name"], "tiny-unet");
    assert_eq!(root.attributes["device"], "cpu");
    assert_eq!(root.attributes["http.route"], "/");
    assert_eq!(root.attributes["http.response.status_code"], 200);
    for (stage, kind) in [
        ("text-to-image", "CHAIN"),
        ("encode-prompt", "EMBEDDING"),
        ("inference", "LLM"),
        ("decode", "CHAIN"),
        ("upload", "TOOL"),
    ] {
        assert_eq!(by_name(&spans, stage).span_kind, kind, "{stage}: Phoenix shows no span as unknown");
    }
    assert_eq!(root.attributes["gen_ai.operation.name"], "generate_content");
    assert_eq!(root.attributes["gen_ai.request.model"], "tiny-unet");
    assert_eq!(root.attributes["gen_ai.output.type"], "image");
    assert_eq!(root.attributes["gen_ai.request.seed"], 3);
    let inference = by_name(&spans, "inference");
    let steps: Vec<_> = inference.events.iter().filter(|e| e["name"] == "denoise-step").collect();
    assert_eq!(steps.len(), 4, "an event per step: {:?}", inference.events);
    assert_eq!(by_name(&spans, "decode").attributes["image.width"], 256);
    let everything = format!("{spans:?}");
    assert!(!everything.contains("red circle"), "the prompt text leaked into the trace");

    // The setup ran in a trace of its own.
    let setup_spans = project_spans_named(&receivers, &project, "setup");
    assert_eq!(setup_spans.len(), 1);
    assert_ne!(setup_spans[0], trace_id);
    let setup = receivers.phoenix_spans(&project, &setup_spans[0], 4);
    let names: Vec<&str> = setup.iter().map(|s| s.name.as_str()).collect();
    for stage in ["setup", "cuda-probe", "load-weights", "warmup"] {
        assert!(names.contains(&stage), "{stage} missing from the setup trace: {names:?}");
    }
}

/// Trace ids of the project's spans with this name.
fn project_spans_named(receivers: &Receivers, project: &str, name: &str) -> Vec<String> {
    let url = format!("{}/v1/projects/{project}/spans?name={name}&limit=100", receivers.phoenix);
    let body: serde_json::Value = reqwest::blocking::get(url).unwrap().json().unwrap();
    body["data"].as_array().unwrap().iter().map(|s| s["context"]["trace_id"].as_str().unwrap().to_string()).collect()
}
