//! The export layer: configuration from the environment, the provider and
//! its bounded shutdown, batching, the exporters, and the doctor. It installs
//! its tracer and flush hook into the core, and knows nothing of serving.
//!
//! Its rooms, lowest first: `config/` (the types and builder, the
//! environment, the description the doctor prints) depends on nothing above
//! it but the exporter door (`exporter.rs`, `failure.rs`) and `url.rs`;
//! `otlp/` (the library's exporter, traced's encoder and transport, request
//! sizing, failure diagnosis) never reaches into `pipeline/`; `pipeline/`
//! (the batch processor, its queue, held traces, what waits for a collector
//! that is away, the collection of the core's buffers) drives any exporter
//! through the door; `provider.rs` puts them together.
//! `scripts/module_cycles.py` checks those rules.

pub(crate) mod config;
pub(crate) mod console;
pub mod doctor;
pub(crate) mod exporter;
pub(crate) mod failure;
pub(crate) mod global_provider;
pub(crate) mod local_root;
pub(crate) mod messages;
pub mod otlp;
pub(crate) mod pipeline;
pub(crate) mod provider;
pub(crate) mod record_everything;
pub(crate) mod sdk_tracer;
pub(crate) mod span_data_conversion;
#[cfg(test)]
pub(crate) mod test_finished;
#[cfg(test)]
pub(crate) mod test_span;
pub(crate) mod url;
