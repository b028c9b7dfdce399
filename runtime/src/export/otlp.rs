//! The OTLP exporter: HTTP (protobuf or JSON) and gRPC, TLS through rustls,
//! and failures sorted into causes a person can act on.

use std::error::Error as _;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use prost::Message as _;
use traced_core::__private::{chain_text, error_chain, innermost_source};

use crate::export::config::{Config, Protocol};
use crate::export::rejections::Rejections;
use crate::export::setting::Source;
use crate::export::url::redact_url;

/// Sends spans to an OTLP receiver. Built from a [`Config`] by `init`; usable
/// directly, as `traced-doctor` does, to see why an export fails.
pub struct OtlpExporter {
    transport: Transport,
    endpoint: String,
    timeout: Duration,
    resource: ResourceAttributesWithSchema,
    path_hint: Option<String>,
    rejections: Arc<Rejections>,
}

enum Transport {
    Http { client: reqwest::Client, headers: reqwest::header::HeaderMap, json: bool, gzip: bool },
    Grpc(Box<GrpcTransport>),
}

struct GrpcTransport {
    endpoint: tonic::transport::Endpoint,
    client: tokio::sync::OnceCell<TraceServiceClient<tonic::transport::Channel>>,
    metadata: tonic::metadata::MetadataMap,
    gzip: bool,
}

impl fmt::Debug for OtlpExporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let protocol = match &self.transport {
            Transport::Http { json: true, .. } => "http/json",
            Transport::Http { .. } => "http/protobuf",
            Transport::Grpc(_) => "grpc",
        };
        f.debug_struct("OtlpExporter")
            .field("endpoint", &redact_url(&self.endpoint))
            .field("protocol", &protocol)
            .finish_non_exhaustive()
    }
}

impl OtlpExporter {
    /// Builds the exporter for `config`'s OTLP settings. A request may take the
    /// whole OTLP timeout, retries included: only a flush or a shutdown, whose
    /// deadline the batch processor enforces, cuts one short.
    pub fn from_config(config: &Config) -> Result<Self, String> {
        let endpoint = config.otlp_traces_url().ok_or("no OTLP endpoint is configured")?;
        let timeout = config.otlp.timeout.value;
        let headers = &config.otlp.headers.value;
        let gzip = config.otlp.gzip.value;
        let ca = match &config.otlp.certificate.value {
            Some(path) => Some(
                std::fs::read(path).map_err(|e| format!("cannot read the CA certificate {}: {e}", path.display()))?,
            ),
            None => None,
        };
        let identity = match &config.otlp.client_identity.value {
            Some((certificate, key)) => {
                let read = |path: &std::path::Path, what: &str| {
                    std::fs::read(path).map_err(|e| format!("cannot read the client {what} {}: {e}", path.display()))
                };
                Some((read(certificate, "certificate")?, read(key, "key")?))
            }
            None => None,
        };
        let transport = match config.otlp.protocol.value {
            Protocol::Grpc => {
                let mut endpoint = tonic::transport::Endpoint::from_shared(endpoint.clone())
                    .map_err(|e| format!("bad gRPC endpoint {}: {e}", redact_url(&endpoint)))?
                    .connect_timeout(timeout)
                    .timeout(timeout);
                if endpoint.uri().scheme_str() == Some("https") {
                    let mut tls = tonic::transport::ClientTlsConfig::new().with_webpki_roots();
                    if let Some(pem) = &ca {
                        tls = tls.ca_certificate(tonic::transport::Certificate::from_pem(pem));
                    }
                    if let Some((certificate, key)) = &identity {
                        tls = tls.identity(tonic::transport::Identity::from_pem(certificate, key));
                    }
                    endpoint = endpoint.tls_config(tls).map_err(|e| format!("TLS setup failed: {e}"))?;
                }
                let mut metadata = tonic::metadata::MetadataMap::new();
                for (name, value) in headers.iter() {
                    let key = tonic::metadata::MetadataKey::from_bytes(name.to_ascii_lowercase().as_bytes())
                        .map_err(|_| format!("header {name} is not a valid gRPC metadata name"))?;
                    let value =
                        value.parse().map_err(|_| format!("header {name} has a value that is not valid ASCII"))?;
                    metadata.insert(key, value);
                }
                Transport::Grpc(Box::new(GrpcTransport {
                    endpoint,
                    client: tokio::sync::OnceCell::new(),
                    metadata,
                    gzip,
                }))
            }
            protocol => {
                let mut map = reqwest::header::HeaderMap::new();
                for (name, value) in headers.iter() {
                    let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                        .map_err(|_| format!("header {name} is not a valid header name"))?;
                    let mut value = reqwest::header::HeaderValue::from_str(value)
                        .map_err(|_| format!("header {name} has a value that is not a valid header value"))?;
                    value.set_sensitive(true);
                    map.insert(name, value);
                }
                let mut builder = reqwest::Client::builder().connect_timeout(timeout);
                if let Some(pem) = &ca {
                    for certificate in reqwest::Certificate::from_pem_bundle(pem)
                        .map_err(|e| format!("the CA certificate file holds no PEM certificate: {e}"))?
                    {
                        builder = builder.add_root_certificate(certificate);
                    }
                }
                if let Some((certificate, key)) = &identity {
                    let pem = [certificate.as_slice(), b"\n", key.as_slice()].concat();
                    let identity = reqwest::Identity::from_pem(&pem)
                        .map_err(|e| format!("the client certificate or key is not usable PEM: {e}"))?;
                    builder = builder.identity(identity);
                }
                let client = builder.build().map_err(|e| format!("HTTP client setup failed: {e}"))?;
                Transport::Http { client, headers: map, json: protocol == Protocol::HttpJson, gzip }
            }
        };
        Ok(OtlpExporter {
            path_hint: path_hint(config, &endpoint),
            endpoint,
            timeout,
            transport,
            resource: ResourceAttributesWithSchema::default(),
            rejections: Arc::default(),
        })
    }

    /// Where the spans receivers reject after taking a request are counted.
    pub(crate) fn rejections(&self) -> Arc<Rejections> {
        Arc::clone(&self.rejections)
    }

    /// The URL requests go to, credentials removed.
    pub fn endpoint(&self) -> String {
        redact_url(&self.endpoint)
    }

    /// Sends one batch once and tells precisely what went wrong (no retry:
    /// `traced-doctor` wants the first answer).
    pub async fn send(&self, batch: Vec<SpanData>) -> Result<(), ExportFailure> {
        let request = self.request(batch);
        self.deliver(&request, self.timeout).await.map_err(|refusal| self.failure(refusal.cause))
    }

    /// Sends one batch, and sends it again while the receiver asks for that
    /// (HTTP 429/502/503/504, gRPC UNAVAILABLE/RESOURCE_EXHAUSTED), waiting
    /// its `Retry-After` or an exponential backoff, all within the OTLP
    /// timeout. Nothing else is retried: a refused connection or a timeout at
    /// shutdown would only eat the flush budget.
    pub async fn send_with_retries(&self, batch: Vec<SpanData>) -> Result<(), ExportFailure> {
        let request = self.request(batch);
        let give_up_at = Instant::now() + self.timeout;
        let mut backoff = FIRST_BACKOFF;
        loop {
            let left = give_up_at.saturating_duration_since(Instant::now());
            let refusal = match self.deliver(&request, left).await {
                Ok(()) => return Ok(()),
                Err(refusal) => refusal,
            };
            if let FailureCause::Rejected { spans, message } = &refusal.cause {
                // The request was taken: the rest of its spans are kept.
                self.rejections.record(u64::try_from(*spans).unwrap_or(0), message);
                return Ok(());
            }
            let wait = refusal.retry_after.unwrap_or(backoff);
            if !refusal.cause.is_retryable() || Instant::now() + wait >= give_up_at {
                return Err(self.failure(refusal.cause));
            }
            tokio::time::sleep(wait).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    fn request(&self, batch: Vec<SpanData>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest { resource_spans: group_spans_by_resource_and_scope(batch, &self.resource) }
    }

    fn failure(&self, cause: FailureCause) -> ExportFailure {
        ExportFailure { endpoint: self.endpoint(), cause, path_hint: self.path_hint.clone() }
    }

    async fn deliver(&self, request: &ExportTraceServiceRequest, timeout: Duration) -> Result<(), Refusal> {
        match &self.transport {
            Transport::Http { client, headers, json, gzip } => {
                self.send_http(client, headers, *json, *gzip, request, timeout).await
            }
            Transport::Grpc(grpc) => {
                let GrpcTransport { endpoint, client, metadata, gzip } = grpc.as_ref();
                let client = client
                    .get_or_init(|| async {
                        let client = TraceServiceClient::new(endpoint.connect_lazy());
                        if *gzip { client.send_compressed(tonic::codec::CompressionEncoding::Gzip) } else { client }
                    })
                    .await;
                let mut call = tonic::Request::new(request.clone());
                *call.metadata_mut() = metadata.clone();
                call.set_timeout(timeout);
                let cause = match tokio::time::timeout(timeout, client.clone().export(call)).await {
                    Err(_) => FailureCause::Timeout(self.timeout),
                    Ok(Err(status)) => classify_grpc(&status, self.timeout),
                    Ok(Ok(response)) => return rejected(response.get_ref()).map_err(Refusal::from),
                };
                Err(cause.into())
            }
        }
    }

    async fn send_http(
        &self,
        client: &reqwest::Client,
        headers: &reqwest::header::HeaderMap,
        json: bool,
        gzip: bool,
        request: &ExportTraceServiceRequest,
        timeout: Duration,
    ) -> Result<(), Refusal> {
        let (mut body, content_type) = if json {
            let body =
                serde_json::to_vec(request).map_err(|e| FailureCause::Other(format!("JSON encoding failed: {e}")))?;
            (body, "application/json")
        } else {
            (request.encode_to_vec(), "application/x-protobuf")
        };
        let mut builder = client
            .post(&self.endpoint)
            .headers(headers.clone())
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .timeout(timeout);
        if gzip {
            body = gzipped(&body);
            builder = builder.header(reqwest::header::CONTENT_ENCODING, "gzip");
        }
        let response = builder.body(body).send().await.map_err(|e| classify(e, self.timeout))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(parse_retry_after);
        let bytes = response.bytes().await.unwrap_or_default();
        if !status.is_success() {
            let body = String::from_utf8_lossy(&bytes).chars().take(300).collect::<String>().trim().to_string();
            return Err(Refusal { cause: FailureCause::HttpStatus { status: status.as_u16(), body }, retry_after });
        }
        let decoded = if json {
            serde_json::from_slice::<ExportTraceServiceResponse>(&bytes).ok()
        } else {
            ExportTraceServiceResponse::decode(bytes.as_ref()).ok()
        };
        decoded.map_or(Ok(()), |response| rejected(&response).map_err(Refusal::from))
    }
}

/// The first wait before sending a refused batch again; it doubles each time.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// One failed attempt, and how long the receiver asked to wait.
struct Refusal {
    cause: FailureCause,
    retry_after: Option<Duration>,
}

impl From<FailureCause> for Refusal {
    fn from(cause: FailureCause) -> Self {
        Refusal { cause, retry_after: None }
    }
}

/// `Retry-After` in seconds; the HTTP-date form is not used by collectors.
fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

impl FailureCause {
    /// Whether the receiver asked for the batch again later (OTLP's
    /// retryable responses).
    pub fn is_retryable(&self) -> bool {
        match self {
            FailureCause::HttpStatus { status, .. } => matches!(status, 429 | 502 | 503 | 504),
            FailureCause::Grpc { code, .. } => matches!(code.as_str(), "Unavailable" | "ResourceExhausted"),
            _ => false,
        }
    }
}

impl SpanExporter for OtlpExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.send_with_retries(batch).await.map_err(|failure| OTelSdkError::InternalFailure(failure.to_string()))
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.resource = ResourceAttributesWithSchema::from(resource);
    }
}

fn rejected(response: &ExportTraceServiceResponse) -> Result<(), FailureCause> {
    match &response.partial_success {
        Some(partial) if partial.rejected_spans > 0 => {
            Err(FailureCause::Rejected { spans: partial.rejected_spans, message: partial.error_message.clone() })
        }
        _ => Ok(()),
    }
}

fn gzipped(body: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(body);
    encoder.finish().unwrap_or_default()
}

/// Why an export failed, with the endpoint it was sent to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportFailure {
    /// The URL, credentials removed.
    pub endpoint: String,
    /// What went wrong.
    pub cause: FailureCause,
    path_hint: Option<String>,
}

/// What went wrong with an export request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureCause {
    /// The host name did not resolve.
    Dns(String),
    /// Nothing listens at that address and port.
    ConnectionRefused,
    /// The TLS handshake failed.
    Tls(String),
    /// No answer within the request timeout.
    Timeout(Duration),
    /// The receiver answered with an HTTP error.
    HttpStatus {
        /// The status code.
        status: u16,
        /// The start of the response body.
        body: String,
    },
    /// The receiver answered with a gRPC error.
    Grpc {
        /// The status code's name.
        code: String,
        /// The status message.
        message: String,
    },
    /// The receiver speaks another protocol (gRPC against an HTTP port, or
    /// the reverse).
    ProtocolMismatch(String),
    /// The receiver accepted the request but rejected some spans.
    Rejected {
        /// How many spans it rejected.
        spans: i64,
        /// Its explanation.
        message: String,
    },
    /// Anything else, with the error chain.
    Other(String),
}

impl fmt::Display for ExportFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let endpoint = &self.endpoint;
        match &self.cause {
            FailureCause::Dns(detail) => write!(f, "{endpoint}: DNS lookup failed ({detail}); check the host name"),
            FailureCause::ConnectionRefused => {
                write!(
                    f,
                    "{endpoint}: connection refused; nothing listens there (is the collector running, on this port?)"
                )
            }
            FailureCause::Tls(detail) if detail.contains("certificate") => write!(
                f,
                "{endpoint}: TLS handshake failed ({detail}); the server's certificate is not trusted: for a private \
                 CA set OTEL_EXPORTER_OTLP_CERTIFICATE to its PEM file"
            ),
            FailureCause::Tls(detail) => write!(
                f,
                "{endpoint}: TLS handshake failed ({detail}); use http:// for a plaintext receiver, https:// for a TLS \
                 one; a receiver that requires mutual TLS also wants OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and \
                 OTEL_EXPORTER_OTLP_CLIENT_KEY"
            ),
            FailureCause::Timeout(limit) => {
                write!(
                    f,
                    "{endpoint}: no answer within {} ms (collector hung, or a firewall drops packets)",
                    limit.as_millis()
                )
            }
            FailureCause::HttpStatus { status, body } => {
                write!(f, "{endpoint}: HTTP {status}")?;
                if !body.is_empty() {
                    write!(f, " ({body})")?;
                }
                match status {
                    401 | 403 => f.write_str(
                        "; the credentials were refused: check OTEL_EXPORTER_OTLP_HEADERS or TRACED_BACKEND_KEY",
                    ),
                    404 | 405 => match &self.path_hint {
                        Some(hint) => write!(f, "; {hint}"),
                        None => f.write_str("; no OTLP traces route at this URL"),
                    },
                    415 => f.write_str(
                        "; the receiver does not take this encoding: try OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
                    ),
                    _ => Ok(()),
                }
            }
            FailureCause::Grpc { code, message } => {
                write!(f, "{endpoint}: gRPC {code} ({message})")?;
                match code.as_str() {
                    "Unauthenticated" | "PermissionDenied" => f.write_str(
                        "; the credentials were refused: check OTEL_EXPORTER_OTLP_HEADERS or TRACED_BACKEND_KEY",
                    ),
                    "Unimplemented" => f.write_str("; no OTLP trace service there: is this the gRPC port (4317)?"),
                    _ => Ok(()),
                }
            }
            FailureCause::ProtocolMismatch(detail) => write!(
                f,
                "{endpoint}: the receiver speaks another protocol ({detail}); OTLP/gRPC is usually port 4317 and \
                 OTLP/HTTP 4318: check OTEL_EXPORTER_OTLP_PROTOCOL against the port, and http:// against https://"
            ),
            FailureCause::Rejected { spans, message } => {
                write!(f, "{endpoint}: the receiver rejected {spans} spans ({message})")
            }
            FailureCause::Other(detail) => write!(f, "{endpoint}: {detail}"),
        }
    }
}

impl std::error::Error for ExportFailure {}

impl ExportFailure {
    pub(crate) fn new(endpoint: String, cause: FailureCause) -> Self {
        ExportFailure { endpoint: redact_url(&endpoint), cause, path_hint: None }
    }
}

/// Explains a 404 from which variable set the URL.
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

fn classify(error: reqwest::Error, timeout: Duration) -> FailureCause {
    if error.is_timeout() {
        return FailureCause::Timeout(timeout);
    }
    // reqwest quotes the whole URL, credentials and query included; the
    // failure names the endpoint itself, redacted.
    classify_chain(&error.without_url(), timeout)
}

fn classify_grpc(status: &tonic::Status, timeout: Duration) -> FailureCause {
    if status.source().is_some() {
        match classify_chain(status, timeout) {
            FailureCause::Other(_) => {}
            cause => return cause,
        }
    }
    if status.code() == tonic::Code::DeadlineExceeded
        || status.code() == tonic::Code::Cancelled && status.message().contains("Timeout")
    {
        return FailureCause::Timeout(timeout);
    }
    FailureCause::Grpc { code: format!("{:?}", status.code()), message: status.message().to_string() }
}

/// Walks the error's sources for the cause a person can act on.
fn classify_chain(error: &(dyn std::error::Error + 'static), timeout: Duration) -> FailureCause {
    for e in error_chain(error) {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return FailureCause::ConnectionRefused,
                std::io::ErrorKind::TimedOut => return FailureCause::Timeout(timeout),
                // A receiver of another protocol drops the connection on the first bytes it cannot
                // parse, so the write fails before any answer: an HTTP/1 server given gRPC's preface.
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset => {
                    return FailureCause::ProtocolMismatch(format!("it closed the connection at once: {io}"));
                }
                _ => {}
            }
        }
        let text = e.to_string().to_ascii_lowercase();
        if text.contains("dns error")
            || text.contains("failed to lookup address")
            || text.contains("name or service not known")
        {
            return FailureCause::Dns(innermost_source(e).to_string());
        }
        if text.contains("certificate")
            || text.contains("tls")
            || text.contains("handshake")
            || text.contains("corrupt message")
        {
            return FailureCause::Tls(innermost_source(e).to_string());
        }
        if text.contains("http2 error")
            || text.contains("frame with invalid size")
            || text.contains("invalid http version")
            || text.contains("invalid status line")
            || text.contains("connection closed before message completed")
            || text.contains("received unexpected message from connection")
        {
            return FailureCause::ProtocolMismatch(innermost_source(e).to_string());
        }
        if text.contains("connection refused") {
            return FailureCause::ConnectionRefused;
        }
        if text.contains("timed out") || text.contains("deadline") {
            return FailureCause::Timeout(timeout);
        }
    }
    FailureCause::Other(chain_text(error))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cause_of(error: std::io::Error) -> FailureCause {
        classify_chain(&error, Duration::from_secs(1))
    }

    #[test]
    fn a_connection_dropped_on_the_first_bytes_is_a_protocol_mismatch() {
        for kind in [std::io::ErrorKind::BrokenPipe, std::io::ErrorKind::ConnectionReset] {
            let cause = cause_of(std::io::Error::new(kind, "stream closed"));
            assert!(
                matches!(&cause, FailureCause::ProtocolMismatch(detail) if detail.contains("closed the connection at once")),
                "{kind:?}: {cause:?}"
            );
        }
    }

    #[test]
    fn only_the_receivers_requests_to_come_back_are_retried() {
        let http = |status| FailureCause::HttpStatus { status, body: String::new() };
        let grpc = |code: &str| FailureCause::Grpc { code: code.into(), message: String::new() };
        for retried in [http(429), http(502), http(503), http(504), grpc("Unavailable"), grpc("ResourceExhausted")] {
            assert!(retried.is_retryable(), "{retried:?}");
        }
        for final_ in [
            http(400),
            http(401),
            http(404),
            http(500),
            grpc("InvalidArgument"),
            grpc("Unauthenticated"),
            FailureCause::ConnectionRefused,
            FailureCause::Timeout(Duration::from_secs(1)),
        ] {
            assert!(!final_.is_retryable(), "{final_:?}");
        }
    }

    #[test]
    fn retry_after_is_read_in_seconds() {
        assert_eq!(parse_retry_after(" 3 "), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2026 07:28:00 GMT"), None);
    }

    #[test]
    fn refused_and_timed_out_keep_their_own_causes() {
        assert!(matches!(cause_of(std::io::ErrorKind::ConnectionRefused.into()), FailureCause::ConnectionRefused));
        assert!(matches!(cause_of(std::io::ErrorKind::TimedOut.into()), FailureCause::Timeout(_)));
    }
}
