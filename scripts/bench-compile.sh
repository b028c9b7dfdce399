#!/usr/bin/env bash
# What annotating 600 fns costs `cargo check`: the same crate plain, with
# `#[traced::span]` against `traced` (what an app depends on) and against
# `traced-core` alone (what a library that only annotates depends on), with
# `#[fastrace::trace]` and with `#[tracing::instrument]`. Each variant is
# checked once to build its dependencies, then ROUNDS times after touching
# the source; prints the fastest and the median of those. The crate is
# generated under target/bench-compile (its own target directory, so the
# workspace's is not locked). With COLD=1 each variant is instead built once
# from an empty target directory, dependencies included (`cargo build`,
# debug), and the packages compiled and the time are printed; VARIANTS picks
# which (`COLD=1 FNS=50 VARIANTS="traced-core fastrace"`).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
fns=${FNS:-600}
rounds=${ROUNDS:-5}
dir=target/bench-compile
mkdir -p "$dir/src"

dependency() {
    case $1 in
        plain) echo "" ;;
        traced) echo "traced = { path = \"$root/runtime\" }" ;;
        traced-core) echo "traced = { package = \"traced-core\", path = \"$root/core\" }" ;;
        fastrace) echo "fastrace = { version = \"0.7\", features = [\"enable\"] }" ;;
        tracing) echo "tracing = \"0.1\"" ;;
    esac
}

attribute() {
    case $1 in
        plain) echo "" ;;
        traced | traced-core) echo "#[traced::span]" ;;
        fastrace) echo "#[fastrace::trace]" ;;
        tracing) echo "#[tracing::instrument(skip_all, err)]" ;;
    esac
}

variants=(${VARIANTS:-plain traced traced-core fastrace tracing})
if [[ -n "${COLD:-}" ]]; then
    printf '| annotation | crate | packages compiled | cold `cargo build` |\n| --- | --- | --- | --- |\n'
else
    printf '| annotation | crate | fastest | median | expanded lines |\n| --- | --- | --- | --- | --- |\n'
fi
for variant in "${variants[@]}"; do
    cat >"$dir/Cargo.toml" <<TOML
[package]
name = "annotated"
version = "0.0.0"
edition = "2024"
publish = false

[workspace]

[dependencies]
$(dependency "$variant")
TOML
    {
        echo "#![allow(dead_code)]"
        for i in $(seq 1 "$fns"); do
            attribute "$variant"
            echo "pub fn stage_$i(steps: u64, prompt: &str) -> Result<u64, std::io::Error> {"
            echo "    if steps > 1000 { return Err(std::io::Error::other(prompt.to_string())); }"
            echo "    Ok(steps + prompt.len() as u64)"
            echo "}"
        done
    } >"$dir/src/lib.rs"
    shown=$(attribute "$variant")
    if [[ -n "${COLD:-}" ]]; then
        # Everything built from nothing: the dependencies and the crate.
        rm -rf "$dir/target"
        log=$(mktemp)
        start=${EPOCHREALTIME/./}
        cargo build --manifest-path "$dir/Cargo.toml" 2>"$log"
        end=${EPOCHREALTIME/./}
        compiled=$(grep -c '^ *Compiling ' "$log" || true)
        rm -f "$log"
        printf '| %s | %s | %d | %.1f s |\n' "${shown:+\`$shown\`}" "$variant" "$compiled" \
            "$(echo "($end - $start) / 1000000" | bc -l)"
        continue
    fi
    check() { cargo check -q --manifest-path "$dir/Cargo.toml" 2>&1; }
    check >/dev/null
    times=()
    for _ in $(seq 1 "$rounds"); do
        touch "$dir/src/lib.rs"
        start=${EPOCHREALTIME/./}
        check >/dev/null
        end=${EPOCHREALTIME/./}
        times+=("$(((end - start) / 1000))")
    done
    sorted=$(printf '%s\n' "${times[@]}" | sort -n)
    fastest=$(echo "$sorted" | head -1)
    median=$(echo "$sorted" | sed -n "$(((rounds + 1) / 2))p")
    # Expanded size without nightly: the macro output, through rustc's
    # pretty-printer on a stable toolchain (RUSTC_BOOTSTRAP only for this).
    expanded=$(RUSTC_BOOTSTRAP=1 cargo rustc -q --manifest-path "$dir/Cargo.toml" --profile check \
        -- -Zunpretty=expanded 2>/dev/null | wc -l)
    printf '| %s | %s | %d ms | %d ms | %s |\n' "${shown:+\`$shown\`}" "$variant" "$fastest" "$median" "$expanded"
done
