//! Whole-trace decisions at the root's end, on top of head sampling
//! (`TRACED_KEEP_ERRORS`, `TRACED_KEEP_SLOWER_THAN_MS`).
//!
//! With a rule on, the sampler records every span: those of a trace head
//! sampling dropped stay unsampled (their `traceparent` says so downstream)
//! and come here, on the export thread, where they wait until the trace's
//! local root ends. The trace is then kept whole when one of its spans
//! failed or the root took longer than the threshold, and let go otherwise.
//! Head-sampled spans pass straight through: they cost nothing more. What is
//! held is bounded in bytes; past the bound the oldest open trace is dropped
//! and counted.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, SystemTime};

use opentelemetry::KeyValue;
use opentelemetry::trace::{SpanContext, Status, TraceFlags, TraceId};
use opentelemetry_sdk::trace::SpanData;

use crate::export::local_root::is_local_root;
use crate::export::otlp::request_size::span_size;

/// The attribute a kept trace's root gets: which rule kept it.
pub(crate) const KEPT_BY_KEY: &str = "traced.kept_by";

/// Trace ids remembered after their decision, for spans that end after
/// their root (a detached task).
const REMEMBERED_DECISIONS: usize = 4096;

/// The rules, as configured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct KeepRules {
    pub errors: bool,
    pub slower_than: Option<Duration>,
    pub max_held_bytes: usize,
}

/// What one pass decided.
#[derive(Debug, Default)]
pub(crate) struct Sorted {
    /// Spans to export now.
    pub export: Vec<SpanData>,
    /// Spans of traces no rule kept: sampled out, as head sampling meant.
    pub let_go: u64,
    /// Spans of open traces dropped to stay within the memory bound.
    pub evicted: u64,
}

#[derive(Debug)]
pub(crate) struct TraceHold {
    rules: KeepRules,
    open: HashMap<TraceId, Held>,
    /// Open traces, oldest first, for eviction (may name closed ones).
    arrival: VecDeque<TraceId>,
    held_bytes: usize,
    kept: Decisions,
    let_go: Decisions,
}

#[derive(Debug, Default)]
struct Held {
    spans: Vec<SpanData>,
    bytes: usize,
    failed: bool,
    earliest_start: Option<SystemTime>,
}

#[derive(Debug, Default)]
struct Decisions {
    ids: HashSet<TraceId>,
    order: VecDeque<TraceId>,
}

impl Decisions {
    fn remember(&mut self, id: TraceId) {
        if self.ids.insert(id) {
            self.order.push_back(id);
        }
        if self.order.len() > REMEMBERED_DECISIONS
            && let Some(oldest) = self.order.pop_front()
        {
            self.ids.remove(&oldest);
        }
    }
}

impl TraceHold {
    pub(crate) fn new(rules: KeepRules) -> Self {
        TraceHold {
            rules,
            open: HashMap::new(),
            arrival: VecDeque::new(),
            held_bytes: 0,
            kept: Decisions::default(),
            let_go: Decisions::default(),
        }
    }

    /// Spans held now (for tests and the shutdown line).
    #[cfg(test)]
    pub(crate) fn held_spans(&self) -> usize {
        self.open.values().map(|held| held.spans.len()).sum()
    }

    /// Passes sampled spans on, holds the others, and decides each trace
    /// whose local root is in `batch`.
    pub(crate) fn sort(&mut self, batch: Vec<SpanData>) -> Sorted {
        let mut sorted = Sorted::default();
        for span in batch {
            let trace_id = span.span_context.trace_id();
            if span.span_context.is_sampled() || self.kept.ids.contains(&trace_id) {
                sorted.export.push(mark_sampled(span));
                continue;
            }
            if self.let_go.ids.contains(&trace_id) {
                sorted.let_go += 1;
                continue;
            }
            let is_local_root = is_local_root(&span);
            let held = self.open.entry(trace_id).or_insert_with(|| {
                self.arrival.push_back(trace_id);
                Held::default()
            });
            held.failed |= matches!(span.status, Status::Error { .. });
            held.earliest_start = Some(held.earliest_start.map_or(span.start_time, |at| at.min(span.start_time)));
            if is_local_root {
                let duration = span.end_time.duration_since(span.start_time).unwrap_or_default();
                let mut held = self.open.remove(&trace_id).unwrap_or_default();
                self.held_bytes -= held.bytes;
                held.spans.push(span);
                self.decide(trace_id, held, duration, &mut sorted);
            } else {
                let bytes = span_size(&span);
                held.bytes += bytes;
                held.spans.push(span);
                self.held_bytes += bytes;
            }
        }
        self.evict(&mut sorted);
        sorted
    }

    /// At shutdown: open traces are decided on what is known (an error so
    /// far, or a root already running longer than the threshold).
    pub(crate) fn release(&mut self, now: SystemTime) -> Sorted {
        let mut sorted = Sorted::default();
        for (trace_id, held) in std::mem::take(&mut self.open) {
            let running = held.earliest_start.and_then(|at| now.duration_since(at).ok()).unwrap_or_default();
            self.decide(trace_id, held, running, &mut sorted);
        }
        self.arrival.clear();
        self.held_bytes = 0;
        sorted
    }

    fn decide(&mut self, trace_id: TraceId, held: Held, duration: Duration, sorted: &mut Sorted) {
        let kept_by = if self.rules.errors && held.failed {
            Some("error")
        } else if self.rules.slower_than.is_some_and(|threshold| duration > threshold) {
            Some("slow")
        } else {
            None
        };
        let Some(kept_by) = kept_by else {
            sorted.let_go += held.spans.len() as u64;
            self.let_go.remember(trace_id);
            return;
        };
        self.kept.remember(trace_id);
        for mut span in held.spans {
            if is_local_root(&span) {
                span.attributes.push(KeyValue::new(KEPT_BY_KEY, kept_by));
            }
            sorted.export.push(mark_sampled(span));
        }
    }

    fn evict(&mut self, sorted: &mut Sorted) {
        while self.held_bytes > self.rules.max_held_bytes {
            let Some(oldest) = self.arrival.pop_front() else { break };
            if let Some(held) = self.open.remove(&oldest) {
                self.held_bytes -= held.bytes;
                sorted.evicted += held.spans.len() as u64;
                self.let_go.remember(oldest);
            }
        }
        // Closed traces leave stale entries behind; keep the queue short.
        if self.arrival.len() > 2 * self.open.len() + 64 {
            self.arrival.retain(|id| self.open.contains_key(id));
        }
    }
}

/// A kept span is exported as sampled: backends and collectors that filter
/// on the flag see it as the kept span it is.
fn mark_sampled(mut span: SpanData) -> SpanData {
    if !span.span_context.is_sampled() {
        let cx = &span.span_context;
        span.span_context = SpanContext::new(
            cx.trace_id(),
            cx.span_id(),
            cx.trace_flags() | TraceFlags::SAMPLED,
            cx.is_remote(),
            cx.trace_state().clone(),
        );
    }
    span
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::SpanId;

    use super::*;
    use crate::export::test_span::test_span;

    const RULES: KeepRules =
        KeepRules { errors: true, slower_than: Some(Duration::from_millis(100)), max_held_bytes: 1 << 20 };

    /// Span `id` of trace `trace`, unsampled, under `parent` (0: a root),
    /// lasting `millis`.
    fn span(trace: u128, id: u64, parent: u64, millis: u64) -> SpanData {
        let mut span = test_span(id, "stage", Vec::new());
        span.span_context =
            SpanContext::new(TraceId::from(trace), SpanId::from(id), TraceFlags::default(), false, Default::default());
        span.parent_span_id = if parent == 0 { SpanId::INVALID } else { SpanId::from(parent) };
        span.end_time = span.start_time + Duration::from_millis(millis);
        span
    }

    fn failed(mut span: SpanData) -> SpanData {
        span.status = Status::error("out of memory");
        span
    }

    fn kept_by(sorted: &Sorted) -> Option<String> {
        let root = sorted.export.iter().find(|s| s.parent_span_id == SpanId::INVALID)?;
        root.attributes.iter().find(|kv| kv.key.as_str() == KEPT_BY_KEY).map(|kv| kv.value.to_string())
    }

    #[test]
    fn a_trace_with_an_error_is_kept_whole_at_its_roots_end_and_marked_sampled() {
        let mut hold = TraceHold::new(RULES);
        let first = hold.sort(vec![span(1, 2, 1, 1), failed(span(1, 3, 1, 1))]);
        assert!(first.export.is_empty(), "held until the root ends");
        assert_eq!(hold.held_spans(), 2);
        let sorted = hold.sort(vec![span(1, 1, 0, 5)]);
        assert_eq!(sorted.export.len(), 3);
        assert!(sorted.export.iter().all(|s| s.span_context.is_sampled()));
        assert_eq!(kept_by(&sorted).as_deref(), Some("error"));
        assert_eq!(hold.held_spans(), 0);
        // A span ending after its root joins the kept trace.
        assert_eq!(hold.sort(vec![span(1, 4, 1, 1)]).export.len(), 1);
    }

    #[test]
    fn a_slow_trace_is_kept_and_a_fast_clean_one_let_go() {
        let mut hold = TraceHold::new(RULES);
        let slow = hold.sort(vec![span(1, 2, 1, 1), span(1, 1, 0, 150)]);
        assert_eq!(slow.export.len(), 2);
        assert_eq!(kept_by(&slow).as_deref(), Some("slow"));
        let fast = hold.sort(vec![span(2, 2, 1, 1), span(2, 1, 0, 50)]);
        assert!(fast.export.is_empty());
        assert_eq!(fast.let_go, 2);
        assert_eq!(hold.sort(vec![span(2, 3, 1, 1)]).let_go, 1, "a late span of a let-go trace");
    }

    #[test]
    fn only_the_configured_rules_keep() {
        let mut hold = TraceHold::new(KeepRules { slower_than: None, ..RULES });
        assert!(hold.sort(vec![span(1, 1, 0, 500)]).export.is_empty(), "slow, but no slow rule");
        let mut hold = TraceHold::new(KeepRules { errors: false, ..RULES });
        assert!(hold.sort(vec![failed(span(1, 1, 0, 5))]).export.is_empty(), "failed, but no error rule");
    }

    #[test]
    fn sampled_spans_pass_straight_through() {
        let mut hold = TraceHold::new(RULES);
        let mut sampled = span(1, 2, 1, 1);
        sampled.span_context = test_span(1, "stage", Vec::new()).span_context;
        assert_eq!(hold.sort(vec![sampled]).export.len(), 1);
        assert_eq!(hold.held_spans(), 0);
    }

    #[test]
    fn a_root_with_a_remote_parent_closes_the_local_trace() {
        let mut hold = TraceHold::new(RULES);
        let mut root = failed(span(1, 1, 99, 5));
        root.parent_span_is_remote = true;
        assert_eq!(hold.sort(vec![span(1, 2, 1, 1), root]).export.len(), 2);
    }

    #[test]
    fn the_oldest_open_trace_is_dropped_past_the_bound() {
        let one = span_size(&span(1, 2, 1, 1));
        let mut hold = TraceHold::new(KeepRules { max_held_bytes: 3 * one, ..RULES });
        assert_eq!(hold.sort(vec![failed(span(1, 2, 1, 1)), span(1, 3, 1, 1)]).evicted, 0);
        let sorted = hold.sort(vec![span(2, 2, 1, 1), span(2, 3, 1, 1)]);
        assert_eq!(sorted.evicted, 2, "trace 1, the oldest, goes");
        assert_eq!(hold.held_spans(), 2);
        assert!(hold.sort(vec![span(1, 1, 0, 5)]).export.is_empty(), "its root finds it let go");
    }

    #[test]
    fn at_shutdown_open_traces_are_decided_on_what_is_known() {
        let mut hold = TraceHold::new(RULES);
        hold.sort(vec![failed(span(1, 2, 1, 1)), span(2, 2, 1, 1)]);
        let now = SystemTime::UNIX_EPOCH + Duration::from_millis(10);
        let sorted = hold.release(now);
        assert_eq!(sorted.export.len(), 1, "the failed one");
        assert_eq!(sorted.let_go, 1);
    }
}
