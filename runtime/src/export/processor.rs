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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use opentelemetry::{Array, KeyValue, StringValue, Value};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanProcessor};
use prost::Message as _;
use tokio::sync::{mpsc, watch};

use traced_core::__layers::{AI_KIND_KEY, AiKind, FinishedSpans, SpanDataConversion, collect_pending, has_ai_kind};

use crate::export::diagnosis::ExportFailure;
use crate::export::dyn_exporter::DynExporter;
#[cfg(feature = "grpc")]
use crate::export::grpc_partial_success::PartialSuccessListener;
use crate::export::local_root::is_local_root;
use crate::export::messages;
use crate::export::otlp_encoding::{EncodedRequest, OtlpEncoding};
use crate::export::rejections::Rejections;
use crate::export::request_size::{TRUNCATION_MARKER, split_to_fit};
use crate::export::span_queue::{Queued, Refused, Room, SpanQueue, held_bytes};
use crate::export::trace_hold::{KeepRules, TraceHold};
use crate::export::waiting::{Payload, Waiting, WaitingRequest, gunzipped};

/// How often the export thread looks for refused spans to report.
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// A failure this close to the deadline counts as running out of budget.
const DEADLINE_EDGE: Duration = Duration::from_millis(50);

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
}

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
struct Counters {
    enqueued: AtomicU64,
    exported: AtomicU64,
    dropped_queue_full: AtomicU64,
    dropped_export_failed: AtomicU64,
    dropped_at_shutdown: AtomicU64,
    dropped_rejected: AtomicU64,
    dropped_held: AtomicU64,
    sampled_out: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> ExportStats {
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
    fn in_flight(&self) -> u64 {
        let settled = self.exported.load(Ordering::Relaxed)
            + self.dropped_export_failed.load(Ordering::Relaxed)
            + self.dropped_at_shutdown.load(Ordering::Relaxed)
            + self.dropped_rejected.load(Ordering::Relaxed)
            + self.dropped_held.load(Ordering::Relaxed)
            + self.sampled_out.load(Ordering::Relaxed);
        self.enqueued.load(Ordering::Relaxed).saturating_sub(settled)
    }
}

enum Control {
    Flush { deadline: Instant, done: std::sync::mpsc::Sender<()> },
    Shutdown { deadline: Instant, done: std::sync::mpsc::Sender<()> },
}

#[derive(Debug)]
struct Shared {
    name: String,
    spans: Arc<SpanQueue>,
    control: mpsc::UnboundedSender<Control>,
    hard_deadline: watch::Sender<Option<Instant>>,
    counters: Counters,
    /// Unsampled spans are taken too (a keep rule is on).
    takes_unsampled: bool,
    is_shutdown: AtomicBool,
    /// Set when a flush or shutdown ran out of time with spans unsent.
    cut_short: AtomicBool,
    /// Set when the shutdown found the collector away, spans waiting for it.
    away_at_shutdown: AtomicBool,
    flush_budget: Duration,
}

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

/// How a send ended.
enum Sent {
    Ok,
    /// `may_wait`: worth keeping for a collector that comes back;
    /// `asked`: how long the receiver asked to wait.
    Failed {
        error: OTelSdkError,
        may_wait: bool,
        asked: Option<Duration>,
    },
}

struct Worker {
    /// Requests that failed while the collector was away.
    waiting: Waiting,
    /// What the SDK's spans that wait are encoded with.
    resource_for_waiting: ResourceAttributesWithSchema,
    /// Room of the batch being settled that requests set aside keep.
    kept: Room,
    shutting_down: bool,
    warned_expired: bool,
    warned_full: bool,
    /// Where the OTLP library's log of a gRPC partial success is heard:
    /// this thread's subscriber while the library exports, and only then,
    /// so that traced's own messages reach the app's.
    #[cfg(feature = "grpc")]
    listener: Option<tracing::Dispatch>,
    hold: Option<TraceHold>,
    /// How traced's own spans are encoded when the exporter takes encoded
    /// requests (OTLP over http/protobuf or gRPC) and no keep rule is on.
    encoding: Option<OtlpEncoding>,
    exporter: Box<dyn DynExporter>,
    settings: ProcessorSettings,
    spans: Arc<SpanQueue>,
    control: mpsc::UnboundedReceiver<Control>,
    hard_deadline: watch::Receiver<Option<Instant>>,
    shared: std::sync::Weak<Shared>,
    failing: bool,
    warned_cut: bool,
    warned_rejected: bool,
    warned_held: bool,
}

impl Worker {
    async fn run(mut self) {
        let spans = Arc::clone(&self.spans);
        let mut send_at: Option<tokio::time::Instant> = None;
        loop {
            tokio::select! {
                biased;
                control = self.control.recv() => match control {
                    // Every handle is gone without a shutdown.
                    None => return,
                    Some(Control::Flush { deadline, done }) => {
                        self.retry_waiting(&spans, Some(deadline)).await;
                        self.drain(&spans, deadline).await;
                        send_at = None;
                        let _ = done.send(());
                    }
                    Some(Control::Shutdown { deadline, done }) => {
                        self.shutting_down = true;
                        self.retry_waiting(&spans, Some(deadline)).await;
                        self.drain(&spans, deadline).await;
                        self.release_held(deadline).await;
                        let queued = spans.close() as u64;
                        if queued > 0 {
                            self.mark_cut_short();
                        }
                        // What still waits for the collector is unsent too.
                        let waited = self.waiting.spans();
                        self.waiting.take_all();
                        if waited > 0 && let Some(shared) = self.shared.upgrade() {
                            shared.away_at_shutdown.store(true, Ordering::Relaxed);
                        }
                        self.count(|c| &c.dropped_at_shutdown, queued + waited);
                        let _ = self.exporter.shutdown_with_timeout(deadline.saturating_duration_since(Instant::now()));
                        let _ = done.send(());
                        return;
                    }
                },
                () = spans.signalled() => {}
                // Refused spans wake no one: a look every second tells.
                () = tokio::time::sleep(REPORT_EVERY), if !self.warned_full => {}
                () = sleep_until(self.waiting.next_try().map(Into::into)), if !self.waiting.is_empty() => {
                    self.retry_waiting(&spans, None).await;
                }
                () = sleep_until(send_at), if send_at.is_some() => {
                    self.export_next(&spans, None).await;
                    send_at = None;
                }
            }
            self.report_full();
            while spans.has_full_batch() {
                self.export_next(&spans, None).await;
                send_at = None;
            }
            // Spans left over wait at most one schedule delay.
            if spans.len() > 0 && send_at.is_none() {
                send_at = Some(tokio::time::Instant::now() + self.settings.schedule_delay);
            }
        }
    }

    /// Exports everything queued, in batches, until empty or `deadline`.
    async fn drain(&mut self, spans: &SpanQueue, deadline: Instant) {
        while Instant::now() < deadline {
            if !self.export_next(spans, Some(deadline)).await {
                return;
            }
        }
    }

    /// Exports about one batch from the queue; false when it was empty.
    /// traced's own spans go to an OTLP receiver (http/protobuf or gRPC)
    /// encoded here, unless a keep rule holds spans (it decides on export
    /// data).
    async fn export_next(&mut self, spans: &SpanQueue, deadline: Option<Instant>) -> bool {
        let (items, held) = spans.take_items();
        if items.is_empty() {
            spans.settle(held, Room::default());
            return false;
        }
        self.kept = Room::default();
        self.export_taken(items, deadline).await;
        spans.settle(held, std::mem::take(&mut self.kept));
        true
    }

    async fn export_taken(&mut self, items: Vec<Queued>, deadline: Option<Instant>) {
        // Taken for the loop below, whose sends need the worker mutably.
        let Some(encoding) = self.encoding.take() else {
            return self.export_items(items, deadline).await;
        };
        // traced's own spans were queued before the SDK spans of the same
        // trace (a local root collects them first) and go first.
        let mut finished = Vec::new();
        let mut sdk = Vec::new();
        for item in items {
            match item {
                Queued::Finished(spans) => finished.push(spans),
                span @ Queued::Span(_) => sdk.push(span),
            }
        }
        let mut oversized = Vec::new();
        {
            let mut requests = encoding.requests(&finished);
            while let Some(request) = requests.next_request(&mut oversized) {
                self.export_encoded(request, deadline).await;
            }
        }
        self.encoding = Some(encoding);
        self.export_sorted(oversized, deadline).await;
        self.export_items(sdk, deadline).await;
    }

    /// At shutdown, traces still waiting for their root are decided on what
    /// is known.
    async fn release_held(&mut self, deadline: Instant) {
        let Some(hold) = &mut self.hold else { return };
        let sorted = hold.release(std::time::SystemTime::now());
        self.count(|c| &c.sampled_out, sorted.let_go);
        self.export_sorted(sorted.export, Some(deadline)).await;
    }

    /// Exports `items` as export data, in batches of at most the batch size;
    /// traced's own spans are converted a batch at a time, just before
    /// their batch is exported.
    async fn export_items(&mut self, items: Vec<Queued>, deadline: Option<Instant>) {
        let size = self.settings.max_export_batch_size.max(1);
        let mut batch = Vec::new();
        for item in items {
            match item {
                Queued::Span(mut span) => {
                    if self.settings.default_ai_kind {
                        add_default_ai_kind(&mut span);
                    }
                    batch.push(span);
                    if batch.len() >= size {
                        self.export(std::mem::take(&mut batch), deadline).await;
                    }
                }
                Queued::Finished(finished) => {
                    let mut conversion = SpanDataConversion::new(finished, self.settings.default_ai_kind);
                    while conversion.remaining() > 0 {
                        let room = size.saturating_sub(batch.len());
                        conversion.append(&mut batch, room);
                        if batch.len() >= size {
                            self.export(std::mem::take(&mut batch), deadline).await;
                        }
                    }
                }
            }
        }
        if !batch.is_empty() {
            self.export(batch, deadline).await;
        }
    }

    async fn export(&mut self, batch: Vec<SpanData>, deadline: Option<Instant>) {
        let batch = match &mut self.hold {
            Some(hold) => {
                let sorted = hold.sort(batch);
                self.count(|c| &c.sampled_out, sorted.let_go);
                self.count(|c| &c.dropped_held, sorted.evicted);
                if sorted.evicted > 0 && !std::mem::replace(&mut self.warned_held, true) {
                    messages::warn(&format!(
                        "traces held for the keep rules outgrew their memory bound: the oldest were dropped \
                         ({} spans; raise TRACED_HELD_TRACES_BYTES; further ones are counted, not printed)",
                        sorted.evicted
                    ));
                }
                sorted.export
            }
            None => batch,
        };
        self.export_sorted(batch, deadline).await;
    }

    async fn export_sorted(&mut self, mut batch: Vec<SpanData>, deadline: Option<Instant>) {
        if batch.is_empty() {
            return;
        }
        if let Some(limit) = self.settings.value_length_limit {
            batch.iter_mut().for_each(|span| truncate_span(span, limit));
        }
        let Some(limit) = self.settings.max_request_bytes else {
            return self.export_request(batch, deadline).await;
        };
        let (requests, cut) = split_to_fit(batch, limit);
        if cut > 0 && !std::mem::replace(&mut self.warned_cut, true) {
            messages::warn(&format!(
                "{cut} spans were larger than one request to {} may be ({limit} bytes): their largest values \
                 were cut, marked \"{TRUNCATION_MARKER} ...]\" (further ones are not reported)",
                self.settings.name
            ));
        }
        for request in requests {
            self.export_request(request, deadline).await;
        }
    }

    /// Sends one request's spans, within the export timeout and `deadline`.
    async fn export_request(&mut self, batch: Vec<SpanData>, deadline: Option<Instant>) {
        let room = Room { spans: batch.len(), bytes: batch.iter().map(held_bytes).sum() };
        self.attempt(Payload::Spans(batch), room, deadline).await;
    }

    /// Sends one request traced encoded itself, as `export_request` does.
    async fn export_encoded(&mut self, request: EncodedRequest, deadline: Option<Instant>) {
        let payload = Payload::Encoded(request.body);
        let room = Room { spans: request.spans, bytes: payload.request_bytes().unwrap_or_default() };
        self.attempt(payload, room, deadline).await;
    }

    /// Sends a new request, or sets it aside behind those that wait: while
    /// any wait, the collector is away and only the oldest is tried.
    async fn attempt(&mut self, payload: Payload, room: Room, deadline: Option<Instant>) {
        let spans = room.spans as u64;
        if !self.waiting.is_empty() {
            return self.set_aside(payload, room, None);
        }
        let may_keep = self.waiting.enabled()
            && !self.shutting_down
            && (payload.request_bytes().is_some() || self.exporter.classifies_failures());
        let kept = may_keep.then(|| payload.clone());
        match self.send(payload, deadline).await {
            Sent::Ok => self.account_sent(spans),
            Sent::Failed { error, may_wait: true, asked } if kept.is_some() && !self.shutting_down => {
                if !std::mem::replace(&mut self.failing, true) {
                    messages::warn(&format!(
                        "export to {} failed: {}; its spans wait for it, oldest first, for at most {} s and \
                         within TRACED_SPAN_BUFFER_BYTES (further failures are counted, not printed)",
                        self.settings.name,
                        failure_text(&error),
                        self.waiting.max_elapsed().as_secs()
                    ));
                }
                if let Some(payload) = kept {
                    self.set_aside(payload, room, asked);
                }
            }
            Sent::Failed { error, .. } => self.account_failed(spans, &error, deadline),
        }
    }

    /// A new request waits behind the others, keeping its room.
    fn set_aside(&mut self, payload: Payload, room: Room, asked: Option<Duration>) {
        let payload = match payload {
            // The SDK's spans wait encoded too, where encoded requests go.
            Payload::Spans(batch) if self.exporter.sends_encoded() => {
                let request = ExportTraceServiceRequest {
                    resource_spans: group_spans_by_resource_and_scope(batch, &self.resource_for_waiting),
                };
                Payload::Encoded(request.encode_to_vec().into())
            }
            other => other,
        };
        let payload = payload.compacted();
        // Encoded, and gzipped, it holds less than it was charged.
        let room = Room { spans: room.spans, bytes: payload.request_bytes().unwrap_or(room.bytes) };
        self.kept.add(room);
        self.waiting.push(WaitingRequest::new(payload, room, Instant::now()), asked);
    }

    /// Tries what waits, oldest first, until it is all sent or the collector
    /// fails again; true when nothing waits any more. What waited longer
    /// than the maximum elapsed time is dropped first.
    async fn retry_waiting(&mut self, queue: &SpanQueue, deadline: Option<Instant>) -> bool {
        let expired = self.waiting.expired(Instant::now());
        if !expired.is_empty() {
            let spans: u64 = expired.iter().map(WaitingRequest::spans).sum();
            expired.iter().for_each(|request| queue.release(request.room));
            self.count(|c| &c.dropped_export_failed, spans);
            if !std::mem::replace(&mut self.warned_expired, true) {
                messages::error(&format!(
                    "{} stayed away longer than {} s: {spans} spans that waited for it were dropped \
                     (TRACED_RETRY_MAX_ELAPSED_TIME_MS; further ones are counted, not printed)",
                    self.settings.name,
                    self.waiting.max_elapsed().as_secs()
                ));
            }
        }
        while let Some(request) = self.waiting.pop_oldest() {
            if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                self.waiting.failed_again(request, None);
                return false;
            }
            match self.send(request.payload.clone(), deadline).await {
                Sent::Ok => {
                    queue.release(request.room);
                    self.account_sent(request.spans());
                }
                // Still away: the rest waits (at shutdown, they are unsent).
                Sent::Failed { may_wait: true, asked, .. } => {
                    self.waiting.failed_again(request, asked);
                    return false;
                }
                Sent::Failed { error, .. } => {
                    queue.release(request.room);
                    self.account_failed(request.spans(), &error, deadline);
                }
            }
        }
        true
    }

    /// Sends `payload` within the export timeout and `deadline`; says
    /// whether a failure is worth waiting out.
    async fn send(&self, payload: Payload, deadline: Option<Instant>) -> Sent {
        // Only an exporter that tells why may have its requests wait.
        let waits = self.exporter.classifies_failures();
        let classified = |result: Result<(), ExportFailure>| match result {
            Ok(()) => Sent::Ok,
            Err(failure) => Sent::Failed {
                may_wait: waits && failure.cause.collector_may_come_back(),
                asked: failure.retry_after(),
                error: OTelSdkError::InternalFailure(failure.to_string()),
            },
        };
        let sent = async {
            match payload {
                Payload::Encoded(body) => classified(self.exporter.send_encoded(body).await),
                Payload::Gzipped(body) => match gunzipped(&body) {
                    Ok(body) => classified(self.exporter.send_encoded(body).await),
                    Err(error) => Sent::Failed {
                        error: OTelSdkError::InternalFailure(format!("a waiting request did not unzip: {error}")),
                        may_wait: false,
                        asked: None,
                    },
                },
                Payload::Spans(batch) => {
                    #[cfg(feature = "grpc")]
                    let _listening = self.listener.as_ref().map(tracing::dispatcher::set_default);
                    classified(self.exporter.export_classified(batch).await)
                }
            }
        };
        match self.within_deadline(sent, deadline).await {
            Ok(sent) => sent,
            // No answer in time: a collector that hangs may come back.
            Err(error) => Sent::Failed { error, may_wait: true, asked: None },
        }
    }

    /// `send`'s outcome, or a timeout past the export timeout, `deadline`
    /// or the shutdown's hard deadline.
    async fn within_deadline<T>(
        &self,
        send: impl std::future::Future<Output = T>,
        deadline: Option<Instant>,
    ) -> Result<T, OTelSdkError> {
        let mut limit = self.settings.export_timeout;
        if let Some(deadline) = deadline {
            limit = limit.min(deadline.saturating_duration_since(Instant::now()));
        }
        let mut hard_deadline = self.hard_deadline.clone();
        tokio::select! {
            result = tokio::time::timeout(limit, send) => match result {
                Ok(result) => Ok(result),
                Err(_) => {
                    if deadline.is_some() {
                        self.mark_cut_short();
                    }
                    Err(OTelSdkError::Timeout(limit))
                }
            },
            () = deadline_reached(&mut hard_deadline) => {
                self.mark_cut_short();
                Err(OTelSdkError::Timeout(limit))
            }
        }
    }

    /// Counts a request's spans as exported or rejected.
    fn account_sent(&mut self, count: u64) {
        let rejected = self.rejected(count);
        self.count(|c| &c.exported, count - rejected);
        if std::mem::take(&mut self.failing) {
            self.warned_expired = false;
            let peak = self.waiting.take_peak();
            if peak.spans == 0 {
                messages::info(&format!("export to {} recovered", self.settings.name));
            } else {
                messages::info(&format!(
                    "export to {} recovered; what waited for it is sent, oldest first (at most {} spans \
                     waited, in {} bytes: {} bytes a span)",
                    self.settings.name,
                    peak.spans,
                    peak.bytes,
                    peak.bytes / peak.spans
                ));
            }
        }
    }

    /// Counts a request's spans as dropped, and reports the first failure
    /// of a run of them.
    fn account_failed(&mut self, count: u64, error: &OTelSdkError, deadline: Option<Instant>) {
        self.count(|c| &c.dropped_export_failed, count);
        // A request that gave up at the deadline (its timeout is capped by
        // it) ran out of budget, whatever the exporter calls the error.
        let at_deadline = deadline.is_some_and(|d| Instant::now() + DEADLINE_EDGE >= d);
        if at_deadline {
            self.mark_cut_short();
        }
        if !std::mem::replace(&mut self.failing, true) {
            messages::error(&format!(
                "export to {} failed, {count} spans dropped (further failures are counted, not printed): {}",
                self.settings.name,
                failure_text(error)
            ));
        }
    }

    /// Counts what the receiver rejected of a request it took, and reports
    /// its first explanation.
    fn rejected(&mut self, sent: u64) -> u64 {
        let Some(rejections) = &self.settings.rejections else { return 0 };
        let (spans, message) = rejections.take();
        let spans = spans.min(sent);
        self.count(|c| &c.dropped_rejected, spans);
        if spans > 0 && !std::mem::replace(&mut self.warned_rejected, true) {
            messages::error(&format!(
                "{} rejected {spans} of {sent} spans: {} (further rejections are counted, not printed)",
                self.settings.name,
                message.as_deref().unwrap_or("it gave no reason")
            ));
        }
        spans
    }

    /// Says once that spans were refused for want of room: the newest are
    /// dropped, what is queued and what waits is kept.
    fn report_full(&mut self) {
        if self.warned_full {
            return;
        }
        let Some(shared) = self.shared.upgrade() else { return };
        let refused = shared.counters.dropped_queue_full.load(Ordering::Relaxed);
        if refused == 0 {
            return;
        }
        self.warned_full = true;
        let waiting = match self.waiting.spans() {
            0 => String::new(),
            spans => format!(", {spans} of them waiting for the collector"),
        };
        messages::warn(&format!(
            "the span buffer for {} is full ({} bytes{waiting}): {refused} new spans were dropped, the \
             oldest kept (raise TRACED_SPAN_BUFFER_BYTES; further ones are counted, not printed)",
            self.settings.name, self.settings.max_queue_bytes
        ));
    }

    fn mark_cut_short(&self) {
        if let Some(shared) = self.shared.upgrade() {
            shared.cut_short.store(true, Ordering::Relaxed);
        }
    }

    fn count(&self, counter: impl Fn(&Counters) -> &AtomicU64, n: u64) {
        if let Some(shared) = self.shared.upgrade() {
            counter(&shared.counters).fetch_add(n, Ordering::Relaxed);
        }
    }
}

fn failure_text(error: &OTelSdkError) -> String {
    match error {
        OTelSdkError::Timeout(limit) => format!("no answer within {} ms", limit.as_millis()),
        OTelSdkError::InternalFailure(message) => message.clone(),
        other => other.to_string(),
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Resolves once the shutdown deadline, set at any time, has passed.
async fn deadline_reached(deadline: &mut watch::Receiver<Option<Instant>>) {
    loop {
        let current = *deadline.borrow_and_update();
        let changed = async {
            if deadline.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        match current {
            Some(at) => tokio::select! {
                () = tokio::time::sleep_until(at.into()) => return,
                () = changed => {}
            },
            None => changed.await,
        }
    }
}

/// `openinference.span.kind = CHAIN` on a span of traced's that has no kind.
fn add_default_ai_kind(span: &mut SpanData) {
    if span.instrumentation_scope.name() == "traced" && !has_ai_kind(&span.attributes) {
        span.attributes.push(KeyValue::new(AI_KIND_KEY, AiKind::Chain.as_str()));
    }
}

/// Cuts string values to `limit` characters: the SDK does not implement
/// `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`.
pub(crate) fn truncate_span(span: &mut SpanData, limit: usize) {
    span.attributes.iter_mut().for_each(|kv| truncate_value(kv, limit));
    for event in span.events.events.iter_mut() {
        event.attributes.iter_mut().for_each(|kv| truncate_value(kv, limit));
    }
    for link in span.links.links.iter_mut() {
        link.attributes.iter_mut().for_each(|kv| truncate_value(kv, limit));
    }
}

fn truncate_value(kv: &mut KeyValue, limit: usize) {
    let cut = |s: &StringValue| -> Option<StringValue> {
        let text = s.as_str();
        let end = text.char_indices().nth(limit)?.0;
        Some(StringValue::from(text[..end].to_string()))
    };
    match &mut kv.value {
        Value::String(s) => {
            if let Some(short) = cut(s) {
                *s = short;
            }
        }
        Value::Array(Array::String(values)) => {
            for s in values.iter_mut() {
                if let Some(short) = cut(s) {
                    *s = short;
                }
            }
        }
        _ => {}
    }
}
