//! An app served by `traced::serve` on a free loopback port, for the tests
//! that call it over real HTTP, stopped (teardown and all) on demand.

use std::net::SocketAddr;
use std::process::ExitCode;

use traced::ServeOptions;

pub(crate) struct Served {
    pub address: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<ExitCode>,
    pub client: reqwest::Client,
}

impl Served {
    /// Serves `A` on 127.0.0.1 with a 3 s grace period and the `settings`
    /// given (`TRACED_MAX_CONCURRENCY`, ...); returns once it listens.
    pub(crate) async fn start<A: traced::App>(settings: &[(&'static str, &'static str)]) -> Self {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (bound, address) = tokio::sync::oneshot::channel();
        let settings = settings.to_vec();
        let options = ServeOptions::from_lookup(move |name| match name {
            "HOST" => Some("127.0.0.1".into()),
            "PORT" => Some("0".into()),
            "TRACED_GRACE_PERIOD_MS" => Some("3000".into()),
            _ => settings.iter().find(|(set, _)| *set == name).map(|(_, value)| value.to_string()),
        });
        let done = tokio::spawn(traced::serve_until::<A>(
            options,
            async move {
                let _ = stopped.await;
            },
            move |address| {
                let _ = bound.send(address);
            },
        ));
        let address = address.await.expect("the server bound");
        Served { address, stop: Some(stop), done, client: reqwest::Client::new() }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// POSTs `body`; the status, headers and JSON answer.
    pub(crate) async fn post(
        &self,
        path: &str,
        body: &str,
        headers: &[(&str, &str)],
    ) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
        let mut request = self.client.post(self.url(path)).body(body.to_string());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("a response");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap_or_default();
        let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        (status, headers, body)
    }

    /// Stops it as SIGTERM would; its exit code.
    pub(crate) async fn stop(mut self) -> ExitCode {
        let _ = self.stop.take().unwrap().send(());
        self.done.await.unwrap()
    }
}
