//! Request metrics over real HTTP: every request counted whether or not its
//! trace was sampled, failures by `error.type`, sampled traces (and only
//! they) as exemplars, both scrape formats, probes not counted, the same for
//! an axum router under `TraceLayer` with the scrape mounted beside it, and
//! the app's own instruments made through the OpenTelemetry `Meter` API.

mod support;

use std::collections::HashSet;
use std::process::ExitCode;

use axum::routing::{get, post};
use support::Recorder;
use support::served::Served;

#[derive(Debug)]
struct Diverged;

impl std::fmt::Display for Diverged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the sampler diverged")
    }
}

impl std::error::Error for Diverged {}

struct Counted;

#[traced::traced_app(service = "counted")]
impl Counted {
    fn setup() -> Self {
        Counted
    }

    #[endpoint("/counted-ok")]
    fn ok(&self) -> u32 {
        1
    }

    #[endpoint("/counted-fail")]
    fn fail(&self) -> Result<u32, Diverged> {
        Err(Diverged)
    }

    /// A streamed GenAI answer: its first token after 30 ms.
    #[endpoint("/counted-tokens", ai_kind = llm)]
    fn tokens(&self) -> impl Iterator<Item = u32> + use<> {
        traced::GenAiRequest::new("chat", "tiny-llm").record();
        (0..3).inspect(|index| {
            if *index == 0 {
                std::thread::sleep(std::time::Duration::from_millis(30));
            }
        })
    }

    /// An embedding endpoint that says nothing more than its kind.
    #[endpoint("/counted-embed", ai_kind = embedding)]
    fn embed(&self) -> Vec<f32> {
        vec![0.5, 0.25]
    }
}

const SAMPLED: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const UNSAMPLED: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";

/// The value of the series line that starts with `series`.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(series)?.split_whitespace().next()?.parse().ok())
}

/// Trace ids of the exemplars on the lines that mention `route`.
fn exemplar_traces(text: &str, route: &str) -> Vec<String> {
    text.lines()
        .filter(|line| line.contains(route))
        .filter_map(|line| line.split_once("# {trace_id=\"").map(|(_, rest)| rest[..32].to_string()))
        .collect()
}

async fn scrape(client: &reqwest::Client, url: &str, openmetrics: bool) -> (String, String) {
    let mut request = client.get(url);
    if openmetrics {
        request = request.header("accept", "application/openmetrics-text;version=1.0.0,text/plain;q=0.5");
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_string();
    (content_type, response.text().await.unwrap())
}

#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_is_counted_at_a_one_percent_sample_rate_and_sampled_ones_are_exemplars() {
    let recorder = Recorder::with(traced::Config::default().sampler(traced::Sampler::ParentBasedTraceIdRatio(0.01)));
    let served = Served::start::<Counted>(&[]).await;
    for _ in 0..300 {
        assert_eq!(served.post("/counted-ok", "{}", &[]).await.0, 200);
    }
    for _ in 0..20 {
        assert_eq!(served.post("/counted-ok", "{}", &[("traceparent", UNSAMPLED)]).await.0, 200);
    }
    for _ in 0..5 {
        assert_eq!(served.post("/counted-ok", "{}", &[("traceparent", SAMPLED)]).await.0, 200);
    }
    for _ in 0..7 {
        assert_eq!(served.post("/counted-fail", "{}", &[]).await.0, 500);
    }
    for _ in 0..3 {
        assert_eq!(served.client.get(served.url("/health")).send().await.unwrap().status(), 200);
    }

    let (content_type, text) = scrape(&served.client, &served.url("/metrics"), false).await;
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    let ok = "http_request_method=\"POST\",http_response_status_code=\"200\",http_route=\"/counted-ok\"";
    assert_eq!(value(&text, &format!("http_server_request_duration_seconds_count{{{ok}}}")), Some(325.0), "{text}");
    let failed = "error_type=\"500\",http_request_method=\"POST\",http_response_status_code=\"500\",http_route=\"/counted-fail\"";
    assert_eq!(value(&text, &format!("http_server_request_duration_seconds_count{{{failed}}}")), Some(7.0), "{text}");
    assert_eq!(
        value(&text, &format!("http_server_request_duration_seconds_bucket{{{ok},le=\"+Inf\"}}")),
        Some(325.0),
        "{text}"
    );
    assert!(!text.contains("/health") && !text.contains("/metrics"), "probes are not counted: {text}");
    assert!(!text.contains("trace_id"), "no exemplars in the classic format");

    let (content_type, text) = scrape(&served.client, &served.url("/metrics"), true).await;
    assert!(content_type.starts_with("application/openmetrics-text; version=1.0.0"), "{content_type}");
    assert!(text.ends_with("# EOF\n"));
    let exemplars = exemplar_traces(&text, "/counted-ok");
    assert!(exemplars.contains(&"4bf92f3577b34da6a3ce929d0e0e4736".to_string()), "a sampled caller's trace: {text}");
    assert!(!exemplars.contains(&"0af7651916cd43dd8448eb211c80319c".to_string()), "never an unsampled one");
    assert_eq!(served.stop().await, ExitCode::SUCCESS);
    let exported: HashSet<String> =
        recorder.spans().iter().map(|span| span.span_context.trace_id().to_string()).collect();
    for trace in &exemplars {
        assert!(exported.contains(trace), "every exemplar's trace was exported: {trace}");
    }
    assert!(exported.len() < 40, "one percent of new traces kept, and the sampled callers: {}", exported.len());
}

#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_axum_router_under_the_layer_is_counted_and_scraped_from_a_route_beside_it() {
    let _recorder = Recorder::start();
    let traced_routes = axum::Router::new()
        .route("/layered/{model}", post(|| async { "done" }))
        .route("/layered-broken", post(|| async { (axum::http::StatusCode::SERVICE_UNAVAILABLE, "busy") }))
        .layer(traced::TraceLayer::new());
    let app = traced_routes.route("/scrape", get(traced::prometheus_metrics));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = reqwest::Client::new();
    for model in ["a", "b", "c", "d"] {
        client.post(format!("http://{address}/layered/{model}")).send().await.unwrap();
    }
    client.post(format!("http://{address}/layered-broken")).send().await.unwrap();
    let (_, text) = scrape(&client, &format!("http://{address}/scrape"), false).await;
    let route = "http_request_method=\"POST\",http_response_status_code=\"200\",http_route=\"/layered/{model}\"";
    assert_eq!(
        value(&text, &format!("http_server_request_duration_seconds_count{{{route}}}")),
        Some(4.0),
        "one series for the template, not one per path: {text}"
    );
    let broken = "error_type=\"503\",http_request_method=\"POST\",http_response_status_code=\"503\",http_route=\"/layered-broken\"";
    assert_eq!(value(&text, &format!("http_server_request_duration_seconds_count{{{broken}}}")), Some(1.0), "{text}");
    assert!(!text.contains("/scrape"), "the scrape route is outside the layer");
}

#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_apps_own_instruments_are_scraped_beside_the_request_metrics() {
    use opentelemetry::KeyValue;

    let _recorder = Recorder::start();
    let meter = traced::meter("probe");
    let items = meter.u64_counter("probe.items").with_description("Items probed.").build();
    let wait = meter.f64_histogram("queue.wait").with_unit("s").with_boundaries(vec![0.1, 1.0]).build();
    let depth = meter.i64_up_down_counter("queue.depth").build();
    items.add(3, &[KeyValue::new("probe.kind", "image")]);
    items.add(2, &[KeyValue::new("probe.kind", "image")]);
    wait.record(0.05, &[]);
    wait.record(0.5, &[]);
    depth.add(4, &[]);
    depth.add(-1, &[]);
    let app = axum::Router::new().route("/metrics", get(traced::prometheus_metrics));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = reqwest::Client::new();

    let (_, text) = scrape(&client, &format!("http://{address}/metrics"), false).await;
    assert!(text.contains("# TYPE probe_items_total counter\n"), "{text}");
    assert_eq!(value(&text, "probe_items_total{probe_kind=\"image\"}"), Some(5.0), "{text}");
    assert!(text.contains("# TYPE queue_wait_seconds histogram\n"), "{text}");
    assert_eq!(value(&text, "queue_wait_seconds_bucket{le=\"0.1\"}"), Some(1.0), "{text}");
    assert_eq!(value(&text, "queue_wait_seconds_bucket{le=\"+Inf\"}"), Some(2.0), "{text}");
    assert_eq!(value(&text, "queue_wait_seconds_count"), Some(2.0), "{text}");
    assert!(text.contains("# TYPE queue_depth gauge\n"), "a non-monotonic sum is a gauge: {text}");
    assert_eq!(value(&text, "queue_depth"), Some(3.0), "{text}");

    let (_, text) = scrape(&client, &format!("http://{address}/metrics"), true).await;
    assert!(text.contains("# TYPE probe_items counter\n"), "OpenMetrics names the family without _total: {text}");
    assert!(!text.contains("# TYPE probe_items_total"), "{text}");
    assert!(text.contains("# UNIT queue_wait_seconds seconds\n"), "{text}");
    assert_eq!(value(&text, "probe_items_total{probe_kind=\"image\"}"), Some(5.0), "{text}");
    assert!(text.ends_with("# EOF\n"));
}

#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn genai_requests_count_their_duration_and_time_to_first_token_by_operation_and_model() {
    let _recorder = Recorder::with(traced::Config::default().sampler(traced::Sampler::ParentBasedAlwaysOff));
    let served = Served::start::<Counted>(&[]).await;
    for _ in 0..4 {
        let response = served.client.post(served.url("/counted-tokens")).body("{}").send().await.unwrap();
        assert_eq!(response.text().await.unwrap().matches("data:").count(), 3);
        assert_eq!(served.post("/counted-embed", "{}", &[]).await.0, 200);
    }
    let (_, text) = scrape(&served.client, &served.url("/metrics"), false).await;
    let chat = "gen_ai_operation_name=\"chat\",gen_ai_request_model=\"tiny-llm\"";
    assert_eq!(value(&text, &format!("gen_ai_server_request_duration_seconds_count{{{chat}}}")), Some(4.0), "{text}");
    assert_eq!(
        value(&text, &format!("gen_ai_server_time_to_first_token_seconds_count{{{chat}}}")),
        Some(4.0),
        "counted though no trace was sampled: {text}"
    );
    let first_tokens = value(&text, &format!("gen_ai_server_time_to_first_token_seconds_sum{{{chat}}}")).unwrap();
    assert!(first_tokens >= 4.0 * 0.03, "each first token came after 30 ms: {first_tokens}");
    assert_eq!(
        value(&text, &format!("gen_ai_server_time_to_first_token_seconds_bucket{{{chat},le=\"0.02\"}}")),
        Some(0.0),
        "{text}"
    );
    let embed = "gen_ai_operation_name=\"embeddings\"";
    assert_eq!(
        value(&text, &format!("gen_ai_server_request_duration_seconds_count{{{embed}}}")),
        Some(4.0),
        "the kind names the operation: {text}"
    );
    assert!(
        !text.contains("gen_ai_server_time_to_first_token_seconds_count{gen_ai_operation_name=\"embeddings\""),
        "a whole answer has no first token"
    );
    assert!(!text.contains("generate_content"), "an endpoint with no AI kind adds no GenAI series: {text}");
    assert_eq!(served.stop().await, ExitCode::SUCCESS);
}

#[traced::span(metrics)]
fn encode_stage(steps: u64) -> u64 {
    steps * 2
}

#[traced::span(name = "upload-stage", metrics)]
async fn upload_stage() -> Result<(), Diverged> {
    tokio::task::yield_now().await;
    Err(Diverged)
}

#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stage_marked_metrics_counts_every_call_sampled_or_not() {
    let _recorder = Recorder::with(traced::Config::default().sampler(traced::Sampler::ParentBasedAlwaysOff));
    for steps in 0..7 {
        assert_eq!(encode_stage(steps), steps * 2);
    }
    for _ in 0..3 {
        assert!(upload_stage().await.is_err());
    }
    let app = axum::Router::new().route("/metrics", get(traced::prometheus_metrics));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let (_, text) = scrape(&reqwest::Client::new(), &format!("http://{address}/metrics"), false).await;
    assert_eq!(value(&text, "traced_stage_duration_seconds_count{traced_stage=\"encode_stage\"}"), Some(7.0), "{text}");
    assert_eq!(value(&text, "traced_stage_duration_seconds_count{traced_stage=\"upload-stage\"}"), Some(3.0), "{text}");
}

#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_of_random_urls_adds_one_series_not_one_per_path() {
    let _recorder = Recorder::start();
    let served = Served::start::<Counted>(&[]).await;
    for i in 0..300 {
        let path = format!("/scan-{i}/{:x}/wp-admin.php", i * 7919);
        assert_eq!(served.post(&path, "{}", &[]).await.0, 404);
    }
    let (_, text) = scrape(&served.client, &served.url("/metrics"), false).await;
    assert!(!text.contains("scan-"), "no raw path becomes a label: {text}");
    let unmatched =
        "http_server_request_duration_seconds_count{http_request_method=\"POST\",http_response_status_code=\"404\"}";
    let counted = value(&text, unmatched).expect("one series for every request no route matched");
    assert!(counted >= 300.0, "{counted}");
    assert_eq!(text.lines().filter(|line| line.starts_with(unmatched)).count(), 1);
    assert_eq!(served.stop().await, ExitCode::SUCCESS);
}
