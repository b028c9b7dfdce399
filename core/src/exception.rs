//! The OpenTelemetry `exception` event, and the Error status a failure
//! records with it: one shape for every span that fails, whoever marks it.

use opentelemetry::KeyValue;
use opentelemetry::trace::{SpanRef, Status};

/// `exception.type` and `exception.message`, then `extra`.
pub(crate) fn exception_attributes(kind: &str, message: &str, mut extra: Vec<KeyValue>) -> Vec<KeyValue> {
    extra.insert(0, KeyValue::new("exception.type", kind.to_string()));
    extra.insert(1, KeyValue::new("exception.message", message.to_string()));
    extra
}

/// Marks `span` failed: an `exception` event of type `kind` with `message`,
/// and status Error with the same message.
pub fn record_exception_on(span: &SpanRef<'_>, kind: &str, message: &str) {
    span.add_event("exception", exception_attributes(kind, message, Vec::new()));
    span.set_status(Status::error(message.to_string()));
}
