//! `#[traced_app]`, `#[endpoint]` and `#[derive(SpanAttributes)]` against a
//! recording provider: the setup trace, request roots and their parents,
//! input attributes, and the flush at teardown.

use std::time::Duration;

use opentelemetry::Value;
use opentelemetry::trace::{SpanId, SpanKind, Status};
use traced::{App as _, Carrier, Config, SpanAttributes};

mod support;
use support::{Recorder, attr, event_attr};

#[derive(serde::Deserialize, SpanAttributes)]
struct Input {
    #[span_attr(name = "prompt.length", with = str::len)]
    prompt: String,
    #[span_attr]
    num_inference_steps: u32,
    #[span_attr(redact)]
    api_key: String,
    #[serde(default)]
    trace_context: Carrier,
}

#[derive(Debug, serde::Serialize)]
struct Output {
    trace_id: Option<String>,
}

#[derive(Debug)]
struct GenerationFailed;
impl std::fmt::Display for GenerationFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the sampler diverged")
    }
}
impl std::error::Error for GenerationFailed {}

struct TextToImage {
    model: &'static str,
    torn_down: bool,
}

#[traced::traced_app(service = "text-to-image")]
impl TextToImage {
    fn setup() -> Result<Self, std::io::Error> {
        Self::warmup();
        Ok(TextToImage { model: "tiny-unet", torn_down: false })
    }

    #[span]
    fn warmup() {}

    #[endpoint("/", name = "text-to-image", attrs(model.name = self.model))]
    fn run(&self, input: Input) -> Result<Output, GenerationFailed> {
        self.encode(&input.prompt);
        assert!(!input.api_key.is_empty());
        if input.num_inference_steps == 0 {
            return Err(GenerationFailed);
        }
        Ok(Output { trace_id: traced::current_trace_id() })
    }

    #[endpoint("/health")]
    fn health(&self) -> bool {
        true
    }

    #[endpoint("/by-reference")]
    fn by_reference(&self, input: &Input) -> u32 {
        input.num_inference_steps
    }

    #[span(name = "encode-prompt")]
    fn encode(&self, prompt: &str) -> usize {
        prompt.len()
    }

    fn teardown(&mut self) {
        self.torn_down = true;
    }
}

fn input(prompt: &str, steps: u32, carrier: Carrier) -> Input {
    Input { prompt: prompt.into(), num_inference_steps: steps, api_key: "sk-secret".into(), trace_context: carrier }
}

fn carrier(traceparent: &str) -> Carrier {
    [("traceparent", traceparent)].into_iter().collect()
}

#[test]
fn setup_runs_in_a_startup_trace_of_its_own() {
    let recorder = Recorder::start();
    let app = TextToImage::setup().unwrap();
    let setup = recorder.span("setup");
    let warmup = recorder.span("warmup");
    assert_eq!(setup.parent_span_id, SpanId::INVALID);
    assert_eq!(warmup.parent_span_id, setup.span_context.span_id());
    let output = app.run(input("red circle", 4, Carrier::default())).unwrap();
    let request = recorder.span("text-to-image");
    assert_ne!(request.span_context.trace_id(), setup.span_context.trace_id(), "warmup stays out of requests");
    assert_eq!(output.trace_id, Some(request.span_context.trace_id().to_string()));
}

#[test]
fn an_endpoint_is_a_server_root_with_its_input_attributes() {
    let recorder = Recorder::start();
    let app = TextToImage::setup().unwrap();
    app.run(input("a secret prompt", 4, Carrier::default())).unwrap();
    let request = recorder.span("text-to-image");
    assert_eq!(request.span_kind, SpanKind::Server);
    assert_eq!(request.parent_span_id, SpanId::INVALID);
    assert_eq!(attr(&request, "prompt.length"), Some(Value::I64(15)));
    assert_eq!(attr(&request, "num_inference_steps"), Some(Value::I64(4)));
    assert_eq!(attr(&request, "api_key"), Some(Value::from("[redacted]")));
    assert_eq!(attr(&request, "model.name"), Some(Value::from("tiny-unet")));
    let everything = format!("{request:?}");
    assert!(!everything.contains("a secret prompt") && !everything.contains("sk-secret"), "{everything}");
    let encode = recorder.span("encode-prompt");
    assert_eq!(encode.parent_span_id, request.span_context.span_id());
    assert!(app.health());
    assert_eq!(recorder.span("health").span_kind, SpanKind::Server);
    app.by_reference(&input("red", 9, carrier("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")));
    let by_reference = recorder.span("by_reference");
    assert_eq!(attr(&by_reference, "num_inference_steps"), Some(Value::I64(9)));
    assert_eq!(by_reference.span_context.trace_id().to_string(), "0af7651916cd43dd8448eb211c80319c");
}

#[test]
fn the_body_carrier_makes_the_caller_the_parent() {
    let recorder = Recorder::start();
    let app = TextToImage::setup().unwrap();
    app.run(input("red circle", 4, carrier("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"))).unwrap();
    let request = recorder.span("text-to-image");
    assert_eq!(request.span_context.trace_id().to_string(), "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(request.parent_span_id.to_string(), "b7ad6b7169203331");
    assert!(request.parent_span_is_remote);
}

#[test]
fn headers_made_current_by_the_server_win_over_the_body() {
    let recorder = Recorder::start();
    let app = TextToImage::setup().unwrap();
    let from_headers = traced::extract(&carrier("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
    let _attached = from_headers.attach();
    app.run(input("red circle", 4, carrier("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"))).unwrap();
    let request = recorder.span("text-to-image");
    assert_eq!(request.span_context.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
}

#[test]
fn a_malformed_carrier_starts_a_new_root() {
    let recorder = Recorder::start();
    let app = TextToImage::setup().unwrap();
    app.run(input("red circle", 4, carrier("00-zzzz-b7ad6b7169203331-01"))).unwrap();
    let request = recorder.span("text-to-image");
    assert_eq!(request.parent_span_id, SpanId::INVALID);
    assert!(!request.parent_span_is_remote);
}

#[test]
fn an_endpoint_inside_another_local_span_still_roots_its_own_trace() {
    let recorder = Recorder::start();
    let app = TextToImage::setup().unwrap();
    #[traced::span]
    fn batch_driver(app: &TextToImage) {
        app.run(input("red circle", 4, Carrier::default())).unwrap();
    }
    batch_driver(&app);
    let request = recorder.span("text-to-image");
    let driver = recorder.span("batch_driver");
    assert_ne!(request.span_context.trace_id(), driver.span_context.trace_id());
}

#[test]
fn endpoint_errors_are_recorded() {
    let recorder = Recorder::start();
    let app = TextToImage::setup().unwrap();
    assert!(app.run(input("red circle", 0, Carrier::default())).is_err());
    let request = recorder.span("text-to-image");
    assert_eq!(request.status, Status::error("the sampler diverged"));
    assert_eq!(event_attr(&request, "exception", "exception.message"), Some(Value::from("the sampler diverged")));
}

#[test]
fn teardown_runs_in_its_span_then_flushes() {
    // A long schedule delay: only the teardown's flush can export in time.
    let recorder = Recorder::with(Config::default().schedule_delay(Duration::from_secs(60)));
    let mut app = TextToImage::setup().unwrap();
    app.run(input("red circle", 4, Carrier::default())).unwrap();
    assert!(recorder.exported().is_empty(), "nothing exported before teardown");
    app.teardown();
    assert!(app.torn_down);
    let exported = recorder.exported();
    let names: Vec<&str> = exported.iter().map(|s| s.name.as_ref()).collect();
    for expected in ["setup", "warmup", "text-to-image", "encode-prompt", "teardown"] {
        assert!(names.contains(&expected), "{expected} missing from {names:?}");
    }
    assert!(!traced::is_enabled(), "teardown shut tracing down");
}

struct Broken;

#[traced::traced_app]
impl Broken {
    fn setup() -> Result<Self, String> {
        Err("weights not found".to_string())
    }
}

#[test]
fn a_failed_setup_is_recorded_and_flushed_at_once() {
    let recorder = Recorder::with(Config::default().schedule_delay(Duration::from_secs(60)));
    let error = <Broken as traced::App>::setup().err().expect("setup fails");
    assert_eq!(error.to_string(), "weights not found");
    let exported = recorder.exported();
    let setup = exported.iter().find(|s| s.name == "setup").expect("the setup span was flushed");
    assert_eq!(setup.status, Status::error("weights not found"));
}

struct TextToImageV2App;

#[traced::traced_app]
impl TextToImageV2App {
    fn setup() -> Self {
        TextToImageV2App
    }
}

#[test]
fn the_service_name_defaults_to_the_type_name_in_kebab_case() {
    assert_eq!(TextToImage::SERVICE_NAME, "text-to-image");
    assert_eq!(TextToImageV2App::SERVICE_NAME, "text-to-image-v2-app");
    assert_eq!(Broken::SERVICE_NAME, "broken");
}

#[tokio::test]
async fn async_endpoints() {
    struct Worker;
    #[traced::traced_app(service = "worker")]
    impl Worker {
        fn setup() -> Self {
            Worker
        }
        #[endpoint("/generate")]
        async fn generate(&self, input: Input) -> Option<String> {
            tokio::task::yield_now().await;
            let _ = input.prompt;
            traced::current_trace_id()
        }
    }
    let recorder = Recorder::start();
    let worker = Worker::setup();
    let id = worker.generate(input("x", 1, carrier("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"))).await;
    assert_eq!(id.as_deref(), Some("0af7651916cd43dd8448eb211c80319c"));
    assert_eq!(recorder.span("generate").span_kind, SpanKind::Server);
}
