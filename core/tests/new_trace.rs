//! The first span of a new trace, when traced can decide its sampling, is
//! traced's own: the export layer's hook is not asked for it, and
//! OpenTelemetry code under it still sees it as the current span. A span
//! with links still goes to the hook.

use std::sync::atomic::{AtomicUsize, Ordering};

use opentelemetry::Context;
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState};
use traced_core::__layers::{Sampling, SpanStart, StartSpan, install_tracer};

static ASKED: AtomicUsize = AtomicUsize::new(0);

/// Counts the spans it is asked to start, and starts none.
struct Counting;

impl StartSpan for Counting {
    fn start(&self, _span: SpanStart, parent: &Context) -> Context {
        ASKED.fetch_add(1, Ordering::SeqCst);
        parent.clone()
    }
}

/// What OpenTelemetry code sees as the current span's trace id.
fn otel_trace_id() -> Option<String> {
    let cx = Context::current();
    let span = cx.span();
    let context = span.span_context();
    context.is_valid().then(|| context.trace_id().to_string())
}

#[traced_core::span]
fn batch_item() -> (Option<String>, Option<String>) {
    (traced_core::current_trace_id(), otel_trace_id())
}

fn elsewhere() -> SpanContext {
    SpanContext::new(TraceId::from(7), SpanId::from(7), TraceFlags::SAMPLED, true, TraceState::NONE)
}

#[traced_core::span(links(elsewhere()))]
fn linked() {}

#[test]
fn a_new_trace_is_traceds_own_and_visible_to_opentelemetry_code() {
    install_tracer(Counting, Sampling { follows_parent: true, skips_unsampled_children: true, root_ratio: Some(1.0) });
    let (ours, theirs) = batch_item();
    assert!(ours.is_some(), "a sampled new trace has ids");
    assert_eq!(ours, theirs, "OpenTelemetry code under the span sees it");
    assert_eq!(ASKED.load(Ordering::SeqCst), 0, "the hook was not asked for a new trace");
    linked();
    assert_eq!(ASKED.load(Ordering::SeqCst), 1, "a span with links is the hook's");
}
