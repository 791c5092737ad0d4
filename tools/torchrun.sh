#!/usr/bin/env bash
# Shared launcher of dist_train.sh / dist_test.sh:
#   torchrun.sh NPROC SCRIPT [script args ...]
# Multi-machine: set NNODES, NODE_RANK, MASTER_ADDR (and PORT) on each.
# Without CUDA each process runs on the CPU and talks over gloo.
set -euo pipefail
NPROC=$1
SCRIPT=$2
PY=${PYTHON:-python3}
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHONPATH="$(pwd):${PYTHONPATH:-}" exec "$PY" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" \
    --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" \
    --master_port="${PORT:-29500}" \
    --nproc_per_node="$NPROC" \
    "$SCRIPT" "${@:3}" --launcher pytorch
