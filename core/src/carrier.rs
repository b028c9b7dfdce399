//! [`Carrier`]: W3C context as a JSON object, for apps that pass it in a
//! request body rather than in headers.

use std::collections::BTreeMap;

use opentelemetry::propagation::{Extractor, Injector};
use serde::{Deserialize, Serialize};

/// W3C context as a plain string map (`traceparent`, `tracestate`,
/// `baggage`), serialized as a JSON object: put it in a request body to carry
/// a trace from one app to the next.
///
/// ```
/// # extern crate traced_core as traced;
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct WorkerInput {
///     prompt: String,
///     #[serde(default)]
///     trace_context: traced::Carrier,
/// }
///
/// let body = r#"{"prompt":"red circle","trace_context":{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}"#;
/// let input: WorkerInput = serde_json::from_str(body).unwrap();
/// let parent = traced::extract(&input.trace_context);
/// use opentelemetry::trace::TraceContextExt as _;
/// assert_eq!(parent.span().span_context().trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Carrier(BTreeMap<String, String>);

impl Carrier {
    /// The value of one field, such as `traceparent`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// True when it carries nothing.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The fields, in order of name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Carrier {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Carrier(iter.into_iter().map(|(k, v)| (k.into().to_ascii_lowercase(), v.into())).collect())
    }
}

impl Injector for Carrier {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_ascii_lowercase(), value);
    }
}

impl Extractor for Carrier {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(&key.to_ascii_lowercase()).map(String::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}
