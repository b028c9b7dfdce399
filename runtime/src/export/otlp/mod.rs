//! The OTLP exporter: opentelemetry-otlp's, for HTTP (protobuf or JSON) and
//! gRPC, with its retries (429, 502, 503, 504, gRPC UNAVAILABLE and
//! RESOURCE_EXHAUSTED, honouring Retry-After). traced adds what the library
//! leaves out: its own HTTP client, so a failure keeps its cause and a
//! partial success its count; TLS from the configuration (a private CA, a
//! client certificate); and failures sorted into causes a person can act on.
//! Deadlines and request sizes are the batch processor's. Over http/protobuf
//! and gRPC, traced's own spans skip the library's conversion: they are
//! encoded from the span core's buffers and sent through the same HTTP
//! client, or a gRPC channel built as the library builds its own
//! (`direct`, `grpc`).

use std::sync::Arc;
use std::time::Duration;

pub(crate) mod diagnosis;
pub(crate) mod direct;
pub(crate) mod encoding;
#[cfg(feature = "grpc")]
pub(crate) mod grpc;
#[cfg(feature = "grpc")]
pub(crate) mod grpc_partial_success;
pub(crate) mod http_client;
pub(crate) mod refused;
pub(crate) mod rejections;
pub(crate) mod request_size;
pub(crate) mod tls;

use opentelemetry_otlp::{Compression, RetryPolicy, WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

use crate::export::config::setting::Source;
use crate::export::config::{Config, Protocol};
use crate::export::exporter::{ClassifiedFuture, DynExporter, ExportFuture};
pub use crate::export::failure::{ExportFailure, FailureCause};
use crate::export::otlp::diagnosis::classify_library_error;
use crate::export::otlp::direct::DirectTransport;
use crate::export::otlp::http_client::{LastFailure, TracedHttpClient};
use crate::export::otlp::rejections::Rejections;
use crate::export::otlp::tls::{TlsFiles, http_headers};
use crate::export::url::redact_url;

/// Requests the library sends itself stay under this: traced's own split
/// (`TRACED_OTLP_MAX_REQUEST_BYTES`) is what keeps them fitting.
const LIBRARY_BODY_LIMIT: usize = 64 * 1024 * 1024;

/// Exports spans over OTLP as the configuration says; see the module docs.
#[derive(Debug)]
pub struct OtlpExporter {
    inner: opentelemetry_otlp::SpanExporter,
    endpoint: String,
    timeout: Duration,
    path_hint: Option<String>,
    failures: Arc<LastFailure>,
    rejections: Arc<Rejections>,
    /// Where requests traced encodes itself go (http/protobuf and gRPC).
    direct: Option<DirectTransport>,
}

impl OtlpExporter {
    /// Builds the exporter for `config`'s OTLP settings. A request may take the
    /// whole OTLP timeout, retries included: only a flush or a shutdown, whose
    /// deadline the batch processor enforces, cuts one short.
    ///
    /// A gRPC exporter starts its connection's tasks on the tokio runtime it
    /// is made in: make it inside one.
    pub fn from_config(config: &Config) -> Result<Self, String> {
        OtlpExporter::build(config, RetryPolicy::recommended(), Arc::default())
    }

    /// With this retry policy, counting rejected spans in `rejections`.
    pub(crate) fn build(config: &Config, retries: RetryPolicy, rejections: Arc<Rejections>) -> Result<Self, String> {
        if let Some(missing) = config.otlp.protocol.value.missing_feature() {
            return Err(missing);
        }
        let endpoint = config.otlp_traces_url().ok_or("no OTLP endpoint is configured")?;
        let timeout = config.otlp.timeout.value;
        let failures = Arc::new(LastFailure::default());
        let (built, direct) = match config.otlp.protocol.value {
            #[cfg(feature = "grpc")]
            Protocol::Grpc => {
                let (library, grpc) = grpc::span_exporters(&config.otlp, &endpoint, retries, &rejections)?;
                (library, Some(DirectTransport::Grpc(grpc)))
            }
            protocol => {
                let client = TracedHttpClient {
                    client: TlsFiles::read(&config.otlp)?.http_client(timeout)?,
                    headers: http_headers(&config.otlp)?,
                    #[cfg(feature = "http-json")]
                    json: protocol == Protocol::HttpJson,
                    timeout,
                    failures: Arc::clone(&failures),
                    rejections: Arc::clone(&rejections),
                };
                let (wire, direct) = match protocol {
                    #[cfg(feature = "http-json")]
                    Protocol::HttpJson => (opentelemetry_otlp::Protocol::HttpJson, None),
                    _ => {
                        let direct = DirectTransport::Http {
                            client: client.clone(),
                            url: endpoint.clone(),
                            gzip: config.otlp.gzip.value,
                        };
                        (opentelemetry_otlp::Protocol::HttpBinary, Some(direct))
                    }
                };
                let mut builder = opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_http_client(client)
                    .with_endpoint(endpoint.as_str())
                    .with_protocol(wire)
                    .with_timeout(timeout)
                    .with_retry_policy(retries)
                    .with_max_request_body_size(LIBRARY_BODY_LIMIT.max(config.otlp_request_limit()));
                if config.otlp.gzip.value {
                    builder = builder.with_compression(Compression::Gzip);
                }
                (builder.build(), direct)
            }
        };
        let inner = built.map_err(|e| format!("{} for {}", e, redact_url(&endpoint)))?;
        Ok(OtlpExporter {
            inner,
            path_hint: path_hint(config, &endpoint),
            endpoint,
            timeout,
            failures,
            rejections,
            direct,
        })
    }

    /// The URL requests go to, credentials removed.
    pub fn endpoint(&self) -> String {
        redact_url(&self.endpoint)
    }

    /// Sends one batch and tells precisely what went wrong; a receiver that
    /// rejects some of its spans is a failure here.
    pub async fn send(&self, batch: Vec<SpanData>) -> Result<(), ExportFailure> {
        let _ = self.rejections.take();
        let result = self.export_with_cause(batch).await;
        let (rejected, message) = self.rejections.take();
        if result.is_ok() && rejected > 0 {
            let spans = i64::try_from(rejected).unwrap_or(i64::MAX);
            return Err(self.failure(FailureCause::Rejected { spans, message: message.unwrap_or_default() }));
        }
        result
    }

    async fn export_with_cause(&self, batch: Vec<SpanData>) -> Result<(), ExportFailure> {
        let _ = self.failures.take();
        match self.inner.export(batch).await {
            Ok(()) => Ok(()),
            Err(error) => {
                let cause = self.failures.take().unwrap_or_else(|| classify_library_error(&error, self.timeout));
                Err(self.failure(cause))
            }
        }
    }

    /// Sends a request traced encoded itself; see `direct`.
    async fn send_encoded_request(&self, body: bytes::Bytes) -> Result<(), ExportFailure> {
        let Some(direct) = &self.direct else {
            return Err(self.failure(FailureCause::Other("this exporter sends no encoded requests".into())));
        };
        direct.send(body).await.map_err(|(cause, retry_after)| self.failure(cause).with_retry_after(retry_after))
    }

    fn failure(&self, cause: FailureCause) -> ExportFailure {
        ExportFailure::new(self.endpoint.clone(), cause).with_path_hint(self.path_hint.clone())
    }
}

impl DynExporter for OtlpExporter {
    fn export(&self, batch: Vec<SpanData>) -> ExportFuture<'_> {
        Box::pin(SpanExporter::export(self, batch))
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        SpanExporter::shutdown_with_timeout(self, timeout)
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        SpanExporter::set_resource(self, resource);
    }

    fn classifies_failures(&self) -> bool {
        true
    }

    fn export_classified(&self, batch: Vec<SpanData>) -> ClassifiedFuture<'_> {
        Box::pin(self.export_with_cause(batch))
    }

    fn sends_encoded(&self) -> bool {
        self.direct.is_some()
    }

    fn send_encoded(&self, body: bytes::Bytes) -> ClassifiedFuture<'_> {
        Box::pin(self.send_encoded_request(body))
    }
}

impl SpanExporter for OtlpExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.export_with_cause(batch).await.map_err(|failure| OTelSdkError::InternalFailure(failure.to_string()))
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.inner.set_resource(resource);
    }
}

/// What to change when the receiver answers 404 or 405 at this URL: which
/// variable set it, and what that variable takes.
fn path_hint(config: &Config, url: &str) -> Option<String> {
    if config.otlp.protocol.value == Protocol::Grpc {
        return None;
    }
    let from_traces_var = config.otlp.endpoint.source == Source::Environment("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
    if url.ends_with("/v1/traces/v1/traces") {
        Some("OTEL_EXPORTER_OTLP_ENDPOINT is a base URL and traced appends /v1/traces: drop the path".into())
    } else if from_traces_var && !url.trim_end_matches('/').ends_with("/v1/traces") {
        Some("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is used as is: it usually ends in /v1/traces".into())
    } else {
        Some(
            "OTEL_EXPORTER_OTLP_ENDPOINT takes the base URL (traced appends /v1/traces); \
              OTEL_EXPORTER_OTLP_TRACES_ENDPOINT takes the full URL"
                .into(),
        )
    }
}
