//! The OpenTelemetry GenAI semantic-convention attributes of an inference
//! request, set on the current span by a builder rather than by hand-typed
//! keys.

use opentelemetry::trace::TraceContextExt as _;
use opentelemetry::{Context, KeyValue};

use crate::request_slot::RequestSlot;

/// A GenAI request's attributes: `gen_ai.operation.name`,
/// `gen_ai.request.model` and the optional ones set, recorded on the
/// current span by [`GenAiRequest::record`].
///
/// ```
/// # extern crate traced_core as traced;
/// #[traced::span(ai_kind = llm)]
/// fn text_to_image(prompt: String) -> usize {
///     traced::GenAiRequest::new("generate_content", "tiny-unet").output_type("image").seed(42).record();
///     prompt.len()
/// }
/// assert_eq!(text_to_image("a red circle".into()), 12);
/// ```
#[derive(Clone, Debug)]
#[must_use = "nothing is recorded until `record` is called"]
pub struct GenAiRequest {
    operation: &'static str,
    model: String,
    attributes: Vec<KeyValue>,
}

impl GenAiRequest {
    /// An `operation` (`chat`, `generate_content`, `embeddings`, ...) of
    /// `model`.
    pub fn new(operation: &'static str, model: impl Into<String>) -> Self {
        let model = model.into();
        GenAiRequest {
            attributes: vec![
                KeyValue::new("gen_ai.operation.name", operation),
                KeyValue::new("gen_ai.request.model", model.clone()),
            ],
            operation,
            model,
        }
    }

    /// What it outputs: `text`, `json`, `image`, `speech`.
    pub fn output_type(self, output: &'static str) -> Self {
        self.with("gen_ai.output.type", output)
    }

    /// The seed of a reproducible request.
    pub fn seed(self, seed: i64) -> Self {
        self.with("gen_ai.request.seed", seed)
    }

    /// The system that serves the model (`gen_ai.provider.name`).
    pub fn provider(self, provider: &'static str) -> Self {
        self.with("gen_ai.provider.name", provider)
    }

    /// The sampling temperature.
    pub fn temperature(self, temperature: f64) -> Self {
        self.with("gen_ai.request.temperature", temperature)
    }

    /// The most tokens the model may produce.
    pub fn max_tokens(self, tokens: i64) -> Self {
        self.with("gen_ai.request.max_tokens", tokens)
    }

    fn with(mut self, key: &'static str, value: impl Into<opentelemetry::Value>) -> Self {
        self.attributes.push(KeyValue::new(key, value));
        self
    }

    /// Sets the attributes on the current span, when it is recording.
    pub fn record(self) {
        // A served request's GenAI metrics are counted by them too.
        if let Some(slot) = Context::current().get::<RequestSlot>() {
            slot.note_gen_ai(self.operation, &self.model);
        }
        if let Some(frame) = crate::local_span::newest() {
            for attribute in self.attributes {
                crate::local_span::set_attribute(frame, attribute);
            }
            return;
        }
        let cx = Context::current();
        let span = cx.span();
        if span.is_recording() {
            span.set_attributes(self.attributes);
        }
    }
}
