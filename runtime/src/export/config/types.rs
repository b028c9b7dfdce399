//! The settings' own types: samplers, exporter kinds, batch tuning and
//! keep rules.

use std::num::NonZeroUsize;
use std::time::Duration;

use crate::export::config::setting::Setting;

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
