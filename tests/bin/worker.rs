//! A text-to-image worker for the integration tests: it reads the caller's
//! context from the headers or from the body's `trace_context`, runs a
//! `generate` stage (`WORKER_DELAY_MS` long, default 0), and answers.
//! Each image counts in its own `probe.items` counter.
//! `WORKER_FAIL_SETUP=reason` makes its setup fail. `/stream` answers with a
//! stream of tokens, paced, failing or panicking where the input asks.

use std::process::ExitCode;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use traced::{Carrier, SpanAttributes};

#[derive(Deserialize, SpanAttributes)]
struct WorkerInput {
    #[span_attr(name = "prompt.length", with = str::len)]
    prompt: String,
    #[serde(default)]
    trace_context: Carrier,
}

#[derive(Serialize)]
struct WorkerOutput {
    image: String,
    trace_id: Option<String>,
}

#[derive(Deserialize)]
struct StreamInput {
    count: u64,
    #[serde(default)]
    pause_ms: u64,
    #[serde(default)]
    fail_at: Option<u64>,
    #[serde(default)]
    panic_at: Option<u64>,
}

/// A streamed token and when it was made (Unix nanoseconds).
#[derive(Serialize)]
struct Token {
    index: u64,
    made_ns: u128,
}

struct Worker {
    delay: Duration,
    /// The app's own counter, served on `/metrics` as `probe_items_total`.
    items: opentelemetry::metrics::Counter<u64>,
}

#[traced::traced_app(service = "text-to-image-worker")]
impl Worker {
    fn setup() -> Result<Self, String> {
        if let Ok(reason) = std::env::var("WORKER_FAIL_SETUP") {
            return Err(format!("weights not found: {reason}"));
        }
        let delay = std::env::var("WORKER_DELAY_MS").ok().and_then(|ms| ms.parse().ok()).unwrap_or(0);
        let items = traced::meter("test-worker").u64_counter("probe.items").build();
        Ok(Worker { delay: Duration::from_millis(delay), items })
    }

    #[endpoint("/", name = "text-to-image")]
    fn run(&self, input: WorkerInput) -> WorkerOutput {
        self.items.add(1, &[opentelemetry::KeyValue::new("kind", "image")]);
        let image = self.generate(&input.prompt);
        WorkerOutput { image, trace_id: traced::current_trace_id() }
    }

    #[endpoint("/stream", name = "stream-tokens", ai_kind = llm)]
    fn stream(&self, input: StreamInput) -> impl Iterator<Item = Result<Token, String>> + use<> {
        (0..input.count).map(move |index| {
            if input.panic_at == Some(index) {
                panic!("CUDA error: an illegal memory access at token {index}");
            }
            if input.fail_at == Some(index) {
                return Err(format!("the sampler diverged at token {index}"));
            }
            std::thread::sleep(Duration::from_millis(input.pause_ms));
            let made_ns = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            Ok(Token { index, made_ns: made_ns.as_nanos() })
        })
    }

    #[span]
    fn generate(&self, prompt: &str) -> String {
        std::thread::sleep(self.delay);
        format!("<image of {prompt}>")
    }
}

fn main() -> ExitCode {
    traced::serve::<Worker>()
}
