//! What an AI span does, as OpenInference names it: the kind Phoenix and
//! other LLM-observability backends group and draw spans by
//! (`openinference.span.kind`). Every traced span carries one; a span not
//! given one is a `CHAIN` step, a kind the export layer adds on its own
//! thread so that the default costs the instrumented call nothing.

/// A span's OpenInference kind, given with `#[span(ai_kind = llm)]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum AiKind {
    /// A call to a generative model: an LLM, a diffusion UNet.
    Llm,
    /// A model that turns input into vectors: a text encoder.
    Embedding,
    /// A step that links others: an endpoint, a pipeline stage (the default).
    #[default]
    Chain,
    /// A function the model or the app calls: an upload, a search.
    Tool,
    /// A lookup of documents or examples.
    Retriever,
    /// A reordering of retrieved documents.
    Reranker,
    /// A loop that decides which steps to take.
    Agent,
    /// A check that guards input or output.
    Guardrail,
    /// A judgement of output quality.
    Evaluator,
}

impl AiKind {
    /// The attribute value: `LLM`, `EMBEDDING`, `CHAIN`, ...
    pub const fn as_str(self) -> &'static str {
        match self {
            AiKind::Llm => "LLM",
            AiKind::Embedding => "EMBEDDING",
            AiKind::Chain => "CHAIN",
            AiKind::Tool => "TOOL",
            AiKind::Retriever => "RETRIEVER",
            AiKind::Reranker => "RERANKER",
            AiKind::Agent => "AGENT",
            AiKind::Guardrail => "GUARDRAIL",
            AiKind::Evaluator => "EVALUATOR",
        }
    }
}

/// The attribute key backends read the kind from.
pub const AI_KIND_KEY: &str = "openinference.span.kind";

/// True when `attributes` already name an OpenInference kind (the default,
/// CHAIN, is added on the export side only to spans that do not).
pub fn has_ai_kind(attributes: &[opentelemetry::KeyValue]) -> bool {
    attributes.iter().any(|kv| kv.key.as_str() == AI_KIND_KEY)
}
