//! Where a served request's span waits for its response: the span (made by
//! the tower layer, or by an `#[endpoint]` once the body is parsed) leaves
//! its context here so the response can name it, and once it ends it is held
//! open until the layer adds the response status and ends it. A streamed
//! answer ends it later still: when the body's last byte is written, or when
//! the client hangs up.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use opentelemetry::trace::{SpanContext, Status, TraceContextExt as _};
use opentelemetry::{Context, KeyValue};

use crate::ai_kind::AiKind;
use crate::attributes::Attributes;
use crate::exception::record_exception_on;

/// What a request's GenAI metrics are counted by: the endpoint's AI kind,
/// the operation and model its span recorded (`GenAiRequest`), and the time
/// to its streamed answer's first item.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AiNote {
    /// The endpoint's `ai_kind`, when one was given.
    pub kind: Option<AiKind>,
    /// `gen_ai.operation.name`, when recorded.
    pub operation: Option<&'static str>,
    /// `gen_ai.request.model`, when recorded.
    pub model: Option<String>,
    /// From the span's start to the first item of a streamed answer.
    pub first_chunk: Option<Duration>,
}

impl AiNote {
    /// The operation the metrics name: the recorded one, else the one the
    /// AI kind implies; `None` for a request that is not a GenAI one.
    pub fn operation_name(&self) -> Option<&'static str> {
        self.operation.or_else(|| {
            Some(match self.kind? {
                AiKind::Llm => "chat",
                AiKind::Embedding => "embeddings",
                AiKind::Tool => "execute_tool",
                AiKind::Agent => "invoke_agent",
                _ => "generate_content",
            })
        })
    }
}

/// One request's slot, put on the context its handler runs in.
#[derive(Clone, Debug)]
pub struct RequestSlot {
    // One allocation per request.
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    /// The HTTP semantic-convention attributes backends group requests by.
    attributes: Vec<KeyValue>,
    state: Mutex<SlotState>,
}

#[derive(Debug, Default)]
struct SlotState {
    /// The request's span, live or ended.
    span: Option<Context>,
    /// The ended span, and whether it recorded a failure.
    held: Option<(Context, bool)>,
    /// Answered or abandoned: a span that ends later ends at once.
    closed: bool,
    /// The client went away before the answer's end.
    cancelled: bool,
    /// The request's span recorded a failure (a failed item of a stream
    /// included), whatever the status.
    failed: bool,
    /// What its GenAI metrics are counted by.
    ai: AiNote,
    /// Added when the span ends: what the response's end taught.
    closing: Vec<KeyValue>,
}

impl RequestSlot {
    /// A slot for one request described by `attributes`.
    pub fn new(attributes: Vec<KeyValue>) -> Self {
        RequestSlot { shared: Arc::new(Shared { attributes, state: Mutex::default() }) }
    }

    fn lock(&self) -> MutexGuard<'_, SlotState> {
        self.shared.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Names the span in `cx` as the request's span.
    pub fn fill(&self, cx: &Context) {
        self.lock().span = Some(cx.clone());
    }

    /// Adds the request's HTTP attributes.
    pub(crate) fn request_attributes(&self, attrs: &mut Attributes) {
        attrs.0.extend(self.shared.attributes.iter().cloned());
    }

    /// Keeps the request's span open for [`RequestSlot::finish`], unless the
    /// request is over.
    pub fn hold(&self, cx: Context, failed: bool) {
        let mut state = self.lock();
        state.failed |= failed;
        if state.closed {
            let cancelled = state.cancelled;
            let closing = std::mem::take(&mut state.closing);
            drop(state);
            end(&cx, cancelled, closing);
        } else {
            state.held = Some((cx, failed));
        }
    }

    /// Adds the response status (and `closing`) to the request's span and
    /// ends it; a 5xx the span did not record as a failure (a reply the
    /// handler built itself) marks it.
    pub fn finish(&self, status: u16, mut closing: Vec<KeyValue>) {
        closing.push(KeyValue::new("http.response.status_code", i64::from(status)));
        let Some((cx, failed, closing)) = self.close_with(false, closing) else { return };
        let span = cx.span();
        if status >= 500 && !failed {
            span.set_status(Status::error(format!("HTTP {status}")));
        }
        end(&cx, false, closing);
    }

    /// Ends the request's span as failed: the service answered with an error
    /// instead of a response, or the response's body failed part way. A span
    /// still running (a stream's producer) is marked now and ends when its
    /// producer lets go.
    pub fn fail(&self, message: &str, closing: Vec<KeyValue>) {
        self.record_exception("traced::ResponseError", message);
        if let Some((cx, _, closing)) = self.close_with(false, closing) {
            end(&cx, false, closing);
        }
    }

    /// Records an `exception` event and status Error on the request's span,
    /// running or held, without ending it: a streamed answer's failed item.
    pub fn record_exception(&self, kind: &str, message: &str) {
        let mut state = self.lock();
        state.failed = true;
        let Some(cx) = state.held.as_ref().map(|(cx, _)| cx.clone()).or_else(|| state.span.clone()) else { return };
        drop(state);
        record_exception_on(&cx.span(), kind, message);
    }

    /// The client went away: what is held ends now, and what ends later ends
    /// at once, each marked `traced.cancelled` (with `closing`).
    pub fn cancel(&self, closing: Vec<KeyValue>) {
        if let Some((cx, _, closing)) = self.close_with(true, closing) {
            end(&cx, true, closing);
        }
    }

    /// Closes the slot: the held span, if any, with its closing attributes,
    /// for the caller to end; a span not yet held finds them when it is.
    fn close_with(&self, cancelled: bool, closing: Vec<KeyValue>) -> Option<(Context, bool, Vec<KeyValue>)> {
        let mut state = self.lock();
        state.closed = true;
        state.cancelled = cancelled;
        state.closing.extend(closing);
        let (cx, failed) = state.held.take()?;
        Some((cx, failed, std::mem::take(&mut state.closing)))
    }

    /// The request is a GenAI one of `kind` (its endpoint's `ai_kind`).
    pub(crate) fn note_ai_kind(&self, kind: AiKind) {
        self.lock().ai.kind = Some(kind);
    }

    /// The request's GenAI operation and model, as recorded on its span.
    pub(crate) fn note_gen_ai(&self, operation: &'static str, model: &str) {
        let mut state = self.lock();
        state.ai.operation = Some(operation);
        state.ai.model = Some(model.to_string());
    }

    /// The time from the request span's start to its answer's first item.
    pub(crate) fn note_first_chunk(&self, after: Duration) {
        self.lock().ai.first_chunk.get_or_insert(after);
    }

    /// Whether the request's span recorded a failure, its span's context,
    /// and what its GenAI metrics are counted by: what the request's metrics
    /// read at its end, under one lock.
    pub fn outcome(&self) -> (bool, Option<SpanContext>, AiNote) {
        let state = self.lock();
        let span = state.span.as_ref().map(|cx| cx.span().span_context().clone());
        (state.failed, span, state.ai.clone())
    }

    /// The request span's context, once it has started.
    pub fn span(&self) -> Option<SpanContext> {
        self.lock().span.as_ref().map(|cx| cx.span().span_context().clone())
    }
}

fn end(cx: &Context, cancelled: bool, closing: Vec<KeyValue>) {
    let span = cx.span();
    if !closing.is_empty() {
        span.set_attributes(closing);
    }
    if cancelled {
        span.set_attribute(KeyValue::new("traced.cancelled", true));
    }
    span.end();
}
