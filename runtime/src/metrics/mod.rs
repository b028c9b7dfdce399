//! Metrics: what every request took, counted before sampling with sampled
//! traces as exemplars, and the app's own instruments, served to Prometheus.

pub(crate) mod exposition;
pub(crate) mod histogram;
pub(crate) mod instrument_exposition;
pub(crate) mod instruments;
pub(crate) mod otlp_push;
#[cfg(feature = "serve")]
pub(crate) mod request_measure;
pub(crate) mod request_metrics;
pub(crate) mod scrape;
