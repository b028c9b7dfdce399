//! The spans `#[span]`, `#[endpoint]` and `#[traced_app]` create: how each is
//! started, made current, marked on panic, and ended.
//!
//! Everything here is reached through `traced::__private` by generated code,
//! which stays a few lines per function: the logic lives here, once.

use std::any::Any;
use std::mem::ManuallyDrop;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::trace::{Link, Status, TraceContextExt as _};
use opentelemetry::{Context, KeyValue};

use crate::ai_kind::{AI_KIND_KEY, AiKind};
use crate::attributes::Attributes;
use crate::carrier::Carrier;
use crate::exception::exception_attributes;
use crate::local_span::{self, FrameRef, NotHere, Started};
use crate::meta::Meta;
use crate::panic_message::panic_message;
use crate::propagation::extract_remote;
use crate::request_slot::RequestSlot;
use crate::request_span::start_owned;
use crate::trace_context::keep_random_flag;
use crate::tracer_slot::{self, SpanStart};

/// Where a span's parent comes from.
enum Parent<'a> {
    /// The current context.
    Current,
    /// None: the span starts its own trace.
    Root,
    /// A request's parent: the remote context made current by the server,
    /// else the input's carrier, else none.
    Request(Option<&'a Carrier>),
}

/// One instrumented call's span. Ends when dropped; inert when tracing is off
/// or the span need not exist.
#[derive(Debug)]
pub struct SpanHandle {
    // An inert handle is one byte written and one read: copying the whole
    // `Meta` into it and back cost two store-forwarding stalls (8 ns of the 9
    // measured with tracing off).
    state: State,
}

#[derive(Debug)]
enum State {
    Off,
    /// An SDK span, in a `Context`. Dropped by hand in `SpanHandle::drop`, so
    /// that `State` has no drop glue: an inert handle's drop is one branch,
    /// not a call.
    Sdk(ManuallyDrop<Live>),
    /// A frame of traced's own span core (a sync fn's span).
    Frame(LocalFrame),
}

#[derive(Debug)]
struct LocalFrame {
    frame: FrameRef,
    /// False for a frame that only carries ids (a trace head sampling
    /// dropped): its end is one store.
    records: bool,
    device_sync: bool,
    flush_on_failure: bool,
}

#[derive(Debug)]
struct Live {
    cx: Context,
    device_sync: bool,
    flush_on_failure: bool,
    failed: AtomicBool,
    /// A served request's span is ended by the server, once it knows the
    /// response status.
    served: Option<RequestSlot>,
}

impl SpanHandle {
    #[inline]
    const fn off() -> Self {
        SpanHandle { state: State::Off }
    }

    /// A child of the current span for a sync fn: it starts and ends on this
    /// thread, around one call, so traced's own span core can record it.
    #[inline]
    pub fn scoped(meta: &'static Meta, attrs: impl FnOnce(&mut Attributes)) -> Self {
        if !tracer_slot::is_enabled() {
            return SpanHandle::off();
        }
        SpanHandle::create_scoped(meta, attrs)
    }

    #[inline(never)]
    fn create_scoped(meta: &'static Meta, attrs: impl FnOnce(&mut Attributes)) -> Self {
        let mut attrs = Some(attrs);
        let started = local_span::start(meta, |attributes| {
            let mut collected = Attributes(attributes);
            annotated_ai_kind(meta, &mut collected);
            if let Some(attrs) = attrs.take() {
                attrs(&mut collected);
            }
            collected.0
        });
        let (frame, records) = match started {
            Ok(Started::Recording(frame)) => (frame, true),
            Ok(Started::Quiet(frame)) => (frame, false),
            Err(NotHere::Skip) => return SpanHandle::off(),
            // The attributes are still to be collected: no frame was made.
            Err(NotHere::Sdk) => match attrs.take() {
                Some(attrs) => return SpanHandle::create(*meta, Parent::Current, Vec::new, attrs),
                None => return SpanHandle::off(),
            },
        };
        SpanHandle {
            state: State::Frame(LocalFrame {
                frame,
                records,
                device_sync: meta.device_sync,
                flush_on_failure: meta.flush_on_failure,
            }),
        }
    }

    /// A child of the current span.
    #[inline]
    pub fn new(meta: Meta, attrs: impl FnOnce(&mut Attributes)) -> Self {
        if !tracer_slot::is_enabled() {
            return SpanHandle::off();
        }
        SpanHandle::create(meta, Parent::Current, Vec::new, attrs)
    }

    /// A child of the current span with links to other spans.
    #[inline]
    pub fn linked(meta: Meta, links: impl FnOnce() -> Vec<Link>, attrs: impl FnOnce(&mut Attributes)) -> Self {
        if !tracer_slot::is_enabled() {
            return SpanHandle::off();
        }
        SpanHandle::create(meta, Parent::Current, links, attrs)
    }

    /// The first span of a trace of its own (setup, teardown).
    #[inline]
    pub fn root(meta: Meta) -> Self {
        if !tracer_slot::is_enabled() {
            return SpanHandle::off();
        }
        SpanHandle::create(meta, Parent::Root, Vec::new, |_| {})
    }

    /// A request's root span: its parent is the caller's, from the W3C
    /// headers the server made current or else from the input's carrier.
    #[inline]
    pub fn request(meta: Meta, carrier: Option<&Carrier>, attrs: impl FnOnce(&mut Attributes)) -> Self {
        if !tracer_slot::is_enabled() {
            return SpanHandle::off();
        }
        SpanHandle::create(meta, Parent::Request(carrier), Vec::new, attrs)
    }

    // Out of line: inlined, its frame and saved registers were paid on every
    // call, tracing off included (measured: 9 ns against 1 ns).
    #[inline(never)]
    fn create(
        meta: Meta,
        parent: Parent<'_>,
        links: impl FnOnce() -> Vec<Link>,
        attrs: impl FnOnce(&mut Attributes),
    ) -> Self {
        let is_request = matches!(parent, Parent::Request(_));
        let parent = match parent {
            Parent::Current => {
                let current = local_span::current_context();
                if tracer_slot::skips_children_of(&current) {
                    return SpanHandle::off();
                }
                current
            }
            Parent::Root => Context::new(),
            Parent::Request(carrier) => request_parent(carrier),
        };
        let links: Vec<Link> = links();
        // A request's span, or the first span of a new trace, with no links
        // is traced's own when it can decide the sampling: no `SpanData`, no
        // shared queue. It is the context's span, so that OpenTelemetry code
        // under it sees it as the SDK's would be.
        let new_trace = !parent.span().span_context().is_valid();
        let mut attrs = Some(attrs);
        let owned = if (is_request || new_trace) && links.is_empty() {
            // A new trace's attributes go on its span as it starts, not one
            // by one through the context; a request's wait for its slot.
            start_owned(meta.name, meta.kind, &parent, || {
                let attrs = if is_request { None } else { attrs.take() };
                let mut collected = Attributes::default();
                if let Some(attrs) = attrs {
                    annotated_ai_kind(&meta, &mut collected);
                    attrs(&mut collected);
                }
                collected.0
            })
        } else {
            None
        };
        let cx = match owned {
            Some(cx) => cx,
            None => {
                let span = SpanStart { name: meta.name.into(), kind: meta.kind.into(), links, attributes: Vec::new() };
                let Some(cx) = tracer_slot::start_with_tracer(span, &parent) else {
                    return SpanHandle::off();
                };
                keep_random_flag(&parent, cx)
            }
        };
        // The server reads the request span back to name it in the answer,
        // and its metrics what the request was; the slot goes on with the
        // span's context so that what runs under it can add to them.
        let served = if is_request { Context::current().get::<RequestSlot>().cloned() } else { None };
        let cx = match &served {
            Some(slot) => {
                slot.fill(&cx);
                if meta.ai_kind != AiKind::Chain {
                    slot.note_ai_kind(meta.ai_kind);
                }
                cx.with_value(slot.clone())
            }
            None => cx,
        };
        let span = cx.span();
        if let Some(attrs) = attrs.take()
            && span.is_recording()
        {
            let mut collected = Attributes::default();
            annotated_ai_kind(&meta, &mut collected);
            if let Some(slot) = &served {
                slot.request_attributes(&mut collected);
            }
            attrs(&mut collected);
            if !collected.0.is_empty() {
                span.set_attributes(collected.0);
            }
        }
        SpanHandle {
            state: State::Sdk(ManuallyDrop::new(Live {
                cx,
                device_sync: meta.device_sync,
                flush_on_failure: meta.flush_on_failure,
                failed: AtomicBool::new(false),
                served,
            })),
        }
    }

    /// The span's context, when it is an SDK span.
    pub fn context(&self) -> Option<&Context> {
        match &self.state {
            State::Sdk(live) => Some(&live.cx),
            State::Off | State::Frame(_) => None,
        }
    }

    /// Runs a sync body with the span current, recording a panic before it
    /// continues.
    #[inline]
    pub fn call<R, F: FnOnce() -> R>(&self, body: F) -> R {
        let _current = match &self.state {
            State::Off => return body(),
            // Already current: it is the top frame.
            State::Frame(_) => None,
            State::Sdk(live) => Some(live.cx.clone().attach()),
        };
        match catch_unwind(AssertUnwindSafe(body)) {
            Ok(value) => value,
            Err(payload) => {
                self.record_panic(payload.as_ref());
                resume_unwind(payload)
            }
        }
    }

    /// Records a panic: an `exception` event with the payload's message, and
    /// status Error.
    pub fn record_panic(&self, payload: &(dyn Any + Send)) {
        let message = panic_message(payload);
        self.record_exception(
            "panic",
            &message,
            vec![KeyValue::new("exception.escaped", true)],
            format!("panicked: {message}"),
        );
    }

    /// Adds an OTel `exception` event (`kind` as its type, `message`, and
    /// `extra` attributes) and sets the status to Error with `status`.
    pub fn record_exception(&self, kind: &str, message: &str, extra: Vec<KeyValue>, status: String) {
        if matches!(self.state, State::Off) {
            return;
        }
        let extra = exception_attributes(kind, message, extra);
        match &self.state {
            State::Off => {}
            State::Frame(local) => {
                local_span::add_event(local.frame, "exception", extra);
                local_span::set_status(local.frame, Status::error(status));
            }
            State::Sdk(live) => {
                let span = live.cx.span();
                span.add_event("exception", extra);
                span.set_status(Status::error(status));
                live.failed.store(true, Ordering::Relaxed);
            }
        }
    }

    /// True when the span is being recorded (tracing on and sampled).
    pub fn is_recording(&self) -> bool {
        match &self.state {
            State::Off => false,
            State::Frame(local) => local_span::is_recording(local.frame),
            State::Sdk(live) => live.cx.span().is_recording(),
        }
    }

    pub(crate) fn add_event(&self, name: &'static str, attributes: Vec<KeyValue>) {
        match &self.state {
            State::Off => {}
            State::Frame(local) => local_span::add_event(local.frame, name, attributes),
            State::Sdk(live) => live.cx.span().add_event(name, attributes),
        }
    }

    /// A served request's answer made its first item `after` the span began.
    pub(crate) fn note_first_chunk(&self, after: std::time::Duration) {
        if let State::Sdk(live) = &self.state
            && let Some(slot) = &live.served
        {
            slot.note_first_chunk(after);
        }
    }

    pub(crate) fn set_attribute(&self, attribute: KeyValue) {
        match &self.state {
            State::Off => {}
            State::Frame(local) => local_span::set_attribute(local.frame, attribute),
            State::Sdk(live) => live.cx.span().set_attribute(attribute),
        }
    }
}

/// The OpenInference kind the annotation gave. CHAIN, the default, is added
/// on the export thread: the caller's thread pays only for a kind the
/// annotation gave.
fn annotated_ai_kind(meta: &Meta, attrs: &mut Attributes) {
    if meta.ai_kind != AiKind::Chain {
        attrs.push(AI_KIND_KEY, meta.ai_kind.as_str());
    }
}

fn request_parent(carrier: Option<&Carrier>) -> Context {
    let current = Context::current();
    if current.span().span_context().is_remote() {
        return current;
    }
    carrier.and_then(|carrier| extract_remote(carrier)).unwrap_or_default()
}

impl Drop for SpanHandle {
    // Inlined so an inert handle (tracing off, parent unsampled) costs a
    // branch, not a call.
    #[inline]
    fn drop(&mut self) {
        match std::mem::replace(&mut self.state, State::Off) {
            State::Off => {}
            State::Frame(local) => local.end(),
            State::Sdk(live) => end_sdk(ManuallyDrop::into_inner(live)),
        }
    }
}

#[inline(never)]
fn end_sdk(live: Live) {
    live.end();
}

impl LocalFrame {
    // Out of line: inlined into every annotated fn, it cost the fn 9
    // instructions a call with tracing off (measured). A frame that records
    // nothing ends here, before the recording end's saved registers.
    #[inline(never)]
    fn end(&self) {
        if self.records {
            self.record_end();
        } else {
            local_span::pop_quiet(self.frame);
        }
    }

    #[inline(never)]
    fn record_end(&self) {
        if self.device_sync {
            crate::device::synchronize();
        }
        let failed = local_span::pop(self.frame);
        if self.flush_on_failure && failed {
            tracer_slot::flush();
        }
    }
}

impl Live {
    fn end(&self) {
        let span = self.cx.span();
        if self.device_sync && span.is_recording() {
            crate::device::synchronize();
        }
        match &self.served {
            Some(slot) => slot.hold(self.cx.clone(), self.failed.load(Ordering::Relaxed)),
            None => span.end(),
        }
        if self.flush_on_failure && self.failed.load(Ordering::Relaxed) {
            tracer_slot::flush();
        }
    }
}
