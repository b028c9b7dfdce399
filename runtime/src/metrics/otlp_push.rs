//! Metrics pushed over OTLP (http/protobuf, http/json or gRPC) with the
//! metrics' OTLP settings (the traces', each overridden by its
//! `OTEL_EXPORTER_OTLP_METRICS_*` variable: endpoint, protocol, headers,
//! timeout, compression, TLS): the request instruments (with their
//! exemplars) and the app's own, cumulative or delta, every
//! `OTEL_METRIC_EXPORT_INTERVAL` and once more at shutdown, from a thread of
//! their own. A collector that takes no metrics (404, or 405 as Phoenix, a
//! trace backend only, answers; `Unimplemented` over gRPC) is said once, in
//! words, and not asked again; other
//! failures are said once each time they start, and the next push carries
//! the same cumulative values, so nothing is lost but resolution.
//!
//! Why not opentelemetry-otlp's `MetricExporter`: it takes only the SDK's
//! `ResourceMetrics`, and the SDK (0.33) keeps no exemplars, so traced's
//! request histograms, which carry them, could not travel through it. The
//! request is built with opentelemetry-proto's types (the app's instruments
//! through its `From<&ResourceMetrics>`, the same conversion the exporter
//! uses) and sent through traced's own transports, which take the same
//! settings as the traces'.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
#[cfg(feature = "grpc")]
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Exemplar, Histogram, HistogramDataPoint, Metric, ResourceMetrics, ScopeMetrics, exemplar,
    metric,
};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::Temporality;
use prost::Message as _;

use crate::export::config::{Config, Protocol};
use crate::export::messages;
use crate::export::otlp::direct::gzipped;
#[cfg(feature = "grpc")]
use crate::export::otlp::grpc::grpc_channel_for;
use crate::export::otlp::tls::http_client_for;
use crate::export::url::redact_url;
use crate::metrics::histogram::Snapshot;
use crate::metrics::instruments::collect_for_push;
use crate::metrics::request_metrics::{Family, SeriesKey, families};

/// The pushing thread, told to stop (with a last push) at shutdown.
struct Pusher {
    stop: Sender<Instant>,
    /// Closed when the thread is done.
    done: Receiver<()>,
}

static PUSHER: Mutex<Option<Pusher>> = Mutex::new(None);

/// Starts pushing when the configuration says so.
pub(crate) fn start(config: &Config, resource: &Resource) {
    let Some(url) = config.otlp_metrics_url() else { return };
    // The push thread's runtime, made here: a gRPC channel starts its task
    // on the runtime it is made in.
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
    let settings = &config.otlp_for_metrics;
    if let Some(missing) = settings.protocol.value.missing_feature() {
        messages::warn(&format!("no OTLP metrics to {}: {missing}", redact_url(&url)));
        return;
    }
    let gzip = settings.gzip.value;
    let transport = match settings.protocol.value {
        #[cfg(feature = "grpc")]
        Protocol::Grpc => {
            let _entered = runtime.enter();
            grpc_channel_for(settings, &url).map(|(channel, metadata)| {
                let mut client = MetricsServiceClient::new(channel);
                if gzip {
                    client = client.send_compressed(tonic::codec::CompressionEncoding::Gzip);
                }
                Transport::Grpc { client, metadata }
            })
        }
        protocol => http_client_for(settings).map(|(client, headers)| Transport::Http {
            client,
            headers,
            json: protocol == Protocol::HttpJson,
            gzip,
        }),
    };
    let transport = match transport {
        Ok(transport) => transport,
        Err(error) => {
            messages::warn(&format!("no OTLP metrics to {}: {error}", redact_url(&url)));
            return;
        }
    };
    let delta = config.metric_temporality.value != Temporality::Cumulative;
    let push = Push {
        url,
        transport,
        resource: resource.clone(),
        started: SystemTime::now(),
        refused: false,
        previous: delta.then(Previous::default),
    };
    let interval = config.metric_export_interval.value;
    let (stop, stopped) = std::sync::mpsc::channel();
    let (finished, done) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::Builder::new().name("traced-metrics".into()).spawn(move || {
        push.run(&runtime, interval, stopped);
        drop(finished);
    });
    match thread {
        Ok(_) => *PUSHER.lock().unwrap_or_else(PoisonError::into_inner) = Some(Pusher { stop, done }),
        Err(error) => messages::warn(&format!("the metrics thread did not start: {error}")),
    }
}

/// Pushes once more, by `deadline`, and stops; returns by the deadline even
/// when a push in progress hangs.
pub(crate) fn stop(deadline: Instant) {
    let Some(pusher) = PUSHER.lock().unwrap_or_else(PoisonError::into_inner).take() else { return };
    if pusher.stop.send(deadline).is_ok() {
        let _ = pusher.done.recv_timeout(deadline.saturating_duration_since(Instant::now()));
    }
}

/// How requests travel, as the traces' do.
enum Transport {
    Http {
        client: reqwest::Client,
        headers: reqwest::header::HeaderMap,
        json: bool,
        gzip: bool,
    },
    #[cfg(feature = "grpc")]
    Grpc {
        client: MetricsServiceClient<tonic::transport::Channel>,
        metadata: tonic::metadata::MetadataMap,
    },
}

struct Push {
    url: String,
    transport: Transport,
    resource: Resource,
    started: SystemTime,
    /// The collector answered 404: it takes no metrics.
    refused: bool,
    /// For delta temporality: what the last push that got through carried.
    previous: Option<Previous>,
}

/// The request instruments as last pushed, and when.
#[derive(Default)]
struct Previous {
    at: Option<SystemTime>,
    snapshots: HashMap<(&'static str, SeriesKey), Snapshot>,
}

impl Push {
    fn run(mut self, runtime: &tokio::runtime::Runtime, interval: Duration, stopped: Receiver<Instant>) {
        let mut failing = false;
        loop {
            let deadline = match stopped.recv_timeout(interval) {
                Ok(deadline) => Some(deadline),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            if !self.refused {
                let budget = deadline.map(|at| at.saturating_duration_since(Instant::now()));
                match runtime.block_on(self.send(budget)) {
                    Ok(()) => failing = false,
                    Err(why) if !failing => {
                        failing = true;
                        messages::warn(&format!("metrics not sent to {}: {why}", redact_url(&self.url)));
                    }
                    Err(_) => {}
                }
            }
            if deadline.is_some() {
                return;
            }
        }
    }

    async fn send(&mut self, budget: Option<Duration>) -> Result<(), String> {
        let (request, pushed) = request(&self.resource, self.started, self.previous.as_ref());
        let empty = request.resource_metrics.iter().flat_map(|r| &r.scope_metrics).all(|s| s.metrics.is_empty());
        if empty {
            // Nothing measured yet: no request to send.
            return Ok(());
        }
        let status = match &mut self.transport {
            Transport::Http { client, headers, json, gzip } => {
                let (content_type, body) = encoded(&request, *json)?;
                let mut request =
                    client.post(&self.url).headers(headers.clone()).header(reqwest::header::CONTENT_TYPE, content_type);
                request = if *gzip {
                    request.header(reqwest::header::CONTENT_ENCODING, "gzip").body(gzipped(&body))
                } else {
                    request.body(body)
                };
                if let Some(budget) = budget {
                    request = request.timeout(budget);
                }
                request.send().await.map_err(|e| format!("{e}"))?.status()
            }
            #[cfg(feature = "grpc")]
            Transport::Grpc { client, metadata } => {
                let mut call = tonic::Request::new(request);
                *call.metadata_mut() = metadata.clone();
                if let Some(budget) = budget {
                    call.set_timeout(budget);
                }
                match client.export(call).await {
                    Ok(_) => {
                        self.pushed(pushed);
                        return Ok(());
                    }
                    Err(status) if status.code() == tonic::Code::Unimplemented => reqwest::StatusCode::NOT_FOUND,
                    Err(status) => return Err(format!("gRPC {:?}: {}", status.code(), status.message())),
                }
            }
        };
        // No such route (404), or one for other methods only (405:
        // Phoenix's answer): a trace backend with no metrics.
        if matches!(status, reqwest::StatusCode::NOT_FOUND | reqwest::StatusCode::METHOD_NOT_ALLOWED) {
            self.refused = true;
            let answer = match self.transport {
                #[cfg(feature = "grpc")]
                Transport::Grpc { .. } => "gRPC Unimplemented".to_string(),
                _ => format!("HTTP {}", status.as_u16()),
            };
            messages::info(&format!(
                "{} takes no metrics ({answer}): OTLP metrics are not sent there any more; they are still \
                 served on /metrics (OTEL_METRICS_EXPORTER=prometheus keeps them there without this attempt)",
                redact_url(&self.url),
            ));
            return Ok(());
        }
        if !status.is_success() {
            return Err(format!("HTTP {status}"));
        }
        self.pushed(pushed);
        Ok(())
    }

    /// A push got through: a delta's next one counts from it.
    fn pushed(&mut self, pushed: Previous) {
        if let Some(previous) = &mut self.previous {
            *previous = pushed;
        }
    }
}

/// Everything now, as one OTLP request: the app's own instruments (with the
/// app's resource) and traced's request instruments; cumulative, or, given
/// the `previous` push, what came since (and what the next delta counts
/// from).
fn request(
    resource: &Resource,
    started: SystemTime,
    previous: Option<&Previous>,
) -> (ExportMetricsServiceRequest, Previous) {
    let mut request = match collect_for_push() {
        Some(instruments) => ExportMetricsServiceRequest::from(&instruments),
        None => ExportMetricsServiceRequest::default(),
    };
    if request.resource_metrics.is_empty() {
        request.resource_metrics.push(ResourceMetrics {
            resource: Some(resource.into()),
            scope_metrics: Vec::new(),
            schema_url: String::new(),
        });
    }
    let at = SystemTime::now();
    let now = unix_nanos(at);
    let mut pushed = Previous { at: Some(at), snapshots: HashMap::new() };
    let mut metrics = Vec::new();
    for family in families() {
        let series = family.snapshot();
        let (sent, start, temporality) = match previous {
            None => (series.clone(), unix_nanos(started), AggregationTemporality::Cumulative),
            Some(previous) => {
                let since = previous.at.unwrap_or(started);
                let sent: Vec<(SeriesKey, Snapshot)> = series
                    .iter()
                    .map(|(key, read)| {
                        (key.clone(), since_last(read, previous.snapshots.get(&(family.name, key.clone())), since))
                    })
                    .filter(|(_, read)| read.count() > 0)
                    .collect();
                (sent, unix_nanos(since), AggregationTemporality::Delta)
            }
        };
        pushed.snapshots.extend(series.into_iter().map(|(key, read)| ((family.name, key), read)));
        if !sent.is_empty() {
            metrics.push(histogram(family, &sent, start, now, temporality));
        }
    }
    if !metrics.is_empty() {
        request.resource_metrics[0].scope_metrics.push(ScopeMetrics {
            scope: Some(InstrumentationScope {
                name: "traced".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                ..Default::default()
            }),
            metrics,
            schema_url: String::new(),
        });
    }
    (request, pushed)
}

/// What a series gained since `before` was read, at `since`.
fn since_last(now: &Snapshot, before: Option<&Snapshot>, since: SystemTime) -> Snapshot {
    let Some(before) = before else { return now.clone() };
    Snapshot {
        bounds: now.bounds,
        counts: now.counts.iter().zip(&before.counts).map(|(now, before)| now.saturating_sub(*before)).collect(),
        sum: now.sum - before.sum,
        exemplars: now.exemplars.iter().map(|kept| kept.filter(|kept| kept.at > since)).collect(),
    }
}

fn histogram(
    family: &Family,
    series: &[(SeriesKey, Snapshot)],
    start: u64,
    now: u64,
    temporality: AggregationTemporality,
) -> Metric {
    let data_points = series
        .iter()
        .map(|(key, read)| HistogramDataPoint {
            attributes: attributes(key),
            start_time_unix_nano: start,
            time_unix_nano: now,
            count: read.count(),
            sum: Some(read.sum),
            bucket_counts: read.counts.clone(),
            explicit_bounds: read.bounds.to_vec(),
            exemplars: read
                .exemplars
                .iter()
                .flatten()
                .map(|kept| Exemplar {
                    filtered_attributes: Vec::new(),
                    time_unix_nano: unix_nanos(kept.at),
                    span_id: kept.span_id.to_bytes().to_vec(),
                    trace_id: kept.trace_id.to_bytes().to_vec(),
                    value: Some(exemplar::Value::AsDouble(kept.value)),
                })
                .collect(),
            flags: 0,
            min: None,
            max: None,
        })
        .collect();
    Metric {
        name: family.otel_name.into(),
        description: family.help.into(),
        unit: "s".into(),
        metadata: Vec::new(),
        data: Some(metric::Data::Histogram(Histogram { data_points, aggregation_temporality: temporality as i32 })),
    }
}

fn attributes(key: &SeriesKey) -> Vec<KeyValue> {
    let text = |value: &str| any_value::Value::StringValue(value.into());
    let mut attributes = Vec::new();
    match key {
        SeriesKey::Request { method, route, status, error_type } => {
            attributes.push(attribute("http.request.method", text(method)));
            if let Some(route) = route {
                attributes.push(attribute("http.route", text(route)));
            }
            attributes.push(attribute("http.response.status_code", any_value::Value::IntValue(i64::from(*status))));
            if let Some(error_type) = error_type {
                attributes.push(attribute("error.type", text(error_type)));
            }
        }
        SeriesKey::GenAi { operation, model, error_type } => {
            attributes.push(attribute("gen_ai.operation.name", text(operation)));
            if let Some(model) = model {
                attributes.push(attribute("gen_ai.request.model", text(model)));
            }
            if let Some(error_type) = error_type {
                attributes.push(attribute("error.type", text(error_type)));
            }
        }
        SeriesKey::Stage { name } => attributes.push(attribute("traced.stage", text(name))),
        SeriesKey::Overflow => attributes.push(attribute("otel.metric.overflow", any_value::Value::BoolValue(true))),
    }
    attributes
}

fn attribute(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(value) }), ..Default::default() }
}

fn unix_nanos(at: SystemTime) -> u64 {
    u64::try_from(at.duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos()).unwrap_or(u64::MAX)
}

/// The request's content type and body: protobuf, or proto3 JSON (`start`
/// refuses http/json in a build without it).
fn encoded(
    request: &ExportMetricsServiceRequest,
    #[cfg_attr(not(feature = "http-json"), allow(unused_variables))] json: bool,
) -> Result<(&'static str, Vec<u8>), String> {
    #[cfg(feature = "http-json")]
    if json {
        let body = serde_json::to_vec(request).map_err(|e| format!("not encodable as JSON: {e}"))?;
        return Ok(("application/json", body));
    }
    Ok(("application/x-protobuf", request.encode_to_vec()))
}
