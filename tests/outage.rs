//! A collector that goes away: rotel killed and started again on the same
//! port under steady requests, every span arrives once; a collector away
//! longer than the maximum elapsed time, what waited is dropped after it and
//! not before; a shutdown during an outage ends inside its budget and counts
//! what it could not send.

use std::time::Duration;

use traced_tests::{OwnRotel, Service, workspace_binary};

/// The shutdown report's count after `label` ("spans exported", "export
/// failed", "unsent at shutdown").
fn reported(stderr: &str, label: &str) -> u64 {
    let line = stderr.lines().rev().find(|line| line.contains("spans exported")).unwrap_or_else(|| {
        panic!("no shutdown report in:\n{stderr}");
    });
    let number = |text: &str| text.trim().split(|c: char| !c.is_ascii_digit()).next().unwrap_or("").parse().ok();
    if label == "spans exported" {
        return line.split("spans exported").next().and_then(|head| number(head.rsplit(' ').nth(1)?)).unwrap_or(0);
    }
    line.split(label).nth(1).and_then(number).unwrap_or_else(|| panic!("no {label:?} in {line:?}"))
}

fn worker(endpoint: &str, extra: &[(&str, &str)]) -> Service {
    let mut env = vec![("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint), ("OTEL_BSP_SCHEDULE_DELAY", "100")];
    env.extend_from_slice(extra);
    Service::start(&workspace_binary("test-worker"), &env)
}

fn requests(worker: &Service, count: usize) {
    let prompt = serde_json::json!({ "prompt": "a red circle" });
    for _ in 0..count {
        assert_eq!(worker.post("/", &prompt, &[]).0, 200);
    }
}

fn poll(what: impl Fn() -> bool) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        if what() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// The count once it has not moved for half a second.
fn settled(rotel: &OwnRotel) -> u64 {
    let mut last = rotel.spans();
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let now = rotel.spans();
        if now == last {
            return now;
        }
        last = now;
    }
}

/// The spans the worker made as it started, and those one request makes,
/// measured on a collector that is up.
fn spans_per_request(rotel: &OwnRotel, worker: &Service) -> (u64, u64) {
    assert!(poll(|| rotel.spans() > 0), "the worker's setup span arrives:\n{}\n{}", rotel.log(), worker.stderr());
    let startup = settled(rotel);
    requests(worker, 10);
    assert!(poll(|| rotel.spans() > startup), "the first requests arrive:\n{}", worker.stderr());
    let made = settled(rotel) - startup;
    assert!(made > 0 && made.is_multiple_of(10), "{made} spans for 10 requests");
    (startup, made / 10)
}

#[test]
fn spans_wait_out_a_collector_restart_and_each_arrives_once() {
    let mut first = OwnRotel::start(None);
    let mut worker = worker(&first.url(), &[]);
    let (startup, per_request) = spans_per_request(&first, &worker);

    first.kill();
    let before = first.spans();
    // Requests while the collector is away, for about two seconds.
    for _ in 0..20 {
        requests(&worker, 5);
        std::thread::sleep(Duration::from_millis(100));
    }
    let second = OwnRotel::start(Some(first.port));
    requests(&worker, 10);
    // 10 before the outage, 100 during it, 10 after.
    let total = startup + 120 * per_request;
    assert!(
        poll(|| before + second.spans() >= total),
        "every span reaches the collector once it is back: {} of {total}\n{}",
        before + second.spans(),
        worker.stderr()
    );
    assert_eq!(worker.terminate().0, Some(0));
    let stderr = worker.stderr();
    // The worker's teardown span comes last.
    assert_eq!(before + second.spans(), total + 1, "none twice:\n{stderr}");
    assert_eq!(reported(&stderr, "spans exported"), total + 1, "{stderr}");
    assert_eq!(reported(&stderr, "queue full"), 0, "{stderr}");
    assert_eq!(reported(&stderr, "export failed"), 0, "{stderr}");
    assert_eq!(stderr.matches("its spans wait for it").count(), 1, "said once:\n{stderr}");
    assert!(stderr.contains("recovered; what waited for it is sent, oldest first"), "{stderr}");
    assert!(stderr.contains("bytes a span)"), "how much waited, and in how little: {stderr}");
}

#[test]
fn what_waits_longer_than_the_maximum_elapsed_time_is_dropped_after_it_not_before() {
    let mut rotel = OwnRotel::start(None);
    let mut worker = worker(&rotel.url(), &[("TRACED_RETRY_MAX_ELAPSED_TIME_MS", "3000")]);
    let (_, per_request) = spans_per_request(&rotel, &worker);
    rotel.kill();
    requests(&worker, 10);
    assert!(poll(|| worker.stderr().contains("its spans wait for it")), "{}", worker.stderr());
    std::thread::sleep(Duration::from_millis(1500));
    assert!(!worker.stderr().contains("stayed away"), "not dropped before 3 s:\n{}", worker.stderr());
    let dropped = format!("stayed away longer than 3 s: {} spans that waited for it were dropped", 10 * per_request);
    assert!(poll(|| worker.stderr().contains(&dropped)), "{}", worker.stderr());
    assert_eq!(worker.terminate().0, Some(0));
    let stderr = worker.stderr();
    // And the teardown span, which found the collector away at shutdown.
    assert_eq!(reported(&stderr, "export failed"), 10 * per_request + 1, "counted as export failed:\n{stderr}");
    assert_eq!(reported(&stderr, "unsent at shutdown"), 0, "{stderr}");
}

#[test]
fn a_shutdown_during_an_outage_ends_in_its_budget_and_counts_what_waited() {
    let mut rotel = OwnRotel::start(None);
    let mut worker = worker(&rotel.url(), &[]);
    let (startup, per_request) = spans_per_request(&rotel, &worker);
    rotel.kill();
    requests(&worker, 10);
    assert!(poll(|| worker.stderr().contains("its spans wait for it")), "{}", worker.stderr());
    let (code, took) = worker.terminate();
    assert_eq!(code, Some(0));
    assert!(took < Duration::from_secs(5), "inside the 5 s grace period: {took:?}");
    let stderr = worker.stderr();
    assert!(stderr.contains("the collector was away") && !stderr.contains("budget ran out"), "{stderr}");
    // And the teardown span, behind those that wait.
    assert_eq!(reported(&stderr, "unsent at shutdown"), 10 * per_request + 1, "{stderr}");
    assert_eq!(reported(&stderr, "spans exported"), startup + 10 * per_request, "{stderr}");
}

#[test]
fn past_the_budget_new_spans_are_dropped_counted_and_said_once_and_what_waited_arrives() {
    let mut first = OwnRotel::start(None);
    let mut worker = worker(&first.url(), &[("TRACED_SPAN_BUFFER_BYTES", "65536")]);
    assert!(poll(|| first.spans() > 0), "the worker's setup span arrives:\n{}", worker.stderr());
    first.kill();
    let before = first.spans();
    requests(&worker, 1500);
    assert!(poll(|| worker.stderr().contains("the span buffer for")), "{}", worker.stderr());
    let second = OwnRotel::start(Some(first.port));
    assert!(poll(|| second.spans() > 0), "what waited arrives:\n{}", worker.stderr());
    let arrived = settled(&second);
    assert_eq!(worker.terminate().0, Some(0));
    let stderr = worker.stderr();
    assert!(reported(&stderr, "queue full") > 0, "{stderr}");
    assert_eq!(stderr.matches("the span buffer for").count(), 1, "said once:\n{stderr}");
    assert!(stderr.contains("the oldest kept (raise TRACED_SPAN_BUFFER_BYTES"), "{stderr}");
    // Every span sent arrived once: what traced counts as exported is what
    // the two rotels received (the teardown span last).
    assert_eq!(before + second.spans(), reported(&stderr, "spans exported"), "{stderr}");
    assert!(second.spans() >= arrived);
}
