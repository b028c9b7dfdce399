//! The pipeline room: finished spans into a bounded queue, out in batches
//! through an exporter on a thread of its own, traces held for the keep
//! rules, requests waiting while the collector is away, and what each
//! processor counts. It drives any exporter through the door
//! (`export::exporter`).

pub(crate) mod finished_sink;
pub(crate) mod processor;
pub(crate) mod shared;
pub(crate) mod span_edits;
pub(crate) mod span_queue;
pub(crate) mod stats;
pub(crate) mod trace_hold;
pub(crate) mod waiting;
pub(crate) mod worker;
