//! The environment → `Config`: every variable, bad values, precedence, redaction.

use std::time::Duration;

use traced::{Backend, Config, ExporterKind, Protocol, Sampler, Source};

fn config(vars: &[(&str, &str)]) -> Config {
    from(Config::default(), vars)
}

fn from(base: Config, vars: &[(&str, &str)]) -> Config {
    let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    base.with_env_from(move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
}

fn warned(config: &Config, variable: &str) -> String {
    let found: Vec<_> = config.get_warnings().iter().filter(|w| w.variable == variable).collect();
    assert_eq!(found.len(), 1, "expected one warning for {variable}, got {:?}", config.get_warnings());
    found[0].to_string()
}

#[test]
fn defaults_match_the_platform_defaults() {
    let c = config(&[]);
    assert!(c.get_enabled().value);
    assert_eq!(c.get_sampler().value, Sampler::ParentBasedTraceIdRatio(1.0));
    assert_eq!(c.get_exporters().value, [ExporterKind::Console]);
    assert_eq!(c.get_batch().max_queue_size.value, None, "bounded in bytes unless set");
    assert_eq!(c.get_span_buffer_bytes().value, 64 << 20);
    assert!(!c.get_keep().any());
    assert_eq!(c.get_batch().max_export_batch_size.value, 512);
    assert_eq!(c.get_batch().schedule_delay.value, Duration::from_millis(5000));
    assert_eq!(c.get_batch().export_timeout.value, Duration::from_millis(30_000));
    assert_eq!(c.get_grace_period().value, Duration::from_secs(5));
    assert_eq!(c.get_flush_budget().value, Duration::from_secs(4));
    assert_eq!(c.get_otlp().protocol.value, Protocol::HttpProtobuf);
    assert_eq!(c.get_attribute_value_length_limit().value, None);
    assert_eq!(c.get_sampler().source, Source::Default);
    assert!(c.get_warnings().is_empty());
}

#[test]
fn enable_tracing_false_turns_tracing_off() {
    for value in ["false", "FALSE", "0", "off"] {
        let c = config(&[("ENABLE_TRACING", value)]);
        assert!(!c.get_enabled().value, "{value}");
        assert_eq!(c.get_enabled().source, Source::Environment("ENABLE_TRACING"));
    }
    assert!(config(&[("ENABLE_TRACING", "true")]).get_enabled().value);
}

#[test]
fn a_bad_enable_tracing_warns_and_keeps_tracing_on() {
    let c = config(&[("ENABLE_TRACING", "maybe")]);
    assert!(c.get_enabled().value);
    let warning = warned(&c, "ENABLE_TRACING");
    assert!(warning.contains("\"maybe\"") && warning.contains("tracing stays on"), "{warning}");
}

#[test]
fn otel_sdk_disabled_is_the_standard_off_switch() {
    let c = config(&[("OTEL_SDK_DISABLED", "TRUE")]);
    assert!(!c.get_enabled().value);
    assert_eq!(c.get_enabled().source, Source::Environment("OTEL_SDK_DISABLED"));
    assert!(config(&[("OTEL_SDK_DISABLED", "false")]).get_enabled().value);
    // It beats ENABLE_TRACING=true.
    assert!(!config(&[("ENABLE_TRACING", "true"), ("OTEL_SDK_DISABLED", "true")]).get_enabled().value);
    let c = config(&[("OTEL_SDK_DISABLED", "yes")]);
    assert!(c.get_enabled().value);
    assert!(warned(&c, "OTEL_SDK_DISABLED").contains("using false"));
}

#[test]
fn sample_rate_sets_a_parent_based_ratio() {
    let c = config(&[("OTEL_SAMPLE_RATE", "0.1")]);
    assert_eq!(c.get_sampler().value, Sampler::ParentBasedTraceIdRatio(0.1));
    assert_eq!(c.get_sampler().source, Source::Environment("OTEL_SAMPLE_RATE"));
}

#[test]
fn bad_sample_rates_warn_and_keep_the_default() {
    for bad in ["abc", "1.5", "-0.1", "NaN"] {
        let c = config(&[("OTEL_SAMPLE_RATE", bad)]);
        assert_eq!(c.get_sampler().value, Sampler::ParentBasedTraceIdRatio(1.0), "{bad}");
        let warning = warned(&c, "OTEL_SAMPLE_RATE");
        assert!(warning.contains(bad) && warning.contains("using 1"), "{warning}");
    }
}

#[test]
fn the_standard_sampler_variables_are_honoured() {
    assert_eq!(config(&[("OTEL_TRACES_SAMPLER", "always_off")]).get_sampler().value, Sampler::AlwaysOff);
    assert_eq!(config(&[("OTEL_TRACES_SAMPLER", "always_on")]).get_sampler().value, Sampler::AlwaysOn);
    assert_eq!(
        config(&[("OTEL_TRACES_SAMPLER", "parentbased_always_off")]).get_sampler().value,
        Sampler::ParentBasedAlwaysOff
    );
    assert_eq!(
        config(&[("OTEL_TRACES_SAMPLER", "traceidratio"), ("OTEL_TRACES_SAMPLER_ARG", "0.3")]).get_sampler().value,
        Sampler::TraceIdRatio(0.3)
    );
    // Without an argument the ratio comes from OTEL_SAMPLE_RATE.
    assert_eq!(
        config(&[("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"), ("OTEL_SAMPLE_RATE", "0.2")]).get_sampler().value,
        Sampler::ParentBasedTraceIdRatio(0.2)
    );
    // The standard argument beats the platform's rate.
    assert_eq!(
        config(&[
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.7"),
            ("OTEL_SAMPLE_RATE", "0.2")
        ])
        .get_sampler()
        .value,
        Sampler::ParentBasedTraceIdRatio(0.7)
    );
}

#[test]
fn sampler_mistakes_are_reported() {
    let c = config(&[("OTEL_TRACES_SAMPLER", "jaeger_remote")]);
    assert_eq!(c.get_sampler().value, Sampler::ParentBasedTraceIdRatio(1.0));
    assert!(warned(&c, "OTEL_TRACES_SAMPLER").contains("jaeger_remote"));

    let c = config(&[("OTEL_TRACES_SAMPLER", "traceidratio"), ("OTEL_TRACES_SAMPLER_ARG", "two")]);
    assert_eq!(c.get_sampler().value, Sampler::TraceIdRatio(1.0));
    warned(&c, "OTEL_TRACES_SAMPLER_ARG");

    let c = config(&[("OTEL_TRACES_SAMPLER", "always_on"), ("OTEL_SAMPLE_RATE", "0.5")]);
    assert_eq!(c.get_sampler().value, Sampler::AlwaysOn);
    assert!(warned(&c, "OTEL_SAMPLE_RATE").contains("ignored"));
}

#[test]
fn the_exporter_follows_the_endpoint_unless_chosen() {
    assert_eq!(config(&[]).get_exporters().value, [ExporterKind::Console]);
    let c = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")]);
    assert_eq!(c.get_exporters().value, [ExporterKind::Otlp]);
    assert_eq!(config(&[("OTEL_TRACES_EXPORTER", "none")]).get_exporters().value, [ExporterKind::None]);
    assert_eq!(
        config(&[("OTEL_TRACES_EXPORTER", "otlp, console")]).get_exporters().value,
        [ExporterKind::Otlp, ExporterKind::Console]
    );
    // otlp with no endpoint goes to the spec's default.
    let c = config(&[("OTEL_TRACES_EXPORTER", "otlp")]);
    assert_eq!(c.otlp_traces_url().as_deref(), Some("http://localhost:4318/v1/traces"));
    let c = config(&[("OTEL_TRACES_EXPORTER", "otlp"), ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]);
    assert_eq!(c.otlp_traces_url().as_deref(), Some("http://localhost:4317"));
}

#[test]
fn an_unknown_exporter_warns_and_falls_back() {
    let c = config(&[("OTEL_TRACES_EXPORTER", "zipkin")]);
    assert_eq!(c.get_exporters().value, [ExporterKind::Console]);
    assert!(warned(&c, "OTEL_TRACES_EXPORTER").contains("unknown exporter zipkin; using console"));
    let c = config(&[("OTEL_TRACES_EXPORTER", "zipkin,console")]);
    assert_eq!(c.get_exporters().value, [ExporterKind::Console]);
    warned(&c, "OTEL_TRACES_EXPORTER");
}

#[test]
fn base_endpoints_get_the_traces_path_and_signal_endpoints_are_used_as_is() {
    let c = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector.example:4318/")]);
    assert_eq!(c.otlp_traces_url().as_deref(), Some("https://collector.example:4318/v1/traces"));
    let c = config(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://ignored:4318"),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://collector:9999/custom/path"),
    ]);
    assert_eq!(c.otlp_traces_url().as_deref(), Some("http://collector:9999/custom/path"));
    assert_eq!(c.get_otlp().endpoint.source, Source::Environment("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"));
    let c =
        config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"), ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]);
    assert_eq!(c.otlp_traces_url().as_deref(), Some("http://collector:4317"));
}

#[test]
fn malformed_endpoints_are_ignored_with_a_warning() {
    for bad in ["not a url", "ftp://collector:21", "localhost:4318"] {
        let c = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", bad)]);
        assert_eq!(c.get_exporters().value, [ExporterKind::Console], "{bad}");
        assert!(warned(&c, "OTEL_EXPORTER_OTLP_ENDPOINT").contains("variable ignored"));
    }
    // A bad signal endpoint falls back to a good base one.
    let c = config(&[
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "::"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
    ]);
    assert_eq!(c.otlp_traces_url().as_deref(), Some("http://collector:4318/v1/traces"));
    warned(&c, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
}

#[test]
fn headers_are_parsed_percent_decoded_and_never_shown() {
    let c = config(&[("OTEL_EXPORTER_OTLP_HEADERS", "x-honeycomb-team=s3cr3t%2Fkey, x-other = two")]);
    let headers: Vec<_> = c.get_otlp().headers.value.iter().collect();
    assert_eq!(headers, [("x-honeycomb-team", "s3cr3t/key"), ("x-other", "two")]);
    let debug = format!("{c:?}");
    assert!(!debug.contains("s3cr3t") && debug.contains("x-honeycomb-team=***"), "{debug}");
    let described = format!("{:?}", c.describe());
    assert!(!described.contains("s3cr3t"), "{described}");
}

#[test]
fn bad_header_entries_are_skipped_without_printing_their_value() {
    let c = config(&[("OTEL_EXPORTER_OTLP_HEADERS", "good=v1,bad name=SECRETVALUE,novalue")]);
    assert_eq!(c.get_otlp().headers.value.iter().count(), 1);
    let all: Vec<String> = c.get_warnings().iter().map(ToString::to_string).collect();
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(all.iter().all(|w| !w.contains("SECRETVALUE")), "{all:?}");
    assert!(all[0].contains("bad name=***") && all[0].contains("entry 2"), "{all:?}");
}

#[test]
fn signal_specific_variables_win() {
    let c = config(&[
        ("OTEL_EXPORTER_OTLP_HEADERS", "a=generic"),
        ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "a=traces"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "1000"),
        ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "2500"),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "none"),
        ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "gzip"),
    ]);
    assert_eq!(c.get_otlp().headers.value.iter().collect::<Vec<_>>(), [("a", "traces")]);
    assert_eq!(c.get_otlp().protocol.value, Protocol::HttpJson);
    assert_eq!(c.get_otlp().timeout.value, Duration::from_millis(2500));
    assert!(c.get_otlp().gzip.value);
}

#[test]
fn bad_otlp_values_warn_and_fall_back() {
    let c = config(&[
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "thrift"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "10s"),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "brotli"),
    ]);
    assert_eq!(c.get_otlp().protocol.value, Protocol::HttpProtobuf);
    assert_eq!(c.get_otlp().timeout.value, Duration::from_secs(10));
    assert!(!c.get_otlp().gzip.value);
    assert!(warned(&c, "OTEL_EXPORTER_OTLP_PROTOCOL").contains("using http/protobuf"));
    assert!(warned(&c, "OTEL_EXPORTER_OTLP_TIMEOUT").contains("using 10000 ms"));
    assert!(warned(&c, "OTEL_EXPORTER_OTLP_COMPRESSION").contains("using none"));
}

#[test]
fn batch_tuning_is_read_and_checked() {
    let c = config(&[
        ("OTEL_BSP_MAX_QUEUE_SIZE", "100"),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "10"),
        ("OTEL_BSP_SCHEDULE_DELAY", "250"),
        ("OTEL_BSP_EXPORT_TIMEOUT", "2000"),
    ]);
    assert_eq!(c.get_batch().max_queue_size.value.map(std::num::NonZeroUsize::get), Some(100));
    assert_eq!(c.get_batch().max_export_batch_size.value, 10);
    assert_eq!(c.get_batch().schedule_delay.value, Duration::from_millis(250));
    assert_eq!(c.get_batch().export_timeout.value, Duration::from_millis(2000));

    let c = config(&[("OTEL_BSP_MAX_QUEUE_SIZE", "0"), ("OTEL_BSP_SCHEDULE_DELAY", "-5")]);
    assert_eq!(c.get_batch().max_queue_size.value, None);
    assert_eq!(c.get_batch().schedule_delay.value, Duration::from_millis(5000));
    assert!(warned(&c, "OTEL_BSP_MAX_QUEUE_SIZE").contains("using no limit"));
    warned(&c, "OTEL_BSP_SCHEDULE_DELAY");

    let c = config(&[("OTEL_BSP_MAX_QUEUE_SIZE", "100"), ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "500")]);
    assert_eq!(c.get_batch().max_export_batch_size.value, 100);
    assert!(warned(&c, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE").contains("using 100"));
}

#[test]
fn keep_rules_and_memory_bounds_are_read_and_checked() {
    let c = config(&[
        ("TRACED_KEEP_ERRORS", "true"),
        ("TRACED_KEEP_SLOWER_THAN_MS", "1500"),
        ("TRACED_HELD_TRACES_BYTES", "1000000"),
        ("TRACED_SPAN_BUFFER_BYTES", "2000000"),
    ]);
    assert!(c.get_keep().errors.value);
    assert_eq!(c.get_keep().slower_than.value, Some(Duration::from_millis(1500)));
    assert_eq!(c.get_keep().max_held_bytes.value, 1_000_000);
    assert_eq!(c.get_span_buffer_bytes().value, 2_000_000);
    assert_eq!(c.get_keep().errors.source, Source::Environment("TRACED_KEEP_ERRORS"));
    let rows = c.describe();
    assert!(rows.iter().any(|(name, value, _)| *name == "keep.slower_than" && value == "1500 ms"), "{rows:?}");

    let c = config(&[
        ("TRACED_KEEP_ERRORS", "yes please"),
        ("TRACED_KEEP_SLOWER_THAN_MS", "1.5s"),
        ("TRACED_SPAN_BUFFER_BYTES", "0"),
    ]);
    assert!(!c.get_keep().any());
    assert!(warned(&c, "TRACED_KEEP_ERRORS").contains("expected true or false"));
    assert!(warned(&c, "TRACED_KEEP_SLOWER_THAN_MS").contains("whole milliseconds"));
    assert!(warned(&c, "TRACED_SPAN_BUFFER_BYTES").contains("using 67108864"));

    let c = Config::default().keep_slower_than(Duration::from_secs(2)).with_env_from(|_| None);
    assert!(c.get_keep().any());
}

#[test]
fn resource_attributes_are_percent_decoded() {
    let c = config(&[("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=prod%20eu,team=ml%2Cvision, bad")]);
    assert_eq!(
        c.get_resource_attributes().value,
        [("deployment.environment".to_string(), "prod eu".to_string()), ("team".to_string(), "ml,vision".to_string())]
    );
    assert!(warned(&c, "OTEL_RESOURCE_ATTRIBUTES").contains("\"bad\""));
}

#[test]
fn otel_service_name_beats_service_name_in_resource_attributes() {
    let both = config(&[("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attrs"), ("OTEL_SERVICE_NAME", "from-var")]);
    assert_eq!(both.get_service_name().value.as_deref(), Some("from-var"));
    assert!(both.get_resource_attributes().value.iter().all(|(k, _)| k != "service.name"));
    let attrs_only = config(&[("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attrs")]);
    assert_eq!(attrs_only.get_service_name().value.as_deref(), Some("from-attrs"));
    assert_eq!(attrs_only.get_service_name().source, Source::Environment("OTEL_RESOURCE_ATTRIBUTES"));
}

#[test]
fn the_environment_overrides_code_and_code_overrides_defaults() {
    let code = Config::default().service_name("from-code").sample_rate(0.5).flush_budget(Duration::from_secs(2));
    let c = from(code.clone(), &[("OTEL_SERVICE_NAME", "from-env")]);
    assert_eq!(c.get_service_name().value.as_deref(), Some("from-env"));
    assert_eq!(c.get_sampler().value, Sampler::ParentBasedTraceIdRatio(0.5));
    assert_eq!(c.get_sampler().source, Source::Code);
    assert_eq!(c.get_flush_budget().value, Duration::from_secs(2));
    let c = from(code, &[("OTEL_SAMPLE_RATE", "0.05")]);
    assert_eq!(c.get_sampler().value, Sampler::ParentBasedTraceIdRatio(0.05));
    assert_eq!(c.get_service_name().source, Source::Code);
}

#[test]
fn exporters_chosen_in_code_survive_an_endpoint() {
    let code = Config::default().exporters([ExporterKind::Console]);
    let c = from(code, &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")]);
    assert_eq!(c.get_exporters().value, [ExporterKind::Console]);
}

#[test]
fn empty_values_count_as_unset() {
    let c = config(&[("OTEL_SAMPLE_RATE", ""), ("ENABLE_TRACING", "  "), ("OTEL_EXPORTER_OTLP_ENDPOINT", "")]);
    assert!(c.get_warnings().is_empty());
    assert!(c.get_enabled().value);
    assert_eq!(c.get_exporters().value, [ExporterKind::Console]);
}

#[test]
fn attribute_value_length_limit_is_read() {
    let c = config(&[("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "64")]);
    assert_eq!(c.get_attribute_value_length_limit().value, Some(64));
    let c = config(&[("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "64"), ("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "16")]);
    assert_eq!(c.get_attribute_value_length_limit().value, Some(16));
    let c = config(&[("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "lots")]);
    assert_eq!(c.get_attribute_value_length_limit().value, None);
    warned(&c, "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT");
}

#[test]
fn grace_period_and_flush_budget_are_read_and_kept_consistent() {
    let c = config(&[("TRACED_GRACE_PERIOD_MS", "8000"), ("TRACED_FLUSH_BUDGET_MS", "6000")]);
    assert_eq!(c.get_grace_period().value, Duration::from_secs(8));
    assert_eq!(c.get_flush_budget().value, Duration::from_secs(6));
    let c = config(&[("TRACED_FLUSH_BUDGET_MS", "9000")]);
    assert_eq!(c.get_flush_budget().value, Duration::from_secs(5));
    assert!(warned(&c, "TRACED_FLUSH_BUDGET_MS").contains("longer than the grace period; using 5000 ms"));
    let c = config(&[("TRACED_GRACE_PERIOD_MS", "five")]);
    assert_eq!(c.get_grace_period().value, Duration::from_secs(5));
    warned(&c, "TRACED_GRACE_PERIOD_MS");
}

fn preset(vars: &[(&str, &str)]) -> (Option<String>, Vec<(String, String)>) {
    let c = config(vars);
    let headers = c.get_otlp().headers.value.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    (c.otlp_traces_url(), headers)
}

#[test]
fn backend_presets_build_endpoint_and_auth_header() {
    let cases = [
        ("honeycomb", "https://api.honeycomb.io/v1/traces", "x-honeycomb-team"),
        ("honeycomb-eu", "https://api.eu1.honeycomb.io/v1/traces", "x-honeycomb-team"),
        ("datadog-us", "https://otlp.datadoghq.com/v1/traces", "dd-api-key"),
        ("datadog-eu", "https://otlp.datadoghq.eu/v1/traces", "dd-api-key"),
        ("newrelic-us", "https://otlp.nr-data.net:4318/v1/traces", "api-key"),
        ("newrelic-eu", "https://otlp.eu01.nr-data.net:4318/v1/traces", "api-key"),
    ];
    for (name, url, header) in cases {
        let (endpoint, headers) = preset(&[("TRACED_BACKEND", name), ("TRACED_BACKEND_KEY", "k3y")]);
        assert_eq!(endpoint.as_deref(), Some(url), "{name}");
        assert_eq!(headers, [(header.to_string(), "k3y".to_string())], "{name}");
    }
    let (endpoint, headers) = preset(&[
        ("TRACED_BACKEND", "grafana"),
        ("TRACED_BACKEND_KEY", "glc_token"),
        ("TRACED_GRAFANA_INSTANCE_ID", "123456"),
        ("TRACED_GRAFANA_ZONE", "prod-eu-west-2"),
    ]);
    assert_eq!(endpoint.as_deref(), Some("https://otlp-gateway-prod-eu-west-2.grafana.net/otlp/v1/traces"));
    // base64("123456:glc_token")
    assert_eq!(headers, [("Authorization".to_string(), "Basic MTIzNDU2OmdsY190b2tlbg==".to_string())]);
}

#[test]
fn a_preset_chooses_otlp_and_explicit_settings_win() {
    let c = config(&[
        ("TRACED_BACKEND", "honeycomb"),
        ("TRACED_BACKEND_KEY", "k3y"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "x-honeycomb-dataset=inference"),
    ]);
    assert_eq!(c.get_exporters().value, [ExporterKind::Otlp]);
    assert_eq!(c.otlp_traces_url().as_deref(), Some("http://127.0.0.1:4318/v1/traces"));
    let names: Vec<&str> = c.get_otlp().headers.value.iter().map(|(k, _)| k).collect();
    assert_eq!(names, ["x-honeycomb-team", "x-honeycomb-dataset"]);
    assert!(!format!("{c:?}").contains("k3y"));
}

#[test]
fn preset_mistakes_are_reported() {
    let c = config(&[("TRACED_BACKEND", "honeycomb")]);
    assert_eq!(c.get_exporters().value, [ExporterKind::Console]);
    assert!(warned(&c, "TRACED_BACKEND").contains("TRACED_BACKEND_KEY is not set"));
    let c = config(&[("TRACED_BACKEND", "splunk"), ("TRACED_BACKEND_KEY", "k3y")]);
    assert!(warned(&c, "TRACED_BACKEND").contains("unknown backend"));
    let c = config(&[("TRACED_BACKEND", "grafana"), ("TRACED_BACKEND_KEY", "k3y")]);
    assert!(warned(&c, "TRACED_BACKEND").contains("TRACED_GRAFANA_ZONE"));
}

#[test]
fn a_preset_from_code_is_overridden_by_the_environment() {
    let code = Config::default().backend(Backend::DatadogEu { api_key: "code-key".into() });
    let c = from(code.clone(), &[]);
    assert_eq!(c.otlp_traces_url().as_deref(), Some("https://otlp.datadoghq.eu/v1/traces"));
    let c = from(code, &[("OTEL_EXPORTER_OTLP_HEADERS", "dd-api-key=env-key")]);
    assert_eq!(c.get_otlp().headers.value.iter().collect::<Vec<_>>(), [("dd-api-key", "env-key")]);
}

#[test]
fn describe_names_each_source() {
    let c = from(
        Config::default().service_name("svc"),
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://user:pw@collector:4318"), ("OTEL_SAMPLE_RATE", "0.5")],
    );
    let rows = c.describe();
    let row = |name: &str| rows.iter().find(|r| r.0 == name).cloned().unwrap();
    assert_eq!(row("service.name").2, Source::Code);
    assert_eq!(row("sampler").2, Source::Environment("OTEL_SAMPLE_RATE"));
    assert_eq!(row("flush_budget").2, Source::Default);
    assert!(!row("otlp.endpoint").1.contains("pw"), "{:?}", row("otlp.endpoint"));
}

#[test]
fn the_request_limit_follows_the_protocol_unless_set() {
    assert_eq!(config(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]).otlp_request_limit(), 4 * 1024 * 1024);
    assert_eq!(config(&[]).otlp_request_limit(), 8 * 1024 * 1024);
    let set = config(&[("TRACED_OTLP_MAX_REQUEST_BYTES", "1048576"), ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]);
    assert_eq!(set.otlp_request_limit(), 1024 * 1024);
    let in_code = from(Config::default().otlp_max_request_bytes(65536), &[]);
    assert_eq!(in_code.otlp_request_limit(), 65536);
    let bad = config(&[("TRACED_OTLP_MAX_REQUEST_BYTES", "lots")]);
    assert_eq!(bad.otlp_request_limit(), 8 * 1024 * 1024);
    assert!(warned(&bad, "TRACED_OTLP_MAX_REQUEST_BYTES").contains("expected a positive integer; using 8388608"));
}

#[test]
fn a_client_certificate_needs_its_key_and_both_files() {
    let dir = std::env::temp_dir().join(format!("traced-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (certificate, key) = (dir.join("client.pem"), dir.join("client.key"));
    std::fs::write(&certificate, "certificate").unwrap();
    std::fs::write(&key, "key").unwrap();
    let (certificate, key) = (certificate.to_str().unwrap(), key.to_str().unwrap());

    let both =
        config(&[("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", certificate), ("OTEL_EXPORTER_OTLP_CLIENT_KEY", key)]);
    assert!(both.get_warnings().is_empty(), "{:?}", both.get_warnings());
    let (shown_certificate, shown_key) = both.get_otlp().client_identity.value.clone().expect("an identity");
    assert_eq!((shown_certificate.to_str(), shown_key.to_str()), (Some(certificate), Some(key)));
    let traces_specific = config(&[
        ("OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE", certificate),
        ("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "/nowhere.pem"),
        ("OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", key),
    ]);
    assert!(traces_specific.get_otlp().client_identity.value.is_some());
    // The metrics read the generic certificate, which has no key.
    assert!(warned(&traces_specific, "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE").contains("no client certificate"));
    assert_eq!(traces_specific.get_otlp_for_metrics().client_identity.value, None);

    let alone = config(&[("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", certificate)]);
    assert_eq!(alone.get_otlp().client_identity.value, None);
    assert!(
        warned(&alone, "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE").contains("OTEL_EXPORTER_OTLP_CLIENT_KEY is not set")
    );
    let missing = config(&[
        ("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", certificate),
        ("OTEL_EXPORTER_OTLP_CLIENT_KEY", "/nowhere.key"),
    ]);
    assert_eq!(missing.get_otlp().client_identity.value, None);
    assert!(warned(&missing, "OTEL_EXPORTER_OTLP_CLIENT_KEY").contains("no such file"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_metrics_exporter_variables_are_read_and_checked() {
    let c = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")]);
    assert!(c.get_metrics().value && c.get_otlp_metrics().value, "both by default");
    assert_eq!(c.get_metric_export_interval().value, Duration::from_secs(60));
    assert_eq!(c.get_metric_temporality().value, opentelemetry_sdk::metrics::Temporality::Cumulative);

    let c =
        config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"), ("OTEL_METRICS_EXPORTER", "prometheus")]);
    assert!(c.get_metrics().value && !c.get_otlp_metrics().value);
    assert_eq!(c.otlp_metrics_url(), None, "served, not pushed");
    let c = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"), ("OTEL_METRICS_EXPORTER", "none")]);
    assert!(!c.get_metrics().value && !c.get_otlp_metrics().value);
    assert_eq!(c.otlp_metrics_url(), None);
    let c = config(&[("OTEL_METRICS_EXPORTER", "otlp,statsd")]);
    assert!(warned(&c, "OTEL_METRICS_EXPORTER").contains("expected otlp, prometheus or none; metrics stay on"));
    assert!(c.get_metrics().value);

    let c = config(&[
        ("OTEL_METRIC_EXPORT_INTERVAL", "250"),
        ("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "Delta"),
    ]);
    assert_eq!(c.get_metric_export_interval().value, Duration::from_millis(250));
    assert_eq!(c.get_metric_temporality().value, opentelemetry_sdk::metrics::Temporality::Delta);
    let c = config(&[
        ("OTEL_METRIC_EXPORT_INTERVAL", "0"),
        ("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "sometimes"),
    ]);
    assert!(warned(&c, "OTEL_METRIC_EXPORT_INTERVAL").contains("must be positive"));
    assert!(warned(&c, "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE").contains("using cumulative"));
    assert_eq!(c.get_metric_export_interval().value, Duration::from_secs(60));
}

#[test]
fn metrics_read_their_own_otlp_variables_and_the_generic_ones_not_the_traces() {
    let c = config(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "a=generic"),
        ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "a=traces"),
        ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "2500"),
        ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/json"),
        ("OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "gzip"),
        ("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "700"),
    ]);
    let metrics = &c.get_otlp_for_metrics();
    assert_eq!(metrics.headers.value.iter().collect::<Vec<_>>(), [("a", "generic")]);
    assert_eq!(metrics.headers.source, Source::Environment("OTEL_EXPORTER_OTLP_HEADERS"));
    assert_eq!(metrics.protocol.value, Protocol::HttpJson);
    assert!(metrics.gzip.value);
    assert_eq!(metrics.timeout.value, Duration::from_millis(700));
    assert_eq!(c.get_otlp().protocol.value, Protocol::HttpProtobuf, "the traces keep theirs");
    assert_eq!(c.get_otlp().timeout.value, Duration::from_millis(2500));
    assert!(!c.get_otlp().gzip.value);
    assert_eq!(c.otlp_metrics_url().as_deref(), Some("http://collector:4318/v1/metrics"));

    let c = config(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "a=generic"),
        ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "b=metrics"),
    ]);
    let headers: Vec<_> = c.get_otlp_for_metrics().headers.value.iter().map(|(k, v)| format!("{k}={v}")).collect();
    assert_eq!(headers, ["b=metrics"], "the signal's variable replaces the generic one");

    let with_code = from(Config::default().otlp_header("x-api-key", "k").otlp_timeout(Duration::from_secs(3)), &[]);
    assert_eq!(with_code.get_otlp_for_metrics().headers.value.iter().count(), 1, "code settings apply to both");
    assert_eq!(with_code.get_otlp_for_metrics().timeout.value, Duration::from_secs(3));
    let described = format!("{:?}", config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")]).describe());
    assert!(described.contains("metrics.protocol") && described.contains("metrics.timeout"), "{described}");
}

#[test]
fn the_metrics_url_follows_the_endpoint_rules() {
    let url = |vars: &[(&str, &str)]| config(vars).otlp_metrics_url();
    assert_eq!(url(&[]), None, "no OTLP exporter: nothing pushed");
    assert_eq!(
        url(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")]).as_deref(),
        Some("http://collector:4318/v1/metrics")
    );
    assert_eq!(
        url(&[("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://metrics:9090/otlp/v1/metrics")]).as_deref(),
        Some("http://metrics:9090/otlp/v1/metrics"),
        "the metrics' own URL, as it is, even with traces to the console"
    );
    assert_eq!(
        url(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://collector:4318/v1/traces")]).as_deref(),
        Some("http://collector:4318/v1/metrics"),
        "beside a traces URL set for the traces alone"
    );
    assert_eq!(
        url(&[
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://collector:4318/v1/traces"),
            ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "grpc"),
        ]),
        None,
        "a traces URL of another protocol says nothing of where gRPC metrics go"
    );
    assert_eq!(
        url(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://traces:4318/v1/traces"),
        ])
        .as_deref(),
        Some("http://collector:4318/v1/metrics"),
        "the generic endpoint, as the specification says"
    );
    assert_eq!(
        url(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"), ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")])
            .as_deref(),
        Some("http://collector:4317")
    );
    assert_eq!(
        url(&[("OTEL_TRACES_EXPORTER", "otlp"), ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "grpc")]).as_deref(),
        Some("http://localhost:4317"),
        "the default endpoint of the metrics' protocol"
    );
    assert_eq!(
        url(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"), ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")])
            .as_deref(),
        Some("http://collector:4318/v1/metrics"),
        "pushed over http/json too"
    );
}

#[test]
fn a_bad_generic_value_read_for_both_signals_is_reported_once() {
    let c = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"), ("OTEL_EXPORTER_OTLP_TIMEOUT", "10s")]);
    warned(&c, "OTEL_EXPORTER_OTLP_TIMEOUT");
    let c = config(&[("OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "brotli")]);
    assert!(warned(&c, "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION").contains("expected gzip or none"));
}

/// The `pub` fields of `struct NAME` in `source`, as its definition lists them.
fn public_fields(source: &str, name: &str) -> Vec<String> {
    let start = source.find(&format!("pub struct {name} {{")).unwrap_or_else(|| panic!("no struct {name}"));
    let body = &source[start..];
    let body = &body[..body.find("\n}").expect("the struct's end")];
    body.lines()
        .filter_map(|line| line.trim().strip_prefix("pub ")?.split_once(':').map(|(field, _)| field.trim().to_string()))
        .filter(|field| !field.starts_with("struct"))
        .collect()
}

/// What `Config`'s readers (`get_NAME`) read, in the order they are defined.
fn config_readers(source: &str) -> Vec<String> {
    source
        .split("pub fn get_")
        .skip(1)
        .filter_map(|rest| rest.split_once("(&self)").map(|(name, _)| name.to_string()))
        .collect()
}

#[test]
fn debug_shows_every_setting_and_no_secret() {
    let c = Config::default()
        .otlp_endpoint("https://user:hunter2@collector.example:4318?api_key=hunter3")
        .otlp_header("x-api-key", "hunter4")
        .with_env_from(|_| None);
    let shown = format!("{c:?}");
    for secret in ["hunter2", "hunter3", "hunter4"] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    let config_source = include_str!("../src/export/config/readers.rs");
    let otlp_source = include_str!("../src/export/config/otlp_config.rs");
    for (name, fields) in
        [("Config", config_readers(config_source)), ("OtlpConfig", public_fields(otlp_source, "OtlpConfig"))]
    {
        assert!(fields.len() > 5, "{name}: {fields:?}");
        for field in fields {
            assert!(shown.contains(&format!("{field}:")), "{name}.{field} is missing from Debug: {shown}");
        }
    }
}
