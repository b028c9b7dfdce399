//! Export requests that failed while the collector was away (refused, no
//! answer, a retryable status), waiting for it to come back, oldest first,
//! as the OpenTelemetry Collector's `retry_on_failure` keeps them: each for
//! at most the maximum elapsed time since it first failed, all of them
//! within the span buffer's budget, whose room they keep.
//!
//! Over http/protobuf and gRPC, spans wait as the OTLP request they go in,
//! gzipped: a served request's span, 290 bytes of protobuf, waits in about
//! 40 (the export thread, idle while the collector is away, pays for the
//! compression). Over http/json the SDK's spans wait as export data,
//! charged their estimate.
//! Only the oldest is tried, after a backoff that doubles from 100 ms to at
//! most 800 ms plus up to 200 ms of jitter, so export resumes within about a
//! second of the collector's return; a receiver that asks for longer
//! (`Retry-After`, gRPC `RetryInfo`) is granted up to a minute.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use opentelemetry_sdk::trace::SpanData;

use crate::export::otlp::direct::{gzipped, jitter};
use crate::export::pipeline::span_queue::Room;

const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_millis(800);
const MAX_JITTER_MS: u64 = 200;
/// The longest wait a receiver's `Retry-After` is granted.
const MAX_ASKED: Duration = Duration::from_secs(60);

/// What is sent again.
#[derive(Clone, Debug)]
pub(crate) enum Payload {
    /// An OTLP request traced encoded.
    Encoded(Bytes),
    /// The same, gzipped while it waits.
    Gzipped(Bytes),
    /// Export data of the SDK's spans, sent through the exporter again.
    Spans(Vec<SpanData>),
}

impl Payload {
    /// The form it waits in: an encoded request gzipped.
    pub(crate) fn compacted(self) -> Payload {
        match self {
            Payload::Encoded(body) => Payload::Gzipped(Bytes::from(gzipped(&body))),
            other => other,
        }
    }

    /// What it holds waiting, when it is a request: the body and its entry.
    pub(crate) fn request_bytes(&self) -> Option<usize> {
        match self {
            Payload::Encoded(body) | Payload::Gzipped(body) => Some(body.len() + std::mem::size_of::<WaitingRequest>()),
            Payload::Spans(_) => None,
        }
    }
}

/// The request a gzipped payload holds.
pub(crate) fn gunzipped(body: &[u8]) -> std::io::Result<Bytes> {
    use std::io::Read as _;
    let mut plain = Vec::with_capacity(body.len() * 4);
    flate2::read::GzDecoder::new(body).read_to_end(&mut plain)?;
    Ok(Bytes::from(plain))
}

/// One request that waits.
#[derive(Debug)]
pub(crate) struct WaitingRequest {
    pub(crate) payload: Payload,
    /// Its spans and its share of the span buffer's bounds.
    pub(crate) room: Room,
    first_failed: Instant,
}

impl WaitingRequest {
    pub(crate) fn new(payload: Payload, room: Room, first_failed: Instant) -> Self {
        WaitingRequest { payload, room, first_failed }
    }

    pub(crate) fn spans(&self) -> u64 {
        self.room.spans as u64
    }
}

/// The requests that wait, oldest first, and when to try the oldest again.
#[derive(Debug)]
pub(crate) struct Waiting {
    requests: VecDeque<WaitingRequest>,
    max_elapsed: Duration,
    delay: Duration,
    next_try: Option<Instant>,
    /// What waits now.
    held: Room,
    /// The most that waited at once since the collector went away.
    peak: Room,
}

impl Waiting {
    /// `max_elapsed` zero: nothing waits.
    pub(crate) fn new(max_elapsed: Duration) -> Self {
        Waiting {
            requests: VecDeque::new(),
            max_elapsed,
            delay: FIRST_DELAY,
            next_try: None,
            held: Room::default(),
            peak: Room::default(),
        }
    }

    /// Whether a failed request may wait at all.
    pub(crate) fn enabled(&self) -> bool {
        !self.max_elapsed.is_zero()
    }

    pub(crate) fn max_elapsed(&self) -> Duration {
        self.max_elapsed
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }

    /// Spans that wait.
    pub(crate) fn spans(&self) -> u64 {
        self.held.spans as u64
    }

    /// Sets a request aside behind the others; the first one starts the
    /// backoff, or waits what the receiver asked.
    pub(crate) fn push(&mut self, request: WaitingRequest, asked: Option<Duration>) {
        if self.requests.is_empty() {
            self.delay = FIRST_DELAY;
            self.next_try = Some(Instant::now() + self.delay.max(asked.unwrap_or_default().min(MAX_ASKED)));
        }
        self.held.add(request.room);
        self.requests.push_back(request);
        let held = self.held;
        self.peak = Room { spans: self.peak.spans.max(held.spans), bytes: self.peak.bytes.max(held.bytes) };
    }

    /// The most that waited at once since the last call, and forgets it.
    pub(crate) fn take_peak(&mut self) -> Room {
        std::mem::take(&mut self.peak)
    }

    /// When the oldest is to be tried again.
    pub(crate) fn next_try(&self) -> Option<Instant> {
        if self.requests.is_empty() { None } else { self.next_try }
    }

    /// The oldest, to be tried now.
    pub(crate) fn pop_oldest(&mut self) -> Option<WaitingRequest> {
        let oldest = self.requests.pop_front()?;
        self.held = self.held.saturating_sub(oldest.room);
        Some(oldest)
    }

    /// The oldest failed again: it goes back first, and the next try waits
    /// longer, or what the receiver asked (`Retry-After`, at most a minute).
    pub(crate) fn failed_again(&mut self, request: WaitingRequest, asked: Option<Duration>) {
        self.held.add(request.room);
        self.requests.push_front(request);
        self.delay = (self.delay * 2).min(MAX_DELAY);
        let wait = (self.delay + jitter(MAX_JITTER_MS)).max(asked.unwrap_or_default().min(MAX_ASKED));
        self.next_try = Some(Instant::now() + wait);
    }

    /// Takes out the requests that first failed longer than the maximum
    /// elapsed time ago.
    pub(crate) fn expired(&mut self, now: Instant) -> Vec<WaitingRequest> {
        let mut expired = Vec::new();
        while self.requests.front().is_some_and(|oldest| now.duration_since(oldest.first_failed) >= self.max_elapsed) {
            expired.extend(self.pop_oldest());
        }
        expired
    }

    /// Everything that waits, taken out (at shutdown).
    pub(crate) fn take_all(&mut self) -> Vec<WaitingRequest> {
        self.held = Room::default();
        self.requests.drain(..).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(first_failed: Instant) -> WaitingRequest {
        WaitingRequest::new(Payload::Encoded(Bytes::from_static(b"x")), Room { spans: 2, bytes: 1 }, first_failed)
    }

    #[test]
    fn the_oldest_goes_first_and_backs_off_to_at_most_a_second() {
        let mut waiting = Waiting::new(Duration::from_secs(300));
        let now = Instant::now();
        waiting.push(request(now), None);
        waiting.push(request(now), None);
        assert_eq!(waiting.spans(), 4);
        let first_try = waiting.next_try().unwrap();
        assert!(first_try <= Instant::now() + FIRST_DELAY);
        for _ in 0..10 {
            let oldest = waiting.pop_oldest().unwrap();
            waiting.failed_again(oldest, None);
        }
        let wait = waiting.next_try().unwrap().duration_since(Instant::now());
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        let oldest = waiting.pop_oldest().unwrap();
        waiting.failed_again(oldest, Some(Duration::from_secs(7)));
        let wait = waiting.next_try().unwrap().duration_since(Instant::now());
        assert!(wait > Duration::from_secs(6), "the receiver's Retry-After is granted: {wait:?}");
        assert!(waiting.pop_oldest().is_some() && waiting.pop_oldest().is_some());
        assert_eq!(waiting.next_try(), None, "nothing waits");
    }

    #[test]
    fn a_request_waits_gzipped_and_comes_back_whole() {
        let body = Bytes::from(b"opentelemetry.proto ".repeat(100));
        let waiting = Payload::Encoded(body.clone()).compacted();
        assert!(waiting.request_bytes().unwrap() < body.len() / 10, "{:?}", waiting.request_bytes());
        let Payload::Gzipped(gzipped) = waiting else { panic!("gzipped") };
        assert_eq!(gunzipped(&gzipped).unwrap(), body);
    }

    #[test]
    fn requests_past_the_maximum_elapsed_time_expire_oldest_first() {
        let mut waiting = Waiting::new(Duration::from_secs(60));
        let now = Instant::now();
        waiting.push(request(now.checked_sub(Duration::from_secs(61)).unwrap()), None);
        waiting.push(request(now), None);
        assert_eq!(waiting.expired(now).len(), 1);
        assert_eq!(waiting.spans(), 2);
        assert!(!Waiting::new(Duration::ZERO).enabled());
    }
}
