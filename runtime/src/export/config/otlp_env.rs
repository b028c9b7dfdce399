//! `OTEL_EXPORTER_OTLP_*` → [`OtlpConfig`], for one signal: each setting
//! from the signal's own variable (`OTEL_EXPORTER_OTLP_TRACES_TIMEOUT`), else
//! the generic one (`OTEL_EXPORTER_OTLP_TIMEOUT`), else what code set, as
//! the specification orders them. Traces and metrics each read their own.

use crate::export::config::env::{Env, parse_key_value};
use crate::export::config::otlp_config::{OtlpConfig, Protocol};
use crate::export::config::vars;
use crate::export::url::{check_url, redact_url};

/// One signal's variables; each has a generic fallback.
pub(crate) struct SignalVars {
    endpoint: &'static str,
    protocol: &'static str,
    headers: &'static str,
    certificate: &'static str,
    client_certificate: &'static str,
    client_key: &'static str,
    timeout: &'static str,
    compression: &'static str,
}

pub(crate) const TRACES: SignalVars = SignalVars {
    endpoint: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    protocol: "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    headers: "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    certificate: "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
    client_certificate: "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
    client_key: "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY",
    timeout: "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    compression: "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
};

pub(crate) const METRICS: SignalVars = SignalVars {
    endpoint: vars::METRICS_ENDPOINT,
    protocol: "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
    headers: "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
    certificate: "OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE",
    client_certificate: "OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE",
    client_key: "OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY",
    timeout: "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
    compression: "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION",
};

const GENERIC: SignalVars = SignalVars {
    endpoint: "OTEL_EXPORTER_OTLP_ENDPOINT",
    protocol: "OTEL_EXPORTER_OTLP_PROTOCOL",
    headers: "OTEL_EXPORTER_OTLP_HEADERS",
    certificate: "OTEL_EXPORTER_OTLP_CERTIFICATE",
    client_certificate: "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
    client_key: "OTEL_EXPORTER_OTLP_CLIENT_KEY",
    timeout: "OTEL_EXPORTER_OTLP_TIMEOUT",
    compression: "OTEL_EXPORTER_OTLP_COMPRESSION",
};

impl SignalVars {
    /// The variable that sets only this signal's endpoint (a full URL).
    pub(crate) fn endpoint(&self) -> &'static str {
        self.endpoint
    }
}

impl OtlpConfig {
    /// Applies `signal`'s variables; returns whether the endpoint, when a
    /// variable set it, is a base URL (the generic variable: the signal's
    /// path is appended for HTTP) rather than the signal's full URL.
    pub(crate) fn apply_env(&mut self, env: &mut Env<'_>, signal: &SignalVars) -> Option<bool> {
        if let Some((name, raw)) = env.signal(signal.protocol, GENERIC.protocol) {
            let fallback = self.protocol.value.as_str();
            let protocol = match raw.to_ascii_lowercase().as_str() {
                "http/protobuf" => Some(Protocol::HttpProtobuf),
                "http/json" => Some(Protocol::HttpJson),
                "grpc" => Some(Protocol::Grpc),
                _ => None,
            };
            match protocol {
                Some(protocol) => match protocol.missing_feature() {
                    None => self.protocol.env(name, protocol),
                    Some(missing) => env.warn(name, raw, format!("{missing}; using {fallback}")),
                },
                None => env.warn(name, raw, format!("expected grpc, http/protobuf or http/json; using {fallback}")),
            }
        }
        let mut endpoint_is_base = None;
        for (name, is_base) in [(signal.endpoint, false), (GENERIC.endpoint, true)] {
            let Some(raw) = env.get(name) else { continue };
            match check_url(&raw) {
                Ok(()) => {
                    self.endpoint.env(name, Some(raw));
                    endpoint_is_base = Some(is_base);
                    break;
                }
                Err(why) => env.warn(name, redact_url(&raw), format!("{why}; variable ignored")),
            }
        }
        self.apply_headers(env, signal);
        if let Some((name, raw)) = env.signal(signal.certificate, GENERIC.certificate) {
            if std::path::Path::new(&raw).is_file() {
                self.certificate.env(name, Some(raw.into()));
            } else {
                env.warn(name, raw, "no such file; only the public root certificates are trusted");
            }
        }
        self.apply_client_identity(env, signal);
        let timeout_fallback = self.timeout.value;
        if let Some((name, _)) = env.signal(signal.timeout, GENERIC.timeout)
            && let Some(timeout) = env.millis(name, timeout_fallback)
        {
            self.timeout.env(name, timeout);
        }
        if let Some((name, raw)) = env.signal(signal.compression, GENERIC.compression) {
            match raw.to_ascii_lowercase().as_str() {
                "gzip" => self.gzip.env(name, true),
                "none" => self.gzip.env(name, false),
                _ => {
                    let fallback = if self.gzip.value { "gzip" } else { "none" };
                    env.warn(name, raw, format!("expected gzip or none; using {fallback}"));
                }
            }
        }
        endpoint_is_base
    }

    /// Headers from the environment join those set in code (a preset's API
    /// key), replacing one of the same name.
    fn apply_headers(&mut self, env: &mut Env<'_>, signal: &SignalVars) {
        let Some((name, raw)) = env.signal(signal.headers, GENERIC.headers) else { return };
        let mut headers = std::mem::take(&mut self.headers.value);
        for (index, entry) in raw.split(',').map(str::trim).filter(|e| !e.is_empty()).enumerate() {
            match parse_key_value(entry).filter(|(key, _)| valid_header_name(key)) {
                Some((key, value)) => headers.insert(key, value),
                None => {
                    let shown = entry.split_once('=').map_or("***".to_string(), |(key, _)| format!("{key}=***"));
                    env.warn(
                        name,
                        shown,
                        format!("entry {} is not name=value with a valid header name; skipped", index + 1),
                    );
                }
            }
        }
        self.headers.env(name, headers);
    }

    /// Both files or neither: a certificate without its key (or the reverse)
    /// is reported, and no client certificate is presented.
    fn apply_client_identity(&mut self, env: &mut Env<'_>, signal: &SignalVars) {
        let certificate = env.signal(signal.client_certificate, GENERIC.client_certificate);
        let key = env.signal(signal.client_key, GENERIC.client_key);
        let missing = |(name, raw): &(&'static str, String)| (!std::path::Path::new(raw).is_file()).then_some(*name);
        match (certificate, key) {
            (None, None) => {}
            (Some((name, raw)), None) => {
                let needed = GENERIC.client_key;
                env.warn(name, raw, format!("{needed} is not set: no client certificate is presented"));
            }
            (None, Some((name, raw))) => {
                let needed = GENERIC.client_certificate;
                env.warn(name, raw, format!("{needed} is not set: no client certificate is presented"));
            }
            (Some(certificate), Some(key)) => match missing(&certificate).or_else(|| missing(&key)) {
                Some(name) => {
                    let raw = if name == certificate.0 { certificate.1 } else { key.1 };
                    env.warn(name, raw, "no such file: no client certificate is presented");
                }
                None => self.client_identity.env(certificate.0, Some((certificate.1.into(), key.1.into()))),
            },
        }
    }
}

fn valid_header_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}
