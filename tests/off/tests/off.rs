//! With `traced`'s `off` feature the macros check their arguments and emit
//! the item untouched: an instrumented fn behaves exactly as the bare fn and
//! no span is created, even with a provider installed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use traced::{Config, ExporterKind, SpanAttributes, span, traced_app};

#[derive(Clone, Debug, Default)]
struct Collected(Arc<Mutex<Vec<SpanData>>>);

impl SpanExporter for Collected {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0.lock().unwrap().extend(batch);
        Ok(())
    }
}

#[span(attrs(model.name = "tiny-unet"), args(steps))]
fn encode(prompt: &str, steps: u32) -> Result<usize, String> {
    if steps == 0 { Err("no steps".into()) } else { Ok(prompt.len() + traced::current_trace_id().map_or(0, |_| 1000)) }
}

#[span]
fn explode() {
    panic!("boom")
}

#[span]
async fn denoise(steps: u32) -> u32 {
    steps * 2
}

#[span(stream(events))]
fn tokens() -> impl Iterator<Item = u32> {
    0..3
}

#[derive(SpanAttributes, serde::Deserialize)]
struct Input {
    #[span_attr]
    steps: u32,
}

struct App;

#[traced_app(service = "off")]
impl App {
    fn setup() -> Self {
        App
    }

    #[endpoint("/")]
    fn run(&self, input: Input) -> Option<String> {
        let _ = input.steps;
        traced::current_trace_id()
    }
}

#[tokio::test]
async fn instrumented_functions_behave_as_bare_ones_and_make_no_span() {
    let collected = Collected::default();
    let guard = traced::init(
        Config::default().exporters([ExporterKind::None]).span_exporter(collected.clone()).with_env_from(|_| None),
    );
    assert_eq!(encode("abc", 1), Ok(3), "no span is current inside");
    assert_eq!(encode("abc", 0), Err("no steps".to_string()));
    assert!(std::panic::catch_unwind(explode).is_err());
    assert_eq!(denoise(2).await, 4);
    assert_eq!(tokens().collect::<Vec<_>>(), [0, 1, 2]);
    let app = <App as traced::App>::setup().unwrap();
    assert_eq!(app.run(Input { steps: 1 }), None);
    assert!(traced::flush(Duration::from_secs(2)));
    assert!(collected.0.lock().unwrap().is_empty(), "no span was created");
    guard.shutdown();
}
