//! Which finished span is its trace's root in this process: the console
//! prints a trace at its root, the keep rules decide at it, and the
//! processors collect traced's own spans before queueing it.

use opentelemetry::trace::SpanId;
use opentelemetry_sdk::trace::SpanData;

/// True for a span without a parent here: none at all, or a remote one.
pub(crate) fn is_local_root(span: &SpanData) -> bool {
    span.parent_span_id == SpanId::INVALID || span.parent_span_is_remote
}
