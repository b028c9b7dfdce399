//! An axum service written the way teams write them: its own router, shared
//! state, extractors, and a handler that calls its stages. traced is added
//! by one line, `.layer(traced::TraceLayer::new())`: each request gets a
//! Server span named by its route that continues the caller's trace, and
//! the `#[span]` stages nest under it.
//!
//! A second route streams its progress as Server-Sent Events (axum's
//! `Sse`): the layer keeps that request's span open until the last event
//! has gone out, with the bytes sent and the time to the first.
//!
//! `PORT=8080 cargo run -p axum-app`, then
//! `curl -X POST localhost:8080/generate/tiny-unet -H 'content-type: application/json' -d '{"prompt":"a red circle","steps":4}'`
//! or, for the events, the same to `/generate/tiny-unet/stream` with `curl -N`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, Sse};
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

#[derive(Serialize)]
struct Progress {
    step: u32,
    of: u32,
}

/// The denoising steps as events, one every 20 ms. The work happens as the
/// body is read: the layer makes the request's span current while it is, so
/// each step's `denoise` span nests under the request.
async fn generate_stream(
    State(state): State<AppState>,
    Json(request): Json<Generate>,
) -> Sse<impl futures_core::Stream<Item = Result<Event, std::convert::Infallible>>> {
    let latents = encode(&request.prompt);
    Sse::new(Steps {
        model: state.model,
        latents,
        done: 0,
        of: request.steps,
        pause: Box::pin(tokio::time::sleep(STEP_PAUSE)),
    })
}

const STEP_PAUSE: std::time::Duration = std::time::Duration::from_millis(20);

struct Steps {
    model: Arc<Model>,
    latents: Vec<f32>,
    done: u32,
    of: u32,
    pause: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl futures_core::Stream for Steps {
    type Item = Result<Event, std::convert::Infallible>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        task: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        if self.done == self.of {
            return std::task::Poll::Ready(None);
        }
        std::task::ready!(self.pause.as_mut().poll(task));
        let this = &mut *self;
        this.latents = denoise(&this.model, std::mem::take(&mut this.latents), 1);
        this.done += 1;
        this.pause.as_mut().reset(tokio::time::Instant::now() + STEP_PAUSE);
        let event = Event::default().json_data(Progress { step: this.done, of: this.of }).unwrap_or_default();
        std::task::Poll::Ready(Some(Ok(event)))
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let tracing = traced::init(traced::Config::default().service_name("axum-app"));
    let state = AppState { model: Arc::new(Model { weights: vec![0.5, 0.25, 0.125] }) };
    let app = axum::Router::new()
        .route("/generate/{model}", post(generate))
        .route("/generate/{model}/stream", post(generate_stream))
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
