#!/usr/bin/env bash
# The demo: starts Phoenix, checks the setup with traced-doctor, serves the
# text-to-image diffusion app (tch, CPU or CUDA), sends it a few prompts,
# prints each trace as a tree, writes the images to out/demo/, and reads the
# traces back from Phoenix's REST API. Then it asks for one more image as a
# stream: a progress event per denoising step as it happens, the image last.
# Prometheus scrapes the app all along: the request-duration histogram and
# the time to the first streamed event come from it, and one exemplar's
# trace from Phoenix. DEMO_KEEP=1 keeps Phoenix running afterwards so its web
# UI can be browsed (Ctrl-C stops it).
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/text-to-image-app.sh
. scripts/text-to-image-app.sh
images="${DEMO_IMAGES:-out/demo}"

cargo build --quiet -p traced --bins -p text-to-image

echo
echo "== traced-doctor: configuration and a test trace"
OTEL_EXPORTER_OTLP_ENDPOINT=$TRACED_PHOENIX_URL OTEL_SERVICE_NAME=text-to-image target/debug/traced-doctor

echo
echo "== text-to-image: setup, four prompts, SIGTERM; each trace printed as a tree and exported to Phoenix"
start_text_to_image OTEL_TRACES_EXPORTER=otlp,console TEXT_TO_IMAGE_OUTPUT="$images"
start_prometheus
"$python" - "$app_url" "$run_dir/traces" <<'PY'
import json, sys, time, urllib.request
base, traces = sys.argv[1], sys.argv[2]
prompts = ["a red circle", "a blue square on white", "a green triangle on gray", "a yellow circle on black"]
with open(traces, "w") as out:
    for seed, prompt in enumerate(prompts):
        body = json.dumps({"prompt": prompt, "num_inference_steps": 20, "guidance_scale": 1.5, "seed": seed}).encode()
        request = urllib.request.Request(base + "/", data=body, method="POST", headers={"content-type": "application/json"})
        answer = json.load(urllib.request.urlopen(request, timeout=60))
        print(f"request {prompt!r}: trace {answer['trace_id']}, image {answer['path']}", flush=True)
        out.write(answer["trace_id"] + "\n")
        time.sleep(0.3)
PY

echo
echo "== text-to-image /stream: an event per denoising step as it is made, the image last; one trace over the stream"
"$python" - "$app_url" "$run_dir/traces" <<'PY'
import json, sys, time
import httpx
from httpx_sse import connect_sse
base, traces = sys.argv[1], sys.argv[2]
body = {"prompt": "a purple square on white", "num_inference_steps": 20, "guidance_scale": 1.5, "seed": 7}
sent = time.monotonic()
with httpx.Client(timeout=60) as client, connect_sse(client, "POST", base + "/stream", json=body) as events:
    print(f"  {events.response.headers['content-type']}, trace {events.response.headers['x-trace-id']}", flush=True)
    for event in events.iter_sse():
        data = json.loads(event.data)
        at = (time.monotonic() - sent) * 1000
        if event.event == "error":
            print(f"  {at:7.1f} ms  error: {data['error']}", flush=True)
        elif data["event"] == "step":
            print(f"  {at:7.1f} ms  step {data['step']:>2} of {data['of']} (server: {data['elapsed_ms']:.1f} ms)", flush=True)
        else:
            print(f"  {at:7.1f} ms  image {data['path']}", flush=True)
            with open(traces, "a") as out:
                out.write(data["trace_id"] + "\n")
PY

echo
echo "== metrics, read from Prometheus ($prometheus_url), which scraped the app's /metrics every second"
"$python" - "$prometheus_url" "$TRACED_PHOENIX_URL" <<'PY'
import json, sys, time, urllib.parse, urllib.request
prometheus, phoenix = sys.argv[1], sys.argv[2]
def query(promql):
    url = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    return json.load(urllib.request.urlopen(url))["data"]["result"]
# Five requests: four whole answers and one stream, counted once scraped.
for _ in range(100):
    counted = query('sum(http_server_request_duration_seconds_count{http_route=~"/|/stream"})')
    if counted and float(counted[0]["value"][1]) >= 5:
        break
    time.sleep(0.2)
print("http_server_request_duration_seconds, POST /, cumulative:")
buckets = query('http_server_request_duration_seconds_bucket{http_route="/",http_response_status_code="200"}')
for bucket in sorted(buckets, key=lambda b: float(b["metric"]["le"])):
    print(f"  le {bucket['metric']['le']:>6} s: {int(float(bucket['value'][1]))}")
first = query("gen_ai_server_time_to_first_token_seconds_sum / gen_ai_server_time_to_first_token_seconds_count")
for series in first:
    print(f"gen_ai_server_time_to_first_token_seconds (POST /stream, {series['metric'].get('gen_ai_request_model')}): "
          f"{float(series['value'][1]) * 1000:.1f} ms")
now = time.time()
url = f"{prometheus}/api/v1/query_exemplars?" + urllib.parse.urlencode(
    {"query": "http_server_request_duration_seconds_bucket", "start": now - 600, "end": now + 60})
stored = json.load(urllib.request.urlopen(url))["data"]
exemplars = [e for s in stored for e in s["exemplars"]]
exemplar_route = {e["labels"]["trace_id"]: s["seriesLabels"].get("http_route") for s in stored for e in s["exemplars"]}
if exemplars:
    exemplar = exemplars[-1]
    trace_id = exemplar["labels"]["trace_id"]
    for _ in range(40):
        spans = json.load(urllib.request.urlopen(f"{phoenix}/v1/projects/default/spans?trace_id={trace_id}"))["data"]
        if spans:
            break
        time.sleep(0.25)
    counts = {}
    for span in spans:
        counts[span["name"]] = counts.get(span["name"], 0) + 1
    names = ", ".join(f"{name} x{n}" if n > 1 else name for name, n in sorted(counts.items()))
    route = exemplar_route.get(trace_id, "?")
    print(f"an exemplar of {route}: {float(exemplar['value']) * 1000:.1f} ms, trace {trace_id}; in Phoenix: {len(spans)} spans: {names}")
else:
    print("no exemplar stored yet")
PY
kill -TERM "$app_pid"
status=0
wait "$app_pid" || status=$?
app_pid=""
echo "text-to-image exited with status $status after SIGTERM"

echo
echo "== the same traces, read back from Phoenix ($TRACED_PHOENIX_URL)"
while read -r trace_id; do
    "$python" - "$TRACED_PHOENIX_URL" "$trace_id" <<'PY'
import json, sys, time, urllib.request
base, trace_id = sys.argv[1], sys.argv[2]
for _ in range(40):
    spans = json.load(urllib.request.urlopen(f"{base}/v1/projects/default/spans?trace_id={trace_id}"))["data"]
    if len(spans) >= 5:
        break
    time.sleep(0.25)
names = ", ".join(sorted(s["name"] for s in spans))
print(f"trace {trace_id}: {len(spans)} spans: {names}")
PY
done <"$run_dir/traces"
echo "images: $images/"

if [[ "${DEMO_KEEP:-}" == 1 ]]; then
    echo
    echo "Phoenix UI: $TRACED_PHOENIX_URL  (Ctrl-C to stop)"
    while true; do sleep 3600; done
fi
