//! An async body running inside its span: current at every poll, a panic
//! recorded, and the span marked cancelled when the future is dropped before
//! it completes.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::task::Poll;

use opentelemetry::KeyValue;

use crate::span_handle::SpanHandle;

pin_project_lite::pin_project! {
    /// See [`SpanHandle::run`].
    #[derive(Debug)]
    pub struct InSpan<'a, F> {
        handle: &'a SpanHandle,
        #[pin]
        body: F,
        done: bool,
    }

    impl<F> PinnedDrop for InSpan<'_, F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if !*this.done {
                this.handle.set_attribute(KeyValue::new("traced.cancelled", true));
                this.handle.add_event("cancelled", Vec::new());
            }
        }
    }
}

impl SpanHandle {
    /// Runs an async body with the span current at every poll, recording a
    /// panic, and marking the span cancelled if the future is dropped early.
    pub fn run<T, F: Future<Output = T>>(&self, body: F) -> InSpan<'_, F> {
        InSpan { handle: self, body, done: false }
    }
}

impl<F: Future> Future for InSpan<'_, F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, task: &mut std::task::Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let Some(cx) = this.handle.context() else {
            let poll = this.body.poll(task);
            *this.done = poll.is_ready();
            return poll;
        };
        let _current = cx.clone().attach();
        let body = this.body;
        match catch_unwind(AssertUnwindSafe(|| body.poll(task))) {
            Ok(poll) => {
                *this.done = poll.is_ready();
                poll
            }
            Err(payload) => {
                *this.done = true;
                this.handle.record_panic(payload.as_ref());
                resume_unwind(payload)
            }
        }
    }
}
