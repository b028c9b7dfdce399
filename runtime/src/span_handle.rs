//! The spans `#[span]`, `#[endpoint]` and `#[traced_app]` create: how each is
//! started, made current, marked on panic, and ended.
//!
//! Everything here is reached through `traced::__private` by generated code,
//! which stays a few lines per function: the logic lives here, once.

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{PoisonError, RwLock};
use std::task::Poll;

use opentelemetry::trace::{
    Link, SpanContext, SpanKind, Status, TraceContextExt as _, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

use crate::attributes::Attributes;
use crate::propagation::{Carrier, extract_remote};

/// The tracer spans come from, set while a provider is installed.
static TRACER: RwLock<Option<SdkTracer>> = RwLock::new(None);
/// With a parent-based sampler, children of an unsampled span are unsampled
/// too, so they need not be created at all.
static PARENT_BASED: AtomicBool = AtomicBool::new(false);

pub(crate) fn install_tracer(provider: &SdkTracerProvider, parent_based: bool) {
    let scope = opentelemetry::InstrumentationScope::builder("traced").with_version(env!("CARGO_PKG_VERSION")).build();
    *TRACER.write().unwrap_or_else(PoisonError::into_inner) = Some(provider.tracer_with_scope(scope));
    PARENT_BASED.store(parent_based, Ordering::Relaxed);
}

pub(crate) fn remove_tracer() {
    *TRACER.write().unwrap_or_else(PoisonError::into_inner) = None;
}

/// A span's kind, as `#[span(kind = ...)]` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The default.
    Internal,
    /// Handles a request from another service.
    Server,
    /// Calls another service.
    Client,
    /// Hands work to a queue.
    Producer,
    /// Takes work from a queue.
    Consumer,
}

impl From<Kind> for SpanKind {
    fn from(kind: Kind) -> Self {
        match kind {
            Kind::Internal => SpanKind::Internal,
            Kind::Server => SpanKind::Server,
            Kind::Client => SpanKind::Client,
            Kind::Producer => SpanKind::Producer,
            Kind::Consumer => SpanKind::Consumer,
        }
    }
}

/// What generated code knows about a span at compile time.
#[derive(Clone, Copy, Debug)]
pub struct Meta {
    name: &'static str,
    kind: Kind,
    device_sync: bool,
    flush_on_failure: bool,
}

impl Meta {
    /// An internal span with this name.
    pub const fn new(name: &'static str) -> Self {
        Meta { name, kind: Kind::Internal, device_sync: false, flush_on_failure: false }
    }

    /// Sets the kind.
    #[must_use]
    pub const fn kind(mut self, kind: Kind) -> Self {
        self.kind = kind;
        self
    }

    /// Waits for the device before the span ends.
    #[must_use]
    pub const fn device_sync(mut self) -> Self {
        self.device_sync = true;
        self
    }

    /// Flushes the exporters when the span ends in failure (a failed setup is
    /// followed by the process exiting).
    #[must_use]
    pub const fn flush_on_failure(mut self) -> Self {
        self.flush_on_failure = true;
        self
    }
}

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

/// Anything that names a span to link to: `links(...)` and `follows_from(...)`.
pub trait IntoLink {
    /// The span context to link to; invalid ones are left out.
    fn span_context(&self) -> SpanContext;
}

impl IntoLink for SpanContext {
    fn span_context(&self) -> SpanContext {
        self.clone()
    }
}

impl IntoLink for Context {
    fn span_context(&self) -> SpanContext {
        self.span().span_context().clone()
    }
}

impl IntoLink for Carrier {
    fn span_context(&self) -> SpanContext {
        extract_remote(self).map_or_else(SpanContext::empty_context, |cx| cx.span().span_context().clone())
    }
}

impl<T: IntoLink + ?Sized> IntoLink for &T {
    fn span_context(&self) -> SpanContext {
        (**self).span_context()
    }
}

/// Collects `links(...)` into OTel links, skipping invalid contexts.
pub fn links<const N: usize>(targets: [&dyn IntoLink; N]) -> Vec<Link> {
    targets.iter().map(|target| target.span_context()).filter(SpanContext::is_valid).map(Link::with_context).collect()
}

/// One instrumented call's span. Ends when dropped; inert when tracing is off
/// or the span need not exist.
#[derive(Debug)]
pub struct SpanHandle {
    // An inert handle is one byte written and one read: copying the whole
    // `Meta` into it and back cost two store-forwarding stalls (8 ns of the 9
    // measured with tracing off).
    live: Option<Live>,
}

#[derive(Debug)]
struct Live {
    cx: Context,
    device_sync: bool,
    flush_on_failure: bool,
    failed: AtomicBool,
    /// A served request's span is ended by the server, once it knows the
    /// response status.
    served: Option<crate::serve::RequestSlot>,
}

impl SpanHandle {
    #[inline]
    const fn off() -> Self {
        SpanHandle { live: None }
    }

    /// A child of the current span.
    #[inline]
    pub fn new(meta: Meta, attrs: impl FnOnce(&mut Attributes)) -> Self {
        if !crate::provider::is_enabled() {
            return SpanHandle::off();
        }
        SpanHandle::create(meta, Parent::Current, Vec::new, attrs)
    }

    /// A child of the current span with links to other spans.
    #[inline]
    pub fn linked(meta: Meta, links: impl FnOnce() -> Vec<Link>, attrs: impl FnOnce(&mut Attributes)) -> Self {
        if !crate::provider::is_enabled() {
            return SpanHandle::off();
        }
        SpanHandle::create(meta, Parent::Current, links, attrs)
    }

    /// The first span of a trace of its own (setup, teardown).
    #[inline]
    pub fn root(meta: Meta) -> Self {
        if !crate::provider::is_enabled() {
            return SpanHandle::off();
        }
        SpanHandle::create(meta, Parent::Root, Vec::new, |_| {})
    }

    /// A request's root span: its parent is the caller's, from the W3C
    /// headers the server made current or else from the input's carrier.
    #[inline]
    pub fn request(meta: Meta, carrier: Option<&Carrier>, attrs: impl FnOnce(&mut Attributes)) -> Self {
        if !crate::provider::is_enabled() {
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
                let current = Context::current();
                let context = current.span().span_context().clone();
                if context.is_valid() && !context.is_sampled() && PARENT_BASED.load(Ordering::Relaxed) {
                    // The child would not be sampled either; the current context
                    // already carries everything propagation needs.
                    return SpanHandle::off();
                }
                current
            }
            Parent::Root => Context::new(),
            Parent::Request(carrier) => request_parent(carrier),
        };
        let links: Vec<Link> = links();
        let span = {
            // Started under the read lock rather than cloning the tracer: two
            // atomic operations fewer on every span.
            let tracer = TRACER.read().unwrap_or_else(PoisonError::into_inner);
            let Some(tracer) = tracer.as_ref() else {
                return SpanHandle::off();
            };
            tracer
                .span_builder(meta.name)
                .with_kind(meta.kind.into())
                .with_links(links)
                .start_with_context(tracer, &parent)
        };
        let cx = parent.with_span(span);
        // The server reads the request span back to name it in the answer.
        let served = if is_request { Context::current().get::<crate::serve::RequestSlot>().cloned() } else { None };
        if let Some(slot) = &served {
            slot.fill(cx.span().span_context().clone());
        }
        let span = cx.span();
        if span.is_recording() {
            let mut collected = Attributes::default();
            if let Some(slot) = &served {
                slot.describe(&mut collected);
            }
            attrs(&mut collected);
            if !collected.0.is_empty() {
                span.set_attributes(collected.0);
            }
        }
        SpanHandle {
            live: Some(Live {
                cx,
                device_sync: meta.device_sync,
                flush_on_failure: meta.flush_on_failure,
                failed: AtomicBool::new(false),
                served,
            }),
        }
    }

    /// The span's context, when it exists.
    pub fn context(&self) -> Option<&Context> {
        self.live.as_ref().map(|live| &live.cx)
    }

    /// Runs a sync body with the span current, recording a panic before it
    /// continues.
    #[inline]
    pub fn call<R, F: FnOnce() -> R>(&self, body: F) -> R {
        let Some(cx) = self.context() else { return body() };
        let _current = cx.clone().attach();
        match catch_unwind(AssertUnwindSafe(body)) {
            Ok(value) => value,
            Err(payload) => {
                self.record_panic(payload.as_ref());
                resume_unwind(payload)
            }
        }
    }

    /// Runs an async body with the span current at every poll, recording a
    /// panic, and marking the span cancelled if the future is dropped early.
    pub fn run<T, F: Future<Output = T>>(&self, body: F) -> InSpan<'_, F> {
        InSpan { handle: self, body, done: false }
    }

    pub(crate) fn record_panic(&self, payload: &(dyn Any + Send)) {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic with a non-string payload".to_string());
        self.record_exception(
            "panic",
            &message,
            vec![KeyValue::new("exception.escaped", true)],
            format!("panicked: {message}"),
        );
    }

    /// Adds an OTel `exception` event and sets the status to Error.
    pub(crate) fn record_exception(&self, kind: &str, message: &str, mut extra: Vec<KeyValue>, status: String) {
        let Some(live) = &self.live else { return };
        let span = live.cx.span();
        extra.insert(0, KeyValue::new("exception.type", kind.to_string()));
        extra.insert(1, KeyValue::new("exception.message", message.to_string()));
        span.add_event("exception", extra);
        span.set_status(Status::error(status));
        live.failed.store(true, Ordering::Relaxed);
    }

    /// True when the span is being recorded (tracing on and sampled).
    pub fn is_recording(&self) -> bool {
        self.context().is_some_and(|cx| cx.span().is_recording())
    }

    pub(crate) fn add_event(&self, name: &'static str, attributes: Vec<KeyValue>) {
        if let Some(cx) = self.context() {
            cx.span().add_event(name, attributes);
        }
    }

    pub(crate) fn set_attribute(&self, attribute: KeyValue) {
        if let Some(cx) = self.context() {
            cx.span().set_attribute(attribute);
        }
    }
}

fn request_parent(carrier: Option<&Carrier>) -> Context {
    let current = Context::current();
    if current.span().span_context().is_remote() {
        return current;
    }
    carrier.and_then(extract_remote).unwrap_or_default()
}

impl Drop for SpanHandle {
    // Inlined so an inert handle (tracing off, parent unsampled) costs a
    // branch, not a call.
    #[inline]
    fn drop(&mut self) {
        if let Some(live) = &self.live {
            live.end();
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
            crate::provider::flush(crate::provider::flush_budget());
        }
    }
}

/// An async body running inside its span; see [`SpanHandle::run`].
#[derive(Debug)]
pub struct InSpan<'a, F> {
    handle: &'a SpanHandle,
    body: F,
    done: bool,
}

impl<F: Future> Future for InSpan<'_, F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, task: &mut std::task::Context<'_>) -> Poll<F::Output> {
        // SAFETY: `body` is structurally pinned: it is never moved out of the
        // pinned `InSpan`, and `InSpan` has no `Unpin` impl of its own.
        let this = unsafe { self.get_unchecked_mut() };
        let body = unsafe { Pin::new_unchecked(&mut this.body) };
        let Some(cx) = this.handle.context() else {
            let poll = body.poll(task);
            this.done = poll.is_ready();
            return poll;
        };
        let _current = cx.clone().attach();
        match catch_unwind(AssertUnwindSafe(|| body.poll(task))) {
            Ok(poll) => {
                this.done = poll.is_ready();
                poll
            }
            Err(payload) => {
                this.done = true;
                this.handle.record_panic(payload.as_ref());
                resume_unwind(payload)
            }
        }
    }
}

impl<F> Drop for InSpan<'_, F> {
    fn drop(&mut self) {
        if !self.done {
            self.handle.set_attribute(KeyValue::new("traced.cancelled", true));
            self.handle.add_event("cancelled", Vec::new());
        }
    }
}
