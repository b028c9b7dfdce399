//! One send and what follows it: a request set aside while the collector
//! is away, the oldest retried, the deadline kept, and every span counted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::error::OTelSdkError;
use prost::Message as _;

use crate::export::failure::ExportFailure;
use crate::export::messages;
use crate::export::pipeline::shared::DEADLINE_EDGE;
use crate::export::pipeline::span_queue::{Room, SpanQueue};
use crate::export::pipeline::stats::Counters;
use crate::export::pipeline::waiting::{Payload, WaitingRequest, gunzipped};
use crate::export::pipeline::worker::{Sent, Worker, deadline_reached, failure_text};

impl Worker {
    /// A new request waits behind the others, keeping its room.
    pub(super) fn set_aside(&mut self, payload: Payload, room: Room, asked: Option<Duration>) {
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
    pub(super) async fn retry_waiting(&mut self, queue: &SpanQueue, deadline: Option<Instant>) -> bool {
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
    pub(super) async fn send(&self, payload: Payload, deadline: Option<Instant>) -> Sent {
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
    pub(super) async fn within_deadline<T>(
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
    pub(super) fn account_sent(&mut self, count: u64) {
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
    pub(super) fn account_failed(&mut self, count: u64, error: &OTelSdkError, deadline: Option<Instant>) {
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
    pub(super) fn rejected(&mut self, sent: u64) -> u64 {
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
    pub(super) fn report_full(&mut self) {
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

    pub(super) fn mark_cut_short(&self) {
        if let Some(shared) = self.shared.upgrade() {
            shared.cut_short.store(true, Ordering::Relaxed);
        }
    }

    pub(super) fn count(&self, counter: impl Fn(&Counters) -> &AtomicU64, n: u64) {
        if let Some(shared) = self.shared.upgrade() {
            counter(&shared.counters).fetch_add(n, Ordering::Relaxed);
        }
    }
}
