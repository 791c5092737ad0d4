"""tools/train.py stops a run that cannot succeed, keeping what it saved."""

import glob
import os.path as osp

import pytest
import torch

import mmdet_efficientdet  # noqa: F401  (weights-only allow-list)

# epoch 1 at a sane lr, epoch 2 at lr 1e4: the run diverges after it saved
# epoch_1.pth, which max_keep_ckpts=1 would delete when saving epoch 2
DIVERGING = """
_base_ = {tiny!r}
optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [
    dict(type='MultiStepLR', by_epoch=True, milestones=[1], gamma=1e7)
]
train_cfg = dict(max_epochs=3)
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=1))
"""


def finite_tensors(tree):
    if isinstance(tree, torch.Tensor):
        return not tree.is_floating_point() or bool(tree.isfinite().all())
    if isinstance(tree, dict):
        return all(finite_tensors(v) for v in tree.values())
    if isinstance(tree, (list, tuple)):
        return all(finite_tensors(v) for v in tree)
    return True


@pytest.mark.slow
def test_num_classes_mismatch_stops_before_the_first_iteration(
    tiny_config, tmp_path, run_failing_tool
):
    work = str(tmp_path / 'run')
    log = run_failing_tool(
        'tools/train.py',
        tiny_config,
        '--work-dir',
        work,
        '--cfg-options',
        'model.bbox_head.num_classes=2',
    )
    assert (
        'The `num_classes` (2) in EfficientDetHead of SingleStageDetector '
        'does not matches the length of `classes` 3) in CheckedCocoDataset'
    ) in log
    assert 'Epoch(train)' not in log
    assert not glob.glob(osp.join(work, '*.pth'))


@pytest.mark.slow
def test_diverging_run_stops_and_keeps_its_finite_checkpoint(
    tiny_config, tmp_path, run_failing_tool
):
    config = tmp_path / 'diverging.py'
    config.write_text(DIVERGING.format(tiny=tiny_config))
    work = str(tmp_path / 'run')
    log = run_failing_tool('tools/train.py', str(config), '--work-dir', work)
    assert 'FloatingPointError: ' in log
    # the loss itself or, one step earlier, the weights it broke
    message = log[log.index('FloatingPointError: ') :]
    assert (
        'non-finite loss at epoch 2, iteration' in message
        or 'the optimizer step of epoch 2, iteration' in message
    ), message
    assert 'loss_cls=' in message and 'loss_bbox=' in message
    assert 'Epoch(train) [3]' not in log
    saved = sorted(glob.glob(osp.join(work, '*.pth')))
    assert [osp.basename(p) for p in saved] == ['epoch_1.pth']
    for path in saved:
        ckpt = torch.load(path, map_location='cpu')
        assert finite_tensors(ckpt), path
