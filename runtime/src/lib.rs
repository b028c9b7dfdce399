//! OpenTelemetry tracing for model-serving apps, by annotation.
//!
//! `traced` builds the tracer provider from the standard `OTEL_*` environment,
//! exports over OTLP (HTTP protobuf or JSON, gRPC, TLS) or prints each trace
//! as a tree, carries W3C trace context between apps, and shuts down inside a
//! budget without losing what can still be delivered.
//!
//! ```
//! use opentelemetry::trace::{Tracer as _, TracerProvider as _};
//!
//! // Environment first: OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_SAMPLE_RATE, ...
//! // override what the code sets here.
//! let guard = traced::init(traced::Config::default().service_name("quickstart"));
//! let tracer = opentelemetry::global::tracer("quickstart");
//! tracer.in_span("text-to-image", |_cx| {
//!     let trace_id = traced::current_trace_id().expect("a span is current");
//!     assert_eq!(trace_id.len(), 32);
//!     // The context, ready for the next app's request body.
//!     assert!(traced::inject().get("traceparent").is_some());
//! });
//! // Flushes within the budget (4 s unless TRACED_FLUSH_BUDGET_MS says otherwise).
//! let report = guard.shutdown();
//! assert_eq!(report.stats.exported, 1);
//! ```

mod app;
mod attributes;
mod backend;
mod client;
mod config;
mod console;
mod current;
mod device;
pub mod doctor;
mod dyn_exporter;
mod headers;
pub mod otlp;
mod processor;
mod propagation;
mod provider;
mod routes;
mod serve;
mod span_handle;
mod span_queue;
mod stream;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use app::{App, BoxError};
pub use attributes::{AttrValue, Attributes, SpanAttributes};
pub use backend::Backend;
pub use client::{Client, ClientError, Propagation};
pub use config::{
    BatchConfig, Config, ConfigWarning, ExporterKind, Headers, OtlpConfig, Protocol, Sampler, Setting, Source, vars,
};
pub use console::ConsoleExporter;
pub use current::{add_event, set_attribute};
pub use device::set_device_sync;
pub use processor::ExportStats;
pub use propagation::{Carrier, current_trace_id, extract, inject, inject_context};
pub use provider::{ShutdownReport, TracingGuard, flush, init, is_enabled, shutdown, stats};
pub use routes::{HttpError, Reply, Route};
pub use serve::{ServeOptions, serve, serve_until, shutdown_signal};
pub use traced_macros::{SpanAttributes, endpoint, span, traced_app};
