// The types traced may grow: a match needs a wildcard arm, and what traced
// reports is read, not built.
fn describe(source: traced::Source) -> &'static str {
    match source {
        traced::Source::Default => "default",
        traced::Source::Code => "code",
        traced::Source::Environment(_) => "environment",
    }
}

fn main() {
    let _ = describe(traced::Source::Code);
    let _ = traced::ExportStats {
        exported: 0,
        dropped_queue_full: 0,
        dropped_export_failed: 0,
        dropped_at_shutdown: 0,
        dropped_rejected: 0,
        dropped_held: 0,
        sampled_out: 0,
    };
}
