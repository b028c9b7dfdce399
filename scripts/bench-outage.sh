#!/usr/bin/env bash
# A collector outage under load: `benches/examples/served.rs traced-otlp`
# (one axum route under `traced::TraceLayer`, traced configured from
# `OTEL_*`) exports over OTLP/HTTP to a rotel that counts spans and drops
# them; `wrk` loads the route with 2 connections for 20 s; rotel is killed
# (SIGKILL) at 5 s and started again on the same port after each outage.
# Prints per outage the requests, the spans rotel received (of those traced
# made), traced's shutdown report, what waited at most (from traced's
# "recovered" line) and the server's peak RSS.
#
#   scripts/bench-outage.sh              no outage, then outages of 0, 5 and 10 s
#   scripts/bench-outage.sh 0 30         these outages (seconds; `none`: rotel
#                                        is not killed)
#   SAMPLER=always_on ...                request spans through the SDK (its
#                                        export data waits, not traced's
#                                        encoded requests)
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${TRACED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/traced}
seconds=${SECONDS_EACH:-20}
killed_at=5

scripts/receivers.sh install
agent=$(echo "$cache"/receivers/lib/python3*/site-packages/rotel/rotel-agent)
# shellcheck source=scripts/wrk-env.sh
. scripts/wrk-env.sh
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
counted() { sed 's/\x1b\[[0-9;]*m//g' "$@" | { grep -o 'spans=[0-9]*' || true; } | cut -d= -f2 | awk '{n += $1} END {print n + 0}'; }

cargo build --quiet --release -p traced-benches --example served
work=$(mktemp -d)
rotel_pid=""
server=""
cleanup() {
    [[ -z $rotel_pid ]] || kill "$rotel_pid" 2>/dev/null || true
    [[ -z $server ]] || kill "$server" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

start_rotel() {
    "$agent" start --otlp-http-endpoint "127.0.0.1:$1" --otlp-grpc-endpoint "127.0.0.1:$(free_port)" \
        --debug-log traces --debug-log-verbosity basic --exporter blackhole >"$2" 2>&1 3>&- &
    rotel_pid=$!
    until python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' "$1" \
        2>/dev/null; do sleep 0.05; done
}

outages=("$@")
[[ ${#outages[@]} -gt 0 ]] || outages=(none 0 5 10)
for outage in "${outages[@]}"; do
    receiver_port=$(free_port)
    port=$(free_port)
    start_rotel "$receiver_port" "$work/before.log"
    fifo=$(mktemp -u)
    mkfifo "$fifo"
    OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$receiver_port" OTEL_METRICS_EXPORTER=prometheus \
        OTEL_TRACES_SAMPLER=${SAMPLER:-parentbased_always_on} \
        target/release/examples/served traced-otlp "$port" <"$fifo" >"$work/server.out" 2>"$work/server.err" &
    server=$!
    exec 3>"$fifo"
    rm -f "$fifo"
    until grep -q "on 127.0.0.1" "$work/server.out" 2>/dev/null; do sleep 0.1; done
    wrk -t1 -c2 -d"${seconds}s" "http://127.0.0.1:$port/v1/generate/sd-turbo" >"$work/wrk.out" 3>&- &
    load=$!
    : >"$work/after.log"
    if [[ $outage != none ]]; then
        sleep "$killed_at"
        kill -9 "$rotel_pid"
        wait "$rotel_pid" 2>/dev/null || true
        sleep "$outage"
        start_rotel "$receiver_port" "$work/after.log"
    fi
    wait "$load"
    exec 3>&-
    wait "$server"
    server=""
    sleep 1
    kill "$rotel_pid"
    wait "$rotel_pid" 2>/dev/null || true
    rotel_pid=""
    requests=$(awk '/requests in/ {print $1}' "$work/wrk.out")
    received=$(($(counted "$work/before.log") + $(counted "$work/after.log")))
    report=$(grep -o 'shutdown in .*' "$work/server.err" || true)
    waited=$(grep -o 'at most [0-9]* spans waited, in [0-9]* bytes: [0-9]* bytes a span' "$work/server.err" || echo "nothing waited")
    peak=$(awk '/peak RSS/ {print $(NF-1), $NF}' "$work/server.out")
    share=$(python3 -c 'import sys; print(f"{100 * int(sys.argv[1]) / max(int(sys.argv[2]), 1):.2f} %")' "$received" "$requests")
    # One span a request: the request's own.
    printf 'outage %4s s: %d requests, %d spans received (%s), peak RSS %s\n  traced: %s\n  %s\n' \
        "$outage" "$requests" "$received" "$share" "$peak" "$report" "$waited"
done
