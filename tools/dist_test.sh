#!/usr/bin/env bash
# Distributed testing: dist_test.sh CONFIG CHECKPOINT GPUS [test.py args ...]
# (see torchrun.sh for multi-machine settings)
set -euo pipefail
exec bash "$(dirname "${BASH_SOURCE[0]}")/torchrun.sh" "$3" tools/test.py \
    "$1" "$2" "${@:4}"
