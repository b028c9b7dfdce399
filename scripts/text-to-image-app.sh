# Sourced by demo.sh and screenshot.sh: runs the calling script under the
# receivers (Phoenix, rotel), with libtorch's environment, a scratch
# directory ($run_dir) removed at exit, and start_text_to_image to serve the
# diffusion app on a free loopback port until then.
# shellcheck shell=bash

if [[ -z "${TRACED_PHOENIX_URL:-}" ]]; then
    exec scripts/receivers.sh with "$0" "$@"
fi
# shellcheck source=scripts/libtorch-env.sh
. scripts/libtorch-env.sh
python="$TRACED_RECEIVERS_PYTHON"
run_dir=$(mktemp -d)
app_pid=""
prometheus_pid=""
cleanup() {
    if [[ -n "$app_pid" ]]; then
        kill "$app_pid" 2>/dev/null || true
    fi
    if [[ -n "$prometheus_pid" ]]; then
        kill "$prometheus_pid" 2>/dev/null || true
    fi
    rm -rf "$run_dir"
}
trap cleanup EXIT

# start_text_to_image [VAR=VALUE ...]: serves target/debug/text-to-image
# (built by the caller), exporting to Phoenix, with these variables besides;
# sets app_pid and app_url once it answers /health.
start_text_to_image() {
    local port
    port=$(free_port)
    env HOST=127.0.0.1 PORT="$port" OTEL_EXPORTER_OTLP_ENDPOINT="$TRACED_PHOENIX_URL" "$@" target/debug/text-to-image &
    app_pid=$!
    app_url="http://127.0.0.1:$port"
    wait_ready "$app_url/health"
}

# free_port: a loopback port nothing listens on.
free_port() {
    "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_ready URL: until URL answers, 60 s at most.
wait_ready() {
    "$python" - "$1" <<'PY'
import sys, time, urllib.request
for _ in range(600):
    try:
        urllib.request.urlopen(sys.argv[1], timeout=1)
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit(f"{sys.argv[1]} did not answer within 60 s")
PY
}

# start_prometheus: Prometheus (TRACED_PROMETHEUS) scraping $app_url's
# /metrics every second, with exemplar storage; sets prometheus_pid and
# prometheus_url once it is ready.
start_prometheus() {
    local port
    port=$(free_port)
    mkdir -p "$run_dir/prometheus"
    cat >"$run_dir/prometheus/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: text-to-image
    static_configs:
      - targets: ["${app_url#http://}"]
YAML
    "$TRACED_PROMETHEUS" --config.file="$run_dir/prometheus/prometheus.yml" \
        --storage.tsdb.path="$run_dir/prometheus/data" --web.listen-address="127.0.0.1:$port" \
        --enable-feature=exemplar-storage >"$run_dir/prometheus/log" 2>&1 &
    prometheus_pid=$!
    prometheus_url="http://127.0.0.1:$port"
    wait_ready "$prometheus_url/-/ready"
}
