#!/usr/bin/env bash
# Every test: formatting, lints, unit and doc tests, and the integration tests
# against real receivers (Phoenix and rotel, installed into the cache and
# started on free loopback ports, stopped by pid on exit), the diffusion
# example included (libtorch from PyPI, also into the cache).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -z "${TRACED_PHOENIX_URL:-}" ]]; then
    exec scripts/receivers.sh with "$0" "$@"
fi

# shellcheck source=scripts/libtorch-env.sh
. scripts/libtorch-env.sh

log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo fmt --all -- --check
# The layers only look down: no module cycles, export never names serve.
python3 scripts/module_cycles.py core/src runtime/src macros/src
cargo clippy --workspace --all-targets -- -D warnings
# The doctor, pipeline and lifecycle tests run the binaries themselves.
cargo build --workspace --bins
cargo test --workspace 2>&1 | tee "$log"
# The `off` feature compiled in: a build of its own, or it would switch every
# other test's instrumentation off too.
cargo clippy --manifest-path tests/off/Cargo.toml --target-dir target --all-targets -- -D warnings
cargo test --manifest-path tests/off/Cargo.toml --target-dir target 2>&1 | tee -a "$log"

# One closing line over every test binary and doc-test run.
awk '/^test result:/ { passed += $4; failed += $6; ignored += $8 }
     END { printf "total: %d passed, %d failed, %d skipped\n", passed, failed, ignored }' "$log"
