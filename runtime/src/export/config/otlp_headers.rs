//! The headers every OTLP request carries (API keys): kept secret.

use std::fmt;

/// OTLP request headers. Values are secrets (API keys): `Debug` and every
/// report print the names only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    /// Sets a header, replacing one of the same (case-insensitive) name.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        self.0.retain(|(existing, _)| !existing.eq_ignore_ascii_case(&name));
        self.0.push((name, value.into()));
    }

    /// The headers as name/value pairs.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(name, value)| (name.as_str(), value.as_str()))
    }

    /// True when no header is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The header names with every value replaced by `***`.
    pub fn redacted(&self) -> String {
        let names: Vec<String> = self.0.iter().map(|(name, _)| format!("{name}=***")).collect();
        names.join(",")
    }
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter().map(|(name, _)| format!("{name}=***"))).finish()
    }
}
