//! The names of the variables this crate reads besides the standard ones.

/// `false` turns tracing off: no provider, no threads.
pub const ENABLE_TRACING: &str = "ENABLE_TRACING";
/// Ratio of new root traces kept, under a parent-based sampler.
pub const SAMPLE_RATE: &str = "OTEL_SAMPLE_RATE";
/// `none` turns the metrics off; `otlp` pushes them too, `prometheus` alone
/// only serves them on `/metrics` (unset: both, the push where traces go
/// over OTLP, http/protobuf or gRPC).
pub const METRICS_EXPORTER: &str = "OTEL_METRICS_EXPORTER";
/// Milliseconds between two OTLP metrics pushes.
pub const METRIC_EXPORT_INTERVAL: &str = "OTEL_METRIC_EXPORT_INTERVAL";
/// `cumulative`, `delta` or `lowmemory`: the pushed metrics' temporality.
pub const METRICS_TEMPORALITY: &str = "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE";
/// The full URL OTLP metrics are pushed to.
pub const METRICS_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT";
/// Milliseconds a request that failed while the collector was away may
/// wait for it (the OpenTelemetry Collector's
/// `retry_on_failure.max_elapsed_time`); `0` drops it at once.
pub const RETRY_MAX_ELAPSED_TIME: &str = "TRACED_RETRY_MAX_ELAPSED_TIME_MS";
/// `off` silences traced's own messages (warnings, export failures, the
/// shutdown report), which otherwise go to the app's `tracing` subscriber
/// or, without one, to stderr.
pub const LOG: &str = "TRACED_LOG";
/// Milliseconds from SIGTERM to a forced exit.
pub const GRACE_PERIOD: &str = "TRACED_GRACE_PERIOD_MS";
/// Milliseconds given to the final flush.
pub const FLUSH_BUDGET: &str = "TRACED_FLUSH_BUDGET_MS";
/// The most bytes one OTLP request carries, encoded.
pub const MAX_REQUEST_BYTES: &str = "TRACED_OTLP_MAX_REQUEST_BYTES";
/// The most memory, in bytes, spans waiting for export may take (per
/// exporter); more are dropped and counted.
pub const SPAN_BUFFER_BYTES: &str = "TRACED_SPAN_BUFFER_BYTES";
/// `true`: a trace head sampling dropped is kept whole when one of its spans
/// failed.
pub const KEEP_ERRORS: &str = "TRACED_KEEP_ERRORS";
/// A trace head sampling dropped is kept whole when its root took longer
/// than this many milliseconds.
pub const KEEP_SLOWER_THAN_MS: &str = "TRACED_KEEP_SLOWER_THAN_MS";
/// The most memory, in bytes, traces waiting for their root's end may take
/// (per exporter); past it the oldest is dropped and counted.
pub const HELD_TRACES_BYTES: &str = "TRACED_HELD_TRACES_BYTES";
/// A hosted backend preset: `honeycomb`, `honeycomb-eu`, `datadog-us`, `datadog-eu`,
/// `newrelic-us`, `newrelic-eu`, `grafana`.
pub const BACKEND: &str = "TRACED_BACKEND";
/// The preset backend's API key (Grafana: the access token).
pub const BACKEND_KEY: &str = "TRACED_BACKEND_KEY";
/// Grafana Cloud's instance id.
pub const GRAFANA_INSTANCE_ID: &str = "TRACED_GRAFANA_INSTANCE_ID";
/// Grafana Cloud's zone, e.g. `prod-us-east-0`.
pub const GRAFANA_ZONE: &str = "TRACED_GRAFANA_ZONE";
