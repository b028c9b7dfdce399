//! What `traced-doctor` prints of a [`Config`], and its `Debug`: every
//! setting with its source, secrets redacted.

use std::fmt;
use std::num::NonZeroUsize;
use std::time::Duration;

use crate::export::config::Config;
use crate::export::config::setting::{Setting, Source};
use crate::export::config::types::ExporterKind;
use crate::export::url::redact_url;

impl Config {
    /// Every effective setting with its source, secrets redacted: what
    /// `traced-doctor` prints.
    pub fn describe(&self) -> Vec<(&'static str, String, Source)> {
        let ms = |d: &Setting<Duration>| (format!("{} ms", d.value.as_millis()), d.source);
        let mut rows = vec![
            ("enabled", self.enabled.value.to_string(), self.enabled.source),
            ("metrics", self.metrics.value.to_string(), self.metrics.source),
            (
                "metrics.otlp",
                self.otlp_metrics_url().map_or_else(|| "not pushed".to_string(), |url| redact_url(&url)),
                self.otlp_metrics.source,
            ),
            (
                "metrics.interval",
                format!("{} ms", self.metric_export_interval.value.as_millis()),
                self.metric_export_interval.source,
            ),
            ("metrics.temporality", format!("{:?}", self.metric_temporality.value), self.metric_temporality.source),
        ];
        if self.otlp_metrics_url().is_some() {
            let pushed = &self.otlp_for_metrics;
            rows.push(("metrics.protocol", pushed.protocol.value.as_str().to_string(), pushed.protocol.source));
            rows.push(("metrics.headers", pushed.headers.value.redacted(), pushed.headers.source));
            let (timeout, source) = ms(&pushed.timeout);
            rows.push(("metrics.timeout", timeout, source));
            let compression = if pushed.gzip.value { "gzip" } else { "none" };
            rows.push(("metrics.compression", compression.to_string(), pushed.gzip.source));
        }
        rows.push((
            "service.name",
            self.service_name.value.clone().unwrap_or_else(|| "unknown_service".into()),
            self.service_name.source,
        ));
        let attributes: Vec<String> = self.resource_attributes.value.iter().map(|(k, v)| format!("{k}={v}")).collect();
        rows.push(("resource", attributes.join(","), self.resource_attributes.source));
        rows.push(("sampler", format!("{:?}", self.sampler.value), self.sampler.source));
        rows.push(("exporters", exporter_names(&self.exporters.value), self.exporters.source));
        if let Some(backend) = &self.backend.value {
            rows.push(("backend", backend.name().to_string(), self.backend.source));
        }
        if self.exporters.value.contains(&ExporterKind::Otlp) {
            rows.push((
                "otlp.endpoint",
                self.redacted_otlp_traces_url().unwrap_or_default(),
                self.otlp.endpoint.source,
            ));
            rows.push(("otlp.protocol", self.otlp.protocol.value.as_str().to_string(), self.otlp.protocol.source));
            rows.push(("otlp.headers", self.otlp.headers.value.redacted(), self.otlp.headers.source));
            let (timeout, source) = ms(&self.otlp.timeout);
            rows.push(("otlp.timeout", timeout, source));
            if let Some((certificate, key)) = &self.otlp.client_identity.value {
                let files = format!("{} (key {})", certificate.display(), key.display());
                rows.push(("otlp.client_certificate", files, self.otlp.client_identity.source));
            }
            rows.push((
                "otlp.max_request_bytes",
                self.otlp_request_limit().to_string(),
                self.otlp.max_request_bytes.source,
            ));
            rows.push((
                "otlp.compression",
                if self.otlp.gzip.value { "gzip" } else { "none" }.to_string(),
                self.otlp.gzip.source,
            ));
        }
        rows.push((
            "bsp.max_queue_size",
            queue_size_text(self.batch.max_queue_size.value),
            self.batch.max_queue_size.source,
        ));
        rows.push(("span_buffer_bytes", self.span_buffer_bytes.value.to_string(), self.span_buffer_bytes.source));
        let (elapsed, source) = ms(&self.retry_max_elapsed);
        rows.push(("retry.max_elapsed_time", elapsed, source));
        rows.push((
            "bsp.max_export_batch_size",
            self.batch.max_export_batch_size.value.to_string(),
            self.batch.max_export_batch_size.source,
        ));
        for (name, setting) in [
            ("bsp.schedule_delay", &self.batch.schedule_delay),
            ("bsp.export_timeout", &self.batch.export_timeout),
            ("grace_period", &self.grace_period),
            ("flush_budget", &self.flush_budget),
        ] {
            let (value, source) = ms(setting);
            rows.push((name, value, source));
        }
        let limit = self.attribute_value_length_limit.value.map_or_else(|| "none".to_string(), |l| l.to_string());
        rows.push(("attribute_value_length_limit", limit, self.attribute_value_length_limit.source));
        rows.push(("keep.errors", on_off(self.keep.errors.value).to_string(), self.keep.errors.source));
        let slower = self.keep.slower_than.value.map_or_else(|| "off".to_string(), |d| format!("{} ms", d.as_millis()));
        rows.push(("keep.slower_than", slower, self.keep.slower_than.source));
        if self.keep.any() {
            rows.push((
                "keep.max_held_bytes",
                self.keep.max_held_bytes.value.to_string(),
                self.keep.max_held_bytes.source,
            ));
        }
        rows
    }
}

pub(super) fn queue_size_text(size: Option<NonZeroUsize>) -> String {
    size.map_or_else(|| "no limit".to_string(), |size| size.to_string())
}

pub(super) fn on_off(enabled: bool) -> &'static str {
    if enabled { "on" } else { "off" }
}

pub(super) fn exporter_names(kinds: &[ExporterKind]) -> String {
    let names: Vec<&str> = kinds
        .iter()
        .map(|kind| match kind {
            ExporterKind::Otlp => "otlp",
            ExporterKind::Console => "console",
            ExporterKind::None => "none",
        })
        .collect();
    names.join(",")
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("enabled", &self.enabled)
            .field("metrics", &self.metrics)
            .field("otlp_metrics", &self.otlp_metrics)
            .field("metric_export_interval", &self.metric_export_interval)
            .field("metric_temporality", &self.metric_temporality)
            .field("otlp_for_metrics", &self.otlp_for_metrics)
            .field("service_name", &self.service_name)
            .field("resource_attributes", &self.resource_attributes)
            .field("sampler", &self.sampler)
            .field("exporters", &self.exporters)
            .field("otlp", &self.otlp)
            .field("batch", &self.batch)
            .field("attribute_value_length_limit", &self.attribute_value_length_limit)
            .field("span_buffer_bytes", &self.span_buffer_bytes)
            .field("retry_max_elapsed", &self.retry_max_elapsed)
            .field("keep", &self.keep)
            .field("backend", &self.backend)
            .field("grace_period", &self.grace_period)
            .field("flush_budget", &self.flush_budget)
            .field("custom_exporters", &self.custom_exporters.len())
            .field("warnings", &self.warnings)
            .finish()
    }
}
