//! What a server tells a request's endpoint span, and where that span waits
//! for the server: the span leaves its context here so the response can name
//! it, and once the endpoint returns it is held open until the server adds
//! the response status and ends it.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use opentelemetry::trace::{SpanContext, Status, TraceContextExt as _};
use opentelemetry::{Context, KeyValue};

use crate::attributes::Attributes;

/// Put on the context a request's endpoint runs in, by the server.
#[derive(Clone, Debug)]
pub struct RequestSlot {
    route: &'static str,
    state: Arc<Mutex<SlotState>>,
}

#[derive(Debug, Default)]
struct SlotState {
    span: Option<SpanContext>,
    /// The ended endpoint's span, and whether it recorded a failure.
    held: Option<(Context, bool)>,
    /// The server stopped waiting (the client went away): spans end at once.
    closed: bool,
}

impl RequestSlot {
    /// A slot for one request to `route`.
    pub fn new(route: &'static str) -> Self {
        RequestSlot { route, state: Arc::default() }
    }

    fn lock(&self) -> MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn fill(&self, context: SpanContext) {
        self.lock().span = Some(context);
    }

    /// The HTTP semantic-convention attributes backends group requests by.
    pub(crate) fn request_attributes(&self, attrs: &mut Attributes) {
        attrs.push("http.request.method", "POST");
        attrs.push("http.route", self.route);
        attrs.push("url.path", self.route);
    }

    /// Keeps the endpoint's span open for [`RequestSlot::finish`], unless the
    /// server has stopped waiting for it.
    pub(crate) fn hold(&self, cx: Context, failed: bool) {
        let mut state = self.lock();
        if state.closed {
            drop(state);
            cx.span().end();
        } else {
            state.held = Some((cx, failed));
        }
    }

    /// Adds the response status to the endpoint's span and ends it; a 5xx the
    /// endpoint did not record as a failure (a reply it built itself) marks it.
    pub fn finish(&self, status: u16) {
        let Some((cx, failed)) = self.lock().held.take() else { return };
        let span = cx.span();
        span.set_attribute(KeyValue::new("http.response.status_code", i64::from(status)));
        if status >= 500 && !failed {
            span.set_status(Status::error(format!("HTTP {status}")));
        }
        span.end();
    }

    /// Ends what is held without a status, and anything held later at once.
    pub fn close(&self) {
        let held = {
            let mut state = self.lock();
            state.closed = true;
            state.held.take()
        };
        if let Some((cx, _)) = held {
            cx.span().end();
        }
    }

    /// The endpoint span's context, once it has started.
    pub fn span(&self) -> Option<SpanContext> {
        self.lock().span.clone()
    }
}
