//! The tracer spans come from, the flag every instrumented call reads first,
//! and the flush a failing span may ask for: filled by the export layer at
//! init, emptied at shutdown. The core knows no provider of its own.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{OnceLock, PoisonError, RwLock};

use opentelemetry::Context;
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

/// Read on every instrumented call: one relaxed load decides whether any
/// tracing work happens at all.
static TRACING_ON: AtomicBool = AtomicBool::new(false);
static TRACER: RwLock<Option<SdkTracer>> = RwLock::new(None);
/// With a parent-based sampler, children of an unsampled span are unsampled
/// too, so they need not be created at all.
static PARENT_BASED: AtomicBool = AtomicBool::new(false);
static FLUSH_HOOK: OnceLock<fn()> = OnceLock::new();

/// True while a tracer provider is installed and recording.
///
/// ```
/// assert!(!traced_core::is_enabled());
/// ```
#[inline]
pub fn is_enabled() -> bool {
    TRACING_ON.load(Ordering::Relaxed)
}

/// Makes spans come from `provider`; `parent_based` says whether its sampler
/// follows the parent's decision.
pub fn install_tracer(provider: &SdkTracerProvider, parent_based: bool) {
    let scope = opentelemetry::InstrumentationScope::builder("traced").with_version(env!("CARGO_PKG_VERSION")).build();
    *TRACER.write().unwrap_or_else(PoisonError::into_inner) = Some(provider.tracer_with_scope(scope));
    PARENT_BASED.store(parent_based, Ordering::Relaxed);
    TRACING_ON.store(true, Ordering::Relaxed);
}

/// Stops making spans: instrumented calls pay one load again.
pub fn remove_tracer() {
    TRACING_ON.store(false, Ordering::Relaxed);
    *TRACER.write().unwrap_or_else(PoisonError::into_inner) = None;
}

/// Sets what a span marked `flush_on_failure` calls when it ends in failure
/// (a failed setup, followed by the process exiting). Only the first call
/// takes effect.
pub fn set_flush_hook(flush: fn()) {
    let _ = FLUSH_HOOK.set(flush);
}

pub(crate) fn flush() {
    if let Some(flush) = FLUSH_HOOK.get() {
        flush();
    }
}

/// True when a child of `parent` would not be sampled either (its span is
/// unsampled and the sampler follows the parent), so it need not be made:
/// `parent` already carries everything propagation needs.
pub(crate) fn skips_children_of(parent: &Context) -> bool {
    let span = parent.span();
    let context = span.span_context();
    context.is_valid() && !context.is_sampled() && PARENT_BASED.load(Ordering::Relaxed)
}

/// Runs `start` with the installed tracer, under the read lock rather than
/// cloning it: two atomic operations fewer on every span.
pub(crate) fn with_tracer<T>(start: impl FnOnce(&SdkTracer) -> T) -> Option<T> {
    TRACER.read().unwrap_or_else(PoisonError::into_inner).as_ref().map(start)
}
