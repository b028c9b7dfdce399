//! W3C Trace Context, level 2, both ways: `traceparent` and `tracestate`
//! read with the specification's rules for what a receiver must ignore, and
//! written with the random flag kept.
//!
//! The SDK's propagator drops every flag but "sampled" on the way in and on
//! the way out; this one keeps the random-trace-id flag (0x02) a caller set,
//! so the next service learns it too. Sampled and recorded children keep it
//! (the SDK copies a parent's flags); a span the sampler drops gets flags 00
//! from the SDK, so [`keep_random_flag`] puts the flag back.
//!
//! Level 2's `tracestate` keys (`@` anywhere, any length after it) are wider
//! than the OpenTelemetry API's `TraceState` accepts (one `@`, at most 13
//! characters after it): members only level 2 allows are carried beside the
//! span context, in [`WideTraceState`], and written out again in order.

use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState};

/// The flags this version of the specification defines: sampled, random.
const KNOWN_FLAGS: u8 = 0x03;
/// `traceparent` is 55 characters at version 00; later versions may append
/// fields, but a header past this size is not worth parsing.
const MAX_TRACEPARENT: usize = 512;
const MAX_MEMBERS: usize = 32;
const MAX_TRACESTATE: usize = 8192;

/// The trace-context half of `traced`'s propagator.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TraceContextPropagator;

static FIELDS: std::sync::LazyLock<[String; 2]> =
    std::sync::LazyLock::new(|| ["traceparent".to_string(), "tracestate".to_string()]);

/// A caller's whole `tracestate`, when some of its members are valid at
/// level 2 but not to the OpenTelemetry API: kept on the context, written
/// out in place of the span's own while the span's list is still the one
/// the caller sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct WideTraceState {
    trace_id: TraceId,
    /// What the API kept, as it writes it.
    kept: String,
    /// Every member, in order.
    header: String,
}

impl TextMapPropagator for TraceContextPropagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let span = cx.span();
        let context = span.span_context();
        if !context.is_valid() {
            return;
        }
        injector.set("traceparent", traceparent(context));
        let state = context.trace_state().header();
        let state = match cx.get::<WideTraceState>() {
            Some(wide) if wide.trace_id == context.trace_id() && wide.kept == state => wide.header.clone(),
            _ => state,
        };
        if !state.is_empty() {
            injector.set("tracestate", state);
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        match parent(extractor) {
            Some((parent, None)) => cx.with_remote_span_context(parent),
            Some((parent, Some(header))) => {
                let wide = WideTraceState { trace_id: parent.trace_id(), kept: parent.trace_state().header(), header };
                cx.with_remote_span_context(parent).with_value(wide)
            }
            None => cx.clone(),
        }
    }

    fn fields(&self) -> opentelemetry::propagation::text_map_propagator::FieldIter<'_> {
        opentelemetry::propagation::text_map_propagator::FieldIter::new(FIELDS.as_slice())
    }
}

/// `00-{trace id}-{span id}-{flags}`, version 00, with the flags this
/// version defines.
pub fn traceparent(span: &SpanContext) -> String {
    traceparent_bytes(span).iter().map(|&byte| char::from(byte)).collect()
}

/// [`traceparent`] as its 55 ASCII bytes, written without the formatter
/// (which took a third of a served request's tracing cost); the trace id is
/// bytes 3 to 35.
pub fn traceparent_bytes(span: &SpanContext) -> [u8; TRACEPARENT_LEN] {
    let mut out = [b'-'; TRACEPARENT_LEN];
    out[..2].copy_from_slice(b"00");
    write_hex(&mut out[3..35], &span.trace_id().to_bytes());
    write_hex(&mut out[36..52], &span.span_id().to_bytes());
    write_hex(&mut out[53..], &[span.trace_flags().to_u8() & KNOWN_FLAGS]);
    out
}

/// The length of a version 00 `traceparent`.
pub(crate) const TRACEPARENT_LEN: usize = 55;

fn write_hex(out: &mut [u8], bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (pair, byte) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0xf)];
    }
}

/// The context of a span the sampler dropped, with the random flag (0x02)
/// of its parent's that the SDK left out; `cx` itself otherwise.
pub(crate) fn keep_random_flag(parent: &Context, cx: Context) -> Context {
    let parent_flags = parent.span().span_context().trace_flags().to_u8();
    let span = cx.span();
    let context = span.span_context();
    if parent_flags & RANDOM == 0 || context.trace_flags().to_u8() & RANDOM != 0 || span.is_recording() {
        return cx;
    }
    let flags = TraceFlags::new(context.trace_flags().to_u8() | RANDOM);
    let kept = SpanContext::new(context.trace_id(), context.span_id(), flags, false, context.trace_state().clone());
    cx.with_remote_span_context(kept)
}

/// The random-trace-id flag.
const RANDOM: u8 = 0x02;

/// The remote parent the fields name, or `None` when `traceparent` is
/// missing or malformed (the request then starts a trace of its own). A bad
/// `tracestate` is dropped alone; when the API refused members level 2
/// allows, the whole list comes back beside the parent.
fn parent(extractor: &dyn Extractor) -> Option<(SpanContext, Option<String>)> {
    let (trace_id, span_id, flags) = parse_traceparent(extractor.get("traceparent")?)?;
    let members = extractor.get("tracestate").and_then(tracestate_members).unwrap_or_default();
    let (state, wide) = api_trace_state(&members);
    let context = SpanContext::new(trace_id, span_id, TraceFlags::new(flags & KNOWN_FLAGS), true, state);
    context.is_valid().then_some((context, wide))
}

/// The members the OpenTelemetry API accepts, and the whole list written
/// out when it refused some.
fn api_trace_state(members: &[(&str, &str)]) -> (TraceState, Option<String>) {
    let accepted: Vec<(&str, &str)> =
        members.iter().copied().filter(|member| TraceState::from_key_value([*member]).is_ok()).collect();
    let state = TraceState::from_key_value(accepted.iter().copied()).unwrap_or_default();
    let wide = (accepted.len() < members.len())
        .then(|| members.iter().map(|(key, value)| format!("{key}={value}")).collect::<Vec<_>>().join(","));
    (state, wide)
}

/// A `traceparent` of any version, read as version 00: a later version keeps
/// its first four fields (the specification's forward compatibility).
fn parse_traceparent(value: &str) -> Option<(TraceId, SpanId, u8)> {
    let value = value.trim();
    if value.len() > MAX_TRACEPARENT {
        return None;
    }
    let mut parts = value.split('-');
    let version = parts.next()?;
    let trace_id = parts.next()?;
    let span_id = parts.next()?;
    let flags = parts.next()?;
    let later_fields = parts.next().is_some();
    let lower_hex =
        |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !lower_hex(version, 2) || version == "ff" || !lower_hex(trace_id, 32) || !lower_hex(span_id, 16) {
        return None;
    }
    // Version 00 has exactly four fields; flags of another length are
    // malformed in any version.
    if !lower_hex(flags, 2) || (version == "00" && later_fields) {
        return None;
    }
    Some((TraceId::from_hex(trace_id).ok()?, SpanId::from_hex(span_id).ok()?, u8::from_str_radix(flags, 16).ok()?))
}

/// A `tracestate` list's members (several headers already joined with
/// commas, in order): empty members skipped, a repeated key
/// kept at its first place, and the whole list dropped when a member breaks
/// level 2's grammar or there are more than 32.
fn tracestate_members(value: &str) -> Option<Vec<(&str, &str)>> {
    if value.len() > MAX_TRACESTATE {
        return None;
    }
    let mut members: Vec<(&str, &str)> = Vec::new();
    for member in value.split(',').map(|m| m.trim_matches([' ', '\t'])).filter(|m| !m.is_empty()) {
        let (key, value) = member.split_once('=')?;
        if !valid_key(key) || !valid_value(value) {
            return None;
        }
        if !members.iter().any(|(seen, _)| *seen == key) {
            members.push((key, value));
        }
    }
    (members.len() <= MAX_MEMBERS && !members.is_empty()).then_some(members)
}

/// Level 2: `( lcalpha / DIGIT ) 0*255 ( keychar )`, where a keychar is a
/// lowercase letter, a digit, or one of `_ - * / @`.
fn valid_key(key: &str) -> bool {
    let key_char = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-*/@".contains(&b);
    key.len() <= 256
        && key.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && key.bytes().all(key_char)
}

/// Up to 256 printable characters but `,` and `=`, not ending in a space.
fn valid_value(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 256
        && !value.ends_with(' ')
        && value.bytes().all(|b| (0x20..=0x7e).contains(&b) && b != b',' && b != b'=')
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn traceparent_is_written_as_the_formatter_would() {
        for (trace, span, flags) in [
            (1u128, 1u64, 0u8),
            (u128::MAX, u64::MAX, 0xff),
            (0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736, 0x00f0_67aa_0ba9_02b7, 0x03),
        ] {
            let context = SpanContext::new(
                TraceId::from(trace),
                SpanId::from(span),
                TraceFlags::new(flags),
                false,
                TraceState::NONE,
            );
            let expected = format!("00-{trace:032x}-{span:016x}-{:02x}", flags & KNOWN_FLAGS);
            assert_eq!(traceparent(&context), expected);
        }
    }

    /// The list as far as the OpenTelemetry API holds it.
    fn state(value: &str) -> Option<String> {
        let (state, _) = api_trace_state(&tracestate_members(value)?);
        (state != TraceState::NONE).then(|| state.header())
    }

    /// The fields a service passes on after receiving `fields`.
    fn passed_on(fields: &[(&str, &str)]) -> HashMap<String, String> {
        let fields: HashMap<String, String> = fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let cx = TraceContextPropagator.extract(&fields);
        let mut out: HashMap<String, String> = HashMap::new();
        TraceContextPropagator.inject_context(&cx, &mut out);
        out
    }

    fn round_trip(traceparent: &str) -> Option<String> {
        passed_on(&[("traceparent", traceparent)]).remove("traceparent")
    }

    #[test]
    fn the_random_flag_of_the_caller_is_kept_and_unknown_flags_are_not() {
        let random = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03";
        assert_eq!(round_trip(random).as_deref(), Some(random));
        assert_eq!(round_trip(PARENT).as_deref(), Some(PARENT));
        let unknown = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09";
        assert_eq!(round_trip(unknown).as_deref(), Some(PARENT));
        assert_eq!(round_trip("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"), None);
    }

    #[test]
    fn a_repeated_key_keeps_its_first_place_and_value() {
        assert_eq!(state("a=1,b=2,a=3").as_deref(), Some("a=1,b=2"));
    }

    #[test]
    fn empty_members_add_nothing() {
        assert_eq!(state("a=1,, ,b=2,").as_deref(), Some("a=1,b=2"));
        assert_eq!(state(""), None);
        assert_eq!(state(" , "), None);
    }

    #[test]
    fn keys_follow_the_level_2_grammar() {
        assert_eq!(state("tenant@system=x,vendor=abc").as_deref(), Some("tenant@system=x,vendor=abc"));
        assert_eq!(state("7tenant@sys=x").as_deref(), Some("7tenant@sys=x"));
        assert_eq!(state("1simple=x").as_deref(), Some("1simple=x"), "level 2 lets a key start with a digit");
        for bad in ["UPPER=x", "_a=x", "@a=x", "no-equals", "k=caf\u{e9}", "k=", &format!("{}=x", "k".repeat(257))] {
            assert_eq!(state(bad), None, "{bad}");
        }
        assert_eq!(state("t@thirteen-char=x").as_deref(), Some("t@thirteen-char=x"));
    }

    /// Carries `tracestate` through extract and inject.
    fn carried(tracestate: &str) -> Option<String> {
        passed_on(&[("traceparent", PARENT), ("tracestate", tracestate)]).remove("tracestate")
    }

    #[test]
    fn members_only_level_2_allows_are_carried_through_in_order() {
        let long_key = format!("{}@{}", "t".repeat(241), "s".repeat(14));
        assert_eq!(long_key.len(), 256);
        for list in [
            "foo@=1".to_string(),
            format!("a=1,{long_key}=2,b=3"),
            "a@b@c=x,vendor=abc".to_string(),
            "t@1sys=x".to_string(),
            "t@fourteen-chars=x,vendor=abc".to_string(),
        ] {
            assert_eq!(carried(&list).as_deref(), Some(list.as_str()), "{list}");
        }
        assert_eq!(carried("vendor=abc,vendor=def").as_deref(), Some("vendor=abc"));
    }

    #[test]
    fn more_than_32_members_drop_the_list() {
        let members: Vec<String> = (0..33).map(|i| format!("k{i}=v")).collect();
        assert_eq!(state(&members.join(",")), None);
        assert_eq!(state(&members[..32].join(",")).map(|s| s.matches('=').count()), Some(32));
    }
}
