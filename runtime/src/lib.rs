//! OpenTelemetry tracing for model-serving apps, by annotation.
//!
//! `traced` builds the tracer provider from the standard `OTEL_*` environment,
//! exports over OTLP (opentelemetry-otlp: HTTP protobuf or JSON, gRPC, TLS)
//! or prints each trace as a tree, carries W3C trace context between apps,
//! and shuts down inside a budget without losing what can still be
//! delivered.
//!
//! It is built in layers that only look down: `traced-core` (what annotated
//! code calls: spans, attributes, context), then export (configuration, the
//! provider, exporters), then serve (the app lifecycle over HTTP, the tower
//! layer for existing services, the client). Everything of `traced-core` is
//! re-exported here; a library that only annotates its fns can depend on
//! `traced-core` alone.
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

// docs.rs marks what a feature gates.
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "tracing")]
mod bridge;
mod export;
mod metrics;
#[cfg(feature = "serve")]
mod serve;

#[doc(hidden)]
#[path = "__private.rs"]
pub mod __private;

#[cfg(feature = "tracing")]
#[cfg_attr(docsrs, doc(cfg(feature = "tracing")))]
pub use bridge::log_ids::{WithTraceIds, with_trace_ids};
#[cfg(feature = "tracing")]
#[cfg_attr(docsrs, doc(cfg(feature = "tracing")))]
pub use bridge::tracing_layer::{TracingLayer, tracing_layer};
pub use export::config::backend::Backend;
pub use export::config::env::ConfigWarning;
pub use export::config::otlp_headers::Headers;
pub use export::config::setting::{Setting, Source};
pub use export::config::vars;
pub use export::config::{BatchConfig, Config, ExporterKind, KeepConfig, OtlpConfig, Protocol, Sampler};
pub use export::console::ConsoleExporter;
pub use export::pipeline::stats::ExportStats;
pub use export::provider::{ShutdownReport, TracingGuard, flush, init, shutdown, stats};
pub use export::{doctor, otlp};
pub use metrics::instruments::meter;
pub use metrics::scrape::prometheus_metrics;
#[cfg(feature = "serve")]
#[cfg_attr(docsrs, doc(cfg(feature = "serve")))]
pub use serve::{
    app::{App, BoxError},
    client::{Client, Propagation},
    client_error::ClientError,
    client_stream::EventStream,
    options::ServeOptions,
    reply::{HttpError, Reply},
    response_body::TracedBody,
    routes::Route,
    server::{serve, serve_until, shutdown_signal},
    trace_layer::{TraceLayer, TraceService, TracedResponse},
};
pub use traced_core::{
    AiKind, AttrValue, Attributes, Carrier, GenAiRequest, SpanAttributes, add_event, current_context, current_trace_id,
    extract, inject, inject_context, is_enabled, set_attribute, set_device_sync,
};
pub use traced_core::{endpoint, span};
#[cfg(feature = "serve")]
#[cfg_attr(docsrs, doc(cfg(feature = "serve")))]
pub use traced_macros::traced_app;

/// The README's Rust samples, compiled and run as doc tests (one of them
/// bridges `tracing`, so they run with that feature, as the test command
/// builds `traced`; they serve, so they need `serve`).
#[cfg(all(doctest, feature = "tracing", feature = "serve"))]
#[doc = include_str!("../../README.md")]
struct ReadmeSamples;
