//! W3C Trace Context from HTTP headers, with the specification's rules for
//! what a server must ignore: a malformed or repeated `traceparent` means no
//! parent (the request starts a new trace), a bad `tracestate` is dropped
//! alone, and nothing here can panic.

use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, TextMapPropagator as _};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState};
use traced_core::__private::{propagator, traceparent};

/// `traceparent` is 55 characters at version 00; later versions may append
/// fields, but a header past this size is not worth parsing.
const MAX_TRACEPARENT: usize = 512;
/// Level 2: at most 32 list members; implementations may drop longer lists.
const MAX_TRACESTATE_MEMBERS: usize = 32;
const MAX_TRACESTATE: usize = 8192;
const MAX_BAGGAGE: usize = 8192;

/// The context a request's headers name, or an empty one.
pub(crate) fn extract(headers: &http::HeaderMap) -> Context {
    let Some(traceparent) = single(headers, "traceparent") else {
        return Context::new();
    };
    let Some(traceparent) = normalize_traceparent(traceparent) else {
        return Context::new();
    };
    let tracestate = single(headers, "tracestate").filter(|state| valid_tracestate(state));
    let baggage = joined(headers, "baggage").filter(|baggage| baggage.len() <= MAX_BAGGAGE);
    let fields = Fields { traceparent, tracestate, baggage };
    let cx = propagator().extract_with_context(&Context::new(), &fields);
    if cx.span().span_context().is_valid() { cx } else { Context::new() }
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

/// Baggage may be split over several header lines.
fn joined(headers: &http::HeaderMap, name: &str) -> Option<String> {
    let values: Vec<&str> = headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect();
    (!values.is_empty()).then(|| values.join(","))
}

/// Checks a `traceparent` and returns its version-00 form: a later version
/// keeps its first four fields (the specification's forward compatibility).
fn normalize_traceparent(value: &str) -> Option<String> {
    let value = value.trim();
    if value.len() > MAX_TRACEPARENT {
        return None;
    }
    let mut parts = value.split('-');
    let version = parts.next()?;
    let trace_id = parts.next()?;
    let parent_id = parts.next()?;
    let flags = parts.next()?;
    let rest: Vec<&str> = parts.collect();
    let lower_hex =
        |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !lower_hex(version, 2) || version == "ff" || !lower_hex(trace_id, 32) || !lower_hex(parent_id, 16) {
        return None;
    }
    // Version 00 has exactly four fields; a flags field longer than two
    // characters is malformed in any version.
    if !lower_hex(flags, 2) || (version == "00" && !rest.is_empty()) {
        return None;
    }
    let parent = SpanContext::new(
        TraceId::from_hex(trace_id).ok()?,
        SpanId::from_hex(parent_id).ok()?,
        TraceFlags::new(u8::from_str_radix(flags, 16).ok()?),
        true,
        TraceState::default(),
    );
    // All-zero ids are invalid.
    parent.is_valid().then(|| traceparent(&parent))
}

/// Level 2 list rules: at most 32 members, each `key=value` with a valid key.
fn valid_tracestate(value: &str) -> bool {
    if value.len() > MAX_TRACESTATE {
        return false;
    }
    let members: Vec<&str> = value.split(',').map(str::trim).filter(|m| !m.is_empty()).collect();
    if members.len() > MAX_TRACESTATE_MEMBERS {
        return false;
    }
    let mut keys = Vec::new();
    for member in members {
        let Some((key, val)) = member.split_once('=') else { return false };
        let key_ok = !key.is_empty()
            && key.len() <= 256
            && key.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-*/@".contains(&b));
        let value_ok = !val.is_empty()
            && val.len() <= 256
            && val.bytes().all(|b| (0x20..=0x7e).contains(&b) && b != b',' && b != b'=');
        if !key_ok || !value_ok || keys.contains(&key) {
            return false;
        }
        keys.push(key);
    }
    true
}

struct Fields<'a> {
    traceparent: String,
    tracestate: Option<&'a str>,
    baggage: Option<String>,
}

impl Extractor for Fields<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            "traceparent" => Some(&self.traceparent),
            "tracestate" => self.tracestate,
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

    #[test]
    fn a_bad_tracestate_is_dropped_but_the_parent_kept() {
        let too_many: Vec<String> = (0..33).map(|i| format!("k{i}=v")).collect();
        for bad in ["no-equals", "UPPER=v", "k=v,k=w", too_many.join(",").as_str()] {
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
