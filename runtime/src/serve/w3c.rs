//! W3C Trace Context from HTTP headers, with the specification's rules for
//! what a server must ignore: a missing, malformed or repeated
//! `traceparent` means no parent (the request starts a new trace); several
//! `tracestate` headers are one list, joined in order, and a bad one is
//! dropped alone (the list rules are the core propagator's); nothing here can
//! panic.

use opentelemetry::Context;
use opentelemetry::propagation::Extractor;
use opentelemetry::trace::{SpanContext, TraceContextExt as _};
use traced_core::__layers::{extract_remote, traceparent_bytes};

const MAX_BAGGAGE: usize = 8192;

/// The context a request's headers name, or an empty one.
pub(crate) fn extract(headers: &http::HeaderMap) -> Context {
    let Some(traceparent) = single(headers, "traceparent") else {
        return Context::new();
    };
    let tracestate = joined(headers, "tracestate");
    let baggage = joined(headers, "baggage").filter(|baggage| baggage.len() <= MAX_BAGGAGE);
    extract_remote(&Fields { traceparent, tracestate, baggage }).unwrap_or_default()
}

/// Names a request's span on its response: `traceparent`, and `x-trace-id`
/// for people and tools that want just the trace id.
pub(crate) fn name_in_headers(headers: &mut http::HeaderMap, span: &SpanContext) {
    let traceparent = traceparent_bytes(span);
    if let Ok(value) = http::HeaderValue::from_bytes(&traceparent) {
        headers.insert(TRACEPARENT, value);
    }
    if let Ok(value) = http::HeaderValue::from_bytes(&traceparent[3..35]) {
        headers.insert(X_TRACE_ID, value);
    }
}

const TRACEPARENT: http::HeaderName = http::HeaderName::from_static("traceparent");
const X_TRACE_ID: http::HeaderName = http::HeaderName::from_static("x-trace-id");

/// The span of `cx`, unless it has none: what a response names when the
/// request made no span of its own (the caller's).
pub(crate) fn valid_span(cx: &Context) -> Option<SpanContext> {
    let span = cx.span();
    let context = span.span_context();
    context.is_valid().then(|| context.clone())
}

/// A header's value when it occurs exactly once and is text.
fn single<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    if values.next().is_some() {
        return None;
    }
    first.to_str().ok()
}

/// A list split over several header lines, joined in order; empty lines add
/// nothing.
fn joined(headers: &http::HeaderMap, name: &str) -> Option<String> {
    let values: Vec<&str> =
        headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty()).collect();
    (!values.is_empty()).then(|| values.join(","))
}

struct Fields<'a> {
    traceparent: &'a str,
    tracestate: Option<String>,
    baggage: Option<String>,
}

impl Extractor for Fields<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            "traceparent" => Some(self.traceparent),
            "tracestate" => self.tracestate.as_deref(),
            "baggage" => self.baggage.as_deref(),
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        vec!["traceparent", "tracestate", "baggage"]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn parent_of(pairs: &[(&str, &str)]) -> Option<String> {
        let mut headers = http::HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                http::HeaderValue::from_str(value).unwrap(),
            );
        }
        let cx = extract(&headers);
        let span = cx.span();
        let context = span.span_context();
        context.is_valid().then(|| format!("{}-{}", context.trace_id(), context.span_id()))
    }

    #[test]
    fn a_valid_traceparent_is_the_parent() {
        assert_eq!(
            parent_of(&[("traceparent", VALID)]).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7")
        );
    }

    #[test]
    fn malformed_traceparents_start_a_new_trace() {
        for bad in [
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e47-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "garbage",
            "",
        ] {
            assert_eq!(parent_of(&[("traceparent", bad)]), None, "{bad:?}");
        }
        let oversized = format!("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-{}", "a".repeat(600));
        assert_eq!(parent_of(&[("traceparent", &oversized)]), None);
    }

    #[test]
    fn later_versions_keep_their_first_four_fields() {
        let future = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-holds";
        assert_eq!(
            parent_of(&[("traceparent", future)]).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7")
        );
    }

    #[test]
    fn a_repeated_traceparent_is_ignored() {
        assert_eq!(parent_of(&[("traceparent", VALID), ("traceparent", VALID)]), None);
    }

    fn with(pairs: &[(&str, &str)]) -> Context {
        let mut headers = http::HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                http::HeaderValue::from_str(value).unwrap(),
            );
        }
        extract(&headers)
    }

    fn tracestate_of(pairs: &[(&str, &str)]) -> String {
        let cx = with(pairs);
        assert!(cx.span().span_context().is_valid(), "the parent is kept: {pairs:?}");
        cx.span().span_context().trace_state().header()
    }

    #[test]
    fn several_tracestate_headers_are_one_list_in_order() {
        let headers = [("traceparent", VALID), ("tracestate", "a=1,b=2"), ("tracestate", "c=3")];
        assert_eq!(tracestate_of(&headers), "a=1,b=2,c=3");
    }

    #[test]
    fn an_empty_tracestate_header_adds_nothing() {
        let headers = [("traceparent", VALID), ("tracestate", "a=1"), ("tracestate", ""), ("tracestate", "b=2")];
        assert_eq!(tracestate_of(&headers), "a=1,b=2");
        assert_eq!(tracestate_of(&[("traceparent", VALID), ("tracestate", " ")]), "");
    }

    #[test]
    fn limits_apply_to_the_joined_list() {
        let first: Vec<String> = (0..20).map(|i| format!("k{i}=v")).collect();
        let second: Vec<String> = (20..33).map(|i| format!("k{i}=v")).collect();
        let headers = [("traceparent", VALID), ("tracestate", &first.join(",")), ("tracestate", &second.join(","))];
        assert_eq!(tracestate_of(&headers), "", "33 members in all");
        let headers =
            [("traceparent", VALID), ("tracestate", &first.join(",")), ("tracestate", &second[1..].join(","))];
        assert_eq!(tracestate_of(&headers).matches('=').count(), 32, "32 members over two headers are kept");
        let repeated = [("traceparent", VALID), ("tracestate", "a=1,b=2"), ("tracestate", "a=3")];
        assert_eq!(tracestate_of(&repeated), "a=1,b=2", "a repeated key keeps its first place");
    }

    #[test]
    fn the_random_flag_is_kept() {
        let random = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03";
        let cx = with(&[("traceparent", random)]);
        assert_eq!(traced_core::__layers::traceparent(cx.span().span_context()), random);
    }

    #[test]
    fn a_bad_tracestate_is_dropped_but_the_parent_kept() {
        let too_many: Vec<String> = (0..33).map(|i| format!("k{i}=v")).collect();
        for bad in ["no-equals", "UPPER=v", "_simple=v", too_many.join(",").as_str()] {
            let mut headers = http::HeaderMap::new();
            headers.insert("traceparent", http::HeaderValue::from_static(VALID));
            headers.insert("tracestate", http::HeaderValue::from_str(bad).unwrap());
            let cx = extract(&headers);
            assert!(cx.span().span_context().is_valid(), "{bad}");
            assert_eq!(cx.span().span_context().trace_state().header(), "", "{bad}");
        }
        let mut headers = http::HeaderMap::new();
        headers.insert("traceparent", http::HeaderValue::from_static(VALID));
        headers.insert("tracestate", http::HeaderValue::from_static("vendor=abc,other@tenant=x"));
        assert_eq!(extract(&headers).span().span_context().trace_state().header(), "vendor=abc,other@tenant=x");
    }
}
