//! An OTLP/HTTP receiver that takes traces and metrics, decodes each metrics
//! request with the reference types (protobuf, or OTLP JSON through their
//! serde form; gzip undone), and keeps them and every request's head for
//! the test.

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::metrics::v1::metric;
use prost::Message as _;

use crate::read_request;

pub struct MetricsReceiver {
    /// `http://127.0.0.1:PORT`, the OTLP base endpoint.
    pub url: String,
    received: Arc<Mutex<Vec<ExportMetricsServiceRequest>>>,
    heads: Arc<Mutex<Vec<String>>>,
}

impl MetricsReceiver {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("local address"));
        let received = Arc::new(Mutex::new(Vec::new()));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let (kept, kept_heads) = (Arc::clone(&received), Arc::clone(&heads));
        std::thread::spawn(move || {
            for mut client in listener.incoming().flatten() {
                let (kept, kept_heads) = (Arc::clone(&kept), Arc::clone(&kept_heads));
                std::thread::spawn(move || {
                    while let Some((head, body)) = read_request(&mut client) {
                        if head.starts_with("post /v1/metrics") {
                            kept.lock().unwrap_or_else(PoisonError::into_inner).push(decoded(&head, &body));
                        }
                        kept_heads.lock().unwrap_or_else(PoisonError::into_inner).push(head);
                        let answer =
                            "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
                        if client.write_all(answer.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        MetricsReceiver { url, received, heads }
    }

    /// The same over gRPC: traces taken and dropped, metrics kept.
    pub fn start_grpc() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("local address"));
        listener.set_nonblocking(true).expect("a non-blocking listener");
        let received = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&received);
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
                let incoming = tonic::transport::server::TcpIncoming::from(listener);
                let _ = tonic::transport::Server::builder()
                    .add_service(MetricsServiceServer::new(KeptMetrics(kept)))
                    .add_service(TraceServiceServer::new(TakenTraces))
                    .serve_with_incoming(incoming)
                    .await;
            });
        });
        MetricsReceiver { url, received, heads: Arc::default() }
    }

    /// The head (request line and headers, lower case) of every HTTP
    /// request so far, traces' and metrics'.
    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Every metrics request so far.
    pub fn requests(&self) -> Vec<ExportMetricsServiceRequest> {
        self.received.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The latest data points of the histogram `name`: their attributes
    /// (as `key=value`), count and exemplars' trace ids (hex), polled until
    /// `ready` holds or 30 s pass.
    pub fn histogram(&self, name: &str, ready: impl Fn(&[HistogramPoint]) -> bool) -> Vec<HistogramPoint> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let points = self.latest_histogram(name);
            if ready(&points) || Instant::now() >= deadline {
                return points;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn latest_histogram(&self, name: &str) -> Vec<HistogramPoint> {
        let requests = self.requests();
        let Some(latest) = requests.iter().rev().find_map(|request| {
            request
                .resource_metrics
                .iter()
                .flat_map(|resource| &resource.scope_metrics)
                .flat_map(|scope| &scope.metrics)
                .find(|metric| metric.name == name)
        }) else {
            return Vec::new();
        };
        let Some(metric::Data::Histogram(histogram)) = &latest.data else { return Vec::new() };
        histogram
            .data_points
            .iter()
            .map(|point| HistogramPoint {
                attributes: point
                    .attributes
                    .iter()
                    .map(|kv| format!("{}={}", kv.key, any_text(kv.value.as_ref())))
                    .collect(),
                count: point.count,
                exemplar_traces: point.exemplars.iter().map(|e| hex(&e.trace_id)).collect(),
            })
            .collect()
    }

    /// The latest value of the sum (a counter) `name`, all its points added.
    pub fn sum(&self, name: &str) -> Option<f64> {
        let requests = self.requests();
        requests.iter().rev().find_map(|request| {
            let metric = request
                .resource_metrics
                .iter()
                .flat_map(|resource| &resource.scope_metrics)
                .flat_map(|scope| &scope.metrics)
                .find(|metric| metric.name == name)?;
            let Some(metric::Data::Sum(sum)) = &metric.data else { return None };
            Some(
                sum.data_points
                    .iter()
                    .map(|point| match point.value {
                        Some(opentelemetry_proto::tonic::metrics::v1::number_data_point::Value::AsInt(v)) => v as f64,
                        Some(opentelemetry_proto::tonic::metrics::v1::number_data_point::Value::AsDouble(v)) => v,
                        None => 0.0,
                    })
                    .sum(),
            )
        })
    }
}

/// A metrics request as its headers say it is encoded.
fn decoded(head: &str, body: &[u8]) -> ExportMetricsServiceRequest {
    let mut body = body.to_vec();
    if head.lines().any(|line| line.starts_with("content-encoding:") && line.contains("gzip")) {
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(body.as_slice()).read_to_end(&mut plain).expect("a gzip body");
        body = plain;
    }
    if head.lines().any(|line| line.starts_with("content-type:") && line.contains("application/json")) {
        serde_json::from_slice(&body).expect("OTLP JSON the reference types read")
    } else {
        ExportMetricsServiceRequest::decode(body.as_slice()).expect("a metrics request the reference types decode")
    }
}

struct KeptMetrics(Arc<Mutex<Vec<ExportMetricsServiceRequest>>>);

#[tonic::async_trait]
impl MetricsService for KeptMetrics {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).push(request.into_inner());
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

struct TakenTraces;

#[tonic::async_trait]
impl TraceService for TakenTraces {
    async fn export(
        &self,
        _request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// One histogram data point, as a test reads it.
#[derive(Clone, Debug)]
pub struct HistogramPoint {
    pub attributes: Vec<String>,
    pub count: u64,
    pub exemplar_traces: Vec<String>,
}

fn any_text(value: Option<&opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    match value.and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(text)) => text.clone(),
        Some(Value::IntValue(number)) => number.to_string(),
        Some(Value::BoolValue(flag)) => flag.to_string(),
        Some(Value::DoubleValue(number)) => number.to_string(),
        _ => String::new(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
