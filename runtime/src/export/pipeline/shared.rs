//! What a processor's handles and its export thread share: the settings,
//! the control messages, the queue, the counters and the flags a flush or
//! shutdown leaves.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use crate::export::otlp::rejections::Rejections;
use crate::export::pipeline::span_queue::SpanQueue;
use crate::export::pipeline::stats::Counters;
use crate::export::pipeline::trace_hold::KeepRules;

/// How often the export thread looks for refused spans to report.
pub(super) const REPORT_EVERY: Duration = Duration::from_secs(1);

/// A failure this close to the deadline counts as running out of budget.
pub(super) const DEADLINE_EDGE: Duration = Duration::from_millis(50);

/// How one processor batches and exports.
#[derive(Clone, Debug)]
pub(crate) struct ProcessorSettings {
    pub name: String,
    pub max_queue_size: usize,
    pub max_queue_bytes: usize,
    /// Whole-trace rules: unsampled spans are taken and held until their
    /// root ends.
    pub keep: Option<KeepRules>,
    pub max_export_batch_size: usize,
    pub schedule_delay: Duration,
    pub export_timeout: Duration,
    pub value_length_limit: Option<usize>,
    pub flush_budget: Duration,
    /// OTLP: the most one request may carry; a larger batch is split.
    pub max_request_bytes: Option<usize>,
    /// OTLP: where the exporter counts spans a receiver rejected.
    pub rejections: Option<Arc<Rejections>>,
    /// Give traced's spans that have no OpenInference kind the default,
    /// `CHAIN` (every exporter but the console, which would only repeat it).
    pub default_ai_kind: bool,
    /// How long a request that failed while the collector was away may wait
    /// for it (zero: it is dropped at once).
    pub retry_max_elapsed: Duration,
    /// OTLP over http/json: NaN and infinite values are sent as the text
    /// proto3 JSON gives them, which the library would write as `null`.
    pub non_finite_as_text: bool,
}

pub(super) enum Control {
    Flush { deadline: Instant, done: std::sync::mpsc::Sender<()> },
    Shutdown { deadline: Instant, done: std::sync::mpsc::Sender<()> },
}

#[derive(Debug)]
pub(super) struct Shared {
    pub(super) name: String,
    pub(super) spans: Arc<SpanQueue>,
    pub(super) control: mpsc::UnboundedSender<Control>,
    pub(super) hard_deadline: watch::Sender<Option<Instant>>,
    pub(super) counters: Counters,
    /// Unsampled spans are taken too (a keep rule is on).
    pub(super) takes_unsampled: bool,
    pub(super) is_shutdown: AtomicBool,
    /// Set when a flush or shutdown ran out of time with spans unsent.
    pub(super) cut_short: AtomicBool,
    /// Set when the shutdown found the collector away, spans waiting for it.
    pub(super) away_at_shutdown: AtomicBool,
    pub(super) flush_budget: Duration,
}
