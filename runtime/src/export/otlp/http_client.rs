//! The HTTP client the OTLP library sends through: reqwest with traced's
//! TLS (public roots, a private CA, a client certificate) and headers, and
//! the two things the library does not hand back: why a request failed, in
//! the words of the transport, and how many spans a receiver rejected of a
//! request it took.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use opentelemetry_http::{HttpClient, HttpError};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message as _;

use crate::export::failure::FailureCause;
use crate::export::otlp::diagnosis::classify_http;
use crate::export::otlp::rejections::Rejections;

/// The last failure a request met, for the exporter to report.
#[derive(Debug, Default)]
pub(crate) struct LastFailure(Mutex<Option<FailureCause>>);

impl LastFailure {
    fn set(&self, cause: FailureCause) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(cause);
    }

    pub(crate) fn take(&self) -> Option<FailureCause> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

#[derive(Clone, Debug)]
pub(crate) struct TracedHttpClient {
    pub(crate) client: reqwest::Client,
    /// Sent with every request; values are secrets, marked sensitive.
    pub(crate) headers: reqwest::header::HeaderMap,
    #[cfg(feature = "http-json")]
    pub(crate) json: bool,
    pub(crate) timeout: Duration,
    pub(crate) failures: Arc<LastFailure>,
    pub(crate) rejections: Arc<Rejections>,
}

/// What `send_bytes` returns when the request got no answer.
#[derive(Debug)]
struct NoAnswer(FailureCause);

impl std::fmt::Display for NoAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl std::error::Error for NoAnswer {}

#[async_trait::async_trait]
impl HttpClient for TracedHttpClient {
    async fn send_bytes(&self, request: http::Request<Bytes>) -> Result<http::Response<Bytes>, HttpError> {
        let (parts, body) = request.into_parts();
        let mut headers = parts.headers;
        for (name, value) in &self.headers {
            headers.insert(name, value.clone());
        }
        let sent = self.client.request(parts.method, parts.uri.to_string()).headers(headers).body(body).send().await;
        let response = sent.map_err(|error| self.no_answer(error))?;
        let status = response.status();
        let response_headers = response.headers().clone();
        let bytes = response.bytes().await.map_err(|error| self.no_answer(error))?;
        if status.is_success() {
            self.count_rejections(&bytes);
        } else {
            let body = String::from_utf8_lossy(&bytes).chars().take(300).collect::<String>().trim().to_string();
            self.failures.set(FailureCause::HttpStatus { status: status.as_u16(), body });
        }
        let mut answer = http::Response::builder().status(status);
        if let Some(answer_headers) = answer.headers_mut() {
            *answer_headers = response_headers;
        }
        Ok(answer.body(bytes)?)
    }
}

impl TracedHttpClient {
    /// Keeps why a request got no (whole) answer, for the exporter to report.
    fn no_answer(&self, error: reqwest::Error) -> HttpError {
        let cause = classify_http(error, self.timeout);
        self.failures.set(cause.clone());
        Box::new(NoAnswer(cause))
    }

    fn count_rejections(&self, body: &[u8]) {
        #[cfg(feature = "http-json")]
        let response = if self.json {
            serde_json::from_slice::<ExportTraceServiceResponse>(body).ok()
        } else {
            ExportTraceServiceResponse::decode(body).ok()
        };
        // Without `http-json` the exporter is never built for JSON.
        #[cfg(not(feature = "http-json"))]
        let response = ExportTraceServiceResponse::decode(body).ok();
        if let Some(partial) = response.and_then(|response| response.partial_success)
            && partial.rejected_spans > 0
        {
            self.rejections.record(u64::try_from(partial.rejected_spans).unwrap_or(0), &partial.error_message);
        }
    }
}
