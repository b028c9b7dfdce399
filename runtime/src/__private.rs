//! The one door generated code goes through: the core's, plus what
//! `#[traced_app]` needs from the serve layer. Not a stable API: anything
//! here may change in any release.

pub use serde::de::IgnoredAny;
pub use traced_core::__private::*;

pub use crate::serve::app::{App, BoxError, IntoSetup, ServiceName, finish, install};
pub use crate::serve::event_sink::{EventSink, ItemEvent, IterStream, items as stream_items, iter_stream};
pub use crate::serve::reply::{Reply, returned as reply};
pub use crate::serve::routes::Route;
