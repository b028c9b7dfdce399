//! Requests traced encodes itself (its own spans, see `otlp_encoding`), sent
//! over OTLP/HTTP protobuf through the same client as the library's exporter
//! (TLS, headers, failure causes, partial success), or over gRPC on a
//! channel built as the library builds its own (TLS, metadata, gzip), and
//! retried by the same policy as the library's: up to 3 retries from 100 ms
//! doubling to 1.6 s, plus up to 100 ms of jitter, for no answer, for HTTP
//! 429, 502, 503 and 504 and for the gRPC codes the OTLP specification calls
//! transient, waiting what the receiver asks (`Retry-After` on a 429 or 503,
//! gRPC `RetryInfo`; at most 10 minutes), all within the OTLP timeout. The
//! library's retry helper is not public.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf as _, BufMut as _, Bytes};
use opentelemetry_http::HttpClient as _;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message as _;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::MetadataMap;
use tonic_types::StatusExt as _;

use crate::export::diagnosis::{FailureCause, classify_chain, classify_grpc_status};
use crate::export::otlp_http_client::TracedHttpClient;
use crate::export::rejections::Rejections;

const MAX_RETRIES: u32 = 3;
const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_millis(1600);
const MAX_JITTER_MS: u64 = 100;
const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);
const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// Where encoded requests go.
#[derive(Debug)]
pub(crate) enum DirectTransport {
    Http { client: TracedHttpClient, url: String, gzip: bool },
    Grpc(DirectGrpc),
}

#[derive(Debug)]
pub(crate) struct DirectGrpc {
    pub(crate) channel: tonic::transport::Channel,
    pub(crate) metadata: MetadataMap,
    pub(crate) gzip: bool,
    pub(crate) timeout: Duration,
    pub(crate) rejections: Arc<Rejections>,
}

/// Why an attempt failed, and whether and when to try again.
struct Refused {
    cause: FailureCause,
    retry_after: Option<Duration>,
    retryable: bool,
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
            DirectTransport::Grpc(grpc) => grpc.timeout,
        }
    }

    async fn attempt(&self, body: Bytes) -> Result<(), Refused> {
        match self {
            DirectTransport::Http { client, url, gzip } => http_attempt(client, url, *gzip, body).await,
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

impl DirectGrpc {
    async fn attempt(&self, body: Bytes) -> Result<(), Refused> {
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        if self.gzip {
            grpc = grpc.send_compressed(tonic::codec::CompressionEncoding::Gzip);
        }
        grpc.ready().await.map_err(|error| {
            let error: Box<dyn std::error::Error + Send + Sync> = error.into();
            Refused { cause: classify_chain(&*error, self.timeout), retry_after: None, retryable: true }
        })?;
        let mut request = tonic::Request::new(body);
        *request.metadata_mut() = self.metadata.clone();
        let path = http::uri::PathAndQuery::from_static(EXPORT_PATH);
        match grpc.unary(request, path, RawBytes).await {
            Ok(response) => {
                if let Some(partial) = ExportTraceServiceResponse::decode(response.into_inner())
                    .ok()
                    .and_then(|response| response.partial_success)
                    .filter(|partial| partial.rejected_spans > 0)
                {
                    let rejected = u64::try_from(partial.rejected_spans).unwrap_or(0);
                    self.rejections.record(rejected, &partial.error_message);
                }
                Ok(())
            }
            Err(status) => {
                let retry_after = status.get_details_retry_info().and_then(|info| info.retry_delay);
                let retryable = match status.code() {
                    tonic::Code::ResourceExhausted => retry_after.is_some(),
                    tonic::Code::Unavailable
                    | tonic::Code::Cancelled
                    | tonic::Code::DeadlineExceeded
                    | tonic::Code::Aborted
                    | tonic::Code::OutOfRange
                    | tonic::Code::DataLoss => true,
                    _ => false,
                };
                Err(Refused { cause: classify_grpc_status(&status, self.timeout), retry_after, retryable })
            }
        }
    }
}

/// A codec that passes an encoded message through as it is.
#[derive(Clone, Copy, Debug, Default)]
struct RawBytes;

impl Codec for RawBytes {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawBytes;
    type Decoder = RawBytes;

    fn encoder(&mut self) -> RawBytes {
        RawBytes
    }

    fn decoder(&mut self) -> RawBytes {
        RawBytes
    }
}

impl Encoder for RawBytes {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawBytes {
    type Item = Bytes;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, tonic::Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
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
