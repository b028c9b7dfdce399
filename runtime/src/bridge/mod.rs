//! Bridges from the instrumentation users already have: `tracing` spans and
//! events become part of the current traced trace, and log lines can name
//! it.

pub(crate) mod fields;
pub(crate) mod log_ids;
pub(crate) mod tracing_layer;
