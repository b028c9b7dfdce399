//! Log lines that name their trace: a `tracing_subscriber::fmt` event
//! format that starts each line with the current trace and span ids.

use std::fmt;

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// An event format that writes `trace_id=... span_id=... ` before what
/// `inner` writes, when a span is current; see [`with_trace_ids`].
#[derive(Clone, Debug)]
pub struct WithTraceIds<F>(F);

/// Prefixes each log line of `inner` with the current trace and span ids,
/// so a line can be found from its trace and a trace from its line.
///
/// ```
/// use tracing_subscriber::layer::SubscriberExt as _;
///
/// let subscriber = tracing_subscriber::registry()
///     .with(traced::tracing_layer())
///     .with(tracing_subscriber::fmt::layer().event_format(traced::with_trace_ids(
///         tracing_subscriber::fmt::format(),
///     )));
/// tracing::subscriber::with_default(subscriber, || tracing::info!("no span: no ids"));
/// ```
pub fn with_trace_ids<F>(inner: F) -> WithTraceIds<F> {
    WithTraceIds(inner)
}

impl<S, N, F> FormatEvent<S, N> for WithTraceIds<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let context = traced_core::__layers::current_span_context();
        if context.is_valid() {
            write!(writer, "trace_id={} span_id={} ", context.trace_id(), context.span_id())?;
        }
        self.0.format_event(ctx, writer, event)
    }
}
