//! `#[span(stream)]`, and every streaming `#[endpoint]`: a span that stays
//! open while an iterator or a `Stream` yields, and closes at its end or when
//! it is dropped. It counts the items (`stream.items`), marks the first with
//! an event and records how long it took from the span's start
//! (`gen_ai.response.time_to_first_chunk`, seconds, the GenAI semantic
//! conventions' name).

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use futures_core::Stream;
use opentelemetry::KeyValue;

use crate::span_handle::SpanHandle;

pin_project_lite::pin_project! {
    /// An iterator or stream and the span that covers it.
    #[derive(Debug)]
    pub struct Spanned<I> {
        #[pin]
        inner: I,
        progress: Progress,
    }

    impl<I> PinnedDrop for Spanned<I> {
        fn drop(this: Pin<&mut Self>) {
            this.project().progress.finish(false);
        }
    }
}

/// The span and what it has counted so far.
#[derive(Debug)]
struct Progress {
    handle: Option<SpanHandle>,
    items: u64,
    started: Instant,
    first_item: Option<Duration>,
    item_events: bool,
}

/// The attribute the GenAI semantic conventions name for the time to a
/// streamed answer's first chunk, in seconds.
pub(crate) const TIME_TO_FIRST_CHUNK: &str = "gen_ai.response.time_to_first_chunk";

impl<I> Spanned<I> {
    /// Wraps `inner`, whose span started at `started` (the time to the first
    /// item counts from there); `item_events` adds an `item` event per item.
    pub fn new(started: Instant, handle: SpanHandle, inner: I, item_events: bool) -> Self {
        let handle = handle.context().is_some().then_some(handle);
        Spanned { inner, progress: Progress { handle, items: 0, started, first_item: None, item_events } }
    }

    /// Wraps the `Ok` of a fn returning `Result<impl Iterator, E>`; an `Err`
    /// ends the span (the error already recorded on it).
    pub fn new_ok<E>(started: Instant, handle: SpanHandle, inner: Result<I, E>, item_events: bool) -> Result<Self, E> {
        inner.map(|inner| Spanned::new(started, handle, inner, item_events))
    }
}

impl Progress {
    fn on_item(&mut self) {
        let Some(handle) = &self.handle else { return };
        let index = self.items;
        self.items += 1;
        if self.first_item.is_none() {
            let first = self.started.elapsed();
            self.first_item = Some(first);
            handle.add_event("first-item", Vec::new());
            handle.note_first_chunk(first);
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
            handle.set_attribute(KeyValue::new(TIME_TO_FIRST_CHUNK, first.as_secs_f64()));
        }
    }

    /// Runs one step of the inner iterator or stream under the span.
    fn step<T>(&mut self, next: impl FnOnce() -> T) -> T {
        let Some(cx) = self.handle.as_ref().and_then(SpanHandle::context).cloned() else {
            return next();
        };
        let _current = cx.attach();
        match catch_unwind(AssertUnwindSafe(next)) {
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

impl<I: Iterator> Iterator for Spanned<I> {
    type Item = I::Item;

    fn next(&mut self) -> Option<I::Item> {
        let inner = &mut self.inner;
        let item = self.progress.step(|| inner.next());
        self.progress.settle(item.is_some());
        item
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl<I: DoubleEndedIterator> DoubleEndedIterator for Spanned<I> {
    fn next_back(&mut self) -> Option<I::Item> {
        let inner = &mut self.inner;
        let item = self.progress.step(|| inner.next_back());
        self.progress.settle(item.is_some());
        item
    }
}

impl<I: ExactSizeIterator> ExactSizeIterator for Spanned<I> {}

impl<I: std::iter::FusedIterator> std::iter::FusedIterator for Spanned<I> {}

impl<S: Stream> Stream for Spanned<S> {
    type Item = S::Item;

    fn poll_next(self: Pin<&mut Self>, task: &mut std::task::Context<'_>) -> Poll<Option<S::Item>> {
        let this = self.project();
        let inner = this.inner;
        let poll = this.progress.step(|| inner.poll_next(task));
        if let Poll::Ready(item) = &poll {
            this.progress.settle(item.is_some());
        }
        poll
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}
