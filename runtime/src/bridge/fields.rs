//! A `tracing` span's or event's fields as OpenTelemetry attributes.

use opentelemetry::{Key, KeyValue, Value};
use tracing::field::{Field, Visit};

/// The fields visited so far; `message` is kept apart, as an event's name.
#[derive(Default)]
pub(crate) struct Fields {
    pub(crate) message: Option<String>,
    pub(crate) attributes: Vec<KeyValue>,
}

impl Fields {
    fn push(&mut self, field: &Field, value: impl Into<Value>) {
        if field.name() == "message" {
            self.message = Some(value.into().as_str().into_owned());
        } else {
            self.attributes.push(KeyValue::new(Key::from_static_str(field.name()), value));
        }
    }
}

impl Visit for Fields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        match i64::try_from(value) {
            Ok(value) => self.push(field, value),
            Err(_) => self.push(field, value.to_string()),
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, value);
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, value.to_string());
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.push(field, traced_core::__layers::chain_text(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.push(field, format!("{value:?}"));
    }
}
