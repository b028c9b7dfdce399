//! The one door generated code goes through: the core's, plus what
//! `#[traced_app]` needs from the serve layer. Not a stable API: anything
//! here may change in any release.

pub use traced_core::__private::*;

#[cfg(feature = "serve")]
pub use crate::serve::app::{App, BoxError, IntoSetup, ServiceName, finish, install};
#[cfg(feature = "serve")]
pub use crate::serve::event_sink::{EventSink, ItemEvent, IterStream, items as stream_items, iter_stream};
#[cfg(feature = "serve")]
pub use crate::serve::reply::{Reply, returned as reply};
#[cfg(feature = "serve")]
pub use crate::serve::routes::Route;
#[cfg(feature = "serve")]
pub use serde::de::IgnoredAny;
