//! An axum service written the way teams write them: its own router, shared
//! state, extractors, and a handler that calls its stages. traced is added
//! by one line, `.layer(traced::TraceLayer::new())`: each request gets a
//! Server span named by its route that continues the caller's trace, and
//! the `#[span]` stages nest under it.
//!
//! `PORT=8080 cargo run -p axum-app`, then
//! `curl -X POST localhost:8080/generate/tiny-unet -H 'content-type: application/json' -d '{"prompt":"a red circle","steps":4}'`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

struct Model {
    weights: Vec<f32>,
}

#[derive(Clone)]
struct AppState {
    model: Arc<Model>,
}

#[derive(Deserialize)]
struct Generate {
    prompt: String,
    steps: u32,
}

#[derive(Serialize)]
struct Generated {
    model: String,
    values: usize,
    trace_id: Option<String>,
}

#[traced::span(name = "encode-prompt", ai_kind = embedding)]
fn encode(prompt: &str) -> Vec<f32> {
    prompt.bytes().map(f32::from).collect()
}

#[traced::span(ai_kind = llm, args(steps))]
fn denoise(model: &Model, mut latents: Vec<f32>, steps: u32) -> Vec<f32> {
    for step in 0..steps {
        traced::add_event("denoise-step", [("step", i64::from(step))]);
        for (value, weight) in latents.iter_mut().zip(model.weights.iter().cycle()) {
            *value *= weight;
        }
    }
    latents
}

async fn generate(
    State(state): State<AppState>,
    Path(model): Path<String>,
    Json(request): Json<Generate>,
) -> Result<Json<Generated>, (StatusCode, String)> {
    if request.prompt.trim().is_empty() {
        return Err((StatusCode::UNPROCESSABLE_ENTITY, "the prompt is empty".into()));
    }
    let embedding = encode(&request.prompt);
    // An await between the stages: the request span stays current across it.
    tokio::task::yield_now().await;
    let latents = denoise(&state.model, embedding, request.steps);
    Ok(Json(Generated { model, values: latents.len(), trace_id: traced::current_trace_id() }))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let tracing = traced::init(traced::Config::default().service_name("axum-app"));
    let state = AppState { model: Arc::new(Model { weights: vec![0.5, 0.25, 0.125] }) };
    let app = axum::Router::new()
        .route("/generate/{model}", post(generate))
        .route("/health", get(|| async { "ok" }))
        .with_state(state)
        .layer(traced::TraceLayer::new());
    let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let port = std::env::var("PORT").unwrap_or_else(|_| "8080".into());
    let listener = match tokio::net::TcpListener::bind(format!("{host}:{port}")).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("axum-app: cannot listen on {host}:{port}: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    eprintln!("axum-app: listening on {host}:{port}");
    if let Err(error) = axum::serve(listener, app).with_graceful_shutdown(traced::shutdown_signal()).await {
        eprintln!("axum-app: the server failed: {error}");
    }
    tracing.shutdown();
    std::process::ExitCode::SUCCESS
}
