//! The door `traced`'s export, serve and bridge layers go through into the
//! core: installing the tracer and the hooks, collecting finished spans,
//! serving requests, reporting errors the way spans do. `traced` does not
//! re-export it; generated code never names it. Not a stable API.

pub use crate::__private::*;
pub use crate::ai_kind::{AI_KIND_KEY, has_ai_kind};
pub use crate::bridged_span::start_bridged_span;
pub use crate::error_chain::{chain_text, error_chain, innermost_source};
pub use crate::exception::record_exception_on;
pub use crate::finished_spans::{
    Finished, FinishedSpan, FinishedSpans, anchor, collect_finished, collect_pending, set_finished_sink,
};
pub use crate::local_span::{current_context, current_frame_records, current_span_context, event_on_current_frame};
pub use crate::panic_message::panic_message;
pub use crate::propagation::{extract_remote, propagator};
pub use crate::request_slot::{AiNote, RequestSlot};
pub use crate::request_span::start_request_span;
pub use crate::stage_timer::set_stage_hook;
pub use crate::trace_context::{traceparent, traceparent_bytes};
pub use crate::tracer_slot::{Sampling, SpanStart, StartSpan, install_tracer, remove_tracer, set_flush_hook};
pub use fastant::Anchor;
