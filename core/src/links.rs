//! `links(...)` and `follows_from(...)`: the spans a span stems from.

use opentelemetry::Context;
use opentelemetry::trace::{Link, SpanContext, TraceContextExt as _};

use crate::carrier::Carrier;
use crate::propagation::extract_remote;

/// Anything that names a span to link to.
pub trait IntoLink {
    /// The span context to link to; invalid ones are left out.
    fn span_context(&self) -> SpanContext;
}

impl IntoLink for SpanContext {
    fn span_context(&self) -> SpanContext {
        self.clone()
    }
}

impl IntoLink for Context {
    fn span_context(&self) -> SpanContext {
        self.span().span_context().clone()
    }
}

impl IntoLink for Carrier {
    fn span_context(&self) -> SpanContext {
        extract_remote(self).map_or_else(SpanContext::empty_context, |cx| cx.span().span_context().clone())
    }
}

impl<T: IntoLink + ?Sized> IntoLink for &T {
    fn span_context(&self) -> SpanContext {
        (**self).span_context()
    }
}

/// Collects `links(...)` into OTel links, skipping invalid contexts.
pub fn links<const N: usize>(targets: [&dyn IntoLink; N]) -> Vec<Link> {
    targets.iter().map(|target| target.span_context()).filter(SpanContext::is_valid).map(Link::with_context).collect()
}
