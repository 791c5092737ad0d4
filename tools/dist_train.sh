#!/usr/bin/env bash
# Distributed training: dist_train.sh CONFIG GPUS [train.py args ...]
# (see torchrun.sh for multi-machine settings)
set -euo pipefail
exec bash "$(dirname "${BASH_SOURCE[0]}")/torchrun.sh" "$2" tools/train.py \
    "$1" "${@:3}"
