//! An object-safe face for exporters (`SpanExporter::export` returns `impl
//! Future`), so one batch processor type can drive any of them, and what
//! only traced's OTLP exporter does: say whether a failure may pass (the
//! collector away) and send requests traced encodes itself.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

use crate::export::failure::{ExportFailure, FailureCause};

pub(crate) type ExportFuture<'a> = Pin<Box<dyn Future<Output = OTelSdkResult> + Send + 'a>>;
pub(crate) type ClassifiedFuture<'a> = Pin<Box<dyn Future<Output = Result<(), ExportFailure>> + Send + 'a>>;

pub(crate) trait DynExporter: Send + Sync + std::fmt::Debug {
    fn export(&self, batch: Vec<SpanData>) -> ExportFuture<'_>;
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult;
    fn set_resource(&mut self, resource: &Resource);

    /// Whether its failures tell a collector that is away from one that
    /// refuses for good: only then do failed requests wait.
    fn classifies_failures(&self) -> bool {
        false
    }

    /// `export`, the failure with its cause.
    fn export_classified(&self, batch: Vec<SpanData>) -> ClassifiedFuture<'_> {
        Box::pin(async move {
            self.export(batch)
                .await
                .map_err(|error| ExportFailure::new(String::new(), FailureCause::Other(error.to_string())))
        })
    }

    /// Whether it takes OTLP requests traced encodes itself.
    fn sends_encoded(&self) -> bool {
        false
    }

    /// Sends an OTLP request traced encoded.
    fn send_encoded(&self, _body: Bytes) -> ClassifiedFuture<'_> {
        Box::pin(async {
            Err(ExportFailure::new(
                String::new(),
                FailureCause::Other("this exporter sends no encoded requests".into()),
            ))
        })
    }
}

/// Any exporter but traced's OTLP one: the console, or a user's.
#[derive(Debug)]
pub(crate) struct Sdk<E>(pub(crate) E);

impl<E: SpanExporter + 'static> DynExporter for Sdk<E> {
    fn export(&self, batch: Vec<SpanData>) -> ExportFuture<'_> {
        Box::pin(SpanExporter::export(&self.0, batch))
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        SpanExporter::shutdown_with_timeout(&self.0, timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        SpanExporter::set_resource(&mut self.0, resource);
    }
}

/// A user's exporter held by a cloneable `Config` until `init` takes it.
pub(crate) type SharedExporter = Arc<Mutex<Option<Box<dyn DynExporter>>>>;
