//! Requests traced encodes itself (its own spans, see `otlp::encoding`), sent
//! over OTLP/HTTP protobuf through the same client as the library's exporter
//! (TLS, headers, failure causes, partial success), or over gRPC on a
//! channel built as the library builds its own (TLS, metadata, gzip), and
//! retried by the same policy as the library's: up to 3 retries from 100 ms
//! doubling to 1.6 s, plus up to 100 ms of jitter, for no answer, for HTTP
//! 429, 502, 503 and 504 and for the gRPC codes the OTLP specification calls
//! transient, waiting what the receiver asks (`Retry-After` on a 429 or 503,
//! gRPC `RetryInfo`; at most 10 minutes), all within the OTLP timeout. The
//! library's retry helper is not public.

use std::time::{Duration, Instant};

use bytes::Bytes;
use opentelemetry_http::HttpClient as _;

use crate::export::failure::FailureCause;
#[cfg(feature = "grpc")]
use crate::export::otlp::grpc::DirectGrpc;
use crate::export::otlp::http_client::TracedHttpClient;
use crate::export::otlp::refused::Refused;

const MAX_RETRIES: u32 = 3;
const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_millis(1600);
const MAX_JITTER_MS: u64 = 100;
const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

/// Where encoded requests go.
#[derive(Debug)]
pub(crate) enum DirectTransport {
    Http {
        client: TracedHttpClient,
        url: String,
        gzip: bool,
    },
    #[cfg(feature = "grpc")]
    Grpc(DirectGrpc),
}

impl DirectTransport {
    /// Sends one encoded request, retrying while the receiver asks for it;
    /// a failure keeps how long the receiver last asked to wait, if it did.
    pub(crate) async fn send(&self, body: Bytes) -> Result<(), (FailureCause, Option<Duration>)> {
        let body = match self {
            DirectTransport::Http { gzip: true, .. } => Bytes::from(gzipped(&body)),
            _ => body,
        };
        let started = Instant::now();
        let timeout = self.timeout();
        let mut delay = FIRST_DELAY;
        let mut delay_cap = MAX_DELAY;
        let mut retries = 0;
        loop {
            let Refused { cause, retry_after, retryable } = match self.attempt(body.clone()).await {
                Ok(()) => return Ok(()),
                Err(refused) => refused,
            };
            if !retryable || retries >= MAX_RETRIES || started.elapsed() >= timeout {
                return Err((cause, retry_after));
            }
            retries += 1;
            if let Some(asked) = retry_after {
                let asked = asked.min(MAX_RETRY_AFTER);
                if asked > delay_cap {
                    delay_cap = MAX_RETRY_AFTER;
                }
                delay = delay.max(asked);
            }
            let sleep = (delay + jitter(MAX_JITTER_MS)).min(delay_cap);
            if sleep >= timeout.saturating_sub(started.elapsed()) {
                return Err((cause, retry_after));
            }
            tokio::time::sleep(sleep).await;
            delay = (delay * 2).min(delay_cap);
        }
    }

    fn timeout(&self) -> Duration {
        match self {
            DirectTransport::Http { client, .. } => client.timeout,
            #[cfg(feature = "grpc")]
            DirectTransport::Grpc(grpc) => grpc.timeout,
        }
    }

    async fn attempt(&self, body: Bytes) -> Result<(), Refused> {
        match self {
            DirectTransport::Http { client, url, gzip } => http_attempt(client, url, *gzip, body).await,
            #[cfg(feature = "grpc")]
            DirectTransport::Grpc(grpc) => grpc.attempt(body).await,
        }
    }
}

async fn http_attempt(client: &TracedHttpClient, url: &str, gzip: bool, body: Bytes) -> Result<(), Refused> {
    let _ = client.failures.take();
    let mut request = http::Request::post(url).header(http::header::CONTENT_TYPE, "application/x-protobuf");
    if gzip {
        request = request.header(http::header::CONTENT_ENCODING, "gzip");
    }
    let request = request.body(body).map_err(|e| Refused {
        cause: FailureCause::Other(e.to_string()),
        retry_after: None,
        retryable: false,
    })?;
    let response = client.send_bytes(request).await;
    let cause = |fallback: String| client.failures.take().unwrap_or(FailureCause::Other(fallback));
    match response {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) => {
            let status = response.status().as_u16();
            let retry_after = matches!(status, 429 | 503)
                .then(|| response.headers().get(http::header::RETRY_AFTER))
                .flatten()
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let cause = cause(format!("HTTP {status}"));
            Err(Refused { retryable: cause.is_retryable(), cause, retry_after })
        }
        // The library retries every request that got no answer.
        Err(error) => Err(Refused { cause: cause(error.to_string()), retry_after: None, retryable: true }),
    }
}

/// Up to `max_ms` milliseconds, spreading retries that would come together.
pub(crate) fn jitter(max_ms: u64) -> Duration {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().subsec_nanos();
    Duration::from_millis(u64::from(nanos) % (max_ms + 1))
}

pub(crate) fn gzipped(body: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(body);
    encoder.finish().unwrap_or_default()
}
