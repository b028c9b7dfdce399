//! A buffer of traced's finished spans for the export layer's unit tests,
//! with every kind of value a span can carry.

use std::time::{Duration, SystemTime};

use fastant::Instant;
use opentelemetry::trace::{Event, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState};
use opentelemetry::{Array, KeyValue, StringValue, Value};
use traced_core::__layers::{AI_KIND_KEY, Finished, FinishedSpans};

/// Thirty small spans, then a root, a server span with a remote parent and a
/// tracestate, a failed client span with events, an LLM span, and a span
/// with one 20 KB value (`long`).
pub(crate) fn finished_spans() -> FinishedSpans {
    let mut buffer = FinishedSpans::default();
    let mut add =
        |index: u64, name: &'static str, kind: SpanKind, mut attributes: Vec<KeyValue>, mut events: Vec<Event>| {
            let start = Instant::now();
            let parent = match index {
                30 => SpanId::INVALID,
                _ => SpanId::from(1000 + index),
            };
            let pushed = buffer.push(
                |attributes, events| Finished {
                    trace_id: TraceId::from(0x5eed_u128 << 64 | u128::from(index)),
                    span_id: SpanId::from(index + 1),
                    parent_span_id: parent,
                    parent_is_remote: index == 31,
                    flags: if index == 32 { TraceFlags::default() } else { TraceFlags::SAMPLED },
                    trace_state: if index == 31 {
                        TraceState::from_key_value([("vendor", "value"), ("other", "x")]).unwrap()
                    } else {
                        TraceState::NONE
                    },
                    name,
                    kind,
                    start,
                    end: start,
                    attributes,
                    dropped_attributes: u32::from(index == 32) * 3,
                    events,
                    dropped_events: u32::from(index == 32),
                    status: match index {
                        32 => Status::error("the model did not load"),
                        33 => Status::Ok,
                        _ => Status::Unset,
                    },
                },
                &mut attributes,
                &mut events,
            );
            assert!(pushed);
        };
    for index in 0..30 {
        let attributes = vec![KeyValue::new("steps", index as i64), KeyValue::new("model", "tiny-unet")];
        add(index, "stage", SpanKind::Internal, attributes, Vec::new());
    }
    add(30, "root", SpanKind::Internal, Vec::new(), Vec::new());
    let served = vec![
        KeyValue::new("http.request.method", "POST"),
        KeyValue::new("negative", -42_i64),
        KeyValue::new("ratio", 0.25_f64),
        KeyValue::new("zero", 0_i64),
        KeyValue::new("empty", ""),
        KeyValue::new("flag", false),
        KeyValue::new("owned", String::from("a prompt of some length, ünïcödé included")),
        KeyValue::new("bools", Value::Array(Array::Bool(vec![true, false]))),
        KeyValue::new("ints", Value::Array(Array::I64(vec![1, -2, 300]))),
        KeyValue::new("floats", Value::Array(Array::F64(vec![1.5, -0.0]))),
        KeyValue::new(
            "strings",
            Value::Array(Array::String(vec![StringValue::from("a"), StringValue::from("bcdefgh")])),
        ),
    ];
    add(31, "POST /generate", SpanKind::Server, served, Vec::new());
    let when = SystemTime::UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789);
    let events = vec![
        Event::new("exception", when, vec![KeyValue::new("exception.message", "no such file")], 2),
        Event::new("retry", when, Vec::new(), 0),
    ];
    add(32, "fetch weights", SpanKind::Client, vec![KeyValue::new("url", "http://127.0.0.1/weights")], events);
    add(33, "denoise", SpanKind::Internal, vec![KeyValue::new(AI_KIND_KEY, "LLM")], Vec::new());
    add(34, "upload", SpanKind::Producer, vec![KeyValue::new("long", "x".repeat(20_000))], Vec::new());
    add(35, "consume", SpanKind::Consumer, Vec::new(), Vec::new());
    buffer
}
