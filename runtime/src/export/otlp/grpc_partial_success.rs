//! The spans a gRPC receiver rejects of a request it took: the OTLP library
//! reads its partial-success answer but only logs it, through `tracing`.
//! The export thread listens for that one event, on that thread alone, and
//! counts what it says.

use std::sync::Arc;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};

use crate::export::otlp::rejections::Rejections;

/// The event the library logs a gRPC partial success with.
const PARTIAL_SUCCESS: &str = "TonicTracesClient.PartialSuccess";

/// A subscriber for the export thread: counts partial successes, ignores
/// everything else.
pub(crate) struct PartialSuccessListener(pub(crate) Arc<Rejections>);

#[derive(Default)]
struct Answer {
    rejected: i64,
    message: String,
}

impl Visit for Answer {
    fn record_i64(&mut self, field: &Field, value: i64) {
        if field.name() == "rejected_spans" {
            self.rejected = value;
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "error_message" {
            self.message = value.to_string();
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "error_message" {
            self.message = format!("{value:?}");
        }
    }
}

impl Subscriber for PartialSuccessListener {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if metadata.name() == PARTIAL_SUCCESS { Interest::always() } else { Interest::never() }
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.name() == PARTIAL_SUCCESS
    }

    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _span: &Id, _values: &Record<'_>) {}

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut answer = Answer::default();
        event.record(&mut answer);
        if answer.rejected > 0 {
            self.0.record(u64::try_from(answer.rejected).unwrap_or(0), &answer.message);
        }
    }

    fn enter(&self, _span: &Id) {}

    fn exit(&self, _span: &Id) {}
}
