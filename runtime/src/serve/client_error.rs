//! What a call through `traced::Client` that failed reports.

use std::fmt;

/// A call that failed: the URL, the HTTP status when one came back, and the
/// start of the body or the transport error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientError {
    /// Where the call went.
    pub url: String,
    /// The answer's status, when there was one.
    pub status: Option<u16>,
    /// The answer's body, or what went wrong.
    pub body: String,
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            Some(status) => write!(f, "POST {}: HTTP {status}: {}", self.url, self.body),
            None => write!(f, "POST {}: {}", self.url, self.body),
        }
    }
}

impl std::error::Error for ClientError {}
