//! One histogram series: counts per bucket, their sum, and per bucket the
//! latest exemplar, a trace that was sampled (so it exists in the trace
//! backend). Recorded with atomics and, only when an exemplar comes with
//! the value, one uncontended lock; read by the exposition.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use opentelemetry::trace::{SpanId, TraceId};

/// `http.server.request.duration`'s bucket boundaries (seconds), as the
/// semantic conventions advise.
pub(crate) const DURATION_BOUNDS: &[f64] =
    &[0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0];

/// `gen_ai.server.request.duration`'s (seconds), as the semantic
/// conventions advise.
pub(crate) const GEN_AI_DURATION_BOUNDS: &[f64] =
    &[0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];

/// `gen_ai.server.time_to_first_token`'s (seconds), as the semantic
/// conventions advise.
pub(crate) const TTFT_BOUNDS: &[f64] =
    &[0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0];

/// A measurement from a sampled trace, kept to lead from a bucket to it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Exemplar {
    pub(crate) trace_id: TraceId,
    pub(crate) span_id: SpanId,
    pub(crate) value: f64,
    pub(crate) at: SystemTime,
}

#[derive(Debug)]
pub(crate) struct Histogram {
    bounds: &'static [f64],
    /// One more than the bounds: the last counts what is above them all.
    counts: Box<[AtomicU64]>,
    sum_bits: AtomicU64,
    exemplars: Box<[Mutex<Option<Exemplar>>]>,
}

/// What a histogram held when read; counts per bucket, not cumulative.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Snapshot {
    pub(crate) bounds: &'static [f64],
    pub(crate) counts: Vec<u64>,
    pub(crate) sum: f64,
    pub(crate) exemplars: Vec<Option<Exemplar>>,
}

impl Histogram {
    pub(crate) fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_bits: AtomicU64::new(0f64.to_bits()),
            exemplars: (0..=bounds.len()).map(|_| Mutex::new(None)).collect(),
        }
    }

    /// Counts `value` in its bucket (a value equal to a bound counts in that
    /// bound's bucket, as `le` says) and keeps `exemplar` for the bucket.
    pub(crate) fn record(&self, value: f64, exemplar: Option<(TraceId, SpanId)>) {
        let bucket = self.bounds.partition_point(|bound| *bound < value);
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        let _ = self
            .sum_bits
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| Some((f64::from_bits(bits) + value).to_bits()));
        if let Some((trace_id, span_id)) = exemplar {
            let kept = Exemplar { trace_id, span_id, value, at: SystemTime::now() };
            *self.exemplars[bucket].lock().unwrap_or_else(PoisonError::into_inner) = Some(kept);
        }
    }

    pub(crate) fn snapshot(&self) -> Snapshot {
        Snapshot {
            bounds: self.bounds,
            counts: self.counts.iter().map(|count| count.load(Ordering::Relaxed)).collect(),
            sum: f64::from_bits(self.sum_bits.load(Ordering::Relaxed)),
            exemplars: self.exemplars.iter().map(|kept| *kept.lock().unwrap_or_else(PoisonError::into_inner)).collect(),
        }
    }
}

impl Snapshot {
    pub(crate) fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_fall_in_the_bucket_whose_bound_they_do_not_pass() {
        let histogram = Histogram::new(&[0.1, 1.0]);
        for value in [0.05, 0.1, 0.5, 1.0, 3.0] {
            histogram.record(value, None);
        }
        let read = histogram.snapshot();
        assert_eq!(read.counts, [2, 2, 1], "a value equal to a bound counts at that bound");
        assert_eq!(read.count(), 5);
        assert!((read.sum - 4.65).abs() < 1e-9);
    }

    #[test]
    fn each_bucket_keeps_its_latest_exemplar() {
        let histogram = Histogram::new(&[0.1, 1.0]);
        histogram.record(0.05, Some((TraceId::from(1), SpanId::from(1))));
        histogram.record(0.07, Some((TraceId::from(2), SpanId::from(2))));
        histogram.record(0.5, None);
        let read = histogram.snapshot();
        let first = read.exemplars[0].expect("an exemplar in the first bucket");
        assert_eq!((first.trace_id, first.value), (TraceId::from(2), 0.07));
        assert_eq!(read.exemplars[1], None, "no sampled trace there");
    }
}
