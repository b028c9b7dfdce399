//! Where the spans traced records itself go when they end: each thread
//! appends to a buffer of its own (one uncontended lock, no allocation once
//! the buffer has grown), and the export layer collects every thread's buffer
//! now and then, converting to OpenTelemetry's `SpanData` on its own thread.
//!
//! A buffer is collected when a trace's local root ends (so a trace's spans
//! reach the exporters before its root), when a thread's buffer passes
//! [`WAKE_AT`] spans (the export layer's wake hook), on a timer, and on every
//! flush. A buffer that holds [`MAX_BUFFERED`] spans takes no more: further
//! spans are dropped and counted, the app is never blocked.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use fastant::{Anchor, Instant};
use opentelemetry::trace::{Event, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState};
use opentelemetry::{InstrumentationScope, KeyValue};

/// Past this many spans in one thread's buffer, the export layer is woken.
const WAKE_AT: usize = 1024;
/// A thread's buffer takes no more than this many spans.
const MAX_BUFFERED: usize = 1 << 16;

/// One finished span as a buffer holds it; its attributes and events are
/// ranges of the buffer's.
// The fields are OpenTelemetry's, under their OpenTelemetry names.
#[allow(missing_docs)]
#[derive(Debug)]
pub struct Finished {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub parent_span_id: SpanId,
    pub parent_is_remote: bool,
    pub flags: TraceFlags,
    pub trace_state: TraceState,
    pub name: &'static str,
    pub kind: SpanKind,
    pub start: Instant,
    pub end: Instant,
    pub attributes: (u32, u32),
    pub dropped_attributes: u32,
    pub events: (u32, u32),
    pub dropped_events: u32,
    pub status: Status,
}

/// Finished spans of one thread, as collected. Its vectors go back to a pool
/// when it is dropped (on the export thread), so that collecting does not
/// allocate large blocks again and again.
#[derive(Debug, Default)]
pub struct FinishedSpans {
    pub(crate) spans: Vec<Finished>,
    pub(crate) attributes: Vec<KeyValue>,
    pub(crate) events: Vec<Event>,
    dropped: u64,
}

impl FinishedSpans {
    /// How many spans it holds.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// True when it holds none.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The memory it holds: its vectors, whole (the values they point to,
    /// mostly shared or static strings, are not counted).
    pub fn held_bytes(&self) -> usize {
        self.spans.capacity() * std::mem::size_of::<Finished>()
            + self.attributes.capacity() * std::mem::size_of::<KeyValue>()
            + self.events.capacity() * std::mem::size_of::<Event>()
    }

    /// Spans the thread dropped because its buffer was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The spans, in the order they ended, for an exporter that encodes them
    /// itself (no `SpanData` built).
    pub fn spans(&self) -> impl ExactSizeIterator<Item = FinishedSpan<'_>> {
        let anchor = anchor();
        self.spans.iter().map(move |span| FinishedSpan { span, spans: self, anchor })
    }

    /// The instrumentation scope of traced's spans.
    pub fn scope() -> &'static InstrumentationScope {
        scope()
    }

    /// The spans, and the attributes and events their ranges index: what the
    /// export layer converts to the SDK's `SpanData`.
    pub fn parts(&self) -> (&[Finished], &[KeyValue], &[Event]) {
        (&self.spans, &self.attributes, &self.events)
    }

    /// The same, the attributes and events to be moved out: the emptied
    /// vectors go back to the pool when the buffer is dropped.
    pub fn parts_mut(&mut self) -> (&[Finished], &mut [KeyValue], &mut [Event]) {
        (&self.spans, &mut self.attributes, &mut self.events)
    }

    /// Appends a span: `span` builds it in place, given the ranges of its
    /// attributes and events, which are moved out of `attributes` and
    /// `events`. False (and counted) when the buffer is full.
    #[inline]
    pub fn push(
        &mut self,
        span: impl FnOnce((u32, u32), (u32, u32)) -> Finished,
        attributes: &mut Vec<KeyValue>,
        events: &mut Vec<Event>,
    ) -> bool {
        if self.spans.len() >= MAX_BUFFERED {
            self.dropped += 1;
            attributes.clear();
            events.clear();
            return false;
        }
        let a = self.attributes.len() as u32;
        self.attributes.append(attributes);
        let attribute_range = (a, self.attributes.len() as u32);
        let e = self.events.len() as u32;
        if !events.is_empty() {
            self.events.append(events);
        }
        let event_range = (e, self.events.len() as u32);
        self.spans.push(span(attribute_range, event_range));
        true
    }
}

/// One finished span, read in place.
#[derive(Clone, Copy)]
pub struct FinishedSpan<'a> {
    pub(crate) span: &'a Finished,
    spans: &'a FinishedSpans,
    pub(crate) anchor: Anchor,
}

impl<'a> FinishedSpan<'a> {
    /// The trace, the span and the trace flags.
    pub fn ids(&self) -> (TraceId, SpanId, TraceFlags) {
        (self.span.trace_id, self.span.span_id, self.span.flags)
    }

    /// The parent span ([`SpanId::INVALID`] for none), and whether it was
    /// another process's.
    pub fn parent(&self) -> (SpanId, bool) {
        (self.span.parent_span_id, self.span.parent_is_remote)
    }

    /// The span's fields, for an exporter that reads them all.
    pub fn finished(&self) -> &'a Finished {
        self.span
    }

    /// The W3C tracestate the span carries.
    pub fn trace_state(&self) -> &'a TraceState {
        &self.span.trace_state
    }

    /// The span's name.
    pub fn name(&self) -> &'static str {
        self.span.name
    }

    /// The span's kind.
    pub fn kind(&self) -> &'a SpanKind {
        &self.span.kind
    }

    /// Start and end, in nanoseconds since the Unix epoch.
    pub fn unix_nanos(&self) -> (u64, u64) {
        (self.span.start.as_unix_nanos(&self.anchor), self.span.end.as_unix_nanos(&self.anchor))
    }

    /// The attributes, and how many were dropped past the limit.
    pub fn attributes(&self) -> (&'a [KeyValue], u32) {
        let (a, b) = self.span.attributes;
        (&self.spans.attributes[a as usize..b as usize], self.span.dropped_attributes)
    }

    /// The events, and how many were dropped past the limit.
    pub fn events(&self) -> (&'a [Event], u32) {
        let (a, b) = self.span.events;
        (&self.spans.events[a as usize..b as usize], self.span.dropped_events)
    }

    /// The span's status.
    pub fn status(&self) -> &'a Status {
        &self.span.status
    }
}

type Vectors = (Vec<Finished>, Vec<KeyValue>, Vec<Event>);

/// Emptied vectors of collected buffers, for the next collection.
static POOL: Mutex<Vec<Vectors>> = Mutex::new(Vec::new());
const POOLED: usize = 64;

impl Drop for FinishedSpans {
    fn drop(&mut self) {
        if self.spans.capacity() == 0 {
            return;
        }
        let mut vectors =
            (std::mem::take(&mut self.spans), std::mem::take(&mut self.attributes), std::mem::take(&mut self.events));
        vectors.0.clear();
        vectors.1.clear();
        vectors.2.clear();
        let mut pool = lock(&POOL);
        if pool.len() < POOLED {
            pool.push(vectors);
        }
    }
}

/// An empty buffer for one that held `like`: with pooled vectors when there
/// are some, else with room for as much (growing it span by span would copy
/// it over and over on the caller's thread).
fn empty_buffer(like: &FinishedSpans) -> FinishedSpans {
    let (spans, attributes, events) = lock(&POOL).pop().unwrap_or_else(|| {
        (Vec::with_capacity(like.spans.len()), Vec::with_capacity(like.attributes.len()), Vec::new())
    });
    FinishedSpans { spans, attributes, events, dropped: 0 }
}

/// The wall clock matched to the cycle counter, taken again every few
/// seconds so that clock adjustments reach the timestamps.
pub fn anchor() -> Anchor {
    static ANCHOR: Mutex<Option<(Anchor, std::time::Instant)>> = Mutex::new(None);
    let mut anchor = lock(&ANCHOR);
    match *anchor {
        Some((taken, at)) if at.elapsed() < std::time::Duration::from_secs(5) => taken,
        _ => {
            let taken = Anchor::new();
            *anchor = Some((taken, std::time::Instant::now()));
            taken
        }
    }
}

/// The instrumentation scope of traced's spans.
pub(crate) fn scope() -> &'static InstrumentationScope {
    static SCOPE: OnceLock<InstrumentationScope> = OnceLock::new();
    SCOPE.get_or_init(|| InstrumentationScope::builder("traced").with_version(env!("CARGO_PKG_VERSION")).build())
}

type Buffer = Arc<Mutex<FinishedSpans>>;

static BUFFERS: Mutex<Vec<Buffer>> = Mutex::new(Vec::new());
/// Set when a buffer stops being empty, cleared by a collection: a trace's
/// root that ends with nothing pending costs one load.
static PENDING: AtomicBool = AtomicBool::new(false);
static SINK: OnceLock<fn(FinishedSpans)> = OnceLock::new();
static WAKE: OnceLock<fn()> = OnceLock::new();

thread_local! {
    static BUFFER: Buffer = {
        let buffer = Buffer::default();
        lock(&BUFFERS).push(Arc::clone(&buffer));
        buffer
    };
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Appends a finished span to this thread's buffer.
#[inline]
pub(crate) fn finish(
    span: impl FnOnce((u32, u32), (u32, u32)) -> Finished,
    attributes: &mut Vec<KeyValue>,
    events: &mut Vec<Event>,
) {
    // During the thread's teardown the buffer may be gone: the span is lost
    // with it.
    let len = BUFFER
        .try_with(|buffer| {
            let mut buffer = lock(buffer);
            buffer.push(span, attributes, events);
            buffer.len()
        })
        .unwrap_or(0);
    if len == 1 {
        PENDING.store(true, Ordering::Relaxed);
    }
    if len == WAKE_AT
        && let Some(wake) = WAKE.get()
    {
        wake();
    }
}

/// Collects when some thread has finished spans waiting.
pub fn collect_pending() {
    if PENDING.load(Ordering::Relaxed) {
        collect_finished();
    }
}

/// Sets where collected spans go, and what to call when a thread's buffer
/// fills up. Only the first call takes effect (the export layer routes to
/// whatever is installed).
pub fn set_finished_sink(sink: fn(FinishedSpans), wake: fn()) {
    let _ = SINK.set(sink);
    let _ = WAKE.set(wake);
}

/// Hands every thread's finished spans to the sink; forgets the buffers of
/// threads that have ended.
pub fn collect_finished() {
    let Some(sink) = SINK.get() else { return };
    PENDING.store(false, Ordering::Relaxed);
    let buffers: Vec<Buffer> = {
        let mut all = lock(&BUFFERS);
        all.retain(|buffer| {
            let held = lock(buffer);
            Arc::strong_count(buffer) > 1 || !held.is_empty() || held.dropped > 0
        });
        all.clone()
    };
    for buffer in buffers {
        let taken = {
            let mut buffer = lock(&buffer);
            if buffer.is_empty() && buffer.dropped == 0 {
                continue;
            }
            let empty = empty_buffer(&buffer);
            std::mem::replace(&mut *buffer, empty)
        };
        sink(taken);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::SystemTime;

    use super::*;

    pub(crate) fn span(index: u64) -> impl FnOnce((u32, u32), (u32, u32)) -> Finished {
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

    pub(crate) fn buffer_of(count: u64) -> FinishedSpans {
        let mut buffer = FinishedSpans::default();
        for index in 0..count {
            let mut attributes = vec![KeyValue::new("index", index as i64)];
            let mut events = if index == 1 {
                vec![Event::new("exception", SystemTime::now(), vec![KeyValue::new("exception.message", "x")], 0)]
            } else {
                Vec::new()
            };
            buffer.push(span(index), &mut attributes, &mut events);
            assert!(attributes.is_empty() && events.is_empty(), "moved out");
        }
        buffer
    }

    #[test]
    fn a_full_buffer_drops_and_counts() {
        let mut buffer = buffer_of(MAX_BUFFERED as u64);
        let mut attributes = vec![KeyValue::new("index", 0_i64)];
        assert!(!buffer.push(span(0), &mut attributes, &mut Vec::new()));
        assert!(attributes.is_empty(), "the dropped span's attributes are cleared");
        assert_eq!(buffer.len(), MAX_BUFFERED);
        assert_eq!(buffer.dropped(), 1);
    }
}
