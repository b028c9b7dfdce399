//! Why an export failed, in terms a person can act on: refused, timed out,
//! TLS, an HTTP or gRPC status with the hint that fixes it, the wrong
//! protocol for the port. Any exporter's failure, as the batch processor
//! reads it; `otlp::diagnosis` reads OTLP's from its transport.

use std::fmt;
use std::time::Duration;

use crate::export::url::redact_url;

/// Why an export failed, with the endpoint it was sent to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportFailure {
    /// The URL, credentials removed.
    pub endpoint: String,
    /// What went wrong.
    pub cause: FailureCause,
    path_hint: Option<String>,
    /// How long the receiver asked to wait before the next try.
    retry_after: Option<Duration>,
}

/// What went wrong with an export request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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
            FailureCause::ProtocolMismatch(detail) => {
                write!(
                    f,
                    "{endpoint}: the receiver speaks another protocol ({detail}); OTLP/gRPC is usually port 4317 and \
                     OTLP/HTTP 4318: check OTEL_EXPORTER_OTLP_PROTOCOL against the port, and http:// against https://"
                )?;
                if endpoint.starts_with("https://") {
                    // Under TLS 1.3 a receiver that wants a client certificate
                    // refuses it after the handshake: the first write fails.
                    f.write_str(
                        "; or, over TLS, the receiver requires a client certificate: set \
                         OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and OTEL_EXPORTER_OTLP_CLIENT_KEY",
                    )?;
                }
                Ok(())
            }
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
        ExportFailure { endpoint: redact_url(&endpoint), cause, path_hint: None, retry_after: None }
    }

    /// With how long the receiver asked to wait (`Retry-After`, gRPC
    /// `RetryInfo`).
    pub(crate) fn with_retry_after(mut self, retry_after: Option<Duration>) -> Self {
        self.retry_after = retry_after;
        self
    }

    /// How long the receiver asked to wait before the next try.
    pub(crate) fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// With what to change should the receiver answer 404 or 405.
    pub(crate) fn with_path_hint(mut self, hint: Option<String>) -> Self {
        self.path_hint = hint;
        self
    }
}

impl FailureCause {
    /// Whether the receiver asked for the batch again later (OTLP's
    /// retryable responses, which the exporter sends again).
    pub fn is_retryable(&self) -> bool {
        match self {
            FailureCause::HttpStatus { status, .. } => matches!(status, 429 | 502 | 503 | 504),
            FailureCause::Grpc { code, .. } => matches!(code.as_str(), "Unavailable" | "ResourceExhausted"),
            _ => false,
        }
    }
}

impl FailureCause {
    /// Whether the request is worth keeping for a collector that comes back:
    /// it was refused a connection, got no answer, lost its connection or
    /// got a retryable answer. An answer that will not change (400, 401,
    /// 413, a TLS failure, a partial rejection) is not.
    pub(crate) fn collector_may_come_back(&self) -> bool {
        match self {
            FailureCause::ConnectionRefused
            | FailureCause::Timeout(_)
            | FailureCause::Dns(_)
            | FailureCause::ProtocolMismatch(_)
            | FailureCause::Other(_) => true,
            FailureCause::Grpc { code, .. } => matches!(
                code.as_str(),
                "Unavailable" | "ResourceExhausted" | "Cancelled" | "DeadlineExceeded" | "Aborted" | "DataLoss"
            ),
            FailureCause::HttpStatus { .. } => self.is_retryable(),
            FailureCause::Tls(_) | FailureCause::Rejected { .. } => false,
        }
    }
}
