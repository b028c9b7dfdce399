//! The request instruments, recorded for every request a
//! [`crate::TraceLayer`] sees (every `traced::serve` endpoint included),
//! before sampling: the counts are exact whatever share of traces is kept,
//! and a sampled request leaves its trace as the exemplar of its bucket.
//!
//! - `http.server.request.duration`, by method, route template, status
//!   code and error type;
//! - for a GenAI request (its endpoint has an `ai_kind`, or its span a
//!   `GenAiRequest`), `gen_ai.server.request.duration` and, for a streamed
//!   answer that succeeded, `gen_ai.server.time_to_first_token`, by
//!   operation, model and error type.
//!
//! A route is a template, never a raw path (a request no route matched has
//! none), and past [`MAX_SERIES`] series of one instrument further ones go
//! to one overflow series, as the OpenTelemetry specification's cardinality
//! limit has it: a scan of random URLs cannot grow memory.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, PoisonError, RwLock};

use opentelemetry::trace::{SpanId, TraceId};

use crate::metrics::histogram::{DURATION_BOUNDS, GEN_AI_DURATION_BOUNDS, Histogram, Snapshot, TTFT_BOUNDS};

/// Series before the overflow series takes the rest (the OpenTelemetry
/// SDK's default cardinality limit).
pub(crate) const MAX_SERIES: usize = 2000;

/// What tells one series from another.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(
    not(feature = "serve"),
    expect(dead_code, reason = "request series are recorded by the serve layer's requests")
)]
pub(crate) enum SeriesKey {
    Request {
        method: Cow<'static, str>,
        route: Option<Cow<'static, str>>,
        status: u16,
        error_type: Option<Cow<'static, str>>,
    },
    GenAi {
        operation: &'static str,
        model: Option<String>,
        error_type: Option<Cow<'static, str>>,
    },
    /// A `#[span(metrics)]` stage, by its span's name.
    Stage {
        name: &'static str,
    },
    /// Every series past the limit.
    Overflow,
}

/// One histogram instrument, by series.
#[derive(Debug)]
pub(crate) struct Family {
    /// Its Prometheus name.
    pub(crate) name: &'static str,
    /// Its OpenTelemetry name.
    pub(crate) otel_name: &'static str,
    pub(crate) help: &'static str,
    bounds: &'static [f64],
    series: RwLock<HashMap<SeriesKey, Arc<Histogram>, BuildHasherDefault<QuickHasher>>>,
}

/// A multiply-rotate hasher for the series keys: SipHash's resistance to
/// chosen keys is not needed where keys are route templates, status codes
/// and a bounded count of series, and it cost a request a measurable part
/// of its metrics.
#[derive(Default)]
pub(crate) struct QuickHasher(u64);

impl Hasher for QuickHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_u8(&mut self, byte: u8) {
        self.write_u64(u64::from(byte));
    }

    fn write_u16(&mut self, value: u16) {
        self.write_u64(u64::from(value));
    }

    fn write_usize(&mut self, value: usize) {
        self.write_u64(value as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl Family {
    pub(crate) fn new(otel_name: &'static str, name: &'static str, help: &'static str, bounds: &'static [f64]) -> Self {
        Family { name, otel_name, help, bounds, series: RwLock::new(HashMap::default()) }
    }

    /// Records `seconds` in its series.
    pub(crate) fn record(&self, key: SeriesKey, seconds: f64, exemplar: Option<(TraceId, SpanId)>) {
        let found = self.series.read().unwrap_or_else(PoisonError::into_inner).get(&key).cloned();
        let histogram = found.unwrap_or_else(|| {
            let mut series = self.series.write().unwrap_or_else(PoisonError::into_inner);
            let key = if series.len() >= MAX_SERIES && !series.contains_key(&key) { SeriesKey::Overflow } else { key };
            Arc::clone(series.entry(key).or_insert_with(|| Arc::new(Histogram::new(self.bounds))))
        });
        histogram.record(seconds, exemplar);
    }

    /// Every series, read now, in a stable order.
    pub(crate) fn snapshot(&self) -> Vec<(SeriesKey, Snapshot)> {
        let series = self.series.read().unwrap_or_else(PoisonError::into_inner);
        let mut read: Vec<(SeriesKey, Snapshot)> =
            series.iter().map(|(key, histogram)| (key.clone(), histogram.snapshot())).collect();
        read.sort_by(|(a, _), (b, _)| sort_key(a).cmp(&sort_key(b)));
        read
    }
}

fn sort_key(key: &SeriesKey) -> (u8, &str, &str, u16, &str) {
    match key {
        SeriesKey::Request { method, route, status, error_type } => {
            (0, route.as_deref().unwrap_or(""), method, *status, error_type.as_deref().unwrap_or(""))
        }
        SeriesKey::GenAi { operation, model, error_type } => {
            (0, operation, model.as_deref().unwrap_or(""), 0, error_type.as_deref().unwrap_or(""))
        }
        SeriesKey::Stage { name } => (0, name, "", 0, ""),
        SeriesKey::Overflow => (1, "", "", 0, ""),
    }
}

pub(crate) static HTTP_DURATION: LazyLock<Family> = LazyLock::new(|| {
    Family::new(
        "http.server.request.duration",
        "http_server_request_duration_seconds",
        "Duration of HTTP server requests.",
        DURATION_BOUNDS,
    )
});
pub(crate) static GEN_AI_DURATION: LazyLock<Family> = LazyLock::new(|| {
    Family::new(
        "gen_ai.server.request.duration",
        "gen_ai_server_request_duration_seconds",
        "Generative AI server request duration, to the last byte of the answer.",
        GEN_AI_DURATION_BOUNDS,
    )
});
pub(crate) static GEN_AI_TIME_TO_FIRST_TOKEN: LazyLock<Family> = LazyLock::new(|| {
    Family::new(
        "gen_ai.server.time_to_first_token",
        "gen_ai_server_time_to_first_token_seconds",
        "Time to the first item of a successful streamed answer.",
        TTFT_BOUNDS,
    )
});

pub(crate) static STAGE_DURATION: LazyLock<Family> = LazyLock::new(|| {
    Family::new(
        "traced.stage.duration",
        "traced_stage_duration_seconds",
        "Duration of the calls of a stage annotated #[span(metrics)].",
        DURATION_BOUNDS,
    )
});

/// traced's instruments, in the order a scrape lists them.
pub(crate) fn families() -> [&'static Family; 4] {
    [&HTTP_DURATION, &GEN_AI_DURATION, &GEN_AI_TIME_TO_FIRST_TOKEN, &STAGE_DURATION]
}

/// Where `#[span(metrics)]` stages' durations go.
pub(crate) fn record_stage(name: &'static str, took: std::time::Duration) {
    if is_recording() {
        STAGE_DURATION.record(SeriesKey::Stage { name }, took.as_secs_f64(), None);
    }
}

/// Off when the configuration turned the metrics off.
static RECORDING: AtomicBool = AtomicBool::new(true);

/// Turns the recording of request metrics on or off.
pub(crate) fn set_recording(on: bool) {
    RECORDING.store(on, Ordering::Relaxed);
}

pub(crate) fn is_recording() -> bool {
    RECORDING.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(route: String, status: u16) -> SeriesKey {
        SeriesKey::Request { method: "GET".into(), route: Some(route.into()), status, error_type: None }
    }

    fn family() -> Family {
        Family::new("test", "test_seconds", "A test family.", DURATION_BOUNDS)
    }

    #[test]
    fn series_past_the_limit_share_one_overflow_series() {
        let family = family();
        for i in 0..MAX_SERIES + 500 {
            family.record(key(format!("/scan/{i}"), 404), 0.001, None);
        }
        let read = family.snapshot();
        assert_eq!(read.len(), MAX_SERIES + 1, "the limit, and one overflow series");
        let (last, overflow) = read.last().unwrap();
        assert_eq!(*last, SeriesKey::Overflow);
        assert_eq!(overflow.count(), 500);
        family.record(key("/scan/0".into(), 404), 0.001, None);
        assert_eq!(family.snapshot()[0].1.count(), 2, "a series kept before the limit goes on");
    }
}
