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
# The docs as docs.rs builds them (less its nightly-only feature badges).
RUSTDOCFLAGS="-D warnings" cargo doc --quiet -p traced-macros -p traced-core -p traced --no-deps --features traced/tracing
# The three packages as crates.io would take them, each verified by a build
# of its own against the others' packages; each carries its README and both
# licenses.
for crate in traced-macros traced-core traced; do
    listed=$(cargo package --list --allow-dirty -p "$crate")
    for file in README.md LICENSE-MIT LICENSE-APACHE; do
        grep -qx "$file" <<<"$listed" || { echo "the $crate package lacks $file" >&2; exit 1; }
    done
done
# Cargo unpacks the packages it verifies against from a local registry into
# its cache, once per version: a copy left by an earlier run would stand in
# for today's sources. Only those local copies of these crates go.
for stale in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/-*/traced-{macros,core}-*; do
    if [[ -d "$stale" ]]; then rm -rf "$stale"; fi
done
# Cargo keeps what it built from such a copy the same way, by name and
# version, not by content: the build's fingerprint goes too, so that it is
# built again from today's package. Its dep-info names the cached source.
for depinfo in target/debug/deps/traced_{macros,core}-*.d; do
    if [[ -f "$depinfo" ]] && grep -q "registry/src/-" "$depinfo"; then
        name=$(basename "$depinfo" .d)
        rm -rf "target/debug/.fingerprint/${name//_/-}"
    fi
done
cargo package --quiet --allow-dirty -p traced-macros -p traced-core -p traced
# Each feature the README names, alone on top of none, warnings denied, so
# that none rots; without the defaults the tree holds neither axum nor tonic.
for features in "" serve grpc http-json tracing off; do
    cargo clippy --quiet -p traced --no-default-features --features "$features" -- -D warnings
done
if cargo tree -p traced --no-default-features -e normal --prefix none | grep -E '^(axum|tonic) '; then
    echo "traced without its default features still depends on axum or tonic" >&2
    exit 1
fi
# The core is on the OpenTelemetry API alone.
if cargo tree -p traced-core -e normal --prefix none | grep -E '^opentelemetry_sdk '; then
    echo "traced-core depends on the OpenTelemetry SDK" >&2
    exit 1
fi
# The doctor, pipeline and lifecycle tests run the binaries themselves.
cargo build --workspace --bins
cargo test --workspace 2>&1 | tee "$log"
# The `off` feature compiled in: a build of its own, or it would switch every
# other test's instrumentation off too.
cargo clippy --manifest-path tests/off/Cargo.toml --target-dir target --all-targets -- -D warnings
cargo test --manifest-path tests/off/Cargo.toml --target-dir target 2>&1 | tee -a "$log"
# `traced` without its default features, exporting to rotel: a build of its
# own too, or the workspace's features would be unified into it.
cargo clippy --manifest-path tests/slim/Cargo.toml --target-dir target --all-targets -- -D warnings
cargo test --manifest-path tests/slim/Cargo.toml --target-dir target 2>&1 | tee -a "$log"

# One closing line over every test binary and doc-test run.
awk '/^test result:/ { passed += $4; failed += $6; ignored += $8 }
     END { printf "total: %d passed, %d failed, %d skipped\n", passed, failed, ignored }' "$log"
