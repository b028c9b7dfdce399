//! What an `#[endpoint]` takes from its input: the attributes and the carrier
//! of a type that derives `SpanAttributes`, nothing from any other type.
//!
//! The input type is only known where the endpoint is written, so generated
//! code asks through autoref specialization.

use crate::attributes::{Attributes, SpanAttributes};
use crate::carrier::Carrier;

/// An endpoint's input, borrowed for inspection.
pub struct Input<'a, T>(pub &'a T);

/// The input derives `SpanAttributes`.
pub trait ViaSpanAttributes {
    /// The carrier field, if the input has one.
    fn __traced_carrier(&self) -> Option<&Carrier>;
    /// Records the input's attributes.
    fn __traced_attributes(&self, attrs: &mut Attributes);
}

impl<T: SpanAttributes> ViaSpanAttributes for &Input<'_, T> {
    fn __traced_carrier(&self) -> Option<&Carrier> {
        self.0.carrier()
    }

    fn __traced_attributes(&self, attrs: &mut Attributes) {
        self.0.span_attributes(attrs);
    }
}

/// Any other input.
pub trait ViaPlainInput {
    /// None.
    fn __traced_carrier(&self) -> Option<&Carrier>;
    /// Nothing.
    fn __traced_attributes(&self, attrs: &mut Attributes);
}

impl<T> ViaPlainInput for Input<'_, T> {
    fn __traced_carrier(&self) -> Option<&Carrier> {
        None
    }

    fn __traced_attributes(&self, _attrs: &mut Attributes) {}
}
