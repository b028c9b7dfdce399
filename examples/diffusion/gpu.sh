#!/usr/bin/env bash
# Per-stage latency on a GPU machine whose Python has torch 2.11 (CUDA 13).
#
#   examples/diffusion/gpu.sh build          here: a release build into target/gpu-bundle/
#   examples/diffusion/gpu.sh run [N] [S]    there, from the repository root: N requests of S
#                                            steps with tracing on, then off, against that
#                                            torch's own libraries
set -euo pipefail
cd "$(dirname "$0")/../.."
bundle=target/gpu-bundle

case "${1:-}" in
build)
    scripts/libtorch.sh install
    eval "$(scripts/libtorch.sh env)"
    cargo build --release -p text-to-image
    mkdir -p "$bundle"
    cp target/release/text-to-image "$bundle/"
    cp examples/diffusion/weights/tiny-unet.safetensors "$bundle/"
    echo "bundle: $bundle (carry it to the GPU machine)"
    ;;
run)
    # Found without importing torch: its own dependencies need not be there.
    torch_dir=$("${PYTHON:-python3}" -c 'import importlib.util as u; print(u.find_spec("torch").submodule_search_locations[0])')
    site=$(dirname "$torch_dir")
    cuda_libs=$(find "$site/nvidia" -maxdepth 3 -type d -name lib 2>/dev/null | paste -sd: -)
    export LD_LIBRARY_PATH="$torch_dir/lib:$cuda_libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    export TEXT_TO_IMAGE_WEIGHTS="$bundle/tiny-unet.safetensors" TEXT_TO_IMAGE_OUTPUT="$bundle/images"
    export OTEL_TRACES_EXPORTER="${OTEL_TRACES_EXPORTER:-none}"
    nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null || true
    "$bundle/text-to-image" bench --requests "${2:-50}" --steps "${3:-20}"
    ;;
*)
    echo "usage: gpu.sh build | run [REQUESTS] [STEPS]" >&2
    exit 2
    ;;
esac
