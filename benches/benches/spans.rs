//! What a span costs the annotated fn, for `traced`, for `tracing` with a
//! `tracing-opentelemetry` layer, for the OpenTelemetry SDK by hand, and
//! (`under_root`) for fastrace, each exporting to an in-process sink that
//! counts and drops what it gets. `cargo bench -p traced-benches`; the
//! results table is in BENCHMARKS.md.

use std::hint::black_box;

use opentelemetry::KeyValue;
use opentelemetry::trace::{TraceContextExt as _, Tracer as _};
use opentelemetry_sdk::trace::SdkTracer;
use traced_benches::{
    Discard, Sampling, fastrace_reported, fastrace_reporter, sdk_provider, sdk_tracer, traced_stack, tracing_stack,
};

#[global_allocator]
static ALLOC: divan::AllocProfiler = divan::AllocProfiler::system();

fn main() {
    divan::main();
}

fn work(x: u64) -> u64 {
    black_box(x).wrapping_mul(0x9E37_79B9)
}

#[traced::span]
fn traced_stage(x: u64) -> u64 {
    work(x)
}

#[traced::span(args)]
fn traced_stage_with_args(steps: u64, model: &str) -> u64 {
    work(steps + model.len() as u64)
}

#[traced::span]
fn traced_failing(x: u64) -> Result<u64, std::io::Error> {
    Err(std::io::Error::other(format!("out of memory at {}", work(x))))
}

#[traced::span]
fn traced_request(x: u64) -> u64 {
    traced_stage(x) ^ traced_stage(x + 1) ^ traced_stage(x + 2) ^ traced_stage(x + 3)
}

#[tracing::instrument(skip_all)]
fn tracing_stage(x: u64) -> u64 {
    work(x)
}

#[tracing::instrument]
fn tracing_stage_with_args(steps: u64, model: &str) -> u64 {
    work(steps + model.len() as u64)
}

#[tracing::instrument(skip_all, err)]
fn tracing_failing(x: u64) -> Result<u64, std::io::Error> {
    Err(std::io::Error::other(format!("out of memory at {}", work(x))))
}

#[tracing::instrument(skip_all)]
fn tracing_request(x: u64) -> u64 {
    tracing_stage(x) ^ tracing_stage(x + 1) ^ tracing_stage(x + 2) ^ tracing_stage(x + 3)
}

fn sdk_stage(tracer: &SdkTracer, x: u64) -> u64 {
    tracer.in_span("sdk_stage", |_| work(x))
}

/// Runs `body` under `traced` installed with `sampling`, then shuts it down.
fn under_traced(sampling: Sampling, bencher: divan::Bencher, body: impl Fn() -> u64) {
    let guard = traced_stack(sampling, Discard::default());
    bencher.bench_local(body);
    drop(guard);
}

/// Runs `body` under `tracing` + `tracing-opentelemetry` with `sampling`.
fn under_tracing(sampling: Sampling, bencher: divan::Bencher, body: impl Fn() -> u64) {
    let provider = sdk_provider(sampling, Discard::default());
    let subscriber = tracing_stack(&provider);
    bencher.bench_local(body);
    drop(subscriber);
    let _ = provider.shutdown();
}

/// Runs `body` with the SDK's tracer by hand, with `sampling`.
fn under_sdk(sampling: Sampling, bencher: divan::Bencher, body: impl Fn(&SdkTracer) -> u64) {
    let provider = sdk_provider(sampling, Discard::default());
    let tracer = sdk_tracer(&provider);
    bencher.bench_local(|| body(&tracer));
    let _ = provider.shutdown();
}

/// Nothing installed: `traced` before `init` or with `ENABLE_TRACING=false`,
/// `tracing` without a subscriber.
mod off {
    use super::*;

    #[divan::bench]
    fn bare(bencher: divan::Bencher) {
        bencher.bench_local(|| work(black_box(1)));
    }

    #[divan::bench]
    fn traced(bencher: divan::Bencher) {
        assert!(!::traced::is_enabled());
        bencher.bench_local(|| traced_stage(black_box(1)));
    }

    #[divan::bench]
    fn tracing(bencher: divan::Bencher) {
        bencher.bench_local(|| tracing_stage(black_box(1)));
    }
}

/// A head sampler that keeps nothing: the span is decided against and dropped.
#[divan::bench_group(sample_count = 200, sample_size = 64)]
mod unsampled {
    use super::*;

    #[divan::bench]
    fn traced(bencher: divan::Bencher) {
        under_traced(Sampling::None, bencher, || traced_stage(black_box(1)));
    }

    #[divan::bench]
    fn traced_child(bencher: divan::Bencher) {
        under_traced(Sampling::None, bencher, || traced_request(black_box(1)));
    }

    #[divan::bench]
    fn tracing(bencher: divan::Bencher) {
        under_tracing(Sampling::None, bencher, || tracing_stage(black_box(1)));
    }

    #[divan::bench]
    fn sdk(bencher: divan::Bencher) {
        under_sdk(Sampling::None, bencher, |tracer| sdk_stage(tracer, black_box(1)));
    }
}

/// Every span recorded and handed to the exporter.
#[divan::bench_group(sample_count = 200, sample_size = 64)]
mod sampled {
    use super::*;

    #[divan::bench]
    fn traced(bencher: divan::Bencher) {
        under_traced(Sampling::All, bencher, || traced_stage(black_box(1)));
    }

    #[divan::bench]
    fn tracing(bencher: divan::Bencher) {
        under_tracing(Sampling::All, bencher, || tracing_stage(black_box(1)));
    }

    #[divan::bench]
    fn sdk(bencher: divan::Bencher) {
        under_sdk(Sampling::All, bencher, |tracer| sdk_stage(tracer, black_box(1)));
    }
}

/// Two arguments captured as attributes, a number and a string.
#[divan::bench_group(sample_count = 200, sample_size = 64)]
mod two_attributes {
    use super::*;

    #[divan::bench]
    fn traced(bencher: divan::Bencher) {
        under_traced(Sampling::All, bencher, || traced_stage_with_args(black_box(20), black_box("tiny-unet")));
    }

    #[divan::bench]
    fn tracing(bencher: divan::Bencher) {
        under_tracing(Sampling::All, bencher, || tracing_stage_with_args(black_box(20), black_box("tiny-unet")));
    }

    #[divan::bench]
    fn sdk(bencher: divan::Bencher) {
        under_sdk(Sampling::All, bencher, |tracer| {
            let (steps, model) = (black_box(20u64), black_box("tiny-unet"));
            let span = tracer
                .span_builder("sdk_stage_with_args")
                .with_attributes([
                    KeyValue::new("steps", i64::try_from(steps).unwrap_or(i64::MAX)),
                    KeyValue::new("model", model.to_string()),
                ])
                .start(tracer);
            let cx = opentelemetry::Context::current_with_span(span);
            let _attached = cx.attach();
            work(steps + model.len() as u64)
        });
    }
}

/// An `Err` return recorded as status and an `exception` event.
#[divan::bench_group(sample_count = 200, sample_size = 64)]
mod error {
    use super::*;

    #[divan::bench]
    fn traced(bencher: divan::Bencher) {
        under_traced(Sampling::All, bencher, || traced_failing(black_box(1)).unwrap_or(0));
    }

    #[divan::bench]
    fn tracing(bencher: divan::Bencher) {
        under_tracing(Sampling::All, bencher, || tracing_failing(black_box(1)).unwrap_or(0));
    }
}

/// A request span with four stage spans inside: the shape of one inference.
#[divan::bench_group(sample_count = 200, sample_size = 64)]
mod request {
    use super::*;

    #[divan::bench]
    fn traced(bencher: divan::Bencher) {
        under_traced(Sampling::All, bencher, || traced_request(black_box(1)));
    }

    #[divan::bench]
    fn tracing(bencher: divan::Bencher) {
        under_tracing(Sampling::All, bencher, || tracing_request(black_box(1)));
    }

    #[divan::bench]
    fn sdk(bencher: divan::Bencher) {
        under_sdk(Sampling::All, bencher, |tracer| {
            tracer.in_span("sdk_request", |_| {
                let x = black_box(1);
                sdk_stage(tracer, x) ^ sdk_stage(tracer, x + 1) ^ sdk_stage(tracer, x + 2) ^ sdk_stage(tracer, x + 3)
            })
        });
    }
}

/// The case: a fn with two attributes (an `i64` and a `&'static str`)
/// under a root span, as a request's stages run. Each column starts a new
/// root every 1024 calls (fastrace keeps at most 10240 spans under one local
/// parent), and prints how many spans it made and how many reached its sink.
#[divan::bench_group(sample_count = 200, sample_size = 64)]
mod under_root {
    use std::cell::{Cell, RefCell};

    use super::*;

    const CALLS_PER_ROOT: u64 = 1024;

    #[traced::span(args)]
    fn traced_stage(steps: u64, model: &'static str) -> u64 {
        work(steps + model.len() as u64)
    }

    #[fastrace::trace(properties = { "steps": "{steps}", "model": "{model}" })]
    fn fastrace_stage(steps: u64, model: &'static str) -> u64 {
        work(steps + model.len() as u64)
    }

    #[tracing::instrument]
    fn tracing_stage(steps: u64, model: &'static str) -> u64 {
        work(steps + model.len() as u64)
    }

    /// Runs `body` under roots from `start_root`, a new one every
    /// `CALLS_PER_ROOT` calls; returns the spans made, roots included.
    fn under_roots<G>(bencher: divan::Bencher, start_root: impl Fn() -> G, body: impl Fn() -> u64) -> u64 {
        let calls = Cell::new(0_u64);
        let roots = Cell::new(1_u64);
        let root = RefCell::new(Some(start_root()));
        bencher.bench_local(|| {
            let n = calls.get() + 1;
            calls.set(n);
            if n.is_multiple_of(CALLS_PER_ROOT) {
                root.replace(None);
                root.replace(Some(start_root()));
                roots.set(roots.get() + 1);
            }
            body()
        });
        drop(root.replace(None));
        calls.get() + roots.get()
    }

    fn report(column: &str, made: u64, delivered: u64) {
        eprintln!(
            "under_root/{column}: {made} spans made, {delivered} delivered, {} dropped",
            made.saturating_sub(delivered)
        );
    }

    fn otel_root(
        tracer: &impl opentelemetry::trace::Tracer<Span: Send + Sync + 'static>,
    ) -> opentelemetry::ContextGuard {
        opentelemetry::Context::current_with_span(tracer.start("root")).attach()
    }

    #[divan::bench]
    fn traced(bencher: divan::Bencher) {
        let sink = Discard::default();
        let guard = traced_stack(Sampling::All, sink.clone());
        let tracer = opentelemetry::global::tracer("bench");
        let made = under_roots(bencher, || otel_root(&tracer), || traced_stage(black_box(20), black_box("tiny-unet")));
        drop(guard.shutdown());
        report("traced", made, sink.received());
    }

    #[divan::bench]
    fn sdk(bencher: divan::Bencher) {
        let sink = Discard::default();
        let provider = sdk_provider(Sampling::All, sink.clone());
        let tracer = sdk_tracer(&provider);
        let made = under_roots(
            bencher,
            || otel_root(&tracer),
            || {
                let (steps, model) = (black_box(20_u64), black_box("tiny-unet"));
                let span = tracer
                    .span_builder("sdk_stage")
                    .with_attributes([
                        KeyValue::new("steps", i64::try_from(steps).unwrap_or(i64::MAX)),
                        KeyValue::new("model", model),
                    ])
                    .start(&tracer);
                let _attached = opentelemetry::Context::current_with_span(span).attach();
                work(steps + model.len() as u64)
            },
        );
        let _ = provider.shutdown();
        report("sdk", made, sink.received());
    }

    struct FastraceRoot {
        // Dropped first: the guard before its span.
        _parent: fastrace::local::LocalParentGuard,
        _root: fastrace::Span,
    }

    #[divan::bench]
    fn fastrace(bencher: divan::Bencher) {
        let before = fastrace_reporter();
        let start_root = || {
            let root = fastrace::Span::root("root", fastrace::collector::SpanContext::random());
            FastraceRoot { _parent: root.set_local_parent(), _root: root }
        };
        let made = under_roots(bencher, start_root, || fastrace_stage(black_box(20), black_box("tiny-unet")));
        report("fastrace", made, fastrace_reported() - before);
    }

    #[divan::bench]
    fn tracing(bencher: divan::Bencher) {
        let sink = Discard::default();
        let provider = sdk_provider(Sampling::All, sink.clone());
        let subscriber = tracing_stack(&provider);
        let made = under_roots(
            bencher,
            || ::tracing::info_span!("root").entered(),
            || tracing_stage(black_box(20), black_box("tiny-unet")),
        );
        drop(subscriber);
        let _ = provider.shutdown();
        report("tracing", made, sink.received());
    }
}
