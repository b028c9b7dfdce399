# Sourced by demo.sh and test.sh: libtorch for the diffusion example, and
# torch's threads set for a small, busy machine (two OpenMP threads on a busy
# 2-core machine run 8x slower than one).
scripts/libtorch.sh install
eval "$(scripts/libtorch.sh env)"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
