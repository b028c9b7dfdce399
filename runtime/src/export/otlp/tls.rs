//! What an OTLP signal's settings make of its transport: TLS (the public
//! roots, a private CA, a client certificate) and the request headers, the
//! same for traces and metrics, over HTTP and gRPC.

use std::time::Duration;

use crate::export::config::OtlpConfig;

/// An HTTP client and the headers for another OTLP signal (metrics), made
/// from its settings as the traces' are: TLS, headers, timeout.
pub(crate) fn http_client_for(otlp: &OtlpConfig) -> Result<(reqwest::Client, reqwest::header::HeaderMap), String> {
    let client = TlsFiles::read(otlp)?.http_client(otlp.timeout.value)?;
    Ok((client, http_headers(otlp)?))
}

/// The configuration's TLS files, read once.
pub(crate) struct TlsFiles {
    pub(crate) ca: Option<Vec<u8>>,
    pub(crate) identity: Option<(Vec<u8>, Vec<u8>)>,
}

impl TlsFiles {
    pub(crate) fn read(otlp: &OtlpConfig) -> Result<Self, String> {
        let read = |path: &std::path::Path, what: &str| {
            std::fs::read(path).map_err(|e| format!("cannot read the {what} {}: {e}", path.display()))
        };
        let ca = match &otlp.certificate.value {
            Some(path) => Some(read(path, "CA certificate")?),
            None => None,
        };
        let identity = match &otlp.client_identity.value {
            Some((certificate, key)) => Some((read(certificate, "client certificate")?, read(key, "client key")?)),
            None => None,
        };
        Ok(TlsFiles { ca, identity })
    }

    pub(crate) fn http_client(&self, timeout: Duration) -> Result<reqwest::Client, String> {
        let mut builder = reqwest::Client::builder().connect_timeout(timeout).timeout(timeout);
        if let Some(pem) = &self.ca {
            for certificate in reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| format!("the CA certificate file holds no PEM certificate: {e}"))?
            {
                builder = builder.add_root_certificate(certificate);
            }
        }
        if let Some((certificate, key)) = &self.identity {
            let pem = [certificate.as_slice(), b"\n", key.as_slice()].concat();
            let identity = reqwest::Identity::from_pem(&pem)
                .map_err(|e| format!("the client certificate or key is not usable PEM: {e}"))?;
            builder = builder.identity(identity);
        }
        builder.build().map_err(|e| format!("HTTP client setup failed: {e}"))
    }
}

pub(crate) fn http_headers(otlp: &OtlpConfig) -> Result<reqwest::header::HeaderMap, String> {
    let mut map = reqwest::header::HeaderMap::new();
    for (name, value) in otlp.headers.value.iter() {
        let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("header {name} is not a valid header name"))?;
        let mut value = reqwest::header::HeaderValue::from_str(value)
            .map_err(|_| format!("header {name} has a value that is not a valid header value"))?;
        value.set_sensitive(true);
        map.insert(name, value);
    }
    Ok(map)
}
