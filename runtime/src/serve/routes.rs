//! An app's endpoints as a route table: `#[traced_app]` lists each
//! `#[endpoint]` here with the code that turns a JSON body into a call and
//! the call's return into a response.

use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::serve::event_sink::EventSink;

/// A boxed future, as routes return them.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// An HTTP answer: a status and a JSON body, or an error message that the
/// server sends as `{"error": ..., "trace_id": ...}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The HTTP status code.
    pub status: u16,
    /// The JSON body of a success.
    pub body: Vec<u8>,
    /// The message of a failure.
    pub error: Option<String>,
}

impl Reply {
    /// 200 with `value` as JSON.
    pub fn json(value: &impl Serialize) -> Reply {
        match serde_json::to_vec(value) {
            Ok(body) => Reply { status: 200, body, error: None },
            Err(error) => Reply::error(500, &format!("the response could not be serialized: {error}")),
        }
    }

    /// A failure with this status and message.
    pub fn error(status: u16, message: &str) -> Reply {
        Reply { status, body: Vec::new(), error: Some(message.to_string()) }
    }
}

/// An error that knows its HTTP status: a handler's `Err` of such a type
/// answers with it instead of 500.
///
/// ```
/// #[derive(Debug)]
/// struct PromptTooLong;
///
/// impl std::fmt::Display for PromptTooLong {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         f.write_str("the prompt is longer than 77 tokens")
///     }
/// }
///
/// impl traced::HttpError for PromptTooLong {
///     fn status(&self) -> u16 {
///         400
///     }
/// }
/// ```
pub trait HttpError: Display {
    /// The status to answer with.
    fn status(&self) -> u16;
}

type Handler<A> = Arc<dyn Fn(Arc<A>, Vec<u8>) -> Result<Call, String> + Send + Sync>;

/// What a route does with a parsed body.
pub enum Call {
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
    pub fn prepare(&self, app: Arc<A>, body: Vec<u8>) -> Result<Call, String> {
        (self.handler)(app, body)
    }
}

/// Turning an endpoint's return value into a [`Reply`], by autoref
/// specialization in generated code: `Result`s map `Err` to an error status,
/// anything `Serialize` becomes a 200.
///
/// ```
/// use traced::__private::reply::*;
/// let ok: Result<u32, std::io::Error> = Ok(3);
/// assert_eq!((&&&&Returned(ok)).__traced_reply().status, 200);
/// ```
pub mod reply {
    use super::{HttpError, Reply};
    use serde::Serialize;
    use std::fmt::Display;

    /// An endpoint's return value.
    pub struct Returned<T>(pub T);

    /// `Result<T, E: HttpError>`: the error's own status.
    pub trait ViaHttpError {
        /// The reply.
        fn __traced_reply(&self) -> Reply;
    }

    impl<T: Serialize, E: HttpError> ViaHttpError for &&&Returned<Result<T, E>> {
        fn __traced_reply(&self) -> Reply {
            match &self.0 {
                Ok(value) => Reply::json(value),
                Err(error) => Reply::error(error.status(), &error.to_string()),
            }
        }
    }

    /// `Result<T, E: Display>`: 500 with the message.
    pub trait ViaDisplayError {
        /// The reply.
        fn __traced_reply(&self) -> Reply;
    }

    impl<T: Serialize, E: Display> ViaDisplayError for &&Returned<Result<T, E>> {
        fn __traced_reply(&self) -> Reply {
            match &self.0 {
                Ok(value) => Reply::json(value),
                Err(error) => Reply::error(500, &error.to_string()),
            }
        }
    }

    /// `Result<T, E: Debug>`: 500 with the debug string.
    pub trait ViaDebugError {
        /// The reply.
        fn __traced_reply(&self) -> Reply;
    }

    impl<T: Serialize, E: std::fmt::Debug> ViaDebugError for &Returned<Result<T, E>> {
        fn __traced_reply(&self) -> Reply {
            match &self.0 {
                Ok(value) => Reply::json(value),
                Err(error) => Reply::error(500, &format!("{error:?}")),
            }
        }
    }

    /// Anything `Serialize`: 200.
    pub trait ViaSerialize {
        /// The reply.
        fn __traced_reply(&self) -> Reply;
    }

    impl<T: Serialize> ViaSerialize for Returned<T> {
        fn __traced_reply(&self) -> Reply {
            Reply::json(&self.0)
        }
    }
}
