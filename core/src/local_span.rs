//! The span core of sync `#[span]` fns: a span that starts and ends on one
//! thread, strictly nested, is recorded in a frame of a thread-local stack
//! (no `Context`, no SDK span, no allocation once the stack has grown) and
//! appended to the thread's finished-span buffer when it ends. Spans whose
//! sampler must decide (a new trace) or that outlive a call (async fns,
//! streams) stay with the SDK; the two kinds nest in either order.
//!
//! Which is current: the top frame, unless an OpenTelemetry context was
//! attached after it was pushed. Each frame remembers the span of the
//! OpenTelemetry context current when it started; when that span is still
//! the current one, the frame is newer.

use std::borrow::Cow;
use std::cell::RefCell;
use std::time::SystemTime;

use opentelemetry::trace::{
    Event, Span, SpanContext, SpanId, SpanKind, Status, TraceContextExt as _, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{Context, KeyValue};

use crate::finished_spans::{self, Finished};
use crate::meta::Meta;
use crate::{span_ids, tracer_slot};

/// The SDK's default span limits.
const MAX_ATTRIBUTES: usize = 128;
const MAX_EVENTS: usize = 128;

#[derive(Debug)]
struct Frame {
    trace_id: TraceId,
    span_id: SpanId,
    parent_span_id: SpanId,
    parent_is_remote: bool,
    flags: TraceFlags,
    trace_state: TraceState,
    /// False for a trace head sampling dropped: the frame only carries the
    /// ids for propagation and records nothing.
    recording: bool,
    name: &'static str,
    kind: SpanKind,
    start: SystemTime,
    attributes: Vec<KeyValue>,
    dropped_attributes: u32,
    events: Vec<Event>,
    dropped_events: u32,
    status: Status,
    /// The OpenTelemetry context's span when this frame started.
    otel_span: SpanId,
    /// The installed tracer when this frame started: a span that outlives
    /// its provider is not handed to the next one.
    generation: u64,
}

impl Frame {
    fn span_context(&self) -> SpanContext {
        SpanContext::new(self.trace_id, self.span_id, self.flags, false, self.trace_state.clone())
    }
}

/// The frames of this thread; slots above `depth` keep their vectors'
/// capacity for the next span.
#[derive(Debug, Default)]
struct Stack {
    frames: Vec<Frame>,
    depth: usize,
}

thread_local! {
    static STACK: RefCell<Stack> = RefCell::new(Stack::default());
}

/// A started frame: its depth on its thread's stack.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FrameRef(usize);

/// What a new span's parent is.
pub(crate) enum Start {
    /// Recorded here, with this parent.
    Child(Parent),
    /// Nothing to make: the parent is unsampled and its children are skipped.
    Skip,
    /// The SDK's sampler must decide, or the SDK holds the parent.
    Sdk,
}

pub(crate) struct Parent {
    trace_id: TraceId,
    span_id: SpanId,
    is_remote: bool,
    flags: TraceFlags,
    trace_state: TraceState,
    recording: bool,
    otel_span: SpanId,
}

fn otel_span_id() -> SpanId {
    Context::map_current(|cx| cx.span().span_context().span_id())
}

/// Where a child of the current span would come from.
pub(crate) fn start_child() -> Start {
    let otel_span = otel_span_id();
    let from_frame = STACK.with(|stack| {
        let stack = stack.borrow();
        let top = stack.depth.checked_sub(1).map(|i| &stack.frames[i])?;
        (top.otel_span == otel_span).then(|| Parent {
            trace_id: top.trace_id,
            span_id: top.span_id,
            is_remote: false,
            flags: top.flags,
            trace_state: top.trace_state.clone(),
            recording: top.recording,
            otel_span,
        })
    });
    let parent = match from_frame {
        Some(parent) => parent,
        None => {
            let parent = Context::map_current(|cx| {
                let span = cx.span();
                let context = span.span_context();
                context.is_valid().then(|| Parent {
                    trace_id: context.trace_id(),
                    span_id: context.span_id(),
                    is_remote: context.is_remote(),
                    flags: context.trace_flags(),
                    trace_state: context.trace_state().clone(),
                    recording: span.is_recording() || context.is_remote(),
                    otel_span,
                })
            });
            let Some(parent) = parent else { return new_trace(otel_span) };
            parent
        }
    };
    if !tracer_slot::follows_parent() {
        return Start::Sdk;
    }
    if parent.flags.is_sampled() {
        return Start::Child(parent);
    }
    if tracer_slot::skips_unsampled_children() || !parent.recording {
        return Start::Skip;
    }
    // A keep rule is on: the child of a recorded, unsampled span is recorded.
    Start::Child(parent)
}

/// A span without a parent: a trace head sampling drops becomes a frame
/// that records nothing (its children are skipped, its ids still
/// propagate); any other is the sampler's.
fn new_trace(otel_span: SpanId) -> Start {
    let Some(ratio) = tracer_slot::root_ratio() else { return Start::Sdk };
    let trace_id = span_ids::trace_id();
    if sampled_by_ratio(trace_id, ratio) {
        return Start::Sdk;
    }
    Start::Child(Parent {
        trace_id,
        span_id: SpanId::INVALID,
        is_remote: false,
        flags: TraceFlags::default(),
        trace_state: TraceState::NONE,
        recording: false,
        otel_span,
    })
}

/// The SDK's `TraceIdRatioBased` rule, so that either path decides a trace
/// id the same way.
fn sampled_by_ratio(trace_id: TraceId, ratio: f64) -> bool {
    let bound = (ratio.max(0.0) * (1_u64 << 63) as f64) as u64;
    let low = u64::from_be_bytes(trace_id.to_bytes()[8..].try_into().unwrap_or_default());
    (low >> 1) < bound
}

/// Pushes a frame for `meta` under `parent`; `attrs` fills its attributes
/// when it records.
pub(crate) fn push(meta: &Meta, parent: Parent, attrs: impl FnOnce(&mut Vec<KeyValue>)) -> FrameRef {
    let recording = parent.recording;
    let start = if recording { SystemTime::now() } else { SystemTime::UNIX_EPOCH };
    STACK.with(|stack| {
        let mut stack = stack.borrow_mut();
        let depth = stack.depth;
        if stack.frames.len() == depth {
            stack.frames.push(Frame {
                trace_id: TraceId::INVALID,
                span_id: SpanId::INVALID,
                parent_span_id: SpanId::INVALID,
                parent_is_remote: false,
                flags: TraceFlags::default(),
                trace_state: TraceState::NONE,
                recording: false,
                name: "",
                kind: SpanKind::Internal,
                start,
                attributes: Vec::new(),
                dropped_attributes: 0,
                events: Vec::new(),
                dropped_events: 0,
                status: Status::Unset,
                otel_span: SpanId::INVALID,
                generation: 0,
            });
        }
        stack.depth = depth + 1;
        let frame = &mut stack.frames[depth];
        frame.trace_id = parent.trace_id;
        frame.span_id = span_ids::span_id();
        frame.parent_span_id = parent.span_id;
        frame.parent_is_remote = parent.is_remote;
        frame.flags = parent.flags;
        frame.trace_state = parent.trace_state;
        frame.recording = recording;
        frame.name = meta.name;
        frame.kind = meta.kind.into();
        frame.start = start;
        frame.dropped_attributes = 0;
        frame.dropped_events = 0;
        frame.status = Status::Unset;
        frame.otel_span = parent.otel_span;
        frame.generation = tracer_slot::generation();
        if recording {
            attrs(&mut frame.attributes);
            if frame.attributes.len() > MAX_ATTRIBUTES {
                frame.dropped_attributes = (frame.attributes.len() - MAX_ATTRIBUTES) as u32;
                frame.attributes.truncate(MAX_ATTRIBUTES);
            }
        }
        FrameRef(depth + 1)
    })
}

/// Pops the frame and, when it records, hands the span to the thread's
/// buffer. Returns whether it recorded a failure.
pub(crate) fn pop(frame: FrameRef) -> bool {
    let end = SystemTime::now();
    STACK.with(|stack| {
        let mut stack = stack.borrow_mut();
        // Frames above this one (a handle forgotten with mem::forget) go too.
        if stack.depth < frame.0 || frame.0 == 0 {
            return false;
        }
        stack.depth = frame.0 - 1;
        let top = &mut stack.frames[frame.0 - 1];
        let failed = matches!(top.status, Status::Error { .. });
        if !top.recording {
            return false;
        }
        if top.generation != tracer_slot::generation() || !tracer_slot::is_enabled() {
            top.attributes.clear();
            top.events.clear();
            return failed;
        }
        let finished = Finished {
            trace_id: top.trace_id,
            span_id: top.span_id,
            parent_span_id: top.parent_span_id,
            parent_is_remote: top.parent_is_remote,
            flags: top.flags,
            trace_state: std::mem::take(&mut top.trace_state),
            name: top.name,
            kind: top.kind.clone(),
            start: top.start,
            end,
            attributes: (0, 0),
            dropped_attributes: top.dropped_attributes,
            events: (0, 0),
            dropped_events: top.dropped_events,
            status: std::mem::replace(&mut top.status, Status::Unset),
        };
        finished_spans::finish(finished, &mut top.attributes, &mut top.events);
        failed
    })
}

/// Runs `edit` on the frame when it is still on the stack and records.
fn with_frame<T>(frame: FrameRef, edit: impl FnOnce(&mut Frame) -> T) -> Option<T> {
    STACK.with(|stack| {
        let mut stack = stack.borrow_mut();
        if stack.depth < frame.0 || frame.0 == 0 {
            return None;
        }
        let frame = &mut stack.frames[frame.0 - 1];
        frame.recording.then(|| edit(frame))
    })
}

/// True when the frame records.
pub(crate) fn is_recording(frame: FrameRef) -> bool {
    with_frame(frame, |_| ()).is_some()
}

pub(crate) fn set_attribute(frame: FrameRef, attribute: KeyValue) {
    with_frame(frame, |frame| {
        if let Some(existing) = frame.attributes.iter_mut().find(|kv| kv.key == attribute.key) {
            *existing = attribute;
        } else if frame.attributes.len() < MAX_ATTRIBUTES {
            frame.attributes.push(attribute);
        } else {
            frame.dropped_attributes += 1;
        }
    });
}

pub(crate) fn add_event(frame: FrameRef, name: impl Into<Cow<'static, str>>, attributes: Vec<KeyValue>) {
    with_frame(frame, |frame| {
        if frame.events.len() < MAX_EVENTS {
            frame.events.push(Event::new(name, SystemTime::now(), attributes, 0));
        } else {
            frame.dropped_events += 1;
        }
    });
}

pub(crate) fn set_status(frame: FrameRef, status: Status) {
    with_frame(frame, |frame| frame.status = status);
}

/// Whether the current span is a frame of traced's own core, and if so
/// whether it records: other instrumentation (the `tracing` bridge) writes
/// to it through [`event_on_current_frame`].
pub fn current_frame_records() -> Option<bool> {
    newest().map(is_recording)
}

/// Adds an event to the current span when it is a frame, and marks the span
/// failed for an error event. False when the current span is not a frame.
pub fn event_on_current_frame(name: impl Into<Cow<'static, str>>, attributes: Vec<KeyValue>, error: bool) -> bool {
    let Some(frame) = newest() else { return false };
    let name = name.into();
    if error {
        set_status(frame, Status::error(name.clone()));
    }
    add_event(frame, name, attributes);
    true
}

/// The newest frame, when it is newer than the OpenTelemetry context.
pub(crate) fn newest() -> Option<FrameRef> {
    let otel_span = otel_span_id();
    STACK.with(|stack| {
        let stack = stack.borrow();
        let top = stack.depth.checked_sub(1).map(|i| &stack.frames[i])?;
        (top.otel_span == otel_span).then_some(FrameRef(stack.depth))
    })
}

/// The current span's context: the newest frame's, or the OpenTelemetry
/// context's span.
pub fn current_span_context() -> SpanContext {
    let frame = newest().and_then(|frame| {
        STACK.with(|stack| {
            let stack = stack.borrow();
            let frame = &stack.frames[frame.0 - 1];
            // A frame of an unsampled trace with no span of its own (a new
            // trace head sampling dropped) names its trace only.
            Some(frame.span_context())
        })
    });
    frame.unwrap_or_else(|| Context::map_current(|cx| cx.span().span_context().clone()))
}

/// The current OpenTelemetry context, with the newest frame as its span when
/// the frame is newer: what the SDK, propagation and other instrumentation
/// take as a parent.
pub fn current_context() -> Context {
    match newest() {
        Some(_) => Context::current().with_span(FrameSpan(current_span_context())),
        None => Context::current(),
    }
}

/// A frame seen from OpenTelemetry: its context only (writes go through
/// traced's own calls, which find the frame).
#[derive(Debug)]
struct FrameSpan(SpanContext);

impl Span for FrameSpan {
    fn add_event_with_timestamp<T>(&mut self, _name: T, _timestamp: SystemTime, _attributes: Vec<KeyValue>)
    where
        T: Into<std::borrow::Cow<'static, str>>,
    {
    }

    fn span_context(&self) -> &SpanContext {
        &self.0
    }

    fn is_recording(&self) -> bool {
        self.0.is_sampled()
    }

    fn set_attribute(&mut self, _attribute: KeyValue) {}

    fn set_status(&mut self, _status: Status) {}

    fn update_name<T>(&mut self, _new_name: T)
    where
        T: Into<std::borrow::Cow<'static, str>>,
    {
    }

    fn add_link(&mut self, _span_context: SpanContext, _attributes: Vec<KeyValue>) {}

    fn end_with_timestamp(&mut self, _timestamp: SystemTime) {}
}
