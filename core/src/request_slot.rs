//! Where a served request's span waits for its response: the span (made by
//! the tower layer, or by an `#[endpoint]` once the body is parsed) leaves
//! its context here so the response can name it, and once it ends it is held
//! open until the layer adds the response status and ends it.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use opentelemetry::trace::{SpanContext, Status, TraceContextExt as _};
use opentelemetry::{Context, KeyValue};

use crate::attributes::Attributes;

/// One request's slot, put on the context its handler runs in.
#[derive(Clone, Debug)]
pub struct RequestSlot {
    /// The HTTP semantic-convention attributes backends group requests by.
    attributes: Arc<[KeyValue]>,
    state: Arc<Mutex<SlotState>>,
}

#[derive(Debug, Default)]
struct SlotState {
    span: Option<SpanContext>,
    /// The ended span, and whether it recorded a failure.
    held: Option<(Context, bool)>,
    /// Answered or abandoned: a span that ends later ends at once.
    closed: bool,
    /// The client went away before the answer.
    cancelled: bool,
}

impl RequestSlot {
    /// A slot for one request described by `attributes`.
    pub fn new(attributes: Vec<KeyValue>) -> Self {
        RequestSlot { attributes: attributes.into(), state: Arc::default() }
    }

    fn lock(&self) -> MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Names `context` as the request's span.
    pub fn fill(&self, context: SpanContext) {
        self.lock().span = Some(context);
    }

    /// Adds the request's HTTP attributes.
    pub(crate) fn request_attributes(&self, attrs: &mut Attributes) {
        attrs.0.extend(self.attributes.iter().cloned());
    }

    /// Keeps the request's span open for [`RequestSlot::finish`], unless the
    /// request is over.
    pub fn hold(&self, cx: Context, failed: bool) {
        let mut state = self.lock();
        if state.closed {
            let cancelled = state.cancelled;
            drop(state);
            end(&cx, cancelled);
        } else {
            state.held = Some((cx, failed));
        }
    }

    /// Adds the response status to the request's span and ends it; a 5xx the
    /// span did not record as a failure (a reply the handler built itself)
    /// marks it.
    pub fn finish(&self, status: u16) {
        let Some((cx, failed)) = self.close_with(false) else { return };
        let span = cx.span();
        span.set_attribute(KeyValue::new("http.response.status_code", i64::from(status)));
        if status >= 500 && !failed {
            span.set_status(Status::error(format!("HTTP {status}")));
        }
        span.end();
    }

    /// Ends the request's span as failed: the service answered with an error
    /// instead of a response.
    pub fn fail(&self, message: &str) {
        if let Some((cx, _)) = self.close_with(false) {
            let span = cx.span();
            span.set_status(Status::error(message.to_string()));
            span.end();
        }
    }

    /// The client went away: what is held ends now, and what ends later ends
    /// at once, each marked `traced.cancelled`.
    pub fn cancel(&self) {
        if let Some((cx, _)) = self.close_with(true) {
            end(&cx, true);
        }
    }

    fn close_with(&self, cancelled: bool) -> Option<(Context, bool)> {
        let mut state = self.lock();
        state.closed = true;
        state.cancelled = cancelled;
        state.held.take()
    }

    /// The request span's context, once it has started.
    pub fn span(&self) -> Option<SpanContext> {
        self.lock().span.clone()
    }
}

fn end(cx: &Context, cancelled: bool) {
    let span = cx.span();
    if cancelled {
        span.set_attribute(KeyValue::new("traced.cancelled", true));
    }
    span.end();
}
