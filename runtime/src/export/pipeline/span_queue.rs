//! The bounded queue between finished spans and the export thread, bounded
//! in bytes (`TRACED_SPAN_BUFFER_BYTES`) and, when set, in spans
//! (`OTEL_BSP_MAX_QUEUE_SIZE`).
//!
//! Each thread that ends spans has a lane of its own: a push locks only its
//! thread's lane, which no other thread touches until the export thread takes
//! a batch. One queue shared by every thread cost a served request 200 ns of
//! its tracing (measured: the lock's cache line, and the queue's slots,
//! moving between the cores of the threads that push and the one that takes).
//!
//! The bounds are shared: a lane takes room from them in chunks (a
//! sixty-fourth of a bound at most), so a push rarely touches them, and the
//! room comes back as the export thread takes spans. Room a lane holds
//! unused is at most a chunk per thread, so the queue may refuse that much
//! early; never more than the bounds are held.
//!
//! Room taken by the export thread comes back only when its batch is
//! settled (sent, dropped, or set aside to wait for the collector, as
//! compact encoded requests that keep their share of the bounds), so what
//! waits and what is queued share one budget.
//!
//! Ending a span must not wake the export thread: a wake-up is a futex call
//! that cost more than the span itself when measured. So a lane signals only
//! twice per batch: when it stops being empty (the export thread starts its
//! schedule delay) and when it holds a full batch (the export thread sends
//! at once).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use opentelemetry_sdk::trace::SpanData;
use tokio::sync::Notify;
use traced_core::__layers::FinishedSpans;

use crate::export::otlp::request_size::span_size;

/// What waits in the queue: an SDK span, or a thread's finished spans from
/// traced's own span core, converted when taken (on the export thread).
// Boxing the SDK span would cost an allocation per span on the caller's
// thread; an item moves once into the queue and once out.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Queued {
    Span(SpanData),
    Finished(Arc<FinishedSpans>),
}

impl Queued {
    pub(crate) fn spans(&self) -> usize {
        match self {
            Queued::Span(_) => 1,
            Queued::Finished(finished) => finished.len(),
        }
    }

    fn bytes(&self) -> usize {
        match self {
            Queued::Span(span) => held_bytes(span),
            Queued::Finished(finished) => finished.held_bytes(),
        }
    }
}

/// Why a span was not queued.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    Full,
    Closed,
}

/// An amount of the bounds: spans and bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Room {
    pub(crate) spans: usize,
    pub(crate) bytes: usize,
}

impl Room {
    pub(crate) fn add(&mut self, other: Room) {
        self.spans += other.spans;
        self.bytes += other.bytes;
    }

    pub(crate) fn saturating_sub(self, other: Room) -> Room {
        Room { spans: self.spans.saturating_sub(other.spans), bytes: self.bytes.saturating_sub(other.bytes) }
    }
}

/// What the bounds still allow, over every lane.
#[derive(Debug)]
struct Bounds {
    spans: AtomicUsize,
    bytes: AtomicUsize,
    whole: Room,
    chunk: Room,
}

impl Bounds {
    fn new(whole: Room) -> Self {
        let chunk = Room { spans: (whole.spans / 64).clamp(1, 256), bytes: (whole.bytes / 64).clamp(1, 256 << 10) };
        Bounds { spans: AtomicUsize::new(whole.spans), bytes: AtomicUsize::new(whole.bytes), whole, chunk }
    }

    /// Takes `room` from what is left, all or nothing.
    fn take(&self, room: Room) -> bool {
        if !take_from(&self.spans, room.spans) {
            return false;
        }
        if !take_from(&self.bytes, room.bytes) {
            self.spans.fetch_add(room.spans, Ordering::Relaxed);
            return false;
        }
        true
    }

    fn give_back(&self, room: Room) {
        self.spans.fetch_add(room.spans, Ordering::Relaxed);
        self.bytes.fetch_add(room.bytes, Ordering::Relaxed);
    }
}

/// Takes what there is of `amount`.
fn take_from_up_to(left: &AtomicUsize, amount: usize) {
    let _ = left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| Some(left.saturating_sub(amount)));
}

fn take_from(left: &AtomicUsize, amount: usize) -> bool {
    left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| left.checked_sub(amount)).is_ok()
}

/// One thread's spans, not yet taken.
#[derive(Debug, Default)]
struct Lane {
    state: Mutex<LaneState>,
    /// Set when its queue closes: the thread forgets the lane.
    closed: AtomicBool,
}

#[derive(Debug, Default)]
struct LaneState {
    /// Each item with the room it was counted for.
    items: VecDeque<(Queued, Room)>,
    /// Spans in `items`.
    spans: usize,
    /// Room taken from the bounds and not used yet.
    spare: Room,
}

impl Lane {
    fn lock(&self) -> MutexGuard<'_, LaneState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

static NEXT_QUEUE: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This thread's lane in each queue it has pushed to, by queue.
    static LANES: RefCell<Vec<(u64, Arc<Lane>)>> = const { RefCell::new(Vec::new()) };
}

#[derive(Debug)]
pub(crate) struct SpanQueue {
    id: u64,
    /// Every lane, the export thread's way to them.
    lanes: Mutex<Vec<Arc<Lane>>>,
    /// For a thread whose thread-locals are gone (a span ended in one's
    /// destructor).
    shared_lane: Arc<Lane>,
    bounds: Bounds,
    batch_size: usize,
    closed: AtomicBool,
    /// Where the next take starts, so that no lane waits behind the others.
    next_lane: AtomicUsize,
    signal: Notify,
}

impl SpanQueue {
    pub(crate) fn new(capacity: usize, max_bytes: usize, batch_size: usize) -> Self {
        let shared_lane = Arc::new(Lane::default());
        SpanQueue {
            id: NEXT_QUEUE.fetch_add(1, Ordering::Relaxed),
            lanes: Mutex::new(vec![Arc::clone(&shared_lane)]),
            shared_lane,
            bounds: Bounds::new(Room { spans: capacity, bytes: max_bytes }),
            batch_size: batch_size.max(1),
            closed: AtomicBool::new(false),
            next_lane: AtomicUsize::new(0),
            signal: Notify::new(),
        }
    }

    pub(crate) fn push(&self, item: Queued) -> Result<(), Refused> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(Refused::Closed);
        }
        // Counted before the lock: the walk over the attributes is the
        // caller's, not every producer's. An item larger than a bound counts
        // as the whole bound: alone in the queue, it fits.
        let room =
            Room { spans: item.spans().min(self.bounds.whole.spans), bytes: item.bytes().min(self.bounds.whole.bytes) };
        let mut item = Some(item);
        let pushed = LANES.try_with(|lanes| {
            // The lane is borrowed, not cloned: an `Arc` clone is two atomic
            // operations on every push.
            if let Some((_, lane)) = lanes.borrow().iter().find(|(id, _)| *id == self.id) {
                return self.push_to(lane, &mut item, room);
            }
            let lane = self.new_lane(&mut lanes.borrow_mut());
            self.push_to(&lane, &mut item, room)
        });
        match (pushed, item) {
            (Ok(pushed), _) => pushed,
            (Err(_), Some(item)) => self.push_to(&self.shared_lane, &mut Some(item), room),
            (Err(_), None) => Ok(()),
        }
    }

    /// This thread's lane, made on its first push.
    fn new_lane(&self, lanes: &mut Vec<(u64, Arc<Lane>)>) -> Arc<Lane> {
        lanes.retain(|(_, lane)| !lane.closed.load(Ordering::Relaxed));
        let lane = Arc::new(Lane::default());
        lock(&self.lanes).push(Arc::clone(&lane));
        lanes.push((self.id, Arc::clone(&lane)));
        lane
    }

    fn push_to(&self, lane: &Lane, item: &mut Option<Queued>, room: Room) -> Result<(), Refused> {
        let mut state = lane.lock();
        if lane.closed.load(Ordering::Relaxed) {
            return Err(Refused::Closed);
        }
        if state.spare.spans < room.spans || state.spare.bytes < room.bytes {
            let short = Room {
                spans: room.spans.saturating_sub(state.spare.spans),
                bytes: room.bytes.saturating_sub(state.spare.bytes),
            };
            let chunk =
                Room { spans: short.spans + self.bounds.chunk.spans, bytes: short.bytes + self.bounds.chunk.bytes };
            let taken = if self.bounds.take(chunk) {
                chunk
            } else if self.bounds.take(short) {
                short
            } else {
                return Err(Refused::Full);
            };
            state.spare.spans += taken.spans;
            state.spare.bytes += taken.bytes;
        }
        let Some(item) = item.take() else { return Ok(()) };
        state.spare.spans -= room.spans;
        state.spare.bytes -= room.bytes;
        let before = state.spans;
        state.spans += item.spans();
        state.items.push_back((item, room));
        let after = state.spans;
        drop(state);
        if before == 0 || (before < self.batch_size && after >= self.batch_size) {
            self.signal.notify_one();
        }
        Ok(())
    }

    /// Resolves after a push that made a lane non-empty or filled a batch
    /// (at once if one happened since the last wait).
    pub(crate) async fn signalled(&self) {
        self.signal.notified().await;
    }

    pub(crate) fn len(&self) -> usize {
        self.all_lanes().iter().map(|lane| lane.lock().spans).sum()
    }

    pub(crate) fn has_full_batch(&self) -> bool {
        self.len() >= self.batch_size
    }

    /// About one batch, oldest first in each lane (a thread's finished spans
    /// are taken whole); the lanes take turns at going first. The room they
    /// held stays taken until [`SpanQueue::settle`].
    pub(crate) fn take_items(&self) -> (Vec<Queued>, Room) {
        let lanes = self.all_lanes();
        let first = self.next_lane.fetch_add(1, Ordering::Relaxed) % lanes.len();
        let mut taken = Vec::new();
        let mut count = 0;
        let mut freed = Room::default();
        for lane in lanes.iter().cycle().skip(first).take(lanes.len()) {
            let mut state = lane.lock();
            while count < self.batch_size {
                let Some((item, room)) = state.items.pop_front() else { break };
                count += item.spans();
                state.spans -= item.spans();
                freed.spans += room.spans;
                freed.bytes += room.bytes;
                taken.push(item);
            }
            if count >= self.batch_size {
                break;
            }
        }
        self.forget_ended_threads();
        (taken, freed)
    }

    /// A taken batch is settled: of the room it held, `kept` stays taken by
    /// what waits for the collector, the rest comes back. What waits may
    /// take more than the batch held (an estimate below its encoded size):
    /// the difference is taken as far as the bounds allow.
    pub(crate) fn settle(&self, held: Room, kept: Room) {
        self.bounds.give_back(held.saturating_sub(kept));
        let more = kept.saturating_sub(held);
        if more != Room::default() {
            take_from_up_to(&self.bounds.spans, more.spans);
            take_from_up_to(&self.bounds.bytes, more.bytes);
        }
    }

    /// Room that waited comes back (sent, or dropped).
    pub(crate) fn release(&self, room: Room) {
        self.bounds.give_back(room);
    }

    /// Refuses every later push; returns how many spans were left queued.
    pub(crate) fn close(&self) -> usize {
        self.closed.store(true, Ordering::Relaxed);
        let mut left = 0;
        for lane in self.all_lanes() {
            let mut state = lane.lock();
            lane.closed.store(true, Ordering::Relaxed);
            left += std::mem::take(&mut state.spans);
            state.items.clear();
        }
        left
    }

    fn all_lanes(&self) -> Vec<Arc<Lane>> {
        lock(&self.lanes).clone()
    }

    /// Drops the lanes of threads that have ended once they are empty, and
    /// gives back the room they held.
    fn forget_ended_threads(&self) {
        let mut lanes = lock(&self.lanes);
        lanes.retain(|lane| {
            let ended = Arc::strong_count(lane) == 1 && !Arc::ptr_eq(lane, &self.shared_lane);
            let state = lane.lock();
            if ended && state.items.is_empty() {
                self.bounds.give_back(state.spare);
                return false;
            }
            true
        });
    }
}

impl Drop for SpanQueue {
    fn drop(&mut self) {
        for lane in lock(&self.lanes).iter() {
            lane.closed.store(true, Ordering::Relaxed);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What a queued span holds in memory: the struct and, estimated by its
/// encoded size, what it points to.
pub(crate) fn held_bytes(span: &SpanData) -> usize {
    std::mem::size_of::<SpanData>() + span_size(span)
}

#[cfg(test)]
mod tests;
