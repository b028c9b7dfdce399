//! Annotated with `traced-core` depended on as `tcore`, a name the
//! workspace's manifest gives it (`tcore = { workspace = true }` here): the
//! expansions name `::tcore`, found through both manifests, or the path
//! `crate =` gives.

/// Traced through the manifest's name for traced-core.
#[tcore::span(name = "tokenize", attrs(model.name = "tiny-clip"))]
#[must_use]
pub fn tokenize(prompt: &str) -> usize {
    prompt.len()
}

/// How a crate that re-exports traced hands it on.
pub mod reexport {
    pub use tcore as tr;
}

/// Traced through a path given in the annotation.
#[tcore::span(crate = crate::reexport::tr, name = "detokenize")]
#[must_use]
pub fn detokenize(tokens: usize) -> String {
    "x".repeat(tokens)
}

/// Recorded as span attributes through the manifest's name.
#[derive(tcore::SpanAttributes)]
#[span_attrs(all)]
pub struct Request {
    /// The prompt's length.
    pub tokens: usize,
}

/// Recorded as span attributes through a path given on the struct.
#[derive(tcore::SpanAttributes)]
#[span_attrs(crate = crate::reexport::tr)]
pub struct Reply {
    /// How many tokens came back.
    #[span_attr(name = "reply.tokens")]
    pub tokens: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotated_fns_build_and_run_on_traced_core_under_another_name() {
        assert_eq!(tokenize("a red circle"), 12);
        assert_eq!(detokenize(3), "xxx");
        let mut attributes = tcore::Attributes::default();
        tcore::SpanAttributes::span_attributes(&Request { tokens: 4 }, &mut attributes);
        assert!(format!("{attributes:?}").contains("tokens"), "{attributes:?}");
        tcore::SpanAttributes::span_attributes(&Reply { tokens: 5 }, &mut attributes);
        assert!(format!("{attributes:?}").contains("reply.tokens"), "{attributes:?}");
    }
}
