//! The OTLP settings of one signal (`OTEL_EXPORTER_OTLP_*`): where and how
//! requests go.

use std::fmt;
use std::time::Duration;

use crate::export::config::otlp_headers::Headers;
use crate::export::config::setting::Setting;
use crate::export::url::redact_url;

const DEFAULT_OTLP_TIMEOUT: Duration = Duration::from_secs(10);

/// The OTLP wire protocol. Every variant exists in every build; one whose
/// feature (`grpc`, `http-json`) a build leaves out is refused with an error
/// that names the feature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Protocol {
    /// OTLP/HTTP with protobuf bodies (the spec's default).
    HttpProtobuf,
    /// OTLP/HTTP with JSON bodies.
    HttpJson,
    /// OTLP/gRPC.
    Grpc,
}

impl Protocol {
    /// The name used by `OTEL_EXPORTER_OTLP_PROTOCOL`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::HttpProtobuf => "http/protobuf",
            Protocol::HttpJson => "http/json",
            Protocol::Grpc => "grpc",
        }
    }

    /// Why this build cannot send this protocol: the feature it leaves out.
    pub(crate) fn missing_feature(self) -> Option<String> {
        let feature = match self {
            Protocol::Grpc if !cfg!(feature = "grpc") => "grpc",
            Protocol::HttpJson if !cfg!(feature = "http-json") => "http-json",
            _ => return None,
        };
        Some(format!("OTLP over {} needs traced's `{feature}` feature, which this build leaves out", self.as_str()))
    }
}

/// OTLP exporter settings (`OTEL_EXPORTER_OTLP_*`).
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub struct OtlpConfig {
    /// Where requests go: a base URL (code, a preset, `OTEL_EXPORTER_OTLP_ENDPOINT`)
    /// or the signal's full URL (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`).
    pub endpoint: Setting<Option<String>>,
    /// The wire protocol.
    pub protocol: Setting<Protocol>,
    /// Request headers (API keys); never printed.
    pub headers: Setting<Headers>,
    /// The timeout of one export request.
    pub timeout: Setting<Duration>,
    /// gzip the request bodies.
    pub gzip: Setting<bool>,
    /// A PEM file of CA certificates trusted besides the public roots, for
    /// collectors behind a private CA.
    pub certificate: Setting<Option<std::path::PathBuf>>,
    /// The client certificate (PEM) and its private key (PEM) presented to a
    /// receiver that requires mutual TLS.
    pub client_identity: Setting<Option<(std::path::PathBuf, std::path::PathBuf)>>,
    /// The most one request may carry, encoded; a larger batch is sent as
    /// several requests. `None`: 4 MiB for gRPC (its receivers' default
    /// limit), 8 MiB for HTTP.
    pub max_request_bytes: Setting<Option<usize>>,
}

impl Default for OtlpConfig {
    fn default() -> Self {
        OtlpConfig {
            endpoint: Setting::default(None),
            protocol: Setting::default(Protocol::HttpProtobuf),
            headers: Setting::default(Headers::default()),
            timeout: Setting::default(DEFAULT_OTLP_TIMEOUT),
            gzip: Setting::default(false),
            certificate: Setting::default(None),
            client_identity: Setting::default(None),
            max_request_bytes: Setting::default(None),
        }
    }
}

/// The endpoint's user, password and query values are never shown; the
/// headers show their names only.
impl fmt::Debug for OtlpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let endpoint = Setting { value: self.endpoint.value.as_deref().map(redact_url), source: self.endpoint.source };
        f.debug_struct("OtlpConfig")
            .field("endpoint", &endpoint)
            .field("protocol", &self.protocol)
            .field("headers", &self.headers)
            .field("timeout", &self.timeout)
            .field("gzip", &self.gzip)
            .field("certificate", &self.certificate)
            .field("client_identity", &self.client_identity)
            .field("max_request_bytes", &self.max_request_bytes)
            .finish()
    }
}
