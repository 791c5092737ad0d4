"""Every EfficientDet config trains with the num_classes and NaN checks."""

import glob
import os.path as osp

import pytest
from mmengine.config import Config

from helpers import REPO
from mmdet_efficientdet.engine import input_size_problems

CONFIGS = sorted(
    glob.glob(
        osp.join(REPO, 'configs', 'efficientdet', '**', '*.py'),
        recursive=True,
    )
    + glob.glob(osp.join(REPO, 'configs', 'quickstart', '*.py'))
    + glob.glob(osp.join(REPO, 'configs', 'finetune', '*.py'))
)


def test_configs_found():
    assert len(CONFIGS) >= 15 + 23 + 1 + 15


@pytest.mark.parametrize(
    'path', CONFIGS, ids=[osp.relpath(p, REPO) for p in CONFIGS]
)
def test_config_has_the_training_checks(path):
    cfg = Config.fromfile(path)
    hooks = [hook['type'] for hook in cfg.custom_hooks]
    assert 'NumClassCheckHook' in hooks, hooks
    assert 'CheckFiniteHook' in hooks, hooks
    assert 'InputSizeCheckHook' in hooks, hooks
    assert input_size_problems(cfg) == []
