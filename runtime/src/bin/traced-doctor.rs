//! `traced-doctor`: prints the effective configuration, sends one test trace,
//! and says whether it arrived. Exit status 0 when it did, 1 when it did not.

use std::process::ExitCode;

use traced::{Config, ExporterKind};

fn main() -> ExitCode {
    let config = Config::from_env();
    println!("traced-doctor: effective configuration (secrets redacted)");
    let rows = config.describe();
    let width = rows.iter().map(|(name, _, _)| name.len()).max().unwrap_or(0);
    for (name, value, source) in &rows {
        println!("  {name:width$}  {value}  [{source}]");
    }
    if !config.get_warnings().is_empty() {
        println!("warnings:");
        for warning in config.get_warnings() {
            println!("  {warning}");
        }
    }
    if !config.get_enabled().value {
        println!("tracing is off: no spans are recorded or exported");
        return ExitCode::SUCCESS;
    }
    if !config.get_exporters().value.contains(&ExporterKind::Otlp) {
        println!(
            "no OTLP export configured: spans go to {}; set OTEL_EXPORTER_OTLP_ENDPOINT or TRACED_BACKEND to send them to a backend",
            if config.get_exporters().value.contains(&ExporterKind::Console) { "the console" } else { "nowhere" }
        );
        return ExitCode::SUCCESS;
    }
    println!(
        "sending a test trace to {} over {} ...",
        config.redacted_otlp_traces_url().unwrap_or_default(),
        config.get_otlp().protocol.value.as_str()
    );
    match traced::doctor::send_test_trace(&config) {
        Ok(delivered) => {
            println!(
                "ok: trace {} accepted by {} in {} ms",
                delivered.trace_id,
                delivered.endpoint,
                delivered.elapsed.as_millis()
            );
            ExitCode::SUCCESS
        }
        Err(failure) => {
            println!("FAILED: {failure}");
            ExitCode::FAILURE
        }
    }
}
