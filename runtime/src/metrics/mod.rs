//! Request metrics: what every request took, counted before sampling, with
//! sampled traces as exemplars, and served to Prometheus.

pub(crate) mod exposition;
pub(crate) mod histogram;
pub(crate) mod request_metrics;
pub(crate) mod scrape;
