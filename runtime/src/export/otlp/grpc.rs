//! OTLP over gRPC (the `grpc` feature): one tonic channel per exporter,
//! built as the library builds its own (TLS for https, the OTLP timeout on
//! every call, connected on first use) and shared by the library's requests
//! and the ones traced encodes itself, with the configuration's headers as
//! metadata.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf as _, BufMut as _, Bytes};
use opentelemetry_otlp::{Compression, RetryPolicy, WithExportConfig as _, WithTonicConfig as _};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message as _;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::{MetadataKey, MetadataMap};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic_types::StatusExt as _;

use crate::export::config::otlp_config::OtlpConfig;
use crate::export::otlp::diagnosis::{classify_chain, classify_grpc_status};
use crate::export::otlp::refused::Refused;
use crate::export::otlp::rejections::Rejections;
use crate::export::otlp::tls::TlsFiles;
use crate::export::url::redact_url;

const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// Where traced's own encoded requests go over gRPC.
#[derive(Debug)]
pub(crate) struct DirectGrpc {
    channel: Channel,
    metadata: MetadataMap,
    gzip: bool,
    pub(crate) timeout: Duration,
    rejections: Arc<Rejections>,
}

/// The library's gRPC span exporter and traced's own sender, on one channel.
pub(crate) fn span_exporters(
    otlp: &OtlpConfig,
    endpoint: &str,
    retries: RetryPolicy,
    rejections: &Arc<Rejections>,
) -> Result<(Result<opentelemetry_otlp::SpanExporter, opentelemetry_otlp::ExporterBuildError>, DirectGrpc), String> {
    let timeout = otlp.timeout.value;
    let (channel, metadata) = grpc_channel_for(otlp, endpoint)?;
    let direct = DirectGrpc {
        channel: channel.clone(),
        metadata: metadata.clone(),
        gzip: otlp.gzip.value,
        timeout,
        rejections: Arc::clone(rejections),
    };
    let mut builder = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_channel(channel)
        .with_timeout(timeout)
        .with_retry_policy(retries)
        .with_metadata(metadata);
    if otlp.gzip.value {
        builder = builder.with_compression(Compression::Gzip);
    }
    Ok((builder.build(), direct))
}

/// A channel and metadata for an OTLP signal sent over gRPC. Made inside a
/// tokio runtime: the channel starts its task on it.
pub(crate) fn grpc_channel_for(otlp: &OtlpConfig, endpoint: &str) -> Result<(Channel, MetadataMap), String> {
    let tls = TlsFiles::read(otlp)?;
    Ok((grpc_channel(endpoint, otlp.timeout.value, &tls)?, metadata(otlp)?))
}

fn grpc_channel(endpoint: &str, timeout: Duration, tls: &TlsFiles) -> Result<Channel, String> {
    let mut channel = tonic::transport::Endpoint::from_shared(endpoint.to_string())
        .map_err(|e| format!("invalid endpoint {}: {e}", redact_url(endpoint)))?;
    if endpoint.starts_with("https://") {
        channel = channel.tls_config(tls_config(tls)).map_err(|e| format!("TLS setup failed: {e}"))?;
    }
    Ok(channel.timeout(timeout).connect_lazy())
}

fn tls_config(tls: &TlsFiles) -> ClientTlsConfig {
    let mut config = ClientTlsConfig::new().with_webpki_roots();
    if let Some(pem) = &tls.ca {
        config = config.ca_certificate(Certificate::from_pem(pem));
    }
    if let Some((certificate, key)) = &tls.identity {
        config = config.identity(Identity::from_pem(certificate, key));
    }
    config
}

fn metadata(otlp: &OtlpConfig) -> Result<MetadataMap, String> {
    let mut metadata = MetadataMap::new();
    for (name, value) in otlp.headers.value.iter() {
        let key = MetadataKey::from_bytes(name.to_ascii_lowercase().as_bytes())
            .map_err(|_| format!("header {name} is not a valid gRPC metadata name"))?;
        let value = value.parse().map_err(|_| format!("header {name} has a value that is not valid ASCII"))?;
        metadata.insert(key, value);
    }
    Ok(metadata)
}

impl DirectGrpc {
    pub(crate) async fn attempt(&self, body: Bytes) -> Result<(), Refused> {
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
