//! The W3C Baggage header (`baggage: key=value;property,...`) in and out of
//! a context: what the SDK's `BaggagePropagator` does, here so that the core
//! depends on the OpenTelemetry API alone. At most 8192 bytes and 64 members
//! are read, as the specification bounds them; a member that does not parse
//! is skipped, and the rest are kept.

use std::sync::LazyLock;

use opentelemetry::Context;
use opentelemetry::baggage::{BaggageExt as _, KeyValueMetadata};
use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

const HEADER: &str = "baggage";
const MAX_HEADER_BYTES: usize = 8192;
const MAX_MEMBERS: usize = 64;
/// What a key or value may not hold as it is: the header's own delimiters.
const ESCAPED: &AsciiSet = &CONTROLS.add(b' ').add(b'"').add(b';').add(b',').add(b'=');

static FIELDS: LazyLock<[String; 1]> = LazyLock::new(|| [HEADER.to_string()]);

/// W3C Baggage, as a [`TextMapPropagator`].
#[derive(Debug, Default)]
pub(crate) struct BaggagePropagator;

impl TextMapPropagator for BaggagePropagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let baggage = cx.baggage();
        if baggage.is_empty() {
            return;
        }
        let members: Vec<String> = baggage
            .iter()
            .map(|(key, (value, metadata))| {
                let mut member = format!(
                    "{}={}",
                    utf8_percent_encode(key.as_str().trim(), ESCAPED),
                    utf8_percent_encode(value.as_str().trim(), ESCAPED)
                );
                let properties = metadata.as_str().trim();
                if !properties.is_empty() {
                    member.push(';');
                    member.push_str(properties);
                }
                member
            })
            .collect();
        injector.set(HEADER, members.join(","));
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        match extractor.get(HEADER) {
            Some(header) if header.len() <= MAX_HEADER_BYTES => {
                cx.with_baggage(header.split(',').take(MAX_MEMBERS).filter_map(member))
            }
            _ => cx.clone(),
        }
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(&*FIELDS)
    }
}

/// One `key=value;property;...` member, decoded; `None` when it is not one.
fn member(text: &str) -> Option<KeyValueMetadata> {
    let mut parts = text.split(';');
    let (key, value) = parts.next()?.split_once('=')?;
    let key = percent_decode_str(key).decode_utf8().ok()?;
    // A second `=` ends the value, as the SDK reads it.
    let value = value.split('=').next().unwrap_or_default();
    let value = percent_decode_str(value).decode_utf8().ok()?;
    let properties: Vec<String> = parts
        .filter_map(|property| percent_decode_str(property).decode_utf8().ok())
        .map(|property| property.trim().to_string())
        .collect();
    Some(KeyValueMetadata::new(key.trim().to_string(), value.trim().to_string(), properties.join(";")))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use opentelemetry::baggage::BaggageExt as _;

    use super::*;

    /// Every member as `(key, value, properties)`, sorted.
    fn read(cx: &Context) -> Vec<(String, String, String)> {
        let mut members: Vec<_> = cx
            .baggage()
            .iter()
            .map(|(key, (value, metadata))| (key.to_string(), value.to_string(), metadata.as_str().to_string()))
            .collect();
        members.sort();
        members
    }

    /// Reads and writes each header as the SDK's propagator does.
    #[test]
    fn reads_and_writes_as_the_sdk_propagator_does() {
        let long = format!("big={}", "x".repeat(MAX_HEADER_BYTES));
        let many: Vec<String> = (0..80).map(|i| format!("k{i}=v{i}")).collect();
        let many = many.join(",");
        let headers = [
            "key1=val1,key2=val2",
            "key1 =   val1,  key2 =val2   ",
            "key1=val1%2Cval2,key2=val3%3D4",
            "key1=val1;prop1;prop2=x,key2=val2",
            "user%20id=%E2%9C%93;ttl=60",
            "no-value,key=value",
            "key=a=b",
            "=empty-key,key=kept",
            "key=%FF",
            "",
            long.as_str(),
            many.as_str(),
        ];
        let sdk = opentelemetry_sdk::propagation::BaggagePropagator::new();
        for header in headers {
            let fields: HashMap<String, String> = [(HEADER.to_string(), header.to_string())].into();
            let ours = BaggagePropagator.extract(&fields);
            let theirs = sdk.extract(&fields);
            assert_eq!(read(&ours), read(&theirs), "{header:?}");

            let (mut written, mut expected) = (HashMap::new(), HashMap::new());
            BaggagePropagator.inject_context(&ours, &mut written);
            sdk.inject_context(&theirs, &mut expected);
            let sorted = |fields: &HashMap<String, String>| {
                let mut members: Vec<String> =
                    fields.get(HEADER).map(|h| h.split(',').map(str::to_string).collect()).unwrap_or_default();
                members.sort();
                members
            };
            assert_eq!(sorted(&written), sorted(&expected), "{header:?}");
        }
    }
}
