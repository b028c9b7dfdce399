//! Reading the environment: each variable trimmed, an empty one unset, and a
//! bad value reported once, as a [`ConfigWarning`] naming the variable, the
//! value and what is used instead.

use std::fmt;
use std::num::NonZeroUsize;
use std::time::Duration;

/// One problem found in the configuration: the variable, the rejected value
/// (redacted where it may be a secret) and what is used instead.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfigWarning {
    /// The environment variable at fault.
    pub variable: &'static str,
    /// The value that was rejected, already redacted where needed.
    pub value: String,
    /// Why it was rejected and what is used instead.
    pub message: String,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={:?}: {}", self.variable, self.value, self.message)
    }
}

/// Reads variables, treating empty values as unset, and collects warnings.
pub(crate) struct Env<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    pub(crate) warnings: Vec<ConfigWarning>,
}

impl<'a> Env<'a> {
    /// Reads from `lookup`.
    pub(crate) fn new(lookup: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Env { lookup, warnings: Vec::new() }
    }

    pub(crate) fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name).map(|value| value.trim().to_string()).filter(|value| !value.is_empty())
    }

    /// Records a warning once: a generic variable read for two signals
    /// is reported once.
    pub(crate) fn warn(&mut self, variable: &'static str, value: impl Into<String>, message: impl Into<String>) {
        let warning = ConfigWarning { variable, value: value.into(), message: message.into() };
        if !self.warnings.contains(&warning) {
            self.warnings.push(warning);
        }
    }

    /// The spec's boolean: `true` (any case) is true; `false` is false;
    /// anything else is false with a warning.
    pub(crate) fn flag(&mut self, name: &'static str) -> Option<bool> {
        let raw = self.get(name)?;
        match raw.to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => {
                self.warn(name, raw, "expected true or false; using false");
                Some(false)
            }
        }
    }

    pub(crate) fn millis(&mut self, name: &'static str, fallback: Duration) -> Option<Duration> {
        let instead = format!("{} ms", fallback.as_millis());
        self.parsed(name, "whole milliseconds", &instead).map(Duration::from_millis)
    }

    /// A value of any type that parses from text; otherwise a warning that
    /// it is not `expected` and that `instead` is used.
    pub(crate) fn parsed<T: std::str::FromStr>(
        &mut self,
        name: &'static str,
        expected: &str,
        instead: &str,
    ) -> Option<T> {
        let raw = self.get(name)?;
        match raw.parse::<T>() {
            Ok(value) => Some(value),
            Err(_) => {
                self.warn(name, raw, format!("expected {expected}; using {instead}"));
                None
            }
        }
    }

    pub(crate) fn positive(&mut self, name: &'static str, fallback: usize) -> Option<usize> {
        self.parsed(name, "a positive integer", &fallback.to_string()).map(NonZeroUsize::get)
    }

    pub(crate) fn ratio(&mut self, name: &'static str, fallback: f64) -> Option<f64> {
        let raw = self.get(name)?;
        match raw.parse::<f64>() {
            Ok(ratio) if (0.0..=1.0).contains(&ratio) => Some(ratio),
            _ => {
                self.warn(name, raw, format!("expected a number from 0 to 1; using {fallback}"));
                None
            }
        }
    }

    /// The signal-specific variable wins over the generic one.
    pub(crate) fn signal(&self, own: &'static str, generic: &'static str) -> Option<(&'static str, String)> {
        self.get(own).map(|v| (own, v)).or_else(|| self.get(generic).map(|v| (generic, v)))
    }
}

/// `key=value` with both sides percent-decoded (W3C baggage octets).
pub(crate) fn parse_key_value(entry: &str) -> Option<(String, String)> {
    let (key, value) = entry.split_once('=')?;
    let key = percent_encoding::percent_decode_str(key.trim()).decode_utf8().ok()?;
    let value = percent_encoding::percent_decode_str(value.trim()).decode_utf8().ok()?;
    (!key.is_empty()).then(|| (key.into_owned(), value.into_owned()))
}
