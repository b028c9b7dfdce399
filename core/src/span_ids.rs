//! Span and trace ids for the spans traced records itself: a per-thread
//! wyrand generator, seeded once per thread from the standard library's
//! random hasher keys (no lock, no system call per id).

use std::cell::Cell;
use std::hash::{BuildHasher as _, Hasher as _};

use opentelemetry::trace::{SpanId, TraceId};

thread_local! {
    static STATE: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos() as u64
    );
    hasher.finish() | 1
}

/// One wyrand step: an add, a xor and one wide multiply per word (a
/// xorshift64* step took twice the instructions).
#[inline]
fn step(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0xa076_1d64_78bd_642f);
    let wide = u128::from(*x) * u128::from(*x ^ 0xe703_7ed1_a0b4_28db);
    // The high and low halves folded together.
    ((wide >> 64) as u64) ^ (wide as u64)
}

/// `N` values for one look at the thread's state.
#[inline]
fn next<const N: usize>() -> [u64; N] {
    STATE
        .try_with(|state| {
            let mut x = state.get();
            let values = std::array::from_fn(|_| step(&mut x));
            state.set(x);
            values
        })
        // During the thread's teardown: a fresh seed is random enough.
        .unwrap_or_else(|_| std::array::from_fn(|_| seed()))
}

/// A new span id (never the invalid all-zero one).
#[inline]
pub(crate) fn span_id() -> SpanId {
    let [span] = next();
    SpanId::from(span.max(1))
}

/// A new trace id and its first span's id (never the invalid all-zero
/// ones), for one look at the thread's state.
#[inline]
pub(crate) fn new_trace() -> (TraceId, SpanId) {
    let [high, low, span] = next();
    (TraceId::from((u128::from(high) << 64) | u128::from(low.max(1))), SpanId::from(span.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_valid_and_differ() {
        let ids: std::collections::HashSet<SpanId> = (0..10_000).map(|_| span_id()).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(!ids.contains(&SpanId::INVALID));
        assert_ne!(new_trace().0, new_trace().0);
    }

    #[test]
    fn threads_start_from_different_seeds() {
        let other = std::thread::spawn(span_id).join().unwrap();
        assert_ne!(other, span_id());
    }
}
