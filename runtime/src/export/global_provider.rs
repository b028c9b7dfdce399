//! The provider `opentelemetry::global` hands out while traced is installed:
//! the SDK's, except that a span started under the current context (code
//! written against the OpenTelemetry API inside a sync `#[span]` fn) gets
//! traced's current span as its parent. That span lives in traced's own span
//! core, which the OpenTelemetry context alone does not show.

use opentelemetry::trace::{SpanBuilder, TraceContextExt as _, Tracer, TracerProvider};
use opentelemetry::{Context, InstrumentationScope};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use traced_core::__layers::current_context;

#[derive(Clone, Debug)]
pub(crate) struct GlobalProvider(pub SdkTracerProvider);

impl TracerProvider for GlobalProvider {
    type Tracer = GlobalTracer;

    fn tracer_with_scope(&self, scope: InstrumentationScope) -> GlobalTracer {
        GlobalTracer(self.0.tracer_with_scope(scope))
    }
}

#[derive(Clone, Debug)]
pub(crate) struct GlobalTracer(SdkTracer);

impl Tracer for GlobalTracer {
    type Span = opentelemetry_sdk::trace::Span;

    fn build_with_context(&self, builder: SpanBuilder, parent_cx: &Context) -> Self::Span {
        let ambient = Context::map_current(|cx| cx.span().span_context().span_id());
        if parent_cx.span().span_context().span_id() == ambient {
            return self.0.build_with_context(builder, &current_context());
        }
        self.0.build_with_context(builder, parent_cx)
    }
}
