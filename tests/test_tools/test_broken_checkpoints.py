"""tools/test.py and tools/train.py name a truncated checkpoint; --resume
without a path falls back to the newest intact one."""

import os
import os.path as osp
import shutil

import pytest

from mmdet_efficientdet.engine.checkpoint_check import check_checkpoint


def truncated_copy(src, dst):
    data = open(src, 'rb').read()
    with open(dst, 'wb') as f:
        f.write(data[: len(data) // 2])
    return str(dst)


@pytest.mark.slow
def test_test_tool_names_a_truncated_checkpoint(
    tiny_config, tiny_checkpoint, tmp_path, run_failing_tool
):
    broken = truncated_copy(tiny_checkpoint, tmp_path / 'broken.pth')
    log = run_failing_tool(
        'tools/test.py',
        tiny_config,
        broken,
        '--work-dir',
        str(tmp_path / 'work'),
    )
    assert (
        f"CheckpointError: checkpoint '{broken}' is truncated or not a "
        'torch checkpoint'
    ) in log
    assert 'PytorchStreamReader' not in log


@pytest.mark.slow
def test_resume_from_a_truncated_checkpoint_names_it(
    tiny_config, tiny_checkpoint, tmp_path, run_failing_tool
):
    broken = truncated_copy(tiny_checkpoint, tmp_path / 'epoch_1.pth')
    log = run_failing_tool(
        'tools/train.py',
        tiny_config,
        '--work-dir',
        str(tmp_path / 'work'),
        '--resume',
        broken,
    )
    assert f"CheckpointError: checkpoint '{broken}' is truncated" in log
    assert 'PytorchStreamReader' not in log


@pytest.mark.slow
def test_auto_resume_falls_back_to_the_newest_intact_checkpoint(
    tiny_config, tiny_checkpoint, tmp_path, run_tool
):
    """A run killed while writing epoch_2.pth (e.g. a full disk)."""
    work = tmp_path / 'work'
    work.mkdir()
    intact = str(work / 'epoch_1.pth')
    shutil.copy(tiny_checkpoint, intact)
    broken = truncated_copy(tiny_checkpoint, work / 'epoch_2.pth')
    os.utime(intact, (1000, 1000))
    (work / 'last_checkpoint').write_text(broken)
    log = run_tool(
        'tools/train.py', tiny_config, '--work-dir', str(work), '--resume'
    )
    assert (
        f'the latest checkpoint {broken} cannot be resumed from '
        f"(checkpoint '{broken}' is truncated"
    ) in log
    assert f'resuming from the newest intact checkpoint, {intact}' in log
    assert 'resumed epoch: 1, iter: 4' in log
    # epoch 2 trained again and saved over the broken file
    check_checkpoint(osp.join(work, 'epoch_2.pth'))
