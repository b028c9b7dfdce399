//! A model server's life in miniature, traced with the runtime alone: setup
//! in a startup trace of its own, three requests with a span per stage and an
//! event per denoising step, a failing request, and a bounded flush at exit.
//!
//! `cargo run -p traced --example quickstart` prints each trace as a tree;
//! with `OTEL_EXPORTER_OTLP_ENDPOINT` set it exports over OTLP instead.

use std::time::Duration;

use opentelemetry::trace::{SpanKind, Status, TraceContextExt as _, Tracer as _};
use opentelemetry::{Context, KeyValue};

fn work(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

fn main() {
    let guard = traced::init(traced::Config::default().service_name("text-to-image"));
    let tracer = opentelemetry::global::tracer("quickstart");

    tracer.in_span("setup", |_| {
        tracer.in_span("load-weights", |_| work(20));
        tracer.in_span("warmup", |_| work(10));
    });

    for (prompt, steps) in [("red circle", 4), ("blue square on green", 6), ("", 4)] {
        let root = tracer.span_builder("text-to-image").with_kind(SpanKind::Server).start(&tracer);
        let cx = Context::current_with_span(root);
        let _active = cx.clone().attach();
        cx.span().set_attribute(KeyValue::new("model.name", "tiny-unet"));
        cx.span().set_attribute(KeyValue::new("num_inference_steps", steps));
        cx.span().set_attribute(KeyValue::new("prompt.length", prompt.len() as i64));
        let outcome = tracer.in_span("encode-prompt", |cx| {
            if prompt.is_empty() {
                cx.span().set_status(Status::error("empty prompt"));
                return Err("empty prompt");
            }
            work(2);
            Ok(())
        });
        if let Err(message) = outcome {
            cx.span().add_event("exception", vec![KeyValue::new("exception.message", message)]);
            cx.span().set_status(Status::error(message));
        } else {
            tracer.in_span("inference", |cx| {
                for step in 0..steps {
                    work(5);
                    cx.span().add_event("denoise-step", vec![KeyValue::new("step", step)]);
                }
            });
            tracer.in_span("upload", |_| work(3));
        }
        println!("request {prompt:?}: trace {}", traced::current_trace_id().unwrap_or_default());
    }

    // Explicit for the example; dropping the guard does the same.
    guard.shutdown();
}
