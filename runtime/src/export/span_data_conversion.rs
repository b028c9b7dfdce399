//! traced's finished spans as OpenTelemetry's `SpanData`, for exporters that
//! take it, converted on the export side a batch at a time: a batch converted
//! just before it is exported is still in cache when the exporter reads it
//! and when it is dropped (a whole thread's buffer, converted at once, was
//! tens of megabytes written and read back from memory).
//!
//! Each span's vectors are allocated at their final size (an empty one not at
//! all): the export side runs once per span, as often as the caller's side,
//! and allocation is most of its cost.

use std::sync::Arc;
use std::time::SystemTime;

use fastant::Anchor;
use opentelemetry::KeyValue;
use opentelemetry::trace::{Event, SpanContext};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use traced_core::__layers::{AI_KIND_KEY, Finished, FinishedSpan, FinishedSpans, anchor, has_ai_kind};
use traced_core::AiKind;

/// One thread's finished spans on their way to `SpanData`.
pub(crate) struct SpanDataConversion {
    /// Moved out of when no other exporter shares the buffer, else copied.
    source: Source,
    /// The next span to convert, and where its attributes and events start.
    next: usize,
    default_ai_kind: bool,
    anchor: Anchor,
}

enum Source {
    Owned(FinishedSpans),
    Shared(Arc<FinishedSpans>),
}

impl SpanDataConversion {
    /// Converts `finished`; with `default_ai_kind`, a span that has no
    /// `openinference.span.kind` gets CHAIN.
    pub(crate) fn new(finished: Arc<FinishedSpans>, default_ai_kind: bool) -> Self {
        let source = match Arc::try_unwrap(finished) {
            Ok(owned) => Source::Owned(owned),
            Err(shared) => Source::Shared(shared),
        };
        SpanDataConversion { source, next: 0, default_ai_kind, anchor: anchor() }
    }

    /// Spans not converted yet.
    pub(crate) fn remaining(&self) -> usize {
        self.spans().len() - self.next
    }

    /// Appends up to `at_most` spans to `batch`, in the order they ended.
    pub(crate) fn append(&mut self, batch: &mut Vec<SpanData>, at_most: usize) {
        let end = self.next + at_most.min(self.remaining());
        batch.reserve(end - self.next);
        let (anchor, default_ai_kind) = (&self.anchor, self.default_ai_kind);
        match &mut self.source {
            Source::Owned(owned) => {
                // Moved out, leaving a placeholder that costs nothing to drop:
                // the emptied vectors go back to the pool when `owned` does.
                let (spans, attributes, events) = owned.parts_mut();
                batch.extend(spans[self.next..end].iter().map(|span| {
                    let (a, b) = span.attributes;
                    let attributes = &mut attributes[a as usize..b as usize];
                    let add_kind = default_ai_kind && !has_ai_kind(attributes);
                    let attributes = exactly(attributes.iter_mut().map(take_attribute), add_kind);
                    let (c, d) = span.events;
                    let events = events[c as usize..d as usize].iter_mut().map(take_event).collect();
                    span_data(span, unix_nanos(span, anchor), attributes, events)
                }));
            }
            Source::Shared(shared) => {
                let (spans, attributes, events) = shared.parts();
                batch.extend(spans[self.next..end].iter().map(|span| {
                    let (a, b) = span.attributes;
                    let attributes = &attributes[a as usize..b as usize];
                    let add_kind = default_ai_kind && !has_ai_kind(attributes);
                    let attributes = exactly(attributes.iter().cloned(), add_kind);
                    let (c, d) = span.events;
                    span_data(span, unix_nanos(span, anchor), attributes, events[c as usize..d as usize].to_vec())
                }));
            }
        }
        self.next = end;
    }

    fn spans(&self) -> &FinishedSpans {
        match &self.source {
            Source::Owned(owned) => owned,
            Source::Shared(shared) => shared,
        }
    }
}

/// One span as OpenTelemetry's export data, copied.
pub(crate) fn span_data_of(span: &FinishedSpan<'_>) -> SpanData {
    let (attributes, _) = span.attributes();
    let (events, _) = span.events();
    span_data(span.finished(), span.unix_nanos(), attributes.to_vec(), events.to_vec())
}

fn take_attribute(attribute: &mut KeyValue) -> KeyValue {
    std::mem::replace(attribute, KeyValue::new("", false))
}

fn take_event(event: &mut Event) -> Event {
    std::mem::replace(event, Event::new("", SystemTime::UNIX_EPOCH, Vec::new(), 0))
}

/// The attributes, and the default OpenInference kind after them when
/// `add_kind`, in a vector of exactly that size.
fn exactly(attributes: impl ExactSizeIterator<Item = KeyValue>, add_kind: bool) -> Vec<KeyValue> {
    let mut all = Vec::with_capacity(attributes.len() + usize::from(add_kind));
    all.extend(attributes);
    if add_kind {
        all.push(KeyValue::new(AI_KIND_KEY, AiKind::Chain.as_str()));
    }
    all
}

/// `span` with its attributes and events, started and ended at these Unix
/// nanoseconds.
fn span_data(span: &Finished, (start, end): (u64, u64), attributes: Vec<KeyValue>, events: Vec<Event>) -> SpanData {
    let mut span_events = SpanEvents::default();
    span_events.events = events;
    span_events.dropped_count = span.dropped_events;
    SpanData {
        span_context: SpanContext::new(span.trace_id, span.span_id, span.flags, false, span.trace_state.clone()),
        parent_span_id: span.parent_span_id,
        parent_span_is_remote: span.parent_is_remote,
        span_kind: span.kind.clone(),
        name: span.name.into(),
        start_time: system_time(start),
        end_time: system_time(end),
        attributes,
        dropped_attributes_count: span.dropped_attributes,
        events: span_events,
        links: SpanLinks::default(),
        status: span.status.clone(),
        instrumentation_scope: FinishedSpans::scope().clone(),
    }
}

/// A clock reading as wall-clock time: the cycle counter read when a span
/// starts and ends costs a few instructions, and the conversion is done on
/// the export side.
fn unix_nanos(span: &Finished, anchor: &Anchor) -> (u64, u64) {
    (span.start.as_unix_nanos(anchor), span.end.as_unix_nanos(anchor))
}

fn system_time(unix_nanos: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + std::time::Duration::from_nanos(unix_nanos)
}

#[cfg(test)]
mod tests {
    use fastant::Instant;
    use opentelemetry::trace::{SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState};

    use super::*;

    fn span(index: u64) -> impl FnOnce((u32, u32), (u32, u32)) -> Finished {
        move |attributes, events| Finished {
            trace_id: TraceId::from(7),
            span_id: SpanId::from(index + 1),
            parent_span_id: SpanId::from(99),
            parent_is_remote: false,
            flags: TraceFlags::SAMPLED,
            trace_state: TraceState::NONE,
            name: "stage",
            kind: SpanKind::Internal,
            start: Instant::now(),
            end: Instant::now(),
            attributes,
            dropped_attributes: 0,
            events,
            dropped_events: 0,
            status: if index == 1 { Status::error("failed") } else { Status::Unset },
        }
    }

    fn buffer_of(count: u64) -> FinishedSpans {
        let mut buffer = FinishedSpans::default();
        for index in 0..count {
            let mut attributes = vec![KeyValue::new("index", index as i64)];
            let mut events = if index == 1 {
                vec![Event::new("exception", SystemTime::now(), vec![KeyValue::new("exception.message", "x")], 0)]
            } else {
                Vec::new()
            };
            buffer.push(span(index), &mut attributes, &mut events);
        }
        buffer
    }

    #[test]
    fn each_span_gets_its_own_attributes_and_events_whether_shared_or_not_in_batches_of_any_size() {
        for shared in [false, true] {
            for at_most in [1, 2, 5] {
                let buffer = Arc::new(buffer_of(5));
                let other = shared.then(|| Arc::clone(&buffer));
                let mut conversion = SpanDataConversion::new(buffer, at_most == 2);
                let mut spans = Vec::new();
                while conversion.remaining() > 0 {
                    let before = spans.len();
                    conversion.append(&mut spans, at_most);
                    assert!(spans.len() - before <= at_most);
                }
                assert_eq!(spans.len(), 5);
                for (index, span) in spans.iter().enumerate() {
                    let mut expected = vec![KeyValue::new("index", index as i64)];
                    if at_most == 2 {
                        expected.push(KeyValue::new(AI_KIND_KEY, "CHAIN"));
                    }
                    assert_eq!(span.attributes, expected);
                    assert_eq!(span.attributes.capacity(), expected.len(), "allocated at its final size");
                    assert_eq!(span.events.events.len(), usize::from(index == 1));
                    assert_eq!(span.span_context.span_id(), SpanId::from(index as u64 + 1));
                    assert_eq!(span.parent_span_id, SpanId::from(99));
                    assert!(span.start_time <= span.end_time);
                }
                assert_eq!(spans[1].events.events[0].attributes, [KeyValue::new("exception.message", "x")]);
                assert!(matches!(spans[1].status, Status::Error { .. }));
                drop(other);
            }
        }
    }

    #[test]
    fn a_span_that_has_a_kind_keeps_it() {
        let mut buffer = FinishedSpans::default();
        let mut attributes = vec![KeyValue::new(AI_KIND_KEY, "LLM")];
        buffer.push(span(0), &mut attributes, &mut Vec::new());
        let mut spans = Vec::new();
        SpanDataConversion::new(Arc::new(buffer), true).append(&mut spans, usize::MAX);
        assert_eq!(spans[0].attributes, [KeyValue::new(AI_KIND_KEY, "LLM")]);
    }
}
