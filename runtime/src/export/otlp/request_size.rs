//! Requests that fit the receiver: a batch whose OTLP encoding would pass
//! the request limit goes out as several requests, and a span too large to
//! fit alone has its largest values cut, with a visible marker, rather than
//! the span or its batch being lost.
//!
//! Sizes are estimated from the span's contents, rounding every field up,
//! without encoding it: the export thread would otherwise encode every span
//! twice.

use opentelemetry::{Array, KeyValue, StringValue, Value};
use opentelemetry_sdk::trace::SpanData;

/// Kept back from the limit for what a request adds around its spans: the
/// resource, the scope, the framing.
const ENVELOPE: usize = 16 * 1024;
/// A span's fields other than its strings and attributes: ids, times, kind,
/// flags, and the tags and lengths of the protobuf encoding.
const SPAN_FIXED: usize = 96;
const PER_ATTRIBUTE: usize = 12;
const PER_EVENT: usize = 24;
const PER_LINK: usize = 48;
/// A cut value ends with this, followed by how much of it was kept.
pub(crate) const TRUNCATION_MARKER: &str = "…[truncated by traced:";

/// The batch as requests of at most `limit` encoded bytes each, in order.
/// Returns how many spans had values cut.
pub(crate) fn split_to_fit(batch: Vec<SpanData>, limit: usize) -> (Vec<Vec<SpanData>>, usize) {
    let room = limit.saturating_sub(ENVELOPE).max(1);
    let mut requests: Vec<Vec<SpanData>> = Vec::new();
    let mut current: Vec<SpanData> = Vec::new();
    let mut current_size = 0;
    let mut cut = 0;
    for mut span in batch {
        let mut size = span_size(&span);
        if size > room {
            size = shrink_to(&mut span, room);
            cut += 1;
        }
        if !current.is_empty() && current_size + size > room {
            requests.push(std::mem::take(&mut current));
            current_size = 0;
        }
        current_size += size;
        current.push(span);
    }
    if !current.is_empty() {
        requests.push(current);
    }
    (requests, cut)
}

/// An upper bound of the span's size in an OTLP request.
pub(crate) fn span_size(span: &SpanData) -> usize {
    SPAN_FIXED
        + span.name.len()
        + span.span_context.trace_state().header().len()
        + status_size(&span.status)
        + attributes_size(&span.attributes)
        + span
            .events
            .iter()
            .map(|event| PER_EVENT + event.name.len() + attributes_size(&event.attributes))
            .sum::<usize>()
        + span.links.iter().map(|link| PER_LINK + attributes_size(&link.attributes)).sum::<usize>()
}

fn status_size(status: &opentelemetry::trace::Status) -> usize {
    match status {
        opentelemetry::trace::Status::Error { description } => description.len() + 8,
        _ => 4,
    }
}

fn attributes_size(attributes: &[KeyValue]) -> usize {
    attributes.iter().map(|kv| PER_ATTRIBUTE + kv.key.as_str().len() + value_size(&kv.value)).sum()
}

fn value_size(value: &Value) -> usize {
    match value {
        Value::String(s) => s.as_str().len(),
        Value::Array(Array::String(values)) => values.iter().map(|s| s.as_str().len() + 4).sum(),
        Value::Array(Array::Bool(values)) => values.len() * 2,
        Value::Array(Array::I64(values)) => values.len() * 10,
        Value::Array(Array::F64(values)) => values.len() * 9,
        _ => 10,
    }
}

/// Cuts the span's largest string values, one at a time, until it fits
/// `room`; returns its new size. A span whose bulk is not in string values
/// (thousands of events, say) is left as large as it is.
fn shrink_to(span: &mut SpanData, room: usize) -> usize {
    loop {
        let size = span_size(span);
        if size <= room {
            return size;
        }
        let Some(largest) = largest_string(span) else { return size };
        let original = largest.as_str().len();
        let keep = original.saturating_sub(size - room + TRUNCATION_MARKER.len() + 32);
        if keep == 0 && original <= TRUNCATION_MARKER.len() + 32 {
            return size;
        }
        *largest = cut(largest.as_str(), keep, original);
    }
}

/// `text` cut to at most `keep` bytes, at a character boundary, marked.
fn cut(text: &str, keep: usize, original: usize) -> StringValue {
    let mut end = keep.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    StringValue::from(format!("{}{TRUNCATION_MARKER} {end} of {original} bytes kept]", &text[..end]))
}

fn largest_string(span: &mut SpanData) -> Option<&mut StringValue> {
    let attributes = span
        .attributes
        .iter_mut()
        .chain(span.events.events.iter_mut().flat_map(|event| event.attributes.iter_mut()))
        .chain(span.links.links.iter_mut().flat_map(|link| link.attributes.iter_mut()));
    let mut largest: Option<&mut StringValue> = None;
    for kv in attributes {
        let candidates: Vec<&mut StringValue> = match &mut kv.value {
            Value::String(s) => vec![s],
            Value::Array(Array::String(values)) => values.iter_mut().collect(),
            _ => Vec::new(),
        };
        for candidate in candidates {
            if largest.as_ref().is_none_or(|l| candidate.as_str().len() > l.as_str().len()) {
                largest = Some(candidate);
            }
        }
    }
    largest
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;
    use crate::export::test_span::test_span;

    fn span(index: u64, attributes: Vec<KeyValue>) -> SpanData {
        test_span(index, "thumbnail", attributes)
    }

    /// What the exporter really sends for these spans.
    fn encoded(spans: &[SpanData]) -> usize {
        let resource = opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema::default();
        let request = opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest {
            resource_spans: opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope(
                spans.to_vec(),
                &resource,
            ),
        };
        request.encoded_len()
    }

    #[test]
    fn the_estimate_is_never_below_the_real_encoding() {
        let spans: Vec<SpanData> = (0..50)
            .map(|i| {
                span(
                    i,
                    vec![
                        KeyValue::new("image.base64", "x".repeat(i as usize * 100)),
                        KeyValue::new("steps", 4_i64),
                        KeyValue::new("scale", 7.5),
                        KeyValue::new(
                            "tags",
                            Value::Array(vec![StringValue::from("a"), StringValue::from("bc")].into()),
                        ),
                    ],
                )
            })
            .collect();
        for one in &spans {
            assert!(span_size(one) >= encoded(std::slice::from_ref(one)), "{}", one.span_context.span_id());
        }
        let estimated: usize = spans.iter().map(span_size).sum();
        let real = encoded(&spans);
        assert!(estimated >= real && estimated < real + real / 4, "estimated {estimated}, encoded {real}");
    }

    #[test]
    fn a_batch_over_the_limit_becomes_several_requests_that_fit() {
        let limit = 4 * 1024 * 1024;
        let spans: Vec<SpanData> =
            (0..300).map(|i| span(i, vec![KeyValue::new("image.base64", "x".repeat(100_000))])).collect();
        let (requests, cut) = split_to_fit(spans, limit);
        assert_eq!(cut, 0);
        assert!(requests.len() >= 8, "{} requests", requests.len());
        assert_eq!(requests.iter().map(Vec::len).sum::<usize>(), 300);
        for request in &requests {
            assert!(encoded(request) <= limit, "{} bytes", encoded(request));
        }
        let ids: Vec<u64> =
            requests.iter().flatten().map(|s| u64::from_be_bytes(s.span_context.span_id().to_bytes())).collect();
        assert_eq!(ids, (1..=300).collect::<Vec<_>>(), "order kept");
    }

    #[test]
    fn a_span_too_large_alone_has_its_largest_value_cut_with_a_marker() {
        let limit = 1024 * 1024;
        let huge = span(
            0,
            vec![KeyValue::new("image.base64", "é".repeat(1_000_000)), KeyValue::new("prompt", "a red circle")],
        );
        let small = span(1, vec![KeyValue::new("steps", 4_i64)]);
        let (requests, cut) = split_to_fit(vec![small, huge], limit);
        assert_eq!(cut, 1);
        let sent: Vec<&SpanData> = requests.iter().flatten().collect();
        assert_eq!(sent.len(), 2);
        for request in &requests {
            assert!(encoded(request) <= limit);
        }
        let image = sent[1].attributes[0].value.as_str();
        assert!(
            image.contains(TRUNCATION_MARKER) && image.ends_with("of 2000000 bytes kept]"),
            "{}",
            &image[image.len() - 60..]
        );
        assert!(image.starts_with("éé"));
        assert_eq!(sent[1].attributes[1].value.as_str(), "a red circle", "the small value is untouched");
    }

    #[test]
    fn a_small_batch_is_one_request() {
        let spans: Vec<SpanData> = (0..512).map(|i| span(i, vec![KeyValue::new("steps", 4_i64)])).collect();
        let (requests, cut) = split_to_fit(spans, 4 * 1024 * 1024);
        assert_eq!((requests.len(), requests[0].len(), cut), (1, 512, 0));
    }
}
