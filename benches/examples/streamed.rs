//! What tracing costs a streamed answer: the same stream of small JSON items
//! sent as Server-Sent Events four ways, read whole by a client in the same
//! process over loopback:
//!
//! - `axum`: axum's `Sse` handler, untraced (the baseline);
//! - `axum+layer`: the same handler under `traced::TraceLayer`, its span
//!   open to the last event;
//! - `endpoint`: a traced `#[endpoint]` returning `impl Iterator` (run on the
//!   blocking pool), one span over the stream;
//! - `endpoint-stream`: a traced async `#[endpoint]` returning `impl Stream`.
//!
//! Traced spans go to an in-process sink that counts and drops them.
//! `streamed [ITEMS] [REQUESTS]` prints, per way, the time per item (the
//! whole read of `REQUESTS` streams of `ITEMS` items, divided by the items)
//! and the median time to the first byte over the same requests.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::response::sse::{Event, Sse};
use axum::routing::post;
use axum::serve::ListenerExt as _;
use serde::{Deserialize, Serialize};
use traced_benches::{Discard, Sampling, traced_stack};

#[derive(Deserialize)]
struct StreamInput {
    count: u64,
}

#[derive(Serialize, Clone, Copy)]
struct Token {
    index: u64,
    text: &'static str,
}

fn token(index: u64) -> Token {
    Token { index, text: "lorem" }
}

/// An iterator as a `Stream`, ready at every poll.
struct Ready<I>(I);

impl<I: Iterator + Unpin> futures_core::Stream for Ready<I> {
    type Item = I::Item;

    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<I::Item>> {
        Poll::Ready(self.0.next())
    }
}

struct Tokens;

#[traced::traced_app(service = "bench-stream")]
impl Tokens {
    fn setup() -> Result<Self, String> {
        Ok(Tokens)
    }

    #[endpoint("/endpoint", name = "stream-tokens", ai_kind = llm)]
    fn stream(&self, input: StreamInput) -> impl Iterator<Item = Token> + use<> {
        (0..input.count).map(token)
    }

    #[endpoint("/endpoint-stream", name = "stream-tokens-async", ai_kind = llm)]
    async fn stream_async(&self, input: StreamInput) -> impl futures_core::Stream<Item = Token> + use<> {
        Ready((0..input.count).map(token))
    }
}

type Events = Sse<Ready<Box<dyn Iterator<Item = Result<Event, std::convert::Infallible>> + Send>>>;

async fn axum_stream(axum::Json(input): axum::Json<StreamInput>) -> Events {
    let events = (0..input.count).map(|index| Ok(Event::default().json_data(token(index)).unwrap_or_default()));
    Sse::new(Ready(Box::new(events)))
}

/// As `traced::serve` sets it: each event is sent as it is written.
fn no_delay(connection: &mut tokio::net::TcpStream) {
    let _ = connection.set_nodelay(true);
}

/// The same items in one JSON body, one `data:` line each, of known size:
/// a whole response, for the cost of the layer when nothing streams.
async fn axum_whole(axum::Json(input): axum::Json<StreamInput>) -> String {
    (0..input.count).map(|index| format!("data: {}\n\n", serde_json::json!(token(index)))).collect()
}

fn axum_router() -> axum::Router {
    axum::Router::new().route("/axum", post(axum_stream)).route("/axum-whole", post(axum_whole))
}

/// Reads `requests` streams of `items` from `url`: the time per item, and
/// the median time to the first byte.
async fn read(client: &reqwest::Client, url: &str, items: u64, requests: usize) -> (Duration, Duration) {
    let mut first_bytes = Vec::with_capacity(requests);
    let started = Instant::now();
    for _ in 0..requests {
        let sent = Instant::now();
        let mut response = client
            .post(url)
            .json(&serde_json::json!({ "count": items }))
            .send()
            .await
            .unwrap_or_else(|e| panic!("streamed: {url}: {e}"));
        assert!(response.status().is_success(), "streamed: {url}: {}", response.status());
        let mut events = 0;
        let mut first = None;
        while let Some(chunk) = response.chunk().await.unwrap_or_else(|e| panic!("streamed: {url}: {e}")) {
            first.get_or_insert_with(|| sent.elapsed());
            events += chunk.windows(2).filter(|pair| pair == b"\n\n").count();
        }
        assert_eq!(events as u64, items, "streamed: {url}: every item arrives as an event");
        first_bytes.push(first.unwrap_or_default());
    }
    let per_item = started.elapsed() / u32::try_from(items * requests as u64).unwrap_or(u32::MAX);
    first_bytes.sort();
    (per_item, first_bytes[first_bytes.len() / 2])
}

fn main() {
    let items: u64 = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(1000);
    let requests: usize = std::env::args().nth(2).and_then(|n| n.parse().ok()).unwrap_or(200);
    let sink = Discard::default();
    let sampling = if std::env::var_os("STREAMED_UNSAMPLED").is_some() { Sampling::None } else { Sampling::All };
    let _guard = traced_stack(sampling, sink.clone());
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    runtime.block_on(async {
        let options = traced::ServeOptions::from_lookup(|name| (name == "PORT").then(|| "0".to_string()));
        let (bound, address) = tokio::sync::oneshot::channel();
        tokio::spawn(traced::serve_until::<Tokens>(options, std::future::pending(), move |address| {
            let _ = bound.send(address);
        }));
        let traced_address = address.await.expect("the traced server bound");
        let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let plain_address = plain.local_addr().expect("its address");
        tokio::spawn(async move { axum::serve(plain.tap_io(no_delay), axum_router()).await });
        let layered = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let layered_address = layered.local_addr().expect("its address");
        tokio::spawn(async move {
            axum::serve(layered.tap_io(no_delay), axum_router().layer(traced::TraceLayer::new())).await
        });

        let client = reqwest::Client::new();
        let ways = [
            ("axum", format!("http://{plain_address}/axum")),
            ("axum+layer", format!("http://{layered_address}/axum")),
            ("axum-whole", format!("http://{plain_address}/axum-whole")),
            ("axum-whole+layer", format!("http://{layered_address}/axum-whole")),
            ("endpoint", format!("http://{traced_address}/endpoint")),
            ("endpoint-stream", format!("http://{traced_address}/endpoint-stream")),
        ];
        // Warm every path (connections, pools, buffers) before timing.
        for (_, url) in &ways {
            read(&client, url, items, requests / 10 + 1).await;
        }
        println!("{items} items a stream, {requests} streams each, read in turn on loopback");
        // `STREAMED_WAYS=endpoint,axum` times some ways only, in that order.
        let chosen =
            std::env::var("STREAMED_WAYS").unwrap_or_else(|_| "axum,axum+layer,endpoint,endpoint-stream".into());
        for (name, url) in chosen.split(',').filter_map(|way| ways.iter().find(|(name, _)| *name == way)) {
            let (per_item, first_byte) = read(&client, url, items, requests).await;
            println!(
                "  {name:<16} {:>7} ns per item   first byte {:>6.1} µs",
                per_item.as_nanos(),
                first_byte.as_secs_f64() * 1e6
            );
        }
    });
    traced::flush(Duration::from_secs(10));
    println!("spans received by the sink: {}", sink.received());
}
