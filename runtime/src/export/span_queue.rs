//! The bounded queue between finished spans and the export thread, bounded
//! in bytes (`TRACED_SPAN_BUFFER_BYTES`) and, when set, in spans
//! (`OTEL_BSP_MAX_QUEUE_SIZE`).
//!
//! Ending a span must not wake the export thread: a wake-up is a futex call
//! that cost more than the span itself when measured. So a push takes a short
//! lock and signals only twice per batch: when the queue stops being empty
//! (the export thread starts its schedule delay) and when it holds a full
//! batch (the export thread sends at once).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use opentelemetry_sdk::trace::SpanData;
use tokio::sync::Notify;
use traced_core::__private::FinishedSpans;

use crate::export::request_size::span_size;

/// What waits in the queue: an SDK span, or a thread's finished spans from
/// traced's own span core, converted when taken (on the export thread).
// Boxing the SDK span would cost an allocation per span on the caller's
// thread; an item moves once into the queue and once out.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Queued {
    Span(SpanData),
    Finished(Arc<FinishedSpans>),
}

impl Queued {
    pub(crate) fn spans(&self) -> usize {
        match self {
            Queued::Span(_) => 1,
            Queued::Finished(finished) => finished.len(),
        }
    }

    fn bytes(&self) -> usize {
        match self {
            Queued::Span(span) => held_bytes(span),
            Queued::Finished(finished) => finished.held_bytes(),
        }
    }
}

/// Why a span was not queued.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    Full,
    Closed,
}

#[derive(Debug)]
pub(crate) struct SpanQueue {
    state: Mutex<State>,
    capacity: usize,
    max_bytes: usize,
    batch_size: usize,
    signal: Notify,
}

#[derive(Debug, Default)]
struct State {
    /// Each item with the bytes it was counted for.
    items: VecDeque<(Queued, usize)>,
    /// Spans in `items`.
    spans: usize,
    bytes: usize,
    closed: bool,
}

impl SpanQueue {
    pub(crate) fn new(capacity: usize, max_bytes: usize, batch_size: usize) -> Self {
        SpanQueue { state: Mutex::default(), capacity, max_bytes, batch_size: batch_size.max(1), signal: Notify::new() }
    }

    pub(crate) fn push(&self, item: Queued) -> Result<(), Refused> {
        // Counted before the lock: the walk over the attributes is the
        // caller's, not every producer's.
        let bytes = item.bytes();
        let count = item.spans();
        let mut state = self.lock();
        if state.closed {
            return Err(Refused::Closed);
        }
        if state.spans + count > self.capacity.max(count) || state.bytes + bytes > self.max_bytes.max(bytes) {
            return Err(Refused::Full);
        }
        state.bytes += bytes;
        let before = state.spans;
        state.spans += count;
        state.items.push_back((item, bytes));
        let after = state.spans;
        drop(state);
        if before == 0 || (before < self.batch_size && after >= self.batch_size) {
            self.signal.notify_one();
        }
        Ok(())
    }

    /// Resolves after a push that made the queue non-empty or filled a batch
    /// (at once if one happened since the last wait).
    pub(crate) async fn signalled(&self) {
        self.signal.notified().await;
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().spans
    }

    pub(crate) fn has_full_batch(&self) -> bool {
        self.len() >= self.batch_size
    }

    /// About one batch, oldest first, as queued (a thread's finished spans
    /// are taken whole).
    pub(crate) fn take_items(&self) -> Vec<Queued> {
        let mut state = self.lock();
        let mut taken = Vec::new();
        let mut count = 0;
        while count < self.batch_size {
            let Some((item, bytes)) = state.items.pop_front() else { break };
            count += item.spans();
            state.bytes -= bytes;
            taken.push(item);
        }
        state.spans -= count;
        taken
    }

    /// Refuses every later push; returns how many spans were left queued.
    pub(crate) fn close(&self) -> usize {
        let mut state = self.lock();
        state.closed = true;
        state.bytes = 0;
        state.items.clear();
        std::mem::take(&mut state.spans)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What a queued span holds in memory: the struct and, estimated by its
/// encoded size, what it points to.
fn held_bytes(span: &SpanData) -> usize {
    std::mem::size_of::<SpanData>() + span_size(span)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::test_span::test_span;

    fn span() -> Queued {
        Queued::Span(test_span(0, "queued", Vec::new()))
    }

    fn signal_pending(queue: &SpanQueue) -> bool {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            tokio::time::timeout(std::time::Duration::from_millis(10), queue.signalled()).await.is_ok()
        })
    }

    #[test]
    fn signals_when_it_stops_being_empty_and_when_a_batch_is_full_only() {
        let queue = SpanQueue::new(10, usize::MAX, 3);
        queue.push(span()).unwrap();
        assert!(signal_pending(&queue), "first span");
        queue.push(span()).unwrap();
        assert!(!signal_pending(&queue), "second span");
        queue.push(span()).unwrap();
        assert!(signal_pending(&queue), "full batch");
        assert!(queue.has_full_batch());
        assert_eq!(queue.take_items().len(), 3);
        queue.push(span()).unwrap();
        assert!(signal_pending(&queue), "first span again");
    }

    #[test]
    fn refuses_past_capacity_and_after_close() {
        let queue = SpanQueue::new(2, usize::MAX, 5);
        queue.push(span()).unwrap();
        queue.push(span()).unwrap();
        assert_eq!(queue.push(span()), Err(Refused::Full));
        assert_eq!(queue.close(), 2);
        assert_eq!(queue.push(span()), Err(Refused::Closed));
        assert_eq!(queue.len(), 0);
    }

    #[test]
    fn refuses_past_its_bytes_and_takes_again_once_drained() {
        let one = span().bytes();
        let queue = SpanQueue::new(usize::MAX, 2 * one + one / 2, 5);
        queue.push(span()).unwrap();
        queue.push(span()).unwrap();
        assert_eq!(queue.push(span()), Err(Refused::Full));
        assert_eq!(queue.take_items().len(), 2);
        queue.push(span()).unwrap();
    }
}
