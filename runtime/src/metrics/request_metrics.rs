//! `http.server.request.duration` for every request a [`crate::TraceLayer`]
//! sees (every `traced::serve` endpoint included), recorded before sampling:
//! the counts are exact whatever share of traces is kept, and a sampled
//! request leaves its trace as the exemplar of its bucket.
//!
//! A series per method, route template, status code and error type. A route
//! is a template, never a raw path (a request no route matched has none), and
//! past [`MAX_SERIES`] series further ones go to one overflow series, as the
//! OpenTelemetry specification's cardinality limit has it: a scan of random
//! URLs cannot grow memory.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use opentelemetry::trace::SpanContext;

use crate::metrics::histogram::{DURATION_BOUNDS, Histogram, Snapshot};

/// Series before the overflow series takes the rest (the OpenTelemetry
/// SDK's default cardinality limit).
pub(crate) const MAX_SERIES: usize = 2000;

/// What tells one series from another.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum SeriesKey {
    Request {
        method: Cow<'static, str>,
        route: Option<Cow<'static, str>>,
        status: u16,
        error_type: Option<Cow<'static, str>>,
    },
    /// Every series past the limit.
    Overflow,
}

/// The request duration histogram, by series.
#[derive(Debug, Default)]
pub(crate) struct RequestMetrics {
    series: RwLock<HashMap<SeriesKey, Arc<Histogram>>>,
}

impl RequestMetrics {
    /// Records one request's duration in its series.
    pub(crate) fn record(&self, key: SeriesKey, duration: Duration, sampled: Option<&SpanContext>) {
        let exemplar = sampled.filter(|span| span.is_sampled()).map(|span| (span.trace_id(), span.span_id()));
        let seconds = duration.as_secs_f64();
        let found = self.series.read().unwrap_or_else(PoisonError::into_inner).get(&key).cloned();
        let histogram = found.unwrap_or_else(|| {
            let mut series = self.series.write().unwrap_or_else(PoisonError::into_inner);
            let key = if series.len() >= MAX_SERIES && !series.contains_key(&key) { SeriesKey::Overflow } else { key };
            Arc::clone(series.entry(key).or_insert_with(|| Arc::new(Histogram::new(DURATION_BOUNDS))))
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

fn sort_key(key: &SeriesKey) -> (bool, &str, &str, u16, &str) {
    match key {
        SeriesKey::Request { method, route, status, error_type } => {
            (false, route.as_deref().unwrap_or(""), method, *status, error_type.as_deref().unwrap_or(""))
        }
        SeriesKey::Overflow => (true, "", "", 0, ""),
    }
}

/// One request being measured: what names its series, and when it arrived.
#[derive(Debug)]
pub(crate) struct RequestMeasure {
    pub(crate) method: Cow<'static, str>,
    pub(crate) route: Option<Cow<'static, str>>,
    pub(crate) arrived: Instant,
}

impl RequestMeasure {
    /// Records the request as answered with `status` now; `failed` when it
    /// failed without a status of its own to say so (the service's error,
    /// a body that broke off). `span` is the request's span, the exemplar
    /// when it was sampled.
    pub(crate) fn record(self, status: u16, failed: bool, span: Option<&SpanContext>) {
        if !RECORDING.load(Ordering::Relaxed) {
            return;
        }
        let error_type = if status >= 500 {
            Some(Cow::Owned(status.to_string()))
        } else if failed {
            Some(Cow::Borrowed("_OTHER"))
        } else {
            None
        };
        let key = SeriesKey::Request { method: self.method, route: self.route, status, error_type };
        request_metrics().record(key, self.arrived.elapsed(), span);
    }
}

/// Off when the configuration turned the metrics off.
static RECORDING: AtomicBool = AtomicBool::new(true);

/// Turns the recording of request metrics on or off.
pub(crate) fn set_recording(on: bool) {
    RECORDING.store(on, Ordering::Relaxed);
}

/// The process's request metrics.
pub(crate) fn request_metrics() -> &'static RequestMetrics {
    static METRICS: std::sync::OnceLock<RequestMetrics> = std::sync::OnceLock::new();
    METRICS.get_or_init(RequestMetrics::default)
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{SpanId, TraceFlags, TraceId, TraceState};

    use super::*;

    fn key(route: String, status: u16) -> SeriesKey {
        SeriesKey::Request { method: "GET".into(), route: Some(route.into()), status, error_type: None }
    }

    #[test]
    fn only_sampled_requests_leave_an_exemplar() {
        let metrics = RequestMetrics::default();
        let sampled = SpanContext::new(TraceId::from(7), SpanId::from(7), TraceFlags::SAMPLED, false, TraceState::NONE);
        let dropped =
            SpanContext::new(TraceId::from(8), SpanId::from(8), TraceFlags::default(), false, TraceState::NONE);
        metrics.record(key("/a".into(), 200), Duration::from_millis(3), Some(&dropped));
        let read = metrics.snapshot();
        assert_eq!(read[0].1.exemplars[0], None, "an unsampled trace is never an exemplar");
        metrics.record(key("/a".into(), 200), Duration::from_millis(3), Some(&sampled));
        let read = metrics.snapshot();
        assert_eq!(read[0].1.exemplars[0].unwrap().trace_id, TraceId::from(7));
        assert_eq!(read[0].1.count(), 2);
    }

    #[test]
    fn series_past_the_limit_share_one_overflow_series() {
        let metrics = RequestMetrics::default();
        for i in 0..MAX_SERIES + 500 {
            metrics.record(key(format!("/scan/{i}"), 404), Duration::from_millis(1), None);
        }
        let read = metrics.snapshot();
        assert_eq!(read.len(), MAX_SERIES + 1, "the limit, and one overflow series");
        let (last, overflow) = read.last().unwrap();
        assert_eq!(*last, SeriesKey::Overflow);
        assert_eq!(overflow.count(), 500);
        metrics.record(key("/scan/0".into(), 404), Duration::from_millis(1), None);
        assert_eq!(metrics.snapshot()[0].1.count(), 2, "a series kept before the limit goes on");
    }
}
