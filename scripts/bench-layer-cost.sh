#!/usr/bin/env bash
# What the request metrics cost a request under traced::TraceLayer, in the
# process (no network): benches/examples/layer_cost.rs with the metrics on
# and off, in turn, ROUNDS times (5 by default); prints each round and the
# medians.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-5}
cargo build --quiet --release -p traced-benches --example layer_cost
results=$(mktemp)
trap 'rm -f "$results"' EXIT
for _ in $(seq "$rounds"); do
    for mode in metrics no-metrics; do
        target/release/examples/layer_cost "$mode" 2>/dev/null | tee -a "$results" | grep layer_cost
    done
done
for mode in metrics no-metrics; do
    awk -v mode="$mode" '$2 == mode":" {print $3}' "$results" | sort -n |
        awk -v mode="$mode" '{v[NR] = $1} END {printf "median %-10s %d ns per request\n", mode, v[int((NR + 1) / 2)]}'
done
