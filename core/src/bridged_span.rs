//! Spans started for instrumentation other than traced's macros (the
//! `tracing` bridge, the tower layer), under a parent it chooses, with a
//! name known only at run time.

use std::borrow::Cow;

use opentelemetry::{Context, KeyValue};

use crate::kind::Kind;
use crate::trace_context::keep_random_flag;
use crate::tracer_slot::{self, SpanStart};

/// Starts a span named `name` under `parent` and returns the context that
/// holds it, or `None` when tracing is off or the parent is unsampled under
/// a parent-based sampler (nothing would be recorded). `attributes` go to
/// the span as it starts (the sampler sees them, as the specification has
/// it, and the span keeps their vector rather than growing its own). The
/// caller ends the span.
pub fn start_bridged_span(
    name: impl Into<Cow<'static, str>>,
    kind: Kind,
    parent: &Context,
    attributes: impl FnOnce() -> Vec<KeyValue>,
) -> Option<Context> {
    if !tracer_slot::is_enabled() {
        return None;
    }
    if tracer_slot::skips_children_of(parent) {
        return None;
    }
    let span = SpanStart { name: name.into(), kind: kind.into(), links: Vec::new(), attributes: attributes() };
    let cx = tracer_slot::start_with_tracer(span, parent)?;
    Some(keep_random_flag(parent, cx))
}
