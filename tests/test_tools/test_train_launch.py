"""dist_train.sh over gloo on the CPU, --amp on the CPU, tools/test.py."""

import glob
import os.path as osp
import re
import subprocess

import cv2
import pytest
import torch

from helpers import REPO
from mmdet_efficientdet.engine import CPUAmpOptimWrapper

pytestmark = pytest.mark.slow  # trains, runs tools


def test_dist_train_two_processes_on_cpu(tiny_config, tmp_path):
    work = str(tmp_path / 'dist')
    out = subprocess.run(
        [
            'bash',
            'tools/dist_train.sh',
            tiny_config,
            '2',
            '--work-dir',
            work,
            '--auto-scale-lr',
            '--cfg-options',
            'train_cfg.max_epochs=1',
            'auto_scale_lr.base_batch_size=16',
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env={'PORT': '29517', **__import__('os').environ},
    )
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-5000:]
    assert 'distributed over gloo, SyncBN -> BN' in log
    # 4 images per process x 2 processes against a base of 16: lr x 0.5
    assert 'batch size: 4 per process x 2 processes = 8' in log
    assert (
        'LR is set based on batch size of 16 and the current batch size '
        'is 8. Scaling the original LR by 0.5'
    ) in log
    # warm-up ends with the epoch: the last step runs at 0.04 * 0.5
    lrs = re.findall(r' lr: ([0-9.e+-]+)', log)
    assert lrs[-1] == '2.0000e-02', lrs
    # 16 images / 8 per step = 2 iterations in the epoch
    assert 'Epoch(train) [1][2/2]' in log
    assert glob.glob(osp.join(work, 'epoch_1.pth'))


def test_amp_on_cpu_trains_without_nan(tiny_config, tmp_path, run_tool):
    log = run_tool(
        'tools/train.py',
        tiny_config,
        '--amp',
        '--work-dir',
        str(tmp_path / 'amp'),
        '--cfg-options',
        'train_cfg.max_epochs=1',
    )
    assert 'CPUAmpOptimWrapper' in log
    losses = [float(v) for v in re.findall(r' loss: ([0-9.naninf+-]+)', log)]
    assert len(losses) == 4
    assert all(torch.isfinite(torch.tensor(losses))), losses


def test_cpu_amp_wrapper_autocasts_to_bfloat16():
    model = torch.nn.Linear(4, 4)
    wrapper = CPUAmpOptimWrapper(
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1)
    )
    with wrapper.optim_context(model):
        y = model(torch.randn(2, 4))
    assert y.dtype == torch.bfloat16
    wrapper.update_params(y.float().sum())
    assert model.weight.grad is None  # zeroed after the step


def test_test_tool_evaluates_a_checkpoint(
    tiny_config, tiny_checkpoint, tmp_path, run_tool
):
    out = str(tmp_path / 'results.pkl')
    log = run_tool(
        'tools/test.py',
        tiny_config,
        tiny_checkpoint,
        '--work-dir',
        str(tmp_path),
        '--out',
        out,
    )
    assert 'coco/bbox_mAP:' in log
    assert osp.isfile(out)


def test_demo_draws_detections(
    tiny_config, tiny_checkpoint, tmp_path, run_tool
):
    root = osp.dirname(tiny_config)
    image = osp.join(root, 'val', '00001.png')
    out = str(tmp_path / 'demo.jpg')
    log = run_tool(
        'tools/demo.py',
        image,
        tiny_config,
        tiny_checkpoint,
        '--out',
        out,
        '--score-thr',
        '0.0',
    )
    assert 'detections with score >= 0.0' in log
    drawn = cv2.imread(out)
    assert drawn.shape == cv2.imread(image).shape


def test_train_tool_names_a_missing_config(run_tool, tmp_path):
    import sys

    proc = subprocess.run(
        [sys.executable, 'tools/train.py', str(tmp_path / 'nope.py')],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0
    assert 'nope.py' in proc.stderr and 'not found' in proc.stderr
