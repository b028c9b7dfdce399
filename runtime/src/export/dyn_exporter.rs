//! An object-safe face for `SpanExporter` (whose `export` returns `impl
//! Future`), so one batch processor type can drive any exporter.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

pub(crate) type ExportFuture<'a> = Pin<Box<dyn Future<Output = OTelSdkResult> + Send + 'a>>;

pub(crate) trait DynExporter: Send + Sync + std::fmt::Debug {
    fn export(&self, batch: Vec<SpanData>) -> ExportFuture<'_>;
    /// For the processor to find traced's OTLP exporter, which can send
    /// requests traced encodes itself.
    fn as_any(&self) -> &dyn Any;
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult;
    fn set_resource(&mut self, resource: &Resource);
}

impl<E: SpanExporter + 'static> DynExporter for E {
    fn export(&self, batch: Vec<SpanData>) -> ExportFuture<'_> {
        Box::pin(SpanExporter::export(self, batch))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        SpanExporter::shutdown_with_timeout(self, timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        SpanExporter::set_resource(self, resource);
    }
}

/// A user's exporter held by a cloneable `Config` until `init` takes it.
pub(crate) type SharedExporter = Arc<Mutex<Option<Box<dyn DynExporter>>>>;
