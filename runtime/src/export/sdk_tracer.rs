//! The core's hook for the spans it does not record itself (async fns,
//! streams, spans with links, the `tracing` bridge's), on the SDK's tracer:
//! the only place the core's spans meet the SDK.

use opentelemetry::Context;
use opentelemetry::trace::{SpanBuilder, TraceContextExt as _, TracerProvider as _};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use traced_core::__layers::{FinishedSpans, SpanStart, StartSpan};

/// `provider`'s tracer under traced's instrumentation scope.
pub(crate) struct SdkStart(SdkTracer);

impl SdkStart {
    pub(crate) fn new(provider: &SdkTracerProvider) -> Self {
        SdkStart(provider.tracer_with_scope(FinishedSpans::scope().clone()))
    }
}

impl StartSpan for SdkStart {
    fn start(&self, span: SpanStart, parent: &Context) -> Context {
        let mut builder = SpanBuilder::from_name(span.name).with_kind(span.kind);
        if !span.links.is_empty() {
            builder = builder.with_links(span.links);
        }
        if !span.attributes.is_empty() {
            builder = builder.with_attributes(span.attributes);
        }
        parent.with_span(builder.start_with_context(&self.0, parent))
    }
}
