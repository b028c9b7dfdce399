//! The [`App`] trait `#[traced_app]` implements: a model server's lifecycle
//! with tracing set up first and flushed last.

use crate::export::config::Config;
use crate::export::provider::{flush_budget, init, is_installed, shutdown};
use crate::serve::routes::Route;

/// The error an app's setup may fail with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An inference app: built once in `setup`, serving requests through its
/// `#[endpoint]` methods, cleaned up in `teardown`. Implemented by
/// `#[traced_app]`; usable without any server.
pub trait App: Sized + Send + Sync + 'static {
    /// The service name: `#[traced_app(service = "...")]`, else
    /// `OTEL_SERVICE_NAME`, else the type's name in kebab-case.
    const SERVICE_NAME: &'static str;

    /// Installs the tracer provider from the environment, then runs the
    /// app's setup inside a `setup` span that starts a trace of its own.
    fn setup() -> Result<Self, BoxError>;

    /// Runs the app's teardown inside a `teardown` span, then flushes and
    /// shuts tracing down within the flush budget.
    fn teardown(&mut self);

    /// The `#[endpoint]`s, for `traced::serve`.
    fn routes() -> Vec<Route<Self>> {
        Vec::new()
    }

    /// Called when a shutdown starts, before in-flight requests are waited
    /// for: tell long requests to stop early. The app's own `handle_exit`.
    fn handle_exit(&self) {}
}

/// How `#[traced_app]` named the service.
#[derive(Clone, Copy, Debug)]
pub enum ServiceName {
    /// `service = "..."`: wins over the environment.
    Given(&'static str),
    /// The type's name, used when `OTEL_SERVICE_NAME` is not set.
    TypeName(&'static str),
}

/// Installs the provider for an app unless one is installed already (a test
/// or the embedding program may have called `traced::init` first).
pub fn install(service: ServiceName) {
    if is_installed() {
        return;
    }
    // The app owns tracing from here to its teardown, which shuts it down.
    std::mem::forget(init(app_config(service, |name| std::env::var(name).ok())));
}

/// The app's configuration: the environment, with the service name the
/// macro was given winning over `OTEL_SERVICE_NAME`, and the type's name
/// losing to it.
pub(crate) fn app_config(service: ServiceName, lookup: impl Fn(&str) -> Option<String>) -> Config {
    match service {
        ServiceName::Given(name) => Config::default().with_env_from(lookup).service_name(name),
        ServiceName::TypeName(name) => Config::default().service_name(name).with_env_from(lookup),
    }
}

/// Flushes and shuts down after the app's teardown.
pub fn finish() {
    shutdown(flush_budget());
}

/// What an app's `setup` may return: the app, or a `Result` of it.
pub trait IntoSetup<A> {
    /// The app, or the error that stopped it.
    fn into_setup(self) -> Result<A, BoxError>;
}

impl<A> IntoSetup<A> for A {
    fn into_setup(self) -> Result<A, BoxError> {
        Ok(self)
    }
}

impl<A, E: Into<BoxError>> IntoSetup<A> for Result<A, E> {
    fn into_setup(self) -> Result<A, BoxError> {
        self.map_err(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(name: ServiceName, env: Option<&str>) -> Option<String> {
        let lookup = |var: &str| (var == "OTEL_SERVICE_NAME").then(|| env.map(str::to_string)).flatten();
        app_config(name, lookup).service_name.value
    }

    #[test]
    fn the_given_name_beats_the_environment_which_beats_the_type_name() {
        assert_eq!(service(ServiceName::Given("text-to-image"), Some("from-env")).as_deref(), Some("text-to-image"));
        assert_eq!(service(ServiceName::TypeName("my-app"), Some("from-env")).as_deref(), Some("from-env"));
        assert_eq!(service(ServiceName::TypeName("my-app"), None).as_deref(), Some("my-app"));
    }
}
