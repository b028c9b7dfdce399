//! W3C trace context and baggage between apps: as HTTP headers, or as a
//! [`Carrier`] field in a JSON body.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapCompositePropagator, TextMapPropagator};
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use serde::{Deserialize, Serialize};

/// The propagator `traced` uses everywhere; it works before `init` and with
/// tracing off, so context still flows through an app that records nothing.
static PROPAGATOR: LazyLock<TextMapCompositePropagator> = LazyLock::new(propagator);

pub(crate) fn propagator() -> TextMapCompositePropagator {
    TextMapCompositePropagator::new(vec![Box::new(TraceContextPropagator::new()), Box::new(BaggagePropagator::new())])
}

/// W3C context as a plain string map (`traceparent`, `tracestate`,
/// `baggage`), serialized as a JSON object: put it in a request body to carry
/// a trace from one app to the next.
///
/// ```
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

/// The current context (span and baggage) as a [`Carrier`].
pub fn inject() -> Carrier {
    inject_context(&Context::current())
}

/// The given context as a [`Carrier`].
pub fn inject_context(cx: &Context) -> Carrier {
    let mut carrier = Carrier::default();
    PROPAGATOR.inject_context(cx, &mut carrier);
    carrier
}

/// The context a [`Carrier`] describes, as a child of the current one; an
/// invalid or missing `traceparent` yields no remote parent.
pub fn extract(carrier: &Carrier) -> Context {
    PROPAGATOR.extract(carrier)
}

/// The remote span a carrier names, on a context of its own: `None` when the
/// carrier holds no valid `traceparent`.
pub(crate) fn extract_remote(carrier: &Carrier) -> Option<Context> {
    let cx = PROPAGATOR.extract_with_context(&Context::new(), carrier);
    let span_context = cx.span().span_context().clone();
    (span_context.is_valid() && span_context.is_remote()).then_some(cx)
}

/// The current span's trace id as 32 lowercase hex digits, or `None` when no
/// valid span is current.
///
/// ```
/// assert_eq!(traced::current_trace_id(), None);
/// ```
pub fn current_trace_id() -> Option<String> {
    let cx = Context::current();
    let span = cx.span();
    let span_context = span.span_context();
    span_context.is_valid().then(|| span_context.trace_id().to_string())
}
