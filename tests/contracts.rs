//! What traced reads from opentelemetry-otlp without it being API, each
//! pinned by a test that fails when a new version of the library changes it,
//! so an upgrade cannot silently break failure diagnosis:
//!
//! - the text of a gRPC export's error, which names the code and, for a
//!   failure made on this side, its cause (`otlp::diagnosis` parses it);
//! - the `tracing` event the library logs a gRPC partial success with (the
//!   export thread listens for it to count rejected spans).
//!
//! Each test reads the library's own output first, then traced's reading of
//! the same failure through its public API.

use std::sync::{Arc, Mutex, PoisonError};

use opentelemetry::trace::{Tracer as _, TracerProvider as _};
use opentelemetry_otlp::{WithExportConfig as _, WithTonicConfig as _};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData, SpanExporter as _};
use traced::otlp::{FailureCause, OtlpExporter};
use traced::{Config, ExporterKind, Protocol};
use traced_tests::{PartialGrpcReceiver, closed_port};
use tracing::field::{Field, Visit};

/// One finished span, as the SDK hands it to an exporter.
fn one_span() -> Vec<SpanData> {
    let memory = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder().with_simple_exporter(memory.clone()).build();
    provider.tracer("contracts").in_span("text-to-image", |_| {});
    let spans = memory.get_finished_spans().expect("the span");
    assert_eq!(spans.len(), 1);
    spans
}

/// The library's own gRPC exporter, with no retries: what traced builds on.
fn library_exporter(endpoint: &str) -> opentelemetry_otlp::SpanExporter {
    let no_retries = opentelemetry_otlp::RetryPolicy::disabled();
    opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .with_retry_policy(no_retries)
        .build()
        .expect("the library's exporter")
}

/// traced's exporter for the same endpoint, over gRPC.
fn traced_exporter(endpoint: &str) -> OtlpExporter {
    let config = Config::default()
        .exporters([ExporterKind::Otlp])
        .otlp_endpoint(endpoint)
        .otlp_protocol(Protocol::Grpc)
        .with_env_from(|_| None);
    OtlpExporter::from_config(&config).expect("traced's exporter")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("a runtime")
}

#[test]
fn a_grpc_failure_on_this_side_is_named_by_code_then_cause() {
    let endpoint = format!("http://127.0.0.1:{}", closed_port());
    let runtime = runtime();
    let text = runtime.block_on(async {
        let error = library_exporter(&endpoint).export(one_span()).await.expect_err("nothing listens there");
        error.to_string()
    });
    // `classify_library_error` splits at "gRPC code: ", then at ": ".
    let (_, after) = text.split_once("gRPC code: ").unwrap_or_else(|| panic!("no gRPC code in {text:?}"));
    let (code, cause) = after.split_once(": ").unwrap_or_else(|| panic!("no cause after the code in {text:?}"));
    assert_eq!(code, "Unavailable", "{text}");
    assert!(cause.to_ascii_lowercase().contains("connection refused"), "{text}");

    let failure = runtime.block_on(async { traced_exporter(&endpoint).send(one_span()).await.expect_err("refused") });
    assert_eq!(failure.cause, FailureCause::ConnectionRefused, "{failure}");
}

/// A collector that refuses every request with `PermissionDenied`, as one
/// does for a revoked key.
struct Refusing;

#[tonic::async_trait]
impl TraceService for Refusing {
    async fn export(
        &self,
        _request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        Err(tonic::Status::permission_denied("the key was revoked"))
    }
}

#[test]
fn a_status_the_collector_answers_is_named_by_its_code() {
    let runtime = runtime();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("a loopback port");
    let endpoint = format!("http://{}", listener.local_addr().expect("its address"));
    runtime.spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Refusing))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    let text = runtime
        .block_on(async { library_exporter(&endpoint).export(one_span()).await.expect_err("refused").to_string() });
    // The library keeps the code and drops the collector's message (it may
    // echo a secret); traced reads the code from the text's end.
    assert!(text.ends_with("gRPC code: PermissionDenied"), "{text}");
    assert!(!text.contains("revoked"), "{text}");

    let failure = runtime.block_on(async { traced_exporter(&endpoint).send(one_span()).await.expect_err("refused") });
    match &failure.cause {
        FailureCause::Grpc { code, .. } => assert_eq!(code, "PermissionDenied", "{failure}"),
        other => panic!("not a gRPC status: {other:?}"),
    }
}

/// One event: its name, and its fields as text.
type HeardEvent = (String, Vec<(String, String)>);

/// The events the library logs.
#[derive(Clone, Default)]
struct Heard(Arc<Mutex<Vec<HeardEvent>>>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().to_string(), format!("{value:?}")));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_string(), value.to_string()));
    }
}

struct Fields<'a>(&'a mut Vec<(String, String)>);

impl tracing::Subscriber for Heard {
    fn enabled(&self, _metadata: &tracing::Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, _span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _span: &tracing::span::Id, _values: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _span: &tracing::span::Id, _follows: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = Vec::new();
        event.record(&mut Fields(&mut fields));
        self.0.lock().unwrap_or_else(PoisonError::into_inner).push((event.metadata().name().to_string(), fields));
    }

    fn enter(&self, _span: &tracing::span::Id) {}

    fn exit(&self, _span: &tracing::span::Id) {}
}

#[test]
fn a_grpc_partial_success_is_logged_as_the_event_traced_listens_for() {
    let receiver = PartialGrpcReceiver::start(2, "spans older than 24h");
    let heard = Heard::default();
    let runtime = runtime();
    let exported = {
        let _listening = tracing::subscriber::set_default(heard.clone());
        // Built inside the runtime: a gRPC channel starts its task there.
        runtime.block_on(async { library_exporter(&receiver.url).export(one_span()).await })
    };
    assert!(exported.is_ok(), "a partial success is a success: {exported:?}");
    let events = heard.0.lock().unwrap_or_else(PoisonError::into_inner).clone();
    // The name and fields `grpc_partial_success` matches on.
    let (_, fields) = events
        .iter()
        .find(|(name, _)| name == "TonicTracesClient.PartialSuccess")
        .unwrap_or_else(|| panic!("no partial-success event among {events:?}"));
    let field = |name: &str| fields.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str());
    assert_eq!(field("rejected_spans"), Some("2"), "{fields:?}");
    assert_eq!(field("error_message"), Some("spans older than 24h"), "{fields:?}");
    // traced counting them through the whole pipeline is
    // `exporters::spans_a_receiver_rejects_are_counted_as_dropped_and_the_rest_as_exported`.
}
