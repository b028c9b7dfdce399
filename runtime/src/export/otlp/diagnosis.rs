//! An OTLP export's failure sorted into a [`FailureCause`]: read from the
//! transport's own errors where they carry the cause, and from the
//! library's error text where that is all there is.

use std::time::Duration;

use opentelemetry_sdk::error::OTelSdkError;
use traced_core::__layers::{chain_text, error_chain, innermost_source};

use crate::export::failure::FailureCause;

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
