//! One thread making spans as fast as it can for a while, under roots of
//! 1024, into traced with its default settings; prints what was made, what
//! the sink got and what was dropped.

use std::hint::black_box;
use std::time::Instant;

use opentelemetry::trace::{TraceContextExt as _, Tracer as _};
use traced_benches::{Discard, Sampling, traced_stack};

#[traced::span(args)]
fn stage(steps: u64, model: &'static str) -> u64 {
    black_box(steps + model.len() as u64)
}

fn main() {
    let total: u64 = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(1_000_000);
    let sink = Discard::default();
    let guard = traced_stack(Sampling::All, sink.clone());
    let tracer = opentelemetry::global::tracer("bench");
    let started = Instant::now();
    let mut made = 0;
    while made < total {
        let _root = opentelemetry::Context::current_with_span(tracer.start("root")).attach();
        made += 1;
        for _ in 0..1023 {
            black_box(stage(black_box(20), black_box("tiny-unet")));
        }
        made += 1023;
    }
    let making = started.elapsed();
    let report = guard.shutdown();
    println!(
        "{made} spans made in {making:.2?} ({:.0} ns each), {} delivered, {} dropped; {report}",
        making.as_nanos() as f64 / made as f64,
        sink.received(),
        made - sink.received()
    );
}
