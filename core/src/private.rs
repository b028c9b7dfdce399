//! The one door generated code, and `traced`'s own export and serve layers,
//! go through. Not a stable API: anything here may change in any release.

pub use crate::ai_kind::{AI_KIND_KEY, AiKind, has_ai_kind};
pub use crate::attributes::{AttrValue, Attributes, SpanAttributes};
pub use crate::carrier::Carrier;
pub use crate::in_span::InSpan;
pub use crate::kind::Kind;
pub use crate::links::{IntoLink, links};
pub use crate::meta::Meta;
pub use crate::span_handle::SpanHandle;
pub use crate::spanned::Spanned;
pub use crate::stage_timer::StageTimer;

#[path = "input.rs"]
pub mod input;
#[path = "outcome.rs"]
pub mod outcome;

// For the layers above: they install the tracer and hooks, serve requests,
// and report errors the way spans do.
pub use crate::bridged_span::start_bridged_span;
pub use crate::error_chain::{chain_text, error_chain, innermost_source};
pub use crate::exception::record_exception_on;
pub use crate::finished_spans::{
    Finished, FinishedSpan, FinishedSpans, collect_finished, collect_pending, set_finished_sink,
};
pub use crate::local_span::{current_context, current_frame_records, current_span_context, event_on_current_frame};
pub use crate::panic_message::panic_message;
pub use crate::propagation::{extract_remote, propagator};
pub use crate::request_slot::{AiNote, RequestSlot};
pub use crate::request_span::start_request_span;
pub use crate::span_data_conversion::SpanDataConversion;
pub use crate::stage_timer::set_stage_hook;
pub use crate::trace_context::{traceparent, traceparent_bytes};
pub use crate::tracer_slot::{Sampling, install_tracer, remove_tracer, set_flush_hook};
