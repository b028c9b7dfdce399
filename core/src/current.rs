//! Adding to whatever span is current, from code that has no handle on it.

use opentelemetry::trace::TraceContextExt as _;
use opentelemetry::{Context, KeyValue};

use crate::local_span;

/// Adds an event to the current span (one per denoising step, say). Does
/// nothing when no span is recording.
///
/// ```
/// # extern crate traced_core as traced;
/// #[traced::span]
/// fn denoise(steps: u32) {
///     for step in 0..steps {
///         traced::add_event("denoise-step", [("step", i64::from(step))]);
///     }
/// }
/// denoise(4);
/// ```
pub fn add_event<K, V>(name: &'static str, attributes: impl IntoIterator<Item = (K, V)>)
where
    K: Into<opentelemetry::Key>,
    V: Into<opentelemetry::Value>,
{
    if let Some(frame) = local_span::newest() {
        if local_span::is_recording(frame) {
            local_span::add_event(frame, name, attributes.into_iter().map(|(k, v)| KeyValue::new(k, v)).collect());
        }
        return;
    }
    let cx = Context::current();
    let span = cx.span();
    if span.is_recording() {
        span.add_event(name, attributes.into_iter().map(|(k, v)| KeyValue::new(k, v)).collect());
    }
}

/// Sets an attribute on the current span, for values known only mid-way.
/// Does nothing when no span is recording.
///
/// ```
/// # extern crate traced_core as traced;
/// #[traced::span]
/// fn decode() {
///     traced::set_attribute("image.width", 512);
/// }
/// decode();
/// ```
pub fn set_attribute(key: &'static str, value: impl Into<opentelemetry::Value>) {
    if let Some(frame) = local_span::newest() {
        local_span::set_attribute(frame, KeyValue::new(key, value));
        return;
    }
    let cx = Context::current();
    let span = cx.span();
    if span.is_recording() {
        span.set_attribute(KeyValue::new(key, value));
    }
}
