//! W3C trace context and baggage between apps: the propagator, and the
//! current context in and out of a [`Carrier`].

use std::sync::LazyLock;

use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, TextMapCompositePropagator, TextMapPropagator};
use opentelemetry::trace::TraceContextExt as _;

use crate::baggage::BaggagePropagator;
use crate::carrier::Carrier;
use crate::trace_context::TraceContextPropagator;

/// The propagator `traced` uses everywhere; it works before `init` and with
/// tracing off, so context still flows through an app that records nothing.
static PROPAGATOR: LazyLock<TextMapCompositePropagator> = LazyLock::new(propagator);

/// The W3C trace-context (level 2, see `trace_context`) and baggage
/// propagators, composed.
pub fn propagator() -> TextMapCompositePropagator {
    TextMapCompositePropagator::new(vec![Box::new(TraceContextPropagator), Box::new(BaggagePropagator)])
}

/// The current context (span and baggage) as a [`Carrier`].
pub fn inject() -> Carrier {
    inject_context(&crate::local_span::current_context())
}

/// The given context as a [`Carrier`].
pub fn inject_context(cx: &Context) -> Carrier {
    let mut carrier = Carrier::default();
    PROPAGATOR.inject_context(cx, &mut carrier);
    carrier
}

/// The context a [`Carrier`] describes, as a child of the current one; an
/// invalid or missing `traceparent` yields no remote parent.
pub fn extract(carrier: &Carrier) -> Context {
    PROPAGATOR.extract(carrier)
}

/// The remote span some fields name (a [`Carrier`], a request's headers), on
/// a context of its own: `None` when they hold no valid `traceparent`.
pub fn extract_remote(fields: &dyn Extractor) -> Option<Context> {
    let cx = PROPAGATOR.extract_with_context(&Context::new(), fields);
    let span_context = cx.span().span_context().clone();
    (span_context.is_valid() && span_context.is_remote()).then_some(cx)
}

/// The current span's trace id as 32 lowercase hex digits, or `None` when no
/// valid span is current.
///
/// ```
/// # extern crate traced_core as traced;
/// assert_eq!(traced::current_trace_id(), None);
/// ```
pub fn current_trace_id() -> Option<String> {
    let span_context = crate::local_span::current_span_context();
    span_context.is_valid().then(|| span_context.trace_id().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_carrier_keeps_the_random_flag_and_one_copy_of_a_repeated_key() {
        let carrier: Carrier = [
            ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03"),
            ("tracestate", "vendor=1,tenant@system=2,vendor=3"),
        ]
        .into_iter()
        .collect();
        let passed_on = inject_context(&extract(&carrier));
        assert_eq!(passed_on.get("traceparent"), Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03"));
        assert_eq!(passed_on.get("tracestate"), Some("vendor=1,tenant@system=2"));
    }
}
