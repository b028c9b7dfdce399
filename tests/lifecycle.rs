//! SIGTERM under load: 200 requests from 8 concurrent clients, SIGTERM when
//! half have been answered. Every request answered 2xx has its complete
//! trace in Phoenix, and the process exits 0 inside its grace period.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use traced_tests::{Receivers, Service, unique, workspace_binary};

const REQUESTS: usize = 200;
const CLIENTS: usize = 8;

#[test]
fn sigterm_under_load_loses_no_answered_request() {
    let receivers = Receivers::from_env();
    let project = unique("traced-sigterm");
    let resource = format!("openinference.project.name={project}");
    let mut worker = Service::start(
        &workspace_binary("test-worker"),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &receivers.phoenix),
            ("OTEL_RESOURCE_ATTRIBUTES", &resource),
            ("WORKER_DELAY_MS", "20"),
            // Batches wait: whatever is still queued at SIGTERM must be flushed.
            ("OTEL_BSP_SCHEDULE_DELAY", "60000"),
        ],
    );
    let url = format!("{}/", worker.url);
    let issued = Arc::new(AtomicUsize::new(0));
    let answered = Arc::new(Mutex::new(Vec::<(u16, Option<String>)>::new()));
    let failed = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (issued, answered, failed, url) = (issued.clone(), answered.clone(), failed.clone(), url.clone());
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
                while issued.fetch_add(1, Ordering::SeqCst) < REQUESTS {
                    match client.post(&url).json(&serde_json::json!({ "prompt": "red circle" })).send() {
                        Ok(response) => {
                            let status = response.status().as_u16();
                            let trace =
                                response.headers().get("x-trace-id").and_then(|v| v.to_str().ok()).map(str::to_string);
                            answered.lock().unwrap().push((status, trace));
                        }
                        Err(_) => {
                            failed.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
            })
        })
        .collect();

    let deadline = Instant::now() + Duration::from_secs(60);
    while answered.lock().unwrap().len() < REQUESTS / 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    let (code, took) = worker.terminate();
    for client in clients {
        client.join().unwrap();
    }
    let answered = answered.lock().unwrap().clone();
    let ok: Vec<String> =
        answered.iter().filter(|(s, _)| (200..300).contains(s)).filter_map(|(_, t)| t.clone()).collect();
    println!(
        "SIGTERM after {} answers: exit {code:?} in {took:?}; {} answered 2xx, {} other answers, {} refused or cut",
        REQUESTS / 2,
        ok.len(),
        answered.len() - ok.len(),
        failed.load(Ordering::SeqCst)
    );
    assert_eq!(code, Some(0), "{}", worker.stderr());
    assert!(took < Duration::from_secs(5), "exit took {took:?}, past the 5 s grace period");
    assert!(ok.len() >= REQUESTS / 2);

    // Every answered request's trace, complete: the endpoint and its stage.
    let spans = phoenix_project_spans(&receivers, &project, ok.len() * 2);
    let mut missing = Vec::new();
    for trace_id in &ok {
        let names: Vec<&str> = spans.iter().filter(|(t, _)| t == trace_id).map(|(_, n)| n.as_str()).collect();
        if !(names.contains(&"text-to-image") && names.contains(&"generate")) {
            missing.push((trace_id.clone(), names.join(",")));
        }
    }
    println!("{} traces checked in Phoenix, {} incomplete", ok.len(), missing.len());
    assert!(missing.is_empty(), "incomplete traces: {missing:?}\n{}", worker.stderr());
}

#[test]
fn a_failed_setup_exits_non_zero_after_its_span_is_flushed() {
    let receivers = Receivers::from_env();
    let project = unique("traced-setup-fails");
    let resource = format!("openinference.project.name={project}");
    let started = Instant::now();
    let output = std::process::Command::new(workspace_binary("test-worker"))
        .env("HOST", "127.0.0.1")
        .env("PORT", traced_tests::closed_port().to_string())
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &receivers.phoenix)
        .env("OTEL_RESOURCE_ATTRIBUTES", &resource)
        .env("OTEL_BSP_SCHEDULE_DELAY", "60000")
        .env("WORKER_FAIL_SETUP", "/models/unet.safetensors")
        .output()
        .expect("run the worker");
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("failed setup exited {:?} after {:?}", output.status.code(), started.elapsed());
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("weights not found: /models/unet.safetensors"), "{stderr}");
    let spans = phoenix_project_spans(&receivers, &project, 1);
    assert_eq!(spans.iter().filter(|(_, name)| name == "setup").count(), 1, "the setup span was flushed: {spans:?}");
}

/// (trace id, span name) of every span in the project, polled until at least
/// `expected` are there.
fn phoenix_project_spans(receivers: &Receivers, project: &str, expected: usize) -> Vec<(String, String)> {
    let client = reqwest::blocking::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut spans = Vec::new();
    while Instant::now() < deadline {
        spans.clear();
        let mut cursor: Option<String> = None;
        loop {
            let mut url = format!("{}/v1/projects/{project}/spans?limit=1000", receivers.phoenix);
            if let Some(cursor) = &cursor {
                url.push_str(&format!("&cursor={cursor}"));
            }
            let Ok(body) = client.get(&url).send().and_then(|r| r.json::<serde_json::Value>()) else { break };
            for span in body["data"].as_array().into_iter().flatten() {
                let trace = span["context"]["trace_id"].as_str().unwrap_or_default().to_string();
                spans.push((trace, span["name"].as_str().unwrap_or_default().to_string()));
            }
            match body["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_string()),
                None => break,
            }
        }
        if spans.len() >= expected {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    spans
}
