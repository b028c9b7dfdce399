//! Annotated with `traced-core` depended on as `tcore`: the expansions name
//! `::tcore`, found in this crate's manifest, or the path `crate =` gives.

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
    }
}
