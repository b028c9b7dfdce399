//! The bounded queue between finished spans and the export thread.
//!
//! Ending a span must not wake the export thread: a wake-up is a futex call
//! that cost more than the span itself when measured. So a push takes a short
//! lock and signals only twice per batch: when the queue stops being empty
//! (the export thread starts its schedule delay) and when it holds a full
//! batch (the export thread sends at once).

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};

use opentelemetry_sdk::trace::SpanData;
use tokio::sync::Notify;

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
    batch_size: usize,
    signal: Notify,
}

#[derive(Debug, Default)]
struct State {
    spans: VecDeque<SpanData>,
    closed: bool,
}

impl SpanQueue {
    pub(crate) fn new(capacity: usize, batch_size: usize) -> Self {
        SpanQueue { state: Mutex::default(), capacity, batch_size: batch_size.max(1), signal: Notify::new() }
    }

    pub(crate) fn push(&self, span: SpanData) -> Result<(), Refused> {
        let mut state = self.lock();
        if state.closed {
            return Err(Refused::Closed);
        }
        if state.spans.len() >= self.capacity {
            return Err(Refused::Full);
        }
        state.spans.push_back(span);
        let len = state.spans.len();
        drop(state);
        if len == 1 || len == self.batch_size {
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
        self.lock().spans.len()
    }

    pub(crate) fn has_full_batch(&self) -> bool {
        self.len() >= self.batch_size
    }

    /// Up to one batch, oldest first.
    pub(crate) fn take_batch(&self) -> Vec<SpanData> {
        let mut state = self.lock();
        let n = state.spans.len().min(self.batch_size);
        state.spans.drain(..n).collect()
    }

    /// Refuses every later push; returns how many spans were left queued.
    pub(crate) fn close(&self) -> usize {
        let mut state = self.lock();
        state.closed = true;
        std::mem::take(&mut state.spans).len()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::test_span::test_span;

    fn span() -> SpanData {
        test_span(0, "queued", Vec::new())
    }

    fn signal_pending(queue: &SpanQueue) -> bool {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            tokio::time::timeout(std::time::Duration::from_millis(10), queue.signalled()).await.is_ok()
        })
    }

    #[test]
    fn signals_when_it_stops_being_empty_and_when_a_batch_is_full_only() {
        let queue = SpanQueue::new(10, 3);
        queue.push(span()).unwrap();
        assert!(signal_pending(&queue), "first span");
        queue.push(span()).unwrap();
        assert!(!signal_pending(&queue), "second span");
        queue.push(span()).unwrap();
        assert!(signal_pending(&queue), "full batch");
        assert!(queue.has_full_batch());
        assert_eq!(queue.take_batch().len(), 3);
        queue.push(span()).unwrap();
        assert!(signal_pending(&queue), "first span again");
    }

    #[test]
    fn refuses_past_capacity_and_after_close() {
        let queue = SpanQueue::new(2, 5);
        queue.push(span()).unwrap();
        queue.push(span()).unwrap();
        assert_eq!(queue.push(span()), Err(Refused::Full));
        assert_eq!(queue.close(), 2);
        assert_eq!(queue.push(span()), Err(Refused::Closed));
        assert_eq!(queue.len(), 0);
    }
}
