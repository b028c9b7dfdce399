//! A traced response's body. A whole body (its size known: JSON, a file
//! read into memory) passes through untouched and its span ended with the
//! head, as it always was. A streamed one (Server-Sent Events, a body made
//! from a stream, chunked) keeps the request's span open to its end: the
//! last frame ends it, a body error ends it failed, and a body dropped
//! before its end (the client hung up) ends it `traced.cancelled`; the
//! bytes sent (`http.response.body.size`) and the time to the first of them
//! (`traced.time_to_first_byte`, seconds from the request's arrival) go on
//! the span either way.

use std::fmt::Display;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use bytes::Buf as _;
use http_body::{Body, Frame, SizeHint};
use opentelemetry::{Context, KeyValue};
use traced_core::__layers::RequestSlot;

use crate::metrics::request_measure::RequestMeasure;

/// The bytes a response's body carried.
const BODY_SIZE: &str = "http.response.body.size";
/// Seconds from the request's arrival to its body's first byte.
const TIME_TO_FIRST_BYTE: &str = "traced.time_to_first_byte";

pin_project_lite::pin_project! {
    /// The body of a response from a service under [`crate::TraceLayer`].
    pub struct TracedBody<B> {
        #[pin]
        inner: B,
        // Taken when the body ends.
        tracking: Option<Tracking>,
    }

    impl<B> PinnedDrop for TracedBody<B> {
        fn drop(this: Pin<&mut Self>) {
            if let Some(mut tracking) = this.project().tracking.take() {
                // The head went out: its status is the request's. A client
                // that hung up is no failure of the server's.
                tracking.measure(false);
                let mut closing = tracking.closing();
                closing.push(KeyValue::new("http.response.status_code", i64::from(tracking.answer.status)));
                tracking.slot.cancel(closing);
            }
        }
    }
}

/// A response's head as the layer saw it go out.
pub(crate) struct Answer {
    pub(crate) status: u16,
    /// The request's context, current while the body makes its frames.
    pub(crate) current: Context,
    pub(crate) arrived: Instant,
    /// The request's measurement, `None` for a probe.
    pub(crate) measure: Option<RequestMeasure>,
}

/// What a streamed body's end must finish.
struct Tracking {
    slot: RequestSlot,
    answer: Answer,
    first_byte: Option<Duration>,
    bytes: u64,
}

impl Tracking {
    /// Records the request's duration, to the body's end.
    fn measure(&mut self, failed: bool) {
        if let Some(measure) = self.answer.measure.take() {
            measure.record(self.answer.status, failed, &self.slot);
        }
    }

    fn closing(&self) -> Vec<KeyValue> {
        let mut closing = vec![KeyValue::new(BODY_SIZE, i64::try_from(self.bytes).unwrap_or(i64::MAX))];
        if let Some(first_byte) = self.first_byte {
            closing.push(KeyValue::new(TIME_TO_FIRST_BYTE, first_byte.as_secs_f64()));
        }
        closing
    }
}

impl<B: Body> TracedBody<B> {
    /// A body whose span and measurement end now (its size is known) or at
    /// its end.
    pub(crate) fn new(inner: B, slot: RequestSlot, mut answer: Answer) -> Self {
        match inner.size_hint().exact() {
            Some(size) => {
                if let Some(measure) = answer.measure.take() {
                    measure.record(answer.status, false, &slot);
                }
                let status = answer.status;
                // Room for the status `finish` adds.
                let mut closing = Vec::with_capacity(2);
                closing.push(KeyValue::new(BODY_SIZE, i64::try_from(size).unwrap_or(i64::MAX)));
                slot.finish(status, closing);
                TracedBody { inner, tracking: None }
            }
            None => TracedBody { inner, tracking: Some(Tracking { slot, answer, first_byte: None, bytes: 0 }) },
        }
    }

    /// A body that traces nothing.
    pub(crate) fn untraced(inner: B) -> Self {
        TracedBody { inner, tracking: None }
    }
}

impl<B> Body for TracedBody<B>
where
    B: Body,
    B::Error: Display,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, task: &mut TaskContext<'_>) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let mut this = self.project();
        let Some(tracking) = this.tracking else { return this.inner.poll_frame(task) };
        let polled = {
            let _current = tracking.answer.current.clone().attach();
            this.inner.as_mut().poll_frame(task)
        };
        let ended = match &polled {
            Poll::Pending => return polled,
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    tracking.bytes += data.remaining() as u64;
                    if tracking.first_byte.is_none() && data.has_remaining() {
                        tracking.first_byte = Some(tracking.answer.arrived.elapsed());
                    }
                }
                None
            }
            Poll::Ready(Some(Err(error))) => Some(Err(format!("the response body failed: {error}"))),
            Poll::Ready(None) => Some(Ok(())),
        };
        // A body that knows it is done is not polled again.
        let ended = ended.or_else(|| this.inner.is_end_stream().then_some(Ok(())));
        if let Some(ended) = ended
            && let Some(mut tracking) = this.tracking.take()
        {
            tracking.measure(ended.is_err());
            let closing = tracking.closing();
            match ended {
                Ok(()) => tracking.slot.finish(tracking.answer.status, closing),
                Err(message) => tracking.slot.fail(&message, closing),
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
