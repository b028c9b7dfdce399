//! The text of a panic, from its payload.

use std::any::Any;

/// The message a `panic!` carried, or a note that it carried none.
///
/// ```
/// let payload = std::panic::catch_unwind(|| panic!("out of memory")).unwrap_err();
/// assert_eq!(traced_core::__layers::panic_message(payload.as_ref()), "out of memory");
/// ```
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|message| (*message).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic with a non-string payload".to_string())
}
