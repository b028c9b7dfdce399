//! Recording a function's `Err` on its span, whatever the error type offers.
//!
//! The return type is only known where the function is written, so generated
//! code asks through autoref specialization: the most capable impl that
//! applies wins (a `std::error::Error` gives its source chain, `Display` a
//! message, `Debug` a debug string, anything else its type name), and values
//! that are not `Result`s record nothing.
//!
//! ```
//! # extern crate traced_core as traced;
//! use traced::__private::outcome::*;
//! # let span = traced::__private::SpanHandle::new(traced::__private::Meta::new("doc"), |_| {});
//! let ret: Result<(), std::io::Error> = Ok(());
//! (&&&&&&&Outcome(&ret)).__traced_record(&span);
//! ```

use std::error::Error;
use std::fmt::{Debug, Display};

use opentelemetry::{KeyValue, StringValue, Value};

use crate::span_handle::SpanHandle;

/// A function's return value, borrowed for inspection.
pub struct Outcome<'a, T>(pub &'a T);

fn record(span: &SpanHandle, type_name: &str, message: String, chain: Vec<String>) {
    if !span.is_recording() {
        return;
    }
    let mut extra = Vec::new();
    if !chain.is_empty() {
        let chain: Vec<StringValue> = chain.into_iter().map(StringValue::from).collect();
        extra.push(KeyValue::new("exception.source_chain", Value::Array(chain.into())));
    }
    span.record_exception(type_name, &message, extra, message.clone());
}

/// The texts of an error's sources, outermost first.
fn chain(source: Option<&(dyn Error + 'static)>) -> Vec<String> {
    source.map(|source| crate::error_chain::error_chain(source).map(ToString::to_string).collect()).unwrap_or_default()
}

/// `E: std::error::Error`: type name, message and source chain.
pub trait ViaError {
    /// Records an `Err` on the span.
    fn __traced_record(&self, span: &SpanHandle);
}

impl<T, E: Error + 'static> ViaError for &&&&&&Outcome<'_, Result<T, E>> {
    fn __traced_record(&self, span: &SpanHandle) {
        if let Err(error) = self.0 {
            record(span, std::any::type_name::<E>(), error.to_string(), chain(error.source()));
        }
    }
}

/// `anyhow::Error`, `Box<dyn Error + Send + Sync>`: message and chain.
pub trait ViaBoxedError {
    /// Records an `Err` on the span.
    fn __traced_record(&self, span: &SpanHandle);
}

impl<T, E: AsRef<dyn Error + Send + Sync + 'static>> ViaBoxedError for &&&&&Outcome<'_, Result<T, E>> {
    fn __traced_record(&self, span: &SpanHandle) {
        if let Err(error) = self.0 {
            let error = error.as_ref();
            record(span, std::any::type_name::<E>(), error.to_string(), chain(error.source()));
        }
    }
}

/// `Box<dyn Error>`: message and chain.
pub trait ViaLocalError {
    /// Records an `Err` on the span.
    fn __traced_record(&self, span: &SpanHandle);
}

impl<T, E: AsRef<dyn Error + 'static>> ViaLocalError for &&&&Outcome<'_, Result<T, E>> {
    fn __traced_record(&self, span: &SpanHandle) {
        if let Err(error) = self.0 {
            let error = error.as_ref();
            record(span, std::any::type_name::<E>(), error.to_string(), chain(error.source()));
        }
    }
}

/// `E: Display`: type name and message.
pub trait ViaDisplay {
    /// Records an `Err` on the span.
    fn __traced_record(&self, span: &SpanHandle);
}

impl<T, E: Display> ViaDisplay for &&&Outcome<'_, Result<T, E>> {
    fn __traced_record(&self, span: &SpanHandle) {
        if let Err(error) = self.0 {
            record(span, std::any::type_name::<E>(), error.to_string(), Vec::new());
        }
    }
}

/// `E: Debug`: type name and debug string.
pub trait ViaDebug {
    /// Records an `Err` on the span.
    fn __traced_record(&self, span: &SpanHandle);
}

impl<T, E: Debug> ViaDebug for &&Outcome<'_, Result<T, E>> {
    fn __traced_record(&self, span: &SpanHandle) {
        if let Err(error) = self.0 {
            record(span, std::any::type_name::<E>(), format!("{error:?}"), Vec::new());
        }
    }
}

/// Any other error type: its name.
pub trait ViaTypeName {
    /// Records an `Err` on the span.
    fn __traced_record(&self, span: &SpanHandle);
}

impl<T, E> ViaTypeName for &Outcome<'_, Result<T, E>> {
    fn __traced_record(&self, span: &SpanHandle) {
        if self.0.is_err() {
            let name = std::any::type_name::<E>();
            record(span, name, format!("an error of type {name}"), Vec::new());
        }
    }
}

/// Not a `Result`: nothing to record.
pub trait ViaAnything {
    /// Records nothing.
    fn __traced_record(&self, span: &SpanHandle);
}

impl<T> ViaAnything for Outcome<'_, T> {
    fn __traced_record(&self, _span: &SpanHandle) {}
}
