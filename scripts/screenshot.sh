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
# shellcheck source=scripts/text-to-image-app.sh
. scripts/text-to-image-app.sh
picture="${SCREENSHOT:-docs/phoenix-trace.png}"

cargo build --quiet -p text-to-image
start_text_to_image TEXT_TO_IMAGE_OUTPUT="$run_dir/images"
# One request; its trace's page in the UI: the project's id is Phoenix's
# GraphQL id for it, read back like the spans.
url=$("$python" - "$app_url" "$TRACED_PHOENIX_URL" <<'PY'
import json, sys, time, urllib.request
base, phoenix = sys.argv[1], sys.argv[2]
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
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$run_dir/chromium" \
    --window-size=1600,1000 --virtual-time-budget=20000 --screenshot="$picture" "$url" 2>"$run_dir/chromium.log" \
    || { cat "$run_dir/chromium.log" >&2; exit 1; }
echo "wrote $picture"
