//! A configuration value and where it came from, so `traced-doctor` can say
//! why it is what it is.

use std::fmt;

/// Where a configuration value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// The crate's default.
    Default,
    /// Set in code through a builder method.
    Code,
    /// Read from the named environment variable.
    Environment(&'static str),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::Code => f.write_str("code"),
            Source::Environment(name) => write!(f, "env {name}"),
        }
    }
}

/// A configuration value and its [`Source`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Setting<T> {
    /// The value in force.
    pub value: T,
    /// Where it came from.
    pub source: Source,
}

impl<T> Setting<T> {
    pub(crate) fn default(value: T) -> Self {
        Setting { value, source: Source::Default }
    }

    pub(crate) fn code(&mut self, value: T) {
        *self = Setting { value, source: Source::Code };
    }

    pub(crate) fn env(&mut self, name: &'static str, value: T) {
        *self = Setting { value, source: Source::Environment(name) };
    }
}
