//! Environment → [`Config`]: every variable is parsed, checked and reported here.
//!
//! Code sets defaults with the builder methods; the environment overrides them,
//! the way platform secrets override what was deployed. Each value remembers
//! where it came from so `traced-doctor` can say why it is what it is.

use std::fmt;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::export::backend::Backend;
use crate::export::dyn_exporter::{DynExporter, Sdk, SharedExporter};
use crate::export::env::{ConfigWarning, Env, parse_key_value};
pub use crate::export::otlp_config::{OtlpConfig, Protocol};
use crate::export::otlp_env;
use crate::export::setting::{Setting, Source};
use crate::export::url::redact_url;
use crate::export::vars;

/// How new root spans are sampled. Spans with a parent follow it unless the
/// sampler is one of the non-`ParentBased` kinds.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum Sampler {
    /// Record every span, ignoring the parent's decision.
    AlwaysOn,
    /// Record nothing.
    AlwaysOff,
    /// Keep this fraction of traces, ignoring the parent's decision.
    TraceIdRatio(f64),
    /// Follow the parent; roots always sampled.
    ParentBasedAlwaysOn,
    /// Follow the parent; roots never sampled.
    ParentBasedAlwaysOff,
    /// Follow the parent; keep this fraction of new roots (the default, at 1.0).
    ParentBasedTraceIdRatio(f64),
}

/// Where finished spans go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExporterKind {
    /// OTLP to a collector or backend.
    Otlp,
    /// Each finished trace printed to stderr as a tree.
    Console,
    /// Spans are created (context still propagates) but not exported.
    None,
}

/// The batch span processor's tuning (`OTEL_BSP_*`).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct BatchConfig {
    /// Spans buffered before new ones are dropped (and counted); `None`,
    /// unless set: no limit in spans (`span_buffer_bytes` bounds the buffer).
    pub max_queue_size: Setting<Option<NonZeroUsize>>,
    /// Spans per export request.
    pub max_export_batch_size: Setting<usize>,
    /// How long spans wait before a partial batch is sent.
    pub schedule_delay: Setting<Duration>,
    /// The longest one export may take.
    pub export_timeout: Setting<Duration>,
}

/// Traces kept whole by their outcome although head sampling dropped them
/// (`TRACED_KEEP_*`). With a rule on, every span is recorded until its
/// trace's root ends; with none, head sampling alone decides, as before.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct KeepConfig {
    /// Keep every trace with a failed span.
    pub errors: Setting<bool>,
    /// Keep every trace whose root took longer than this.
    pub slower_than: Setting<Option<Duration>>,
    /// The most memory traces waiting for their root may take, per exporter.
    pub max_held_bytes: Setting<usize>,
}

impl KeepConfig {
    /// True when a rule is on.
    pub fn any(&self) -> bool {
        self.errors.value || self.slower_than.value.is_some()
    }
}

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
const DEFAULT_OTLP_ENDPOINT: &str = "http://localhost:4318";
const DEFAULT_OTLP_GRPC_ENDPOINT: &str = "http://localhost:4317";

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

impl Config {
    fn apply_env(&mut self, env: &mut Env<'_>) {
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

fn queue_size_text(size: Option<NonZeroUsize>) -> String {
    size.map_or_else(|| "no limit".to_string(), |size| size.to_string())
}

fn on_off(enabled: bool) -> &'static str {
    if enabled { "on" } else { "off" }
}

fn exporter_names(kinds: &[ExporterKind]) -> String {
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
