//! A burst of 100 000 spans from one thread, as fast as it can make them,
//! through OTLP/HTTP to rotel with traced's default settings: every span
//! arrives (counted by rotel), none is dropped, and the end-to-end rate is
//! printed (BENCHMARKS.md quotes it).

use std::time::{Duration, Instant};

use traced::{Config, ExporterKind};
use traced_tests::{Receivers, one_provider_at_a_time};

const REQUESTS: u64 = 1000;
const STAGES_PER_REQUEST: u64 = 99;
const SPANS: u64 = REQUESTS * (STAGES_PER_REQUEST + 1);
/// `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`'s default.
const DEFAULT_BATCH: u64 = 512;

#[traced::span(args)]
fn stage(step: u64, model: &'static str) -> u64 {
    std::hint::black_box(step + model.len() as u64)
}

#[traced::span(name = "request", args(id))]
fn request(id: u64) -> u64 {
    (0..STAGES_PER_REQUEST).map(|step| stage(step, "tiny-unet")).sum::<u64>() + id
}

#[test]
fn a_burst_of_100k_spans_reaches_rotel_whole() {
    let _one = one_provider_at_a_time();
    let receivers = Receivers::from_env();
    let before = receivers.rotel_counted_spans();
    let config = Config::default()
        .service_name("burst")
        .otlp_endpoint(&receivers.rotel_counting)
        .exporters([ExporterKind::Otlp])
        .with_env_from(|_| None);
    let guard = traced::init(config);
    let started = Instant::now();
    for id in 0..REQUESTS {
        std::hint::black_box(request(id));
    }
    let made = started.elapsed();
    // The app keeps running, as a server would after a burst: the export
    // thread works through the buffer (the last partial batch waits for the
    // schedule delay, 5 s by default).
    let deadline = Instant::now() + Duration::from_secs(60);
    let in_full_batches = SPANS - SPANS % DEFAULT_BATCH;
    let mut full_batches_at = None;
    let mut counted = 0;
    while counted < SPANS && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        counted = receivers.rotel_counted_spans() - before;
        if counted >= in_full_batches && full_batches_at.is_none() {
            full_batches_at = Some(started.elapsed());
        }
    }
    let arrived = started.elapsed();
    let report = guard.shutdown();
    assert_eq!(counted, SPANS, "rotel received {counted} of {SPANS}; {report}");
    assert_eq!(report.stats.dropped(), 0, "{report}");
    assert_eq!(report.stats.exported, SPANS, "{report}");
    let full_batches_at = full_batches_at.unwrap_or(arrived);
    println!(
        "burst: {SPANS} spans made in {made:.2?} ({:.0} spans/s); the {in_full_batches} in full batches counted by \
         rotel at {full_batches_at:.2?} ({:.0} spans/s end to end), the last {} after the schedule delay, at \
         {arrived:.2?}; 0 dropped",
        SPANS as f64 / made.as_secs_f64(),
        in_full_batches as f64 / full_batches_at.as_secs_f64(),
        SPANS - in_full_batches,
    );
}
