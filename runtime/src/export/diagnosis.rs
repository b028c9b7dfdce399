//! Why an export failed, in terms a person can act on: refused, timed out,
//! TLS, an HTTP or gRPC status with the hint that fixes it, the wrong
//! protocol for the port. Read from the transport's own errors where they
//! carry the cause, and from the library's error text where that is all
//! there is.

use std::fmt;
use std::time::Duration;

use opentelemetry_sdk::error::OTelSdkError;
use traced_core::__layers::{chain_text, error_chain, innermost_source};

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

/// A reqwest failure's cause.
pub(crate) fn classify_http(error: reqwest::Error, timeout: Duration) -> FailureCause {
    if error.is_timeout() {
        return FailureCause::Timeout(timeout);
    }
    // reqwest quotes the whole URL, credentials and query included; the
    // failure names the endpoint itself, redacted.
    classify_chain(&error.without_url(), timeout)
}

/// The cause in an error of the OTLP library, which keeps a gRPC failure's
/// code and, for one made on this side (connect, TLS), its source chain:
/// "... export failed with gRPC code: Unavailable: transport error: ...".
pub(crate) fn classify_library_error(error: &OTelSdkError, timeout: Duration) -> FailureCause {
    let text = match error {
        OTelSdkError::Timeout(_) => return FailureCause::Timeout(timeout),
        OTelSdkError::InternalFailure(text) => text.clone(),
        other => other.to_string(),
    };
    let Some((_, after)) = text.split_once("gRPC code: ") else {
        return classify_text(&text, &text, timeout).unwrap_or(FailureCause::Other(text));
    };
    let (code, chain) = after.split_once(": ").unwrap_or((after, ""));
    classify_grpc(code, chain, timeout)
}

/// A gRPC failure from its code's name and the text of its cause.
fn classify_grpc(code: &str, chain: &str, timeout: Duration) -> FailureCause {
    if let Some(cause) = classify_text(chain, chain, timeout) {
        return cause;
    }
    if code == "DeadlineExceeded" || code == "Cancelled" && chain.to_ascii_lowercase().contains("timeout") {
        return FailureCause::Timeout(timeout);
    }
    FailureCause::Grpc { code: code.to_string(), message: chain.to_string() }
}

/// A gRPC call's failure: the transport's cause when it carries one, else
/// the status, read as the library's text of one is.
#[cfg(feature = "grpc")]
pub(crate) fn classify_grpc_status(status: &tonic::Status, timeout: Duration) -> FailureCause {
    if let Some(source) = std::error::Error::source(status) {
        let cause = classify_chain(source, timeout);
        if !matches!(cause, FailureCause::Other(_)) {
            return cause;
        }
    }
    classify_grpc(&format!("{:?}", status.code()), status.message(), timeout)
}

/// A failure that got no answer, from its error chain: walks the error's
/// sources for the cause a person can act on.
pub(crate) fn classify_chain(error: &(dyn std::error::Error + 'static), timeout: Duration) -> FailureCause {
    for e in error_chain(error) {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return FailureCause::ConnectionRefused,
                std::io::ErrorKind::TimedOut => return FailureCause::Timeout(timeout),
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset => {
                    return FailureCause::ProtocolMismatch(format!("it closed the connection at once: {io}"));
                }
                _ => {}
            }
        }
        if let Some(cause) = classify_text(&e.to_string(), &innermost_source(e).to_string(), timeout) {
            return cause;
        }
    }
    FailureCause::Other(chain_text(error))
}

/// The cause named in one error's text; `detail` is what to quote.
fn classify_text(text: &str, detail: &str, timeout: Duration) -> Option<FailureCause> {
    let text = text.to_ascii_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|needle| text.contains(needle));
    if has(&["dns error", "failed to lookup address", "name or service not known"]) {
        return Some(FailureCause::Dns(detail.to_string()));
    }
    if has(&["certificate", "tls", "handshake", "corrupt message", "close_notify"]) {
        return Some(FailureCause::Tls(detail.to_string()));
    }
    // A receiver of another protocol drops the connection on the first bytes
    // it cannot parse, so the write fails before any answer: an HTTP/1
    // server given gRPC's preface.
    if has(&["broken pipe", "connection reset", "connection closed"]) {
        return Some(FailureCause::ProtocolMismatch(format!("it closed the connection at once: {detail}")));
    }
    if has(&[
        "http2 error",
        "frame with invalid size",
        "invalid http version",
        "invalid status line",
        "received unexpected message from connection",
    ]) {
        return Some(FailureCause::ProtocolMismatch(detail.to_string()));
    }
    if has(&["connection refused"]) {
        return Some(FailureCause::ConnectionRefused);
    }
    if has(&["timed out", "deadline"]) {
        return Some(FailureCause::Timeout(timeout));
    }
    None
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
    fn the_receivers_requests_to_come_back_are_the_retryable_ones() {
        let http = |status| FailureCause::HttpStatus { status, body: String::new() };
        let grpc = |code: &str| FailureCause::Grpc { code: code.into(), message: String::new() };
        for retried in [http(429), http(502), http(503), http(504), grpc("Unavailable"), grpc("ResourceExhausted")] {
            assert!(retried.is_retryable(), "{retried:?}");
        }
        for final_ in [http(400), http(401), http(500), grpc("Unauthenticated"), FailureCause::ConnectionRefused] {
            assert!(!final_.is_retryable(), "{final_:?}");
        }
    }

    #[test]
    fn refused_and_timed_out_keep_their_own_causes() {
        assert!(matches!(cause_of(std::io::ErrorKind::ConnectionRefused.into()), FailureCause::ConnectionRefused));
        assert!(matches!(cause_of(std::io::ErrorKind::TimedOut.into()), FailureCause::Timeout(_)));
    }

    #[test]
    fn the_library_s_grpc_errors_keep_their_code_and_local_cause() {
        let second = Duration::from_secs(1);
        let library = |text: &str| OTelSdkError::InternalFailure(text.to_string());
        let refused = library(
            "TonicTracesClient export failed with gRPC code: Unavailable: transport error: tcp connect error: \
             Connection refused (os error 111)",
        );
        assert!(matches!(classify_library_error(&refused, second), FailureCause::ConnectionRefused));
        let denied = library("TonicTracesClient export failed with gRPC code: Unauthenticated");
        assert!(
            matches!(classify_library_error(&denied, second), FailureCause::Grpc { code, .. } if code == "Unauthenticated")
        );
        let slow = library("TonicTracesClient export failed with gRPC code: Cancelled: Timeout expired");
        assert!(matches!(classify_library_error(&slow, second), FailureCause::Timeout(_)));
        let untrusted = library("... gRPC code: Unavailable: transport error: invalid peer certificate: UnknownIssuer");
        assert!(matches!(classify_library_error(&untrusted, second), FailureCause::Tls(_)));
    }
}
