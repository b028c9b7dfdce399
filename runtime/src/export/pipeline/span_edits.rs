//! What the processor changes on the SDK's spans before export: long
//! string values cut (`OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`, which the SDK
//! leaves out), and the default AI kind on traced's own.

use opentelemetry::{Array, KeyValue, StringValue, Value};
use opentelemetry_sdk::trace::SpanData;

use traced_core::__layers::{AI_KIND_KEY, AiKind, has_ai_kind};

/// `openinference.span.kind = CHAIN` on a span of traced's that has no kind.
pub(super) fn add_default_ai_kind(span: &mut SpanData) {
    if span.instrumentation_scope.name() == "traced" && !has_ai_kind(&span.attributes) {
        span.attributes.push(KeyValue::new(AI_KIND_KEY, AiKind::Chain.as_str()));
    }
}

/// Cuts string values to `limit` characters: the SDK does not implement
/// `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`.
pub(crate) fn truncate_span(span: &mut SpanData, limit: usize) {
    span.attributes.iter_mut().for_each(|kv| truncate_value(kv, limit));
    for event in span.events.events.iter_mut() {
        event.attributes.iter_mut().for_each(|kv| truncate_value(kv, limit));
    }
    for link in span.links.links.iter_mut() {
        link.attributes.iter_mut().for_each(|kv| truncate_value(kv, limit));
    }
}

fn truncate_value(kv: &mut KeyValue, limit: usize) {
    let cut = |s: &StringValue| -> Option<StringValue> {
        let text = s.as_str();
        let end = text.char_indices().nth(limit)?.0;
        Some(StringValue::from(text[..end].to_string()))
    };
    match &mut kv.value {
        Value::String(s) => {
            if let Some(short) = cut(s) {
                *s = short;
            }
        }
        Value::Array(Array::String(values)) => {
            for s in values.iter_mut() {
                if let Some(short) = cut(s) {
                    *s = short;
                }
            }
        }
        _ => {}
    }
}
