//! What starts the spans the core does not record itself, the flag every
//! instrumented call reads first, and the flush a failing span may ask for:
//! filled by the export layer at init, emptied at shutdown. The core knows
//! no provider and no SDK: it reaches the export layer's tracer through the
//! one hook installed here, as `tracing-core` reaches its subscriber through
//! a dispatcher.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{OnceLock, PoisonError, RwLock};

use opentelemetry::trace::{Link, SpanKind, TraceContextExt as _};
use opentelemetry::{Context, KeyValue};

/// Read on every instrumented call: one relaxed load decides whether any
/// tracing work happens at all.
static TRACING_ON: AtomicBool = AtomicBool::new(false);
static TRACER: RwLock<Option<Box<dyn StartSpan>>> = RwLock::new(None);
/// The sampler gives a child its parent's decision.
static FOLLOWS_PARENT: AtomicBool = AtomicBool::new(false);
/// Children of an unsampled span are unsampled and unrecorded too, so they
/// need not be created at all.
static SKIPS_UNSAMPLED: AtomicBool = AtomicBool::new(false);
/// `f64` bits of the ratio of new traces sampled, when a trace-id ratio
/// decides them and nothing else does (no keep rule); `NO_RATIO` otherwise.
static ROOT_RATIO: AtomicU64 = AtomicU64::new(NO_RATIO);
const NO_RATIO: u64 = u64::MAX;
/// Counts installs and removals.
static GENERATION: AtomicU64 = AtomicU64::new(0);
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

/// What the installed sampler decides, as far as traced's own spans need
/// to know.
#[derive(Clone, Copy, Debug)]
pub struct Sampling {
    /// A child gets its parent's decision (a `ParentBased` sampler).
    pub follows_parent: bool,
    /// Children of an unsampled span are not recorded either (no keep rule).
    pub skips_unsampled_children: bool,
    /// The ratio of new traces sampled, when a trace-id ratio alone decides.
    pub root_ratio: Option<f64>,
}

/// A span the core asks the export layer to start: async fns, streams,
/// spans with links, the `tracing` bridge's.
#[derive(Debug)]
pub struct SpanStart {
    /// The span's name.
    pub name: Cow<'static, str>,
    /// Its kind.
    pub kind: SpanKind,
    /// Its links; empty for most.
    pub links: Vec<Link>,
    /// Attributes the sampler sees; empty for most.
    pub attributes: Vec<KeyValue>,
}

/// The hook the export layer installs: it starts a span under `parent` (with
/// its tracer, under traced's instrumentation scope) and returns `parent`
/// with that span current.
pub trait StartSpan: Send + Sync {
    /// Starts `span` as a child of `parent`.
    fn start(&self, span: SpanStart, parent: &Context) -> Context;
}

/// Makes spans come from `tracer`, sampled as `sampling` says.
pub fn install_tracer(tracer: impl StartSpan + 'static, sampling: Sampling) {
    *TRACER.write().unwrap_or_else(PoisonError::into_inner) = Some(Box::new(tracer));
    FOLLOWS_PARENT.store(sampling.follows_parent, Ordering::Relaxed);
    SKIPS_UNSAMPLED.store(sampling.follows_parent && sampling.skips_unsampled_children, Ordering::Relaxed);
    ROOT_RATIO.store(sampling.root_ratio.map_or(NO_RATIO, f64::to_bits), Ordering::Relaxed);
    GENERATION.fetch_add(1, Ordering::Relaxed);
    TRACING_ON.store(true, Ordering::Relaxed);
}

/// Stops making spans: instrumented calls pay one load again.
pub fn remove_tracer() {
    TRACING_ON.store(false, Ordering::Relaxed);
    GENERATION.fetch_add(1, Ordering::Relaxed);
    *TRACER.write().unwrap_or_else(PoisonError::into_inner) = None;
}

#[inline]
pub(crate) fn follows_parent() -> bool {
    FOLLOWS_PARENT.load(Ordering::Relaxed)
}

#[inline]
pub(crate) fn skips_unsampled_children() -> bool {
    SKIPS_UNSAMPLED.load(Ordering::Relaxed)
}

#[inline]
pub(crate) fn root_ratio() -> Option<f64> {
    match ROOT_RATIO.load(Ordering::Relaxed) {
        NO_RATIO => None,
        bits => Some(f64::from_bits(bits)),
    }
}

#[inline]
pub(crate) fn generation() -> u64 {
    GENERATION.load(Ordering::Relaxed)
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
#[inline]
pub(crate) fn skips_children_of(parent: &Context) -> bool {
    let span = parent.span();
    let context = span.span_context();
    context.is_valid() && !context.is_sampled() && skips_unsampled_children()
}

/// Starts `span` under `parent` with the installed tracer, under the read
/// lock rather than cloning it: `None` when none is installed.
pub(crate) fn start_with_tracer(span: SpanStart, parent: &Context) -> Option<Context> {
    TRACER.read().unwrap_or_else(PoisonError::into_inner).as_ref().map(|tracer| tracer.start(span, parent))
}
