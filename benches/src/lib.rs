//! The ways a Rust service gets its spans to a backend, each set up the way
//! its documentation shows, each exporting to an in-process sink that counts
//! spans and drops them, so that only the span machinery is measured, never
//! a network.
//!
//! - `traced`: `traced::init` and the `#[span]` macro;
//! - `tracing`: `#[tracing::instrument]` with a `tracing-opentelemetry` layer
//!   over the SDK's `BatchSpanProcessor`;
//! - `sdk`: the OpenTelemetry SDK by hand (`tracer.in_span`), same processor;
//! - `fastrace`: `#[fastrace::trace]` with a reporter that counts
//!   ([`fastrace_reporter`]).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::{AtomicU64, Ordering};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracer, SdkTracerProvider, SpanData, SpanExporter};
use tracing_subscriber::layer::SubscriberExt as _;

/// Counts what it is given and drops it.
#[derive(Clone, Debug, Default)]
pub struct Discard(Arc<AtomicU64>);

impl Discard {
    /// Spans received so far.
    #[must_use]
    pub fn received(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl SpanExporter for Discard {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0.fetch_add(batch.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

/// Whether the spans under test are sampled.
#[derive(Clone, Copy, Debug)]
pub enum Sampling {
    /// Every span recorded and exported.
    All,
    /// No span recorded (a head sampler that keeps nothing).
    None,
}

/// `traced` installed as an app does, exporting to `exporter`.
pub fn traced_stack(sampling: Sampling, exporter: Discard) -> traced::TracingGuard {
    traced::init(traced_config(sampling, exporter).with_env_from(|_| None))
}

/// The configuration [`traced_stack`] installs, before the environment is
/// applied, for a bench that changes one more setting.
#[must_use]
pub fn traced_config(sampling: Sampling, exporter: Discard) -> traced::Config {
    let sampler = match sampling {
        Sampling::All => traced::Sampler::ParentBasedAlwaysOn,
        Sampling::None => traced::Sampler::ParentBasedAlwaysOff,
    };
    traced::Config::default()
        .service_name("bench")
        .sampler(sampler)
        .exporters([traced::ExporterKind::None])
        .span_exporter(exporter)
}

/// The SDK's provider with its own batch processor, as hand-written setups build it.
#[must_use]
pub fn sdk_provider(sampling: Sampling, exporter: Discard) -> SdkTracerProvider {
    let sampler = match sampling {
        Sampling::All => {
            opentelemetry_sdk::trace::Sampler::ParentBased(Box::new(opentelemetry_sdk::trace::Sampler::AlwaysOn))
        }
        Sampling::None => {
            opentelemetry_sdk::trace::Sampler::ParentBased(Box::new(opentelemetry_sdk::trace::Sampler::AlwaysOff))
        }
    };
    SdkTracerProvider::builder()
        .with_sampler(sampler)
        .with_span_processor(BatchSpanProcessor::builder(exporter).build())
        .build()
}

/// The SDK's tracer, for spans written by hand.
#[must_use]
pub fn sdk_tracer(provider: &SdkTracerProvider) -> SdkTracer {
    provider.tracer("bench")
}

/// `tracing` with a `tracing-opentelemetry` layer over `provider`, the
/// default subscriber of this thread until the guard is dropped.
#[must_use]
pub fn tracing_stack(provider: &SdkTracerProvider) -> tracing::subscriber::DefaultGuard {
    let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("bench"));
    tracing::subscriber::set_default(tracing_subscriber::registry().with(layer))
}

static FASTRACE_REPORTED: AtomicU64 = AtomicU64::new(0);
static FASTRACE_SET: AtomicBool = AtomicBool::new(false);

struct CountingReporter;

impl fastrace::collector::Reporter for CountingReporter {
    fn report(&mut self, spans: Vec<fastrace::collector::SpanRecord>) {
        FASTRACE_REPORTED.fetch_add(spans.len() as u64, Ordering::Relaxed);
    }
}

/// Installs fastrace's counting reporter (once per process) and returns how
/// many spans it has been given so far.
pub fn fastrace_reporter() -> u64 {
    if !FASTRACE_SET.swap(true, Ordering::Relaxed) {
        fastrace::set_reporter(CountingReporter, fastrace::collector::Config::default());
    }
    FASTRACE_REPORTED.load(Ordering::Relaxed)
}

/// Spans fastrace's reporter has been given so far, after a flush.
#[must_use]
pub fn fastrace_reported() -> u64 {
    fastrace::flush();
    // The flush hands the spans over on a thread of its own.
    std::thread::sleep(std::time::Duration::from_millis(300));
    FASTRACE_REPORTED.load(Ordering::Relaxed)
}
