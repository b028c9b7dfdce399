//! What tracing costs a served request: one axum route,
//! `GET /v1/generate/{model}` (a few µs of work, a small JSON answer),
//! served on loopback with one of four setups, each exporting to an
//! in-process sink that counts spans and drops them:
//!
//! - `none`: no tracing;
//! - `traced`: `traced::TraceLayer` over `traced::init` (request metrics
//!   on, as by default); `traced-no-metrics` the same with them off;
//! - `tower-http`: tower-http's `TraceLayer::new_for_http()` under a
//!   `tracing-opentelemetry` layer over the SDK's `BatchSpanProcessor`;
//! - `fastrace`: `fastrace-axum`'s `FastraceLayer` with fastrace's reporter;
//! - `traced-otlp`: `traced::TraceLayer` over `traced::init` configured from
//!   the `OTEL_*` environment alone, exporting to a real receiver
//!   (`scripts/bench-outage.sh`); it prints traced's shutdown report.
//!
//! `served MODE PORT` serves until stdin closes (or reads a line), then
//! prints the spans the sink received. `scripts/bench-served.sh` puts a load
//! generator (`wrk`) in front of each.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::io::BufRead as _;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::Path;
use axum::routing::get;
use traced_benches::{Discard, Sampling, fastrace_reported, fastrace_reporter, sdk_provider, traced_config};

/// Counts the process's allocations, so that a request's can be told apart
/// from noise in the timings.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static REQUESTS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is passed to the system allocator unchanged.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A few µs of work standing in for a cheap model call.
fn generate(model: &str) -> String {
    let mut state = 0x9E37_79B9_7F4A_7C15_u64 ^ model.len() as u64;
    for byte in model.bytes().cycle().take(1024) {
        state = black_box(state.rotate_left(5) ^ u64::from(byte)).wrapping_mul(0x100_0000_01B3);
    }
    format!("{{\"model\":\"{model}\",\"seed\":{state}}}")
}

async fn route(Path(model): Path<String>) -> String {
    REQUESTS.fetch_add(1, Ordering::Relaxed);
    generate(&model)
}

fn app() -> Router {
    Router::new().route("/v1/generate/{model}", get(route))
}

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "none".to_string());
    let port: u16 = std::env::args().nth(2).and_then(|p| p.parse().ok()).unwrap_or(8099);
    let sink = Discard::default();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    let _entered = runtime.enter();
    let (app, received): (Router, Box<dyn Fn() -> u64>) = match mode.as_str() {
        "none" => (app(), Box::new(|| 0)),
        "traced" | "traced-no-metrics" => {
            let config = traced_config(Sampling::All, sink.clone()).metrics(mode == "traced");
            let guard = traced::init(config.with_env_from(|_| None));
            let sink = sink.clone();
            (
                app().layer(traced::TraceLayer::new()),
                Box::new(move || {
                    traced::flush(std::time::Duration::from_secs(10));
                    let _ = &guard;
                    sink.received()
                }),
            )
        }
        "traced-otlp" => {
            let guard = traced::init(traced::Config::default().service_name("bench"));
            (
                app().layer(traced::TraceLayer::new()),
                Box::new(move || {
                    let _ = &guard;
                    traced::shutdown(std::time::Duration::from_secs(5)).stats.exported
                }),
            )
        }
        "tower-http" => {
            use tracing_subscriber::layer::SubscriberExt as _;
            let provider = sdk_provider(Sampling::All, sink.clone());
            let layer = tracing_opentelemetry::layer()
                .with_tracer(opentelemetry::trace::TracerProvider::tracer(&provider, "bench"));
            tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
                .expect("the only subscriber");
            let sink = sink.clone();
            (
                app().layer(tower_http::trace::TraceLayer::new_for_http()),
                Box::new(move || {
                    let _ = provider.force_flush();
                    sink.received()
                }),
            )
        }
        "fastrace" => {
            fastrace_reporter();
            (app().layer(fastrace_axum::FastraceLayer::default()), Box::new(fastrace_reported))
        }
        other => panic!(
            "served: unknown mode {other:?} (none, traced, traced-no-metrics, traced-otlp, tower-http, fastrace)"
        ),
    };
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(("127.0.0.1", port)))
        .unwrap_or_else(|e| panic!("served: cannot listen on 127.0.0.1:{port}: {e}"));
    runtime.spawn(async move { axum::serve(listener, app).await });
    println!("served: {mode} on 127.0.0.1:{port}");
    let _ = std::io::stdin().lock().lines().next();
    let (allocations, requests) = (ALLOCATIONS.load(Ordering::Relaxed), REQUESTS.load(Ordering::Relaxed).max(1));
    let received = received();
    println!("served: {mode}: {:.1} allocations per request", allocations as f64 / requests as f64);
    println!("served: {mode}: spans received {received}");
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let peak = status.lines().find_map(|line| line.strip_prefix("VmHWM:")).map_or("?", str::trim);
    println!("served: {mode}: peak RSS {peak}");
}
