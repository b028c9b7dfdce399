//! Where traced's own messages go: configuration warnings, export failures
//! and recoveries, the shutdown report. Each is a `tracing` event with
//! target `traced` (`WARN` for what a person should fix or know was lost
//! for a while, `ERROR` for spans lost, `INFO` for the rest), so an app with
//! a `tracing` subscriber shows, filters (`RUST_LOG=traced=warn` through its
//! `EnvFilter`) or drops them, and traced prints nothing itself. Without a
//! subscriber they go to stderr as `traced: ...` lines, so that a
//! misconfigured endpoint is never silent. `TRACED_LOG=off` silences them
//! either way.
//!
//! The server's own lines (`serving on`, `stopping`, a setup that failed)
//! stay on stderr: they are an app framework's output, like a web server's
//! start-up banner, and a process with no subscriber at all must still say
//! where it listens.

use std::sync::OnceLock;

use crate::export::config::vars;

/// How much a message matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Severity {
    /// Worth knowing: a recovery, the shutdown report.
    Info,
    /// Worth fixing or watching: a bad variable, a collector away.
    Warn,
    /// Spans were lost.
    Error,
}

/// The `tracing` target of traced's own events.
pub(crate) const TARGET: &str = "traced";

/// Says `message` where the app's logs go.
pub(crate) fn say(severity: Severity, message: &str) {
    if silenced() {
        return;
    }
    if has_subscriber() {
        match severity {
            Severity::Info => tracing::info!(target: TARGET, "{message}"),
            Severity::Warn => tracing::warn!(target: TARGET, "{message}"),
            Severity::Error => tracing::error!(target: TARGET, "{message}"),
        }
        return;
    }
    match severity {
        Severity::Warn => eprintln!("traced: warning: {message}"),
        Severity::Info | Severity::Error => eprintln!("traced: {message}"),
    }
}

pub(crate) fn info(message: &str) {
    say(Severity::Info, message);
}

pub(crate) fn warn(message: &str) {
    say(Severity::Warn, message);
}

pub(crate) fn error(message: &str) {
    say(Severity::Error, message);
}

/// Whether this thread's events reach a subscriber: its own, or the
/// global one.
fn has_subscriber() -> bool {
    tracing::dispatcher::get_default(|dispatch| !dispatch.is::<tracing::subscriber::NoSubscriber>())
}

/// `TRACED_LOG=off`, read once.
fn silenced() -> bool {
    static SILENCED: OnceLock<bool> = OnceLock::new();
    *SILENCED.get_or_init(|| std::env::var(vars::LOG).is_ok_and(|value| value.trim().eq_ignore_ascii_case("off")))
}
