//! `traced::Client`: calls another app over HTTP inside a Client span, with
//! the span's context in the W3C headers and, for apps that read it from the
//! body, in the input's `Carrier` field.

use std::time::Instant;

use opentelemetry::trace::TraceContextExt as _;
use opentelemetry::{Context, KeyValue};
use serde::Serialize;
use serde::de::DeserializeOwned;

use traced_core::__layers::{Kind, Meta, SpanHandle, chain_text};
use traced_core::SpanAttributes;
use traced_core::inject_context;

use crate::serve::client_error::ClientError;
use crate::serve::client_stream::EventStream;

/// Where the client puts the trace context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Propagation {
    /// `traceparent`, `tracestate` and `baggage` headers.
    Headers,
    /// The input's `Carrier` field only.
    Body,
    /// Both (the default): any receiver finds it.
    Both,
}

/// An HTTP client for calling other apps; cheap to clone.
///
/// ```no_run
/// # async fn example() -> Result<(), traced::ClientError> {
/// #[derive(serde::Serialize, traced::SpanAttributes)]
/// struct WorkerInput {
///     prompt: String,
///     trace_context: traced::Carrier,
/// }
///
/// let client = traced::Client::new();
/// let input = WorkerInput { prompt: "red circle".into(), trace_context: Default::default() };
/// let output: serde_json::Value = client.call_carrying("http://127.0.0.1:8081/", input).await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    propagation: Propagation,
}

impl Default for Client {
    fn default() -> Self {
        Client::new()
    }
}

impl Client {
    /// A client propagating in headers and body.
    pub fn new() -> Self {
        Client { http: reqwest::Client::new(), propagation: Propagation::Both }
    }

    /// Chooses where the context goes.
    #[must_use]
    pub fn propagation(mut self, propagation: Propagation) -> Self {
        self.propagation = propagation;
        self
    }

    /// POSTs `input` as JSON and parses the JSON answer, inside a Client
    /// span; the context goes in the headers.
    pub async fn call<I: Serialize, O: DeserializeOwned>(&self, url: &str, input: &I) -> Result<O, ClientError> {
        let span = client_span(url);
        let cx = span.context().cloned().unwrap_or_else(Context::current);
        let result = self.send(url, input, &cx).await;
        record(&span, &result);
        result
    }

    /// Like [`Client::call`], and also fills the input's `Carrier` field with
    /// the Client span's context, for apps that read it from the body.
    pub async fn call_carrying<I, O>(&self, url: &str, mut input: I) -> Result<O, ClientError>
    where
        I: Serialize + SpanAttributes,
        O: DeserializeOwned,
    {
        let span = client_span(url);
        let cx = span.context().cloned().unwrap_or_else(Context::current);
        if self.propagation != Propagation::Headers
            && let Some(carrier) = input.carrier_mut()
        {
            *carrier = inject_context(&cx);
        }
        let result = self.send(url, &input, &cx).await;
        record(&span, &result);
        result
    }

    /// [`Client::call_carrying`] from sync code, such as an endpoint running
    /// on the blocking pool.
    pub fn call_carrying_blocking<I, O>(&self, url: &str, input: I) -> Result<O, ClientError>
    where
        I: Serialize + SpanAttributes + Send + Sync,
        O: DeserializeOwned + Send,
    {
        block_on(self.call_carrying(url, input))
    }

    /// [`Client::call`] from sync code.
    pub fn call_blocking<I: Serialize + Sync, O: DeserializeOwned + Send>(
        &self,
        url: &str,
        input: &I,
    ) -> Result<O, ClientError> {
        block_on(self.call(url, input))
    }

    /// POSTs `input` as JSON to a streaming endpoint and yields its items as
    /// they arrive (Server-Sent Events, one JSON item each), inside a Client
    /// span that lasts until the stream ends or is dropped; the context goes
    /// in the headers, as [`Client::call`] sends it. An answer that is not a
    /// stream (an error status, say) is an `Err` here; an `error` event
    /// mid-stream is the stream's last item.
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), traced::ClientError> {
    /// #[derive(serde::Deserialize)]
    /// struct Progress {
    ///     step: u32,
    /// }
    ///
    /// let client = traced::Client::new();
    /// let mut events = client.stream::<_, Progress>("http://127.0.0.1:8081/stream", &serde_json::json!({})).await?;
    /// while let Some(progress) = events.next().await {
    ///     println!("step {}", progress?.step);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn stream<I: Serialize, T: DeserializeOwned>(
        &self,
        url: &str,
        input: &I,
    ) -> Result<EventStream<T>, ClientError> {
        let started = Instant::now();
        let span = client_span(url);
        let cx = span.context().cloned().unwrap_or_else(Context::current);
        let opened = async {
            let (status, response) = self.post(url, input, &cx, Some("text/event-stream")).await?;
            let is_stream = response
                .headers()
                .get(http::header::CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                .is_some_and(|value| value.starts_with("text/event-stream"));
            if (200..300).contains(&status) && is_stream {
                return Ok((status, response));
            }
            let bytes = response.bytes().await.unwrap_or_default();
            let body: String = String::from_utf8_lossy(&bytes).chars().take(1000).collect();
            let body =
                if (200..300).contains(&status) { format!("the answer is not an event stream: {body}") } else { body };
            Err(ClientError { url: url.to_string(), status: Some(status), body })
        }
        .await;
        match opened {
            Ok((status, response)) => Ok(EventStream::new(started, span, url.to_string(), status, response)),
            Err(error) => {
                record(&span, &Err::<(), _>(error.clone()));
                Err(error)
            }
        }
    }

    async fn send<I: Serialize, O: DeserializeOwned>(
        &self,
        url: &str,
        input: &I,
        cx: &Context,
    ) -> Result<O, ClientError> {
        let failure = |status: Option<u16>, body: String| ClientError { url: url.to_string(), status, body };
        let (status, response) = self.post(url, input, cx, None).await?;
        let bytes = response.bytes().await.map_err(|e| failure(Some(status), chain_text(&e)))?;
        if !(200..300).contains(&status) {
            return Err(failure(Some(status), String::from_utf8_lossy(&bytes).chars().take(1000).collect()));
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| failure(Some(status), format!("the answer is not the expected JSON: {e}")))
    }

    /// POSTs `input` as JSON with the context in the headers (unless it goes
    /// in the body alone); the answer's status goes on the Client span.
    async fn post<I: Serialize>(
        &self,
        url: &str,
        input: &I,
        cx: &Context,
        accept: Option<&'static str>,
    ) -> Result<(u16, reqwest::Response), ClientError> {
        let mut request = self.http.post(url).json(input);
        if let Some(accept) = accept {
            request = request.header(http::header::ACCEPT, accept);
        }
        if self.propagation != Propagation::Body {
            for (name, value) in inject_context(cx).iter() {
                request = request.header(name, value);
            }
        }
        let response = request.send().await.map_err(|e| ClientError {
            url: url.to_string(),
            status: None,
            body: chain_text(&e),
        })?;
        let status = response.status().as_u16();
        if let Some(span) = cx.span().span_context().is_valid().then(|| cx.span()) {
            span.set_attribute(KeyValue::new("http.response.status_code", i64::from(status)));
        }
        Ok((status, response))
    }
}

fn client_span(url: &str) -> SpanHandle {
    let parsed = reqwest::Url::parse(url).ok();
    SpanHandle::new(Meta::new("POST").kind(Kind::Client), |attrs| {
        attrs.push("http.request.method", "POST");
        attrs.push("url.full", url.to_string());
        if let Some(parsed) = &parsed {
            if let Some(host) = parsed.host_str() {
                attrs.push("server.address", host.to_string());
            }
            if let Some(port) = parsed.port_or_known_default() {
                attrs.push("server.port", i64::from(port));
            }
        }
    })
}

fn record<O>(span: &SpanHandle, result: &Result<O, ClientError>) {
    if let Err(error) = result {
        span.record_exception("traced::ClientError", &error.to_string(), Vec::new(), error.to_string());
    }
}

/// Runs a call to completion from sync code: on the caller's multi-thread
/// runtime when there is one (a blocking-pool thread, or a worker through
/// `block_in_place`), else on a runtime of its own.
fn block_on<T: Send>(future: impl std::future::Future<Output = T> + Send) -> T {
    let own_runtime = |future| match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime.block_on(future),
        Err(error) => panic!("traced::Client: no tokio runtime could be started: {error}"),
    };
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| handle.block_on(future))
        }
        // A current-thread runtime cannot be blocked from inside: use a thread.
        Ok(_) => std::thread::scope(|scope| scope.spawn(|| own_runtime(future)).join())
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
        Err(_) => own_runtime(future),
    }
}
