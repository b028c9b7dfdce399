//! `tracing` spans and events in traced's traces: a `tracing_subscriber`
//! layer that starts an OpenTelemetry span for each `tracing` span, as a
//! child of whatever is current (a `#[span]` fn or another `tracing` span),
//! makes it current while the `tracing` span is entered (so a `#[span]` fn
//! called inside is its child), and turns events into span events.
//!
//! Sampling is traced's: under an unsampled parent nothing is recorded.

use std::cell::RefCell;

use opentelemetry::trace::{Status, TraceContextExt as _};
use opentelemetry::{Context, ContextGuard, KeyValue};
use traced_core::__layers::{Kind, current_context, current_frame_records, event_on_current_frame, start_bridged_span};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context as LayerContext;
use tracing_subscriber::registry::LookupSpan;

use crate::bridge::fields::Fields;
use crate::export::messages;

/// Kept in a `tracing` span's extensions: its OpenTelemetry context.
struct Bridged(Context);

thread_local! {
    /// The contexts of the `tracing` spans entered on this thread, innermost
    /// last, each current until its span is exited.
    static ENTERED: RefCell<Vec<(Id, ContextGuard)>> = const { RefCell::new(Vec::new()) };
}

/// The layer [`tracing_layer`] returns.
#[derive(Clone, Copy, Debug, Default)]
pub struct TracingLayer {
    _private: (),
}

/// A `tracing_subscriber` layer that makes `tracing` spans and events part of
/// the current traced trace: `#[tracing::instrument]` fns called from a
/// `#[span]` fn become its children, a `#[span]` fn called inside a `tracing`
/// span becomes that span's child, events become span events with their
/// level, target and fields, and an `ERROR` event marks its span's status.
///
/// ```
/// use tracing_subscriber::layer::SubscriberExt as _;
/// use tracing_subscriber::util::SubscriberInitExt as _;
///
/// tracing_subscriber::registry().with(traced::tracing_layer()).init();
///
/// #[tracing::instrument]
/// fn tokenize(prompt: &str) -> usize {
///     tracing::info!(tokens = prompt.len(), "tokenized");
///     prompt.len()
/// }
///
/// #[traced::span]
/// fn encode(prompt: &str) -> usize {
///     tokenize(prompt) // a child of `encode`, with an event
/// }
///
/// let guard = traced::init(traced::Config::default().with_env_from(|_| None));
/// assert_eq!(encode("a red circle"), 12);
/// assert_eq!(guard.shutdown().stats.exported, 2);
/// ```
pub fn tracing_layer() -> TracingLayer {
    TracingLayer::default()
}

fn bridged<S: Subscriber + for<'a> LookupSpan<'a>>(ctx: &LayerContext<'_, S>, id: &Id) -> Option<Context> {
    ctx.span(id)?.extensions().get::<Bridged>().map(|bridged| bridged.0.clone())
}

/// OpenTelemetry's and traced's own diagnostics are not the app's:
/// recording them would also feed spans back into the export from inside
/// it (an export failure's event becoming a span to export).
fn not_the_apps(metadata: &tracing::Metadata<'_>) -> bool {
    metadata.target().starts_with("opentelemetry") || metadata.target() == messages::TARGET
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for TracingLayer {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: LayerContext<'_, S>) {
        if !traced_core::is_enabled() || not_the_apps(attrs.metadata()) {
            return;
        }
        // A contextual parent is whatever is current, a `#[span]` fn's span
        // included: entering a `tracing` span makes its context current.
        let parent = match attrs.parent() {
            Some(parent) => bridged(&ctx, parent).unwrap_or_default(),
            None if attrs.is_root() => Context::new(),
            None => current_context(),
        };
        let metadata = attrs.metadata();
        let started = start_bridged_span(metadata.name(), Kind::Internal, &parent, || {
            let mut fields = Fields::default();
            attrs.record(&mut fields);
            fields.attributes.push(KeyValue::new("code.namespace", metadata.target()));
            fields.attributes
        });
        if let (Some(cx), Some(span)) = (started, ctx.span(id)) {
            span.extensions_mut().insert(Bridged(cx));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: LayerContext<'_, S>) {
        let Some(cx) = bridged(&ctx, id) else { return };
        let span = cx.span();
        if span.is_recording() {
            let mut fields = Fields::default();
            values.record(&mut fields);
            span.set_attributes(fields.attributes);
        }
    }

    fn on_follows_from(&self, id: &Id, follows: &Id, ctx: LayerContext<'_, S>) {
        let (Some(cx), Some(other)) = (bridged(&ctx, id), bridged(&ctx, follows)) else { return };
        cx.span().add_link(other.span().span_context().clone(), Vec::new());
    }

    fn on_enter(&self, id: &Id, ctx: LayerContext<'_, S>) {
        if let Some(cx) = bridged(&ctx, id) {
            let guard = cx.attach();
            ENTERED.with(|entered| entered.borrow_mut().push((id.clone(), guard)));
        }
    }

    fn on_exit(&self, id: &Id, _ctx: LayerContext<'_, S>) {
        let guard = ENTERED.with(|entered| {
            let mut entered = entered.borrow_mut();
            let position = entered.iter().rposition(|(entered_id, _)| entered_id == id)?;
            Some(entered.remove(position))
        });
        drop(guard);
    }

    fn on_close(&self, id: Id, ctx: LayerContext<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        if let Some(Bridged(cx)) = span.extensions_mut().remove::<Bridged>() {
            cx.span().end();
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: LayerContext<'_, S>) {
        if not_the_apps(event.metadata()) {
            return;
        }
        let contextual = event.parent().is_none() && !event.is_root();
        // The current span is a sync `#[span]` fn's, kept by traced's own core.
        let on_frame = if contextual { current_frame_records() } else { None };
        let cx = match event.parent() {
            _ if on_frame.is_some() => None,
            Some(parent) => bridged(&ctx, parent),
            None if event.is_root() => None,
            None => Some(Context::current()),
        };
        let recording = match (&cx, on_frame) {
            (_, Some(records)) => records,
            (Some(cx), None) => cx.span().is_recording(),
            (None, None) => false,
        };
        if !recording {
            return;
        }
        let metadata = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        let name = fields.message.take().unwrap_or_else(|| metadata.name().to_string());
        let level = *metadata.level();
        fields.attributes.push(KeyValue::new("level", level.as_str()));
        fields.attributes.push(KeyValue::new("target", metadata.target()));
        let error = level == Level::ERROR;
        match cx {
            None => {
                event_on_current_frame(name, fields.attributes, error);
            }
            Some(cx) => {
                let span = cx.span();
                if error {
                    span.set_status(Status::error(name.clone()));
                }
                span.add_event(name, fields.attributes);
            }
        }
    }
}
