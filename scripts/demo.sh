#!/usr/bin/env bash
# The demo: starts Phoenix, checks the setup with traced-doctor, runs a small
# traced app that prints each trace as a tree and exports it to Phoenix, then
# reads the traces back from Phoenix's REST API. DEMO_KEEP=1 keeps Phoenix
# running afterwards so its web UI can be browsed (Ctrl-C stops it).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -z "${TRACED_PHOENIX_URL:-}" ]]; then
    exec scripts/receivers.sh with "$0" "$@"
fi
run_dir=$(mktemp -d)
trap 'rm -rf "$run_dir"' EXIT

cargo build --quiet -p traced --bins --examples

echo
echo "== traced-doctor: configuration and a test trace"
OTEL_EXPORTER_OTLP_ENDPOINT=$TRACED_PHOENIX_URL OTEL_SERVICE_NAME=text-to-image target/debug/traced-doctor

echo
echo "== a traced app: each trace printed as a tree (stderr) and exported to Phoenix"
OTEL_EXPORTER_OTLP_ENDPOINT=$TRACED_PHOENIX_URL OTEL_TRACES_EXPORTER=otlp,console \
    target/debug/examples/quickstart | tee "$run_dir/requests"

echo
echo "== the same traces, read back from Phoenix ($TRACED_PHOENIX_URL)"
grep -o 'trace [0-9a-f]\{32\}' "$run_dir/requests" | cut -d' ' -f2 | while read -r trace_id; do
    "$TRACED_RECEIVERS_PYTHON" - "$TRACED_PHOENIX_URL" "$trace_id" <<'PY'
import json, sys, time, urllib.request
base, trace_id = sys.argv[1], sys.argv[2]
for _ in range(40):
    url = f"{base}/v1/projects/default/spans?trace_id={trace_id}"
    spans = json.load(urllib.request.urlopen(url))["data"]
    if spans:
        break
    time.sleep(0.25)
names = ", ".join(f"{s['name']} ({s['status_code'].lower()})" for s in spans)
print(f"trace {trace_id}: {len(spans)} spans: {names}")
PY
done

if [[ "${DEMO_KEEP:-}" == 1 ]]; then
    echo
    echo "Phoenix UI: $TRACED_PHOENIX_URL  (Ctrl-C to stop)"
    while true; do sleep 3600; done
fi
