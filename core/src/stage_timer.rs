//! `#[span(metrics)]`: a stage's duration, measured on every call whether
//! or not its span is sampled (or tracing is on), and handed to the hook the
//! metrics layer installs; with no hook, a call pays one load.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

static HOOK: OnceLock<fn(&'static str, Duration)> = OnceLock::new();

/// Sets where stage durations go. Only the first call takes effect.
pub fn set_stage_hook(hook: fn(&'static str, Duration)) {
    let _ = HOOK.set(hook);
}

/// Times one call of the stage `name`, from its start to its drop.
#[derive(Debug)]
pub struct StageTimer {
    name: &'static str,
    started: Option<Instant>,
}

impl StageTimer {
    /// Starts timing, when something takes the durations.
    #[inline]
    pub fn start(name: &'static str) -> Self {
        StageTimer { name, started: HOOK.get().map(|_| Instant::now()) }
    }
}

impl Drop for StageTimer {
    fn drop(&mut self) {
        if let (Some(started), Some(hook)) = (self.started, HOOK.get()) {
            hook(self.name, started.elapsed());
        }
    }
}
