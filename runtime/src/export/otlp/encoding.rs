//! OTLP's protobuf encoding of traced's own finished spans, written straight
//! from the threads' buffers: no `SpanData`, no intermediate messages, no
//! allocation per span (but the text of a span's W3C tracestate). The export side runs once per span, as often as the
//! caller's side: building the library's messages (a `String` per key and
//! value) cost ten times what making the span did, so one thread making
//! spans at full speed outran export. The resource and the scope are encoded
//! once, with the OTLP library's own message types.
//!
//! Field numbers are those of opentelemetry-proto's `trace.proto` and
//! `common.proto`; a test decodes what this writes with the library's types
//! and compares it with the library's own conversion of the same spans.

use std::sync::Arc;

use bytes::Bytes;
use opentelemetry::trace::{Event, SpanId, SpanKind, Status, TraceState};
use opentelemetry::{Array, KeyValue, Value};
use opentelemetry_proto::tonic::common::v1::InstrumentationScope as ScopeMessage;
use opentelemetry_proto::tonic::resource::v1::Resource as ResourceMessage;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SpanData;
use prost::Message as _;
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint};
use traced_core::__layers::{AI_KIND_KEY, AiKind, FinishedSpan, FinishedSpans, has_ai_kind};

use crate::export::span_data_conversion::span_data_of;

/// How traced's spans are encoded for one OTLP exporter.
#[derive(Debug)]
pub(crate) struct OtlpEncoding {
    /// `ResourceSpans.resource`, tag included.
    resource: Vec<u8>,
    /// `ResourceSpans.schema_url`, tag included; empty when there is none.
    resource_schema: Vec<u8>,
    /// `ScopeSpans.scope`, tag included.
    scope: Vec<u8>,
    /// The attribute `openinference.span.kind = CHAIN`, tag included, for
    /// spans that have no kind; empty when the exporter adds none.
    default_ai_kind: Vec<u8>,
    value_length_limit: Option<usize>,
    max_request_bytes: usize,
    max_request_spans: usize,
}

/// One request's body and the spans it carries.
#[derive(Debug)]
pub(crate) struct EncodedRequest {
    pub body: Bytes,
    pub spans: usize,
}

/// A batch's requests, made one at a time.
pub(crate) struct Requests<'a> {
    encoding: &'a OtlpEncoding,
    spans: Box<dyn Iterator<Item = FinishedSpan<'a>> + 'a>,
    /// Spans not encoded yet.
    remaining: usize,
    /// The span that did not fit in the last request, encoded.
    carried: Option<Vec<u8>>,
}

impl Requests<'_> {
    /// The next request, and the spans met on the way that are larger than
    /// a request may be (for the path that cuts their largest values).
    /// Each span is written once, into its request's body, after room left
    /// for the request's header.
    pub(crate) fn next_request(&mut self, oversized: &mut Vec<SpanData>) -> Option<EncodedRequest> {
        let encoding = self.encoding;
        let header_room = encoding.header_room();
        let room = encoding.max_request_bytes.saturating_sub(header_room + encoding.resource_schema.len());
        let mut body = encoding.new_body(self.remaining + usize::from(self.carried.is_some()));
        let mut count = 0;
        if let Some(carried) = self.carried.take() {
            body.extend_from_slice(&carried);
            count = 1;
        }
        while count < encoding.max_request_spans {
            let Some(span) = self.spans.next() else { break };
            self.remaining -= 1;
            let start = body.len();
            encoding.span(&mut body, &span);
            if body.len() - start > room {
                body.truncate(start);
                oversized.push(span_data_of(&span));
                continue;
            }
            if body.len() - header_room > room {
                self.carried = Some(body[start..].to_vec());
                body.truncate(start);
                break;
            }
            count += 1;
        }
        (count > 0).then(|| encoding.finish(body, count))
    }
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
        let message = ResourceMessage { attributes: attributes.attributes.0, ..Default::default() };
        let mut encoded_resource = Vec::new();
        message_field(&mut encoded_resource, 1, |out| out.extend_from_slice(&message.encode_to_vec()));
        let mut resource_schema = Vec::new();
        if let Some(schema) = attributes.schema_url.filter(|schema| !schema.is_empty()) {
            string_field(&mut resource_schema, 3, &schema);
        }
        let message = ScopeMessage::from((FinishedSpans::scope(), None));
        let mut scope = Vec::new();
        message_field(&mut scope, 1, |out| out.extend_from_slice(&message.encode_to_vec()));
        let mut encoding = OtlpEncoding {
            resource: encoded_resource,
            resource_schema,
            scope,
            default_ai_kind: Vec::new(),
            value_length_limit,
            max_request_bytes,
            max_request_spans: max_request_spans.max(1),
        };
        if default_ai_kind {
            let mut kind = Vec::new();
            encoding.key_value(&mut kind, 9, &KeyValue::new(AI_KIND_KEY, AiKind::Chain.as_str()));
            encoding.default_ai_kind = kind;
        }
        encoding
    }

    /// The spans of `finished` as requests of at most the request limits
    /// each (bytes, and spans: the export batch size), made one at a time
    /// as they are sent, so that a request's memory is reused by the next.
    pub(crate) fn requests<'a>(&'a self, finished: &'a [Arc<FinishedSpans>]) -> Requests<'a> {
        let remaining = finished.iter().map(|buffer| buffer.len()).sum();
        let spans = Box::new(finished.iter().flat_map(|buffer| buffer.spans()));
        Requests { encoding: self, spans, remaining, carried: None }
    }

    /// The most a request's header takes: two tags and lengths, the
    /// resource and the scope.
    fn header_room(&self) -> usize {
        2 * (1 + 5) + self.resource.len() + self.scope.len()
    }

    /// An empty body, header room included, with room for `spans` more.
    fn new_body(&self, spans: usize) -> Vec<u8> {
        let spans = spans.min(self.max_request_spans);
        let capacity = (self.header_room() + spans * 192).min(self.max_request_bytes.saturating_add(1024));
        let mut body = Vec::with_capacity(capacity);
        body.resize(self.header_room(), 0);
        body
    }

    /// `ExportTraceServiceRequest { resource_spans: [ResourceSpans { resource,
    /// scope_spans: [ScopeSpans { scope, spans }], schema_url }] }`: the
    /// header is written just before the spans, in the room left for it.
    fn finish(&self, mut body: Vec<u8>, count: usize) -> EncodedRequest {
        let header_room = self.header_room();
        let scope_spans = self.scope.len() + body.len() - header_room;
        let resource_spans =
            self.resource.len() + 1 + encoded_len_varint(scope_spans as u64) + scope_spans + self.resource_schema.len();
        body.extend_from_slice(&self.resource_schema);
        let mut header = Vec::with_capacity(header_room);
        header.push(0x0a);
        encode_varint(resource_spans as u64, &mut header);
        header.extend_from_slice(&self.resource);
        header.push(0x12);
        encode_varint(scope_spans as u64, &mut header);
        header.extend_from_slice(&self.scope);
        let offset = header_room - header.len();
        body[offset..header_room].copy_from_slice(&header);
        EncodedRequest { body: Bytes::from(body).slice(offset..), spans: count }
    }

    /// `ScopeSpans.spans`: one `Span`, as opentelemetry-proto converts
    /// `SpanData`.
    fn span(&self, out: &mut Vec<u8>, span: &FinishedSpan<'_>) {
        let (trace_id, span_id, flags) = span.ids();
        let (parent, parent_is_remote) = span.parent();
        let (attributes, dropped_attributes) = span.attributes();
        let (events, dropped_events) = span.events();
        out.reserve(160);
        // Most spans take two bytes of length: room for two, moved when not.
        out.push(0x12);
        let at = out.len();
        out.extend_from_slice(&[0, 0]);
        let mut ids = [0x0a, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 8, 0, 0, 0, 0, 0, 0, 0, 0];
        ids[2..18].copy_from_slice(&trace_id.to_bytes());
        ids[20..].copy_from_slice(&span_id.to_bytes());
        out.extend_from_slice(&ids);
        if *span.trace_state() != TraceState::NONE {
            string_field(out, 3, &span.trace_state().header());
        }
        if parent != SpanId::INVALID {
            out.push(0x22);
            out.push(8);
            out.extend_from_slice(&parent.to_bytes());
        }
        string_field(out, 5, span.name());
        out.push(0x30);
        out.push(kind_number(span.kind()));
        let (start, end) = span.unix_nanos();
        let mut times = [0x39, 0, 0, 0, 0, 0, 0, 0, 0, 0x41, 0, 0, 0, 0, 0, 0, 0, 0];
        times[1..9].copy_from_slice(&start.to_le_bytes());
        times[10..].copy_from_slice(&end.to_le_bytes());
        out.extend_from_slice(&times);
        for attribute in attributes {
            self.key_value(out, 9, attribute);
        }
        if !self.default_ai_kind.is_empty() && !has_ai_kind(attributes) {
            out.extend_from_slice(&self.default_ai_kind);
        }
        varint_field(out, 10, u64::from(dropped_attributes));
        for event in events {
            message_field(out, 11, |out| self.event(out, event));
        }
        varint_field(out, 12, u64::from(dropped_events));
        status(out, span.status());
        let remote = if parent_is_remote { 0x300 } else { 0x100 };
        out.extend_from_slice(&[0x85, 0x01]);
        out.extend_from_slice(&(u32::from(flags.to_u8()) | remote).to_le_bytes());
        set_length(out, at, 2);
    }

    fn event(&self, out: &mut Vec<u8>, event: &Event) {
        fixed64_field(out, 1, unix_nanos(event.timestamp));
        string_field(out, 2, &event.name);
        for attribute in &event.attributes {
            self.key_value(out, 3, attribute);
        }
        varint_field(out, 4, u64::from(event.dropped_attributes_count));
    }

    /// A `KeyValue` as field `field`: for all but arrays, the lengths are
    /// known before anything is written.
    fn key_value(&self, out: &mut Vec<u8>, field: u32, attribute: &KeyValue) {
        let key = attribute.key.as_str();
        match &attribute.value {
            Value::Bool(b) => {
                key_value_header(out, field, key, 2);
                out.extend_from_slice(&[0x10, u8::from(*b)]);
            }
            Value::I64(i) => {
                key_value_header(out, field, key, 1 + encoded_len_varint(*i as u64));
                out.push(0x18);
                encode_varint(*i as u64, out);
            }
            Value::F64(f) => {
                key_value_header(out, field, key, 9);
                out.push(0x21);
                out.extend_from_slice(&f.to_le_bytes());
            }
            Value::String(text) => {
                let text = self.cut(text.as_str());
                key_value_header(out, field, key, 1 + encoded_len_varint(text.len() as u64) + text.len());
                if text.len() < 0x80 {
                    out.extend_from_slice(&[0x0a, text.len() as u8]);
                } else {
                    out.push(0x0a);
                    encode_varint(text.len() as u64, out);
                }
                out.extend_from_slice(text.as_bytes());
            }
            other => message_field(out, field, |out| {
                string_field(out, 1, key);
                message_field(out, 2, |out| self.any_value(out, other));
            }),
        }
    }

    /// `AnyValue`'s one field: a oneof, so even a default value is written.
    fn any_value(&self, out: &mut Vec<u8>, value: &Value) {
        match value {
            Value::Bool(b) => {
                out.push(0x10);
                out.push(u8::from(*b));
            }
            Value::I64(i) => {
                out.push(0x18);
                encode_varint(*i as u64, out);
            }
            Value::F64(f) => {
                out.push(0x21);
                out.extend_from_slice(&f.to_le_bytes());
            }
            Value::String(s) => self.string_value(out, s.as_str()),
            Value::Array(array) => message_field(out, 5, |out| self.array(out, array)),
            other => self.string_value(out, &other.to_string()),
        }
    }

    fn string_value(&self, out: &mut Vec<u8>, text: &str) {
        let text = self.cut(text);
        out.push(0x0a);
        encode_varint(text.len() as u64, out);
        out.extend_from_slice(text.as_bytes());
    }

    /// A string value cut to the configured length, in characters.
    fn cut<'a>(&self, text: &'a str) -> &'a str {
        match self.value_length_limit {
            Some(limit) if text.len() > limit => text.char_indices().nth(limit).map_or(text, |(end, _)| &text[..end]),
            _ => text,
        }
    }

    /// `ArrayValue.values`, each an `AnyValue`.
    fn array(&self, out: &mut Vec<u8>, array: &Array) {
        match array {
            Array::Bool(values) => {
                for value in values {
                    message_field(out, 1, |out| out.extend_from_slice(&[0x10, u8::from(*value)]));
                }
            }
            Array::I64(values) => {
                for value in values {
                    message_field(out, 1, |out| {
                        out.push(0x18);
                        encode_varint(*value as u64, out);
                    });
                }
            }
            Array::F64(values) => {
                for value in values {
                    message_field(out, 1, |out| {
                        out.push(0x21);
                        out.extend_from_slice(&value.to_le_bytes());
                    });
                }
            }
            Array::String(values) => {
                for value in values {
                    message_field(out, 1, |out| self.string_value(out, value.as_str()));
                }
            }
            other => message_field(out, 1, |out| self.string_value(out, &other.to_string())),
        }
    }
}

/// `KeyValue`'s length and key, and `AnyValue`'s length, for a value of
/// `value_len` bytes.
#[inline]
fn key_value_header(out: &mut Vec<u8>, field: u32, key: &str, value_len: usize) {
    let key_len = key.len();
    let len = 1 + encoded_len_varint(key_len as u64) + key_len + 1 + encoded_len_varint(value_len as u64) + value_len;
    if len < 0x80 && field < 16 {
        // Most attributes: every length one byte, written in two stores.
        out.reserve(len + 2);
        out.extend_from_slice(&[(field << 3) as u8 | WireType::LengthDelimited as u8, len as u8, 0x0a, key_len as u8]);
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(&[0x12, value_len as u8]);
        return;
    }
    encode_key(field, WireType::LengthDelimited, out);
    encode_varint(len as u64, out);
    out.push(0x0a);
    encode_varint(key_len as u64, out);
    out.extend_from_slice(key.as_bytes());
    out.push(0x12);
    encode_varint(value_len as u64, out);
}

fn kind_number(kind: &SpanKind) -> u8 {
    match kind {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    }
}

/// `Span.status`: `Status { message, code }`, written even when unset, as
/// the library does.
fn status(out: &mut Vec<u8>, status: &Status) {
    match status {
        Status::Unset => out.extend_from_slice(&[0x7a, 0]),
        Status::Ok => out.extend_from_slice(&[0x7a, 2, 0x18, 1]),
        Status::Error { description } => message_field(out, 15, |out| {
            string_field(out, 2, description);
            out.extend_from_slice(&[0x18, 2]);
        }),
    }
}

fn unix_nanos(time: std::time::SystemTime) -> u64 {
    time.duration_since(std::time::UNIX_EPOCH).map_or(0, |since| u64::try_from(since.as_nanos()).unwrap_or(u64::MAX))
}

/// A scalar field; left out when zero, as proto3 does.
fn varint_field(out: &mut Vec<u8>, field: u32, value: u64) {
    if value != 0 {
        encode_key(field, WireType::Varint, out);
        encode_varint(value, out);
    }
}

fn fixed64_field(out: &mut Vec<u8>, field: u32, value: u64) {
    if value != 0 {
        encode_key(field, WireType::SixtyFourBit, out);
        out.extend_from_slice(&value.to_le_bytes());
    }
}

/// A string field; left out when empty, as proto3 does.
fn string_field(out: &mut Vec<u8>, field: u32, text: &str) {
    if !text.is_empty() {
        encode_key(field, WireType::LengthDelimited, out);
        encode_varint(text.len() as u64, out);
        out.extend_from_slice(text.as_bytes());
    }
}

/// A nested message whose length is not known before it is written: one
/// byte is kept for it, which most fit in.
fn message_field(out: &mut Vec<u8>, field: u32, write: impl FnOnce(&mut Vec<u8>)) {
    encode_key(field, WireType::LengthDelimited, out);
    let at = out.len();
    out.push(0);
    write(out);
    set_length(out, at, 1);
}

/// Writes the length of the message after `kept` bytes kept for it at `at`,
/// moving the message when its length takes another number of bytes.
fn set_length(out: &mut Vec<u8>, at: usize, kept: usize) {
    let len = out.len() - at - kept;
    let size = encoded_len_varint(len as u64);
    let mut prefix = [0; 10];
    encode_varint(len as u64, &mut &mut prefix[..]);
    if size != kept {
        let message = at + kept..at + kept + len;
        if size > kept {
            out.resize(out.len() + size - kept, 0);
        }
        out.copy_within(message, at + size);
        out.truncate(at + size + len);
    }
    out[at..at + size].copy_from_slice(&prefix[..size]);
}

#[cfg(test)]
mod tests;
