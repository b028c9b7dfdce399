//! The metrics in the text formats Prometheus scrapes: OpenMetrics 1.0 (with
//! exemplars) when the scraper's `Accept` asks for it, as Prometheus does,
//! and the classic Prometheus text format otherwise. Names follow the
//! OpenTelemetry-to-Prometheus mapping: `http.server.request.duration` in
//! seconds is `http_server_request_duration_seconds`, its attributes'
//! dots become underscores.

use std::fmt::Write as _;
use std::time::UNIX_EPOCH;

use crate::metrics::histogram::Snapshot;
use crate::metrics::request_metrics::SeriesKey;

/// The content type of each format.
pub(crate) const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
pub(crate) const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Whether an `Accept` header asks for OpenMetrics.
pub(crate) fn wants_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|accept| accept.contains("application/openmetrics-text"))
}

/// A histogram family in seconds, `name`, in one format, appended to `out`
/// (nothing when it has no series yet).
pub(crate) fn render(name: &str, help: &str, series: &[(SeriesKey, Snapshot)], openmetrics: bool, out: &mut String) {
    if series.is_empty() {
        return;
    }
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} histogram");
    if openmetrics {
        let _ = writeln!(out, "# UNIT {name} seconds");
    }
    for (key, read) in series {
        let exemplar = |bucket: usize| {
            let exemplar = read.exemplars[bucket].filter(|_| openmetrics)?;
            let at = exemplar.at.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64();
            Some(format!(
                " # {{trace_id=\"{}\",span_id=\"{}\"}} {} {at:.3}",
                exemplar.trace_id,
                exemplar.span_id,
                number(exemplar.value)
            ))
        };
        let buckets = read.bounds.iter().copied().zip(read.counts.iter().copied());
        let overflow = read.counts.last().copied().unwrap_or(0);
        let sum = number(read.sum);
        histogram_samples(out, name, &labels(key), buckets, overflow, (&sum, read.count()), exemplar);
    }
}

/// One histogram series' samples: its buckets, cumulative (`exemplar`
/// writes what follows a bucket's line, if anything), the `+Inf` bucket
/// from `overflow`, then `_sum` and `_count` (`total`).
pub(crate) fn histogram_samples(
    out: &mut String,
    name: &str,
    labels: &str,
    buckets: impl Iterator<Item = (f64, u64)>,
    overflow: u64,
    total: (&str, u64),
    exemplar: impl Fn(usize) -> Option<String>,
) {
    let separator = if labels.is_empty() { "" } else { "," };
    let mut cumulative = 0;
    let mut write_bucket = |bucket: usize, le: &str, count: u64| {
        cumulative += count;
        let _ = write!(out, "{name}_bucket{{{labels}{separator}le=\"{le}\"}} {cumulative}");
        if let Some(exemplar) = exemplar(bucket) {
            out.push_str(&exemplar);
        }
        out.push('\n');
    };
    let mut last = 0;
    for (bucket, (bound, count)) in buckets.enumerate() {
        write_bucket(bucket, &number(bound), count);
        last = bucket + 1;
    }
    write_bucket(last, "+Inf", overflow);
    let (sum, count) = total;
    let _ = writeln!(out, "{name}_sum{} {sum}", braces(labels));
    let _ = writeln!(out, "{name}_count{} {count}", braces(labels));
}

/// `{labels}`, or nothing for none.
pub(crate) fn braces(labels: &str) -> String {
    if labels.is_empty() { String::new() } else { format!("{{{labels}}}") }
}

fn labels(key: &SeriesKey) -> String {
    match key {
        SeriesKey::Request { method, route, status, error_type } => {
            let mut labels = Vec::with_capacity(4);
            if let Some(error_type) = error_type {
                labels.push(label("error_type", error_type));
            }
            labels.push(label("http_request_method", method));
            labels.push(format!("http_response_status_code=\"{status}\""));
            if let Some(route) = route {
                labels.push(label("http_route", route));
            }
            labels.join(",")
        }
        SeriesKey::GenAi { operation, model, error_type } => {
            let mut labels = Vec::with_capacity(3);
            if let Some(error_type) = error_type {
                labels.push(label("error_type", error_type));
            }
            labels.push(label("gen_ai_operation_name", operation));
            if let Some(model) = model {
                labels.push(label("gen_ai_request_model", model));
            }
            labels.join(",")
        }
        SeriesKey::Stage { name } => label("traced_stage", name),
        SeriesKey::Overflow => "otel_metric_overflow=\"true\"".to_string(),
    }
}

fn label(name: &str, value: &str) -> String {
    format!("{name}=\"{}\"", escaped(value))
}

/// A label value with `\\`, `"` and newlines escaped.
pub(crate) fn escaped(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// A number as both formats write it (`1.0` as `1`, no exponent for ours).
pub(crate) fn number(value: f64) -> String {
    if value.is_finite() && value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use opentelemetry::trace::{SpanId, TraceId};

    use super::*;
    use crate::metrics::histogram::Exemplar;

    const DURATION: &str = "http_server_request_duration_seconds";

    fn series() -> Vec<(SeriesKey, Snapshot)> {
        let key = SeriesKey::Request {
            method: "POST".into(),
            route: Some("/generate/{model}".into()),
            status: 500,
            error_type: Some("500".into()),
        };
        let exemplar = Exemplar {
            trace_id: TraceId::from(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736),
            span_id: SpanId::from(0x00f0_67aa_0ba9_02b7),
            value: 0.3,
            at: SystemTime::UNIX_EPOCH + Duration::from_millis(1_733_400_000_123),
        };
        let read = Snapshot {
            bounds: &[0.1, 1.0],
            counts: vec![1, 2, 0],
            sum: 0.75,
            exemplars: vec![None, Some(exemplar), None],
        };
        vec![(key, read)]
    }

    #[test]
    fn the_classic_format_has_cumulative_buckets_and_no_exemplars() {
        let mut text = String::new();
        render(DURATION, "Duration of HTTP server requests.", &series(), false, &mut text);
        let labels = "error_type=\"500\",http_request_method=\"POST\",http_response_status_code=\"500\",http_route=\"/generate/{model}\"";
        assert!(
            text.contains(&format!("http_server_request_duration_seconds_bucket{{{labels},le=\"0.1\"}} 1\n")),
            "{text}"
        );
        assert!(text.contains(&format!("_bucket{{{labels},le=\"1\"}} 3\n")), "{text}");
        assert!(text.contains(&format!("_bucket{{{labels},le=\"+Inf\"}} 3\n")), "{text}");
        assert!(text.contains(&format!("_sum{{{labels}}} 0.75\n")), "{text}");
        assert!(text.contains(&format!("_count{{{labels}}} 3\n")), "{text}");
        assert!(!text.contains('#') || !text.contains("trace_id"), "{text}");
    }

    #[test]
    fn openmetrics_carries_exemplars_and_ends_with_eof() {
        let mut text = String::new();
        render(DURATION, "Duration of HTTP server requests.", &series(), true, &mut text);
        assert!(text.contains("# UNIT http_server_request_duration_seconds seconds\n"), "{text}");
        assert!(
            text.contains(
                ",le=\"1\"} 3 # {trace_id=\"4bf92f3577b34da6a3ce929d0e0e4736\",span_id=\"00f067aa0ba902b7\"} 0.3 1733400000.123\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("http_route", "/a\"b\\c\nd"), "http_route=\"/a\\\"b\\\\c\\nd\"");
    }

    #[test]
    fn scrapers_asking_for_openmetrics_get_it() {
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert!(wants_openmetrics(Some(prometheus)));
        assert!(!wants_openmetrics(Some("text/plain")));
        assert!(!wants_openmetrics(None));
    }
}
