//! What each processor counts: exported, and every way a span was lost.

use std::sync::atomic::{AtomicU64, Ordering};

/// Span counts of one processor, or of all of them added up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportStats {
    /// Spans the receiver accepted.
    pub exported: u64,
    /// Spans dropped because the queue was full.
    pub dropped_queue_full: u64,
    /// Spans in export requests that failed or timed out.
    pub dropped_export_failed: u64,
    /// Spans still queued when the flush budget ran out, or ended after shutdown.
    pub dropped_at_shutdown: u64,
    /// Spans the receiver took the request for but rejected (OTLP partial
    /// success).
    pub dropped_rejected: u64,
    /// Spans of traces held for a keep rule, dropped past the memory bound
    /// of held traces.
    pub dropped_held: u64,
    /// Spans of traces held for a keep rule that no rule kept: sampled out,
    /// as head sampling decided (not a loss).
    pub sampled_out: u64,
}

impl ExportStats {
    /// All dropped spans.
    pub fn dropped(&self) -> u64 {
        self.dropped_queue_full
            + self.dropped_export_failed
            + self.dropped_at_shutdown
            + self.dropped_rejected
            + self.dropped_held
    }

    pub(crate) fn add(&mut self, other: ExportStats) {
        self.exported += other.exported;
        self.dropped_queue_full += other.dropped_queue_full;
        self.dropped_export_failed += other.dropped_export_failed;
        self.dropped_at_shutdown += other.dropped_at_shutdown;
        self.dropped_rejected += other.dropped_rejected;
        self.dropped_held += other.dropped_held;
        self.sampled_out += other.sampled_out;
    }
}

#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) enqueued: AtomicU64,
    pub(super) exported: AtomicU64,
    pub(super) dropped_queue_full: AtomicU64,
    pub(super) dropped_export_failed: AtomicU64,
    pub(super) dropped_at_shutdown: AtomicU64,
    pub(super) dropped_rejected: AtomicU64,
    pub(super) dropped_held: AtomicU64,
    pub(super) sampled_out: AtomicU64,
}

impl Counters {
    pub(super) fn snapshot(&self) -> ExportStats {
        ExportStats {
            exported: self.exported.load(Ordering::Relaxed),
            dropped_queue_full: self.dropped_queue_full.load(Ordering::Relaxed),
            dropped_export_failed: self.dropped_export_failed.load(Ordering::Relaxed),
            dropped_at_shutdown: self.dropped_at_shutdown.load(Ordering::Relaxed),
            dropped_rejected: self.dropped_rejected.load(Ordering::Relaxed),
            dropped_held: self.dropped_held.load(Ordering::Relaxed),
            sampled_out: self.sampled_out.load(Ordering::Relaxed),
        }
    }

    /// Spans accepted into the queue and not yet accounted for.
    pub(super) fn in_flight(&self) -> u64 {
        let settled = self.exported.load(Ordering::Relaxed)
            + self.dropped_export_failed.load(Ordering::Relaxed)
            + self.dropped_at_shutdown.load(Ordering::Relaxed)
            + self.dropped_rejected.load(Ordering::Relaxed)
            + self.dropped_held.load(Ordering::Relaxed)
            + self.sampled_out.load(Ordering::Relaxed);
        self.enqueued.load(Ordering::Relaxed).saturating_sub(settled)
    }
}
