//! `image-pipeline`: checks and enriches a prompt, then calls an inference
//! worker over HTTP. The worker continues the pipeline's trace, so one trace
//! shows both services:
//!
//! ```text
//! image-pipeline                 (image-pipeline)
//! ├── preprocess-prompt
//! └── call-inference-worker
//!     └── POST                   (client span; its context travels)
//!         └── text-to-image      (the worker, another service)
//! ```
//!
//! `POST /stream` relays the worker's streamed tokens as they arrive: the
//! pipeline's endpoint span covers the relay, its client span the worker's
//! stream, and the worker's `stream-tokens` span sits under that, one trace:
//!
//! ```text
//! image-pipeline-stream          (image-pipeline, to the last event)
//! └── POST                       (client span, over the whole stream)
//!     └── stream-tokens          (the worker, to its last event)
//! ```
//!
//! Environment: `WORKER_URL` (default `http://127.0.0.1:8081/`),
//! `PIPELINE_PROPAGATION` = `both` (default), `headers` or `body`, and the
//! usual `HOST`, `PORT` and `OTEL_*`.

use std::process::ExitCode;

use serde::{Deserialize, Serialize};
use traced::{Carrier, Client, ClientError, Propagation, SpanAttributes};

#[derive(Deserialize, SpanAttributes)]
struct PipelineInput {
    #[span_attr(name = "prompt.length", with = str::len)]
    prompt: String,
}

#[derive(Deserialize)]
struct StreamInput {
    tokens: u64,
    #[serde(default)]
    pause_ms: u64,
}

#[derive(Serialize, Deserialize)]
struct PipelineOutput {
    image: serde_json::Value,
    trace_id: Option<String>,
}

/// What the worker takes: the prompt, and the trace context in the body for
/// workers that read it there.
#[derive(Serialize, SpanAttributes)]
struct WorkerInput {
    prompt: String,
    trace_context: Carrier,
}

#[derive(Deserialize)]
struct WorkerOutput {
    image: serde_json::Value,
}

struct ImagePipeline {
    client: Client,
    worker_url: String,
}

#[traced::traced_app(service = "image-pipeline")]
impl ImagePipeline {
    fn setup() -> Result<Self, String> {
        let worker_url = std::env::var("WORKER_URL").unwrap_or_else(|_| "http://127.0.0.1:8081/".to_string());
        let propagation = match std::env::var("PIPELINE_PROPAGATION").as_deref() {
            Ok("headers") => Propagation::Headers,
            Ok("body") => Propagation::Body,
            Ok("both") | Err(_) => Propagation::Both,
            Ok(other) => return Err(format!("PIPELINE_PROPAGATION={other:?}: expected both, headers or body")),
        };
        Ok(ImagePipeline { client: Client::new().propagation(propagation), worker_url })
    }

    #[endpoint("/", name = "image-pipeline")]
    fn run(&self, input: PipelineInput) -> Result<PipelineOutput, ClientError> {
        let prompt = self.preprocess_prompt(&input.prompt);
        let output = self.call_inference_worker(prompt)?;
        Ok(PipelineOutput { image: output.image, trace_id: traced::current_trace_id() })
    }

    /// The worker's tokens, each sent on as it arrives; a worker that cannot
    /// be reached is an error reply before the first event, one that fails
    /// mid-stream an `error` event.
    #[endpoint("/stream", name = "image-pipeline-stream")]
    async fn stream(
        &self,
        input: StreamInput,
    ) -> Result<impl futures_core::Stream<Item = Result<serde_json::Value, ClientError>> + use<>, ClientError> {
        let url = format!("{}/stream", self.worker_url.trim_end_matches('/'));
        let ask = serde_json::json!({ "count": input.tokens, "pause_ms": input.pause_ms });
        self.client.stream(&url, &ask).await
    }

    #[span(name = "preprocess-prompt")]
    fn preprocess_prompt(&self, prompt: &str) -> String {
        let enriched = prompt.split_whitespace().collect::<Vec<_>>().join(" ");
        traced::set_attribute("prompt.words", i64::try_from(enriched.split(' ').count()).unwrap_or(i64::MAX));
        enriched
    }

    #[span(name = "call-inference-worker", attrs(worker.url = self.worker_url.as_str()))]
    fn call_inference_worker(&self, prompt: String) -> Result<WorkerOutput, ClientError> {
        let input = WorkerInput { prompt, trace_context: Carrier::default() };
        self.client.call_carrying_blocking(&self.worker_url, input)
    }
}

fn main() -> ExitCode {
    traced::serve::<ImagePipeline>()
}
