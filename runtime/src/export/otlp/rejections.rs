//! Spans a receiver accepted the request for but refused to keep (OTLP's
//! partial success): counted as dropped by the batch processor, the
//! receiver's message reported once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

/// Filled by the exporter as answers come, emptied by the processor after
/// each request it sent.
#[derive(Debug, Default)]
pub(crate) struct Rejections {
    spans: AtomicU64,
    message: Mutex<Option<String>>,
}

impl Rejections {
    pub(crate) fn record(&self, spans: u64, message: &str) {
        self.spans.fetch_add(spans, Ordering::Relaxed);
        let mut kept = self.message.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.is_none() && !message.is_empty() {
            *kept = Some(message.to_string());
        }
    }

    /// The spans rejected since the last call, and the receiver's message.
    pub(crate) fn take(&self) -> (u64, Option<String>) {
        let spans = self.spans.swap(0, Ordering::Relaxed);
        (spans, self.message.lock().unwrap_or_else(PoisonError::into_inner).take())
    }
}
