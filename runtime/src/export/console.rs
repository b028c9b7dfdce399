//! The console exporter: each finished trace printed to stderr as a tree.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use opentelemetry::trace::{SpanId, SpanKind, Status, TraceId};
use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use traced_core::__layers::{AI_KIND_KEY, Kind};

use crate::export::local_root::is_local_root;

/// Traces held back waiting for their root beyond this are printed as they are.
const MAX_PENDING_TRACES: usize = 1024;
const SHOWN_ATTRIBUTES: usize = 6;
const HTTP_KEYS: [&str; 4] = ["http.request.method", "http.route", "url.path", "http.response.status_code"];
const SHOWN_VALUE_CHARS: usize = 48;

/// Prints every finished trace to stderr as a tree of spans with durations,
/// status and key attributes. Spans are held until the trace's local root
/// ends, so each trace prints once, whole.
#[derive(Debug, Default)]
pub struct ConsoleExporter {
    pending: Mutex<Pending>,
    service: String,
}

#[derive(Debug, Default)]
struct Pending {
    traces: HashMap<TraceId, Vec<SpanData>>,
    order: Vec<TraceId>,
}

impl ConsoleExporter {
    fn print(&self, trees: &[String]) {
        if trees.is_empty() {
            return;
        }
        let mut stderr = std::io::stderr().lock();
        for tree in trees {
            let _ = stderr.write_all(tree.as_bytes());
        }
    }

    fn take_complete(&self, batch: Vec<SpanData>) -> Vec<String> {
        let mut guard = self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let pending = &mut *guard;
        let mut finished = Vec::new();
        for span in batch {
            let trace_id = span.span_context.trace_id();
            let is_local_root = is_local_root(&span);
            let spans = pending.traces.entry(trace_id).or_default();
            if spans.is_empty() {
                pending.order.push(trace_id);
            }
            spans.push(span);
            if is_local_root && !finished.contains(&trace_id) {
                finished.push(trace_id);
            }
        }
        while pending.order.len() > MAX_PENDING_TRACES {
            let oldest = pending.order[0];
            if !finished.contains(&oldest) {
                finished.push(oldest);
            }
            pending.order.remove(0);
        }
        let mut trees = Vec::new();
        for trace_id in finished {
            if let Some(spans) = pending.traces.remove(&trace_id) {
                pending.order.retain(|id| *id != trace_id);
                trees.push(render_trace(&spans, &self.service));
            }
        }
        trees
    }
}

impl SpanExporter for ConsoleExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let trees = self.take_complete(batch);
        self.print(&trees);
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        let mut pending = self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let order = std::mem::take(&mut pending.order);
        let trees: Vec<String> = order
            .into_iter()
            .filter_map(|id| pending.traces.remove(&id))
            .map(|spans| render_trace(&spans, &self.service))
            .collect();
        drop(pending);
        self.print(&trees);
        Ok(())
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        if let Some(name) = resource.get(&opentelemetry::Key::from_static_str("service.name")) {
            self.service = name.to_string();
        }
    }
}

/// One trace as a tree: a header line, then one line per span.
pub(crate) fn render_trace(spans: &[SpanData], service: &str) -> String {
    let ids: Vec<SpanId> = spans.iter().map(|s| s.span_context.span_id()).collect();
    let mut children: HashMap<SpanId, Vec<&SpanData>> = HashMap::new();
    let mut roots = Vec::new();
    for span in spans {
        if ids.contains(&span.parent_span_id) {
            children.entry(span.parent_span_id).or_default().push(span);
        } else {
            roots.push(span);
        }
    }
    let by_start = |a: &&SpanData, b: &&SpanData| a.start_time.cmp(&b.start_time).then_with(|| a.name.cmp(&b.name));
    roots.sort_by(by_start);
    children.values_mut().for_each(|list| list.sort_by(by_start));

    let mut out = String::new();
    let trace_id = spans.first().map(|s| s.span_context.trace_id()).unwrap_or(TraceId::INVALID);
    let _ = write!(out, "trace {trace_id}");
    if !service.is_empty() {
        let _ = write!(out, "  service={service}");
    }
    let _ = writeln!(out, "  spans={}", spans.len());
    for root in roots {
        write_span(&mut out, root, &children, "", None);
    }
    out
}

fn write_span(
    out: &mut String,
    span: &SpanData,
    children: &HashMap<SpanId, Vec<&SpanData>>,
    indent: &str,
    last: Option<bool>,
) {
    let (branch, next_indent) = match last {
        None => ("", String::new()),
        Some(true) => ("└─ ", format!("{indent}   ")),
        Some(false) => ("├─ ", format!("{indent}│  ")),
    };
    let duration = span.end_time.duration_since(span.start_time).unwrap_or_default();
    let _ = write!(out, "{indent}{branch}{}  {}", span.name, format_duration(duration));
    if span.span_kind != SpanKind::Internal {
        let _ = write!(out, "  [{}]", Kind::of(&span.span_kind).name());
    }
    let http = |key: &str| span.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| kv.value.to_string());
    // An AI kind beside the span kind: `[LLM]`, rather than among the attributes.
    if let Some(ai_kind) = http(AI_KIND_KEY) {
        let _ = write!(out, "  [{ai_kind}]");
    }
    let request_line = http("http.request.method").zip(http("url.path"));
    if let Some((method, path)) = &request_line {
        let _ = write!(out, "  {method} {path}");
        if let Some(status) = http("http.response.status_code") {
            let _ = write!(out, " → {status}");
        }
    }
    if span.parent_span_is_remote {
        let _ = write!(out, "  (remote parent {})", span.parent_span_id);
    }
    match &span.status {
        Status::Error { description } if description.is_empty() => out.push_str("  ERROR"),
        Status::Error { description } => {
            let _ = write!(out, "  ERROR: {}", shorten(description));
        }
        Status::Ok => out.push_str("  OK"),
        Status::Unset => {}
    }
    // The request line above already says what these would.
    let shown: Vec<_> = span
        .attributes
        .iter()
        .filter(|kv| request_line.is_none() || !HTTP_KEYS.contains(&kv.key.as_str()))
        .filter(|kv| kv.key.as_str() != AI_KIND_KEY)
        .collect();
    for kv in shown.iter().take(SHOWN_ATTRIBUTES) {
        let _ = write!(out, "  {}={}", kv.key, format_value(kv));
    }
    if shown.len() > SHOWN_ATTRIBUTES {
        let _ = write!(out, "  (+{} attributes)", shown.len() - SHOWN_ATTRIBUTES);
    }
    let events = span.events.events.len();
    if events > 0 {
        let _ = write!(out, "  events={events}");
    }
    out.push('\n');
    if let Some(kids) = children.get(&span.span_context.span_id()) {
        for (index, child) in kids.iter().enumerate() {
            write_span(out, child, children, &next_indent, Some(index + 1 == kids.len()));
        }
    }
}

fn format_value(kv: &KeyValue) -> String {
    match &kv.value {
        Value::String(s) => format!("{:?}", shorten(s.as_str())),
        other => shorten(&other.to_string()),
    }
}

fn shorten(text: &str) -> String {
    match text.char_indices().nth(SHOWN_VALUE_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

fn format_duration(duration: Duration) -> String {
    let micros = duration.as_micros();
    if micros < 1_000 {
        format!("{micros}µs")
    } else if micros < 1_000_000 {
        format!("{:.1}ms", micros as f64 / 1_000.0)
    } else {
        format!("{:.2}s", duration.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::time::{Duration, SystemTime};

    use opentelemetry::InstrumentationScope;
    use opentelemetry::trace::{SpanContext, TraceFlags, TraceState};
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};

    use super::*;

    fn span(id: u64, parent: u64, name: &'static str, start_ms: u64, end_ms: u64) -> SpanData {
        let epoch = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        SpanData {
            span_context: SpanContext::new(
                TraceId::from(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736),
                SpanId::from(id),
                TraceFlags::SAMPLED,
                false,
                TraceState::NONE,
            ),
            parent_span_id: SpanId::from(parent),
            parent_span_is_remote: false,
            span_kind: SpanKind::Internal,
            name: Cow::Borrowed(name),
            start_time: epoch + Duration::from_millis(start_ms),
            end_time: epoch + Duration::from_millis(end_ms),
            attributes: Vec::new(),
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::Unset,
            instrumentation_scope: InstrumentationScope::builder("traced").build(),
        }
    }

    fn sample_trace() -> Vec<SpanData> {
        let mut root = span(1, 0, "text-to-image", 0, 1520);
        root.span_kind = SpanKind::Server;
        root.attributes = vec![
            KeyValue::new("http.request.method", "POST"),
            KeyValue::new("http.route", "/"),
            KeyValue::new("url.path", "/"),
            KeyValue::new("model.name", "tiny-unet"),
            KeyValue::new("num_inference_steps", 4),
            KeyValue::new("http.response.status_code", 200),
        ];
        let encode = span(2, 1, "encode-prompt", 1, 3);
        let mut inference = span(3, 1, "inference", 3, 1403);
        inference.attributes = vec![KeyValue::new(AI_KIND_KEY, "LLM")];
        for step in 0..4 {
            inference.events.events.push(opentelemetry::trace::Event::new(
                "step",
                SystemTime::UNIX_EPOCH,
                vec![KeyValue::new("step", step)],
                0,
            ));
        }
        let mut step = span(5, 3, "unet", 10, 10);
        step.end_time = step.start_time + Duration::from_micros(850);
        let mut upload = span(4, 1, "upload", 1403, 1519);
        upload.status = Status::error("disk full");
        // Export order is end order, not tree order.
        vec![step, encode, inference, upload, root]
    }

    #[test]
    fn renders_a_trace_as_a_tree() {
        let expected = "\
trace 4bf92f3577b34da6a3ce929d0e0e4736  service=text-to-image  spans=5
text-to-image  1.52s  [server]  POST / → 200  model.name=\"tiny-unet\"  num_inference_steps=4
├─ encode-prompt  2.0ms
├─ inference  1.40s  [LLM]  events=4
│  └─ unet  850µs
└─ upload  116.0ms  ERROR: disk full
";
        assert_eq!(render_trace(&sample_trace(), "text-to-image"), expected);
    }

    #[test]
    fn holds_spans_until_the_root_ends() {
        let exporter = ConsoleExporter::default();
        let mut spans = sample_trace();
        let root = spans.pop().unwrap();
        assert!(exporter.take_complete(spans).is_empty());
        let trees = exporter.take_complete(vec![root]);
        assert_eq!(trees.len(), 1);
        assert!(trees[0].contains("spans=5"));
        assert!(exporter.pending.lock().unwrap().traces.is_empty());
    }

    #[test]
    fn long_values_are_shortened() {
        let mut root = span(1, 0, "root", 0, 1);
        root.attributes = vec![KeyValue::new("prompt", "x".repeat(100))];
        let tree = render_trace(&[root], "");
        assert!(tree.contains(&format!("prompt=\"{}…\"", "x".repeat(SHOWN_VALUE_CHARS))), "{tree}");
    }
}
