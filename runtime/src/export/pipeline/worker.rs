//! The export thread of one processor: batches taken from the queue, sent
//! through the exporter, set aside while the collector is away, settled.

mod sending;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_sdk::error::OTelSdkError;
use opentelemetry_sdk::trace::SpanData;
use tokio::sync::{mpsc, watch};

use crate::export::span_data_conversion::SpanDataConversion;

use crate::export::exporter::DynExporter;
use crate::export::messages;
use crate::export::otlp::encoding::{EncodedRequest, OtlpEncoding};
use crate::export::otlp::request_size::{TRUNCATION_MARKER, split_to_fit};
use crate::export::pipeline::shared::{Control, ProcessorSettings, REPORT_EVERY, Shared};
use crate::export::pipeline::span_edits::{add_default_ai_kind, non_finite_as_text, truncate_span};
use crate::export::pipeline::span_queue::{Queued, Room, SpanQueue, held_bytes};
use crate::export::pipeline::trace_hold::TraceHold;
use crate::export::pipeline::waiting::{Payload, Waiting};

/// How a send ended.
pub(super) enum Sent {
    Ok,
    /// `may_wait`: worth keeping for a collector that comes back;
    /// `asked`: how long the receiver asked to wait.
    Failed {
        error: OTelSdkError,
        may_wait: bool,
        asked: Option<Duration>,
    },
}

pub(super) struct Worker {
    /// Requests that failed while the collector was away.
    pub(super) waiting: Waiting,
    /// What the SDK's spans that wait are encoded with.
    pub(super) resource_for_waiting: ResourceAttributesWithSchema,
    /// Room of the batch being settled that requests set aside keep.
    pub(super) kept: Room,
    pub(super) shutting_down: bool,
    pub(super) warned_expired: bool,
    pub(super) warned_full: bool,
    /// Where the OTLP library's log of a gRPC partial success is heard:
    /// this thread's subscriber while the library exports, and only then,
    /// so that traced's own messages reach the app's.
    #[cfg(feature = "grpc")]
    pub(super) listener: Option<tracing::Dispatch>,
    pub(super) hold: Option<TraceHold>,
    /// How traced's own spans are encoded when the exporter takes encoded
    /// requests (OTLP over http/protobuf or gRPC) and no keep rule is on.
    pub(super) encoding: Option<OtlpEncoding>,
    pub(super) exporter: Box<dyn DynExporter>,
    pub(super) settings: ProcessorSettings,
    pub(super) spans: Arc<SpanQueue>,
    pub(super) control: mpsc::UnboundedReceiver<Control>,
    pub(super) hard_deadline: watch::Receiver<Option<Instant>>,
    pub(super) shared: std::sync::Weak<Shared>,
    pub(super) failing: bool,
    pub(super) warned_cut: bool,
    pub(super) warned_non_finite: bool,
    pub(super) warned_rejected: bool,
    pub(super) warned_held: bool,
}

impl Worker {
    pub(super) async fn run(mut self) {
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
        if self.settings.non_finite_as_text {
            let mended: usize = batch.iter_mut().map(non_finite_as_text).sum();
            if mended > 0 && !std::mem::replace(&mut self.warned_non_finite, true) {
                messages::info(&format!(
                    "{mended} NaN or infinite values go to {} as the text \"NaN\", \"Infinity\" or \"-Infinity\": \
                     over http/json the OTLP library would send them empty (further ones are not reported)",
                    self.settings.name
                ));
            }
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
}

pub(super) fn failure_text(error: &OTelSdkError) -> String {
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
