//! One thread making spans as fast as it can for a while, under roots of
//! 1024, into traced with its default settings; prints what was made, what
//! was delivered, what was dropped, and the CPU time traced's own threads
//! spent per span (Linux: from each thread's schedstat).
//!
//! `sustained [SPANS]` exports to an in-process sink that counts and drops;
//! `sustained SPANS otlp` exports over OTLP as the OTEL_* variables say (the
//! default: http/protobuf to localhost:4318), counting what the receiver
//! took.

use std::hint::black_box;
use std::time::{Duration, Instant};

use opentelemetry::trace::{TraceContextExt as _, Tracer as _};
use traced_benches::{Discard, Sampling, traced_stack};

#[traced::span(args)]
fn stage(steps: u64, model: &'static str) -> u64 {
    black_box(steps + model.len() as u64)
}

fn main() {
    let total: u64 = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(1_000_000);
    let otlp = std::env::args().nth(2).is_some_and(|mode| mode == "otlp");
    let sink = Discard::default();
    let guard = if otlp {
        traced::init(traced::Config::default().service_name("bench"))
    } else {
        traced_stack(Sampling::All, sink.clone())
    };
    let delivered = || if otlp { traced::stats().exported } else { sink.received() };
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
    let settled = Instant::now();
    // What is left waits no schedule delay.
    traced::flush(Duration::from_secs(10));
    while delivered() + traced::stats().dropped() < made && settled.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let delivering = settled.elapsed() + making;
    let export_cpu = cpu_of_threads(|name| name.starts_with("traced-"));
    let delivered = delivered();
    let report = guard.shutdown();
    println!(
        "{made} spans made in {making:.2?} ({:.0} ns each), {delivered} delivered in {delivering:.2?} \
         ({:.0} k/s), {} dropped; traced's threads on CPU {:.0} ns per delivered span; {report}",
        making.as_nanos() as f64 / made as f64,
        delivered as f64 / delivering.as_secs_f64() / 1000.0,
        made - delivered,
        export_cpu.as_nanos() as f64 / delivered.max(1) as f64,
    );
}

/// CPU time so far of this process's threads whose name `matches`.
fn cpu_of_threads(matches: impl Fn(&str) -> bool) -> Duration {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return Duration::ZERO };
    let mut nanos = 0;
    for task in tasks.flatten() {
        let path = task.path();
        let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if !matches(name.trim()) {
            continue;
        }
        let schedstat = std::fs::read_to_string(path.join("schedstat")).unwrap_or_default();
        nanos += schedstat.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
    }
    Duration::from_nanos(nanos)
}
