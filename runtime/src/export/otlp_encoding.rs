//! OTLP's protobuf encoding of traced's own finished spans, written straight
//! from the threads' buffers: no `SpanData`, no intermediate messages, no
//! allocation per span. The export side runs once per span, as often as the
//! caller's side: building the library's messages (a `String` per key and
//! value) cost ten times what making the span did, so one thread making
//! spans at full speed outran export. The resource and the scope are encoded
//! once, with the OTLP library's own message types.
//!
//! Field numbers are those of opentelemetry-proto's `trace.proto` and
//! `common.proto`; a test decodes what this writes with the library's types
//! and compares it with the library's own conversion of the same spans.

use std::sync::Arc;

use opentelemetry::trace::{Event, SpanKind, Status};
use opentelemetry::{Array, KeyValue, StringValue, Value};
use opentelemetry_proto::tonic::common::v1::InstrumentationScope as ScopeMessage;
use opentelemetry_proto::tonic::resource::v1::Resource as ResourceMessage;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SpanData;
use prost::Message as _;
use traced_core::__private::{AI_KIND_KEY, AiKind, FinishedSpan, FinishedSpans};

const LEN: u32 = 2;
const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const FIXED32: u32 = 5;

/// How traced's spans are encoded for one OTLP exporter.
#[derive(Debug)]
pub(crate) struct OtlpEncoding {
    /// `ResourceSpans.resource`, tag included.
    resource: Vec<u8>,
    /// `ResourceSpans.schema_url`, tag included; empty when there is none.
    resource_schema: Vec<u8>,
    /// `ScopeSpans.scope`, tag included.
    scope: Vec<u8>,
    value_length_limit: Option<usize>,
    default_ai_kind: bool,
    max_request_bytes: usize,
    max_request_spans: usize,
}

/// One request's body and the spans it carries.
#[derive(Debug)]
pub(crate) struct EncodedRequest {
    pub body: Vec<u8>,
    pub spans: usize,
}

/// What [`OtlpEncoding::requests`] made of a batch.
#[derive(Debug, Default)]
pub(crate) struct Encoded {
    pub requests: Vec<EncodedRequest>,
    /// Spans larger than a request may be, for the path that cuts their
    /// largest values.
    pub oversized: Vec<SpanData>,
}

impl OtlpEncoding {
    pub(crate) fn new(
        resource: &Resource,
        value_length_limit: Option<usize>,
        default_ai_kind: bool,
        max_request_bytes: usize,
        max_request_spans: usize,
    ) -> Self {
        let attributes = ResourceAttributesWithSchema::from(resource);
        let mut encoded_resource = Vec::new();
        let message = ResourceMessage { attributes: attributes.attributes.0, ..Default::default() };
        message_field(&mut encoded_resource, 1, |out| out.extend_from_slice(&message.encode_to_vec()));
        let mut resource_schema = Vec::new();
        if let Some(schema) = attributes.schema_url.filter(|schema| !schema.is_empty()) {
            string_field(&mut resource_schema, 3, &schema);
        }
        let mut scope = Vec::new();
        let message = ScopeMessage::from((FinishedSpans::scope(), None));
        message_field(&mut scope, 1, |out| out.extend_from_slice(&message.encode_to_vec()));
        OtlpEncoding {
            resource: encoded_resource,
            resource_schema,
            scope,
            value_length_limit,
            default_ai_kind,
            max_request_bytes,
            max_request_spans: max_request_spans.max(1),
        }
    }

    /// The spans of `finished` as requests of at most the request limits
    /// each (bytes, and spans: the export batch size).
    pub(crate) fn requests(&self, finished: &[Arc<FinishedSpans>]) -> Encoded {
        let mut encoded = Encoded::default();
        let room = self.max_request_bytes.saturating_sub(self.wrapping_bytes());
        let mut spans = Vec::with_capacity(finished.iter().map(|f| f.len()).sum::<usize>() * 160);
        let mut count = 0;
        for span in finished.iter().flat_map(|buffer| buffer.spans()) {
            let start = spans.len();
            message_field(&mut spans, 2, |out| self.span(out, &span));
            if spans.len() - start > room {
                spans.truncate(start);
                encoded.oversized.push(span.to_span_data());
                continue;
            }
            if spans.len() > room || count == self.max_request_spans {
                let next = spans.split_off(start);
                encoded.requests.push(self.request(&spans, count));
                spans = next;
                count = 0;
            }
            count += 1;
        }
        if count > 0 {
            encoded.requests.push(self.request(&spans, count));
        }
        encoded
    }

    /// What a request holds besides its spans, at most.
    fn wrapping_bytes(&self) -> usize {
        self.resource.len() + self.resource_schema.len() + self.scope.len() + 3 * 6
    }

    /// `ExportTraceServiceRequest { resource_spans: [ResourceSpans { resource,
    /// scope_spans: [ScopeSpans { scope, spans }], schema_url }] }`.
    fn request(&self, spans: &[u8], count: usize) -> EncodedRequest {
        let scope_spans = self.scope.len() + spans.len();
        let resource_spans =
            self.resource.len() + 1 + varint_len(scope_spans as u64) + scope_spans + self.resource_schema.len();
        let mut body = Vec::with_capacity(1 + varint_len(resource_spans as u64) + resource_spans);
        tag(&mut body, 1, LEN);
        varint(&mut body, resource_spans as u64);
        body.extend_from_slice(&self.resource);
        tag(&mut body, 2, LEN);
        varint(&mut body, scope_spans as u64);
        body.extend_from_slice(&self.scope);
        body.extend_from_slice(spans);
        body.extend_from_slice(&self.resource_schema);
        EncodedRequest { body, spans: count }
    }

    /// `Span`, as opentelemetry-proto converts `SpanData`.
    fn span(&self, out: &mut Vec<u8>, span: &FinishedSpan<'_>) {
        let (trace_id, span_id, flags) = span.ids();
        let (parent, parent_is_remote) = span.parent();
        bytes_field(out, 1, &trace_id.to_bytes());
        bytes_field(out, 2, &span_id.to_bytes());
        let trace_state = span.trace_state().header();
        if !trace_state.is_empty() {
            string_field(out, 3, &trace_state);
        }
        if parent != opentelemetry::trace::SpanId::INVALID {
            bytes_field(out, 4, &parent.to_bytes());
        }
        string_field(out, 5, span.name());
        varint_field(out, 6, kind_number(span.kind()));
        let (start, end) = span.unix_nanos();
        fixed64_field(out, 7, start);
        fixed64_field(out, 8, end);
        let (attributes, dropped_attributes) = span.attributes();
        for attribute in attributes {
            message_field(out, 9, |out| self.key_value(out, attribute));
        }
        if self.default_ai_kind && !attributes.iter().any(|kv| kv.key.as_str() == AI_KIND_KEY) {
            message_field(out, 9, |out| {
                self.key_value(out, &KeyValue::new(AI_KIND_KEY, AiKind::Chain.as_str()));
            });
        }
        varint_field(out, 10, u64::from(dropped_attributes));
        let (events, dropped_events) = span.events();
        for event in events {
            message_field(out, 11, |out| self.event(out, event));
        }
        varint_field(out, 12, u64::from(dropped_events));
        message_field(out, 15, |out| status(out, span.status()));
        let remote = if parent_is_remote { 0x300 } else { 0x100 };
        tag(out, 16, FIXED32);
        out.extend_from_slice(&(u32::from(flags.to_u8()) | remote).to_le_bytes());
    }

    fn event(&self, out: &mut Vec<u8>, event: &Event) {
        fixed64_field(out, 1, unix_nanos(event.timestamp));
        string_field(out, 2, &event.name);
        for attribute in &event.attributes {
            message_field(out, 3, |out| self.key_value(out, attribute));
        }
        varint_field(out, 4, u64::from(event.dropped_attributes_count));
    }

    fn key_value(&self, out: &mut Vec<u8>, attribute: &KeyValue) {
        string_field(out, 1, attribute.key.as_str());
        message_field(out, 2, |out| self.any_value(out, &attribute.value));
    }

    /// `AnyValue`: a oneof, so even a default value is written.
    fn any_value(&self, out: &mut Vec<u8>, value: &Value) {
        match value {
            Value::Bool(b) => {
                tag(out, 2, VARINT);
                varint(out, u64::from(*b));
            }
            Value::I64(i) => {
                tag(out, 3, VARINT);
                varint(out, *i as u64);
            }
            Value::F64(f) => {
                tag(out, 4, FIXED64);
                out.extend_from_slice(&f.to_le_bytes());
            }
            Value::String(s) => self.string_value(out, s),
            Value::Array(array) => message_field(out, 5, |out| self.array(out, array)),
            other => self.string_value(out, &StringValue::from(other.to_string())),
        }
    }

    fn string_value(&self, out: &mut Vec<u8>, s: &StringValue) {
        let text = s.as_str();
        let text = match self.value_length_limit {
            Some(limit) => text.char_indices().nth(limit).map_or(text, |(end, _)| &text[..end]),
            None => text,
        };
        tag(out, 1, LEN);
        varint(out, text.len() as u64);
        out.extend_from_slice(text.as_bytes());
    }

    fn array(&self, out: &mut Vec<u8>, array: &Array) {
        let mut each = |value: Value| message_field(out, 1, |out| self.any_value(out, &value));
        match array {
            Array::Bool(values) => values.iter().for_each(|v| each(Value::Bool(*v))),
            Array::I64(values) => values.iter().for_each(|v| each(Value::I64(*v))),
            Array::F64(values) => values.iter().for_each(|v| each(Value::F64(*v))),
            Array::String(values) => values.iter().for_each(|v| each(Value::String(v.clone()))),
            other => each(Value::String(other.to_string().into())),
        }
    }
}

fn kind_number(kind: &SpanKind) -> u64 {
    match kind {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    }
}

/// `Status { message, code }`, written even when unset, as the library does.
fn status(out: &mut Vec<u8>, status: &Status) {
    let (code, message) = match status {
        Status::Unset => (0, ""),
        Status::Ok => (1, ""),
        Status::Error { description } => (2, description.as_ref()),
    };
    if !message.is_empty() {
        string_field(out, 2, message);
    }
    varint_field(out, 3, code);
}

fn unix_nanos(time: std::time::SystemTime) -> u64 {
    time.duration_since(std::time::UNIX_EPOCH).map_or(0, |since| u64::try_from(since.as_nanos()).unwrap_or(u64::MAX))
}

fn tag(out: &mut Vec<u8>, field: u32, wire_type: u32) {
    varint(out, u64::from((field << 3) | wire_type));
}

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn varint_len(value: u64) -> usize {
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
}

/// A scalar field; left out when zero, as proto3 does.
fn varint_field(out: &mut Vec<u8>, field: u32, value: u64) {
    if value != 0 {
        tag(out, field, VARINT);
        varint(out, value);
    }
}

fn fixed64_field(out: &mut Vec<u8>, field: u32, value: u64) {
    if value != 0 {
        tag(out, field, FIXED64);
        out.extend_from_slice(&value.to_le_bytes());
    }
}

fn bytes_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    tag(out, field, LEN);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn string_field(out: &mut Vec<u8>, field: u32, text: &str) {
    if !text.is_empty() {
        bytes_field(out, field, text.as_bytes());
    }
}

/// A nested message: one byte is kept for its length, which most fit in;
/// a longer one moves the message up to make room.
fn message_field(out: &mut Vec<u8>, field: u32, write: impl FnOnce(&mut Vec<u8>)) {
    tag(out, field, LEN);
    let at = out.len();
    out.push(0);
    write(out);
    let len = out.len() - at - 1;
    if len < 0x80 {
        out[at] = len as u8;
        return;
    }
    let mut prefix = Vec::with_capacity(10);
    varint(&mut prefix, len as u64);
    let extra = prefix.len() - 1;
    out.resize(out.len() + extra, 0);
    out.copy_within(at + 1..at + 1 + len, at + 1 + extra);
    out[at..at + prefix.len()].copy_from_slice(&prefix);
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;

    use traced_core::__private::SpanDataConversion;

    use super::*;
    use crate::export::test_finished::finished_spans;

    fn library_request(spans: Vec<SpanData>, resource: &Resource, limit: Option<usize>) -> ExportTraceServiceRequest {
        let mut spans = spans;
        if let Some(limit) = limit {
            for span in &mut spans {
                crate::export::processor::truncate_span(span, limit);
            }
        }
        let resource_spans = group_spans_by_resource_and_scope(spans, &ResourceAttributesWithSchema::from(resource));
        ExportTraceServiceRequest { resource_spans }
    }

    #[test]
    fn varints_take_the_bytes_they_need() {
        for value in [0, 1, 127, 128, 16_383, 16_384, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            varint(&mut out, value);
            assert_eq!(out.len(), varint_len(value), "{value}");
            assert_eq!(prost::encoding::decode_varint(&mut out.as_slice()).unwrap(), value);
        }
    }

    #[test]
    fn a_long_nested_message_gets_its_whole_length() {
        for len in [0, 127, 128, 300, 20_000] {
            let mut out = vec![7];
            message_field(&mut out, 1, |out| out.extend(std::iter::repeat_n(9, len)));
            let mut rest = &out[2..];
            assert_eq!(prost::encoding::decode_varint(&mut rest).unwrap(), len as u64);
            assert_eq!(rest.len(), len);
            assert!(rest.iter().all(|b| *b == 9));
        }
    }

    #[test]
    fn decodes_to_what_the_library_makes_of_the_same_spans() {
        let resource = Resource::builder_empty()
            .with_service_name("encoded")
            .with_attributes([KeyValue::new("deployment.environment", "test"), KeyValue::new("replicas", 3_i64)])
            .build();
        for (limit, default_ai_kind) in [(None, true), (Some(4), false)] {
            let finished = Arc::new(finished_spans());
            let mut as_span_data = Vec::new();
            SpanDataConversion::new(Arc::clone(&finished), default_ai_kind).append(&mut as_span_data, usize::MAX);
            let expected = library_request(as_span_data, &resource, limit);
            let encoding = OtlpEncoding::new(&resource, limit, default_ai_kind, usize::MAX, usize::MAX);
            let encoded = encoding.requests(&[finished]);
            assert_eq!(encoded.requests.len(), 1);
            assert!(encoded.oversized.is_empty());
            let decoded = ExportTraceServiceRequest::decode(encoded.requests[0].body.as_slice()).unwrap();
            assert_eq!(decoded, expected, "limit {limit:?}");
            assert_eq!(encoded.requests[0].spans, expected.resource_spans[0].scope_spans[0].spans.len());
        }
    }

    #[test]
    fn requests_stay_under_the_limit_and_a_span_too_large_for_one_is_set_aside() {
        let resource = Resource::builder_empty().with_service_name("split").build();
        let finished = Arc::new(finished_spans());
        let total = finished.len();
        let limit = 2048;
        let encoded = OtlpEncoding::new(&resource, None, true, limit, usize::MAX).requests(&[finished]);
        let sent: usize = encoded.requests.iter().map(|r| r.spans).sum();
        assert!(encoded.requests.len() >= 3, "{} requests", encoded.requests.len());
        assert_eq!(sent + encoded.oversized.len(), total);
        for request in &encoded.requests {
            assert!(request.body.len() <= limit, "{} > {limit}", request.body.len());
            let decoded = ExportTraceServiceRequest::decode(request.body.as_slice()).unwrap();
            assert_eq!(decoded.resource_spans[0].scope_spans[0].spans.len(), request.spans);
        }
        assert_eq!(encoded.oversized.len(), 1, "the span with the long value");
        assert!(encoded.oversized[0].attributes.iter().any(|kv| kv.key.as_str() == "long"));
    }

    #[test]
    fn requests_carry_at_most_the_export_batch_size() {
        let resource = Resource::builder_empty().with_service_name("split").build();
        let finished = Arc::new(finished_spans());
        let total = finished.len();
        let encoded = OtlpEncoding::new(&resource, None, true, usize::MAX, 8).requests(&[finished]);
        let counts: Vec<usize> = encoded.requests.iter().map(|r| r.spans).collect();
        assert_eq!(counts.iter().sum::<usize>(), total);
        assert!(counts.iter().all(|&n| n <= 8), "{counts:?}");
        assert_eq!(counts.len(), total.div_ceil(8), "{counts:?}");
    }
}
