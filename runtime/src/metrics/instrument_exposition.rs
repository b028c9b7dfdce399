//! The app's own instruments (the OpenTelemetry SDK's collected metrics) in
//! the scrape formats, named as the OpenTelemetry-to-Prometheus mapping
//! has it: characters Prometheus does not allow become `_`, the unit is a
//! suffix (`s` → `_seconds`, `By` → `_bytes`; `{items}` annotations add
//! nothing), and a counter ends in `_total` (`probe.items` →
//! `probe_items_total`). A non-monotonic sum is a gauge. A family whose name
//! was written already (the same instrument from two meters) is left out, as
//! a scrape with a repeated family would be refused whole.

use std::collections::HashSet;
use std::fmt::Write as _;

use opentelemetry::KeyValue;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, Metric, MetricData, ResourceMetrics};

use crate::metrics::exposition::{braces, escaped, histogram_samples, number};

/// Appends every instrument of `metrics`; `written` holds the families
/// written so far, and gains these.
pub(crate) fn render_instruments(
    metrics: &ResourceMetrics,
    openmetrics: bool,
    written: &mut HashSet<String>,
    out: &mut String,
) {
    for scope in metrics.scope_metrics() {
        for metric in scope.metrics() {
            match metric.data() {
                AggregatedMetrics::F64(data) => family(metric, data, openmetrics, written, out),
                AggregatedMetrics::U64(data) => family(metric, data, openmetrics, written, out),
                AggregatedMetrics::I64(data) => family(metric, data, openmetrics, written, out),
            }
        }
    }
}

/// A value as the formats write it.
trait Sample: Copy {
    fn text(self) -> String;
}

impl Sample for f64 {
    fn text(self) -> String {
        number(self)
    }
}

impl Sample for u64 {
    fn text(self) -> String {
        self.to_string()
    }
}

impl Sample for i64 {
    fn text(self) -> String {
        self.to_string()
    }
}

fn family<T: Sample>(
    metric: &Metric,
    data: &MetricData<T>,
    openmetrics: bool,
    written: &mut HashSet<String>,
    out: &mut String,
) {
    let (base, unit) = family_name(metric.name(), metric.unit());
    let (kind, sample_name) = match data {
        MetricData::Sum(sum) if sum.is_monotonic() => ("counter", format!("{base}_total")),
        MetricData::Sum(_) | MetricData::Gauge(_) => ("gauge", base.clone()),
        MetricData::Histogram(_) => ("histogram", base.clone()),
        // Not an aggregation traced configures.
        MetricData::ExponentialHistogram(_) => return,
    };
    // OpenMetrics names a counter's family without `_total`; the classic
    // format names it as its samples.
    let family = if openmetrics { base.clone() } else { sample_name.clone() };
    if !written.insert(family.clone()) {
        return;
    }
    if !metric.description().is_empty() {
        let _ = writeln!(out, "# HELP {family} {}", metric.description().replace('\\', "\\\\").replace('\n', "\\n"));
    }
    let _ = writeln!(out, "# TYPE {family} {kind}");
    if openmetrics && let Some(unit) = unit {
        let _ = writeln!(out, "# UNIT {family} {unit}");
    }
    match data {
        MetricData::Sum(sum) => {
            for point in sum.data_points() {
                let _ = writeln!(out, "{sample_name}{} {}", braces(&labels(point.attributes())), point.value().text());
            }
        }
        MetricData::Gauge(gauge) => {
            for point in gauge.data_points() {
                let _ = writeln!(out, "{sample_name}{} {}", braces(&labels(point.attributes())), point.value().text());
            }
        }
        MetricData::Histogram(histogram) => {
            for point in histogram.data_points() {
                let overflow = point.bucket_counts().last().unwrap_or(0);
                let buckets = point.bounds().zip(point.bucket_counts());
                let sum = point.sum().text();
                let total = (sum.as_str(), point.count());
                histogram_samples(out, &base, &labels(point.attributes()), buckets, overflow, total, |_| None);
            }
        }
        MetricData::ExponentialHistogram(_) => {}
    }
}

/// The family's name with its unit suffix, and the unit's Prometheus name.
fn family_name(name: &str, unit: &str) -> (String, Option<String>) {
    let mut base = sanitized(name);
    let unit = prometheus_unit(unit);
    if let Some(unit) = &unit
        && !base.ends_with(&format!("_{unit}"))
    {
        base = format!("{base}_{unit}");
    }
    (base, unit)
}

fn prometheus_unit(unit: &str) -> Option<String> {
    let unit = match unit {
        "" | "1" => return None,
        unit if unit.starts_with('{') => return None,
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "min" => "minutes",
        "h" => "hours",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "%" => "percent",
        other => return Some(sanitized(other)).filter(|unit| !unit.is_empty()),
    };
    Some(unit.to_string())
}

/// Letters, digits and `_` kept (`:` too in names), the rest `_`, runs of
/// `_` made one, and no leading digit.
fn sanitized(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        let c = if c.is_ascii_alphanumeric() || c == ':' { c } else { '_' };
        if !(c == '_' && out.ends_with('_')) {
            out.push(c);
        }
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

fn labels<'a>(attributes: impl Iterator<Item = &'a KeyValue>) -> String {
    let mut pairs: Vec<(String, String)> =
        attributes.map(|kv| (sanitized(kv.key.as_str()).replace(':', "_"), escaped(&kv.value.as_str()))).collect();
    pairs.sort();
    pairs.iter().map(|(key, value)| format!("{key}=\"{value}\"")).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_opentelemetry_to_prometheus_mapping() {
        assert_eq!(family_name("probe.items", ""), ("probe_items".to_string(), None));
        assert_eq!(family_name("queue.wait", "s"), ("queue_wait_seconds".to_string(), Some("seconds".into())));
        assert_eq!(family_name("upload.size", "By").0, "upload_size_bytes");
        assert_eq!(family_name("tokens", "{token}").0, "tokens");
        assert_eq!(family_name("latency_seconds", "s").0, "latency_seconds", "no suffix twice");
        assert_eq!(sanitized("9lives..of-a/cat"), "_9lives_of_a_cat");
    }
}
