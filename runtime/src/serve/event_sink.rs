//! The producing side of a streamed answer: a streaming `#[endpoint]`'s
//! items, each turned into a Server-Sent Event as soon as it is made and
//! handed to the response body through a small bounded channel, so a slow
//! client slows the producer instead of growing memory. An `Err` item or a
//! panic ends the stream with an `error` event; a client that hangs up
//! closes the channel, and the producer stops at its next item (a `Stream`
//! at once).

use std::future::poll_fn;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::task::Poll;

use bytes::Bytes;
use futures_core::Stream;
use opentelemetry::Context;
use tokio::sync::{mpsc, oneshot};
use traced_core::__layers::{RequestSlot, panic_message};

use crate::serve::reply::Reply;
use crate::serve::sse;

/// Items made ahead of the client: one waiting in the channel, one more
/// held by the producer while it waits for room.
const AHEAD: usize = 1;

/// What one item becomes: an event's JSON, or the failure that ends the
/// stream.
#[derive(Debug)]
pub enum ItemEvent {
    /// The item as JSON.
    Data(Vec<u8>),
    /// An `Err` item: its type's name and message.
    Failed {
        /// The error type's name (the `exception.type`).
        type_name: &'static str,
        /// Its message.
        message: String,
    },
}

/// How the answer starts: streaming, or an error reply before any item
/// (an endpoint returning `Result<impl Iterator, E>` that returned `Err`).
pub(crate) type Head = Result<(), Reply>;

/// Where a streaming endpoint's route writes its answer.
#[derive(Debug)]
pub struct EventSink {
    head: Option<oneshot::Sender<Head>>,
    events: mpsc::Sender<Bytes>,
}

/// The reading ends of an [`EventSink`], for the response.
pub(crate) struct Opened {
    pub(crate) head: oneshot::Receiver<Head>,
    pub(crate) events: mpsc::Receiver<Bytes>,
}

impl EventSink {
    pub(crate) fn new() -> (EventSink, Opened) {
        let (head, head_rx) = oneshot::channel();
        let (events, events_rx) = mpsc::channel(AHEAD);
        (EventSink { head: Some(head), events }, Opened { head: head_rx, events: events_rx })
    }

    /// Answers with `reply` instead of a stream.
    pub fn refuse(mut self, reply: Reply) {
        if let Some(head) = self.head.take() {
            let _ = head.send(Err(reply));
        }
    }

    fn open(&mut self) {
        if let Some(head) = self.head.take() {
            let _ = head.send(Ok(()));
        }
    }

    /// Sends every item of a sync endpoint's iterator, on the blocking pool,
    /// until it ends, fails, or the client hangs up.
    pub fn drain<I: IntoIterator>(mut self, items: I, mut event: impl FnMut(&I::Item) -> ItemEvent) {
        self.open();
        let mut items = items.into_iter();
        loop {
            let next = catch_unwind(AssertUnwindSafe(|| items.next().map(|item| event(&item))));
            let Some((frame, last)) = frame(next) else { break };
            if self.events.blocking_send(frame).is_err() || last {
                break;
            }
        }
        // The producer's span is let go before the body can end, so the
        // response's end finds it held.
        drop(items);
    }

    /// Sends every item of a `Stream` until it ends, fails, or the client
    /// hangs up (noticed at once, even while the stream waits).
    pub async fn drain_stream<S: Stream>(mut self, items: S, mut event: impl FnMut(&S::Item) -> ItemEvent) {
        self.open();
        let mut items = pin!(items);
        loop {
            let next = poll_fn(|task| {
                match catch_unwind(AssertUnwindSafe(|| items.as_mut().poll_next(task).map(|i| i.map(|i| event(&i))))) {
                    Ok(Poll::Pending) => Poll::Pending,
                    Ok(Poll::Ready(item)) => Poll::Ready(Ok(item)),
                    Err(payload) => Poll::Ready(Err(payload)),
                }
            });
            let next = tokio::select! {
                biased;
                () = self.events.closed() => break,
                next = next => next,
            };
            let Some((frame, last)) = frame(next) else { break };
            if self.events.send(frame).await.is_err() || last {
                break;
            }
        }
    }
}

/// A panic's payload, caught while making an item.
type Panic = Box<dyn std::any::Any + Send>;

/// What a producer sends for its next item, and whether the stream ends
/// with it (a failure's `error` event); `None` once the items are done.
fn frame(next: Result<Option<ItemEvent>, Panic>) -> Option<(Bytes, bool)> {
    match next {
        Ok(None) => None,
        Ok(Some(ItemEvent::Data(json))) => Some((sse::data(&json), false)),
        Ok(Some(ItemEvent::Failed { type_name, message })) => Some((failed(type_name, &message), true)),
        Err(payload) => Some((panicked(payload.as_ref()), true)),
    }
}

/// The request's slot, where the serve layer left it.
fn request_slot() -> Option<RequestSlot> {
    Context::current().get::<RequestSlot>().cloned()
}

/// An `Err` item: recorded on the request's span, told to the client.
fn failed(type_name: &str, message: &str) -> Bytes {
    let slot = request_slot();
    if let Some(slot) = &slot {
        slot.record_exception(type_name, message);
    }
    sse::error(message, slot.and_then(|slot| slot.span()).map(|span| span.trace_id().to_string()))
}

/// A panic: the span recorded it already (the endpoint's stream wrapper
/// did), the client is told.
fn panicked(payload: &(dyn std::any::Any + Send)) -> Bytes {
    let message = format!("the handler panicked: {}", panic_message(payload));
    let trace_id = request_slot().and_then(|slot| slot.span()).map(|span| span.trace_id().to_string());
    sse::error(&message, trace_id)
}

/// A sync iterator read as a `Stream`: what an async endpoint returning
/// `impl Iterator` is drained as (each `next` runs on the runtime).
pub fn iter_stream<I: IntoIterator>(items: I) -> IterStream<I::IntoIter> {
    IterStream(items.into_iter())
}

/// See [`iter_stream`].
#[derive(Debug)]
pub struct IterStream<I>(I);

impl<I: Iterator + Unpin> Stream for IterStream<I> {
    type Item = I::Item;

    fn poll_next(mut self: std::pin::Pin<&mut Self>, _task: &mut std::task::Context<'_>) -> Poll<Option<I::Item>> {
        Poll::Ready(self.0.next())
    }
}

/// Turning a streamed item into an event, by autoref specialization in
/// generated code: `Result` items end the stream at their first `Err`,
/// anything `Serialize` is an event's JSON.
///
/// ```
/// use traced::__private::stream_items::*;
/// let item: Result<u32, std::io::Error> = Ok(3);
/// assert!(matches!((&&&Item(&item)).__traced_event(), traced::__private::ItemEvent::Data(_)));
/// ```
pub mod items {
    use std::fmt::{Debug, Display};

    use serde::Serialize;

    use super::ItemEvent;

    /// One item, borrowed.
    pub struct Item<'a, T>(pub &'a T);

    fn json(value: &impl Serialize) -> ItemEvent {
        match serde_json::to_vec(value) {
            Ok(json) => ItemEvent::Data(json),
            Err(error) => ItemEvent::Failed {
                type_name: "serde_json::Error",
                message: format!("an item could not be serialized: {error}"),
            },
        }
    }

    /// `Result<T, E: Display>`.
    pub trait ViaDisplayItemError {
        /// The event.
        fn __traced_event(&self) -> ItemEvent;
    }

    impl<T: Serialize, E: Display> ViaDisplayItemError for &&Item<'_, Result<T, E>> {
        fn __traced_event(&self) -> ItemEvent {
            match self.0 {
                Ok(value) => json(value),
                Err(error) => ItemEvent::Failed { type_name: std::any::type_name::<E>(), message: error.to_string() },
            }
        }
    }

    /// `Result<T, E: Debug>`.
    pub trait ViaDebugItemError {
        /// The event.
        fn __traced_event(&self) -> ItemEvent;
    }

    impl<T: Serialize, E: Debug> ViaDebugItemError for &Item<'_, Result<T, E>> {
        fn __traced_event(&self) -> ItemEvent {
            match self.0 {
                Ok(value) => json(value),
                Err(error) => {
                    ItemEvent::Failed { type_name: std::any::type_name::<E>(), message: format!("{error:?}") }
                }
            }
        }
    }

    /// Anything `Serialize`.
    pub trait ViaSerializeItem {
        /// The event.
        fn __traced_event(&self) -> ItemEvent;
    }

    impl<T: Serialize> ViaSerializeItem for Item<'_, T> {
        fn __traced_event(&self) -> ItemEvent {
            json(self.0)
        }
    }
}
