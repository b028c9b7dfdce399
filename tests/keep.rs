//! Whole-trace decisions at the root's end against Phoenix: with head
//! sampling keeping nothing, a trace holding an error and a slow trace
//! arrive whole, marked with the rule that kept them, and a trace neither
//! slow nor failed does not arrive.

use std::time::Duration;

use traced::{Config, ExporterKind};
use traced_tests::{Receivers, by_name, one_provider_at_a_time, unique};

#[traced::span]
fn decode(fail: bool) -> Result<u32, String> {
    if fail { Err("the VAE ran out of memory".to_string()) } else { Ok(3) }
}

#[traced::span(name = "text-to-image")]
fn request(fail: bool, wait: Duration) -> String {
    std::thread::sleep(wait);
    let _ = decode(fail);
    traced::current_trace_id().expect("the root is recorded although head sampling dropped it")
}

#[test]
fn head_sampled_out_traces_are_kept_whole_by_error_or_slowness_and_the_others_let_go() {
    let _one = one_provider_at_a_time();
    let receivers = Receivers::from_env();
    let project = unique("traced-keep");
    let resource = format!("openinference.project.name={project}");
    let config = Config::default()
        .service_name(&project)
        .otlp_endpoint(&receivers.phoenix)
        .exporters([ExporterKind::Otlp])
        .sample_rate(0.0)
        .with_env_from(move |name| match name {
            "OTEL_RESOURCE_ATTRIBUTES" => Some(resource.clone()),
            "TRACED_KEEP_ERRORS" => Some("true".to_string()),
            "TRACED_KEEP_SLOWER_THAN_MS" => Some("300".to_string()),
            _ => None,
        });
    assert!(config.get_warnings().is_empty(), "{:?}", config.get_warnings());
    let guard = traced::init(config);
    let failed = request(true, Duration::ZERO);
    let clean = request(false, Duration::ZERO);
    let slow = request(false, Duration::from_millis(400));
    let report = guard.shutdown();
    assert_eq!(report.stats.exported, 4, "{report}");
    assert_eq!(report.stats.sampled_out, 2, "{report}");
    assert_eq!(report.stats.dropped(), 0, "{report}");

    let spans = receivers.phoenix_spans(&project, &failed, 2);
    assert_eq!(spans.len(), 2, "{spans:?}");
    let root = by_name(&spans, "text-to-image");
    assert_eq!(root.attributes["traced.kept_by"], "error");
    assert_eq!(by_name(&spans, "decode").status_code, "ERROR");
    assert_eq!(by_name(&spans, "decode").parent_id.as_deref(), Some(root.span_id.as_str()));

    let spans = receivers.phoenix_spans(&project, &slow, 2);
    assert_eq!(spans.len(), 2, "{spans:?}");
    assert_eq!(by_name(&spans, "text-to-image").attributes["traced.kept_by"], "slow");

    // Exported in the same shutdown as the two above, which have arrived.
    let spans = receivers.phoenix_spans(&project, &clean, 0);
    assert!(spans.is_empty(), "a fast trace without an error was let go: {spans:?}");
}
