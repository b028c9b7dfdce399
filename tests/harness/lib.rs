//! What the integration tests share: the addresses of the receivers that
//! `scripts/receivers.sh` started, reading spans back from Phoenix's REST API
//! and rotel's debug log, and collectors that misbehave on purpose.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use serde_json::Value;

mod metrics_receiver;
mod own_rotel;
mod prometheus;
pub use metrics_receiver::{HistogramPoint, MetricsReceiver};
pub use own_rotel::OwnRotel;
pub use prometheus::Prometheus;

/// The receivers the test command started.
#[derive(Clone, Debug)]
pub struct Receivers {
    /// Phoenix's HTTP address: OTLP/HTTP at `/v1/traces`, REST API, web UI.
    pub phoenix: String,
    /// Phoenix's OTLP/gRPC address.
    pub phoenix_grpc: String,
    /// rotel's OTLP/HTTP receiver (forwards to Phoenix).
    pub rotel_http: String,
    /// rotel's OTLP/gRPC receiver (forwards to Phoenix).
    pub rotel_grpc: String,
    /// rotel's debug log of every span it received.
    pub rotel_log: PathBuf,
    /// A second rotel's OTLP/HTTP receiver: it logs how many spans each
    /// request carried and drops them.
    pub rotel_counting: String,
    /// Its log.
    pub rotel_counting_log: PathBuf,
    /// A second Phoenix behind TLS (`https://`), HTTP side.
    pub phoenix_tls: String,
    /// Its OTLP/gRPC side, also TLS.
    pub phoenix_tls_grpc: String,
    /// The private CA that signed its certificate.
    pub tls_ca: PathBuf,
    /// A third Phoenix that also requires a client certificate (mutual TLS).
    pub phoenix_mtls: String,
    /// Its OTLP/gRPC side.
    pub phoenix_mtls_grpc: String,
    /// A client certificate that CA signed, and its key.
    pub tls_client_cert: PathBuf,
    pub tls_client_key: PathBuf,
}

fn required(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: these tests need Phoenix and rotel. Run the README's test command \
             (scripts/test.sh), which installs and starts them, or start them with \
             `scripts/receivers.sh start ENVFILE` and export ENVFILE's variables"
        )
    })
}

impl Receivers {
    /// The addresses from the environment; panics, naming the fix, when absent.
    pub fn from_env() -> Self {
        Receivers {
            phoenix: required("TRACED_PHOENIX_URL"),
            phoenix_grpc: required("TRACED_PHOENIX_GRPC"),
            rotel_http: required("TRACED_ROTEL_HTTP"),
            rotel_grpc: required("TRACED_ROTEL_GRPC"),
            rotel_log: PathBuf::from(required("TRACED_ROTEL_LOG")),
            rotel_counting: required("TRACED_ROTEL_COUNTING_HTTP"),
            rotel_counting_log: PathBuf::from(required("TRACED_ROTEL_COUNTING_LOG")),
            phoenix_tls: required("TRACED_PHOENIX_TLS_URL"),
            phoenix_tls_grpc: required("TRACED_PHOENIX_TLS_GRPC"),
            tls_ca: PathBuf::from(required("TRACED_TLS_CA")),
            phoenix_mtls: required("TRACED_PHOENIX_MTLS_URL"),
            phoenix_mtls_grpc: required("TRACED_PHOENIX_MTLS_GRPC"),
            tls_client_cert: PathBuf::from(required("TRACED_TLS_CLIENT_CERT")),
            tls_client_key: PathBuf::from(required("TRACED_TLS_CLIENT_KEY")),
        }
    }

    /// The spans of one trace in a Phoenix project, polled until `expected`
    /// have arrived or 30 s have passed.
    pub fn phoenix_spans(&self, project: &str, trace_id: &str, expected: usize) -> Vec<PhoenixSpan> {
        self.spans_at(&self.phoenix, project, trace_id, expected)
    }

    /// The same from the Phoenix behind TLS.
    pub fn phoenix_tls_spans(&self, project: &str, trace_id: &str, expected: usize) -> Vec<PhoenixSpan> {
        self.spans_at(&self.phoenix_tls, project, trace_id, expected)
    }

    /// The same from the Phoenix that requires a client certificate.
    pub fn phoenix_mtls_spans(&self, project: &str, trace_id: &str, expected: usize) -> Vec<PhoenixSpan> {
        self.spans_at(&self.phoenix_mtls, project, trace_id, expected)
    }

    fn spans_at(&self, base: &str, project: &str, trace_id: &str, expected: usize) -> Vec<PhoenixSpan> {
        let url = format!("{base}/v1/projects/{project}/spans?trace_id={trace_id}&limit=1000");
        let ca = std::fs::read(&self.tls_ca).expect("read the test CA");
        let mut identity = std::fs::read(&self.tls_client_cert).expect("read the test client certificate");
        identity.extend(std::fs::read(&self.tls_client_key).expect("read the test client key"));
        let client = reqwest::blocking::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("the test CA is PEM"))
            .identity(reqwest::Identity::from_pem(&identity).expect("the test client identity is PEM"))
            .build()
            .expect("an HTTP client");
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut spans = Vec::new();
        while Instant::now() < deadline {
            if let Ok(response) = client.get(&url).send()
                && response.status().is_success()
                && let Ok(body) = response.json::<Value>()
            {
                spans = body["data"]
                    .as_array()
                    .map(|data| data.iter().map(PhoenixSpan::from_json).collect())
                    .unwrap_or_default();
                if spans.len() >= expected {
                    return spans;
                }
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        spans
    }

    /// The resource attributes rotel logged for a trace, polled for 15 s.
    pub fn rotel_resource(&self, trace_id: &str) -> Option<Vec<(String, String)>> {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            let log = std::fs::read_to_string(&self.rotel_log).unwrap_or_default();
            if let Some(block) = log.split("ResourceSpans #").find(|block| block.contains(trace_id)) {
                return Some(resource_attributes(block));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        None
    }
}

impl Receivers {
    /// The spans the counting rotel has received so far, from its log.
    pub fn rotel_counted_spans(&self) -> u64 {
        count_logged_spans(&std::fs::read_to_string(&self.rotel_counting_log).unwrap_or_default())
    }
}

/// The spans a rotel with `--debug-log-verbosity basic` logged receiving.
fn count_logged_spans(log: &str) -> u64 {
    strip_ansi(log)
        .lines()
        .filter(|line| line.contains("Received traces."))
        .filter_map(|line| line.split_whitespace().find_map(|field| field.strip_prefix("spans=")))
        .filter_map(|count| count.parse::<u64>().ok())
        .sum()
}

/// The text without terminal colour codes (`ESC [ ... m`).
fn strip_ansi(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

/// `-> key: Str(value)` lines between "Resource attributes:" and the scope.
fn resource_attributes(block: &str) -> Vec<(String, String)> {
    block
        .lines()
        .skip_while(|line| !line.starts_with("Resource attributes:"))
        .skip(1)
        .take_while(|line| line.trim_start().starts_with("->"))
        .filter_map(|line| {
            let (key, value) = line.trim_start().trim_start_matches("->").trim().split_once(": ")?;
            let value = value.strip_prefix("Str(").and_then(|v| v.strip_suffix(')')).unwrap_or(value);
            Some((key.to_string(), value.to_string()))
        })
        .collect()
}

/// One span as Phoenix's REST API returns it.
#[derive(Clone, Debug)]
pub struct PhoenixSpan {
    /// The span name.
    pub name: String,
    /// 16 hex digits.
    pub span_id: String,
    /// The parent's span id, if any.
    pub parent_id: Option<String>,
    /// `UNSET`, `OK` or `ERROR`.
    pub status_code: String,
    /// Its OpenInference kind (`LLM`, `CHAIN`, ...), `UNKNOWN` when it has none.
    pub span_kind: String,
    /// The span attributes.
    pub attributes: Value,
    /// The span events.
    pub events: Vec<Value>,
    /// When it started and ended, Unix nanoseconds.
    pub start_ns: u128,
    pub end_ns: u128,
}

impl PhoenixSpan {
    fn from_json(span: &Value) -> Self {
        PhoenixSpan {
            name: span["name"].as_str().unwrap_or_default().to_string(),
            span_id: span["context"]["span_id"].as_str().unwrap_or_default().to_string(),
            parent_id: span["parent_id"].as_str().map(str::to_string),
            status_code: span["status_code"].as_str().unwrap_or_default().to_string(),
            span_kind: span["span_kind"].as_str().unwrap_or_default().to_string(),
            attributes: span["attributes"].clone(),
            events: span["events"].as_array().cloned().unwrap_or_default(),
            start_ns: span["start_time"].as_str().and_then(unix_nanos).unwrap_or_default(),
            end_ns: span["end_time"].as_str().and_then(unix_nanos).unwrap_or_default(),
        }
    }

    /// Seconds from start to end.
    pub fn seconds(&self) -> f64 {
        (self.end_ns.saturating_sub(self.start_ns)) as f64 / 1e9
    }
}

/// An RFC 3339 time in UTC (`2026-12-05T15:20:01.123456+00:00` or `...Z`),
/// as Phoenix writes them, in Unix nanoseconds.
fn unix_nanos(text: &str) -> Option<u128> {
    let text = text.strip_suffix('Z').or_else(|| text.strip_suffix("+00:00"))?;
    let (date, time) = text.split_once('T')?;
    let mut date = date.split('-').map(|part| part.parse::<i64>());
    let (year, month, day) = (date.next()?.ok()?, date.next()?.ok()?, date.next()?.ok()?);
    let (clock, fraction) = time.split_once('.').unwrap_or((time, "0"));
    let mut clock = clock.split(':').map(|part| part.parse::<i64>());
    let (hour, minute, second) = (clock.next()?.ok()?, clock.next()?.ok()?, clock.next()?.ok()?);
    // Days since the epoch of a proleptic Gregorian date (Howard Hinnant's
    // days_from_civil).
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second;
    let nanos: u128 = format!("{fraction:0<9}")[..9].parse().ok()?;
    Some(u128::try_from(seconds).ok()? * 1_000_000_000 + nanos)
}

/// Finds the one span with this name; panics listing what there is.
pub fn by_name<'a>(spans: &'a [PhoenixSpan], name: &str) -> &'a PhoenixSpan {
    let found: Vec<_> = spans.iter().filter(|s| s.name == name).collect();
    assert_eq!(found.len(), 1, "one {name} expected in {:?}", spans.iter().map(|s| &s.name).collect::<Vec<_>>());
    found[0]
}

/// A name no other test run uses: a Phoenix project, a service name.
pub fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
    format!("{prefix}-{}-{}", std::process::id(), nanos % 1_000_000_000)
}

/// A loopback port with nothing listening.
pub fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let port = listener.local_addr().expect("local address").port();
    drop(listener);
    port
}

/// A collector that accepts connections, reads what is sent, and never
/// answers: the worst case for a shutdown budget.
pub struct HangingCollector {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    held: Arc<Mutex<Vec<TcpStream>>>,
}

impl HangingCollector {
    /// Starts listening on a free loopback port.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("local address"));
        let held = Arc::new(Mutex::new(Vec::new()));
        let keep = Arc::clone(&held);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = stream.try_clone().expect("clone the socket");
                // Drain the request so the client believes it was sent.
                std::thread::spawn(move || while reader.read(&mut [0; 4096]).is_ok_and(|n| n > 0) {});
                keep.lock().unwrap_or_else(PoisonError::into_inner).push(stream);
            }
        });
        HangingCollector { url, held }
    }

    /// How many connections it has swallowed.
    pub fn connections(&self) -> usize {
        self.held.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

/// A front for a real receiver that answers its first `refusals` requests
/// `503 Service Unavailable` (with `Retry-After`, when given) as an
/// overloaded collector does, then relays every later connection to the
/// receiver untouched.
pub struct FlakyFront {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    refused: Arc<AtomicUsize>,
    relayed: Arc<AtomicUsize>,
}

impl FlakyFront {
    pub fn start(receiver: &str, refusals: usize, retry_after: Option<u64>) -> Self {
        let target = receiver.trim_start_matches("http://").trim_end_matches('/').to_string();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("local address"));
        let refused = Arc::new(AtomicUsize::new(0));
        let relayed = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&refused);
        let connections = Arc::clone(&relayed);
        std::thread::spawn(move || {
            for mut client in listener.incoming().flatten() {
                if count.load(Ordering::SeqCst) < refusals {
                    count.fetch_add(1, Ordering::SeqCst);
                    let _ = read_request(&mut client);
                    let hint = retry_after.map(|s| format!("retry-after: {s}\r\n")).unwrap_or_default();
                    let answer = format!(
                        "HTTP/1.1 503 Service Unavailable\r\n{hint}content-length: 0\r\nconnection: close\r\n\r\n"
                    );
                    let _ = client.write_all(answer.as_bytes());
                    continue;
                }
                let Ok(upstream) = TcpStream::connect(&target) else { continue };
                connections.fetch_add(1, Ordering::SeqCst);
                relay(client, upstream);
            }
        });
        FlakyFront { url, refused, relayed }
    }

    /// How many requests it has refused.
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }

    /// How many connections it has relayed to the receiver.
    pub fn relayed(&self) -> usize {
        self.relayed.load(Ordering::SeqCst)
    }
}

/// An OTLP/HTTP receiver that takes every request and answers with a
/// partial success: `rejected` spans refused, with `message`, as a backend
/// over its quota or given spans too old does.
pub struct PartialReceiver {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl PartialReceiver {
    pub fn start(rejected: u8, message: &'static str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("local address"));
        // ExportTraceServiceResponse { partial_success: { rejected_spans, error_message } },
        // encoded by hand: field 1, a message of field 1 (varint) and field 2 (string).
        let mut partial = vec![0x08, rejected, 0x12, u8::try_from(message.len()).expect("a short message")];
        partial.extend_from_slice(message.as_bytes());
        let mut body = vec![0x0a, u8::try_from(partial.len()).expect("a short body")];
        body.extend_from_slice(&partial);
        std::thread::spawn(move || {
            for mut client in listener.incoming().flatten() {
                let body = body.clone();
                std::thread::spawn(move || {
                    while read_request(&mut client).is_some() {
                        let head = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: {}\r\n\r\n",
                            body.len()
                        );
                        if client.write_all(head.as_bytes()).and_then(|()| client.write_all(&body)).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        PartialReceiver { url }
    }
}

/// The same over gRPC: an OTLP/gRPC receiver that takes every request and
/// answers with a partial success.
pub struct PartialGrpcReceiver {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

struct PartialService {
    rejected: i64,
    message: &'static str,
}

#[tonic::async_trait]
impl TraceService for PartialService {
    async fn export(
        &self,
        _request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: self.rejected,
                error_message: self.message.to_string(),
            }),
        }))
    }
}

impl PartialGrpcReceiver {
    pub fn start(rejected: i64, message: &'static str) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("local address"));
        listener.set_nonblocking(true).expect("a non-blocking listener");
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
                let incoming = tonic::transport::server::TcpIncoming::from(listener);
                let service = TraceServiceServer::new(PartialService { rejected, message });
                let _ = tonic::transport::Server::builder().add_service(service).serve_with_incoming(incoming).await;
            });
        });
        PartialGrpcReceiver { url }
    }
}

/// A front for a real receiver that holds each OTLP/HTTP request for
/// `delay` before passing it on, then answers with the receiver's answer: a
/// slow backend, as the platform pages tell users to raise the timeout for.
pub struct SlowFront {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    answered: Arc<AtomicUsize>,
}

impl SlowFront {
    pub fn start(receiver: &str, delay: Duration) -> Self {
        let target = receiver.trim_end_matches('/').to_string();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("local address"));
        let answered = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&answered);
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (target, count) = (target.clone(), Arc::clone(&count));
                std::thread::spawn(move || hold_and_forward(client, &target, delay, &count));
            }
        });
        SlowFront { url, answered }
    }

    /// How many requests it has answered.
    pub fn answered(&self) -> usize {
        self.answered.load(Ordering::SeqCst)
    }
}

fn hold_and_forward(mut client: TcpStream, target: &str, delay: Duration, answered: &AtomicUsize) {
    let upstream = reqwest::blocking::Client::new();
    // One connection may carry several requests (keep-alive).
    while let Some((head, body)) = read_request(&mut client) {
        std::thread::sleep(delay);
        let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
        let mut request = upstream.post(format!("{target}{path}")).body(body);
        for line in head.lines().skip(1) {
            if let Some((name, value)) = line.split_once(':')
                && ["content-type", "content-encoding"].contains(&name.trim())
            {
                request = request.header(name.trim(), value.trim());
            }
        }
        let Ok(response) = request.send() else { return };
        let status = response.status();
        let bytes = response.bytes().unwrap_or_default();
        let head = format!(
            "HTTP/1.1 {} {}\r\ncontent-type: application/x-protobuf\r\ncontent-length: {}\r\n\r\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            bytes.len()
        );
        if client.write_all(head.as_bytes()).and_then(|()| client.write_all(&bytes)).is_err() {
            return;
        }
        answered.fetch_add(1, Ordering::SeqCst);
    }
}

/// Reads one HTTP/1.1 request: its head, lower-cased, and its
/// `content-length` body; `None` once the connection is closed.
fn read_request(stream: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut seen = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&seen[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if seen.len() >= end + 4 + length {
                return Some((head, seen[end + 4..end + 4 + length].to_vec()));
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => seen.extend_from_slice(&chunk[..n]),
        }
    }
}

fn relay(client: TcpStream, upstream: TcpStream) {
    let pipe = |mut from: TcpStream, mut to: TcpStream| {
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut from, &mut to);
            let _ = to.shutdown(std::net::Shutdown::Write);
        });
    };
    if let (Ok(client_back), Ok(upstream_back)) = (client.try_clone(), upstream.try_clone()) {
        pipe(client, upstream);
        pipe(upstream_back, client_back);
    }
}

/// The tracer provider is process-global: tests that install one take turns.
pub fn one_provider_at_a_time() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The `traced-doctor` binary the test command built beside the test binaries.
pub fn doctor_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let path = exe.parent().and_then(|deps| deps.parent()).map(|dir| dir.join("traced-doctor")).expect("target dir");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p traced --bins` (the test command does)",
        path.display()
    );
    path
}

impl Receivers {
    /// The `service.name` of every resource rotel logged spans of this trace
    /// under, polled until `expected` are there or 15 s have passed.
    pub fn rotel_services(&self, trace_id: &str, expected: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let log = std::fs::read_to_string(&self.rotel_log).unwrap_or_default();
            let mut services: Vec<String> = log
                .split("ResourceSpans #")
                .filter(|block| block.contains(trace_id))
                .filter_map(|block| resource_attributes(block).into_iter().find(|(k, _)| k == "service.name"))
                .map(|(_, v)| v)
                .collect();
            services.sort();
            services.dedup();
            if services.len() >= expected || Instant::now() >= deadline {
                return services;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// A binary of this workspace, built by the test command beside the tests.
pub fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let path = exe.parent().and_then(|deps| deps.parent()).map(|dir| dir.join(name)).expect("target dir");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build --workspace --bins` (the test command does)",
        path.display()
    );
    path
}

/// An app served by its own process on a free loopback port; SIGKILLed if
/// a test ends without stopping it.
pub struct Service {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    child: std::process::Child,
    /// Where its stderr goes.
    pub log: PathBuf,
}

impl Service {
    /// Starts `binary` with `env` on a free port and waits for `/health`.
    pub fn start(binary: &std::path::Path, env: &[(&str, &str)]) -> Service {
        let port = closed_port();
        let log = std::env::temp_dir().join(format!("{}.log", unique("traced-service")));
        let stderr = std::fs::File::create(&log).expect("a log file");
        let mut command = std::process::Command::new(binary);
        for (name, _) in std::env::vars() {
            if name.starts_with("OTEL_") || name.starts_with("TRACED_") || name == "ENABLE_TRACING" {
                command.env_remove(name);
            }
        }
        let child = command
            .env("HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
        let service = Service { url: format!("http://127.0.0.1:{port}"), child, log };
        let client = reqwest::blocking::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if client.get(format!("{}/health", service.url)).send().is_ok_and(|r| r.status().is_success()) {
                return service;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("{} did not serve within 30 s:\n{}", binary.display(), service.stderr());
    }

    /// What it printed to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// POSTs JSON; returns status, headers and the JSON answer.
    pub fn post(&self, path: &str, body: &Value, headers: &[(&str, &str)]) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut request = reqwest::blocking::Client::new().post(format!("{}{path}", self.url)).json(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().expect("a response");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.json().unwrap_or(Value::Null);
        (status, headers, body)
    }

    /// Sends SIGTERM and waits for the exit; returns the exit code and how
    /// long the process took to go.
    pub fn terminate(&mut self) -> (Option<i32>, Duration) {
        let started = Instant::now();
        let pid = self.child.id().to_string();
        let _ = std::process::Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return (status.code(), started.elapsed());
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return (None, started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn phoenix_times_read_as_unix_nanoseconds() {
        assert_eq!(super::unix_nanos("1970-01-01T00:00:01.5+00:00"), Some(1_500_000_000));
        assert_eq!(super::unix_nanos("2026-12-05T15:20:01.123456Z"), Some(1_796_484_001_123_456_000));
    }
}
