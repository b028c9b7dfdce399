//! Values that can become span attributes: [`AttrValue`] for single values,
//! [`SpanAttributes`] for types that describe themselves with several.

use std::borrow::Cow;
use std::rc::Rc;
use std::sync::Arc;

use opentelemetry::{Key, KeyValue, Value};

use crate::carrier::Carrier;
use crate::short_strings::string_value;

/// The attributes being collected for one span; only built when the span is
/// recording.
#[derive(Debug, Default)]
pub struct Attributes(pub(crate) Vec<KeyValue>);

impl Attributes {
    /// Adds one attribute.
    pub fn push(&mut self, key: &'static str, value: impl Into<Value>) {
        self.0.push(KeyValue::new(Key::from_static_str(key), value));
    }

    /// Adds every attribute `value` describes under `key`.
    pub fn record<T: AttrValue + ?Sized>(&mut self, key: &'static str, value: &T) {
        value.record(key, self);
    }
}

/// A value that can be recorded as a span attribute by `#[span(args(..))]`,
/// `attrs(..)` and `#[derive(SpanAttributes)]`.
///
/// Numbers, bools, strings, `Option`s of those (`None` records nothing),
/// references and smart pointers to them, and types deriving
/// [`SpanAttributes`](derive@crate::SpanAttributes) implement it.
///
/// ```
/// # extern crate traced_core as traced;
/// struct Seed(u64);
///
/// impl traced::AttrValue for Seed {
///     fn record(&self, key: &'static str, attrs: &mut traced::Attributes) {
///         attrs.push(key, self.0 as i64);
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be recorded as a span attribute",
    label = "not a traced::AttrValue",
    note = "record a field or a computed value with attrs(key = expr), derive traced::SpanAttributes for it, \
            implement traced::AttrValue, or leave the argument out with skip(...)"
)]
pub trait AttrValue {
    /// Adds this value's attributes under `key`.
    fn record(&self, key: &'static str, attrs: &mut Attributes);
}

macro_rules! lossless_int {
    ($($t:ty),*) => {$(
        impl AttrValue for $t {
            fn record(&self, key: &'static str, attrs: &mut Attributes) {
                attrs.push(key, i64::from(*self));
            }
        }
    )*};
}
lossless_int!(i8, i16, i32, i64, u8, u16, u32);

macro_rules! wide_int {
    ($($t:ty),*) => {$(
        impl AttrValue for $t {
            /// OTel integers are i64: larger values are recorded as strings.
            fn record(&self, key: &'static str, attrs: &mut Attributes) {
                match i64::try_from(*self) {
                    Ok(value) => attrs.push(key, value),
                    Err(_) => attrs.push(key, self.to_string()),
                }
            }
        }
    )*};
}
wide_int!(u64, u128, i128, usize, isize);

impl AttrValue for f64 {
    fn record(&self, key: &'static str, attrs: &mut Attributes) {
        attrs.push(key, *self);
    }
}

impl AttrValue for f32 {
    fn record(&self, key: &'static str, attrs: &mut Attributes) {
        attrs.push(key, f64::from(*self));
    }
}

impl AttrValue for bool {
    fn record(&self, key: &'static str, attrs: &mut Attributes) {
        attrs.push(key, *self);
    }
}

impl AttrValue for str {
    fn record(&self, key: &'static str, attrs: &mut Attributes) {
        attrs.push(key, string_value(self));
    }
}

impl AttrValue for String {
    fn record(&self, key: &'static str, attrs: &mut Attributes) {
        attrs.push(key, string_value(self));
    }
}

impl AttrValue for char {
    fn record(&self, key: &'static str, attrs: &mut Attributes) {
        attrs.push(key, self.to_string());
    }
}

impl AttrValue for Cow<'_, str> {
    fn record(&self, key: &'static str, attrs: &mut Attributes) {
        attrs.push(key, string_value(self));
    }
}

impl<T: AttrValue> AttrValue for Option<T> {
    fn record(&self, key: &'static str, attrs: &mut Attributes) {
        if let Some(value) = self {
            value.record(key, attrs);
        }
    }
}

macro_rules! forward {
    ($($wrapper:ty),*) => {$(
        impl<T: AttrValue + ?Sized> AttrValue for $wrapper {
            fn record(&self, key: &'static str, attrs: &mut Attributes) {
                (**self).record(key, attrs);
            }
        }
    )*};
}
forward!(&T, &mut T, Box<T>, Arc<T>, Rc<T>);

/// A type that describes itself with span attributes; derive it with
/// `#[derive(SpanAttributes)]`. An `#[endpoint]` records its input's
/// attributes and takes its parent from the input's [`Carrier`] field.
pub trait SpanAttributes {
    /// Adds this value's attributes.
    fn span_attributes(&self, attrs: &mut Attributes);

    /// The W3C context this value carries from another app, if any.
    fn carrier(&self) -> Option<&Carrier> {
        None
    }

    /// The field a `traced::Client` fills with the caller's context.
    fn carrier_mut(&mut self) -> Option<&mut Carrier> {
        None
    }
}

impl<T: SpanAttributes + ?Sized> SpanAttributes for &T {
    fn span_attributes(&self, attrs: &mut Attributes) {
        (**self).span_attributes(attrs);
    }

    fn carrier(&self) -> Option<&Carrier> {
        (**self).carrier()
    }
}
