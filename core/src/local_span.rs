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
use std::cell::{Cell, RefCell};
use std::time::SystemTime;

use opentelemetry::trace::{
    Event, Span, SpanContext, SpanId, SpanKind, Status, TraceContextExt as _, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{Context, KeyValue};

use fastant::Instant;

use crate::finished_spans::{self, Finished};
use crate::meta::Meta;
use crate::{span_ids, span_limits, tracer_slot};

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
    start: Instant,
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

thread_local! {
    /// The frames of this thread; slots at `DEPTH` and above keep their
    /// vectors' capacity for the next span.
    static FRAMES: RefCell<Vec<Frame>> = const { RefCell::new(Vec::new()) };
    /// How many of `FRAMES` are started. Kept apart, in a cell with no
    /// destructor, so that a frame that records nothing ends with a store:
    /// no borrow, no check that the thread's storage is alive.
    static DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// A started frame: its depth on its thread's stack.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FrameRef(usize);

impl FrameRef {
    /// Its slot in `FRAMES`, while it is still on the stack.
    #[inline]
    fn slot(self) -> Option<usize> {
        let slot = self.0.wrapping_sub(1);
        (slot < DEPTH.get()).then_some(slot)
    }
}

/// A frame just started.
pub(crate) enum Started {
    Recording(FrameRef),
    /// It records nothing (the first span of a trace head sampling
    /// dropped): it carries ids for propagation.
    Quiet(FrameRef),
}

/// Why a span is not recorded here.
pub(crate) enum NotHere {
    /// Nothing to make: the parent is unsampled and its children are skipped.
    Skip,
    /// The SDK's sampler must decide (a sampled new trace, a sampler that does
    /// not follow the parent).
    Sdk,
}

impl Frame {
    const EMPTY: Frame = Frame {
        trace_id: TraceId::INVALID,
        span_id: SpanId::INVALID,
        parent_span_id: SpanId::INVALID,
        parent_is_remote: false,
        flags: TraceFlags::NOT_SAMPLED,
        trace_state: TraceState::NONE,
        recording: false,
        name: "",
        kind: SpanKind::Internal,
        start: Instant::ZERO,
        attributes: Vec::new(),
        dropped_attributes: 0,
        events: Vec::new(),
        dropped_events: 0,
        status: Status::Unset,
        otel_span: SpanId::INVALID,
        generation: 0,
    };
}

#[inline]
fn otel_span_id() -> SpanId {
    Context::map_current(|cx| cx.span().span_context().span_id())
}

/// Starts a frame for `meta` as a child of the current span, everything
/// written in place on the thread's stack; `attrs` fills its attributes
/// when it records, with the frame current and the stack not borrowed: an
/// attribute's expression may run traced code (start a span, read the
/// trace id).
#[inline]
pub(crate) fn start(meta: &Meta, attrs: impl FnOnce(Vec<KeyValue>) -> Vec<KeyValue>) -> Result<Started, NotHere> {
    if !tracer_slot::follows_parent() {
        return Err(NotHere::Sdk);
    }
    let skips = tracer_slot::skips_unsampled_children();
    // During the thread's teardown (a span in a thread-local's destructor)
    // the stack may be gone: such a span is not made.
    let started = FRAMES.try_with(|stack| {
        let mut frames = stack.borrow_mut();
        let depth = DEPTH.get();
        if frames.len() <= depth {
            frames.resize_with(depth + 1, || Frame::EMPTY);
        }
        let (below, above) = frames.split_at_mut(depth);
        let frame = &mut above[0];
        let top = below.last();
        // One look at the OpenTelemetry context: the parent is the top frame
        // when that context has not changed since it started, else the
        // context's span.
        Context::map_current(|cx| {
            let span = cx.span();
            let context = span.span_context();
            frame.otel_span = context.span_id();
            match top.filter(|top| top.otel_span == context.span_id()) {
                Some(top) => {
                    if !top.flags.is_sampled() && (skips || !top.recording) {
                        return Err(NotHere::Skip);
                    }
                    frame.trace_id = top.trace_id;
                    frame.parent_span_id = top.span_id;
                    frame.parent_is_remote = false;
                    frame.flags = top.flags;
                    frame.trace_state.clone_from(&top.trace_state);
                    frame.recording = top.recording;
                    frame.span_id = span_ids::span_id();
                }
                None if context.is_valid() => {
                    if !context.is_sampled() && (skips || !(context.is_remote() || span.is_recording())) {
                        return Err(NotHere::Skip);
                    }
                    frame.trace_id = context.trace_id();
                    frame.parent_span_id = context.span_id();
                    frame.parent_is_remote = context.is_remote();
                    frame.flags = context.trace_flags();
                    frame.trace_state.clone_from(context.trace_state());
                    frame.recording = true;
                    frame.span_id = span_ids::span_id();
                }
                None => {
                    // A new trace: one head sampling drops becomes a frame
                    // that records nothing (its children are skipped, its
                    // ids still propagate); any other is the sampler's.
                    let Some(ratio) = tracer_slot::root_ratio() else { return Err(NotHere::Sdk) };
                    let (trace_id, span_id) = span_ids::new_trace();
                    if sampled_by_ratio(trace_id, ratio) {
                        return Err(NotHere::Sdk);
                    }
                    frame.trace_id = trace_id;
                    frame.span_id = span_id;
                    frame.parent_span_id = SpanId::INVALID;
                    frame.parent_is_remote = false;
                    frame.flags = TraceFlags::NOT_SAMPLED;
                    // Most frames already hold none: no drop, no write.
                    if frame.trace_state != TraceState::NONE {
                        frame.trace_state = TraceState::NONE;
                    }
                    frame.recording = false;
                }
            }
            Ok(())
        })?;
        DEPTH.set(depth + 1);
        // A frame that records nothing (a dropped trace) carries only what
        // propagation reads: its ids and flags.
        if !frame.recording {
            return Ok(Started::Quiet(FrameRef(depth + 1)));
        }
        frame.name = meta.name;
        frame.kind = meta.kind.into();
        frame.generation = tracer_slot::generation();
        frame.start = Instant::now();
        frame.dropped_attributes = 0;
        frame.dropped_events = 0;
        frame.status = Status::Unset;
        let attributes = std::mem::take(&mut frame.attributes);
        drop(frames);
        // Should an attribute's expression panic, the frame goes unrecorded.
        let unstart = Unstart(depth);
        let attributes = attrs(attributes);
        std::mem::forget(unstart);
        let mut frames = stack.borrow_mut();
        let frame = &mut frames[depth];
        // Most often nothing was set on the frame meanwhile.
        let set_meanwhile = std::mem::replace(&mut frame.attributes, attributes);
        if set_meanwhile.capacity() == 0 {
            // Nothing to free: no call into the vector's drop.
            std::mem::forget(set_meanwhile);
        } else {
            frame.attributes.extend(set_meanwhile);
        }
        frame.dropped_attributes += span_limits::limit_attributes(&mut frame.attributes);
        Ok(Started::Recording(FrameRef(depth + 1)))
    });
    started.unwrap_or(Err(NotHere::Skip))
}

/// The SDK's `TraceIdRatioBased` rule, so that either path decides a trace
/// id the same way; the ratios that decide alone (none, all) read no id.
#[inline]
pub(crate) fn sampled_by_ratio(trace_id: TraceId, ratio: f64) -> bool {
    if ratio <= 0.0 {
        return false;
    }
    if ratio >= 1.0 {
        return true;
    }
    let bound = (ratio * (1_u64 << 63) as f64) as u64;
    // The low 64 bits, as the SDK reads them.
    let low = u128::from_be_bytes(trace_id.to_bytes()) as u64;
    (low >> 1) < bound
}

/// Takes a frame back off the stack when its attributes' collection
/// unwinds.
struct Unstart(usize);

impl Drop for Unstart {
    fn drop(&mut self) {
        DEPTH.set(self.0);
    }
}

/// Pops a recording frame and hands its span to the thread's buffer.
/// Returns whether it recorded a failure.
pub(crate) fn pop(frame: FrameRef) -> bool {
    let Some(slot) = take_off(frame) else { return false };
    let popped = FRAMES.try_with(|frames| {
        let mut frames = frames.borrow_mut();
        let top = &mut frames[slot];
        top.recording && record_end(top)
    });
    popped.unwrap_or(false)
}

/// Pops a frame that records nothing: its slot holds nothing to hand on.
#[inline]
pub(crate) fn pop_quiet(frame: FrameRef) {
    take_off(frame);
}

/// Lowers the stack below `frame`; frames above it (a handle forgotten with
/// `mem::forget`) go too. Its slot, unless it was no longer on the stack.
#[inline]
fn take_off(frame: FrameRef) -> Option<usize> {
    let slot = frame.slot()?;
    DEPTH.set(slot);
    Some(slot)
}

/// A recording frame's end: its span into the thread's buffer.
fn record_end(top: &mut Frame) -> bool {
    let failed = matches!(top.status, Status::Error { .. });
    // Read only for a span that records: a dropped trace's frame needs
    // no clock.
    let end = Instant::now();
    if top.generation != tracer_slot::generation() || !tracer_slot::is_enabled() {
        top.attributes.clear();
        top.events.clear();
        return failed;
    }
    let Frame {
        trace_id,
        span_id,
        parent_span_id,
        parent_is_remote,
        flags,
        trace_state,
        name,
        kind,
        start,
        attributes,
        dropped_attributes,
        events,
        dropped_events,
        status,
        ..
    } = top;
    // Built in place in the buffer: a span is too large to move cheaply.
    let finished = |attribute_range, event_range| Finished {
        trace_id: *trace_id,
        span_id: *span_id,
        parent_span_id: *parent_span_id,
        parent_is_remote: *parent_is_remote,
        flags: *flags,
        trace_state: std::mem::take(trace_state),
        name,
        kind: kind.clone(),
        start: *start,
        end,
        attributes: attribute_range,
        dropped_attributes: *dropped_attributes,
        events: event_range,
        dropped_events: *dropped_events,
        status: std::mem::replace(status, Status::Unset),
    };
    finished_spans::finish(finished, attributes, events);
    failed
}

/// Runs `edit` on the frame when it is still on the stack and records.
fn with_frame<T>(frame: FrameRef, edit: impl FnOnce(&mut Frame) -> T) -> Option<T> {
    let slot = frame.slot()?;
    FRAMES
        .try_with(|frames| {
            let mut frames = frames.borrow_mut();
            let frame = frames.get_mut(slot)?;
            frame.recording.then(|| edit(frame))
        })
        .ok()
        .flatten()
}

/// True when the frame records.
pub(crate) fn is_recording(frame: FrameRef) -> bool {
    with_frame(frame, |_| ()).is_some()
}

pub(crate) fn set_attribute(frame: FrameRef, attribute: KeyValue) {
    with_frame(frame, |frame| {
        span_limits::set_attribute(&mut frame.attributes, &mut frame.dropped_attributes, attribute)
    });
}

pub(crate) fn add_event(frame: FrameRef, name: impl Into<Cow<'static, str>>, attributes: Vec<KeyValue>) {
    with_frame(frame, |frame| {
        let event = Event::new(name, SystemTime::now(), attributes, 0);
        span_limits::add_event(&mut frame.events, &mut frame.dropped_events, event);
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

/// What `read` takes of the newest frame, when it is newer than the
/// OpenTelemetry context.
fn with_newest<T>(read: impl FnOnce(&Frame, FrameRef) -> T) -> Option<T> {
    let depth = DEPTH.get();
    let newest = depth.checked_sub(1)?;
    FRAMES
        .try_with(|frames| {
            let frames = frames.borrow();
            let top = frames.get(newest)?;
            (top.otel_span == otel_span_id()).then(|| read(top, FrameRef(depth)))
        })
        .ok()
        .flatten()
}

/// The newest frame, when it is newer than the OpenTelemetry context.
pub(crate) fn newest() -> Option<FrameRef> {
    with_newest(|_, frame| frame)
}

/// The current span's context: the newest frame's, or the OpenTelemetry
/// context's span.
pub fn current_span_context() -> SpanContext {
    with_newest(|frame, _| frame.span_context())
        .unwrap_or_else(|| Context::map_current(|cx| cx.span().span_context().clone()))
}

/// The current OpenTelemetry context, with traced's current span in it.
///
/// A sync `#[span]` fn's span is recorded by traced's own span core, not as
/// an OpenTelemetry span in the context, so `Context::current()` inside it
/// still names the enclosing span. Spans started through
/// `opentelemetry::global` while traced is installed find traced's span by
/// themselves; give this context as the parent to any other tracer.
///
/// ```
/// # extern crate traced_core as traced;
/// use opentelemetry::trace::TraceContextExt as _;
///
/// // Outside any span, and with tracing off, it holds no span.
/// assert!(!traced::current_context().span().span_context().is_valid());
/// ```
pub fn current_context() -> Context {
    match with_newest(|frame, _| frame.span_context()) {
        Some(frame) => Context::current().with_span(FrameSpan(frame)),
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

#[cfg(test)]
mod tests {
    use opentelemetry::trace::SpanKind;
    use opentelemetry_sdk::trace::{Sampler, SamplingDecision, ShouldSample as _};

    use super::*;

    /// Either path (traced's frames, the SDK's sampler) keeps the same
    /// traces: a trace decided in one process is decided the same in the
    /// next, whichever path its spans take.
    #[test]
    fn the_ratio_rule_is_the_sdks() {
        for ratio in [0.0, 0.001, 0.25, 0.5, 0.999, 1.0] {
            let sdk = Sampler::TraceIdRatioBased(ratio);
            for _ in 0..2000 {
                let (trace_id, _) = crate::span_ids::new_trace();
                let decided = sdk.should_sample(None, trace_id, "stage", &SpanKind::Internal, &[], &[]);
                let sdk_samples = decided.decision == SamplingDecision::RecordAndSample;
                assert_eq!(sampled_by_ratio(trace_id, ratio), sdk_samples, "{trace_id} at {ratio}");
            }
        }
    }
}
