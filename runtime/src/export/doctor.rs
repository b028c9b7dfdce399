//! Sends one test trace the way the configured exporter would, and says
//! precisely why it did not arrive: what `traced-doctor` runs, and what an app
//! can run at startup as a readiness check.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use opentelemetry::KeyValue;
use opentelemetry::trace::{SpanKind, TraceContextExt as _, Tracer as _, TracerProvider as _};
use opentelemetry_otlp::RetryPolicy;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SimpleSpanProcessor, SpanData, SpanExporter};

use crate::export::config::Config;
use crate::export::otlp::{ExportFailure, FailureCause, OtlpExporter};
use crate::export::provider::resource;

/// A test trace the receiver accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Delivered {
    /// The test trace's id, to look up in the backend.
    pub trace_id: String,
    /// Where it went, credentials removed.
    pub endpoint: String,
    /// How long the request took.
    pub elapsed: Duration,
}

/// Sends a two-span test trace to `config`'s OTLP endpoint, once, on a
/// runtime of its own, and answers within the flush budget.
pub fn send_test_trace(config: &Config) -> Result<Delivered, ExportFailure> {
    // A readiness check answers within the budget a shutdown would have.
    let mut config = config.clone();
    config.otlp.timeout.value = config.otlp.timeout.value.min(config.flush_budget.value);
    let config = &config;
    let url = config.otlp_traces_url().unwrap_or_default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ExportFailure::new(url.clone(), FailureCause::Other(format!("no runtime: {e}"))))?;
    let mut exporter = {
        let _inside = runtime.enter();
        OtlpExporter::build(config, RetryPolicy::disabled(), Arc::default())
            .map_err(|why| ExportFailure::new(url.clone(), FailureCause::Other(why)))?
    };
    let resource = resource(config);
    SpanExporter::set_resource(&mut exporter, &resource);
    let (trace_id, spans) = test_trace(resource);
    let started = Instant::now();
    let limit = config.otlp.timeout.value + DEADLINE_SLACK;
    match runtime.block_on(async { tokio::time::timeout(limit, exporter.send(spans)).await }) {
        Ok(sent) => sent?,
        Err(_) => return Err(ExportFailure::new(url, FailureCause::Timeout(config.otlp.timeout.value))),
    }
    Ok(Delivered { trace_id, endpoint: exporter.endpoint(), elapsed: started.elapsed() })
}

/// Beyond the request timeout, before a check that still waits gives up.
const DEADLINE_SLACK: Duration = Duration::from_millis(100);

/// Builds a real trace through the SDK: a server root with one child.
fn test_trace(resource: opentelemetry_sdk::Resource) -> (String, Vec<SpanData>) {
    let collected = Collected::default();
    let provider = SdkTracerProvider::builder()
        .with_resource(resource)
        .with_span_processor(SimpleSpanProcessor::new(collected.clone()))
        .build();
    let tracer = provider.tracer("traced-doctor");
    let trace_id = tracer.in_span("traced-doctor", |cx| {
        cx.span().set_attribute(KeyValue::new("traced.doctor", true));
        let child = tracer.span_builder("test-span").with_kind(SpanKind::Internal).start(&tracer);
        drop(child);
        cx.span().span_context().trace_id().to_string()
    });
    let _ = provider.shutdown_with_timeout(Duration::ZERO);
    let spans = std::mem::take(&mut *collected.0.lock().unwrap_or_else(PoisonError::into_inner));
    (trace_id, spans)
}

#[derive(Clone, Debug, Default)]
struct Collected(Arc<Mutex<Vec<SpanData>>>);

impl SpanExporter for Collected {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).extend(batch);
        Ok(())
    }
}
