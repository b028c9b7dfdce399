//! A provider that records into memory for the behaviour tests. Unlike the
//! SDK's in-memory exporter, it keeps its spans through shutdown, so what a
//! teardown flushed can still be read.

#![allow(dead_code)]

pub(crate) mod served;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use opentelemetry::Value;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use traced::{Config, ExporterKind};

static ONE_PROVIDER_AT_A_TIME: Mutex<()> = Mutex::new(());

#[derive(Clone, Debug, Default)]
pub(crate) struct Collected(Arc<Mutex<Vec<SpanData>>>);

impl SpanExporter for Collected {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).extend(batch);
        Ok(())
    }
}

/// Installs a provider exporting to memory; shuts it down when dropped.
pub(crate) struct Recorder {
    collected: Collected,
    guard: Option<traced::TracingGuard>,
    _turn: MutexGuard<'static, ()>,
}

impl Recorder {
    pub(crate) fn start() -> Self {
        Recorder::with(Config::default())
    }

    pub(crate) fn with(config: Config) -> Self {
        let turn = ONE_PROVIDER_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
        let collected = Collected::default();
        let config = config.exporters([ExporterKind::None]).span_exporter(collected.clone()).with_env_from(|_| None);
        Recorder { collected, guard: Some(traced::init(config)), _turn: turn }
    }

    /// What has been exported so far, without flushing.
    pub(crate) fn exported(&self) -> Vec<SpanData> {
        self.collected.0.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Flushes, then every span exported.
    pub(crate) fn spans(&self) -> Vec<SpanData> {
        traced::flush(Duration::from_secs(2));
        self.exported()
    }

    /// The one span with this name.
    pub(crate) fn span(&self, name: &str) -> SpanData {
        let spans = self.spans();
        let found: Vec<_> = spans.iter().filter(|s| s.name == name).collect();
        assert_eq!(found.len(), 1, "one {name} in {:?}", spans.iter().map(|s| &s.name).collect::<Vec<_>>());
        found[0].clone()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if let Some(guard) = self.guard.take() {
            guard.shutdown();
        }
    }
}

pub(crate) fn attr(span: &SpanData, key: &str) -> Option<Value> {
    span.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| kv.value.clone())
}

pub(crate) fn event_attr(span: &SpanData, event: &str, key: &str) -> Option<Value> {
    let event = span.events.events.iter().find(|e| e.name == event)?;
    event.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| kv.value.clone())
}
