//! A model server in miniature, traced by annotation: setup (with its warmup)
//! in a startup trace of its own, requests with a span per stage and an event
//! per denoising step, a failing request, and the flush at teardown.
//!
//! `cargo run -p traced --example quickstart` prints each trace as a tree;
//! with `OTEL_EXPORTER_OTLP_ENDPOINT` set it exports over OTLP instead.

use std::time::Duration;

use traced::SpanAttributes;

#[derive(SpanAttributes, serde::Deserialize)]
struct Request {
    // The prompt itself never leaves the process: only its length.
    #[span_attr(name = "prompt.length", with = str::len)]
    prompt: String,
    #[span_attr]
    num_inference_steps: u32,
}

#[derive(Debug)]
struct EmptyPrompt;

impl std::fmt::Display for EmptyPrompt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the prompt is empty")
    }
}

impl std::error::Error for EmptyPrompt {}

struct TextToImage {
    model: &'static str,
}

fn work(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

#[traced::traced_app(service = "text-to-image")]
impl TextToImage {
    fn setup() -> Result<Self, EmptyPrompt> {
        let app = TextToImage { model: "tiny-unet" };
        app.load_weights();
        app.warmup();
        Ok(app)
    }

    #[span(name = "load-weights")]
    fn load_weights(&self) {
        work(20);
    }

    #[span]
    fn warmup(&self) {
        work(10);
    }

    #[endpoint("/", name = "text-to-image", attrs(model.name = self.model))]
    fn run(&self, input: Request) -> Result<String, EmptyPrompt> {
        let embedding = self.encode_prompt(&input.prompt)?;
        let latents = self.inference(embedding, input.num_inference_steps);
        self.upload(latents);
        Ok(traced::current_trace_id().unwrap_or_default())
    }

    #[span(name = "encode-prompt")]
    fn encode_prompt(&self, prompt: &str) -> Result<usize, EmptyPrompt> {
        if prompt.trim().is_empty() {
            return Err(EmptyPrompt);
        }
        work(2);
        Ok(prompt.len())
    }

    #[span(args(steps))]
    fn inference(&self, embedding: usize, steps: u32) -> usize {
        for step in 0..steps {
            work(5);
            traced::add_event("denoise-step", [("step", i64::from(step))]);
        }
        embedding * 2
    }

    #[span]
    fn upload(&self, latents: usize) {
        work(3);
        traced::set_attribute("image.bytes", i64::try_from(latents).unwrap_or(i64::MAX));
    }

    fn teardown(&mut self) {
        work(1);
    }
}

fn main() {
    let mut app = match TextToImage::setup() {
        Ok(app) => app,
        Err(error) => {
            eprintln!("setup failed: {error}");
            std::process::exit(1);
        }
    };
    for (prompt, steps) in [("red circle", 4), ("blue square on green", 6), ("  ", 4)] {
        let request = Request { prompt: prompt.to_string(), num_inference_steps: steps };
        match app.run(request) {
            Ok(trace_id) => println!("request {prompt:?}: trace {trace_id}"),
            Err(error) => println!("request {prompt:?}: failed: {error}"),
        }
    }
    app.teardown();
}
