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
    // What arrived before the last, partial batch (it waits for the
    // schedule delay): the end-to-end rate of the burst.
    let mut before_the_delay = (Duration::ZERO, 0);
    let mut counted = 0;
    while counted < SPANS && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
        let now = receivers.rotel_counted_spans() - before;
        if now > counted && now < SPANS {
            before_the_delay = (started.elapsed(), now);
        }
        counted = now;
    }
    let arrived = started.elapsed();
    let report = guard.shutdown();
    assert_eq!(counted, SPANS, "rotel received {counted} of {SPANS}; {report}");
    assert_eq!(report.stats.dropped(), 0, "{report}");
    assert_eq!(report.stats.exported, SPANS, "{report}");
    let (at, early) = before_the_delay;
    println!(
        "burst: {SPANS} spans made in {made:.2?} ({:.0} spans/s); {early} counted by rotel at {at:.2?} ({:.0} spans/s \
         end to end), the last {} after the schedule delay, at {arrived:.2?}; 0 dropped",
        SPANS as f64 / made.as_secs_f64(),
        early as f64 / at.as_secs_f64().max(f64::EPSILON),
        SPANS - early,
    );
}
