#!/usr/bin/env bash
# Caller-thread instructions per span, per column of the `under_root` bench:
# callgrind (valgrind, a Debian package) counts what the calling thread runs
# inside the measured loop only, so the count is the same from run to run
# and no other thread's work is in it. CALLS=200000 by default.
#
#   scripts/bench-instructions.sh            every column
#   scripts/bench-instructions.sh traced     one
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "bench-instructions.sh: needs valgrind: sudo apt-get install valgrind" >&2; exit 1; }
calls=${CALLS:-200000}
# One codegen unit: with the default sixteen, an unrelated change elsewhere
# in a crate moved which calls were inlined, and the counts by up to 56
# instructions a span.
target_dir=target/instructions
CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 cargo build --quiet --release -p traced-benches --example instructions \
    --target-dir "$target_dir"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
columns=("$@")
if [[ ${#columns[@]} -eq 0 ]]; then
    columns=(plain traced-off traced-unsampled traced fastrace sdk traced-root traced-root-dropped fastrace-root)
fi
for column in "${columns[@]}"; do
    valgrind --tool=callgrind --separate-threads=yes --collect-atstart=no \
        "--toggle-collect=instructions::in_roots*" --callgrind-out-file="$out/$column" \
        "$target_dir/release/examples/instructions" "$column" "$calls" >/dev/null 2>&1
    total=$(grep -m1 '^summary:' "$out/$column-01" | awk '{print $2}')
    printf '%-18s %6d instructions per call\n' "$column" $((total / calls))
done
