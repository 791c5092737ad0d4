#!/usr/bin/env bash
# The test command of the README and of CI: install what is missing, lint,
# then run the whole test suite on the CPU.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3}
bash tools/install.sh
"$PY" -m ruff check .
"$PY" -m ruff format --check .
"$PY" -m pytest tests "$@"
