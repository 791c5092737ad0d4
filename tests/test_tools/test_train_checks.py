"""tools/train.py stops a run that cannot succeed, keeping what it saved."""

import glob
import os.path as osp

import pytest


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
