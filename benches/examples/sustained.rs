//! One thread making spans as fast as it can for a while, under roots of
//! 1024, into traced with its default settings; prints what was made, what
//! was delivered, what was dropped, and the CPU time traced's own threads
//! spent per span (Linux: from each thread's schedstat).
//!
//! `sustained [SPANS]` exports to an in-process `SpanExporter` that counts
//! and drops; `sustained SPANS otlp` exports over OTLP as the OTEL_*
//! variables say (the default: http/protobuf to localhost:4318), counting
//! what the receiver took; `sustained SPANS sink` exports over OTLP
//! http/protobuf to an HTTP server in this process that reads each request
//! and answers at once (traced's side of OTLP, no receiver's decoding);
//! `sustained SPANS fastrace` makes the same spans with `#[fastrace::trace]`
//! into fastrace's reporter that counts, for comparison.

use std::hint::black_box;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use opentelemetry::trace::{TraceContextExt as _, Tracer as _};
use traced_benches::{Discard, Sampling, fastrace_reported, fastrace_reporter, traced_stack};

#[traced::span(args)]
fn stage(steps: u64, model: &'static str) -> u64 {
    black_box(steps + model.len() as u64)
}

#[fastrace::trace(properties = { "steps": "{steps}", "model": "{model}" })]
fn fastrace_stage(steps: u64, model: &'static str) -> u64 {
    black_box(steps + model.len() as u64)
}

fn main() {
    let total: u64 = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(1_000_000);
    let mode = std::env::args().nth(2).unwrap_or_default();
    if mode == "fastrace" {
        return fastrace_run(total);
    }
    let otlp = mode == "otlp" || mode == "sink";
    let sink = Discard::default();
    let guard = match mode.as_str() {
        "otlp" => traced::init(traced::Config::default().service_name("bench")),
        "sink" => traced::init(
            traced::Config::default()
                .service_name("bench")
                .otlp_endpoint(start_http_sink())
                .otlp_protocol(traced::Protocol::HttpProtobuf)
                .exporters([traced::ExporterKind::Otlp])
                .with_env_from(|_| None),
        ),
        _ => traced_stack(Sampling::All, sink.clone()),
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

/// The same loop through fastrace: a root every 1024 spans, its reporter
/// counting what it is given.
fn fastrace_run(total: u64) {
    let before = fastrace_reporter();
    let started = Instant::now();
    let mut made = 0;
    while made < total {
        let root = fastrace::Span::root("root", fastrace::collector::SpanContext::random());
        let parent = root.set_local_parent();
        made += 1;
        for _ in 0..1023 {
            black_box(fastrace_stage(black_box(20), black_box("tiny-unet")));
        }
        made += 1023;
        drop(parent);
        drop(root);
    }
    let making = started.elapsed();
    let delivered = fastrace_reported() - before;
    let delivering = started.elapsed();
    let cpu = cpu_of_threads(|name| name.starts_with("fastrace"));
    println!(
        "fastrace: {made} spans made in {making:.2?} ({:.0} ns each), {delivered} delivered in {delivering:.2?}, \
         {} dropped; fastrace's threads on CPU {:.0} ns per delivered span",
        making.as_nanos() as f64 / made as f64,
        made - delivered,
        cpu.as_nanos() as f64 / delivered.max(1) as f64,
    );
}

/// An HTTP/1.1 server on a free loopback port that reads every request and
/// answers 200 with an empty body; returns its OTLP traces URL.
fn start_http_sink() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let url = format!("http://{}/v1/traces", listener.local_addr().expect("its address"));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = answer_requests(stream);
            });
        }
    });
    url
}

fn answer_requests(stream: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let mut body = Vec::new();
    loop {
        let mut length = 0;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let line = line.trim_end().to_ascii_lowercase();
            if line.is_empty() {
                break;
            }
            if let Some(value) = line.strip_prefix("content-length:") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        body.resize(length, 0);
        reader.read_exact(&mut body)?;
        writer.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n")?;
    }
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
