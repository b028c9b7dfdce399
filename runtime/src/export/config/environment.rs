//! The environment over the code defaults: every variable is parsed,
//! checked and reported here, as a [`ConfigWarning`] for a bad value.

use std::num::NonZeroUsize;

use crate::export::config::backend::Backend;
use crate::export::config::describe::{exporter_names, on_off, queue_size_text};
use crate::export::config::env::{Env, parse_key_value};
use crate::export::config::otlp_config::Protocol;
use crate::export::config::otlp_env;
use crate::export::config::setting::{Setting, Source};
use crate::export::config::types::{ExporterKind, Sampler};
use crate::export::config::{Config, vars};
use crate::export::config::{DEFAULT_OTLP_ENDPOINT, DEFAULT_OTLP_GRPC_ENDPOINT};

impl Config {
    pub(super) fn apply_env(&mut self, env: &mut Env<'_>) {
        self.apply_switches(env);
        self.apply_resource(env);
        self.apply_sampler(env);
        self.apply_backend(env);
        self.apply_otlp(env);
        self.apply_exporters(env);
        self.apply_batch(env);
        self.apply_timing(env);
        self.apply_keep(env);
        if let Some(limit) = env.positive("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", 0) {
            self.attribute_value_length_limit.env("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", Some(limit));
        } else if let Some(limit) = env.positive("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", 0) {
            self.attribute_value_length_limit.env("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", Some(limit));
        }
    }

    fn apply_switches(&mut self, env: &mut Env<'_>) {
        if let Some(raw) = env.get(vars::ENABLE_TRACING) {
            match raw.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => self.enabled.env(vars::ENABLE_TRACING, true),
                "false" | "0" | "no" | "off" => self.enabled.env(vars::ENABLE_TRACING, false),
                _ => env.warn(
                    vars::ENABLE_TRACING,
                    raw,
                    format!("expected true or false; tracing stays {}", on_off(self.enabled.value)),
                ),
            }
        }
        if env.flag("OTEL_SDK_DISABLED") == Some(true) {
            self.enabled.env("OTEL_SDK_DISABLED", false);
        }
        self.apply_metrics(env);
    }

    /// `OTEL_METRICS_EXPORTER` (`otlp`, `prometheus`, both, or `none`), the
    /// push interval and endpoint.
    fn apply_metrics(&mut self, env: &mut Env<'_>) {
        if let Some(raw) = env.get(vars::METRICS_EXPORTER) {
            let names: Vec<String> = raw.split(',').map(|name| name.trim().to_ascii_lowercase()).collect();
            if names.iter().any(|name| !matches!(name.as_str(), "none" | "otlp" | "prometheus")) {
                env.warn(
                    vars::METRICS_EXPORTER,
                    raw,
                    format!("expected otlp, prometheus or none; metrics stay {}", on_off(self.metrics.value)),
                );
            } else if names.iter().any(|name| name == "none") {
                self.metrics.env(vars::METRICS_EXPORTER, false);
                self.otlp_metrics.env(vars::METRICS_EXPORTER, false);
            } else {
                self.metrics.env(vars::METRICS_EXPORTER, true);
                self.otlp_metrics.env(vars::METRICS_EXPORTER, names.iter().any(|name| name == "otlp"));
            }
        }
        if let Some(interval) = env.millis(vars::METRIC_EXPORT_INTERVAL, self.metric_export_interval.value) {
            if interval.is_zero() {
                env.warn(vars::METRIC_EXPORT_INTERVAL, "0", "an interval must be positive; using 60000 ms".to_string());
            } else {
                self.metric_export_interval.env(vars::METRIC_EXPORT_INTERVAL, interval);
            }
        }
        if let Some(raw) = env.get(vars::METRICS_TEMPORALITY) {
            match raw.trim().parse::<opentelemetry_sdk::metrics::Temporality>() {
                Ok(temporality) => self.metric_temporality.env(vars::METRICS_TEMPORALITY, temporality),
                Err(_) => env.warn(
                    vars::METRICS_TEMPORALITY,
                    raw,
                    "expected cumulative, delta or lowmemory; using cumulative".to_string(),
                ),
            }
        }
    }

    fn apply_resource(&mut self, env: &mut Env<'_>) {
        const VAR: &str = "OTEL_RESOURCE_ATTRIBUTES";
        let mut from_resource_attributes = None;
        if let Some(raw) = env.get(VAR) {
            let mut attributes = Vec::new();
            for entry in raw.split(',').map(str::trim).filter(|entry| !entry.is_empty()) {
                match parse_key_value(entry) {
                    Some((key, value)) if key == "service.name" => from_resource_attributes = Some(value),
                    Some(pair) => attributes.push(pair),
                    None => env.warn(VAR, entry, "expected key=value (percent-encoded); entry skipped"),
                }
            }
            let mut merged = std::mem::take(&mut self.resource_attributes.value);
            for (key, value) in attributes {
                merged.retain(|(existing, _)| *existing != key);
                merged.push((key, value));
            }
            self.resource_attributes.env(VAR, merged);
        }
        // The spec: OTEL_SERVICE_NAME wins over service.name in the attributes.
        if let Some(name) = env.get("OTEL_SERVICE_NAME") {
            self.service_name.env("OTEL_SERVICE_NAME", Some(name));
        } else if let Some(name) = from_resource_attributes {
            self.service_name.env(VAR, Some(name));
        }
    }

    fn apply_sampler(&mut self, env: &mut Env<'_>) {
        const SAMPLER: &str = "OTEL_TRACES_SAMPLER";
        const ARG: &str = "OTEL_TRACES_SAMPLER_ARG";
        let current_ratio = match self.sampler.value {
            Sampler::TraceIdRatio(r) | Sampler::ParentBasedTraceIdRatio(r) => r,
            _ => 1.0,
        };
        let sample_rate = env.ratio(vars::SAMPLE_RATE, current_ratio);
        let Some(raw) = env.get(SAMPLER) else {
            if let Some(ratio) = sample_rate {
                self.sampler.env(vars::SAMPLE_RATE, Sampler::ParentBasedTraceIdRatio(ratio));
            }
            return;
        };
        let fallback_ratio = sample_rate.unwrap_or(1.0);
        let sampler = match raw.to_ascii_lowercase().as_str() {
            "always_on" => Sampler::AlwaysOn,
            "always_off" => Sampler::AlwaysOff,
            "traceidratio" => Sampler::TraceIdRatio(env.ratio(ARG, fallback_ratio).unwrap_or(fallback_ratio)),
            "parentbased_always_on" => Sampler::ParentBasedAlwaysOn,
            "parentbased_always_off" => Sampler::ParentBasedAlwaysOff,
            "parentbased_traceidratio" => {
                Sampler::ParentBasedTraceIdRatio(env.ratio(ARG, fallback_ratio).unwrap_or(fallback_ratio))
            }
            _ => {
                let fallback = self.sampler.value;
                env.warn(SAMPLER, raw, format!("unknown or unsupported sampler; using {fallback:?}"));
                return;
            }
        };
        if sample_rate.is_some() && !matches!(sampler, Sampler::TraceIdRatio(_) | Sampler::ParentBasedTraceIdRatio(_)) {
            let value = env.get(vars::SAMPLE_RATE).unwrap_or_default();
            env.warn(vars::SAMPLE_RATE, value, format!("ignored: OTEL_TRACES_SAMPLER={raw} takes no ratio"));
        }
        self.sampler.env(SAMPLER, sampler);
    }

    fn apply_backend(&mut self, env: &mut Env<'_>) {
        if let Some(raw) = env.get(vars::BACKEND) {
            match Backend::from_env(&raw, env) {
                Ok(backend) => self.backend.env(vars::BACKEND, Some(backend)),
                Err(message) => env.warn(vars::BACKEND, raw, message),
            }
        }
        let Some(backend) = self.backend.value.clone() else { return };
        let source = self.backend.source;
        let set = |setting: &mut Setting<Option<String>>, value: String| match source {
            Source::Environment(name) => setting.env(name, Some(value)),
            _ => setting.code(Some(value)),
        };
        // The preset only fills what was not set explicitly.
        if self.otlp.endpoint.value.is_none() {
            set(&mut self.otlp.endpoint, backend.endpoint());
            self.otlp_endpoint_is_base = true;
        }
        let mut headers = backend.headers();
        for (name, value) in self.otlp.headers.value.iter() {
            headers.insert(name, value);
        }
        self.otlp.headers.value = headers;
        if self.otlp.headers.source == Source::Default {
            self.otlp.headers.source = source;
        }
    }

    /// The traces' OTLP settings, and the metrics': both start from what
    /// code (or a preset) set, then each reads its own variables.
    fn apply_otlp(&mut self, env: &mut Env<'_>) {
        self.otlp_for_metrics = self.otlp.clone();
        self.metrics_endpoint_is_base = self.otlp_endpoint_is_base;
        if let Some(is_base) = self.otlp.apply_env(env, &otlp_env::TRACES) {
            self.otlp_endpoint_is_base = is_base;
        }
        if let Some(is_base) = self.otlp_for_metrics.apply_env(env, &otlp_env::METRICS) {
            self.metrics_endpoint_is_base = is_base;
        }
        let request_fallback = self.otlp_request_limit();
        if let Some(bytes) = env.positive(vars::MAX_REQUEST_BYTES, request_fallback) {
            self.otlp.max_request_bytes.env(vars::MAX_REQUEST_BYTES, Some(bytes));
        }
    }

    fn apply_exporters(&mut self, env: &mut Env<'_>) {
        const VAR: &str = "OTEL_TRACES_EXPORTER";
        if let Some(raw) = env.get(VAR) {
            let mut chosen = Vec::new();
            let mut bad = Vec::new();
            for name in raw.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                let kind = match name.to_ascii_lowercase().as_str() {
                    "otlp" => ExporterKind::Otlp,
                    "console" | "logging" => ExporterKind::Console,
                    "none" => ExporterKind::None,
                    _ => {
                        bad.push(name.to_string());
                        continue;
                    }
                };
                if !chosen.contains(&kind) {
                    chosen.push(kind);
                }
            }
            if chosen.len() > 1 {
                chosen.retain(|kind| *kind != ExporterKind::None);
            }
            let fallback = self.default_exporters();
            if !bad.is_empty() {
                let used = if chosen.is_empty() { &fallback } else { &chosen };
                env.warn(
                    VAR,
                    raw.clone(),
                    format!("unknown exporter {}; using {}", bad.join(", "), exporter_names(used)),
                );
            }
            if chosen.is_empty() {
                self.exporters.value = fallback;
            } else {
                self.exporters.env(VAR, chosen);
            }
        } else if !self.exporters_chosen_in_code {
            self.exporters.value = self.default_exporters();
            if self.otlp.endpoint.value.is_some() {
                self.exporters.source = self.otlp.endpoint.source;
            }
        }
        if self.exporters.value.contains(&ExporterKind::Otlp) && self.otlp.endpoint.value.is_none() {
            let default = if self.otlp.protocol.value == Protocol::Grpc {
                DEFAULT_OTLP_GRPC_ENDPOINT
            } else {
                DEFAULT_OTLP_ENDPOINT
            };
            self.otlp.endpoint.value = Some(default.to_string());
            self.otlp_endpoint_is_base = true;
        }
    }

    fn default_exporters(&self) -> Vec<ExporterKind> {
        if self.otlp.endpoint.value.is_some() { vec![ExporterKind::Otlp] } else { vec![ExporterKind::Console] }
    }

    fn apply_batch(&mut self, env: &mut Env<'_>) {
        let batch = &mut self.batch;
        const QUEUE: &str = "OTEL_BSP_MAX_QUEUE_SIZE";
        let instead = queue_size_text(batch.max_queue_size.value);
        if let Some(n) = env.parsed::<NonZeroUsize>(QUEUE, "a positive integer", &instead) {
            batch.max_queue_size.env(QUEUE, Some(n));
        }
        if let Some(n) = env.positive("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", batch.max_export_batch_size.value) {
            batch.max_export_batch_size.env("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", n);
        }
        for (name, setting) in [
            ("OTEL_BSP_SCHEDULE_DELAY", &mut batch.schedule_delay),
            ("OTEL_BSP_EXPORT_TIMEOUT", &mut batch.export_timeout),
        ] {
            if let Some(d) = env.millis(name, setting.value) {
                setting.env(name, d);
            }
        }
        if let Some(queue) = batch.max_queue_size.value.map(NonZeroUsize::get)
            && batch.max_export_batch_size.value > queue
        {
            env.warn(
                "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
                batch.max_export_batch_size.value.to_string(),
                format!("larger than the queue size; using {queue}"),
            );
            batch.max_export_batch_size.value = queue;
        }
    }

    fn apply_keep(&mut self, env: &mut Env<'_>) {
        if let Some(bytes) = env.positive(vars::SPAN_BUFFER_BYTES, self.span_buffer_bytes.value) {
            self.span_buffer_bytes.env(vars::SPAN_BUFFER_BYTES, bytes);
        }
        if let Some(elapsed) = env.millis(vars::RETRY_MAX_ELAPSED_TIME, self.retry_max_elapsed.value) {
            self.retry_max_elapsed.env(vars::RETRY_MAX_ELAPSED_TIME, elapsed);
        }
        if let Some(keep) = env.flag(vars::KEEP_ERRORS) {
            self.keep.errors.env(vars::KEEP_ERRORS, keep);
        }
        let fallback = self.keep.slower_than.value.unwrap_or_default();
        if let Some(threshold) = env.millis(vars::KEEP_SLOWER_THAN_MS, fallback) {
            self.keep.slower_than.env(vars::KEEP_SLOWER_THAN_MS, Some(threshold));
        }
        if let Some(bytes) = env.positive(vars::HELD_TRACES_BYTES, self.keep.max_held_bytes.value) {
            self.keep.max_held_bytes.env(vars::HELD_TRACES_BYTES, bytes);
        }
    }

    fn apply_timing(&mut self, env: &mut Env<'_>) {
        if let Some(grace) = env.millis(vars::GRACE_PERIOD, self.grace_period.value) {
            self.grace_period.env(vars::GRACE_PERIOD, grace);
        }
        if let Some(flush) = env.millis(vars::FLUSH_BUDGET, self.flush_budget.value) {
            self.flush_budget.env(vars::FLUSH_BUDGET, flush);
        }
        if self.flush_budget.value > self.grace_period.value {
            let grace = self.grace_period.value;
            env.warn(
                vars::FLUSH_BUDGET,
                self.flush_budget.value.as_millis().to_string(),
                format!("longer than the grace period; using {} ms", grace.as_millis()),
            );
            self.flush_budget.value = grace;
        }
    }
}
