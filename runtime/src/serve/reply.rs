//! What an endpoint answers in one piece: a status and JSON, or an error
//! message; how a return value or an error type becomes one; and what a
//! task that did not return says.

use std::fmt::Display;

use serde::Serialize;
use traced_core::__layers::panic_message;

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

/// What a task that did not return says: its panic's message, or why it
/// was stopped.
pub(crate) fn join_failure(join: tokio::task::JoinError) -> String {
    match join.try_into_panic() {
        Ok(payload) => panic_message(payload.as_ref()),
        Err(join) => join.to_string(),
    }
}

impl Reply {
    /// 500 for a handler whose task did not return.
    pub(crate) fn panicked(join: tokio::task::JoinError) -> Reply {
        Reply::error(500, &format!("the handler panicked: {}", join_failure(join)))
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
pub mod returned {
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
