//! A streaming endpoint's HTTP answer: once the producer says how the
//! answer starts, either its error reply or a `text/event-stream` response
//! whose body hands out the events as the producer makes them. The body
//! owns the producer's end: dropped (the client hung up), it closes the
//! channel and stops an async producer at once.

use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use axum::body::Body;
use axum::http::HeaderValue;
use axum::response::Response;
use bytes::Bytes;
use http_body::Frame;
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio::task::JoinHandle;

use crate::serve::event_sink::Opened;
use crate::serve::reply::Reply;
use crate::serve::sse;

/// Waits for the producer's first word: the event stream, or the reply it
/// gave instead (an error before the first item, a panic).
pub(crate) async fn stream_response(
    opened: Opened,
    producer: JoinHandle<()>,
    permit: Option<OwnedSemaphorePermit>,
) -> Result<Response, Reply> {
    match opened.head.await {
        Ok(Ok(())) => {
            let body = EventBody { events: opened.events, _producer: AbortOnDrop(producer), _permit: permit };
            let mut response = Response::new(Body::new(body));
            let headers = response.headers_mut();
            headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(sse::CONTENT_TYPE));
            headers.insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            // Proxies that buffer (nginx) pass the events on as they come.
            headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
            Ok(response)
        }
        Ok(Err(reply)) => Err(reply),
        Err(_) => Err(match producer.await {
            Err(join) => Reply::panicked(join),
            Ok(()) => Reply::error(500, "the endpoint ended without an answer"),
        }),
    }
}

/// Stops an async producer when the body goes (a blocking one stops at its
/// next item, when it finds the channel closed).
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct EventBody {
    events: mpsc::Receiver<Bytes>,
    _producer: AbortOnDrop,
    /// The endpoint's concurrency limit counts a stream until its end.
    _permit: Option<OwnedSemaphorePermit>,
}

impl http_body::Body for EventBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        task: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.events.poll_recv(task).map(|event| event.map(|bytes| Ok(Frame::data(bytes))))
    }
}
