//! [`Config`] → the process's tracer provider, and its bounded shutdown.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use opentelemetry::KeyValue;
use opentelemetry_otlp::RetryPolicy;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::resource::TelemetryResourceDetector;
use opentelemetry_sdk::trace::SdkTracerProvider;

use traced_core::__layers::{Sampling, collect_finished, install_tracer, propagator, remove_tracer, set_flush_hook};

use crate::export::config::setting::Source;
use crate::export::config::{Config, ExporterKind, Protocol, Sampler};
use crate::export::console::ConsoleExporter;
use crate::export::exporter::{DynExporter, Sdk};
use crate::export::global_provider::GlobalProvider;
use crate::export::messages;
use crate::export::otlp::OtlpExporter;
use crate::export::otlp::rejections::Rejections;
use crate::export::pipeline::finished_sink;
use crate::export::pipeline::processor::BatchProcessor;
use crate::export::pipeline::shared::ProcessorSettings;
use crate::export::pipeline::stats::ExportStats;
use crate::export::pipeline::trace_hold::KeepRules;
use crate::export::record_everything::RecordEverything;
use crate::export::sdk_tracer::SdkStart;

static INSTALLED: Mutex<Option<Installed>> = Mutex::new(None);

/// The flush budget of the installed configuration, in milliseconds.
static FLUSH_BUDGET_MS: AtomicU64 = AtomicU64::new(4000);

/// A console exporter waits this long for more spans, so trees print promptly.
const CONSOLE_SCHEDULE_DELAY: Duration = Duration::from_millis(100);

struct Installed {
    provider: SdkTracerProvider,
    processors: Vec<BatchProcessor>,
}

#[cfg(feature = "serve")]
pub(crate) fn is_installed() -> bool {
    INSTALLED.lock().unwrap_or_else(PoisonError::into_inner).is_some()
}

/// When the process must be gone: set by the server when a shutdown starts.
static EXIT_DEADLINE: Mutex<Option<Instant>> = Mutex::new(None);

/// The flush budget of the configuration in force, cut to what is left
/// before the exit deadline when one is set.
pub(crate) fn flush_budget() -> Duration {
    let budget = Duration::from_millis(FLUSH_BUDGET_MS.load(Ordering::Relaxed));
    match *EXIT_DEADLINE.lock().unwrap_or_else(PoisonError::into_inner) {
        Some(deadline) => budget.min(deadline.saturating_duration_since(Instant::now())),
        None => budget,
    }
}

#[cfg(feature = "serve")]
pub(crate) fn set_exit_deadline(deadline: Instant) {
    *EXIT_DEADLINE.lock().unwrap_or_else(PoisonError::into_inner) = Some(deadline);
}

/// Installs the process's tracer provider from `config` overridden by the
/// environment, and the W3C trace-context and baggage propagators.
///
/// Never fails: a bad value was already reported as a warning, and an exporter
/// that cannot be built is reported and left out. With tracing off no provider
/// and no thread is created, but context still propagates. The guard flushes
/// and shuts down within the flush budget when dropped.
///
/// ```
/// let guard = traced::init(
///     traced::Config::default()
///         .service_name("quickstart")
///         .exporters([traced::ExporterKind::None])
///         .with_env_from(|_| None),
/// );
/// assert!(traced::is_enabled());
/// let report = guard.shutdown();
/// assert_eq!(report.stats.dropped(), 0);
/// assert!(!traced::is_enabled());
/// ```
pub fn init(config: Config) -> TracingGuard {
    let config = config.resolved();
    for warning in &config.warnings {
        messages::warn(&warning.to_string());
    }
    opentelemetry::global::set_text_map_propagator(propagator());
    crate::metrics::request_metrics::set_recording(config.metrics.value);
    if config.metrics.value {
        traced_core::__layers::set_stage_hook(crate::metrics::request_metrics::record_stage);
    }
    let budget = config.flush_budget.value;
    if !config.enabled.value {
        // Metrics do not depend on tracing.
        if config.metrics.value {
            crate::metrics::instruments::install(resource(&config), config.metric_temporality.value);
        }
        return TracingGuard { armed: false, budget };
    }
    let mut installed = INSTALLED.lock().unwrap_or_else(PoisonError::into_inner);
    if installed.is_some() {
        messages::warn("init called again; the first configuration stays in force");
        return TracingGuard { armed: false, budget };
    }
    let resource = resource(&config);
    if config.metrics.value {
        crate::metrics::instruments::install(resource.clone(), config.metric_temporality.value);
        crate::metrics::otlp_push::start(&config, &resource);
    }
    let processors = processors(&config, &resource);
    let head = sdk_sampler(config.sampler.value);
    let builder = SdkTracerProvider::builder().with_resource(resource);
    let mut builder =
        if config.keep.any() { builder.with_sampler(RecordEverything::new(head)) } else { builder.with_sampler(head) };
    for processor in &processors {
        builder = builder.with_span_processor(processor.clone());
    }
    let provider = builder.build();
    let sampling = sampling(&config);
    set_flush_hook(|| {
        flush(flush_budget());
    });
    FLUSH_BUDGET_MS.store(u64::try_from(budget.as_millis()).unwrap_or(u64::MAX), Ordering::Relaxed);
    opentelemetry::global::set_tracer_provider(GlobalProvider(provider.clone()));
    finished_sink::start(&processors);
    *installed = Some(Installed { provider: provider.clone(), processors });
    install_tracer(SdkStart::new(&provider), sampling);
    TracingGuard { armed: true, budget }
}

/// What traced's own span core needs to know of the sampler.
fn sampling(config: &Config) -> Sampling {
    let follows_parent = matches!(
        config.sampler.value,
        Sampler::ParentBasedAlwaysOn | Sampler::ParentBasedAlwaysOff | Sampler::ParentBasedTraceIdRatio(_)
    );
    // Under a keep rule every span is recorded: the SDK's sampler decides
    // new traces and no child is skipped.
    let keeps = config.keep.any();
    let root_ratio = match config.sampler.value {
        _ if keeps => None,
        Sampler::ParentBasedAlwaysOn => Some(1.0),
        Sampler::ParentBasedAlwaysOff => Some(0.0),
        Sampler::ParentBasedTraceIdRatio(ratio) => Some(ratio),
        _ => None,
    };
    Sampling { follows_parent, skips_unsampled_children: !keeps, root_ratio }
}

fn processors(config: &Config, resource: &Resource) -> Vec<BatchProcessor> {
    let settings = |name: String| ProcessorSettings {
        name,
        max_queue_size: config.batch.max_queue_size.value.map_or(usize::MAX, std::num::NonZeroUsize::get),
        max_queue_bytes: config.span_buffer_bytes.value,
        keep: config.keep.any().then_some(KeepRules {
            errors: config.keep.errors.value,
            slower_than: config.keep.slower_than.value,
            max_held_bytes: config.keep.max_held_bytes.value,
        }),
        max_export_batch_size: config.batch.max_export_batch_size.value,
        schedule_delay: config.batch.schedule_delay.value,
        export_timeout: config.batch.export_timeout.value,
        value_length_limit: config.attribute_value_length_limit.value,
        flush_budget: config.flush_budget.value,
        max_request_bytes: None,
        rejections: None,
        default_ai_kind: true,
        retry_max_elapsed: config.retry_max_elapsed.value,
        non_finite_as_text: false,
    };
    let mut exporters: Vec<(MakeExporter, ProcessorSettings)> = Vec::new();
    for kind in &config.exporters.value {
        match kind {
            ExporterKind::Otlp => {
                let name = format!(
                    "{} ({})",
                    config.redacted_otlp_traces_url().unwrap_or_default(),
                    config.otlp.protocol.value.as_str()
                );
                let rejections = Arc::new(Rejections::default());
                let settings = ProcessorSettings {
                    max_request_bytes: Some(config.otlp_request_limit()),
                    rejections: Some(Arc::clone(&rejections)),
                    non_finite_as_text: config.otlp.protocol.value == Protocol::HttpJson,
                    ..settings(name)
                };
                let config = config.clone();
                let make: MakeExporter = Box::new(move || {
                    let exporter = OtlpExporter::build(&config, RetryPolicy::recommended(), rejections)
                        .map_err(|why| format!("OTLP exporter not built: {why}"))?;
                    Ok(Box::new(exporter) as Box<dyn DynExporter>)
                });
                exporters.push((make, settings));
            }
            ExporterKind::Console => {
                let mut console = ProcessorSettings { default_ai_kind: false, ..settings("console".into()) };
                if config.batch.schedule_delay.source == Source::Default {
                    console.schedule_delay = CONSOLE_SCHEDULE_DELAY;
                }
                exporters.push((
                    Box::new(|| Ok(Box::new(Sdk(ConsoleExporter::default())) as Box<dyn DynExporter>)),
                    console,
                ));
            }
            ExporterKind::None => {}
        }
    }
    for (index, shared) in config.custom_exporters.iter().enumerate() {
        let taken = shared.lock().unwrap_or_else(PoisonError::into_inner).take();
        match taken {
            Some(exporter) => {
                exporters.push((Box::new(move || Ok(exporter)), settings(format!("custom exporter {}", index + 1))));
            }
            None => messages::warn(&format!("custom exporter {} was already used by an earlier init", index + 1)),
        }
    }
    exporters
        .into_iter()
        .filter_map(|(make, settings)| {
            let name = settings.name.clone();
            BatchProcessor::spawn(make, settings, resource)
                .map_err(|e| messages::warn(&format!("no export to {name}: {e}")))
                .ok()
        })
        .collect()
}

/// Builds an exporter on its export thread's runtime.
type MakeExporter = Box<dyn FnOnce() -> Result<Box<dyn DynExporter>, String>>;

pub(crate) fn resource(config: &Config) -> Resource {
    let service = config.service_name.value.clone().unwrap_or_else(|| {
        let exe = std::env::current_exe().ok().and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
        exe.map_or_else(|| "unknown_service".to_string(), |exe| format!("unknown_service:{exe}"))
    });
    Resource::builder_empty()
        .with_detector(Box::new(TelemetryResourceDetector))
        .with_attributes(config.resource_attributes.value.iter().map(|(k, v)| KeyValue::new(k.clone(), v.clone())))
        .with_service_name(service)
        .build()
}

fn sdk_sampler(sampler: Sampler) -> opentelemetry_sdk::trace::Sampler {
    use opentelemetry_sdk::trace::Sampler as Sdk;
    match sampler {
        Sampler::AlwaysOn => Sdk::AlwaysOn,
        Sampler::AlwaysOff => Sdk::AlwaysOff,
        Sampler::TraceIdRatio(ratio) => Sdk::TraceIdRatioBased(ratio),
        Sampler::ParentBasedAlwaysOn => Sdk::ParentBased(Box::new(Sdk::AlwaysOn)),
        Sampler::ParentBasedAlwaysOff => Sdk::ParentBased(Box::new(Sdk::AlwaysOff)),
        Sampler::ParentBasedTraceIdRatio(ratio) => Sdk::ParentBased(Box::new(Sdk::TraceIdRatioBased(ratio))),
    }
}

/// Span counts so far, over every exporter.
pub fn stats() -> ExportStats {
    let installed = INSTALLED.lock().unwrap_or_else(PoisonError::into_inner);
    let mut total = ExportStats::default();
    for processor in installed.iter().flat_map(|i| &i.processors) {
        total.add(processor.stats());
    }
    total
}

/// Exports everything buffered, waiting at most `budget` (never the SDK's
/// fixed 5 s). True when every exporter finished in time.
pub fn flush(budget: Duration) -> bool {
    let deadline = Instant::now() + budget;
    collect_finished();
    let processors = {
        let installed = INSTALLED.lock().unwrap_or_else(PoisonError::into_inner);
        installed.iter().flat_map(|i| i.processors.clone()).collect::<Vec<_>>()
    };
    processors.iter().all(|p| p.flush_until(deadline).is_ok())
}

/// Flushes and shuts the provider down within `budget`, even when the
/// collector hangs or cannot be reached; prints one line with what was
/// exported and what was dropped. Safe from inside any tokio runtime.
pub fn shutdown(budget: Duration) -> ShutdownReport {
    let started = Instant::now();
    let deadline = started + budget;
    let Some(installed) = INSTALLED.lock().unwrap_or_else(PoisonError::into_inner).take() else {
        crate::metrics::instruments::shutdown();
        return ShutdownReport {
            stats: ExportStats::default(),
            exporters: Vec::new(),
            elapsed: Duration::ZERO,
            complete: true,
            lagging: Vec::new(),
            away: Vec::new(),
        };
    };
    remove_tracer();
    // What traced's own core recorded until now; spans ending later belong
    // to no provider.
    collect_finished();
    finished_sink::stop();
    // All exporters drain at once against one deadline.
    let waits: Vec<_> = installed.processors.iter().map(|p| p.begin_shutdown(deadline)).collect();
    // The last metrics push goes while the spans drain, against the same
    // deadline.
    crate::metrics::otlp_push::stop(deadline);
    crate::metrics::instruments::shutdown();
    let mut lagging = Vec::new();
    let mut away = Vec::new();
    let mut stats = ExportStats::default();
    let mut exporters = Vec::new();
    for (processor, wait) in installed.processors.iter().zip(waits) {
        if processor.wait_shutdown(wait, deadline).is_err() || processor.was_cut_short() {
            lagging.push(processor.name().to_string());
        }
        if processor.was_away_at_shutdown() {
            away.push(processor.name().to_string());
        }
        stats.add(processor.stats());
        exporters.push((processor.name().to_string(), processor.stats()));
    }
    // Every processor is already shut down, so this and the provider's drop
    // return at once instead of the SDK's 5 s.
    let _ = installed.provider.shutdown_with_timeout(Duration::ZERO);
    opentelemetry::global::set_tracer_provider(opentelemetry::trace::noop::NoopTracerProvider::new());
    drop(installed);
    let complete = lagging.is_empty() && away.is_empty();
    let report = ShutdownReport { stats, exporters, elapsed: started.elapsed(), complete, lagging, away };
    messages::info(&report.to_string());
    report
}

/// What the final flush achieved.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Span counts over the provider's life, all exporters added up.
    pub stats: ExportStats,
    /// Span counts per exporter.
    pub exporters: Vec<(String, ExportStats)>,
    /// How long the shutdown took.
    pub elapsed: Duration,
    /// False when the budget ran out before every exporter was done, or a
    /// collector was away.
    pub complete: bool,
    /// The exporters the budget ran out on.
    pub lagging: Vec<String>,
    /// The exporters whose collector was away at shutdown: what waited for
    /// it is counted unsent.
    pub away: Vec<String>,
}

impl fmt::Display for ShutdownReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "shutdown in {} ms: ", self.elapsed.as_millis())?;
        match self.exporters.as_slice() {
            [] => f.write_str("no exporter")?,
            [(_, stats)] => write_stats(f, stats)?,
            several => {
                for (index, (name, stats)) in several.iter().enumerate() {
                    let separator = if index == 0 { "" } else { "; " };
                    write!(f, "{separator}{name}: ")?;
                    write_stats(f, stats)?;
                }
            }
        }
        if !self.lagging.is_empty() {
            write!(f, "; flush budget ran out waiting for {}", self.lagging.join(", "))?;
        }
        if !self.away.is_empty() {
            write!(f, "; the collector was away: {}", self.away.join(", "))?;
        }
        Ok(())
    }
}

fn write_stats(f: &mut fmt::Formatter<'_>, s: &ExportStats) -> fmt::Result {
    write!(
        f,
        "{} spans exported, {} dropped (queue full {}, export failed {}, unsent at shutdown {}",
        s.exported,
        s.dropped(),
        s.dropped_queue_full,
        s.dropped_export_failed,
        s.dropped_at_shutdown
    )?;
    if s.dropped_rejected > 0 {
        write!(f, ", rejected by the receiver {}", s.dropped_rejected)?;
    }
    if s.dropped_held > 0 {
        write!(f, ", held traces over their memory bound {}", s.dropped_held)?;
    }
    f.write_str(")")
}

/// Keeps tracing installed; flushes and shuts down within the flush budget
/// when dropped or when [`TracingGuard::shutdown`] is called.
#[must_use = "dropping the guard shuts tracing down at once"]
#[derive(Debug)]
pub struct TracingGuard {
    armed: bool,
    budget: Duration,
}

impl TracingGuard {
    /// Shuts down now within the flush budget and reports what happened.
    pub fn shutdown(mut self) -> ShutdownReport {
        self.armed = false;
        shutdown(self.budget)
    }

    /// The flush budget this guard shuts down within.
    pub fn flush_budget(&self) -> Duration {
        self.budget
    }
}

impl Drop for TracingGuard {
    fn drop(&mut self) {
        if std::mem::take(&mut self.armed) {
            shutdown(self.budget);
        }
    }
}
