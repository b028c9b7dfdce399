//! The one door generated code goes through. Not a stable API: anything here
//! may change in any release.

pub use crate::app::{App, BoxError, IntoSetup, ServiceName, finish, install};
pub use crate::attributes::{AttrValue, Attributes, SpanAttributes};
pub use crate::propagation::Carrier;
pub use crate::routes::{Reply, Route, reply};
pub use crate::span_handle::{InSpan, IntoLink, Kind, Meta, SpanHandle, links};
pub use crate::stream::Traced;
pub use serde::de::IgnoredAny;

#[path = "input.rs"]
pub mod input;
#[path = "outcome.rs"]
pub mod outcome;

/// True while tracing is installed: the one relaxed load the fast path pays.
#[inline]
pub fn enabled() -> bool {
    crate::provider::is_enabled()
}
