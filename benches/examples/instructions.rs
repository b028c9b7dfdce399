//! The caller-thread cost of one span, counted in instructions rather than
//! time: `instructions COLUMN N` makes N calls of the `under_root` bench's fn
//! (two attributes, a new root every 1024 calls) for one column: `bare` (the
//! fn's work inlined), `plain` (the fn without a span, a real call),
//! `traced-off`, `traced-unsampled`, `traced`, `fastrace`, `sdk`. The
//! `-root` columns make every call a new trace instead (no parent):
//! `traced-root`, `traced-root-dropped` (head sampling drops every new
//! trace), `fastrace-root` (a root span per call, as fastrace makes one).
//! `scripts/bench-instructions.sh` runs each under callgrind and divides the
//! calling thread's count inside the loop by N.

use std::hint::black_box;

use opentelemetry::KeyValue;
use opentelemetry::trace::{TraceContextExt as _, Tracer as _};
use traced_benches::{Discard, Sampling, fastrace_reported, fastrace_reporter, sdk_provider, sdk_tracer, traced_stack};

const CALLS_PER_ROOT: u64 = 1024;

fn work(steps: u64, model: &str) -> u64 {
    black_box(steps + model.len() as u64)
}

/// The same fn without a span, kept a call like the annotated ones.
#[inline(never)]
fn plain_stage(steps: u64, model: &'static str) -> u64 {
    work(steps, model)
}

#[traced::span(args)]
fn traced_stage(steps: u64, model: &'static str) -> u64 {
    work(steps, model)
}

#[fastrace::trace(properties = { "steps": "{steps}", "model": "{model}" })]
fn fastrace_stage(steps: u64, model: &'static str) -> u64 {
    work(steps, model)
}

#[inline(never)]
fn in_roots<G>(calls: u64, root: impl Fn() -> G, body: impl Fn() -> u64) {
    let mut made = 0;
    while made < calls {
        let _root = root();
        for _ in 0..CALLS_PER_ROOT.min(calls - made) {
            black_box(body());
        }
        made += CALLS_PER_ROOT;
    }
}

fn otel_root(tracer: &impl opentelemetry::trace::Tracer<Span: Send + Sync + 'static>) -> opentelemetry::ContextGuard {
    opentelemetry::Context::current_with_span(tracer.start("root")).attach()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let column = args.next().unwrap_or_else(|| "traced".into());
    let calls: u64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(100_000);
    let (steps, model) = (black_box(20_u64), black_box("tiny-unet"));
    match column.as_str() {
        "bare" => in_roots(calls, || (), || work(steps, model)),
        "plain" => in_roots(calls, || (), || plain_stage(steps, model)),
        "traced-off" => in_roots(calls, || (), || traced_stage(steps, model)),
        "traced" | "traced-unsampled" => {
            let sampling = if column == "traced" { Sampling::All } else { Sampling::None };
            let guard = traced_stack(sampling, Discard::default());
            let tracer = opentelemetry::global::tracer("bench");
            in_roots(calls, || otel_root(&tracer), || traced_stage(steps, model));
            drop(guard.shutdown());
        }
        "traced-root" | "traced-root-dropped" => {
            let sampling = if column == "traced-root" { Sampling::All } else { Sampling::None };
            let guard = traced_stack(sampling, Discard::default());
            in_roots(calls, || (), || traced_stage(steps, model));
            drop(guard.shutdown());
        }
        "fastrace-root" => {
            fastrace_reporter();
            in_roots(
                calls,
                || (),
                || {
                    let root = fastrace::Span::root("fastrace_stage", fastrace::collector::SpanContext::random())
                        .with_properties(|| [("steps", steps.to_string()), ("model", model.to_string())]);
                    let _parent = root.set_local_parent();
                    work(steps, model)
                },
            );
            eprintln!("fastrace reported {}", fastrace_reported());
        }
        "fastrace" => {
            fastrace_reporter();
            in_roots(
                calls,
                || {
                    let root = fastrace::Span::root("root", fastrace::collector::SpanContext::random());
                    let parent = root.set_local_parent();
                    (parent, root)
                },
                || fastrace_stage(steps, model),
            );
            eprintln!("fastrace reported {}", fastrace_reported());
        }
        "sdk" => {
            let provider = sdk_provider(Sampling::All, Discard::default());
            let tracer = sdk_tracer(&provider);
            in_roots(
                calls,
                || otel_root(&tracer),
                || {
                    let span = tracer
                        .span_builder("sdk_stage")
                        .with_attributes([KeyValue::new("steps", 20_i64), KeyValue::new("model", model)])
                        .start(&tracer);
                    let _attached = opentelemetry::Context::current_with_span(span).attach();
                    work(steps, model)
                },
            );
            let _ = provider.shutdown();
        }
        other => panic!("unknown column {other}"),
    }
}
