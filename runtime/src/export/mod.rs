//! The export layer: configuration from the environment, the provider and
//! its bounded shutdown, batching, the exporters, and the doctor. It installs
//! its tracer and flush hook into the core, and knows nothing of serving.

pub(crate) mod backend;
pub(crate) mod config;
pub(crate) mod console;
pub(crate) mod diagnosis;

pub mod doctor;
pub(crate) mod dyn_exporter;
pub(crate) mod env;
pub(crate) mod finished_sink;
pub(crate) mod global_provider;
#[cfg(feature = "grpc")]
pub(crate) mod grpc_partial_success;
pub(crate) mod local_root;
pub(crate) mod messages;
pub mod otlp;
pub(crate) mod otlp_config;
pub(crate) mod otlp_direct;
pub(crate) mod otlp_encoding;
pub(crate) mod otlp_env;
#[cfg(feature = "grpc")]
pub(crate) mod otlp_grpc;
pub(crate) mod otlp_headers;
pub(crate) mod otlp_http_client;
pub(crate) mod processor;
pub(crate) mod provider;
pub(crate) mod record_everything;
pub(crate) mod rejections;
pub(crate) mod request_size;
pub(crate) mod setting;
pub(crate) mod span_queue;
#[cfg(test)]
pub(crate) mod test_finished;
#[cfg(test)]
pub(crate) mod test_span;
pub(crate) mod trace_hold;
pub(crate) mod url;
pub mod vars;
pub(crate) mod waiting;
