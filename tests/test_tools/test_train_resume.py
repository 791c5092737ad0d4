"""tools/train.py --resume continues a run exactly (torch >= 2.6 loading)."""

import glob
import os.path as osp
import subprocess
import sys

import pytest
import torch

import mmdet_efficientdet  # noqa: F401  (weights-only allow-list)

pytestmark = pytest.mark.slow  # trains


def load(path):
    return torch.load(path, map_location='cpu')


def assert_same(a, b, where=''):
    """Recursive equality of two checkpoint parts."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor), where
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=where)
    elif isinstance(a, dict):
        assert set(a) == set(b), f'{where}: {set(a) ^ set(b)}'
        for key in a:
            assert_same(a[key], b[key], f'{where}.{key}')
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f'{where}[{i}]')
    elif isinstance(a, float):
        assert abs(a - b) <= 1e-9 * max(1.0, abs(a)), f'{where}: {a} {b}'
    else:
        assert a == b, f'{where}: {a!r} != {b!r}'


def test_resume_equals_uninterrupted_run(tiny_config, tmp_path, run_tool):
    full = str(tmp_path / 'full')
    run_tool('tools/train.py', tiny_config, '--work-dir', full)
    # a run stopped after epoch 1 left exactly epoch_1.pth behind
    resumed = str(tmp_path / 'resumed')
    log = run_tool(
        'tools/train.py',
        tiny_config,
        '--work-dir',
        resumed,
        '--resume',
        osp.join(full, 'epoch_1.pth'),
    )
    assert 'resumed epoch: 1, iter: 4' in log
    assert not glob.glob(osp.join(resumed, 'epoch_1.pth'))
    a = load(osp.join(full, 'epoch_2.pth'))
    b = load(osp.join(resumed, 'epoch_2.pth'))
    assert a['meta']['epoch'] == b['meta']['epoch'] == 2
    assert a['meta']['iter'] == b['meta']['iter'] == 8
    for part in (
        'state_dict',
        'ema_state_dict',
        'optimizer',
        'param_schedulers',
    ):
        assert part in a, part
        assert_same(a[part], b[part], part)


def test_checkpoint_needs_only_allowed_globals(
    tiny_config, tmp_path, run_tool
):
    """Without the package's allow-list weights-only loading refuses a
    training checkpoint; once the package is imported it loads."""
    work = str(tmp_path / 'run')
    run_tool(
        'tools/train.py',
        tiny_config,
        '--work-dir',
        work,
        '--cfg-options',
        'train_cfg.max_epochs=1',
    )
    path = osp.join(work, 'epoch_1.pth')
    bare = subprocess.run(
        [
            sys.executable,
            '-c',
            'import sys, torch; torch.load(sys.argv[1], weights_only=True)',
            path,
        ],
        capture_output=True,
        text=True,
    )
    assert bare.returncode != 0
    assert 'HistoryBuffer' in bare.stderr or 'global' in bare.stderr
    assert 'state_dict' in load(path)
