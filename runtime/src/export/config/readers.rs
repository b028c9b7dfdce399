//! Reading a [`Config`]: each setting with its source, and the URLs the
//! OTLP settings resolve to.

use std::time::Duration;

use crate::export::config::Config;
use crate::export::config::backend::Backend;
use crate::export::config::env::ConfigWarning;
use crate::export::config::otlp_config::{OtlpConfig, Protocol};
use crate::export::config::otlp_env;
use crate::export::config::setting::{Setting, Source};
use crate::export::config::types::{BatchConfig, ExporterKind, KeepConfig, Sampler};
use crate::export::config::{DEFAULT_OTLP_ENDPOINT, DEFAULT_OTLP_GRPC_ENDPOINT};
use crate::export::url::redact_url;

/// Readers: each setting's value and where it came from. The builder
/// methods own the plain names (`sampler(..)` sets the sampler), so the
/// readers are `get_*`, as in clap.
impl Config {
    /// False when `ENABLE_TRACING=false` or `OTEL_SDK_DISABLED=true`.
    pub fn get_enabled(&self) -> &Setting<bool> {
        &self.enabled
    }

    /// Request metrics recorded (and served on `/metrics`); false when
    /// `OTEL_METRICS_EXPORTER=none`. Independent of `enabled`.
    pub fn get_metrics(&self) -> &Setting<bool> {
        &self.metrics
    }

    /// Metrics also pushed over OTLP (http/protobuf) to the traces'
    /// collector; false when `OTEL_METRICS_EXPORTER` names `prometheus`
    /// alone.
    pub fn get_otlp_metrics(&self) -> &Setting<bool> {
        &self.otlp_metrics
    }

    /// How often metrics are pushed (`OTEL_METRIC_EXPORT_INTERVAL`).
    pub fn get_metric_export_interval(&self) -> &Setting<Duration> {
        &self.metric_export_interval
    }

    /// The pushed metrics' temporality
    /// (`OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`: `cumulative`,
    /// `delta` or `lowmemory`); the scrape is always cumulative.
    pub fn get_metric_temporality(&self) -> &Setting<opentelemetry_sdk::metrics::Temporality> {
        &self.metric_temporality
    }

    /// The OTLP settings metrics are pushed with: the traces' as code set
    /// them and the generic `OTEL_EXPORTER_OTLP_*` variables, each
    /// overridden by its `OTEL_EXPORTER_OTLP_METRICS_*` variable (the
    /// endpoint: the full URL). Where no endpoint is set for them, metrics
    /// go beside the traces; see [`Config::otlp_metrics_url`].
    pub fn get_otlp_for_metrics(&self) -> &OtlpConfig {
        &self.otlp_for_metrics
    }

    /// `service.name`; `None` leaves the SDK's `unknown_service`.
    pub fn get_service_name(&self) -> &Setting<Option<String>> {
        &self.service_name
    }

    /// Resource attributes other than `service.name`.
    pub fn get_resource_attributes(&self) -> &Setting<Vec<(String, String)>> {
        &self.resource_attributes
    }

    /// The sampler.
    pub fn get_sampler(&self) -> &Setting<Sampler> {
        &self.sampler
    }

    /// Where spans go; several are allowed (`otlp,console`).
    pub fn get_exporters(&self) -> &Setting<Vec<ExporterKind>> {
        &self.exporters
    }

    /// OTLP settings, used when `exporters` holds `Otlp`.
    pub fn get_otlp(&self) -> &OtlpConfig {
        &self.otlp
    }

    /// Batch processor tuning.
    pub fn get_batch(&self) -> &BatchConfig {
        &self.batch
    }

    /// Longer string attribute values are cut to this many characters.
    pub fn get_attribute_value_length_limit(&self) -> &Setting<Option<usize>> {
        &self.attribute_value_length_limit
    }

    /// The most memory spans waiting for export may take, per exporter:
    /// queued, and waiting for a collector that is away.
    pub fn get_span_buffer_bytes(&self) -> &Setting<usize> {
        &self.span_buffer_bytes
    }

    /// How long a request that failed while the collector was away (refused,
    /// no answer, a retryable status) waits for it, retried, before it is
    /// dropped; zero drops it at once.
    pub fn get_retry_max_elapsed(&self) -> &Setting<Duration> {
        &self.retry_max_elapsed
    }

    /// Whole-trace decisions at the root's end, on top of head sampling.
    pub fn get_keep(&self) -> &KeepConfig {
        &self.keep
    }

    /// The hosted backend preset in force, if any.
    pub fn get_backend(&self) -> &Setting<Option<Backend>> {
        &self.backend
    }

    /// SIGTERM-to-exit budget of the whole shutdown sequence.
    pub fn get_grace_period(&self) -> &Setting<Duration> {
        &self.grace_period
    }

    /// The share of the grace period given to flushing spans.
    pub fn get_flush_budget(&self) -> &Setting<Duration> {
        &self.flush_budget
    }

    /// What was wrong with the environment; printed once by `init`.
    pub fn get_warnings(&self) -> &[ConfigWarning] {
        &self.warnings
    }
}

impl Config {
    /// The URL OTLP requests go to: `/v1/traces` appended to a base endpoint
    /// for HTTP, as the spec says.
    pub fn otlp_traces_url(&self) -> Option<String> {
        let endpoint = self.otlp.endpoint.value.as_deref()?;
        if self.otlp_endpoint_is_base && self.otlp.protocol.value != Protocol::Grpc {
            Some(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
        } else {
            Some(endpoint.to_string())
        }
    }

    /// Where OTLP metrics go: `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` as it
    /// is; else a base endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT`, code, a
    /// preset) with `/v1/metrics` for HTTP; else beside a traces URL set for
    /// the traces alone (`/v1/metrics` for `/v1/traces`) when both go by the
    /// same protocol. `None` when they are not pushed: turned off, or no
    /// OTLP endpoint for them.
    ///
    /// ```
    /// let config = traced::Config::default().with_env_from(|name| match name {
    ///     "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("http://collector:4318".into()),
    ///     "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT" => Some("2500".into()),
    ///     _ => None,
    /// });
    /// assert_eq!(config.otlp_metrics_url().as_deref(), Some("http://collector:4318/v1/metrics"));
    /// assert_eq!(config.get_otlp_for_metrics().timeout.value.as_millis(), 2500);
    /// assert_eq!(config.get_otlp().timeout.value.as_secs(), 10);
    /// ```
    pub fn otlp_metrics_url(&self) -> Option<String> {
        if !self.metrics.value || !self.otlp_metrics.value {
            return None;
        }
        let settings = &self.otlp_for_metrics;
        let own_url = settings.endpoint.source == Source::Environment(otlp_env::METRICS.endpoint());
        if !own_url && !self.exporters.value.contains(&ExporterKind::Otlp) {
            return None;
        }
        let grpc = settings.protocol.value == Protocol::Grpc;
        match settings.endpoint.value.as_deref() {
            Some(url) if !self.metrics_endpoint_is_base => Some(url.to_string()),
            Some(base) if grpc => Some(base.to_string()),
            Some(base) => Some(format!("{}/v1/metrics", base.trim_end_matches('/'))),
            None if self.otlp.endpoint.source == Source::Default => {
                let default = if grpc { DEFAULT_OTLP_GRPC_ENDPOINT } else { DEFAULT_OTLP_ENDPOINT };
                Some(if grpc { default.to_string() } else { format!("{default}/v1/metrics") })
            }
            None if settings.protocol.value != self.otlp.protocol.value => None,
            None if grpc => self.otlp_traces_url(),
            None => self.otlp_traces_url()?.strip_suffix("/v1/traces").map(|base| format!("{base}/v1/metrics")),
        }
    }

    /// The most one OTLP request carries, encoded: the configured value, else
    /// the protocol's default (4 MiB for gRPC, 8 MiB for HTTP).
    pub fn otlp_request_limit(&self) -> usize {
        self.otlp.max_request_bytes.value.unwrap_or(match self.otlp.protocol.value {
            Protocol::Grpc => 4 * 1024 * 1024,
            Protocol::HttpProtobuf | Protocol::HttpJson => 8 * 1024 * 1024,
        })
    }

    /// [`Config::otlp_traces_url`] as it may be printed: a user name,
    /// password or query value in it becomes `***`.
    ///
    /// ```
    /// let config = traced::Config::default()
    ///     .otlp_endpoint("https://user:hunter2@collector.example.com:4318?api_key=hunter3")
    ///     .with_env_from(|_| None);
    /// let shown = config.redacted_otlp_traces_url().unwrap();
    /// assert!(!shown.contains("hunter"), "{shown}");
    /// ```
    pub fn redacted_otlp_traces_url(&self) -> Option<String> {
        self.otlp_traces_url().map(|url| redact_url(&url))
    }
}
