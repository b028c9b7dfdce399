//! What `traced::TraceLayer` costs a request in the process, with no
//! network: one axum route (`GET /v1/generate/{model}`, a small answer)
//! called through the layer in a loop, its spans exported to an in-process
//! sink that counts and drops them. `layer_cost MODE [REQUESTS]`, MODE
//! `metrics` (the default configuration) or `no-metrics`
//! (`Config::metrics(false)`), prints the mean time per request;
//! `scripts/bench-layer-cost.sh` runs both in turn, several times.

use std::time::Instant;

use axum::body::Body;
use axum::routing::get;
use http::Request;
use tower::ServiceExt as _;
use traced_benches::{Discard, Sampling, traced_config};

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "metrics".to_string());
    let requests: u32 = std::env::args().nth(2).and_then(|n| n.parse().ok()).unwrap_or(200_000);
    let sink = Discard::default();
    let config = traced_config(Sampling::All, sink).metrics(mode == "metrics");
    let _guard = traced::init(config.with_env_from(|_| None));
    let router = axum::Router::new()
        .route("/v1/generate/{model}", get(|| async { "{\"image\":\"done\"}" }))
        .layer(traced::TraceLayer::new());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let call = || {
        let request = Request::get("/v1/generate/sd-turbo").body(Body::empty()).expect("a request");
        router.clone().oneshot(request)
    };
    runtime.block_on(async {
        for _ in 0..requests / 10 {
            call().await.expect("an answer");
        }
        let started = Instant::now();
        for _ in 0..requests {
            call().await.expect("an answer");
        }
        let per_request = started.elapsed().as_nanos() / u128::from(requests);
        println!("layer_cost {mode}: {per_request} ns per request ({requests} requests)");
    });
}
