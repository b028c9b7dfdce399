//! What code annotated with `traced`'s macros calls: the span around each
//! `#[span]` and `#[endpoint]` fn, its attributes, events and errors, and the
//! W3C context in and out of a [`Carrier`]. No HTTP, no exporters, no async
//! runtime: a library crate that only annotates its fns depends on this
//! crate alone, and the application's `traced` (which re-exports all of it)
//! installs the tracer its spans go to.
//!
//! Generated code names the crate the manifest depends on, under whatever
//! name it gives it:
//!
//! ```toml
//! [dependencies]
//! traced-core = "0.1"
//! ```
//!
//! ```
//! #[traced_core::span(args(steps))]
//! fn denoise(steps: u32) -> Result<u32, std::io::Error> {
//!     traced_core::add_event("denoise-step", [("step", 0_i64)]);
//!     Ok(steps)
//! }
//!
//! // No tracer installed: the span is inert, and the call costs a load.
//! assert!(!traced_core::is_enabled());
//! assert_eq!(denoise(4).unwrap(), 4);
//! ```

mod ai_kind;
mod attributes;
mod baggage;
mod bridged_span;
mod carrier;
mod current;
mod device;
mod error_chain;
mod exception;
mod finished_spans;
mod gen_ai;
mod in_span;
mod kind;
mod links;
mod local_span;
mod meta;
mod panic_message;
mod propagation;
mod request_slot;
mod request_span;
mod short_strings;
mod span_handle;
mod span_ids;
mod span_limits;
mod spanned;
mod stage_timer;
mod trace_context;
mod tracer_slot;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

#[doc(hidden)]
#[path = "layers.rs"]
pub mod __layers;

pub use ai_kind::AiKind;
pub use attributes::{AttrValue, Attributes, SpanAttributes};
pub use carrier::Carrier;
pub use current::{add_event, set_attribute};
pub use device::set_device_sync;
pub use gen_ai::GenAiRequest;
pub use local_span::current_context;
pub use propagation::{current_trace_id, extract, inject, inject_context};
pub use traced_macros::{SpanAttributes, endpoint, span};
pub use tracer_slot::is_enabled;
