#!/usr/bin/env bash
# What tracing costs a served request: `benches/examples/served.rs` serves
# `GET /v1/generate/{model}` with each setup in turn (none, traced,
# tower-http, fastrace) and `wrk` (Debian's, unpacked into the cache on
# first use) loads it on loopback. Prints requests per second, p50 and p99
# per round and the server's CPU time per request (all its threads, from
# /proc), then the medians over the rounds.
#
#   scripts/bench-served.sh                       every setup, ROUNDS=2, SECONDS_EACH=10
#   scripts/bench-served.sh traced fastrace       some
#   CONNECTIONS=32 THREADS=1 TRACEPARENT=1 ...    wrk's connections and threads;
#                                                 a caller's traceparent on every request
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${TRACED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/traced}
rounds=${ROUNDS:-2}
seconds=${SECONDS_EACH:-10}
connections=${CONNECTIONS:-32}
threads=${THREADS:-1}
port=${PORT:-8099}

# shellcheck source=scripts/wrk-env.sh
. scripts/wrk-env.sh
# The server's CPU time so far (every thread), in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

cargo build --quiet --release -p traced-benches --example served
modes=("$@")
[[ ${#modes[@]} -gt 0 ]] || modes=(none traced tower-http fastrace)
headers=()
[[ -z ${TRACEPARENT:-} ]] || headers=(-H "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")

results=$(mktemp)
trap 'rm -f "$results"' EXIT
for round in $(seq "$rounds"); do
    for mode in "${modes[@]}"; do
        fifo=$(mktemp -u)
        mkfifo "$fifo"
        target/release/examples/served "$mode" "$port" <"$fifo" >"$results.$mode" &
        server=$!
        exec 3>"$fifo"
        rm -f "$fifo"
        until grep -q "on 127.0.0.1" "$results.$mode" 2>/dev/null; do sleep 0.1; done
        cpu_before=$(cpu_ticks "$server")
        out=$(wrk -t"$threads" -c"$connections" -d"${seconds}s" --latency "${headers[@]}" \
            "http://127.0.0.1:$port/v1/generate/sd-turbo")
        cpu_after=$(cpu_ticks "$server")
        exec 3>&-
        wait "$server"
        rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
        p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
        p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
        requests=$(awk '/requests in/ {print $1}' <<<"$out")
        cpu=$(( (cpu_after - cpu_before) * 1000000 / $(getconf CLK_TCK) * 1000 / requests ))
        spans=$(awk '/spans received/ {print $NF}' "$results.$mode")
        allocations=$(awk '/allocations per request/ {print $3}' "$results.$mode")
        rm -f "$results.$mode"
        printf 'round %d  %-10s %10s req/s  p50 %-8s p99 %-8s server CPU %5d ns/request  %s allocations/request  spans %s\n' \
            "$round" "$mode" "$rps" "$p50" "$p99" "$cpu" "$allocations" "$spans"
        echo "$mode $rps $p50 $p99 $cpu" >>"$results"
    done
done
echo "medians over $rounds rounds (wrk -t$threads -c$connections -d${seconds}s):"
for mode in "${modes[@]}"; do
    python3 - "$mode" "$results" <<'EOF'
import statistics, sys
mode, path = sys.argv[1], sys.argv[2]
def micros(text):
    for unit, scale in (("us", 1), ("ms", 1000), ("s", 1_000_000)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * scale
    raise SystemExit(f"unknown latency {text}")
rows = [line.split() for line in open(path) if line.split()[0] == mode]
rps = statistics.median(float(r[1]) for r in rows)
p50 = statistics.median(micros(r[2]) for r in rows)
p99 = statistics.median(micros(r[3]) for r in rows)
cpu = statistics.median(float(r[4]) for r in rows)
print(f"  {mode:<10} {rps / 1000:6.1f}k req/s  p50 {p50:6.0f} µs  p99 {p99:6.0f} µs  server CPU {cpu / 1000:5.1f} µs/request")
EOF
done
