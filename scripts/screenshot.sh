#!/usr/bin/env bash
# Retakes docs/phoenix-trace.png, the README's picture of one diffusion
# request's trace in Phoenix's own web UI: starts Phoenix, serves
# examples/diffusion, sends one prompt, and has headless Chromium (Debian's
# `chromium` package; installed here when missing and run as root) open the
# trace's page. SCREENSHOT=path writes elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null; then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        apt-get install -y -q chromium >/dev/null
    else
        echo "screenshot.sh: needs Chromium: sudo apt-get install chromium" >&2
        exit 1
    fi
fi
if [[ -z "${TRACED_PHOENIX_URL:-}" ]]; then
    exec scripts/receivers.sh with "$0" "$@"
fi
# shellcheck source=scripts/libtorch-env.sh
. scripts/libtorch-env.sh
picture="${SCREENSHOT:-docs/phoenix-trace.png}"
python="$TRACED_RECEIVERS_PYTHON"
profile=$(mktemp -d)
app_pid=""
cleanup() {
    if [[ -n "$app_pid" ]]; then
        kill "$app_pid" 2>/dev/null || true
    fi
    rm -rf "$profile"
}
trap cleanup EXIT

cargo build --quiet -p text-to-image
port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
HOST=127.0.0.1 PORT=$port OTEL_EXPORTER_OTLP_ENDPOINT=$TRACED_PHOENIX_URL TEXT_TO_IMAGE_OUTPUT="$profile/images" \
    target/debug/text-to-image &
app_pid=$!
# One request; its trace's page in the UI: the project's id is Phoenix's
# GraphQL id for it, read back like the spans.
url=$("$python" - "$port" "$TRACED_PHOENIX_URL" <<'PY'
import json, sys, time, urllib.request
port, phoenix = sys.argv[1], sys.argv[2]
base = f"http://127.0.0.1:{port}"
for _ in range(300):
    try:
        urllib.request.urlopen(f"{base}/health", timeout=1)
        break
    except OSError:
        time.sleep(0.1)
body = json.dumps({"prompt": "a red circle on white", "num_inference_steps": 20, "guidance_scale": 1.5, "seed": 1}).encode()
request = urllib.request.Request(base + "/", data=body, method="POST", headers={"content-type": "application/json"})
trace_id = json.load(urllib.request.urlopen(request, timeout=120))["trace_id"]
for _ in range(80):
    spans = json.load(urllib.request.urlopen(f"{phoenix}/v1/projects/default/spans?trace_id={trace_id}"))["data"]
    if len(spans) >= 5:
        break
    time.sleep(0.25)
else:
    sys.exit(f"the trace {trace_id} did not reach Phoenix")
project = next(p["id"] for p in json.load(urllib.request.urlopen(f"{phoenix}/v1/projects"))["data"] if p["name"] == "default")
print(f"{phoenix}/projects/{project}/traces/{trace_id}")
PY
)
echo "trace page: $url"
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$profile/chromium" \
    --window-size=1600,1000 --virtual-time-budget=20000 --screenshot="$picture" "$url" 2>"$profile/chromium.log" \
    || { cat "$profile/chromium.log" >&2; exit 1; }
echo "wrote $picture"
