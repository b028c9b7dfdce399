//! Short string attribute values (model names, routes, ids) that repeat from
//! call to call are shared instead of copied: a small per-thread table keeps
//! the last one seen in each of its slots, and a value equal to it costs a
//! reference count instead of an allocation.

use std::cell::RefCell;
use std::sync::Arc;

use opentelemetry::StringValue;

/// Longer values are copied.
const MAX_SHARED_LEN: usize = 64;
const SLOTS: usize = 64;

thread_local! {
    static TABLE: RefCell<[Option<Arc<str>>; SLOTS]> = const { RefCell::new([const { None }; SLOTS]) };
}

/// `text` as an attribute value, shared with earlier equal values.
pub(crate) fn string_value(text: &str) -> StringValue {
    if text.len() > MAX_SHARED_LEN {
        return StringValue::from(text.to_owned());
    }
    let slot = slot_of(text);
    TABLE.with(|table| {
        let mut table = table.borrow_mut();
        if let Some(shared) = &table[slot]
            && **shared == *text
        {
            return StringValue::from(Arc::clone(shared));
        }
        let shared: Arc<str> = Arc::from(text);
        table[slot] = Some(Arc::clone(&shared));
        StringValue::from(shared)
    })
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
    fn a_repeated_short_value_is_shared_and_others_are_copied_whole() {
        let first = string_value("tiny-unet");
        let again = string_value(&String::from("tiny-unet"));
        assert_eq!(again.as_str(), "tiny-unet");
        assert!(std::ptr::eq(first.as_str(), again.as_str()), "the second is the first, shared");
        let long = "x".repeat(MAX_SHARED_LEN + 1);
        assert_eq!(string_value(&long).as_str(), long);
        assert_eq!(string_value("other").as_str(), "other");
    }
}
