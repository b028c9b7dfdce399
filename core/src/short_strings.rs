//! Short string attribute values (model names, routes, ids) that repeat from
//! call to call are neither copied nor reference-counted: a small per-thread
//! table remembers the last value seen in each of its slots, and a value seen
//! there twice is interned (kept for the life of the process, as a
//! `&'static str`, up to [`MAX_INTERNED_BYTES`] in all). An interned value
//! costs no allocation and no atomic count shared with the export thread.
//! Values seen once (prompts) are only shared while they stay in the table.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use opentelemetry::StringValue;

/// Longer values are copied.
const MAX_SHARED_LEN: usize = 64;
const SLOTS: usize = 64;
/// All interned values together stay under this.
const MAX_INTERNED_BYTES: usize = 256 * 1024;

static INTERNED_BYTES: AtomicUsize = AtomicUsize::new(0);

#[derive(Clone)]
enum Slot {
    Empty,
    Seen(Arc<str>),
    Interned(&'static str),
}

thread_local! {
    static TABLE: RefCell<[Slot; SLOTS]> = const { RefCell::new([const { Slot::Empty }; SLOTS]) };
}

/// `text` as an attribute value, interned or shared when it repeats.
pub(crate) fn string_value(text: &str) -> StringValue {
    if text.len() > MAX_SHARED_LEN {
        return StringValue::from(text.to_owned());
    }
    let slot = slot_of(text);
    let shared = TABLE.try_with(|table| {
        let mut table = table.borrow_mut();
        match &table[slot] {
            Slot::Interned(interned) if *interned == text => return StringValue::from(*interned),
            Slot::Seen(seen) if **seen == *text => {
                let value = match intern(text) {
                    Some(interned) => {
                        table[slot] = Slot::Interned(interned);
                        StringValue::from(interned)
                    }
                    None => StringValue::from(Arc::clone(seen)),
                };
                return value;
            }
            _ => {}
        }
        let shared: Arc<str> = Arc::from(text);
        table[slot] = Slot::Seen(Arc::clone(&shared));
        StringValue::from(shared)
    });
    // The table is gone during the thread's teardown: a copy, then.
    shared.unwrap_or_else(|_| StringValue::from(text.to_owned()))
}

/// A copy of `text` that lives as long as the process, unless the bound on
/// interned bytes is reached.
fn intern(text: &str) -> Option<&'static str> {
    intern_within(text, &INTERNED_BYTES, MAX_INTERNED_BYTES)
}

fn intern_within(text: &str, interned: &AtomicUsize, max: usize) -> Option<&'static str> {
    let reserved = interned.fetch_add(text.len(), Ordering::Relaxed);
    if reserved + text.len() > max {
        interned.fetch_sub(text.len(), Ordering::Relaxed);
        return None;
    }
    Some(Box::leak(text.to_owned().into_boxed_str()))
}

/// A slot from the length and the first and last bytes: cheap, and a
/// collision only costs a copy.
fn slot_of(text: &str) -> usize {
    let bytes = text.as_bytes();
    let first = bytes.first().copied().unwrap_or(0) as usize;
    let last = bytes.last().copied().unwrap_or(0) as usize;
    (bytes.len().wrapping_mul(31) ^ first.wrapping_mul(7) ^ last) % SLOTS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_seen_twice_is_interned_and_then_shared_without_counting() {
        let first = string_value("tiny-unet-a");
        let second = string_value(&String::from("tiny-unet-a"));
        let third = string_value("tiny-unet-a");
        assert_eq!(first.as_str(), "tiny-unet-a");
        assert_eq!(second.as_str(), "tiny-unet-a");
        assert!(std::ptr::eq(second.as_str(), third.as_str()), "the interned copy, every time");
        let long = "x".repeat(MAX_SHARED_LEN + 1);
        assert_eq!(string_value(&long).as_str(), long);
        assert_eq!(string_value("other").as_str(), "other");
    }

    #[test]
    fn interning_stops_at_its_bound() {
        let interned = AtomicUsize::new(0);
        assert_eq!(intern_within("early", &interned, 8), Some("early"));
        assert_eq!(intern_within("late", &interned, 8), None, "5 + 4 bytes would pass the bound");
        assert_eq!(interned.load(Ordering::Relaxed), 5);
    }
}
