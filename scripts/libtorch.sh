#!/usr/bin/env bash
# libtorch for the diffusion example, from PyPI: torch 2.11.0 (what tch 0.24
# binds) without its CUDA wheels, plus just the CUDA runtime and CUPTI
# libraries it needs to load. Installed once into the cache.
#
#   scripts/libtorch.sh install   install (idempotent)
#   eval "$(scripts/libtorch.sh env)"
#                                 the variables to build with tch and to run:
#                                 LIBTORCH*, LD_LIBRARY_PATH, torch threads
set -euo pipefail

TORCH_VERSION=2.11.0
CUDA_TOOLKIT_VERSION=13.0.2

cache="${TRACED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/traced}"
root="$cache/libtorch-$TORCH_VERSION"
site="$root/site-packages"
stamp="$root/.installed-$TORCH_VERSION-$CUDA_TOOLKIT_VERSION"

install() {
    if [[ -f "$stamp" ]]; then
        return
    fi
    echo "libtorch: installing torch $TORCH_VERSION and the CUDA runtime into $root (first run only)" >&2
    mkdir -p "$site"
    PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install --quiet --disable-pip-version-check --target "$site" \
        --no-deps "torch==$TORCH_VERSION"
    PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install --quiet --disable-pip-version-check --target "$site" \
        "cuda-toolkit[cudart,cupti]==$CUDA_TOOLKIT_VERSION"
    touch "$stamp"
}

print_env() {
    install
    local cuda_libs
    cuda_libs=$(find "$site/nvidia" -maxdepth 3 -type d -name lib | paste -sd: -)
    cat <<VARS
export LIBTORCH="$site/torch"
export LIBTORCH_CXX11_ABI=1
export LIBTORCH_BYPASS_VERSION_CHECK=1
export LD_LIBRARY_PATH="$site/torch/lib:$cuda_libs\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
VARS
}

case "${1:-}" in
install) install ;;
env) print_env ;;
*)
    echo "usage: libtorch.sh install | env" >&2
    exit 2
    ;;
esac
