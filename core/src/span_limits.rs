//! The SDK's default span limits, applied the SDK's way to the spans traced
//! records itself (a sync fn's frame, a served request's span): at most 128
//! attributes and 128 events, what is past them counted as dropped, and an
//! attribute set again replacing the earlier value.

use opentelemetry::KeyValue;
use opentelemetry::trace::Event;

const MAX_ATTRIBUTES: usize = 128;
const MAX_EVENTS: usize = 128;

/// Cuts `attributes` to the limit; how many were cut.
#[inline]
pub(crate) fn limit_attributes(attributes: &mut Vec<KeyValue>) -> u32 {
    if attributes.len() <= MAX_ATTRIBUTES {
        return 0;
    }
    let over = attributes.len() - MAX_ATTRIBUTES;
    attributes.truncate(MAX_ATTRIBUTES);
    u32::try_from(over).unwrap_or(u32::MAX)
}

/// Sets `attribute`, replacing a value of the same key, or counts it dropped.
#[inline]
pub(crate) fn set_attribute(attributes: &mut Vec<KeyValue>, dropped: &mut u32, attribute: KeyValue) {
    if let Some(existing) = attributes.iter_mut().find(|kv| kv.key == attribute.key) {
        *existing = attribute;
    } else if attributes.len() < MAX_ATTRIBUTES {
        attributes.push(attribute);
    } else {
        *dropped += 1;
    }
}

/// Adds `event`, or counts it dropped.
#[inline]
pub(crate) fn add_event(events: &mut Vec<Event>, dropped: &mut u32, event: Event) {
    if events.len() < MAX_EVENTS {
        events.push(event);
    } else {
        *dropped += 1;
    }
}
