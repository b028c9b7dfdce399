//! The batch span processor: a bounded queue in front of one export thread
//! that owns its own tokio runtime.
//!
//! The SDK's processor is avoided on purpose: its `force_flush` waits a fixed
//! 5 s, it does not count what it drops, and its exporters depend on which
//! reqwest client happens to be in the dependency graph. Here every wait is
//! bounded by a deadline the caller chooses, a hung collector is abandoned at
//! that deadline, and callers may sit inside any tokio runtime (current-thread
//! included) because nothing is ever awaited on theirs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanProcessor};
use tokio::sync::{mpsc, watch};

use traced_core::__layers::{FinishedSpans, collect_pending};

use crate::export::exporter::DynExporter;
use crate::export::local_root::is_local_root;
use crate::export::otlp::encoding::OtlpEncoding;
#[cfg(feature = "grpc")]
use crate::export::otlp::grpc_partial_success::PartialSuccessListener;
use crate::export::pipeline::shared::{Control, ProcessorSettings, Shared};
use crate::export::pipeline::span_queue::{Queued, Refused, Room, SpanQueue};
use crate::export::pipeline::stats::{Counters, ExportStats};
use crate::export::pipeline::trace_hold::TraceHold;
use crate::export::pipeline::waiting::Waiting;
use crate::export::pipeline::worker::Worker;

/// A cheap handle; the SDK provider holds one, the runtime another.
#[derive(Clone, Debug)]
pub(crate) struct BatchProcessor {
    shared: Arc<Shared>,
}

impl BatchProcessor {
    /// Starts the export thread with the exporter `make` builds, inside the
    /// thread's runtime (a gRPC channel starts its tasks when it is made).
    pub(crate) fn spawn(
        make: impl FnOnce() -> Result<Box<dyn DynExporter>, String>,
        settings: ProcessorSettings,
        resource: &opentelemetry_sdk::Resource,
    ) -> Result<Self, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("no runtime for the export thread: {e}"))?;
        let mut exporter = {
            let _inside = runtime.enter();
            make()?
        };
        exporter.set_resource(resource);
        let spans =
            Arc::new(SpanQueue::new(settings.max_queue_size, settings.max_queue_bytes, settings.max_export_batch_size));
        let (control_tx, control_rx) = mpsc::unbounded_channel();
        let (deadline_tx, deadline_rx) = watch::channel(None);
        let shared = Arc::new(Shared {
            name: settings.name.clone(),
            spans: Arc::clone(&spans),
            control: control_tx,
            hard_deadline: deadline_tx,
            counters: Counters::default(),
            takes_unsampled: settings.keep.is_some(),
            is_shutdown: AtomicBool::new(false),
            cut_short: AtomicBool::new(false),
            away_at_shutdown: AtomicBool::new(false),
            flush_budget: settings.flush_budget,
        });
        let encoding = match exporter.sends_encoded() {
            true if settings.keep.is_none() => Some(OtlpEncoding::new(
                resource,
                settings.value_length_limit,
                settings.default_ai_kind,
                settings.max_request_bytes.unwrap_or(usize::MAX),
                settings.max_export_batch_size,
            )),
            _ => None,
        };
        #[cfg(feature = "grpc")]
        let settings_rejections = settings.rejections.clone();
        let worker = Worker {
            waiting: Waiting::new(settings.retry_max_elapsed),
            resource_for_waiting: resource.into(),
            kept: Room::default(),
            shutting_down: false,
            warned_expired: false,
            warned_full: false,
            hold: settings.keep.map(TraceHold::new),
            encoding,
            exporter,
            settings,
            spans,
            control: control_rx,
            hard_deadline: deadline_rx,
            shared: Arc::downgrade(&shared),
            failing: false,
            warned_cut: false,
            warned_non_finite: false,
            warned_rejected: false,
            warned_held: false,
            #[cfg(feature = "grpc")]
            listener: settings_rejections.map(|rejections| tracing::Dispatch::new(PartialSuccessListener(rejections))),
        };
        std::thread::Builder::new()
            .name("traced-export".into())
            .spawn(move || runtime.block_on(worker.run()))
            .map_err(|e| format!("the export thread did not start: {e}"))?;
        Ok(BatchProcessor { shared })
    }

    /// Queues a thread's finished spans from traced's own span core.
    pub(crate) fn take_finished(&self, finished: Arc<FinishedSpans>) {
        self.shared.counters.dropped_queue_full.fetch_add(finished.dropped(), Ordering::Relaxed);
        if !finished.is_empty() {
            self.queue(Queued::Finished(finished));
        }
    }

    fn queue(&self, item: Queued) {
        let counters = &self.shared.counters;
        let count = item.spans() as u64;
        match self.shared.spans.push(item) {
            Ok(()) => counters.enqueued.fetch_add(count, Ordering::Relaxed),
            Err(Refused::Full) => counters.dropped_queue_full.fetch_add(count, Ordering::Relaxed),
            Err(Refused::Closed) => counters.dropped_at_shutdown.fetch_add(count, Ordering::Relaxed),
        };
    }

    pub(crate) fn stats(&self) -> ExportStats {
        self.shared.counters.snapshot()
    }

    /// True when a flush or shutdown ran out of budget before all was sent.
    pub(crate) fn was_cut_short(&self) -> bool {
        self.shared.cut_short.load(Ordering::Relaxed)
    }

    /// True when the shutdown found the collector away.
    pub(crate) fn was_away_at_shutdown(&self) -> bool {
        self.shared.away_at_shutdown.load(Ordering::Relaxed)
    }

    pub(crate) fn name(&self) -> &str {
        &self.shared.name
    }

    /// Exports everything queued; returns once done or at `deadline`.
    pub(crate) fn flush_until(&self, deadline: Instant) -> OTelSdkResult {
        if self.shared.is_shutdown.load(Ordering::Acquire) {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        let (done, wait) = std::sync::mpsc::channel();
        self.shared.control.send(Control::Flush { deadline, done }).map_err(|_| OTelSdkError::AlreadyShutdown)?;
        wait_until(&wait, deadline)
    }

    /// Starts the shutdown; `wait_shutdown` collects it. Split so that several
    /// processors share one deadline instead of each taking a full budget.
    pub(crate) fn begin_shutdown(&self, deadline: Instant) -> Option<std::sync::mpsc::Receiver<()>> {
        if self.shared.is_shutdown.swap(true, Ordering::AcqRel) {
            return None;
        }
        self.shared.hard_deadline.send_replace(Some(deadline));
        let (done, wait) = std::sync::mpsc::channel();
        self.shared.control.send(Control::Shutdown { deadline, done }).ok()?;
        Some(wait)
    }

    pub(crate) fn wait_shutdown(
        &self,
        wait: Option<std::sync::mpsc::Receiver<()>>,
        deadline: Instant,
    ) -> OTelSdkResult {
        let Some(wait) = wait else { return Err(OTelSdkError::AlreadyShutdown) };
        let result = wait_until(&wait, deadline);
        if result.is_err() {
            self.shared.cut_short.store(true, Ordering::Relaxed);
            // The export thread is stuck on a collector past the budget; what it
            // still holds will never be sent.
            let stranded = self.shared.counters.in_flight();
            self.shared.counters.dropped_at_shutdown.fetch_add(stranded, Ordering::Relaxed);
        }
        result
    }
}

fn wait_until(wait: &std::sync::mpsc::Receiver<()>, deadline: Instant) -> OTelSdkResult {
    // A little slack lets a worker that stopped exactly at the deadline report.
    let slack = Duration::from_millis(20);
    match wait.recv_timeout(deadline.saturating_duration_since(Instant::now()) + slack) {
        Ok(()) => Ok(()),
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(OTelSdkError::Timeout(Duration::ZERO)),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(OTelSdkError::AlreadyShutdown),
    }
}

impl SpanProcessor for BatchProcessor {
    fn on_start(&self, _span: &mut opentelemetry_sdk::trace::Span, _cx: &opentelemetry::Context) {}

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() && !self.shared.takes_unsampled {
            return;
        }
        if is_local_root(&span) {
            // A trace's local root: the spans traced's own core recorded for
            // it (on any thread) go first, so exporters that wait for the
            // root see the trace whole.
            collect_pending();
        }
        self.queue(Queued::Span(span));
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.flush_until(Instant::now() + self.shared.flush_budget)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        let deadline = Instant::now() + timeout.min(self.shared.flush_budget);
        let wait = self.begin_shutdown(deadline);
        self.wait_shutdown(wait, deadline)
    }
}
