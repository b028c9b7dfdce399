//! A real Prometheus (Debian's, unpacked by `scripts/receivers.sh`) scraping
//! one app every second, with exemplar storage on, queried over its HTTP API.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{closed_port, required, unique};

pub struct Prometheus {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    child: std::process::Child,
    dir: PathBuf,
}

impl Prometheus {
    /// Starts Prometheus scraping `target` (`http://127.0.0.1:PORT`) at
    /// `/metrics` every second; returns once it is ready.
    pub fn scraping(target: &str) -> Self {
        let binary = required("TRACED_PROMETHEUS");
        let dir = std::env::temp_dir().join(unique("traced-prometheus"));
        std::fs::create_dir_all(&dir).expect("a directory for Prometheus");
        let host = target.trim_start_matches("http://");
        let config = format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: [\"{host}\"]\n"
        );
        std::fs::write(dir.join("prometheus.yml"), config).expect("write prometheus.yml");
        let port = closed_port();
        let log = std::fs::File::create(dir.join("prometheus.log")).expect("a log file");
        let child = std::process::Command::new(&binary)
            .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--enable-feature=exemplar-storage")
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {binary}: {e}"));
        let prometheus = Prometheus { url: format!("http://127.0.0.1:{port}"), child, dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let ready = reqwest::blocking::get(format!("{}/-/ready", prometheus.url));
            if ready.is_ok_and(|r| r.status().is_success()) {
                return prometheus;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("Prometheus did not become ready within 30 s:\n{}", prometheus.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// The value of an instant PromQL query with one result, if it has one.
    pub fn value(&self, query: &str) -> Option<f64> {
        let answer: Value = reqwest::blocking::Client::new()
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", query)])
            .send()
            .ok()?
            .json()
            .ok()?;
        answer["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    }

    /// Polls `query` until it equals `expected` or 30 s pass; the last value.
    pub fn wait_for(&self, query: &str, expected: f64) -> Option<f64> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let value = self.value(query);
            if value == Some(expected) || Instant::now() >= deadline {
                return value;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// The trace ids of the exemplars of the series `selector` selects,
    /// over the last five minutes.
    pub fn exemplar_traces(&self, selector: &str) -> Vec<String> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs();
        let answer: Value = reqwest::blocking::Client::new()
            .get(format!("{}/api/v1/query_exemplars", self.url))
            .query(&[("query", selector), ("start", &(now - 300).to_string()), ("end", &(now + 60).to_string())])
            .send()
            .expect("query_exemplars")
            .json()
            .expect("JSON");
        let mut traces: Vec<String> = answer["data"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|series| series["exemplars"].as_array().cloned().unwrap_or_default())
            .filter_map(|exemplar| exemplar["labels"]["trace_id"].as_str().map(str::to_string))
            .collect();
        traces.sort();
        traces.dedup();
        traces
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
