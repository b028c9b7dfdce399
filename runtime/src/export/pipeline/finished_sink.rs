//! Where traced-core's finished spans go: to every processor of the
//! installed provider, collected by a thread of their own on a timer, when a
//! thread's buffer fills up, and (by the processors and the flush) when a
//! trace's root ends.

use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::thread::Thread;
use std::time::Duration;

use traced_core::__layers::{FinishedSpans, collect_finished, set_finished_sink};

use crate::export::messages;
use crate::export::pipeline::processor::BatchProcessor;

/// How long finished spans wait for the collector at most.
const COLLECT_EVERY: Duration = Duration::from_millis(500);

static TARGETS: RwLock<Vec<BatchProcessor>> = RwLock::new(Vec::new());
/// The collector thread; `None` when it could not be started (spans are then
/// collected when a trace's root ends and on every flush).
static COLLECTOR: OnceLock<Option<Thread>> = OnceLock::new();

fn deliver(finished: FinishedSpans) {
    let finished = Arc::new(finished);
    for processor in TARGETS.read().unwrap_or_else(PoisonError::into_inner).iter() {
        processor.take_finished(Arc::clone(&finished));
    }
}

fn wake() {
    if let Some(Some(collector)) = COLLECTOR.get() {
        collector.unpark();
    }
}

/// Routes finished spans to `processors` (spans left from an earlier
/// provider are dropped first) and starts the collector once per process.
pub(crate) fn start(processors: &[BatchProcessor]) {
    set_finished_sink(deliver, wake);
    collect_finished();
    *TARGETS.write().unwrap_or_else(PoisonError::into_inner) = processors.to_vec();
    COLLECTOR.get_or_init(|| {
        std::thread::Builder::new()
            .name("traced-collect".into())
            .spawn(|| {
                loop {
                    std::thread::park_timeout(COLLECT_EVERY);
                    collect_finished();
                }
            })
            .map(|handle| handle.thread().clone())
            .map_err(|error| messages::warn(&format!("the span collector thread did not start: {error}")))
            .ok()
    });
}

/// Stops routing: what is collected later has no provider.
pub(crate) fn stop() {
    TARGETS.write().unwrap_or_else(PoisonError::into_inner).clear();
}
