//! `#[span(stream)]`: a span that stays open while an iterator or a `Stream`
//! yields, and closes at its end or when it is dropped.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use futures_core::Stream;
use opentelemetry::KeyValue;

use crate::span_handle::SpanHandle;

/// An iterator or stream and the span that covers it.
#[derive(Debug)]
pub struct Traced<I> {
    inner: I,
    handle: Option<SpanHandle>,
    items: u64,
    started: Instant,
    first_item: Option<Duration>,
    item_events: bool,
}

impl<I> Traced<I> {
    /// Wraps `inner`; `item_events` adds an `item` event per item.
    pub fn new(handle: SpanHandle, inner: I, item_events: bool) -> Self {
        let handle = handle.context().is_some().then_some(handle);
        Traced { inner, handle, items: 0, started: Instant::now(), first_item: None, item_events }
    }

    fn on_item(&mut self) {
        let Some(handle) = &self.handle else { return };
        let index = self.items;
        self.items += 1;
        if self.first_item.is_none() {
            self.first_item = Some(self.started.elapsed());
        }
        if self.item_events {
            handle.add_event("item", vec![KeyValue::new("stream.item_index", index as i64)]);
        }
    }

    /// Counts an item, or closes the span at the end.
    fn settle(&mut self, got_item: bool) {
        if got_item { self.on_item() } else { self.finish(true) }
    }

    /// Records the totals and ends the span.
    fn finish(&mut self, complete: bool) {
        let Some(handle) = self.handle.take() else { return };
        handle.set_attribute(KeyValue::new("stream.items", self.items as i64));
        handle.set_attribute(KeyValue::new("stream.complete", complete));
        if let Some(first) = self.first_item {
            handle.set_attribute(KeyValue::new("stream.time_to_first_item_ms", first.as_secs_f64() * 1000.0));
        }
    }

    /// Runs one step of the inner iterator or stream under the span.
    fn step<T>(&mut self, next: impl FnOnce(&mut I) -> T) -> T {
        let Some(cx) = self.handle.as_ref().and_then(SpanHandle::context).cloned() else {
            return next(&mut self.inner);
        };
        let _current = cx.attach();
        match catch_unwind(AssertUnwindSafe(|| next(&mut self.inner))) {
            Ok(value) => value,
            Err(payload) => {
                if let Some(handle) = &self.handle {
                    handle.record_panic(payload.as_ref());
                }
                self.finish(false);
                resume_unwind(payload)
            }
        }
    }
}

impl<I: Iterator> Iterator for Traced<I> {
    type Item = I::Item;

    fn next(&mut self) -> Option<I::Item> {
        let item = self.step(Iterator::next);
        self.settle(item.is_some());
        item
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl<I: DoubleEndedIterator> DoubleEndedIterator for Traced<I> {
    fn next_back(&mut self) -> Option<I::Item> {
        let item = self.step(DoubleEndedIterator::next_back);
        self.settle(item.is_some());
        item
    }
}

impl<I: ExactSizeIterator> ExactSizeIterator for Traced<I> {}

impl<I: std::iter::FusedIterator> std::iter::FusedIterator for Traced<I> {}

impl<S: Stream> Stream for Traced<S> {
    type Item = S::Item;

    fn poll_next(self: Pin<&mut Self>, task: &mut std::task::Context<'_>) -> Poll<Option<S::Item>> {
        // SAFETY: `inner` is structurally pinned: it is only reached through
        // this projection and never moved out; `Traced` is not `Unpin` unless
        // `S` is.
        let this = unsafe { self.get_unchecked_mut() };
        let poll = this.step(|inner| unsafe { Pin::new_unchecked(inner) }.poll_next(task));
        if let Poll::Ready(item) = &poll {
            this.settle(item.is_some());
        }
        poll
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl<I> Drop for Traced<I> {
    fn drop(&mut self) {
        self.finish(false);
    }
}
