//! An error and its `source()`s: walked once here for exception events, the
//! exporters' diagnosis and the client's messages.

use std::error::Error;

/// The error itself, then each of its sources in turn.
///
/// ```
/// let io = std::io::Error::other("disk full");
/// let texts: Vec<String> = traced_core::__layers::error_chain(&io).map(ToString::to_string).collect();
/// assert_eq!(texts, ["disk full"]);
/// ```
pub fn error_chain<'a>(error: &'a (dyn Error + 'static)) -> impl Iterator<Item = &'a (dyn Error + 'static)> {
    std::iter::successors(Some(error), |&error| error.source())
}

/// The deepest source: usually the one a person can act on.
pub fn innermost_source<'a>(error: &'a (dyn Error + 'static)) -> &'a (dyn Error + 'static) {
    error_chain(error).last().unwrap_or(error)
}

/// An error and its sources as one line, leaving out a source whose text an
/// earlier one already contains (many errors repeat their source's message).
pub fn chain_text(error: &(dyn Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    for text in error_chain(error).map(ToString::to_string) {
        if !parts.iter().any(|part| part.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Wrapped(std::io::Error, &'static str);

    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.1)
        }
    }

    impl Error for Wrapped {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn the_chain_runs_from_the_error_to_its_deepest_source() {
        let error = Wrapped(std::io::Error::other("refused"), "export failed");
        let texts: Vec<String> = error_chain(&error).map(ToString::to_string).collect();
        assert_eq!(texts, ["export failed", "refused"]);
        assert_eq!(innermost_source(&error).to_string(), "refused");
    }

    #[test]
    fn chain_text_skips_a_source_already_quoted() {
        assert_eq!(chain_text(&Wrapped(std::io::Error::other("refused"), "export failed")), "export failed: refused");
        assert_eq!(chain_text(&Wrapped(std::io::Error::other("refused"), "send: refused")), "send: refused");
    }
}
