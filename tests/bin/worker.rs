//! A text-to-image worker for the integration tests: it reads the caller's
//! context from the headers or from the body's `trace_context`, runs a
//! `generate` stage (`WORKER_DELAY_MS` long, default 0), and answers.
//! `WORKER_FAIL_SETUP=reason` makes its setup fail.

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

struct Worker {
    delay: Duration,
}

#[traced::traced_app(service = "text-to-image-worker")]
impl Worker {
    fn setup() -> Result<Self, String> {
        if let Ok(reason) = std::env::var("WORKER_FAIL_SETUP") {
            return Err(format!("weights not found: {reason}"));
        }
        let delay = std::env::var("WORKER_DELAY_MS").ok().and_then(|ms| ms.parse().ok()).unwrap_or(0);
        Ok(Worker { delay: Duration::from_millis(delay) })
    }

    #[endpoint("/", name = "text-to-image")]
    fn run(&self, input: WorkerInput) -> WorkerOutput {
        let image = self.generate(&input.prompt);
        WorkerOutput { image, trace_id: traced::current_trace_id() }
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
