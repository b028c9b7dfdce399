//! An app's endpoints as a route table: `#[traced_app]` lists each
//! `#[endpoint]` here with the code that turns a JSON body into a call and
//! the call's return into a response.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::serve::event_sink::EventSink;
use crate::serve::reply::Reply;

/// A boxed future, as routes return them.
pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

type Handler<A> = Arc<dyn Fn(Arc<A>, Vec<u8>) -> Result<Call, String> + Send + Sync>;

/// What a route does with a parsed body.
pub(crate) enum Call {
    /// Sync work (GPU inference): runs on the blocking pool.
    Blocking(Box<dyn FnOnce() -> Reply + Send>),
    /// Async work: runs on the runtime.
    Async(BoxFuture<Reply>),
    /// A sync endpoint that streams: runs on the blocking pool, writing its
    /// events as it makes them.
    BlockingStream(Box<dyn FnOnce(EventSink) + Send>),
    /// An async endpoint that streams: runs on the runtime.
    AsyncStream(Box<dyn FnOnce(EventSink) -> BoxFuture<()> + Send>),
}

/// One endpoint: its path, span name, and handler.
pub struct Route<A> {
    /// The path it is served at (POST).
    pub path: &'static str,
    /// Its span name.
    pub name: &'static str,
    handler: Handler<A>,
}

impl<A> Clone for Route<A> {
    fn clone(&self) -> Self {
        Route { path: self.path, name: self.name, handler: Arc::clone(&self.handler) }
    }
}

fn parse<I: DeserializeOwned>(body: &[u8]) -> Result<I, String> {
    let body = if body.iter().all(u8::is_ascii_whitespace) { b"null".as_slice() } else { body };
    serde_json::from_slice(body).map_err(|error| error.to_string())
}

impl<A: Send + Sync + 'static> Route<A> {
    /// A sync endpoint taking a JSON input.
    pub fn blocking<I, F>(path: &'static str, name: &'static str, call: F) -> Self
    where
        I: DeserializeOwned + Send + 'static,
        F: Fn(&A, I) -> Reply + Send + Sync + Copy + 'static,
    {
        let handler: Handler<A> = Arc::new(move |app, body| {
            let input = parse::<I>(&body)?;
            Ok(Call::Blocking(Box::new(move || call(&app, input))))
        });
        Route { path, name, handler }
    }

    /// An async endpoint taking a JSON input.
    pub fn asynchronous<I, F, Fut>(path: &'static str, name: &'static str, call: F) -> Self
    where
        I: DeserializeOwned + Send + 'static,
        F: Fn(Arc<A>, I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Reply> + Send + 'static,
    {
        let handler: Handler<A> = Arc::new(move |app, body| {
            let input = parse::<I>(&body)?;
            Ok(Call::Async(Box::pin(call(app, input))))
        });
        Route { path, name, handler }
    }

    /// A sync endpoint answering with a stream of events.
    pub fn blocking_stream<I, F>(path: &'static str, name: &'static str, call: F) -> Self
    where
        I: DeserializeOwned + Send + 'static,
        F: Fn(&A, I, EventSink) + Send + Sync + Copy + 'static,
    {
        let handler: Handler<A> = Arc::new(move |app, body| {
            let input = parse::<I>(&body)?;
            Ok(Call::BlockingStream(Box::new(move |sink| call(&app, input, sink))))
        });
        Route { path, name, handler }
    }

    /// An async endpoint answering with a stream of events.
    pub fn asynchronous_stream<I, F, Fut>(path: &'static str, name: &'static str, call: F) -> Self
    where
        I: DeserializeOwned + Send + 'static,
        F: Fn(Arc<A>, I, EventSink) -> Fut + Send + Sync + Copy + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let handler: Handler<A> = Arc::new(move |app, body| {
            let input = parse::<I>(&body)?;
            Ok(Call::AsyncStream(Box::new(move |sink| Box::pin(call(app, input, sink)))))
        });
        Route { path, name, handler }
    }

    /// The call for `body`, or serde's message when it does not parse.
    pub(crate) fn prepare(&self, app: Arc<A>, body: Vec<u8>) -> Result<Call, String> {
        (self.handler)(app, body)
    }
}
