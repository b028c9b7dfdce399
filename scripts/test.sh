#!/usr/bin/env bash
# Every test: formatting, lints, unit and doc tests, and the integration tests
# against real receivers (Phoenix and rotel, installed into the cache and
# started on free loopback ports here, stopped by pid on exit).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/receivers.sh install

run_dir=$(mktemp -d)
cleanup() {
    scripts/receivers.sh stop "$run_dir/env"
    rm -rf "$run_dir"
}
trap cleanup EXIT
if ! scripts/receivers.sh start "$run_dir/env"; then
    echo "test: the receivers did not start; the integration tests cannot run" >&2
    exit 1
fi
set -a
# shellcheck disable=SC1091
. "$run_dir/env"
set +a

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# The doctor tests run the binary itself.
cargo build -p traced --bins
cargo test --workspace 2>&1 | tee "$run_dir/cargo-test.log"

# One closing line over every test binary and doc-test run.
awk '/^test result:/ { passed += $4; failed += $6; ignored += $8 }
     END { printf "total: %d passed, %d failed, %d skipped\n", passed, failed, ignored }' "$run_dir/cargo-test.log"
