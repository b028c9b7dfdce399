//! Requests traced encodes itself (its own spans, see `otlp_encoding`), sent
//! over OTLP/HTTP protobuf through the same client as the library's exporter
//! (TLS, headers, failure causes, partial success) and retried by the same
//! policy as the library's: up to 3 retries from 100 ms doubling to 1.6 s,
//! plus up to 100 ms of jitter, for no answer and for 429, 502, 503 and 504,
//! waiting what a 429 or 503 asks in `Retry-After` (seconds, at most 10
//! minutes), all within the OTLP timeout.

use std::time::{Duration, Instant};

use bytes::Bytes;
use opentelemetry_http::HttpClient as _;

use crate::export::diagnosis::FailureCause;
use crate::export::otlp_http_client::TracedHttpClient;

const MAX_RETRIES: u32 = 3;
const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_millis(1600);
const MAX_JITTER_MS: u64 = 100;
const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

#[derive(Debug)]
pub(crate) struct DirectHttp {
    pub(crate) client: TracedHttpClient,
    pub(crate) url: String,
    pub(crate) gzip: bool,
}

impl DirectHttp {
    /// Sends one encoded request, retrying while the receiver asks for it.
    pub(crate) async fn send(&self, body: Bytes) -> Result<(), FailureCause> {
        let (body, encoding) = if self.gzip { (Bytes::from(gzipped(&body)), Some("gzip")) } else { (body, None) };
        let started = Instant::now();
        let timeout = self.client.timeout;
        let mut delay = FIRST_DELAY;
        let mut delay_cap = MAX_DELAY;
        let mut retries = 0;
        loop {
            let Refused { cause, retry_after, retryable } = match self.attempt(body.clone(), encoding).await {
                Ok(()) => return Ok(()),
                Err(refused) => refused,
            };
            if !retryable || retries >= MAX_RETRIES || started.elapsed() >= timeout {
                return Err(cause);
            }
            retries += 1;
            if let Some(asked) = retry_after {
                let asked = asked.min(MAX_RETRY_AFTER);
                if asked > delay_cap {
                    delay_cap = MAX_RETRY_AFTER;
                }
                delay = delay.max(asked);
            }
            let sleep = (delay + jitter()).min(delay_cap);
            if sleep >= timeout.saturating_sub(started.elapsed()) {
                return Err(cause);
            }
            tokio::time::sleep(sleep).await;
            delay = (delay * 2).min(delay_cap);
        }
    }

    async fn attempt(&self, body: Bytes, encoding: Option<&str>) -> Result<(), Refused> {
        let _ = self.client.failures.take();
        let mut request = http::Request::post(&self.url).header(http::header::CONTENT_TYPE, "application/x-protobuf");
        if let Some(encoding) = encoding {
            request = request.header(http::header::CONTENT_ENCODING, encoding);
        }
        let request = request.body(body).map_err(|e| Refused {
            cause: FailureCause::Other(e.to_string()),
            retry_after: None,
            retryable: false,
        })?;
        let response = self.client.send_bytes(request).await;
        let cause = |fallback: String| self.client.failures.take().unwrap_or(FailureCause::Other(fallback));
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
}

/// Why an attempt failed, and whether and when to try again.
struct Refused {
    cause: FailureCause,
    retry_after: Option<Duration>,
    retryable: bool,
}

fn jitter() -> Duration {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().subsec_nanos();
    Duration::from_millis(u64::from(nanos) % (MAX_JITTER_MS + 1))
}

fn gzipped(body: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(body);
    encoder.finish().unwrap_or_default()
}
