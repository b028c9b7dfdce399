//! The app's own instruments: counters, histograms and gauges made through
//! the OpenTelemetry `Meter` API (`opentelemetry::global::meter`, or
//! [`crate::meter`]). `traced::init` installs a meter provider globally whose
//! reader is read on each scrape, so they are served on `/metrics` beside the
//! request metrics, with the app's resource.

use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use opentelemetry::metrics::Meter;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::reader::MetricReader;
use opentelemetry_sdk::metrics::{InstrumentKind, ManualReader, Pipeline, SdkMeterProvider, Temporality};

/// The installed provider, the reader a scrape reads (cumulative), and the
/// push's when it wants another temporality.
struct Installed {
    provider: SdkMeterProvider,
    reader: Arc<ManualReader>,
    push_reader: Option<Arc<ManualReader>>,
}

static INSTALLED: Mutex<Option<Installed>> = Mutex::new(None);

/// The reader, shared between the provider and the scrape.
#[derive(Debug)]
struct SharedReader(Arc<ManualReader>);

impl MetricReader for SharedReader {
    fn register_pipeline(&self, pipeline: Weak<Pipeline>) {
        self.0.register_pipeline(pipeline);
    }

    fn collect(&self, metrics: &mut ResourceMetrics) -> OTelSdkResult {
        self.0.collect(metrics)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn temporality(&self, kind: InstrumentKind) -> Temporality {
        self.0.temporality(kind)
    }
}

/// Installs the global meter provider with the app's resource; the push
/// reads with `push_temporality`.
pub(crate) fn install(resource: Resource, push_temporality: Temporality) {
    let reader = Arc::new(ManualReader::builder().build());
    let mut builder =
        SdkMeterProvider::builder().with_resource(resource).with_reader(SharedReader(Arc::clone(&reader)));
    let push_reader = (push_temporality != Temporality::Cumulative)
        .then(|| Arc::new(ManualReader::builder().with_temporality(push_temporality).build()));
    if let Some(push_reader) = &push_reader {
        builder = builder.with_reader(SharedReader(Arc::clone(push_reader)));
    }
    let provider = builder.build();
    opentelemetry::global::set_meter_provider(provider.clone());
    *INSTALLED.lock().unwrap_or_else(PoisonError::into_inner) = Some(Installed { provider, reader, push_reader });
}

/// Shuts the provider down: instruments made later record nothing.
pub(crate) fn shutdown() {
    if let Some(installed) = INSTALLED.lock().unwrap_or_else(PoisonError::into_inner).take() {
        let _ = installed.provider.shutdown();
    }
}

/// What the app's instruments hold now, cumulative (for a scrape); `None`
/// before `init` or after shutdown.
pub(crate) fn collect() -> Option<ResourceMetrics> {
    let reader = INSTALLED.lock().unwrap_or_else(PoisonError::into_inner).as_ref().map(|i| Arc::clone(&i.reader))?;
    read(&reader)
}

/// The same for a push, in its temporality (delta: since the last push).
pub(crate) fn collect_for_push() -> Option<ResourceMetrics> {
    let reader = INSTALLED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        .map(|i| Arc::clone(i.push_reader.as_ref().unwrap_or(&i.reader)))?;
    read(&reader)
}

fn read(reader: &ManualReader) -> Option<ResourceMetrics> {
    let mut metrics = ResourceMetrics::default();
    reader.collect(&mut metrics).ok()?;
    Some(metrics)
}

/// A meter for the app's own instruments, from the provider `traced::init`
/// installed (the same as `opentelemetry::global::meter(name)`); they are
/// served on `/metrics` beside the request metrics.
///
/// ```
/// use opentelemetry::KeyValue;
///
/// let images = traced::meter("text-to-image").u64_counter("images.made").build();
/// images.add(1, &[KeyValue::new("model", "tiny-unet")]);
/// ```
pub fn meter(name: &'static str) -> Meter {
    opentelemetry::global::meter(name)
}
