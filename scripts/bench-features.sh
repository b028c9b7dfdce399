#!/usr/bin/env bash
# What each feature set of `traced` costs: the packages in its dependency
# tree (`cargo tree`, normal dependencies, each package once), the packages
# a cold `cargo build --release` compiles, and how long that build takes.
# Every set builds in a target directory of its own, emptied first, so each
# build is cold; the registry's sources are already downloaded. One run;
# prints a Markdown table for BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=target/bench-features
sets=("none:" "default:serve,grpc,http-json" "default + tracing:serve,grpc,http-json,tracing")

echo "| features | packages in the tree | packages compiled | cold \`cargo build --release\` |"
echo "| --- | --- | --- | --- |"
for entry in "${sets[@]}"; do
    name=${entry%%:*}
    features=${entry#*:}
    target="$dir/$(tr -c 'a-z0-9\n' '-' <<<"$name")"
    rm -rf "$target"
    tree=$(cargo tree -p traced --no-default-features --features "$features" -e normal --prefix none \
        | sed 's/ (\*)$//; s/ (proc-macro)$//' | sort -u | wc -l)
    log=$(mktemp)
    start=$(date +%s.%N)
    cargo build --release -p traced --no-default-features --features "$features" --target-dir "$target" 2>"$log"
    end=$(date +%s.%N)
    compiled=$(grep -c '^ *Compiling ' "$log" || true)
    rm -f "$log"
    rm -rf "$target"
    label=${features:-(none)}
    printf '| %s (`%s`) | %d | %d | %.0f s |\n' "$name" "$label" "$tree" "$compiled" "$(echo "$end - $start" | bc)"
done
