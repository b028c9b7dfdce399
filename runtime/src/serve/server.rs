//! `traced::serve`: an app over HTTP with its whole lifecycle. Setup before
//! binding; each `#[endpoint]` as POST JSON in, JSON out; the caller's trace
//! continued from its headers; and on SIGTERM or SIGINT a shutdown that fits
//! the grace period: stop accepting, `handle_exit`, let in-flight requests
//! finish, teardown, flush with what is left, exit.

use axum::serve::ListenerExt as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::export::messages;
use crate::export::provider::set_exit_deadline;
use crate::serve::app::{App, finish};
use crate::serve::options::ServeOptions;
use crate::serve::reply::join_failure;
use crate::serve::router::router;
/// Kept back from the grace period so the process is gone before SIGKILL.
const EXIT_MARGIN: Duration = Duration::from_millis(150);
/// The least the final flush is left when in-flight requests run long.
const FLUSH_RESERVE: Duration = Duration::from_millis(1000);

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
        messages::warn(&warning.to_string());
    }
    let app = match tokio::task::spawn_blocking(A::setup).await {
        Ok(Ok(app)) => Arc::new(app),
        Ok(Err(error)) => {
            eprintln!("traced: setup of {} failed: {error}", A::SERVICE_NAME);
            finish();
            return ExitCode::FAILURE;
        }
        Err(panic) => {
            eprintln!("traced: setup of {} panicked: {}", A::SERVICE_NAME, join_failure(panic));
            finish();
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
    // Each streamed event goes out as it is written: with Nagle's algorithm
    // a stream's small last frames waited for the client's delayed ACK
    // (measured: one-event streams took 5.6 ms on average instead of 0.2).
    let listener = listener.tap_io(|connection| {
        let _ = connection.set_nodelay(true);
    });

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
    set_exit_deadline(exit_by);
    match Arc::try_unwrap(app) {
        Ok(mut app) => app.teardown(),
        Err(_) => {
            eprintln!("traced: a request still holds the app: its teardown is skipped; flushing spans");
            finish();
        }
    }
}
