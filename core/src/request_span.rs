//! A served request's span recorded by traced's own core: it lives in the
//! request's OpenTelemetry context (so `#[span]` fns, the client and
//! `Context::current()` see it as the SDK's), crosses threads with the
//! request's future, and when it ends goes to the ending thread's
//! finished-span buffer like a sync fn's frame, with no `SpanData` built and
//! no shared queue on the request's path.
//!
//! Made only where traced decides the sampling itself (a parent-based
//! sampler with no keep rule: a sampled parent, or a new trace kept by the
//! trace-id ratio) and the name is known for the life of the process; the
//! SDK makes every other request's span.

use std::borrow::Cow;
use std::time::SystemTime;

use fastant::Instant;
use opentelemetry::trace::{
    Event, Span, SpanContext, SpanId, SpanKind, Status, TraceContextExt as _, TraceFlags, TraceState,
};
use opentelemetry::{Context, KeyValue};

use crate::finished_spans::{self, Finished};
use crate::kind::Kind;
use crate::local_span::sampled_by_ratio;
use crate::{span_ids, span_limits, tracer_slot};

/// Starts a request's span under `parent` and returns the context that holds
/// it, or `None` when tracing is off or the parent is unsampled under a
/// parent-based sampler. The caller ends the span.
pub fn start_request_span(
    name: Cow<'static, str>,
    kind: Kind,
    parent: &Context,
    attributes: Vec<KeyValue>,
) -> Option<Context> {
    if !tracer_slot::is_enabled() || tracer_slot::skips_children_of(parent) {
        return None;
    }
    if let Cow::Borrowed(name) = name
        && let Some(span) = RequestSpan::start(name, kind, parent)
    {
        return Some(parent.with_span(span.with_attributes(attributes)));
    }
    crate::bridged_span::start_bridged_span(name, kind, parent, || attributes)
}

/// The context of a new request span named `name` under `parent`, when
/// traced decides its sampling itself and keeps it, with `attributes` as it
/// starts (asked for only then); `None` leaves the span to the SDK.
pub(crate) fn start_owned(
    name: &'static str,
    kind: Kind,
    parent: &Context,
    attributes: impl FnOnce() -> Vec<KeyValue>,
) -> Option<Context> {
    RequestSpan::start(name, kind, parent).map(|span| parent.with_span(span.with_attributes(attributes())))
}

#[derive(Debug)]
struct RequestSpan {
    context: SpanContext,
    parent_span_id: SpanId,
    parent_is_remote: bool,
    name: &'static str,
    kind: SpanKind,
    start: Instant,
    attributes: Vec<KeyValue>,
    dropped_attributes: u32,
    events: Vec<Event>,
    dropped_events: u32,
    status: Status,
    /// The installed tracer when it started: a span that outlives its
    /// provider is not handed to the next one.
    generation: u64,
    ended: bool,
}

impl RequestSpan {
    /// A recording span, when traced can decide that it is sampled; `None`
    /// leaves the decision to the SDK's sampler.
    fn start(name: &'static str, kind: Kind, parent: &Context) -> Option<Self> {
        if !tracer_slot::skips_unsampled_children() {
            return None;
        }
        let span = parent.span();
        let parent_context = span.span_context();
        let (trace_id, span_id, parent_span_id, parent_is_remote, flags, trace_state) = if parent_context.is_valid() {
            if !parent_context.is_sampled() {
                return None;
            }
            (
                parent_context.trace_id(),
                span_ids::span_id(),
                parent_context.span_id(),
                parent_context.is_remote(),
                parent_context.trace_flags(),
                parent_context.trace_state().clone(),
            )
        } else {
            let ratio = tracer_slot::root_ratio()?;
            let (trace_id, span_id) = span_ids::new_trace();
            if !sampled_by_ratio(trace_id, ratio) {
                return None;
            }
            (trace_id, span_id, SpanId::INVALID, false, TraceFlags::SAMPLED, TraceState::NONE)
        };
        let context = SpanContext::new(trace_id, span_id, flags, false, trace_state);
        Some(RequestSpan::new(context, (parent_span_id, parent_is_remote), name, kind.into()))
    }

    /// A span starting now, of `context`, under `parent` (its id, and
    /// whether it is another process's).
    fn new(context: SpanContext, parent: (SpanId, bool), name: &'static str, kind: SpanKind) -> Self {
        RequestSpan {
            context,
            parent_span_id: parent.0,
            parent_is_remote: parent.1,
            name,
            kind,
            start: Instant::now(),
            attributes: Vec::new(),
            dropped_attributes: 0,
            events: Vec::new(),
            dropped_events: 0,
            status: Status::Unset,
            generation: tracer_slot::generation(),
            ended: false,
        }
    }

    fn with_attributes(mut self, mut attributes: Vec<KeyValue>) -> Self {
        self.dropped_attributes = span_limits::limit_attributes(&mut attributes);
        self.attributes = attributes;
        self
    }
}

impl Span for RequestSpan {
    fn add_event_with_timestamp<T>(&mut self, name: T, timestamp: SystemTime, attributes: Vec<KeyValue>)
    where
        T: Into<Cow<'static, str>>,
    {
        span_limits::add_event(&mut self.events, &mut self.dropped_events, Event::new(name, timestamp, attributes, 0));
    }

    fn span_context(&self) -> &SpanContext {
        &self.context
    }

    fn is_recording(&self) -> bool {
        !self.ended
    }

    fn set_attribute(&mut self, attribute: KeyValue) {
        span_limits::set_attribute(&mut self.attributes, &mut self.dropped_attributes, attribute);
    }

    /// As the SDK: `Ok` is final, `Unset` changes nothing.
    fn set_status(&mut self, status: Status) {
        match (&self.status, &status) {
            (Status::Ok, _) | (_, Status::Unset) => {}
            _ => self.status = status,
        }
    }

    /// Kept only when the new name lives as long as the process (the
    /// finished-span buffer holds `&'static str` names).
    fn update_name<T>(&mut self, new_name: T)
    where
        T: Into<Cow<'static, str>>,
    {
        if let Cow::Borrowed(name) = new_name.into() {
            self.name = name;
        }
    }

    fn add_link(&mut self, _span_context: SpanContext, _attributes: Vec<KeyValue>) {}

    fn end_with_timestamp(&mut self, _timestamp: SystemTime) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        if self.generation != tracer_slot::generation() || !tracer_slot::is_enabled() {
            return;
        }
        let end = Instant::now();
        let (context, status) = (&self.context, std::mem::replace(&mut self.status, Status::Unset));
        let (parent_span_id, parent_is_remote, name, kind) =
            (self.parent_span_id, self.parent_is_remote, self.name, self.kind.clone());
        let (start, dropped_attributes, dropped_events) = (self.start, self.dropped_attributes, self.dropped_events);
        let span = |attributes, events| Finished {
            trace_id: context.trace_id(),
            span_id: context.span_id(),
            parent_span_id,
            parent_is_remote,
            flags: context.trace_flags(),
            trace_state: context.trace_state().clone(),
            name,
            kind,
            start,
            end,
            attributes,
            dropped_attributes,
            events,
            dropped_events,
            status,
        };
        finished_spans::finish(span, &mut self.attributes, &mut self.events);
    }
}

impl Drop for RequestSpan {
    /// As the SDK's spans: one dropped before it was ended ends now.
    fn drop(&mut self) {
        self.end_with_timestamp(SystemTime::now());
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::TraceId;

    use super::*;

    fn span() -> RequestSpan {
        let context = SpanContext::new(TraceId::from(1), SpanId::from(1), TraceFlags::SAMPLED, false, TraceState::NONE);
        RequestSpan::new(context, (SpanId::INVALID, false), "GET /v1/generate/{model}", SpanKind::Server)
    }

    #[test]
    fn its_status_changes_as_the_sdks_does() {
        let mut span = span();
        span.set_status(Status::error("HTTP 500"));
        assert_eq!(span.status, Status::error("HTTP 500"));
        span.set_status(Status::Unset);
        assert_eq!(span.status, Status::error("HTTP 500"), "unset changes nothing");
        span.set_status(Status::Ok);
        span.set_status(Status::error("later"));
        assert_eq!(span.status, Status::Ok, "ok is final");
    }

    #[test]
    fn attributes_and_events_stop_at_the_sdks_limits() {
        let mut span = span().with_attributes((0..130).map(|i| KeyValue::new(format!("k{i}"), i)).collect());
        assert_eq!((span.attributes.len(), span.dropped_attributes), (128, 2));
        span.set_attribute(KeyValue::new("k0", "again"));
        assert_eq!(span.attributes[0].value.as_str(), "again", "a key set again is replaced, not added");
        span.set_attribute(KeyValue::new("new", 1));
        assert_eq!(span.dropped_attributes, 3);
        for _ in 0..130 {
            span.add_event("item", Vec::new());
        }
        assert_eq!((span.events.len(), span.dropped_events), (128, 2));
    }

    #[test]
    fn a_name_made_at_run_time_does_not_replace_it() {
        let mut span = span();
        span.update_name(format!("GET /{}", 1));
        assert_eq!(span.name, "GET /v1/generate/{model}");
        span.update_name("POST /v1/edit");
        assert_eq!(span.name, "POST /v1/edit");
    }

    #[test]
    fn one_ended_stops_recording_and_does_not_end_again() {
        let mut span = span();
        assert!(span.is_recording());
        span.end();
        assert!(!span.is_recording());
        span.end();
    }
}
