"""A tiny quickstart: the real config, shrunk to seconds of CPU work."""

import os.path as osp
import subprocess
import sys

import pytest

from helpers import QUICKSTART, REPO
from mmdet_efficientdet.datasets import make_shapes_dataset

TINY = """
_base_ = {quickstart!r}
from mmdet_efficientdet.scaling import scaled_config

globals().update(scaled_config(_base_, 'lite0', image_size=128))
# re-scaling resets the backbone weights to the variant's; keep the
# quickstart's local ImageNet Lite0 file
model['backbone']['init_cfg'] = _base_['model']['backbone']['init_cfg']
data_root = {root!r}
# deterministic pipeline: a resumed run must see the same batches
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='PackDetInputs')
]
for loader in (train_dataloader, val_dataloader, test_dataloader):
    loader.update(batch_size=4, num_workers=0, persistent_workers=False)
    loader['dataset']['data_root'] = data_root
train_dataloader['dataset']['pipeline'] = train_pipeline
val_evaluator = dict(ann_file=data_root + 'annotations/val.json')
test_evaluator = val_evaluator
train_cfg = dict(max_epochs=2, val_interval=2)
default_hooks = dict(
    checkpoint=dict(interval=1, max_keep_ckpts=-1),
    logger=dict(interval=1))
randomness = dict(seed=0)
"""


@pytest.fixture(scope='session')
def tiny_config(tmp_path_factory):
    """Config file of a 2-epoch, 4-iterations-per-epoch Lite0 run."""
    root = tmp_path_factory.mktemp('shapes')
    make_shapes_dataset(str(root), num_train=16, num_val=8, image_size=128)
    path = root / 'tiny_quickstart.py'
    path.write_text(TINY.format(quickstart=QUICKSTART, root=str(root) + '/'))
    return str(path)


def _run(*args, timeout=600, succeed=True):
    """Run a script of tools/ as a user would; return its output. It must
    exit 0, or with ``succeed=False`` must not."""
    out = subprocess.run(
        [sys.executable, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    text = out.stdout + out.stderr
    assert (out.returncode == 0) == succeed, text[-5000:]
    return text


def _run_tool(*args, timeout=600):
    return _run(*args, timeout=timeout)


def _run_failing_tool(*args, timeout=600):
    return _run(*args, timeout=timeout, succeed=False)


@pytest.fixture(scope='session')
def run_tool():
    return _run_tool


@pytest.fixture(scope='session')
def run_failing_tool():
    return _run_failing_tool


@pytest.fixture(scope='session')
def tiny_checkpoint(tiny_config, tmp_path_factory, run_tool):
    """A checkpoint of one epoch of the tiny run."""
    work = str(tmp_path_factory.mktemp('tiny_run'))
    run_tool(
        'tools/train.py',
        tiny_config,
        '--work-dir',
        work,
        '--cfg-options',
        'train_cfg.max_epochs=1',
    )
    return osp.join(work, 'epoch_1.pth')
