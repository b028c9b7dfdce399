//! A rotel of a test's own, which the test stops and starts again on the
//! same port: it drops what it receives and logs how many spans each
//! request carried.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{closed_port, count_logged_spans, unique};

pub struct OwnRotel {
    /// Its OTLP/HTTP port.
    pub port: u16,
    child: Child,
    log: PathBuf,
}

impl OwnRotel {
    /// Starts one on `port`, or on a free port; waits until it listens.
    pub fn start(port: Option<u16>) -> Self {
        let agent = std::env::var("TRACED_ROTEL_AGENT").unwrap_or_else(|_| {
            panic!(
                "TRACED_ROTEL_AGENT is not set: these tests start rotel themselves. Run the README's test command \
                 (scripts/test.sh), or scripts/receivers.sh with cargo test"
            )
        });
        let port = port.unwrap_or_else(closed_port);
        let grpc = closed_port();
        let log = std::env::temp_dir().join(format!("{}.log", unique(&format!("traced-own-rotel-{port}"))));
        let out = std::fs::File::create(&log).expect("a log file");
        let child = Command::new(&agent)
            .args(["start", "--otlp-http-endpoint", &format!("127.0.0.1:{port}")])
            .args(["--otlp-grpc-endpoint", &format!("127.0.0.1:{grpc}")])
            .args(["--debug-log", "traces", "--debug-log-verbosity", "basic", "--exporter", "blackhole"])
            .stdout(out.try_clone().expect("a log file"))
            .stderr(out)
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("rotel ({agent}) did not start: {e}"));
        let mut rotel = OwnRotel { port, child, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = rotel.child.try_wait() {
                panic!("rotel exited ({status}): {}", std::fs::read_to_string(&rotel.log).unwrap_or_default());
            }
            assert!(Instant::now() < deadline, "rotel did not listen on {port} within 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        rotel
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Spans received so far.
    pub fn spans(&self) -> u64 {
        count_logged_spans(&std::fs::read_to_string(&self.log).unwrap_or_default())
    }

    /// What it has logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Ends it (SIGKILL, as an OOM kill does) and waits until the port is
    /// closed.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for OwnRotel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}
