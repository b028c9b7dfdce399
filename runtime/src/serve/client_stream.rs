//! `traced::Client` reading a streamed answer: the events of another app's
//! streaming endpoint, each yielded as it arrives, inside one Client span
//! that covers the whole stream (its items counted, the time to the first
//! one recorded) and ends at the stream's end, at an `error` event (marked
//! Error), or when the caller drops the stream.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll, ready};
use std::time::Instant;

use bytes::Bytes;
use futures_core::Stream;
use opentelemetry::Context;
use opentelemetry::trace::TraceContextExt as _;
use serde::de::DeserializeOwned;
use traced_core::__layers::{SpanHandle, Spanned, chain_text, record_exception_on};

use crate::serve::client_error::ClientError;
use crate::serve::sse::{Event, Parser};

type NextChunk = Pin<Box<dyn Future<Output = (reqwest::Response, reqwest::Result<Option<Bytes>>)> + Send>>;

/// The items of a streamed answer, as they arrive: a [`Stream`] of
/// `Result<T, ClientError>`, ended by the answer's end or by its first
/// error (an `error` event, a broken connection, an item that is not the
/// expected JSON).
///
/// Made by [`crate::Client::stream`]; [`EventStream::next`] reads one item
/// without any stream combinator crate.
pub struct EventStream<T> {
    inner: Spanned<Decoded<T>>,
}

impl<T> std::fmt::Debug for EventStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream").finish_non_exhaustive()
    }
}

impl<T: DeserializeOwned> EventStream<T> {
    pub(crate) fn new(
        started: Instant,
        span: SpanHandle,
        url: String,
        status: u16,
        response: reqwest::Response,
    ) -> Self {
        let cx = span.context().cloned();
        let decoded = Decoded {
            url,
            status,
            cx,
            parser: Parser::default(),
            ready: std::collections::VecDeque::new(),
            reading: Some(next_chunk(response)),
            _items: PhantomData,
        };
        EventStream { inner: Spanned::new(started, span, decoded, false) }
    }

    /// The next item, or `None` once the answer has ended.
    pub async fn next(&mut self) -> Option<Result<T, ClientError>> {
        std::future::poll_fn(|task| Pin::new(&mut self.inner).poll_next(task)).await
    }
}

impl<T: DeserializeOwned> Stream for EventStream<T> {
    type Item = Result<T, ClientError>;

    fn poll_next(mut self: Pin<&mut Self>, task: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.inner).poll_next(task)
    }
}

fn next_chunk(mut response: reqwest::Response) -> NextChunk {
    Box::pin(async move {
        let chunk = response.chunk().await;
        (response, chunk)
    })
}

/// The answer's bytes, parsed into events and decoded into items.
struct Decoded<T> {
    url: String,
    status: u16,
    /// The Client span's context, to mark a failure on.
    cx: Option<Context>,
    parser: Parser,
    ready: std::collections::VecDeque<Event>,
    /// `None` once the answer has ended or failed.
    reading: Option<NextChunk>,
    _items: PhantomData<fn() -> T>,
}

impl<T> Unpin for Decoded<T> {}

impl<T: DeserializeOwned> Decoded<T> {
    /// Ends the stream with `body` as its error, marked on the span.
    fn fail(&mut self, body: String) -> ClientError {
        self.reading = None;
        self.ready.clear();
        let error = ClientError { url: self.url.clone(), status: Some(self.status), body };
        if let Some(cx) = &self.cx {
            record_exception_on(&cx.span(), "traced::ClientError", &error.to_string());
        }
        error
    }

    /// The item an event carries, if it carries one.
    fn decode(&mut self, event: Event) -> Option<Result<T, ClientError>> {
        match event.name.as_str() {
            "message" => Some(
                serde_json::from_str(&event.data)
                    .map_err(|e| self.fail(format!("an event is not the expected JSON: {e}: {}", event.data))),
            ),
            "error" => Some(Err(self.fail(event.data))),
            // Events of other names are for other readers.
            _ => None,
        }
    }
}

impl<T: DeserializeOwned> Stream for Decoded<T> {
    type Item = Result<T, ClientError>;

    fn poll_next(mut self: Pin<&mut Self>, task: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        loop {
            while let Some(event) = self.ready.pop_front() {
                if let Some(item) = self.decode(event) {
                    return Poll::Ready(Some(item));
                }
            }
            let Some(reading) = self.reading.as_mut() else { return Poll::Ready(None) };
            let (response, chunk) = ready!(reading.as_mut().poll(task));
            match chunk {
                Ok(Some(bytes)) => {
                    let this = &mut *self;
                    let mut events = Vec::new();
                    this.parser.feed(&bytes, &mut events);
                    this.ready.extend(events);
                    this.reading = Some(next_chunk(response));
                }
                Ok(None) => self.reading = None,
                Err(error) => {
                    let body = format!("the answer broke off: {}", chain_text(&error));
                    return Poll::Ready(Some(Err(self.fail(body))));
                }
            }
        }
    }
}
