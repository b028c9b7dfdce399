//! The configuration room: [`Config`], its builder and readers, the
//! environment over the code defaults, and the description the doctor
//! prints. Code sets defaults with the builder methods; the environment
//! overrides them, the way platform secrets override what was deployed.
//! Each value remembers where it came from so `traced-doctor` can say why it
//! is what it is. Nothing here depends on the rooms above (pipeline, OTLP,
//! provider); it names only the exporter door and URLs.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub(crate) mod backend;
mod describe;
pub(crate) mod env;
mod environment;
pub(crate) mod otlp_config;
pub(crate) mod otlp_env;
pub(crate) mod otlp_headers;
mod readers;
pub(crate) mod setting;
mod types;
pub mod vars;

use crate::export::config::backend::Backend;
use crate::export::config::env::{ConfigWarning, Env};
pub use crate::export::config::otlp_config::{OtlpConfig, Protocol};
use crate::export::config::setting::Setting;
pub use crate::export::config::types::{BatchConfig, ExporterKind, KeepConfig, Sampler};
use crate::export::exporter::{DynExporter, Sdk, SharedExporter};

/// Everything `traced::init` needs, from code defaults and the environment.
///
/// ```
/// use std::time::Duration;
/// use traced::{Config, ExporterKind};
///
/// let config = Config::default()
///     .service_name("text-to-image")
///     .sample_rate(0.25)
///     .flush_budget(Duration::from_secs(3))
///     // Only these variables are seen here; `with_env()` reads the process's.
///     .with_env_from(|name| (name == "OTEL_SAMPLE_RATE").then(|| "0.5".to_string()));
/// assert_eq!(config.get_sampler().value, traced::Sampler::ParentBasedTraceIdRatio(0.5));
/// assert_eq!(config.get_exporters().value, [ExporterKind::Console]);
/// assert!(config.get_warnings().is_empty());
/// ```
#[derive(Clone)]
pub struct Config {
    /// False when `ENABLE_TRACING=false` or `OTEL_SDK_DISABLED=true`.
    pub(crate) enabled: Setting<bool>,
    /// Request metrics recorded (and served on `/metrics`); false when
    /// `OTEL_METRICS_EXPORTER=none`. Independent of `enabled`.
    pub(crate) metrics: Setting<bool>,
    /// Metrics also pushed over OTLP (http/protobuf) to the traces'
    /// collector; false when `OTEL_METRICS_EXPORTER` names `prometheus`
    /// alone.
    pub(crate) otlp_metrics: Setting<bool>,
    /// How often metrics are pushed (`OTEL_METRIC_EXPORT_INTERVAL`).
    pub(crate) metric_export_interval: Setting<Duration>,
    /// The pushed metrics' temporality
    /// (`OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`: `cumulative`,
    /// `delta` or `lowmemory`); the scrape is always cumulative.
    pub(crate) metric_temporality: Setting<opentelemetry_sdk::metrics::Temporality>,
    /// The OTLP settings metrics are pushed with: the traces' as code set
    /// them and the generic `OTEL_EXPORTER_OTLP_*` variables, each
    /// overridden by its `OTEL_EXPORTER_OTLP_METRICS_*` variable (the
    /// endpoint: the full URL). Where no endpoint is set for them, metrics
    /// go beside the traces; see [`Config::otlp_metrics_url`].
    pub(crate) otlp_for_metrics: OtlpConfig,
    /// `service.name`; `None` leaves the SDK's `unknown_service`.
    pub(crate) service_name: Setting<Option<String>>,
    /// Resource attributes other than `service.name`.
    pub(crate) resource_attributes: Setting<Vec<(String, String)>>,
    /// The sampler.
    pub(crate) sampler: Setting<Sampler>,
    /// Where spans go; several are allowed (`otlp,console`).
    pub(crate) exporters: Setting<Vec<ExporterKind>>,
    /// OTLP settings, used when `exporters` holds `Otlp`.
    pub(crate) otlp: OtlpConfig,
    /// Batch processor tuning.
    pub(crate) batch: BatchConfig,
    /// Longer string attribute values are cut to this many characters.
    pub(crate) attribute_value_length_limit: Setting<Option<usize>>,
    /// The most memory spans waiting for export may take, per exporter:
    /// queued, and waiting for a collector that is away.
    pub(crate) span_buffer_bytes: Setting<usize>,
    /// How long a request that failed while the collector was away (refused,
    /// no answer, a retryable status) waits for it, retried, before it is
    /// dropped; zero drops it at once.
    pub(crate) retry_max_elapsed: Setting<Duration>,
    /// Whole-trace decisions at the root's end, on top of head sampling.
    pub(crate) keep: KeepConfig,
    /// The hosted backend preset in force, if any.
    pub(crate) backend: Setting<Option<Backend>>,
    /// SIGTERM-to-exit budget of the whole shutdown sequence.
    pub(crate) grace_period: Setting<Duration>,
    /// The share of the grace period given to flushing spans.
    pub(crate) flush_budget: Setting<Duration>,
    /// What was wrong with the environment; printed once by `init`.
    pub(crate) warnings: Vec<ConfigWarning>,
    pub(crate) custom_exporters: Vec<SharedExporter>,
    env_applied: bool,
    exporters_chosen_in_code: bool,
    otlp_endpoint_is_base: bool,
    metrics_endpoint_is_base: bool,
}

const DEFAULT_SPAN_BUFFER_BYTES: usize = 64 << 20;
const DEFAULT_HELD_TRACES_BYTES: usize = 64 << 20;
/// The OpenTelemetry Collector's default `retry_on_failure.max_elapsed_time`.
const DEFAULT_RETRY_MAX_ELAPSED: Duration = Duration::from_secs(300);
const DEFAULT_GRACE: Duration = Duration::from_secs(5);
const DEFAULT_METRIC_EXPORT_INTERVAL: Duration = Duration::from_secs(60);
const DEFAULT_FLUSH: Duration = Duration::from_secs(4);
pub(super) const DEFAULT_OTLP_ENDPOINT: &str = "http://localhost:4318";
pub(super) const DEFAULT_OTLP_GRPC_ENDPOINT: &str = "http://localhost:4317";

impl Default for Config {
    fn default() -> Self {
        Config {
            enabled: Setting::default(true),
            metrics: Setting::default(true),
            otlp_metrics: Setting::default(true),
            metric_export_interval: Setting::default(DEFAULT_METRIC_EXPORT_INTERVAL),
            metric_temporality: Setting::default(opentelemetry_sdk::metrics::Temporality::Cumulative),
            service_name: Setting::default(None),
            resource_attributes: Setting::default(Vec::new()),
            sampler: Setting::default(Sampler::ParentBasedTraceIdRatio(1.0)),
            exporters: Setting::default(vec![ExporterKind::Console]),
            otlp: OtlpConfig::default(),
            otlp_for_metrics: OtlpConfig::default(),
            batch: BatchConfig {
                max_queue_size: Setting::default(None),
                max_export_batch_size: Setting::default(512),
                schedule_delay: Setting::default(Duration::from_millis(5000)),
                export_timeout: Setting::default(Duration::from_millis(30_000)),
            },
            attribute_value_length_limit: Setting::default(None),
            span_buffer_bytes: Setting::default(DEFAULT_SPAN_BUFFER_BYTES),
            retry_max_elapsed: Setting::default(DEFAULT_RETRY_MAX_ELAPSED),
            keep: KeepConfig {
                errors: Setting::default(false),
                slower_than: Setting::default(None),
                max_held_bytes: Setting::default(DEFAULT_HELD_TRACES_BYTES),
            },
            backend: Setting::default(None),
            grace_period: Setting::default(DEFAULT_GRACE),
            flush_budget: Setting::default(DEFAULT_FLUSH),
            warnings: Vec::new(),
            custom_exporters: Vec::new(),
            env_applied: false,
            exporters_chosen_in_code: false,
            otlp_endpoint_is_base: false,
            metrics_endpoint_is_base: false,
        }
    }
}

/// Builder methods: code defaults that the environment may override.
impl Config {
    /// Reads the process environment: `Config::default().with_env()`.
    pub fn from_env() -> Self {
        Config::default().with_env()
    }

    /// Turns tracing on or off.
    #[must_use]
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled.code(enabled);
        self
    }

    /// Turns the request metrics on or off (on by default; the environment's
    /// `OTEL_METRICS_EXPORTER=none` turns them off).
    ///
    /// ```
    /// let config = traced::Config::default().metrics(false).with_env_from(|_| None);
    /// assert!(!config.get_metrics().value);
    /// let config = traced::Config::default()
    ///     .with_env_from(|name| (name == "OTEL_METRICS_EXPORTER").then(|| "none".to_string()));
    /// assert!(!config.get_metrics().value);
    /// ```
    #[must_use]
    pub fn metrics(mut self, metrics: bool) -> Self {
        self.metrics.code(metrics);
        self
    }

    /// Sets `service.name`.
    #[must_use]
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name.code(Some(name.into()));
        self
    }

    /// Adds a resource attribute.
    #[must_use]
    pub fn resource_attribute(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let mut attributes = std::mem::take(&mut self.resource_attributes.value);
        attributes.push((key.into(), value.into()));
        self.resource_attributes.code(attributes);
        self
    }

    /// Keeps this fraction of new root traces; children follow their parent.
    #[must_use]
    pub fn sample_rate(mut self, ratio: f64) -> Self {
        self.sampler.code(Sampler::ParentBasedTraceIdRatio(ratio.clamp(0.0, 1.0)));
        self
    }

    /// Sets the sampler.
    #[must_use]
    pub fn sampler(mut self, sampler: Sampler) -> Self {
        self.sampler.code(sampler);
        self
    }

    /// Sets where spans go.
    #[must_use]
    pub fn exporters(mut self, exporters: impl IntoIterator<Item = ExporterKind>) -> Self {
        self.exporters.code(exporters.into_iter().collect());
        self.exporters_chosen_in_code = true;
        self
    }

    /// Sends spans over OTLP to this endpoint: a base URL (`/v1/traces` is
    /// appended for HTTP), as `OTEL_EXPORTER_OTLP_ENDPOINT`.
    #[must_use]
    pub fn otlp_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.otlp.endpoint.code(Some(endpoint.into()));
        self.otlp_endpoint_is_base = true;
        self
    }

    /// Sets the OTLP protocol.
    #[must_use]
    pub fn otlp_protocol(mut self, protocol: Protocol) -> Self {
        self.otlp.protocol.code(protocol);
        self
    }

    /// Adds an OTLP request header (an API key, say).
    #[must_use]
    pub fn otlp_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let mut headers = std::mem::take(&mut self.otlp.headers.value);
        headers.insert(name, value);
        self.otlp.headers.code(headers);
        self
    }

    /// Trusts the CA certificates in this PEM file besides the public roots.
    #[must_use]
    pub fn otlp_certificate(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.otlp.certificate.code(Some(path.into()));
        self
    }

    /// Sets the timeout of one OTLP request.
    #[must_use]
    pub fn otlp_timeout(mut self, timeout: Duration) -> Self {
        self.otlp.timeout.code(timeout);
        self
    }

    /// Presents this client certificate and key (PEM files) to a receiver
    /// that requires mutual TLS.
    #[must_use]
    pub fn otlp_client_identity(
        mut self,
        certificate: impl Into<std::path::PathBuf>,
        key: impl Into<std::path::PathBuf>,
    ) -> Self {
        self.otlp.client_identity.code(Some((certificate.into(), key.into())));
        self
    }

    /// How long a request that failed while the collector was away waits for
    /// it, retried oldest first, before it is dropped and counted (as
    /// `TRACED_RETRY_MAX_ELAPSED_TIME_MS`); `Duration::ZERO` drops it at
    /// once.
    ///
    /// ```
    /// use std::time::Duration;
    /// let config = traced::Config::default().retry_max_elapsed_time(Duration::from_secs(30)).with_env_from(|_| None);
    /// assert_eq!(config.get_retry_max_elapsed().value, Duration::from_secs(30));
    /// ```
    #[must_use]
    pub fn retry_max_elapsed_time(mut self, elapsed: Duration) -> Self {
        self.retry_max_elapsed.code(elapsed);
        self
    }

    /// Sets the most one OTLP request may carry, encoded: a larger batch is
    /// sent as several requests, and a span larger on its own has its largest
    /// values cut with a marker.
    #[must_use]
    pub fn otlp_max_request_bytes(mut self, bytes: usize) -> Self {
        self.otlp.max_request_bytes.code(Some(bytes));
        self
    }

    /// Sets the most memory spans waiting for export may take, per exporter
    /// (64 MiB by default); more are dropped and counted.
    #[must_use]
    pub fn span_buffer_bytes(mut self, bytes: usize) -> Self {
        self.span_buffer_bytes.code(bytes.max(1));
        self
    }

    /// Keeps every trace with a failed span, whatever head sampling decided.
    ///
    /// ```
    /// let config = traced::Config::default().sample_rate(0.01).keep_errors(true).with_env_from(|_| None);
    /// assert!(config.get_keep().errors.value);
    /// ```
    #[must_use]
    pub fn keep_errors(mut self, keep: bool) -> Self {
        self.keep.errors.code(keep);
        self
    }

    /// Keeps every trace whose root took longer than `threshold`, whatever
    /// head sampling decided.
    #[must_use]
    pub fn keep_slower_than(mut self, threshold: Duration) -> Self {
        self.keep.slower_than.code(Some(threshold));
        self
    }

    /// Exports to a hosted backend preset: endpoint and auth header from a key.
    #[must_use]
    pub fn backend(mut self, backend: Backend) -> Self {
        self.backend.code(Some(backend));
        self
    }

    /// Sets the grace period between SIGTERM and a forced exit.
    #[must_use]
    pub fn grace_period(mut self, grace: Duration) -> Self {
        self.grace_period.code(grace);
        self
    }

    /// Sets how long the final flush may take.
    #[must_use]
    pub fn flush_budget(mut self, budget: Duration) -> Self {
        self.flush_budget.code(budget);
        self
    }

    /// Sets the batch processor's delay before a partial batch is sent.
    #[must_use]
    pub fn schedule_delay(mut self, delay: Duration) -> Self {
        self.batch.schedule_delay.code(delay);
        self
    }

    /// Sets the batch processor's queue size.
    #[must_use]
    pub fn max_queue_size(mut self, size: usize) -> Self {
        self.batch.max_queue_size.code(NonZeroUsize::new(size.max(1)));
        self
    }

    /// Sets the spans sent per export request.
    #[must_use]
    pub fn max_export_batch_size(mut self, size: usize) -> Self {
        self.batch.max_export_batch_size.code(size.max(1));
        self
    }

    /// Cuts longer string attribute values to this many characters.
    #[must_use]
    pub fn attribute_value_length_limit(mut self, limit: usize) -> Self {
        self.attribute_value_length_limit.code(Some(limit));
        self
    }

    /// Also sends spans to this exporter (tests, benchmarks, custom backends),
    /// through a batch processor of its own.
    #[must_use]
    pub fn span_exporter<E>(mut self, exporter: E) -> Self
    where
        E: opentelemetry_sdk::trace::SpanExporter + 'static,
    {
        let boxed: Box<dyn DynExporter> = Box::new(Sdk(exporter));
        self.custom_exporters.push(Arc::new(Mutex::new(Some(boxed))));
        self
    }

    /// Overrides the code defaults with the process environment.
    #[must_use]
    pub fn with_env(self) -> Self {
        self.with_env_from(|name| std::env::var(name).ok())
    }

    /// Overrides the code defaults with variables from `lookup` (tests, or a
    /// configuration source other than the process environment).
    #[must_use]
    pub fn with_env_from(mut self, lookup: impl Fn(&str) -> Option<String>) -> Self {
        let mut env = Env::new(&lookup);
        self.apply_env(&mut env);
        self.warnings.extend(env.warnings);
        self.env_applied = true;
        self
    }

    pub(crate) fn resolved(self) -> Self {
        if self.env_applied { self } else { self.with_env() }
    }
}
