//! Where and how the server listens, from the environment.

use std::num::NonZeroUsize;
use std::time::Duration;

use crate::export::config::Config;
use crate::export::config::env::{ConfigWarning, Env};

const DEFAULT_HOST: &str = "0.0.0.0";
const DEFAULT_PORT: u16 = 8080;

/// Where and how the server listens: `HOST`, `PORT`,
/// `TRACED_MAX_CONCURRENCY`, and the grace period from [`Config`].
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// The address to bind (default 0.0.0.0).
    pub host: String,
    /// The port (default 8080; 0 picks a free one).
    pub port: u16,
    /// Requests handled at once; more wait their turn (default: no limit).
    pub max_concurrency: Option<usize>,
    /// SIGTERM to exit.
    pub grace_period: Duration,
    /// What the environment got wrong.
    pub warnings: Vec<ConfigWarning>,
}

impl ServeOptions {
    /// Reads the process environment.
    pub fn from_env() -> Self {
        ServeOptions::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables from `lookup`, with the configuration's parser: a
    /// bad value is reported the way a bad `OTEL_*` value is.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let mut env = Env::new(&lookup);
        let host = env.get("HOST").unwrap_or_else(|| DEFAULT_HOST.to_string());
        let port =
            env.parsed("PORT", "a port number from 0 to 65535", &DEFAULT_PORT.to_string()).unwrap_or(DEFAULT_PORT);
        let max_concurrency = env
            .parsed::<NonZeroUsize>("TRACED_MAX_CONCURRENCY", "a positive integer", "no limit")
            .map(NonZeroUsize::get);
        let config = Config::default().with_env_from(&lookup);
        ServeOptions { host, port, max_concurrency, grace_period: config.grace_period.value, warnings: env.warnings }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(pairs: &[(&str, &str)]) -> ServeOptions {
        ServeOptions::from_lookup(|name| pairs.iter().find(|(key, _)| *key == name).map(|(_, value)| value.to_string()))
    }

    #[test]
    fn bad_values_warn_like_the_configuration_and_fall_back() {
        let bad = options(&[("PORT", "80800"), ("TRACED_MAX_CONCURRENCY", "0")]);
        assert_eq!((bad.port, bad.max_concurrency), (8080, None));
        let shown: Vec<String> = bad.warnings.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                r#"PORT="80800": expected a port number from 0 to 65535; using 8080"#,
                r#"TRACED_MAX_CONCURRENCY="0": expected a positive integer; using no limit"#,
            ]
        );
        let good = options(&[("HOST", " 127.0.0.1 "), ("PORT", "0"), ("TRACED_MAX_CONCURRENCY", "4")]);
        assert_eq!((good.host.as_str(), good.port, good.max_concurrency), ("127.0.0.1", 0, Some(4)));
        assert!(good.warnings.is_empty());
    }
}
