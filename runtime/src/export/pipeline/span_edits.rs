//! What the processor changes on the SDK's spans before export: long
//! string values cut (`OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`, which the SDK
//! leaves out), the default AI kind on traced's own, and, over http/json,
//! NaN and infinite values as text.

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

/// Over http/json the OTLP library writes a NaN or infinite double as
/// `null` (serde_json's way), which one receiver reads as no value and
/// another (rotel) refuses with the whole request; proto3 JSON gives them as
/// the strings `"NaN"`, `"Infinity"` and `"-Infinity"`. Such values of the span's and its events' attributes are
/// sent as those strings instead (an array of doubles holding one, as an
/// array of strings). Returns how many values were changed.
pub(super) fn non_finite_as_text(span: &mut SpanData) -> usize {
    let events = span.events.events.iter_mut().flat_map(|event| event.attributes.iter_mut());
    span.attributes.iter_mut().chain(events).map(mend_value).sum()
}

fn mend_value(kv: &mut KeyValue) -> usize {
    match &kv.value {
        Value::F64(number) if !number.is_finite() => {
            kv.value = Value::String(proto3_text(*number).into());
            1
        }
        Value::Array(Array::F64(numbers)) if numbers.iter().any(|n| !n.is_finite()) => {
            let mended = numbers.iter().filter(|n| !n.is_finite()).count();
            let texts = numbers
                .iter()
                .map(|n| StringValue::from(if n.is_finite() { n.to_string() } else { proto3_text(*n).to_string() }))
                .collect();
            kv.value = Value::Array(Array::String(texts));
            mended
        }
        _ => 0,
    }
}

/// A non-finite double as proto3 JSON writes it.
fn proto3_text(number: f64) -> &'static str {
    if number.is_nan() {
        "NaN"
    } else if number > 0.0 {
        "Infinity"
    } else {
        "-Infinity"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::test_span::test_span;

    #[test]
    fn non_finite_values_become_proto3_text_and_finite_ones_stay() {
        let mut span = test_span(
            0,
            "evaluate",
            vec![
                KeyValue::new("loss", f64::NAN),
                KeyValue::new("ceiling", f64::INFINITY),
                KeyValue::new("floor", f64::NEG_INFINITY),
                KeyValue::new("score", 0.25),
                KeyValue::new("curve", Value::Array(Array::F64(vec![1.5, f64::NAN]))),
            ],
        );
        assert_eq!(non_finite_as_text(&mut span), 4);
        let value = |key: &str| span.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| kv.value.clone());
        assert_eq!(value("loss"), Some(Value::from("NaN")));
        assert_eq!(value("ceiling"), Some(Value::from("Infinity")));
        assert_eq!(value("floor"), Some(Value::from("-Infinity")));
        assert_eq!(value("score"), Some(Value::F64(0.25)));
        assert_eq!(value("curve"), Some(Value::Array(Array::String(vec!["1.5".into(), "NaN".into()]))));
        assert_eq!(non_finite_as_text(&mut span), 0, "nothing left to change");
    }
}
