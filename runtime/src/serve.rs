//! `traced::serve`: an app over HTTP with its whole lifecycle. Setup before
//! binding; each `#[endpoint]` as POST JSON in, JSON out; the caller's trace
//! continued from its headers; and on SIGTERM or SIGINT a shutdown that fits
//! the grace period: stop accepting, `handle_exit`, let in-flight requests
//! finish, teardown, flush with what is left, exit.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use opentelemetry::Context;
use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::{SpanContext, TraceContextExt as _};
use tokio::sync::Semaphore;

use crate::app::App;
use crate::config::{Config, ConfigWarning};
use crate::routes::{Call, Reply, Route};
use crate::span_handle::{Kind, Meta, SpanHandle};

const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;
/// Kept back from the grace period so the process is gone before SIGKILL.
const EXIT_MARGIN: Duration = Duration::from_millis(150);
/// The least the final flush is left when in-flight requests run long.
const FLUSH_RESERVE: Duration = Duration::from_millis(1000);

/// Where and how the server listens: `HOST`, `PORT`,
/// `TRACED_MAX_CONCURRENCY`, and the grace period from [`Config`].
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// The address to bind (default 0.0.0.0).
    pub host: String,
    /// The port (default 8080; 0 picks a free one).
    pub port: u16,
    /// Requests handled at once; more wait their turn (default: no limit).
    pub max_concurrency: Option<usize>,
    /// SIGTERM to exit.
    pub grace_period: Duration,
    /// What the environment got wrong.
    pub warnings: Vec<ConfigWarning>,
}

impl ServeOptions {
    /// Reads the process environment.
    pub fn from_env() -> Self {
        ServeOptions::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables from `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let mut warnings = Vec::new();
        let get = |name: &str| lookup(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let host = get("HOST").unwrap_or_else(|| "0.0.0.0".to_string());
        let port = match get("PORT") {
            None => 8080,
            Some(raw) => raw.parse().unwrap_or_else(|_| {
                warnings.push(ConfigWarning {
                    variable: "PORT",
                    value: raw,
                    message: "expected a port number; using 8080".into(),
                });
                8080
            }),
        };
        let max_concurrency = match get("TRACED_MAX_CONCURRENCY") {
            None => None,
            Some(raw) => match raw.parse::<usize>() {
                Ok(n) if n > 0 => Some(n),
                _ => {
                    warnings.push(ConfigWarning {
                        variable: "TRACED_MAX_CONCURRENCY",
                        value: raw,
                        message: "expected a positive integer; no limit used".into(),
                    });
                    None
                }
            },
        };
        let config = Config::default().with_env_from(&lookup);
        ServeOptions { host, port, max_concurrency, grace_period: config.grace_period.value, warnings }
    }
}

/// Serves `A` until SIGTERM or SIGINT, then shuts down inside the grace
/// period. Exit status: 0 after a clean shutdown, 1 when setup or binding
/// failed.
///
/// ```no_run
/// # struct TextToImage;
/// # #[traced::traced_app] impl TextToImage { fn setup() -> Self { TextToImage } }
/// fn main() -> std::process::ExitCode {
///     traced::serve::<TextToImage>()
/// }
/// ```
pub fn serve<A: App>() -> ExitCode {
    let options = ServeOptions::from_env();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("traced: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(serve_until::<A>(options, shutdown_signal(), |_| {}));
    // Requests still stuck past the grace period are abandoned, not awaited.
    runtime.shutdown_timeout(Duration::from_millis(50));
    code
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// The lifecycle with a shutdown trigger of the caller's choosing (tests, or
/// an embedding program); `on_bound` learns the address once listening.
pub async fn serve_until<A: App>(
    options: ServeOptions,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
    on_bound: impl FnOnce(SocketAddr),
) -> ExitCode {
    for warning in &options.warnings {
        eprintln!("traced: warning: {warning}");
    }
    let app = match tokio::task::spawn_blocking(A::setup).await {
        Ok(Ok(app)) => Arc::new(app),
        Ok(Err(error)) => {
            eprintln!("traced: setup of {} failed: {error}", A::SERVICE_NAME);
            crate::app::finish();
            return ExitCode::FAILURE;
        }
        Err(panic) => {
            eprintln!("traced: setup of {} panicked: {}", A::SERVICE_NAME, panic_message(panic));
            crate::app::finish();
            return ExitCode::FAILURE;
        }
    };
    let listener = match tokio::net::TcpListener::bind((options.host.as_str(), options.port)).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("traced: cannot listen on {}:{}: {error}", options.host, options.port);
            teardown(app, Instant::now() + options.grace_period);
            return ExitCode::FAILURE;
        }
    };
    let address = listener.local_addr().ok();
    if let Some(address) = address {
        eprintln!("traced: {} serving on http://{address}", A::SERVICE_NAME);
        on_bound(address);
    }
    let router = router(Arc::clone(&app), options.max_concurrency);

    // The grace period starts at the signal; `stopping` carries its time.
    let (stopped_at_tx, stopped_at_rx) = tokio::sync::oneshot::channel::<Instant>();
    let exit_app = Arc::clone(&app);
    let signal = async move {
        stop.await;
        let at = Instant::now();
        eprintln!("traced: stopping {}: no new connections; waiting for requests in flight", A::SERVICE_NAME);
        let _ = stopped_at_tx.send(at);
        let _ = tokio::task::spawn_blocking(move || exit_app.handle_exit()).await;
    };
    let server = axum::serve(listener, router).with_graceful_shutdown(signal);
    let mut server = std::pin::pin!(server.into_future());
    let mut stopped_at_rx = std::pin::pin!(stopped_at_rx);
    let started_stopping = tokio::select! {
        result = &mut server => {
            if let Err(error) = result {
                eprintln!("traced: the server failed: {error}");
            }
            Instant::now()
        }
        at = &mut stopped_at_rx => {
            let at = at.unwrap_or_else(|_| Instant::now());
            let exit_by = at + options.grace_period.saturating_sub(EXIT_MARGIN);
            let drain_until = exit_by - FLUSH_RESERVE.min(options.grace_period / 4);
            if tokio::time::timeout_at(drain_until.into(), &mut server).await.is_err() {
                eprintln!("traced: requests still running at the end of their share of the grace period are abandoned");
            }
            at
        }
    };
    let exit_by = started_stopping + options.grace_period.saturating_sub(EXIT_MARGIN);
    tokio::task::spawn_blocking(move || teardown(app, exit_by)).await.ok();
    ExitCode::SUCCESS
}

/// Runs the app's teardown if no request still holds it, then flushes with
/// what is left of the budget.
fn teardown<A: App>(app: Arc<A>, exit_by: Instant) {
    crate::provider::set_exit_deadline(exit_by);
    match Arc::try_unwrap(app) {
        Ok(mut app) => app.teardown(),
        Err(_) => {
            eprintln!("traced: a request still holds the app: its teardown is skipped; flushing spans");
            crate::app::finish();
        }
    }
}

fn router<A: App>(app: Arc<A>, max_concurrency: Option<usize>) -> axum::Router {
    let limit = max_concurrency.map(|n| Arc::new(Semaphore::new(n)));
    // Probes are not traced (they would flood the backend); the answer still
    // names the caller's trace when it sent one.
    let mut router = axum::Router::new().route(
        "/health",
        axum::routing::get(|headers: HeaderMap| async move {
            let body = serde_json::json!({ "status": "ok", "service": A::SERVICE_NAME });
            reply_response(Reply::json(&body), caller_span(&headers))
        }),
    );
    for route in A::routes() {
        let app = Arc::clone(&app);
        let limit = limit.clone();
        let path = route.path;
        router = router.route(
            path,
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                handle(route.clone(), Arc::clone(&app), limit.clone(), headers, body)
            }),
        );
    }
    router
        .fallback(|method: http::Method, uri: http::Uri, headers: HeaderMap| async move {
            not_found(&method, &uri, &headers)
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

/// What the server tells the endpoint's span about the request; where the
/// span leaves its context so the response can name it; and where it waits,
/// once the endpoint returns, for the server to add the response status and
/// end it.
#[derive(Clone, Debug)]
pub(crate) struct RequestSlot {
    route: &'static str,
    state: Arc<std::sync::Mutex<SlotState>>,
}

#[derive(Debug, Default)]
struct SlotState {
    span: Option<SpanContext>,
    /// The ended endpoint's span, and whether it recorded a failure.
    held: Option<(Context, bool)>,
    /// The server stopped waiting (the client went away): spans end at once.
    closed: bool,
}

impl RequestSlot {
    fn new(route: &'static str) -> Self {
        RequestSlot { route, state: Arc::default() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn fill(&self, context: SpanContext) {
        self.lock().span = Some(context);
    }

    /// The HTTP semantic-convention attributes backends group requests by.
    pub(crate) fn describe(&self, attrs: &mut crate::attributes::Attributes) {
        attrs.push("http.request.method", "POST");
        attrs.push("http.route", self.route);
        attrs.push("url.path", self.route);
    }

    /// Keeps the endpoint's span open for [`RequestSlot::finish`], unless the
    /// server has stopped waiting for it.
    pub(crate) fn hold(&self, cx: Context, failed: bool) {
        let mut state = self.lock();
        if state.closed {
            drop(state);
            cx.span().end();
        } else {
            state.held = Some((cx, failed));
        }
    }

    /// Adds the response status to the endpoint's span and ends it; a 5xx the
    /// endpoint did not record as a failure (a reply it built itself) marks it.
    fn finish(&self, status: u16) {
        let Some((cx, failed)) = self.lock().held.take() else { return };
        let span = cx.span();
        span.set_attribute(opentelemetry::KeyValue::new("http.response.status_code", i64::from(status)));
        if status >= 500 && !failed {
            span.set_status(opentelemetry::trace::Status::error(format!("HTTP {status}")));
        }
        span.end();
    }

    /// Ends what is held without a status, and anything held later at once.
    fn close(&self) {
        let held = {
            let mut state = self.lock();
            state.closed = true;
            state.held.take()
        };
        if let Some((cx, _)) = held {
            cx.span().end();
        }
    }

    fn get(&self) -> Option<SpanContext> {
        self.lock().span.clone()
    }
}

/// Closes the slot however the request ends, a client that disconnects
/// (axum drops the handler's future) included: the endpoint's span is never
/// left open, and the slot never keeps the context that holds it.
struct CloseOnDrop(RequestSlot);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

async fn handle<A: App>(
    route: Route<A>,
    app: Arc<A>,
    limit: Option<Arc<Semaphore>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let incoming = crate::headers::extract(&headers);
    let slot = RequestSlot::new(route.path);
    let _close = CloseOnDrop(slot.clone());
    let cx = incoming.with_value(slot.clone());
    let _permit = match &limit {
        Some(limit) => limit.clone().acquire_owned().await.ok(),
        None => None,
    };
    let reply = match route.prepare(app, body.to_vec()) {
        Err(message) => {
            reject_input(route.name, &cx, &message);
            Reply::error(422, &format!("invalid input: {message}"))
        }
        Ok(Call::Blocking(call)) => {
            let cx = cx.clone();
            match tokio::task::spawn_blocking(move || {
                let _attached = cx.attach();
                call()
            })
            .await
            {
                Ok(reply) => reply,
                Err(join) => Reply::error(500, &format!("the handler panicked: {}", panic_message(join))),
            }
        }
        Ok(Call::Async(call)) => match tokio::spawn(call.with_context(cx.clone())).await {
            Ok(reply) => reply,
            Err(join) => Reply::error(500, &format!("the handler panicked: {}", panic_message(join))),
        },
    };
    slot.finish(reply.status);
    let span = slot.get().or_else(|| valid_span(&incoming));
    reply_response(reply, span)
}

/// The caller's span, from its W3C headers.
fn caller_span(headers: &HeaderMap) -> Option<SpanContext> {
    valid_span(&crate::headers::extract(headers))
}

/// The span of `cx`, unless it has none.
fn valid_span(cx: &Context) -> Option<SpanContext> {
    let span = cx.span();
    let context = span.span_context();
    context.is_valid().then(|| context.clone())
}

/// A call to a path no endpoint serves gets a span, so that a caller with the
/// wrong URL finds its mistake in its own trace.
fn not_found(method: &http::Method, uri: &http::Uri, headers: &HeaderMap) -> Response {
    let _attached = crate::headers::extract(headers).attach();
    let path = uri.path().to_string();
    let handle = SpanHandle::request(Meta::new("not-found").kind(Kind::Server), None, |attrs| {
        attrs.push("http.request.method", method.as_str().to_string());
        attrs.push("url.path", path);
        attrs.push("http.response.status_code", 404_i64);
    });
    let span = handle.context().and_then(valid_span);
    drop(handle);
    reply_response(Reply::error(404, "no endpoint at this path"), span.or_else(|| caller_span(headers)))
}

/// A request whose body does not parse never reaches the endpoint: its span
/// is made here, with the endpoint's name, marked failed.
fn reject_input(name: &'static str, cx: &Context, message: &str) {
    let _attached = cx.clone().attach();
    let handle = SpanHandle::request(Meta::new(name).kind(Kind::Server), None, |_| {});
    handle.record_exception("invalid input", message, Vec::new(), format!("invalid input: {message}"));
}

fn reply_response(reply: Reply, span: Option<SpanContext>) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let trace_id = span.as_ref().map(|s| s.trace_id().to_string());
    let body = match reply.error {
        Some(message) => {
            serde_json::to_vec(&serde_json::json!({ "error": message, "trace_id": trace_id })).unwrap_or_default()
        }
        None => reply.body,
    };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(span) = span {
        let flags = if span.is_sampled() { "01" } else { "00" };
        let traceparent = format!("00-{}-{}-{flags}", span.trace_id(), span.span_id());
        if let Ok(value) = HeaderValue::from_str(&traceparent) {
            headers.insert(HeaderName::from_static("traceparent"), value);
        }
        if let Some(Ok(value)) = trace_id.map(|id| HeaderValue::from_str(&id)) {
            headers.insert(HeaderName::from_static("x-trace-id"), value);
        }
    }
    response
}

fn panic_message(join: tokio::task::JoinError) -> String {
    match join.try_into_panic() {
        Ok(payload) => payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a non-string panic".to_string()),
        Err(join) => join.to_string(),
    }
}
